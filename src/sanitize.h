/*
 * Private: the characters Atlas accepts in tag keys and values (sanitize.c).
 */
#ifndef SPECTATOR_SANITIZE_H
#define SPECTATOR_SANITIZE_H

#include "common.h"

/* -._A-Za-z0-9^~ as a bitmap of the 128 ASCII codes. */
extern const uint64_t spectator__allowed_bits[2];

static inline bool spectator__char_allowed(unsigned char c) {
  return c < 128 && ((spectator__allowed_bits[c >> 6] >> (c & 63)) & 1);
}

/* Replace every character outside -._A-Za-z0-9^~ by '_', counting characters
 * in UTF-16 units as the aggregator does: a well-formed 4-byte UTF-8 sequence
 * (outside the Basic Multilingual Plane) becomes "__", any other well-formed
 * sequence "_", and each byte of ill-formed UTF-8 "_". out must hold
 * strlen(in) + 1 bytes (it may be in: the output never outruns the input).
 * Returns the length. */
size_t spectator__sanitize(const char *in, char *out);

#endif
