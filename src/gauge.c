/*
 * Gauges: the last value set, reported every interval until its TTL passes
 * without a set (NaN stops reporting at once).
 *
 * The recording path may not read a clock, so a set only stores the value and
 * raises `updated`; the snapshot, which has the time, turns that flag into
 * `last_set_ns`. The TTL is therefore measured in whole snapshots, which is
 * the resolution that matters.
 */
#include <math.h>

#include "meter.h"

struct spectator_gauge {
  spectator__meter_t hdr;
  _Atomic uint64_t bits;   /* last value; NaN = nothing to report */
  _Atomic uint8_t updated; /* set by writers, cleared by the snapshot */
  int64_t ttl_ns;
  int64_t last_set_ns; /* snapshot-owned */
} SPECTATOR__ALIGNED;

void spectator_gauge_set(spectator_gauge_t *g, double value) {
  if (SPECTATOR__UNLIKELY(!g) || isinf(value)) return;
  atomic_store_explicit(&g->bits, spectator__d2b(value), memory_order_relaxed);
  atomic_store_explicit(&g->updated, 1, memory_order_release);
}

double spectator_gauge_get(const spectator_gauge_t *g) {
  if (!g || spectator__is_noop(g)) return NAN;
  return spectator__b2d(atomic_load_explicit(&g->bits, memory_order_relaxed));
}

static void init(spectator__meter_t *m, const spectator__meter_params_t *p,
                 const spectator__meter_env_t *env) {
  spectator_gauge_t *g = (spectator_gauge_t *)m;
  atomic_init(&g->bits, spectator__d2b(NAN));
  g->ttl_ns = (p->ttl_s > 0 && p->ttl_s < 9.2e9) ? (int64_t)(p->ttl_s * 1e9) : env->ttl_ns;
  g->last_set_ns = env->now_ns;
}

/* spectatord's default gauge TTL; a line carries the TTL only when it differs. */
#define SPECTATORD_TTL_NS (900 * SPECTATOR__NS_PER_S)

/* The TTL option of a gauge's lines: whole seconds, rounded up; 0: none. */
static uint32_t line_ttl(int64_t ttl_ns) {
  if (ttl_ns == SPECTATORD_TTL_NS) return 0;
  int64_t s = ttl_ns / SPECTATOR__NS_PER_S + (ttl_ns % SPECTATOR__NS_PER_S != 0);
  if (s < 1) s = 1;
  return s > (int64_t)SPECTATOR__LINE_OPT_MAX ? SPECTATOR__LINE_OPT_MAX : (uint32_t)s;
}

static bool measure(spectator__meter_t *m, spectator__snap_ctx_t *ctx) {
  spectator_gauge_t *g = (spectator_gauge_t *)m;
  bool updated = atomic_exchange_explicit(&g->updated, 0, memory_order_acquire);
  if (updated) g->last_set_ns = ctx->now_ns;
  double v = spectator__b2d(atomic_load_explicit(&g->bits, memory_order_relaxed));
  if (ctx->out && ctx->out->lines) {
    /* spectatord reports a gauge until its TTL runs out: one line when it was
     * set in the interval, NaN included (it stops reporting at once). */
    if (updated) spectator__records_add_line(ctx->out, m->id, line_ttl(g->ttl_ns), v);
    return updated;
  }
  if (isnan(v)) return updated;
  /* unsigned: a user clock that is not monotonic must not overflow */
  if (!updated && (uint64_t)ctx->now_ns - (uint64_t)g->last_set_ns > (uint64_t)g->ttl_ns &&
      ctx->now_ns > g->last_set_ns)
    return false;
  spectator__records_add(ctx->out, m->id, spectator__default_stat(m, SPECTATOR__STAT_GAUGE), 0, v);
  return updated;
}

/* The child reports only what it sets itself: the value is forgotten. */
static void postfork_child(spectator__meter_t *m) {
  spectator_gauge_t *g = (spectator_gauge_t *)m;
  atomic_store(&g->bits, spectator__d2b(NAN));
  atomic_store(&g->updated, 0);
}

/* A one-shot call (spectator_record). */
static void record(spectator__meter_t *m, double value) {
  spectator_gauge_set((spectator_gauge_t *)m, value);
}

SPECTATOR__METER_TYPE(gauge, "gauge", .init = init, .measure = measure,
                      .postfork_child = postfork_child, .record = record, .line_type = 'g');
