/*
 * Sanitizing tag keys and values: every character outside -._A-Za-z0-9^~
 * becomes '_', as the Atlas aggregator does. Doing it before sending lets
 * ids that become equal be merged before they reach the aggregator.
 *
 * Characters are counted as the aggregator (Java) counts them, in UTF-16
 * code units: a well-formed UTF-8 sequence of 4 bytes (a character outside
 * the Basic Multilingual Plane, such as an emoji) is two units and becomes
 * "__", any other well-formed sequence becomes one '_', and every byte that
 * is not part of a well-formed sequence becomes one '_' of its own.
 */
#include "sanitize.h"

const uint64_t spectator__allowed_bits[2] = {0x03FF600000000000ULL, 0x47FFFFFEC7FFFFFEULL};

static inline bool in(unsigned char c, unsigned char lo, unsigned char hi) {
  return c >= lo && c <= hi;
}

/* Length of the well-formed UTF-8 sequence starting at p (Unicode's table
 * of well-formed byte sequences: no overlong forms, no surrogates, nothing
 * above U+10FFFF), else 0. Never reads past a NUL. */
static size_t utf8_len(const unsigned char *p) {
  unsigned char b = p[0];
  if (in(b, 0xc2, 0xdf)) return in(p[1], 0x80, 0xbf) ? 2 : 0;
  if (in(b, 0xe0, 0xef)) {
    unsigned char lo = b == 0xe0 ? 0xa0 : 0x80, hi = b == 0xed ? 0x9f : 0xbf;
    return in(p[1], lo, hi) && in(p[2], 0x80, 0xbf) ? 3 : 0;
  }
  if (in(b, 0xf0, 0xf4)) {
    unsigned char lo = b == 0xf0 ? 0x90 : 0x80, hi = b == 0xf4 ? 0x8f : 0xbf;
    return in(p[1], lo, hi) && in(p[2], 0x80, 0xbf) && in(p[3], 0x80, 0xbf) ? 4 : 0;
  }
  return 0;
}

size_t spectator__sanitize(const char *in_s, char *out) {
  const unsigned char *p = (const unsigned char *)in_s;
  size_t o = 0;
  while (*p) {
    if (spectator__char_allowed(*p)) {
      out[o++] = (char)*p++;
      continue;
    }
    size_t n = *p >= 0x80 ? utf8_len(p) : 0;
    p += n ? n : 1;
    out[o++] = '_';
    if (n == 4) out[o++] = '_'; /* a surrogate pair in UTF-16 */
  }
  out[o] = '\0';
  return o;
}
