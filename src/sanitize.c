/*
 * Sanitizing tag keys and values: every character outside -._A-Za-z0-9^~
 * becomes '_', as the Atlas aggregator does. Doing it before sending lets
 * ids that become equal be merged before they reach the aggregator.
 */
#include "sanitize.h"

const uint64_t spectator__allowed_bits[2] = {0x03FF600000000000ULL, 0x47FFFFFEC7FFFFFEULL};

/* Length of the UTF-8 sequence starting at p when it is well formed, else 0. */
static size_t utf8_len(const unsigned char *p) {
  size_t n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
  if (p[0] >= 0xf8) return 0;
  for (size_t i = 1; i < n; i++)
    if ((p[i] & 0xc0) != 0x80) return 0;
  return n;
}

/* A well-formed UTF-8 sequence is one character (as the aggregator, which
 * sees decoded text, counts it), any other byte is one character on its own. */
size_t spectator__sanitize(const char *in, char *out) {
  const unsigned char *p = (const unsigned char *)in;
  size_t o = 0;
  while (*p) {
    if (spectator__char_allowed(*p)) {
      out[o++] = (char)*p++;
    } else {
      size_t n = *p >= 0x80 ? utf8_len(p) : 0;
      p += n ? n : 1;
      out[o++] = '_';
    }
  }
  out[o] = '\0';
  return o;
}
