/*
 * Percentile distribution summaries: a distribution summary plus one counter
 * per Spectator percentile bucket (276, inline). A record updates the summary
 * state, clamps the amount to the meter's [min, max] range (a negative one
 * too) and increments one bucket. Snapshots report the non-zero buckets as counters tagged
 * statistic=percentile and percentile=D%04X.
 */
#include "accum.h"
#include "log.h"
#include "meter.h"
#include "samples.h"

struct spectator_percentile_dist_summary {
  spectator__meter_t hdr;
  spectator__summary_state_t st;
  int64_t min, max;
  spectator__pct_counts_t buckets;
} SPECTATOR__ALIGNED;

/* A line per sample (samples.h), but for a negative amount (spectatord keeps
 * the statistics); out of line, so that the other path pays one compare and
 * branch. */
static __attribute__((noinline)) void sample(spectator_percentile_dist_summary_t *d,
                                             double amount) {
  if (amount >= 0) spectator__samples_record(d->st.samples, d, spectator__d2b(amount));
}

void spectator_percentile_dist_summary_record(spectator_percentile_dist_summary_t *d,
                                              double amount) {
  if (SPECTATOR__UNLIKELY(!d) || !spectator__summary_amount_ok(amount)) return;
  if (SPECTATOR__UNLIKELY(d->st.samples != NULL)) {
    sample(d, amount);
    return;
  }
  spectator__summary_state_record(&d->st, amount);
  /* Not positive: 0, which the range (never below 0) clamps to its start. */
  int64_t v = amount >= SPECTATOR__TWO_POW_63 ? INT64_MAX : amount > 0 ? (int64_t)amount : 0;
  spectator__pct_counts_add(&d->buckets, v, d->min, d->max);
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
  return spectator__pct_counts_estimate(&d->buckets, pct);
}

static spectator__ratelimit_t rl_range;

static void init(spectator__meter_t *m, const spectator__meter_params_t *p,
                 const spectator__meter_env_t *env) {
  spectator_percentile_dist_summary_t *d = (spectator_percentile_dist_summary_t *)m;
  int64_t lo, hi;
  if (!spectator__pct_range(p->min, p->max, 1, &lo, &hi)) {
    SPECTATOR__LOG_LIMITED(&rl_range, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                           "percentile distribution summary '%.*s': invalid range [%g, %g]; "
                           "using [0, 2^63-1]",
                           SPECTATOR__LOG_STR(spectator_id_name(m->id)), p->min, p->max);
    lo = 0;
    hi = INT64_MAX;
  }
  d->min = lo;
  d->max = hi;
  d->st.samples = env->samples;
}

static bool measure(spectator__meter_t *m, spectator__snap_ctx_t *ctx) {
  spectator_percentile_dist_summary_t *d = (spectator_percentile_dist_summary_t *)m;
  bool active = spectator__summary_state_measure(&d->st, m->id, ctx);
  return spectator__pct_counts_measure(&d->buckets, m->id, true, ctx) || active;
}

/* A one-shot call (spectator_record). */
static void record(spectator__meter_t *m, double value) {
  spectator_percentile_dist_summary_record((spectator_percentile_dist_summary_t *)m, value);
}

/* The default range: every amount an int64 holds. */
static const spectator__meter_params_t defaults = {0, 0, SPECTATOR__TWO_POW_63};

SPECTATOR__METER_TYPE(percentile_dist_summary, "percentile distribution summary",
                      .extra_tag = "percentile", .init = init, .measure = measure, .record = record,
                      .defaults = &defaults, .line_type = 'D',
                      .line_kind = SPECTATOR__LINES_SAMPLED);
