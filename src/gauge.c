/*
 * Gauges and max gauges.
 *
 * A gauge keeps the last value set and reports it every interval until its TTL
 * passes without a set (NaN stops reporting at once). The recording path may
 * not read a clock, so a set only stores the value and raises `updated`; the
 * snapshot, which has the time, turns that flag into `last_set_ns`. The TTL is
 * therefore measured in whole snapshots, which is the resolution that matters.
 *
 * A max gauge keeps the largest value of the interval in an order-preserving
 * integer encoding of the double (0 means "nothing set"), so the update is an
 * integer compare-and-swap that is skipped when the value is not larger.
 */
#include <math.h>

#include "internal.h"

void spectator_gauge_set(spectator_gauge_t *g, double value) {
  if (SPECTATOR__UNLIKELY(!g) || isinf(value)) return;
  atomic_store_explicit(&g->bits, spectator__d2b(value), memory_order_relaxed);
  atomic_store_explicit(&g->updated, 1, memory_order_release);
}

double spectator_gauge_get(const spectator_gauge_t *g) {
  if (!g || spectator__is_noop(g)) return NAN;
  return spectator__b2d(atomic_load_explicit(&g->bits, memory_order_relaxed));
}

bool spectator__gauge_measure(struct spectator_gauge *g, spectator__snap_ctx_t *ctx) {
  bool updated = atomic_exchange_explicit(&g->updated, 0, memory_order_acquire);
  if (updated) g->last_set_ns = ctx->now_ns;
  double v = spectator__b2d(atomic_load_explicit(&g->bits, memory_order_relaxed));
  if (isnan(v)) return updated;
  /* unsigned: a user clock that is not monotonic must not overflow */
  if (!updated && (uint64_t)ctx->now_ns - (uint64_t)g->last_set_ns > (uint64_t)g->ttl_ns &&
      ctx->now_ns > g->last_set_ns)
    return false;
  spectator__records_add(ctx->out, g->hdr.id,
                         g->hdr.has_statistic ? SPECTATOR__STAT_NONE : SPECTATOR__STAT_GAUGE, 0,
                         SPECTATOR_OP_MAX, v);
  return updated;
}

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
  if (SPECTATOR__UNLIKELY(!g) ||
      !(value >= -1.7976931348623157e308 && value <= 1.7976931348623157e308))
    return;                  /* NaN or infinite */
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

bool spectator__max_gauge_measure(struct spectator_max_gauge *g, spectator__snap_ctx_t *ctx) {
  uint64_t k = atomic_exchange_explicit(&g->key, 0, memory_order_relaxed);
  if (!k) return false;
  spectator__records_add(ctx->out, g->hdr.id,
                         g->hdr.has_statistic ? SPECTATOR__STAT_NONE : SPECTATOR__STAT_MAX, 0,
                         SPECTATOR_OP_MAX, order_value(k));
  return true;
}
