/*
 * Accumulators: reading and resetting the interval state that meters record
 * into (accum.h has the record side and the design).
 */
#include "accum.h"

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

/* ---- timer state ---- */

static inline uint64_t sum_saturating(uint64_t a, uint64_t b) {
  return a + b < a ? UINT64_MAX : a + b;
}

void spectator__timer_state_init(spectator__timer_state_t *st, spectator__stripe_src_t *src) {
  st->src = src;
  spectator__stripes_refill(src, true);
}

/* The sum over the own cell and the stripes of the field at offset `field`
 * of a timer cell (count or total_ns). */
static uint64_t sum_cells(const spectator__timer_state_t *st, size_t field) {
  uint64_t n =
      atomic_load_explicit((_Atomic uint64_t *)((char *)&st->base + field), memory_order_relaxed);
  uintptr_t w = atomic_load_explicit(&st->stripes, memory_order_acquire);
  spectator__cell_t *cells = spectator__stripes_cells(w);
  for (size_t i = 0, k = spectator__stripes_count(w); i < k; i++)
    n +=
        atomic_load_explicit((_Atomic uint64_t *)((char *)&cells[i] + field), memory_order_relaxed);
  return n;
}

uint64_t spectator__timer_state_count(const spectator__timer_state_t *st) {
  return sum_cells(st, offsetof(spectator__timer_cell_t, count));
}

uint64_t spectator__timer_state_total_ns(const spectator__timer_state_t *st) {
  return sum_cells(st, offsetof(spectator__timer_cell_t, total_ns));
}

bool spectator__timer_state_measure(spectator__timer_state_t *st, const spectator_id_t *id,
                                    spectator__snap_ctx_t *ctx) {
  uintptr_t w = atomic_load_explicit(&st->stripes, memory_order_acquire);
  if (w == SPECTATOR__STRIPES_PENDING && st->src) /* the pool may have been refilled */
    w = spectator__stripes_claim(st->src, &st->stripes);
  uint64_t count = 0, total = 0;
  double sq = 0;
  int64_t max = 0;
  spectator__cell_t *cells = spectator__stripes_cells(w);
  for (size_t i = 0, n = spectator__stripes_count(w); i <= n; i++) {
    spectator__timer_cell_t *c = i < n ? spectator__timer_cell(&cells[i]) : &st->base;
    count += atomic_exchange_explicit(&c->count, 0, memory_order_relaxed);
    total = sum_saturating(total, atomic_exchange_explicit(&c->total_ns, 0, memory_order_relaxed));
    sq += spectator__sqsum_take(&c->sq_ns);
    int64_t m = atomic_exchange_explicit(&c->max_ns, 0, memory_order_relaxed);
    if (m > max) max = m;
  }
  if (count == 0 && total == 0 && sq == 0 && max == 0) return false;
  /* Four statistics of one id: each sets its own statistic tag (an id's own
   * statistic tag is only kept by single-statistic meters). */
  spectator__records_add(ctx->out, id, SPECTATOR__STAT_COUNT, 0, (double)count);
  spectator__records_add(ctx->out, id, SPECTATOR__STAT_TOTAL_TIME, 0, (double)total / 1e9);
  spectator__records_add(ctx->out, id, SPECTATOR__STAT_TOTAL_OF_SQUARES, 0, sq / 1e18);
  spectator__records_add(ctx->out, id, SPECTATOR__STAT_MAX, 0, (double)max / 1e9);
  return true;
}

/* ---- summary state ---- */

bool spectator__summary_state_measure(spectator__summary_state_t *st, const spectator_id_t *id,
                                      spectator__snap_ctx_t *ctx) {
  uint64_t count = atomic_exchange_explicit(&st->count, 0, memory_order_relaxed);
  double total = spectator__dsum_take(&st->total);
  double sq = spectator__sqsum_take(&st->sq);
  double max = spectator__b2d(atomic_exchange_explicit(&st->max_bits, 0, memory_order_relaxed));
  if (count == 0 && total == 0 && sq == 0 && max == 0) return false;
  /* Four statistics of one id, as for timers. */
  spectator__records_add(ctx->out, id, SPECTATOR__STAT_COUNT, 0, (double)count);
  spectator__records_add(ctx->out, id, SPECTATOR__STAT_TOTAL_AMOUNT, 0, total);
  spectator__records_add(ctx->out, id, SPECTATOR__STAT_TOTAL_OF_SQUARES, 0, sq);
  spectator__records_add(ctx->out, id, SPECTATOR__STAT_MAX, 0, max);
  return true;
}

/* ---- percentile bucket counts ---- */

/* v * scale as a range bound; -1 when it cannot be one. */
static int64_t bound(double v, double scale) {
  if (!(v >= 0) || v * scale >= SPECTATOR__TWO_POW_63) return -1;
  return (int64_t)(v * scale);
}

bool spectator__pct_range(double min, double max, double scale, int64_t *lo, int64_t *hi) {
  *lo = bound(min, scale);
  *hi = bound(max, scale);
  if (max * scale >= SPECTATOR__TWO_POW_63 && max <= DBL_MAX) *hi = INT64_MAX;
  return *lo >= 0 && *hi >= 0 && *lo <= *hi;
}

double spectator__pct_counts_estimate(const spectator__pct_counts_t *b, double pct) {
  uint64_t counts[SPECTATOR__PCT_LENGTH];
  for (size_t i = 0; i < SPECTATOR__PCT_LENGTH; i++)
    counts[i] = atomic_load_explicit(&b->n[i], memory_order_relaxed);
  return spectator__pct_percentile(counts, pct);
}

bool spectator__pct_counts_measure(spectator__pct_counts_t *b, const spectator_id_t *id,
                                   bool summary, spectator__snap_ctx_t *ctx) {
  bool any = false;
  for (size_t i = 0; i < SPECTATOR__PCT_LENGTH; i++) {
    if (atomic_load_explicit(&b->n[i], memory_order_relaxed) == 0) continue;
    uint64_t n = atomic_exchange_explicit(&b->n[i], 0, memory_order_relaxed);
    if (!n) continue;
    spectator__records_add(ctx->out, id, SPECTATOR__STAT_PERCENTILE,
                           (unsigned)(i + 1) | (summary ? SPECTATOR__PCT_SUMMARY : 0), (double)n);
    any = true;
  }
  return any;
}
