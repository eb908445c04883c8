/*
 * Private: the string hash shared by ids (id.c) and the encoder's string
 * table (strtab.c), and its per-process seed (hash.c).
 *
 * A string is read 8 bytes at a time (the tail with at most two overlapping
 * loads inside the string), each word folded in with a 64x64->128 multiply
 * (as wyhash does), from a seed that holds the length. About 1 ns per 8
 * bytes; callers finish the 64-bit state as they need.
 *
 * The seed is drawn from the operating system once per process, at the
 * first hash (hash.c), so that tag values crafted against one process's
 * hashes do not collide in another's lookup table. Every caller reads it
 * with spectator__hash_seed(): a relaxed load, no lock.
 */
#ifndef SPECTATOR_HASH_H
#define SPECTATOR_HASH_H

#include <stdatomic.h>
#include <string.h>

#include "common.h"

#define SPECTATOR__HASH_K1 0x9e3779b97f4a7c15ULL
#define SPECTATOR__HASH_K2 0xa0761d6478bd642fULL
/* The fixed seed every process used before seeds were drawn per process.
 * Only the collision benchmark uses it, to show what it allowed. */
#define SPECTATOR__HASH_FIXED_SEED 0x243f6a8885a308d3ULL

/* The seed; 0 until the first hash draws it. */
extern _Atomic uint64_t spectator__hash_seed_value;
/* Draw the seed (getrandom(2), else clocks, the process id and addresses)
 * unless another thread did, and return the one every thread uses. */
uint64_t spectator__hash_seed_init(void);

/* The process's seed, never 0. */
static inline uint64_t spectator__hash_seed(void) {
  uint64_t s = atomic_load_explicit(&spectator__hash_seed_value, memory_order_relaxed);
  return SPECTATOR__LIKELY(s != 0) ? s : spectator__hash_seed_init();
}

/* Benchmarks only: make seed (0: a new one from the OS) the seed of every
 * hash from now on. Ids, registries and encodings made before must not be
 * used afterwards: their hashes were computed with the old seed. */
void spectator__hash_set_seed(uint64_t seed);

/* The high and low halves of a * b, xored. */
static inline uint64_t spectator__hash_fold(uint64_t a, uint64_t b) {
  unsigned __int128 m = (unsigned __int128)a * b;
  return (uint64_t)m ^ (uint64_t)(m >> 64);
}

/* The unfinished hash of n bytes at s, from seed (spectator__hash_seed()). */
static inline uint64_t spectator__hash_bytes(uint64_t seed, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  uint64_t h = seed ^ (n * SPECTATOR__HASH_K2);
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    h = spectator__hash_fold(h ^ v, SPECTATOR__HASH_K1);
  }
  if (n >= 4) {
    uint32_t a, b;
    memcpy(&a, p, 4);
    memcpy(&b, p + n - 4, 4);
    h = spectator__hash_fold(h ^ ((uint64_t)a << 32 | b), SPECTATOR__HASH_K1);
  } else if (n) {
    h = spectator__hash_fold(h ^ ((uint64_t)p[0] << 16 | (uint64_t)p[n / 2] << 8 | p[n - 1]),
                             SPECTATOR__HASH_K1);
  }
  return h;
}

#endif
