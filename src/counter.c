/*
 * Counters: the sum of positive amounts per interval.
 *
 * Increments and whole amounts below 2^32 are one relaxed fetch_add on an
 * integer; other amounts add to a double with a CAS loop. A snapshot exchanges
 * both with zero, so every update lands in exactly one interval.
 */
#include <math.h>

#include "internal.h"

double spectator__dsum_peek(const spectator__dsum_t *s) {
  return (double)atomic_load_explicit(&s->ints, memory_order_relaxed) +
         spectator__b2d(atomic_load_explicit(&s->dbits, memory_order_relaxed));
}

double spectator__dsum_take(spectator__dsum_t *s) {
  uint64_t i = atomic_exchange_explicit(&s->ints, 0, memory_order_relaxed);
  uint64_t d = atomic_exchange_explicit(&s->dbits, 0, memory_order_relaxed);
  return (double)i + spectator__b2d(d);
}

double spectator__sqsum_take(spectator__sqsum_t *s) {
  uint64_t lo = atomic_exchange_explicit(&s->lo, 0, memory_order_relaxed);
  uint64_t hi = atomic_exchange_explicit(&s->hi, 0, memory_order_relaxed);
  uint64_t d = atomic_exchange_explicit(&s->dbits, 0, memory_order_relaxed);
  return (double)hi * 18446744073709551616.0 + (double)lo + spectator__b2d(d);
}

void spectator_counter_increment(spectator_counter_t *c) {
  if (SPECTATOR__UNLIKELY(!c)) return;
  atomic_fetch_add_explicit(&c->sum.ints, 1, memory_order_relaxed);
}

void spectator_counter_add(spectator_counter_t *c, double amount) {
  if (SPECTATOR__UNLIKELY(!c)) return;
  /* NaN fails the first test, +inf the second. */
  if (SPECTATOR__LIKELY(amount > 0 && amount <= 1.7976931348623157e308))
    spectator__dsum_add(&c->sum, amount);
}

double spectator_counter_count(const spectator_counter_t *c) {
  if (!c || spectator__is_noop(c)) return 0;
  return spectator__dsum_peek(&c->sum);
}

bool spectator__counter_measure(struct spectator_counter *c, spectator__snap_ctx_t *ctx) {
  double v = spectator__dsum_take(&c->sum);
  if (v == 0) return false;
  spectator__records_add(ctx->out, c->hdr.id, c->hdr.has_statistic ? NULL : "count", NULL,
                         SPECTATOR_OP_ADD, v);
  return true;
}
