/*
 * Age gauges: the seconds since something last happened (the last success
 * of a job, a cache refresh, a heartbeat), computed at each snapshot from the
 * registry's clock and reported every interval as a gauge (statistic=gauge,
 * op max), as spectatord's age gauge does.
 *
 * The meter holds one number: the time of the last set on the registry's
 * clock. set_now reads that clock; it is one of the few recording calls that
 * read a clock (a long task timer's start and stop are the others).
 * set(epoch_seconds) converts a Unix time with the registry's offset between
 * its clock and the wall clock, a number the registry keeps current, so it
 * reads no clock; 0 means now, as in spectatord's protocol.
 *
 * Never set, an age gauge reports the seconds since the Unix epoch, as
 * spectatord's does: an alert on the time since the last success fires until
 * there has been one. It reports at every snapshot, set or not; an interval
 * with a set counts as activity. A one-shot call pins the meter it records
 * on: an age gauge must go on reporting however long ago its last set was,
 * so it never expires, as spectatord's never do.
 */
#include <math.h>

#include "clock.h"
#include "meter.h"

/* A Unix time in seconds whose nanoseconds fit an int64 (until 2262). */
#define MAX_EPOCH_S 9.2e9

struct spectator_age_gauge {
  spectator__meter_t hdr;
  _Atomic int64_t last_ns; /* registry clock; NEVER: not set yet */
  _Atomic uint8_t updated; /* set since the last snapshot */
  spectator_clock_fn clock;
  void *clock_ctx;
  const _Atomic int64_t *wall_offset_ns;
} SPECTATOR__ALIGNED;

#define NEVER INT64_MIN

/* a - b on int64 without overflow trouble: exact whenever the true
 * difference fits, which it does for any clock that is not absurd. */
static inline int64_t diff(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }

void spectator_age_gauge_set_now(spectator_age_gauge_t *g) {
  if (SPECTATOR__UNLIKELY(!g) || spectator__is_noop(g)) return;
  atomic_store_explicit(&g->last_ns, spectator__clock_now(g->clock, g->clock_ctx),
                        memory_order_relaxed);
  atomic_store_explicit(&g->updated, 1, memory_order_relaxed);
}

void spectator_age_gauge_set(spectator_age_gauge_t *g, double epoch_seconds) {
  if (SPECTATOR__UNLIKELY(!g) || spectator__is_noop(g)) return;
  if (epoch_seconds == 0) {
    spectator_age_gauge_set_now(g);
    return;
  }
  if (!(epoch_seconds > 0 && epoch_seconds < MAX_EPOCH_S)) return; /* NaN, inf, negative */
  int64_t wall_ns = (int64_t)(epoch_seconds * 1e9);
  int64_t offset = atomic_load_explicit(g->wall_offset_ns, memory_order_relaxed);
  atomic_store_explicit(&g->last_ns, diff(wall_ns, offset), memory_order_relaxed);
  atomic_store_explicit(&g->updated, 1, memory_order_relaxed);
}

/* Seconds since the last set (or since the Unix epoch) at registry time now. */
static double age_at(const spectator_age_gauge_t *g, int64_t now) {
  int64_t last = atomic_load_explicit(&g->last_ns, memory_order_relaxed);
  if (last == NEVER) {
    int64_t offset = atomic_load_explicit(g->wall_offset_ns, memory_order_relaxed);
    return (double)(int64_t)((uint64_t)now + (uint64_t)offset) / 1e9;
  }
  return (double)diff(now, last) / 1e9;
}

double spectator_age_gauge_age(const spectator_age_gauge_t *g) {
  if (!g || spectator__is_noop(g)) return NAN;
  return age_at(g, spectator__clock_now(g->clock, g->clock_ctx));
}

static void init(spectator__meter_t *m, const spectator__meter_params_t *p,
                 const spectator__meter_env_t *env) {
  (void)p;
  spectator_age_gauge_t *g = (spectator_age_gauge_t *)m;
  atomic_init(&g->last_ns, NEVER);
  g->clock = env->clock;
  g->clock_ctx = env->clock_ctx;
  g->wall_offset_ns = env->wall_offset_ns;
}

static bool measure(spectator__meter_t *m, spectator__snap_ctx_t *ctx) {
  spectator_age_gauge_t *g = (spectator_age_gauge_t *)m;
  if (ctx->out && ctx->out->lines) {
    /* spectatord's age gauge ('A') takes the Unix time of the last set and
     * reports the age itself: one line when it was set in the interval. */
    bool updated = atomic_exchange_explicit(&g->updated, 0, memory_order_relaxed);
    int64_t last = atomic_load_explicit(&g->last_ns, memory_order_relaxed);
    if (updated && last != NEVER) {
      /* in whole microseconds: a double holds about that much of a Unix time */
      int64_t offset = atomic_load_explicit(g->wall_offset_ns, memory_order_relaxed);
      int64_t wall_us = ((int64_t)((uint64_t)last + (uint64_t)offset) + 500) / 1000;
      spectator__records_add_line(ctx->out, m->id, 0, (double)wall_us / 1e6);
    }
    return updated;
  }
  spectator__records_add(ctx->out, m->id, spectator__default_stat(m, SPECTATOR__STAT_GAUGE), 0,
                         age_at(g, ctx->now_ns));
  return atomic_exchange_explicit(&g->updated, 0, memory_order_relaxed);
}

/* The last set is a moment in time, not an interval's value: a forked child
 * keeps it and reports the same age as its parent. */
static void postfork_child(spectator__meter_t *m) { (void)m; }

/* A one-shot call (spectator_record): Unix seconds, 0 for now. The meter is
 * pinned, as a lookup would pin it, so that it never expires. */
static void record(spectator__meter_t *m, double value) {
  uint8_t transient = SPECTATOR__TRANSIENT;
  if (atomic_load_explicit(&m->state, memory_order_relaxed) == SPECTATOR__TRANSIENT)
    atomic_compare_exchange_strong(&m->state, &transient, SPECTATOR__PINNED);
  spectator_age_gauge_set((spectator_age_gauge_t *)m, value);
}

SPECTATOR__METER_TYPE(age_gauge, "age gauge", .init = init, .measure = measure,
                      .postfork_child = postfork_child, .record = record, .line_type = 'A');
