/*
 * Private: writing numbers as text (numfmt.c): unsigned integers, and doubles
 * in the shortest form that reads back to the same double, as strict JSON
 * (no NaN, no infinity, no exponent where fixed-point is shorter).
 */
#ifndef SPECTATOR_NUMFMT_H
#define SPECTATOR_NUMFMT_H

#include "common.h"

/* The longest number spectator__put_number writes: "-1.2345678901234567e-308". */
#define SPECTATOR__MAX_NUMBER_LEN 24
#define SPECTATOR__TWO_POW_53 9007199254740992.0

extern const char spectator__digit_pairs[201];

/* Decimal digits of v. */
static inline size_t spectator__u64_len(uint64_t v) {
  size_t n = 1;
  while (v >= 100) {
    v /= 100;
    n += 2;
  }
  return n + (v >= 10);
}

/* Decimal digits of v at out, no terminator; returns their count. */
static inline size_t spectator__put_u64(char *out, uint64_t v) {
  size_t n = spectator__u64_len(v), i = n;
  while (v >= 100) {
    size_t d = 2 * (size_t)(v % 100);
    v /= 100;
    out[--i] = spectator__digit_pairs[d + 1];
    out[--i] = spectator__digit_pairs[d];
  }
  if (v >= 10) {
    out[--i] = spectator__digit_pairs[2 * v + 1];
    out[--i] = spectator__digit_pairs[2 * v];
  } else {
    out[--i] = (char)('0' + v);
  }
  return n;
}

/* strtod in the "C" locale: a decimal point, whatever the program's
 * LC_NUMERIC. Thread-safe. */
double spectator__strtod(const char *s, char **end);

/* A finite double that is not a whole number below 2^53, at p (room for
 * SPECTATOR__MAX_NUMBER_LEN bytes), no terminator; returns the length. */
size_t spectator__put_fraction(char *p, double v);

/* A finite double at p (room for SPECTATOR__MAX_NUMBER_LEN bytes), no
 * terminator: an integer when it is a whole number below 2^53 in magnitude,
 * else the shortest text that reads back exactly. Returns the length. */
static inline size_t spectator__put_number(char *p, double v) {
  if (v >= 0 && v < SPECTATOR__TWO_POW_53 && v == (double)(uint64_t)v)
    return spectator__put_u64(p, (uint64_t)v);
  return spectator__put_fraction(p, v);
}

/* Bytes spectator__put_number writes for v: exact for whole numbers, an upper
 * bound for others. */
static inline size_t spectator__number_len_bound(double v) {
  if (v >= 0 && v < SPECTATOR__TWO_POW_53 && v == (double)(uint64_t)v)
    return spectator__u64_len((uint64_t)v);
  return SPECTATOR__MAX_NUMBER_LEN;
}

#endif
