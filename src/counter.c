/*
 * Counters: the sum of positive amounts per interval; and the stripes that
 * counters and timers spread to when threads contend on them.
 *
 * DESIGN
 * An uncontended counter is one cache line: increments and whole amounts below
 * 2^32 add to an integer (`ints`), other amounts to a double (`dbits`), each
 * with one load and one compare-and-swap, which costs what a fetch_add does
 * when the line is in this core's cache, and tells, when it fails, that
 * another thread wrote in between. From the first failure on the counter is
 * contended and records into stripes: 1 << shift cache-line cells chosen by a
 * per-thread probe, so two threads no longer bounce one line between their
 * caches (internal.h has the stripes word and pool). Inside a cell the update
 * is again a CAS; a failure there means two threads share the cell, and the
 * thread moves to another one (as Java's LongAdder rehashes its probe).
 *
 * The recording path never allocates, locks, reads a clock or makes a system
 * call: stripe blocks come from the registry's pool, claimed with one atomic
 * index bump. A snapshot exchanges the own cell and every stripe with zero, so
 * each update lands in exactly one interval whatever the interleaving.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* ------------------------------------------------------------------------ */
/* Stripes                                                                   */
/* ------------------------------------------------------------------------ */

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

/* ------------------------------------------------------------------------ */
/* Accumulators                                                              */
/* ------------------------------------------------------------------------ */

double spectator__dsum_peek(const spectator__dsum_t *s) {
  return (double)atomic_load_explicit(&s->ints, memory_order_relaxed) +
         spectator__b2d(atomic_load_explicit(&s->dbits, memory_order_relaxed));
}

double spectator__dsum_take(spectator__dsum_t *s) {
  uint64_t i = atomic_exchange_explicit(&s->ints, 0, memory_order_relaxed);
  uint64_t d = atomic_exchange_explicit(&s->dbits, 0, memory_order_relaxed);
  return (double)i + spectator__b2d(d);
}

double spectator__sqsum_take(spectator__sqsum_t *s) {
  uint64_t lo = atomic_exchange_explicit(&s->lo, 0, memory_order_relaxed);
  uint64_t hi = atomic_exchange_explicit(&s->hi, 0, memory_order_relaxed);
  uint64_t d = atomic_exchange_explicit(&s->dbits, 0, memory_order_relaxed);
  return (double)hi * 18446744073709551616.0 + (double)lo + spectator__b2d(d);
}

/* ------------------------------------------------------------------------ */
/* Counters                                                                  */
/* ------------------------------------------------------------------------ */

/* Add to a stripe cell: a CAS, and on a collision with another thread in the
 * same cell, a move of this thread's probe and an unconditional add. */
static inline void cell_add_u64(_Atomic uint64_t *p, uint64_t v) {
  uint64_t cur = atomic_load_explicit(p, memory_order_relaxed);
  if (SPECTATOR__UNLIKELY(!atomic_compare_exchange_strong_explicit(
          p, &cur, cur + v, memory_order_relaxed, memory_order_relaxed))) {
    spectator__probe_collide();
    atomic_fetch_add_explicit(p, v, memory_order_relaxed);
  }
}

static inline void cell_add_double(_Atomic uint64_t *p, double v) {
  uint64_t cur = atomic_load_explicit(p, memory_order_relaxed);
  if (SPECTATOR__UNLIKELY(
          !atomic_compare_exchange_strong_explicit(p, &cur, spectator__d2b(spectator__b2d(cur) + v),
                                                   memory_order_relaxed, memory_order_relaxed))) {
    spectator__probe_collide();
    spectator__atomic_add_double(p, v);
  }
}

static inline bool is_small_whole(double v) {
  return v < SPECTATOR__TWO_POW_32 && v == (double)(uint32_t)v;
}

/* The contended path: the stripe cell, or the own cell while pending. */
static void add_contended(spectator_counter_t *c, uintptr_t w, double amount, bool whole) {
  spectator__cell_t *cell = spectator__stripe_pick(w);
  spectator__dsum_t *s = cell ? &cell->sum : &c->sum;
  if (whole) {
    if (cell)
      cell_add_u64(&s->ints, (uint64_t)(uint32_t)amount);
    else
      atomic_fetch_add_explicit(&s->ints, (uint64_t)(uint32_t)amount, memory_order_relaxed);
  } else {
    if (cell)
      cell_add_double(&s->dbits, amount);
    else
      spectator__atomic_add_double(&s->dbits, amount);
  }
}

void spectator_counter_increment(spectator_counter_t *c) {
  if (SPECTATOR__UNLIKELY(!c)) return;
  uintptr_t w = atomic_load_explicit(&c->stripes, memory_order_acquire);
  if (SPECTATOR__LIKELY(w == 0)) {
    uint64_t cur = atomic_load_explicit(&c->sum.ints, memory_order_relaxed);
    if (SPECTATOR__LIKELY(atomic_compare_exchange_strong_explicit(
            &c->sum.ints, &cur, cur + 1, memory_order_relaxed, memory_order_relaxed)))
      return;
    w = spectator__stripes_claim(c->src, &c->stripes);
  }
  add_contended(c, w, 1.0, true);
}

void spectator_counter_add(spectator_counter_t *c, double amount) {
  if (SPECTATOR__UNLIKELY(!c)) return;
  /* NaN fails the first test, +inf the second. */
  if (SPECTATOR__UNLIKELY(!(amount > 0 && amount <= 1.7976931348623157e308))) return;
  bool whole = is_small_whole(amount);
  uintptr_t w = atomic_load_explicit(&c->stripes, memory_order_acquire);
  if (SPECTATOR__LIKELY(w == 0)) {
    if (whole) {
      uint64_t cur = atomic_load_explicit(&c->sum.ints, memory_order_relaxed);
      if (SPECTATOR__LIKELY(atomic_compare_exchange_strong_explicit(
              &c->sum.ints, &cur, cur + (uint64_t)(uint32_t)amount, memory_order_relaxed,
              memory_order_relaxed)))
        return;
    } else {
      uint64_t cur = atomic_load_explicit(&c->sum.dbits, memory_order_relaxed);
      if (SPECTATOR__LIKELY(atomic_compare_exchange_strong_explicit(
              &c->sum.dbits, &cur, spectator__d2b(spectator__b2d(cur) + amount),
              memory_order_relaxed, memory_order_relaxed)))
        return;
    }
    w = spectator__stripes_claim(c->src, &c->stripes);
  }
  add_contended(c, w, amount, whole);
}

double spectator_counter_count(const spectator_counter_t *c) {
  if (!c || spectator__is_noop(c)) return 0;
  double v = spectator__dsum_peek(&c->sum);
  uintptr_t w = atomic_load_explicit(&c->stripes, memory_order_acquire);
  spectator__cell_t *cells = spectator__stripes_cells(w);
  for (size_t i = 0, n = spectator__stripes_count(w); i < n; i++)
    v += spectator__dsum_peek(&cells[i].sum);
  return v;
}

bool spectator__counter_measure(struct spectator_counter *c, spectator__snap_ctx_t *ctx) {
  uintptr_t w = atomic_load_explicit(&c->stripes, memory_order_acquire);
  if (w == SPECTATOR__STRIPES_PENDING && c->src) /* the pool may have been refilled */
    w = spectator__stripes_claim(c->src, &c->stripes);
  double v = spectator__dsum_take(&c->sum);
  spectator__cell_t *cells = spectator__stripes_cells(w);
  for (size_t i = 0, n = spectator__stripes_count(w); i < n; i++)
    v += spectator__dsum_take(&cells[i].sum);
  if (v == 0) return false;
  spectator__records_add(ctx->out, c->hdr.id,
                         c->hdr.has_statistic ? SPECTATOR__STAT_NONE : SPECTATOR__STAT_COUNT, 0,
                         SPECTATOR_OP_ADD, v);
  return true;
}
