/*
 * Percentile timers and percentile distribution summaries.
 *
 * Each is a timer (or summary) plus 276 bucket counters laid out inline, one
 * per Spectator percentile bucket. A record updates the timer/summary state,
 * clamps the value to the meter's [min, max] range and increments one bucket:
 * one more relaxed fetch_add. Snapshots report the non-zero buckets as counters
 * tagged statistic=percentile and percentile=T%04X (D%04X for summaries), from
 * which Atlas estimates percentiles across a whole cluster.
 */
#include "internal.h"

static inline int64_t clamp64(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

void spectator_percentile_timer_record_ns(spectator_percentile_timer_t *t, int64_t nanos) {
  if (SPECTATOR__UNLIKELY(!t) || nanos < 0) return;
  spectator__timer_state_record(&t->st, nanos);
  size_t i = spectator__pct_index_of(clamp64(nanos, t->min_ns, t->max_ns));
  atomic_fetch_add_explicit(&t->buckets[i], 1, memory_order_relaxed);
}

void spectator_percentile_timer_record(spectator_percentile_timer_t *t, double seconds) {
  if (SPECTATOR__UNLIKELY(!t)) return;
  spectator_percentile_timer_record_ns(t, spectator__seconds_to_ns(seconds));
}

static int64_t amount_to_i64(double amount) {
  return amount >= 9223372036854775807.0 ? INT64_MAX : (int64_t)amount;
}

void spectator_percentile_dist_summary_record(spectator_percentile_dist_summary_t *d,
                                              double amount) {
  if (SPECTATOR__UNLIKELY(!d) || !(amount >= 0 && amount <= 1.7976931348623157e308)) return;
  spectator__summary_state_record(&d->st, amount);
  size_t i = spectator__pct_index_of(clamp64(amount_to_i64(amount), d->min, d->max));
  atomic_fetch_add_explicit(&d->buckets[i], 1, memory_order_relaxed);
}

static double estimate(const _Atomic uint64_t *buckets, double pct) {
  uint64_t counts[SPECTATOR__PCT_LENGTH];
  for (size_t i = 0; i < SPECTATOR__PCT_LENGTH; i++)
    counts[i] = atomic_load_explicit(&buckets[i], memory_order_relaxed);
  return spectator__pct_percentile(counts, pct);
}

uint64_t spectator_percentile_timer_count(const spectator_percentile_timer_t *t) {
  if (!t || spectator__is_noop(t)) return 0;
  return spectator__timer_state_count(&t->st);
}

double spectator_percentile_timer_total_seconds(const spectator_percentile_timer_t *t) {
  if (!t || spectator__is_noop(t)) return 0;
  return (double)spectator__timer_state_total_ns(&t->st) / 1e9;
}

double spectator_percentile_timer_percentile(const spectator_percentile_timer_t *t, double pct) {
  if (!t || spectator__is_noop(t)) return 0;
  return estimate(t->buckets, pct) / 1e9;
}

uint64_t spectator_percentile_dist_summary_count(const spectator_percentile_dist_summary_t *d) {
  if (!d || spectator__is_noop(d)) return 0;
  return atomic_load_explicit(&d->st.count, memory_order_relaxed);
}

double spectator_percentile_dist_summary_total(const spectator_percentile_dist_summary_t *d) {
  if (!d || spectator__is_noop(d)) return 0;
  return spectator__dsum_peek(&d->st.total);
}

double spectator_percentile_dist_summary_percentile(const spectator_percentile_dist_summary_t *d,
                                                    double pct) {
  if (!d || spectator__is_noop(d)) return 0;
  return estimate(d->buckets, pct);
}

static bool measure_buckets(_Atomic uint64_t *buckets, spectator__meter_t *hdr, char prefix,
                            spectator__snap_ctx_t *ctx) {
  bool any = false;
  for (size_t i = 0; i < SPECTATOR__PCT_LENGTH; i++) {
    if (atomic_load_explicit(&buckets[i], memory_order_relaxed) == 0) continue;
    uint64_t n = atomic_exchange_explicit(&buckets[i], 0, memory_order_relaxed);
    if (!n) continue;
    spectator__records_add(ctx->out, hdr->id, SPECTATOR__STAT_PERCENTILE,
                           (unsigned)(i + 1) | (prefix == 'D' ? SPECTATOR__PCT_SUMMARY : 0),
                           SPECTATOR_OP_ADD, (double)n);
    any = true;
  }
  return any;
}

bool spectator__percentile_timer_measure(struct spectator_percentile_timer *t,
                                         spectator__snap_ctx_t *ctx) {
  bool active;
  spectator__timer_state_measure(&t->st, &t->hdr, ctx, &active);
  return measure_buckets(t->buckets, &t->hdr, 'T', ctx) || active;
}

bool spectator__percentile_dist_summary_measure(struct spectator_percentile_dist_summary *d,
                                                spectator__snap_ctx_t *ctx) {
  bool active;
  spectator__summary_state_measure(&d->st, &d->hdr, ctx, &active);
  return measure_buckets(d->buckets, &d->hdr, 'D', ctx) || active;
}

size_t spectator_percentile_buckets_index_of(int64_t v) { return spectator__pct_index_of(v); }

int64_t spectator_percentile_buckets_get(size_t i) { return spectator__pct_bucket(i); }
