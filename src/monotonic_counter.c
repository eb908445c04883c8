/*
 * Monotonic counters: the application sets the current value of a count kept
 * elsewhere (bytes read from /proc, a kernel counter); each snapshot reports
 * how much it grew since the previous snapshot. The first snapshot after the
 * first set only remembers the value, and a decrease (a restart of the source)
 * reports nothing and becomes the new base.
 */
#include <math.h>

#include "internal.h"

void spectator_monotonic_counter_set(spectator_monotonic_counter_t *m, double value) {
  if (SPECTATOR__UNLIKELY(!m) ||
      !(value >= -1.7976931348623157e308 && value <= 1.7976931348623157e308))
    return;
  atomic_store_explicit(&m->bits, spectator__d2b(value), memory_order_relaxed);
  atomic_store_explicit(&m->updated, 1, memory_order_release);
}

double spectator_monotonic_counter_get(const spectator_monotonic_counter_t *m) {
  if (!m || spectator__is_noop(m)) return 0;
  double v = spectator__b2d(atomic_load_explicit(&m->bits, memory_order_relaxed));
  return isnan(v) ? 0 : v;
}

bool spectator__monotonic_counter_measure(struct spectator_monotonic_counter *m,
                                          spectator__snap_ctx_t *ctx) {
  bool updated = atomic_exchange_explicit(&m->updated, 0, memory_order_acquire);
  double v = spectator__b2d(atomic_load_explicit(&m->bits, memory_order_relaxed));
  if (isnan(v)) return false;
  double prev = m->prev;
  m->prev = v;
  if (isnan(prev)) return updated;
  double delta = v - prev;
  if (delta > 0)
    spectator__records_add(ctx->out, m->hdr.id,
                           m->hdr.has_statistic ? SPECTATOR__STAT_NONE : SPECTATOR__STAT_COUNT, 0,
                           SPECTATOR_OP_ADD, delta);
  return updated;
}
