/*
 * Max gauges: the largest value set during the interval.
 *
 * The max is kept in an order-preserving integer encoding of the double (0
 * means "nothing set"), so the update is an integer compare-and-swap that is
 * skipped when the value is not larger.
 */
#include <math.h>

#include "meter.h"

struct spectator_max_gauge {
  spectator__meter_t hdr;
  _Atomic uint64_t key; /* order-preserving encoding of the max; 0 = none */
} SPECTATOR__ALIGNED;

/* Map a double to an unsigned integer with the same order: positives get the
 * sign bit set, negatives have all bits flipped. Never 0 for a non-NaN value. */
static inline uint64_t order_key(double v) {
  uint64_t b = spectator__d2b(v);
  return (b & 0x8000000000000000ULL) ? ~b : b | 0x8000000000000000ULL;
}

static inline double order_value(uint64_t k) {
  return spectator__b2d((k & 0x8000000000000000ULL) ? k & ~0x8000000000000000ULL : ~k);
}

void spectator_max_gauge_set(spectator_max_gauge_t *g, double value) {
  if (SPECTATOR__UNLIKELY(!g) || !spectator__finite(value)) return;
  if (value == 0) value = 0; /* -0.0 and 0.0 are the same value */
  uint64_t key = order_key(value);
  uint64_t cur = atomic_load_explicit(&g->key, memory_order_relaxed);
  while (key > cur && !atomic_compare_exchange_weak_explicit(
                          &g->key, &cur, key, memory_order_relaxed, memory_order_relaxed)) {
  }
}

double spectator_max_gauge_get(const spectator_max_gauge_t *g) {
  if (!g || spectator__is_noop(g)) return NAN;
  uint64_t k = atomic_load_explicit(&g->key, memory_order_relaxed);
  return k ? order_value(k) : NAN;
}

static bool measure(spectator__meter_t *m, spectator__snap_ctx_t *ctx) {
  uint64_t k =
      atomic_exchange_explicit(&((spectator_max_gauge_t *)m)->key, 0, memory_order_relaxed);
  if (!k) return false;
  spectator__records_add(ctx->out, m->id, spectator__default_stat(m, SPECTATOR__STAT_MAX), 0,
                         order_value(k));
  return true;
}

/* A one-shot call (spectator_record). */
static void record(spectator__meter_t *m, double value) {
  spectator_max_gauge_set((spectator_max_gauge_t *)m, value);
}

SPECTATOR__METER_TYPE(max_gauge, "max gauge", .measure = measure, .record = record,
                      .line_type = 'm');
