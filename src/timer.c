/*
 * Timers: count, total time, total of squares and max per interval, kept in
 * integer nanoseconds so sums are exact (accum.h); reported in seconds. A
 * negative duration is counted and adds nothing else; NaN and infinities are
 * ignored.
 */
#include "clock.h"
#include "samples.h"
#include "timer.h"

/* With spectatord's lines each duration is a sample of its own (samples.h),
 * a negative one excepted (spectatord keeps the statistics); otherwise it goes
 * into the interval state. Out of line, so that the other path pays one
 * compare and branch. */
static __attribute__((noinline)) void sample(spectator_timer_t *t, int64_t nanos) {
  if (nanos >= 0) spectator__samples_record(t->st.samples, t, (uint64_t)nanos);
}

void spectator_timer_record_ns(spectator_timer_t *t, int64_t nanos) {
  if (SPECTATOR__UNLIKELY(!t)) return;
  if (SPECTATOR__UNLIKELY(t->st.samples != NULL)) {
    sample(t, nanos);
    return;
  }
  spectator__timer_state_record(&t->st, nanos);
}

/* Negative, huge, NaN and infinite durations, and every duration with
 * spectatord's lines, out of the common path. */
static __attribute__((noinline)) void record_unusual(spectator_timer_t *t, double seconds) {
  int64_t ns = spectator__seconds_to_ns(seconds);
  if (ns == SPECTATOR__NS_IGNORED) return;
  if (t->st.samples)
    sample(t, ns);
  else
    spectator__timer_state_record(&t->st, ns);
}

void spectator_timer_record(spectator_timer_t *t, double seconds) {
  if (SPECTATOR__UNLIKELY(!t)) return;
  int64_t ns;
  if (SPECTATOR__LIKELY(spectator__seconds_in_range(seconds, &ns) && !t->st.samples))
    spectator__timer_state_record(&t->st, ns);
  else
    record_unusual(t, seconds);
}

uint64_t spectator_timer_count(const spectator_timer_t *t) {
  if (!t || spectator__is_noop(t)) return 0;
  return spectator__timer_state_count(&t->st);
}

double spectator_timer_total_seconds(const spectator_timer_t *t) {
  if (!t || spectator__is_noop(t)) return 0;
  return (double)spectator__timer_state_total_ns(&t->st) / 1e9;
}

int64_t spectator_stopwatch_record(spectator_stopwatch_t sw, spectator_timer_t *t) {
  int64_t d = spectator_stopwatch_elapsed_ns(sw);
  spectator_timer_record_ns(t, d);
  return d;
}

static void init(spectator__meter_t *m, const spectator__meter_params_t *p,
                 const spectator__meter_env_t *env) {
  (void)p;
  spectator_timer_t *t = (spectator_timer_t *)m;
  spectator__timer_state_init(&t->st, env->stripes);
  t->st.samples = env->samples;
}

static bool measure(spectator__meter_t *m, spectator__snap_ctx_t *ctx) {
  return spectator__timer_state_measure(&((spectator_timer_t *)m)->st, m->id, ctx);
}

/* A one-shot call (spectator_record). */
static void record(spectator__meter_t *m, double value) {
  spectator_timer_record((spectator_timer_t *)m, value);
}

SPECTATOR__METER_TYPE(timer, "timer", .init = init, .measure = measure, .record = record,
                      .line_type = 't', .line_kind = SPECTATOR__LINES_SAMPLED_NS);
