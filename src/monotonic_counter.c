/*
 * Monotonic counters: the application sets the current value of a count kept
 * elsewhere (bytes read from /proc, a kernel counter); each snapshot reports
 * how much it grew since the previous snapshot. The first snapshot after the
 * first set only remembers the value, and a decrease (a restart of the source)
 * reports nothing and becomes the new base.
 */
#include <math.h>

#include "meter.h"

struct spectator_monotonic_counter {
  spectator__meter_t hdr;
  _Atomic uint64_t bits; /* last value set; NaN = never set */
  _Atomic uint8_t updated;
  double prev; /* snapshot-owned; NaN = no previous sample */
} SPECTATOR__ALIGNED;

void spectator_monotonic_counter_set(spectator_monotonic_counter_t *m, double value) {
  if (SPECTATOR__UNLIKELY(!m) || !spectator__finite(value)) return;
  atomic_store_explicit(&m->bits, spectator__d2b(value), memory_order_relaxed);
  atomic_store_explicit(&m->updated, 1, memory_order_release);
}

double spectator_monotonic_counter_get(const spectator_monotonic_counter_t *m) {
  if (!m || spectator__is_noop(m)) return 0;
  double v = spectator__b2d(atomic_load_explicit(&m->bits, memory_order_relaxed));
  return isnan(v) ? 0 : v;
}

static void init(spectator__meter_t *m, const spectator__meter_params_t *p,
                 const spectator__meter_env_t *env) {
  (void)p;
  (void)env;
  spectator_monotonic_counter_t *mc = (spectator_monotonic_counter_t *)m;
  atomic_init(&mc->bits, spectator__d2b(NAN));
  mc->prev = NAN;
}

static bool measure(spectator__meter_t *m, spectator__snap_ctx_t *ctx) {
  spectator_monotonic_counter_t *mc = (spectator_monotonic_counter_t *)m;
  bool updated = atomic_exchange_explicit(&mc->updated, 0, memory_order_acquire);
  double v = spectator__b2d(atomic_load_explicit(&mc->bits, memory_order_relaxed));
  if (isnan(v)) return false;
  if (ctx->out && ctx->out->lines) {
    /* spectatord's 'C' takes the value set and computes the increase
     * itself: one line with the last value when it was set in the interval. */
    if (updated) spectator__records_add_line(ctx->out, m->id, 0, v);
    return updated;
  }
  double prev = mc->prev;
  mc->prev = v;
  if (isnan(prev)) return updated;
  double delta = v - prev;
  if (delta > 0)
    spectator__records_add(ctx->out, m->id, spectator__default_stat(m, SPECTATOR__STAT_COUNT), 0,
                           delta);
  return updated;
}

/* The parent keeps reporting the source's growth; the child starts over. */
static void postfork_child(spectator__meter_t *m) {
  spectator_monotonic_counter_t *mc = (spectator_monotonic_counter_t *)m;
  atomic_store(&mc->bits, spectator__d2b(NAN));
  atomic_store(&mc->updated, 0);
  mc->prev = NAN;
}

/* A one-shot call (spectator_record). */
static void record(spectator__meter_t *m, double value) {
  spectator_monotonic_counter_set((spectator_monotonic_counter_t *)m, value);
}

/* Its lines are spectatord's monotonic counter ('C'): the last value set in
 * each interval. A forked child sends only values it sets itself. */
SPECTATOR__METER_TYPE(monotonic_counter, "monotonic counter", .init = init, .measure = measure,
                      .postfork_child = postfork_child, .record = record, .line_type = 'C');
