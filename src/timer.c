/*
 * Timers: count, total time, total of squares and max per interval, kept in
 * integer nanoseconds so sums are exact; reported in seconds.
 *
 * A record is three relaxed fetch_adds (count, total, low word of the square)
 * and a relaxed load of the max, which is only CAS'd when it grows. The
 * stopwatch helper lives here too.
 */
#include <math.h>
#include <time.h>

#include "internal.h"

void spectator__timer_state_init(spectator__timer_state_t *st) {
  atomic_init(&st->count, 0);
  atomic_init(&st->total_ns, 0);
  atomic_init(&st->sq_ns.lo, 0);
  atomic_init(&st->sq_ns.hi, 0);
  atomic_init(&st->sq_ns.dbits, 0);
  atomic_init(&st->max_ns, 0);
}

void spectator__timer_state_record(spectator__timer_state_t *st, int64_t nanos) {
  atomic_fetch_add_explicit(&st->count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&st->total_ns, (uint64_t)nanos, memory_order_relaxed);
  spectator__sqsum_add_u64(&st->sq_ns, (uint64_t)nanos);
  int64_t cur = atomic_load_explicit(&st->max_ns, memory_order_relaxed);
  while (nanos > cur && !atomic_compare_exchange_weak_explicit(
                            &st->max_ns, &cur, nanos, memory_order_relaxed, memory_order_relaxed)) {
  }
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
  return atomic_load_explicit(&t->st.count, memory_order_relaxed);
}

double spectator_timer_total_seconds(const spectator_timer_t *t) {
  if (!t || spectator__is_noop(t)) return 0;
  return (double)atomic_load_explicit(&t->st.total_ns, memory_order_relaxed) / 1e9;
}

void spectator__timer_state_measure(spectator__timer_state_t *st, spectator__meter_t *hdr,
                                    spectator__snap_ctx_t *ctx, bool *active) {
  uint64_t count = atomic_exchange_explicit(&st->count, 0, memory_order_relaxed);
  uint64_t total = atomic_exchange_explicit(&st->total_ns, 0, memory_order_relaxed);
  double sq = spectator__sqsum_take(&st->sq_ns);
  int64_t max = atomic_exchange_explicit(&st->max_ns, 0, memory_order_relaxed);
  if (count == 0 && total == 0 && sq == 0 && max == 0) {
    *active = false;
    return;
  }
  /* Four statistics of one id: each sets its own statistic tag (an id's own
   * statistic tag is only kept by single-statistic meters). */
  spectator__records_add(ctx->out, hdr->id, "count", NULL, SPECTATOR_OP_ADD,
                         (double)count);
  spectator__records_add(ctx->out, hdr->id, "totalTime", NULL, SPECTATOR_OP_ADD,
                         (double)total / 1e9);
  spectator__records_add(ctx->out, hdr->id, "totalOfSquares", NULL,
                         SPECTATOR_OP_ADD, sq / 1e18);
  spectator__records_add(ctx->out, hdr->id, "max", NULL, SPECTATOR_OP_MAX,
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
  int64_t d = spectator__monotonic_ns() - sw.start_ns;
  return d < 0 ? 0 : d;
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
