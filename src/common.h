/*
 * Private: what every source file of the library uses. Compiler hints,
 * a few numeric constants and bit casts between doubles and integers. Nothing
 * here is installed or exported; internal names start with `spectator__`.
 *
 * Private headers: one per module, named after its .c file (id.h for id.c),
 * declaring what other modules use of it; docs/internals.md maps them.
 */
#ifndef SPECTATOR_COMMON_H
#define SPECTATOR_COMMON_H

#include <float.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "spectator.h"

#define SPECTATOR__CACHELINE 64
#define SPECTATOR__ALIGNED __attribute__((aligned(SPECTATOR__CACHELINE)))
#define SPECTATOR__LIKELY(x) __builtin_expect(!!(x), 1)
#define SPECTATOR__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define SPECTATOR__PRINTF(f, a) __attribute__((format(printf, f, a)))

#define SPECTATOR__NS_PER_S 1000000000LL
/* 2^32 and 2^63 as doubles: the bounds of exact uint32 and int64 conversions. */
#define SPECTATOR__TWO_POW_32 4294967296.0
#define SPECTATOR__TWO_POW_63 9223372036854775808.0

/* True for a finite double (not NaN, not infinite), without libm. */
static inline bool spectator__finite(double v) { return v >= -DBL_MAX && v <= DBL_MAX; }

/* The bits of a double, and back. */
static inline uint64_t spectator__d2b(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof(u));
  return u;
}
static inline double spectator__b2d(uint64_t u) {
  double d;
  memcpy(&d, &u, sizeof(d));
  return d;
}

#endif
