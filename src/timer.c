/*
 * Timers: count, total time, total of squares and max per interval, kept in
 * integer nanoseconds so sums are exact; reported in seconds.
 *
 * A record is a CAS on the count (which, when it fails, shows that another
 * thread is recording on the same timer: from then on the timer records into
 * stripes, as counters do; see counter.c), two relaxed fetch_adds (total, low
 * word of the square) and a relaxed load of the max, which is only CAS'd when
 * it grows. The stopwatch helper lives here too.
 */
#include <math.h>
#include <time.h>

#include "internal.h"

/* Add to an interval sum, saturating at UINT64_MAX instead of wrapping around
 * to a small value. Only absurd durations get there (2^64 ns is 584 years in
 * one interval; three saturated INT64_MAX records do it), so the common path
 * stays one fetch_add and stays exact. (A snapshot that lands between the
 * wrapping add and the store sees the wrapped value; the next one sees the
 * saturated value: acceptable for values this absurd.) */
static inline void add_saturating(_Atomic uint64_t *sum, uint64_t v) {
  uint64_t old = atomic_fetch_add_explicit(sum, v, memory_order_relaxed);
  if (SPECTATOR__UNLIKELY((uint64_t)(old + v) < old))
    atomic_store_explicit(sum, UINT64_MAX, memory_order_relaxed);
}

static inline uint64_t sum_saturating(uint64_t a, uint64_t b) {
  return a + b < a ? UINT64_MAX : a + b;
}

/* spectator__sqsum_add_u64 with a saturating high word: the square of a
 * duration near INT64_MAX is ~2^126, so four of them would wrap it. */
static inline void sqsum_add_saturating(spectator__sqsum_t *s, uint64_t x) {
  unsigned __int128 sq = (unsigned __int128)x * x;
  uint64_t lo = (uint64_t)sq, hi = (uint64_t)(sq >> 64);
  uint64_t old = atomic_fetch_add_explicit(&s->lo, lo, memory_order_relaxed);
  if ((uint64_t)(old + lo) < old) hi++; /* hi < 2^62 here: no overflow */
  if (hi) add_saturating(&s->hi, hi);
}

static inline void cell_record(spectator__timer_cell_t *c, int64_t nanos) {
  add_saturating(&c->total_ns, (uint64_t)nanos);
  sqsum_add_saturating(&c->sq_ns, (uint64_t)nanos);
  int64_t cur = atomic_load_explicit(&c->max_ns, memory_order_relaxed);
  while (nanos > cur && !atomic_compare_exchange_weak_explicit(
                            &c->max_ns, &cur, nanos, memory_order_relaxed, memory_order_relaxed)) {
  }
}

void spectator__timer_state_record(spectator__timer_state_t *st, int64_t nanos) {
  uintptr_t w = atomic_load_explicit(&st->stripes, memory_order_acquire);
  spectator__timer_cell_t *c = &st->base;
  if (SPECTATOR__LIKELY(w == 0)) {
    uint64_t cur = atomic_load_explicit(&c->count, memory_order_relaxed);
    if (SPECTATOR__LIKELY(atomic_compare_exchange_strong_explicit(
            &c->count, &cur, cur + 1, memory_order_relaxed, memory_order_relaxed))) {
      cell_record(c, nanos);
      return;
    }
    w = spectator__stripes_claim(st->src, &st->stripes);
  }
  spectator__cell_t *cell = spectator__stripe_pick(w);
  if (cell) {
    c = &cell->timer;
    uint64_t cur = atomic_load_explicit(&c->count, memory_order_relaxed);
    if (SPECTATOR__UNLIKELY(!atomic_compare_exchange_strong_explicit(
            &c->count, &cur, cur + 1, memory_order_relaxed, memory_order_relaxed))) {
      spectator__probe_collide(); /* another thread in this cell: move */
      atomic_fetch_add_explicit(&c->count, 1, memory_order_relaxed);
    }
  } else {
    atomic_fetch_add_explicit(&c->count, 1, memory_order_relaxed);
  }
  cell_record(c, nanos);
}

uint64_t spectator__timer_state_count(const spectator__timer_state_t *st) {
  uint64_t n = atomic_load_explicit(&st->base.count, memory_order_relaxed);
  uintptr_t w = atomic_load_explicit(&st->stripes, memory_order_acquire);
  spectator__cell_t *cells = spectator__stripes_cells(w);
  for (size_t i = 0, k = spectator__stripes_count(w); i < k; i++)
    n += atomic_load_explicit(&cells[i].timer.count, memory_order_relaxed);
  return n;
}

uint64_t spectator__timer_state_total_ns(const spectator__timer_state_t *st) {
  uint64_t n = atomic_load_explicit(&st->base.total_ns, memory_order_relaxed);
  uintptr_t w = atomic_load_explicit(&st->stripes, memory_order_acquire);
  spectator__cell_t *cells = spectator__stripes_cells(w);
  for (size_t i = 0, k = spectator__stripes_count(w); i < k; i++)
    n += atomic_load_explicit(&cells[i].timer.total_ns, memory_order_relaxed);
  return n;
}

int64_t spectator__seconds_to_ns(double seconds) {
  if (!(seconds >= 0) || seconds > 1.7976931348623157e308) return -1; /* NaN, <0, inf */
  double ns = seconds * 1e9;
  if (ns >= 9223372036854775807.0) return INT64_MAX;
  return (int64_t)ns;
}

void spectator_timer_record_ns(spectator_timer_t *t, int64_t nanos) {
  if (SPECTATOR__UNLIKELY(!t) || nanos < 0) return;
  spectator__timer_state_record(&t->st, nanos);
}

void spectator_timer_record(spectator_timer_t *t, double seconds) {
  if (SPECTATOR__UNLIKELY(!t)) return;
  int64_t ns = spectator__seconds_to_ns(seconds);
  if (ns >= 0) spectator__timer_state_record(&t->st, ns);
}

uint64_t spectator_timer_count(const spectator_timer_t *t) {
  if (!t || spectator__is_noop(t)) return 0;
  return spectator__timer_state_count(&t->st);
}

double spectator_timer_total_seconds(const spectator_timer_t *t) {
  if (!t || spectator__is_noop(t)) return 0;
  return (double)spectator__timer_state_total_ns(&t->st) / 1e9;
}

void spectator__timer_state_measure(spectator__timer_state_t *st, spectator__meter_t *hdr,
                                    spectator__snap_ctx_t *ctx, bool *active) {
  uintptr_t w = atomic_load_explicit(&st->stripes, memory_order_acquire);
  if (w == SPECTATOR__STRIPES_PENDING && st->src) /* the pool may have been refilled */
    w = spectator__stripes_claim(st->src, &st->stripes);
  uint64_t count = 0, total = 0;
  double sq = 0;
  int64_t max = 0;
  spectator__cell_t *cells = spectator__stripes_cells(w);
  for (size_t i = 0, n = spectator__stripes_count(w); i <= n; i++) {
    spectator__timer_cell_t *c = i < n ? &cells[i].timer : &st->base;
    count += atomic_exchange_explicit(&c->count, 0, memory_order_relaxed);
    total = sum_saturating(total, atomic_exchange_explicit(&c->total_ns, 0, memory_order_relaxed));
    sq += spectator__sqsum_take(&c->sq_ns);
    int64_t m = atomic_exchange_explicit(&c->max_ns, 0, memory_order_relaxed);
    if (m > max) max = m;
  }
  if (count == 0 && total == 0 && sq == 0 && max == 0) {
    *active = false;
    return;
  }
  /* Four statistics of one id: each sets its own statistic tag (an id's own
   * statistic tag is only kept by single-statistic meters). */
  spectator__records_add(ctx->out, hdr->id, SPECTATOR__STAT_COUNT, 0, SPECTATOR_OP_ADD,
                         (double)count);
  spectator__records_add(ctx->out, hdr->id, SPECTATOR__STAT_TOTAL_TIME, 0, SPECTATOR_OP_ADD,
                         (double)total / 1e9);
  spectator__records_add(ctx->out, hdr->id, SPECTATOR__STAT_TOTAL_OF_SQUARES, 0, SPECTATOR_OP_ADD,
                         sq / 1e18);
  spectator__records_add(ctx->out, hdr->id, SPECTATOR__STAT_MAX, 0, SPECTATOR_OP_MAX,
                         (double)max / 1e9);
  *active = true;
}

bool spectator__timer_measure(struct spectator_timer *t, spectator__snap_ctx_t *ctx) {
  bool active;
  spectator__timer_state_measure(&t->st, &t->hdr, ctx, &active);
  return active;
}

/* Stopwatch */

int64_t spectator__monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * SPECTATOR__NS_PER_S + ts.tv_nsec;
}

spectator_stopwatch_t spectator_stopwatch_start(void) {
  spectator_stopwatch_t sw = {spectator__monotonic_ns()};
  return sw;
}

int64_t spectator_stopwatch_elapsed_ns(spectator_stopwatch_t sw) {
  /* A stopwatch is a plain value: a garbage start must not overflow. */
  int64_t now = spectator__monotonic_ns();
  if (sw.start_ns >= now) return 0;
  uint64_t d = (uint64_t)now - (uint64_t)sw.start_ns;
  return d > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)d;
}

int64_t spectator_stopwatch_record(spectator_stopwatch_t sw, spectator_timer_t *t) {
  int64_t d = spectator_stopwatch_elapsed_ns(sw);
  spectator_timer_record_ns(t, d);
  return d;
}

int64_t spectator_stopwatch_record_percentile(spectator_stopwatch_t sw,
                                              spectator_percentile_timer_t *t) {
  int64_t d = spectator_stopwatch_elapsed_ns(sw);
  spectator_percentile_timer_record_ns(t, d);
  return d;
}
