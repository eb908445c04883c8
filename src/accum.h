/*
 * Private: accumulators (accum.c), the interval state meters are built from.
 *
 * - dsum: a double sum that keeps small whole amounts exact.
 * - sqsum: an exact 128-bit sum of squares of integers.
 * - timer state: count, total, total of squares and max in integer
 *   nanoseconds, in the meter's own cell or, once contended, in stripes
 *   (stripes.h). Timers and percentile timers are made of it.
 * - summary state: the same four statistics of non-negative amounts in base
 *   units. Distribution summaries and percentile summaries are made of it.
 *
 * The record functions are inline: they are the recording hot path (no lock,
 * no allocation, no clock, no system call). The measure functions report the
 * interval into records and reset it; they return true when there was
 * activity.
 */
#ifndef SPECTATOR_ACCUM_H
#define SPECTATOR_ACCUM_H

#include <stdatomic.h>

#include "common.h"
#include "percentile_buckets.h"
#include "records.h"
#include "stripes.h"

/* ---- dsum and sqsum ---- */

/* A double accumulator that keeps small whole amounts exact: amounts that are
 * integers below 2^32 are added to `ints` with one fetch_add, anything else to
 * `dbits` (a double) with a CAS loop. The interval value is ints + dbits. */
typedef struct {
  _Atomic uint64_t ints;
  _Atomic uint64_t dbits;
} spectator__dsum_t;

/* An exact 128-bit accumulator for sums of squares of integers below 2^64:
 * lo and hi are added with fetch_add and the carry is propagated by the writer
 * that wraps lo, so lo + 2^64 * hi is exact however writes interleave with a
 * snapshot. Non-integer squares go to dbits. */
typedef struct {
  _Atomic uint64_t lo;
  _Atomic uint64_t hi;
  _Atomic uint64_t dbits;
} spectator__sqsum_t;

static inline bool spectator__is_small_whole(double v) {
  return v < SPECTATOR__TWO_POW_32 && v == (double)(uint32_t)v;
}

static inline void spectator__atomic_add_double(_Atomic uint64_t *bits, double v) {
  uint64_t cur = atomic_load_explicit(bits, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(bits, &cur, spectator__d2b(spectator__b2d(cur) + v),
                                                memory_order_relaxed, memory_order_relaxed)) {
  }
}

static inline void spectator__sqsum_add_u64(spectator__sqsum_t *s, uint64_t x) {
  unsigned __int128 sq = (unsigned __int128)x * x;
  uint64_t lo = (uint64_t)sq, hi = (uint64_t)(sq >> 64);
  uint64_t old = atomic_fetch_add_explicit(&s->lo, lo, memory_order_relaxed);
  if ((uint64_t)(old + lo) < old) hi++;
  if (hi) atomic_fetch_add_explicit(&s->hi, hi, memory_order_relaxed);
}

/* Read-and-reset (snapshots) and read (getters). */
double spectator__dsum_take(spectator__dsum_t *s);
double spectator__dsum_peek(const spectator__dsum_t *s);
double spectator__sqsum_take(spectator__sqsum_t *s);

/* ---- timer state ---- */

/* Timer accumulators: integer nanoseconds so sums are exact. */
typedef struct {
  _Atomic uint64_t count;
  _Atomic uint64_t total_ns;
  spectator__sqsum_t sq_ns; /* ns^2 */
  _Atomic int64_t max_ns;
} spectator__timer_cell_t;
_Static_assert(sizeof(spectator__timer_cell_t) <= sizeof(spectator__cell_t),
               "a timer cell fits a stripe");

typedef struct {
  spectator__timer_cell_t base; /* the uncontended cell */
  _Atomic uintptr_t stripes;    /* see SPECTATOR__STRIPES_PENDING */
  spectator__stripe_src_t *src; /* the registry's; NULL for no-op meters */
  /* The registry's sample rings when it writes spectatord's lines: each
   * duration goes there instead (samples.h); NULL otherwise. Set at init. */
  struct spectator__samples *samples;
} spectator__timer_state_t;

static inline spectator__timer_cell_t *spectator__timer_cell(spectator__cell_t *c) {
  return (spectator__timer_cell_t *)(void *)c;
}

/* Add to an interval sum, saturating at UINT64_MAX instead of wrapping around
 * to a small value. Only absurd durations get there (2^64 ns is 584 years in
 * one interval; three saturated INT64_MAX records do it), so the common path
 * stays one fetch_add and stays exact. (A snapshot that lands between the
 * wrapping add and the store sees the wrapped value; the next one sees the
 * saturated value: acceptable for values this absurd.) */
static inline void spectator__add_saturating(_Atomic uint64_t *sum, uint64_t v) {
  uint64_t old = atomic_fetch_add_explicit(sum, v, memory_order_relaxed);
  if (SPECTATOR__UNLIKELY((uint64_t)(old + v) < old))
    atomic_store_explicit(sum, UINT64_MAX, memory_order_relaxed);
}

/* spectator__sqsum_add_u64 with a saturating high word: the square of a
 * duration near INT64_MAX is ~2^126, so four of them would wrap it. */
static inline void spectator__sqsum_add_saturating(spectator__sqsum_t *s, uint64_t x) {
  unsigned __int128 sq = (unsigned __int128)x * x;
  uint64_t lo = (uint64_t)sq, hi = (uint64_t)(sq >> 64);
  uint64_t old = atomic_fetch_add_explicit(&s->lo, lo, memory_order_relaxed);
  if ((uint64_t)(old + lo) < old) hi++; /* hi < 2^62 here: no overflow */
  if (hi) spectator__add_saturating(&s->hi, hi);
}

/* Everything but the count, which the caller has added. A duration that is
 * not positive adds nothing (Spectator Java counts a negative one and adds
 * nothing else; a zero one changes no sum and no max). */
static inline void spectator__timer_cell_record(spectator__timer_cell_t *c, int64_t nanos) {
  if (nanos <= 0) return;
  spectator__add_saturating(&c->total_ns, (uint64_t)nanos);
  spectator__sqsum_add_saturating(&c->sq_ns, (uint64_t)nanos);
  int64_t cur = atomic_load_explicit(&c->max_ns, memory_order_relaxed);
  while (nanos > cur && !atomic_compare_exchange_weak_explicit(
                            &c->max_ns, &cur, nanos, memory_order_relaxed, memory_order_relaxed)) {
  }
}

/* Record a duration of nanos (a negative one is counted, nothing else). A CAS
 * on the count (which, when it fails, shows that another thread is recording
 * on the same timer: from then on the timer records into stripes), two
 * relaxed fetch_adds (total, low word of the square) and a relaxed load of
 * the max, which is only CAS'd when it grows. */
static inline void spectator__timer_state_record(spectator__timer_state_t *st, int64_t nanos) {
  uintptr_t w = atomic_load_explicit(&st->stripes, memory_order_acquire);
  spectator__timer_cell_t *c = &st->base;
  if (SPECTATOR__LIKELY(w == 0)) {
    uint64_t cur = atomic_load_explicit(&c->count, memory_order_relaxed);
    if (SPECTATOR__LIKELY(atomic_compare_exchange_strong_explicit(
            &c->count, &cur, cur + 1, memory_order_relaxed, memory_order_relaxed))) {
      spectator__timer_cell_record(c, nanos);
      return;
    }
    w = spectator__stripes_claim(st->src, &st->stripes);
  }
  spectator__cell_t *cell = spectator__stripe_pick(w);
  if (cell) {
    c = spectator__timer_cell(cell);
    uint64_t cur = atomic_load_explicit(&c->count, memory_order_relaxed);
    if (SPECTATOR__UNLIKELY(!atomic_compare_exchange_strong_explicit(
            &c->count, &cur, cur + 1, memory_order_relaxed, memory_order_relaxed))) {
      spectator__probe_collide(); /* another thread in this cell: move */
      atomic_fetch_add_explicit(&c->count, 1, memory_order_relaxed);
    }
  } else {
    atomic_fetch_add_explicit(&c->count, 1, memory_order_relaxed);
  }
  spectator__timer_cell_record(c, nanos);
}

/* Seconds to nanoseconds in the common case: true, with *ns, for a duration
 * of 0 to 2^63 ns (the two tests fail for NaN too). */
static inline bool spectator__seconds_in_range(double seconds, int64_t *ns) {
  double d = seconds * 1e9;
  if (SPECTATOR__UNLIKELY(!(d >= 0 && d < SPECTATOR__TWO_POW_63))) return false;
  *ns = (int64_t)d;
  return true;
}

/* What spectator__seconds_to_ns returns for a value a timer ignores. */
#define SPECTATOR__NS_IGNORED INT64_MIN

/* Seconds to nanoseconds for a timer, any value (the slow path of
 * spectator__seconds_in_range): saturating at INT64_MAX, -1 for a negative
 * duration (counted, nothing else), SPECTATOR__NS_IGNORED for NaN and
 * infinities. */
static inline int64_t spectator__seconds_to_ns(double seconds) {
  if (SPECTATOR__LIKELY(seconds >= 0)) {
    double ns = seconds * 1e9;
    if (ns < SPECTATOR__TWO_POW_63) return (int64_t)ns;
    return seconds <= DBL_MAX ? INT64_MAX : SPECTATOR__NS_IGNORED;
  }
  return seconds >= -DBL_MAX ? -1 : SPECTATOR__NS_IGNORED; /* NaN fails both tests */
}

/* Attach a new timer state to its registry's stripes, with blocks ready
 * before it contends (best effort, as for counters). */
void spectator__timer_state_init(spectator__timer_state_t *st, spectator__stripe_src_t *src);
uint64_t spectator__timer_state_count(const spectator__timer_state_t *st);
uint64_t spectator__timer_state_total_ns(const spectator__timer_state_t *st);
/* Report count, totalTime, totalOfSquares and max of id and reset them. */
bool spectator__timer_state_measure(spectator__timer_state_t *st, const spectator_id_t *id,
                                    spectator__snap_ctx_t *ctx);

/* ---- summary state ---- */

typedef struct {
  _Atomic uint64_t count;
  spectator__dsum_t total;
  spectator__sqsum_t sq;
  _Atomic uint64_t max_bits;          /* bits of a non-negative double (monotonic as integers) */
  struct spectator__samples *samples; /* as in spectator__timer_state_t */
} spectator__summary_state_t;

/* True for the amounts a summary records: finite (a negative one is counted,
 * nothing else). */
static inline bool spectator__summary_amount_ok(double amount) {
  return amount >= -DBL_MAX && amount <= DBL_MAX;
}

/* Record an amount that passed spectator__summary_amount_ok. Whole amounts
 * below 2^32 (the common case: bytes, items) are summed exactly in integers,
 * squares included; other amounts use double CAS loops. An amount that is not
 * positive is counted and adds nothing else (as a negative duration on a
 * timer; a zero changes no sum and no max). The max is kept as the bit
 * pattern of a non-negative double, which orders like the double itself, so
 * it is an integer compare-and-swap. A square beyond the doubles makes the
 * sum of squares infinite, which the snapshot reports as DBL_MAX. */
static inline void spectator__summary_state_record(spectator__summary_state_t *st, double amount) {
  atomic_fetch_add_explicit(&st->count, 1, memory_order_relaxed);
  if (!(amount > 0)) return;
  if (spectator__is_small_whole(amount)) {
    atomic_fetch_add_explicit(&st->total.ints, (uint64_t)(uint32_t)amount, memory_order_relaxed);
    spectator__sqsum_add_u64(&st->sq, (uint64_t)(uint32_t)amount);
  } else {
    spectator__atomic_add_double(&st->total.dbits, amount);
    spectator__atomic_add_double(&st->sq.dbits, amount * amount);
  }
  uint64_t bits = spectator__d2b(amount);
  uint64_t cur = atomic_load_explicit(&st->max_bits, memory_order_relaxed);
  while (bits > cur && !atomic_compare_exchange_weak_explicit(
                           &st->max_bits, &cur, bits, memory_order_relaxed, memory_order_relaxed)) {
  }
}

/* Report count, totalAmount, totalOfSquares and max of id and reset them. */
bool spectator__summary_state_measure(spectator__summary_state_t *st, const spectator_id_t *id,
                                      spectator__snap_ctx_t *ctx);

/* ---- percentile bucket counts ---- */

/* One counter per percentile bucket (percentile_buckets.h). */
typedef struct {
  _Atomic uint64_t n[SPECTATOR__PCT_LENGTH];
} spectator__pct_counts_t;

/* Count v, clamped to [lo, hi] first: a value below the range, a negative
 * one too, goes to the range's first bucket, so the buckets always sum to the
 * count (Spectator Java). */
static inline void spectator__pct_counts_add(spectator__pct_counts_t *b, int64_t v, int64_t lo,
                                             int64_t hi) {
  v = v < lo ? lo : (v > hi ? hi : v);
  atomic_fetch_add_explicit(&b->n[spectator__pct_index_of(v)], 1, memory_order_relaxed);
}

/* The range [*lo, *hi] of a percentile meter from a lookup's min and max in
 * units of `scale` base units (1e9 for timers in seconds, 1 for summaries):
 * false when min and max are not a range (negative, NaN, min > max); a
 * finite max beyond int64 means no upper clamp. */
bool spectator__pct_range(double min, double max, double scale, int64_t *lo, int64_t *hi);
/* Estimate of the pct-th percentile from the current counts (0 when empty). */
double spectator__pct_counts_estimate(const spectator__pct_counts_t *b, double pct);
/* Report each non-zero bucket of id as statistic=percentile, tag prefix 'T'
 * (or 'D' with summary set), and reset them. */
bool spectator__pct_counts_measure(spectator__pct_counts_t *b, const spectator_id_t *id,
                                   bool summary, spectator__snap_ctx_t *ctx);

#endif
