/*
 * Percentile timers: a timer plus one counter per Spectator percentile bucket
 * (276, inline). A record updates the timer state, clamps the duration to the
 * meter's [min, max] range (a negative one too: it is counted in the first
 * bucket of the range) and increments one bucket: one more relaxed
 * fetch_add. Snapshots report the non-zero buckets as counters tagged
 * statistic=percentile and percentile=T%04X, from which Atlas estimates
 * percentiles across a whole cluster.
 */
#include "clock.h"
#include "log.h"
#include "samples.h"
#include "timer.h"

/* A line per sample (samples.h), but for a negative duration (spectatord keeps
 * the statistics); out of line, so that the other path pays one compare and
 * branch. */
static __attribute__((noinline)) void sample(spectator_percentile_timer_t *t, int64_t nanos) {
  if (nanos >= 0) spectator__samples_record(t->st.samples, t, (uint64_t)nanos);
}

void spectator_percentile_timer_record_ns(spectator_percentile_timer_t *t, int64_t nanos) {
  if (SPECTATOR__UNLIKELY(!t)) return;
  if (SPECTATOR__UNLIKELY(t->st.samples != NULL)) {
    sample(t, nanos);
    return;
  }
  spectator__timer_state_record(&t->st, nanos);
  spectator__pct_counts_add(&t->buckets, nanos, t->min_ns, t->max_ns);
}

void spectator_percentile_timer_record(spectator_percentile_timer_t *t, double seconds) {
  if (SPECTATOR__UNLIKELY(!t)) return;
  int64_t ns;
  if (SPECTATOR__UNLIKELY(!spectator__seconds_in_range(seconds, &ns))) {
    ns = spectator__seconds_to_ns(seconds); /* negative, huge, NaN, infinite */
    if (ns == SPECTATOR__NS_IGNORED) return;
  }
  spectator_percentile_timer_record_ns(t, ns);
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
  return spectator__pct_counts_estimate(&t->buckets, pct) / 1e9;
}

int64_t spectator_stopwatch_record_percentile(spectator_stopwatch_t sw,
                                              spectator_percentile_timer_t *t) {
  int64_t d = spectator_stopwatch_elapsed_ns(sw);
  spectator_percentile_timer_record_ns(t, d);
  return d;
}

static spectator__ratelimit_t rl_range;

static void init(spectator__meter_t *m, const spectator__meter_params_t *p,
                 const spectator__meter_env_t *env) {
  spectator_percentile_timer_t *t = (spectator_percentile_timer_t *)m;
  int64_t lo, hi;
  if (!spectator__pct_range(p->min, p->max, 1e9, &lo, &hi)) {
    SPECTATOR__LOG_LIMITED(&rl_range, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                           "percentile timer '%.*s': invalid range [%g, %g] s; using "
                           "[0.01, 60] s",
                           SPECTATOR__LOG_STR(spectator_id_name(m->id)), p->min, p->max);
    lo = 10 * 1000 * 1000;
    hi = 60 * SPECTATOR__NS_PER_S;
  }
  t->min_ns = lo;
  t->max_ns = hi;
  spectator__timer_state_init(&t->st, env->stripes);
  t->st.samples = env->samples;
}

static bool measure(spectator__meter_t *m, spectator__snap_ctx_t *ctx) {
  spectator_percentile_timer_t *t = (spectator_percentile_timer_t *)m;
  bool active = spectator__timer_state_measure(&t->st, m->id, ctx);
  return spectator__pct_counts_measure(&t->buckets, m->id, false, ctx) || active;
}

/* A one-shot call (spectator_record). */
static void record(spectator__meter_t *m, double value) {
  spectator_percentile_timer_record((spectator_percentile_timer_t *)m, value);
}

/* The default range: 10 ms to 60 s. */
static const spectator__meter_params_t defaults = {0, 0.01, 60};

SPECTATOR__METER_TYPE(percentile_timer, "percentile timer", .extra_tag = "percentile", .init = init,
                      .measure = measure, .record = record, .defaults = &defaults, .line_type = 'T',
                      .line_kind = SPECTATOR__LINES_SAMPLED_NS);
