/*
 * Distribution summaries: count, total amount, total of squares and max
 * per interval, in base units (accum.h). A negative amount is counted and
 * adds nothing else; NaN and infinities are ignored.
 */
#include "accum.h"
#include "meter.h"
#include "samples.h"

struct spectator_dist_summary {
  spectator__meter_t hdr;
  spectator__summary_state_t st;
} SPECTATOR__ALIGNED;

/* A line per sample (samples.h), but for a negative amount (spectatord keeps
 * the statistics); out of line, so that the other path pays one compare and
 * branch. */
static __attribute__((noinline)) void sample(spectator_dist_summary_t *d, double amount) {
  if (amount >= 0) spectator__samples_record(d->st.samples, d, spectator__d2b(amount));
}

void spectator_dist_summary_record(spectator_dist_summary_t *d, double amount) {
  if (SPECTATOR__UNLIKELY(!d) || !spectator__summary_amount_ok(amount)) return;
  if (SPECTATOR__UNLIKELY(d->st.samples != NULL)) {
    sample(d, amount);
    return;
  }
  spectator__summary_state_record(&d->st, amount);
}

uint64_t spectator_dist_summary_count(const spectator_dist_summary_t *d) {
  if (!d || spectator__is_noop(d)) return 0;
  return atomic_load_explicit(&d->st.count, memory_order_relaxed);
}

double spectator_dist_summary_total(const spectator_dist_summary_t *d) {
  if (!d || spectator__is_noop(d)) return 0;
  return spectator__dsum_peek(&d->st.total);
}

static void init(spectator__meter_t *m, const spectator__meter_params_t *p,
                 const spectator__meter_env_t *env) {
  (void)p;
  ((spectator_dist_summary_t *)m)->st.samples = env->samples;
}

static bool measure(spectator__meter_t *m, spectator__snap_ctx_t *ctx) {
  return spectator__summary_state_measure(&((spectator_dist_summary_t *)m)->st, m->id, ctx);
}

/* A one-shot call (spectator_record). */
static void record(spectator__meter_t *m, double value) {
  spectator_dist_summary_record((spectator_dist_summary_t *)m, value);
}

SPECTATOR__METER_TYPE(dist_summary, "distribution summary", .init = init, .measure = measure,
                      .record = record, .line_type = 'd', .line_kind = SPECTATOR__LINES_SAMPLED);
