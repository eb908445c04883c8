/*
 * uint64 monotonic counters: the application sets the current value of a
 * 64-bit count kept elsewhere (a kernel or NIC counter), and each snapshot
 * reports how much it grew since the previous snapshot (statistic=count, op
 * add), as spectatord's `U` meter does.
 *
 * The arithmetic is on integers, so the increase is exact however large the
 * values (a double holds integers exactly only up to 2^53). A value below the
 * previous one is taken for a wrap-around of the counter, as spectatord does:
 * the increase is new - old modulo 2^64. The first snapshot after the first
 * set only remembers the value. The increase is sent as a double, like every
 * value: exact up to 2^53 per interval.
 */
#include "meter.h"

/* 2^64 as a double: one-shot values at or above it do not fit a uint64. */
#define TWO_POW_64 18446744073709551616.0

struct spectator_monotonic_counter_u64 {
  spectator__meter_t hdr;
  _Atomic uint64_t value;  /* last value set */
  _Atomic uint8_t updated; /* set by writers, cleared by the snapshot */
  /* snapshot-owned */
  bool has_value; /* a value was ever set */
  bool has_prev;  /* prev holds the value of an earlier snapshot */
  uint64_t prev;
} SPECTATOR__ALIGNED;

void spectator_monotonic_counter_u64_set(spectator_monotonic_counter_u64_t *m, uint64_t value) {
  if (SPECTATOR__UNLIKELY(!m)) return;
  atomic_store_explicit(&m->value, value, memory_order_relaxed);
  atomic_store_explicit(&m->updated, 1, memory_order_release);
}

uint64_t spectator_monotonic_counter_u64_get(const spectator_monotonic_counter_u64_t *m) {
  if (!m || spectator__is_noop(m)) return 0;
  return atomic_load_explicit(&m->value, memory_order_relaxed);
}

static bool measure(spectator__meter_t *m, spectator__snap_ctx_t *ctx) {
  spectator_monotonic_counter_u64_t *mc = (spectator_monotonic_counter_u64_t *)m;
  bool updated = atomic_exchange_explicit(&mc->updated, 0, memory_order_acquire);
  if (updated) mc->has_value = true;
  if (!mc->has_value) return false;
  uint64_t v = atomic_load_explicit(&mc->value, memory_order_relaxed);
  if (ctx->out && ctx->out->lines) {
    /* spectatord's 'U' takes the value set, exact as a uint64, and computes
     * the increase itself: one line when it was set in the interval. */
    if (updated) spectator__records_add_line(ctx->out, m->id, 0, spectator__b2d(v));
    return updated;
  }
  uint64_t prev = mc->prev;
  bool had_prev = mc->has_prev;
  mc->prev = v;
  mc->has_prev = true;
  if (!had_prev) return updated;
  uint64_t delta = v - prev; /* modulo 2^64: a decrease is a wrap-around */
  if (delta)
    spectator__records_add(ctx->out, m->id, spectator__default_stat(m, SPECTATOR__STAT_COUNT), 0,
                           (double)delta);
  return updated;
}

/* The parent keeps reporting the source's growth; the child starts over. */
static void postfork_child(spectator__meter_t *m) {
  spectator_monotonic_counter_u64_t *mc = (spectator_monotonic_counter_u64_t *)m;
  atomic_store(&mc->value, 0);
  atomic_store(&mc->updated, 0);
  mc->has_value = false;
  mc->has_prev = false;
  mc->prev = 0;
}

/* A one-shot call (spectator_record): a double, so exact only up to 2^53;
 * values that are not in [0, 2^64) are ignored. */
static void record(spectator__meter_t *m, double value) {
  if (value >= 0 && value < TWO_POW_64)
    spectator_monotonic_counter_u64_set((spectator_monotonic_counter_u64_t *)m, (uint64_t)value);
}

/* Its lines are spectatord's uint64 monotonic counter ('U'): the last value
 * set in each interval, written from the record's 64 bits as an integer. */
SPECTATOR__METER_TYPE(monotonic_counter_u64, "uint64 monotonic counter", .measure = measure,
                      .postfork_child = postfork_child, .record = record, .line_type = 'U',
                      .line_kind = SPECTATOR__LINES_MEASURED_U64);
