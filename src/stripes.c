/*
 * Stripes: the per-thread probe, the registry's pool of preallocated stripe
 * blocks, and how a contended meter claims one (stripes.h has the design).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stripes.h"

_Thread_local uint32_t spectator__probe __attribute__((tls_model("initial-exec")));
static _Atomic uint32_t next_probe;

uint32_t spectator__probe_init(void) {
  /* Consecutive threads get consecutive cells; never 0. */
  uint32_t p = atomic_fetch_add_explicit(&next_probe, 1, memory_order_relaxed) + 1;
  if (!p) p = 1;
  spectator__probe = p;
  return p;
}

void spectator__probe_collide(void) {
  uint32_t p = spectator__probe; /* xorshift32: nonzero stays nonzero */
  if (!p) p = spectator__probe_init();
  p ^= p << 13;
  p ^= p >> 17;
  p ^= p << 5;
  spectator__probe = p;
}

/* Blocks in the first pool and the most in one refill. */
#define POOL_FIRST_BLOCKS 4
#define POOL_MAX_BLOCKS 64

/* Cells per block: twice the CPUs, rounded up to a power of two, 4 to 64, so
 * that threads running at the same time seldom share a cell. */
static unsigned stripe_shift(void) {
  long ncpu = sysconf(_SC_NPROCESSORS_CONF);
  unsigned shift = 2;
  while (shift < 6 && ((long)1 << shift) < 2 * ncpu) shift++;
  return shift;
}

int spectator__stripes_refill(spectator__stripe_src_t *src, bool force) {
  spectator__stripe_pool_t *cur = atomic_load_explicit(&src->pool, memory_order_acquire);
  bool wanted = atomic_load_explicit(&src->wanted, memory_order_relaxed) != 0;
  if (cur && !wanted &&
      !(force && atomic_load_explicit(&cur->next, memory_order_relaxed) >= cur->nblocks))
    return 0;
  if (!cur) atomic_store_explicit(&src->shift, stripe_shift(), memory_order_relaxed);
  unsigned shift = atomic_load_explicit(&src->shift, memory_order_relaxed);
  size_t nblocks = cur ? 2 * cur->nblocks : POOL_FIRST_BLOCKS;
  if (nblocks > POOL_MAX_BLOCKS) nblocks = POOL_MAX_BLOCKS;
  spectator__stripe_pool_t *pool = calloc(1, sizeof(*pool));
  void *cells = NULL;
  size_t bytes = (nblocks << shift) * sizeof(spectator__cell_t);
  if (!pool || posix_memalign(&cells, SPECTATOR__CACHELINE, bytes) != 0) {
    free(pool);
    return SPECTATOR_ENOMEM;
  }
  memset(cells, 0, bytes);
  pool->cells = cells;
  pool->nblocks = nblocks;
  atomic_init(&pool->next, 0);
  /* Publish; a concurrent refill (lookup miss vs snapshot) may win: then ours
   * is not needed. */
  pool->prev = cur;
  if (!atomic_compare_exchange_strong_explicit(&src->pool, &cur, pool, memory_order_acq_rel,
                                               memory_order_acquire)) {
    free(cells);
    free(pool);
    return 0;
  }
  atomic_store_explicit(&src->wanted, 0, memory_order_relaxed);
  return 0;
}

void spectator__stripes_free(spectator__stripe_src_t *src) {
  spectator__stripe_pool_t *p = atomic_load(&src->pool);
  while (p) {
    spectator__stripe_pool_t *prev = p->prev;
    free(p->cells);
    free(p);
    p = prev;
  }
  atomic_store(&src->pool, NULL);
}

uintptr_t spectator__stripes_claim(spectator__stripe_src_t *src, _Atomic uintptr_t *word) {
  uintptr_t w = atomic_load_explicit(word, memory_order_acquire);
  if (w == 0) {
    /* Mark it pending first, so that only one thread takes a block. */
    if (!atomic_compare_exchange_strong_explicit(word, &w, SPECTATOR__STRIPES_PENDING,
                                                 memory_order_acquire, memory_order_acquire))
      return w;
    w = SPECTATOR__STRIPES_PENDING;
  }
  if (w != SPECTATOR__STRIPES_PENDING || !src) return w;
  spectator__stripe_pool_t *pool = atomic_load_explicit(&src->pool, memory_order_acquire);
  size_t i = pool ? atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed) : 0;
  if (!pool || i >= pool->nblocks) {
    atomic_store_explicit(&src->wanted, 1, memory_order_relaxed);
    return SPECTATOR__STRIPES_PENDING;
  }
  unsigned shift = atomic_load_explicit(&src->shift, memory_order_relaxed);
  uintptr_t s = (uintptr_t)(pool->cells + (i << shift)) | shift;
  /* The recording thread and a snapshot may both claim for a pending meter:
   * the loser's block stays unused in the pool (freed with the registry). */
  if (!atomic_compare_exchange_strong_explicit(word, &w, s, memory_order_release,
                                               memory_order_acquire))
    return w;
  return s;
}
