/*
 * Private: stripes (stripes.c), the LongAdder-style spreading of contended
 * meters.
 *
 * A counter or timer starts with one cell of accumulators inside the meter,
 * updated with a compare-and-swap. The first CAS that fails shows that another
 * thread wrote in between: the meter is contended and switches to stripes,
 * an array of cache-line-sized cells indexed by a per-thread probe, each
 * updated with its own atomics, so threads stop sharing one cache line. The
 * recording thread never allocates: stripe blocks are preallocated by the
 * registry (lookup-miss and snapshot paths) in a pool and claimed with one
 * atomic index bump. When the pool is empty the meter keeps using its own
 * cell and flags the pool, which the registry refills at the next snapshot
 * or lookup miss, and the snapshot hands the meter its stripes. Snapshots
 * exchange every cell with zero, so nothing is lost or counted twice; meters
 * that never see contention stay small.
 *
 * What a cell holds is the meter's business (accum.h): here a cell is one
 * cache line of zeroed memory.
 */
#ifndef SPECTATOR_STRIPES_H
#define SPECTATOR_STRIPES_H

#include <stdatomic.h>

#include "common.h"

/* One stripe: a cache line, zeroed when its block is made. */
typedef struct {
  unsigned char line[SPECTATOR__CACHELINE];
} spectator__cell_t SPECTATOR__ALIGNED;

/* A meter's stripes word: 0 while uncontended; SPECTATOR__STRIPES_PENDING once
 * contended while no stripes are available yet; else the address of its cells
 * (64-byte aligned) with log2(number of cells) in the low 6 bits. */
#define SPECTATOR__STRIPES_PENDING ((uintptr_t)1)
#define SPECTATOR__STRIPES_SHIFT_MASK ((uintptr_t)(SPECTATOR__CACHELINE - 1))

/* Preallocated stripe blocks (1 << shift cells each), chained for freeing. */
typedef struct spectator__stripe_pool {
  struct spectator__stripe_pool *prev;
  _Atomic size_t next; /* blocks claimed so far (may run past nblocks) */
  size_t nblocks;
  spectator__cell_t *cells; /* nblocks << shift cells */
} spectator__stripe_pool_t;

/* A registry's source of stripes. Zeroed memory is a valid empty source. */
typedef struct spectator__stripe_src {
  _Atomic(spectator__stripe_pool_t *) pool;
  _Atomic unsigned shift;  /* log2(cells per block); set before the first pool is published */
  _Atomic uint32_t wanted; /* a meter found the pool empty: refill */
} spectator__stripe_src_t;

/* Per-thread probe choosing a cell; 0 until the thread first needs one. */
extern _Thread_local uint32_t spectator__probe __attribute__((tls_model("initial-exec")));
uint32_t spectator__probe_init(void);
/* The calling thread collided with another in a cell: move it elsewhere. */
void spectator__probe_collide(void);

/* Slow path, called once by the thread whose CAS found a meter contended (and
 * by snapshots for meters still pending): give the meter a stripe block from
 * the pool without allocating. Returns the new stripes word (PENDING when the
 * pool is empty; the registry refills it later). src NULL (no-op meters):
 * the meter stays PENDING for good. */
uintptr_t spectator__stripes_claim(spectator__stripe_src_t *src, _Atomic uintptr_t *word);
/* Make sure the pool has blocks left: allocates a new pool when there is none
 * yet, when force is set and the current one is used up, or when a meter
 * asked (wanted). Lookup-miss and snapshot paths only; 0 or SPECTATOR_ENOMEM. */
int spectator__stripes_refill(spectator__stripe_src_t *src, bool force);
void spectator__stripes_free(spectator__stripe_src_t *src);

static inline size_t spectator__stripes_count(uintptr_t w) {
  return w > SPECTATOR__STRIPES_PENDING ? (size_t)1 << (w & SPECTATOR__STRIPES_SHIFT_MASK) : 0;
}
static inline spectator__cell_t *spectator__stripes_cells(uintptr_t w) {
  return (spectator__cell_t *)(w & ~SPECTATOR__STRIPES_SHIFT_MASK);
}
/* The calling thread's cell, or NULL while the meter is pending. */
static inline spectator__cell_t *spectator__stripe_pick(uintptr_t w) {
  if (w == SPECTATOR__STRIPES_PENDING) return NULL;
  uint32_t p = spectator__probe;
  if (SPECTATOR__UNLIKELY(!p)) p = spectator__probe_init();
  return spectator__stripes_cells(w) +
         (p & (((uintptr_t)1 << (w & SPECTATOR__STRIPES_SHIFT_MASK)) - 1));
}

#endif
