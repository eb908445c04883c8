/*
 * Distribution summaries: count, total amount, total of squares and max of
 * non-negative amounts per interval, in base units.
 *
 * Whole amounts below 2^32 (the common case: bytes, items) are summed exactly
 * in integers, squares included; other amounts use double CAS loops. The max
 * is kept as the bit pattern of a non-negative double, which orders like the
 * double itself, so it is an integer compare-and-swap.
 */
#include "internal.h"

void spectator__summary_state_init(spectator__summary_state_t *st) {
  atomic_init(&st->count, 0);
  atomic_init(&st->total.ints, 0);
  atomic_init(&st->total.dbits, 0);
  atomic_init(&st->sq.lo, 0);
  atomic_init(&st->sq.hi, 0);
  atomic_init(&st->sq.dbits, 0);
  atomic_init(&st->max_bits, 0);
}

/* amount must be finite and >= 0. */
void spectator__summary_state_record(spectator__summary_state_t *st, double amount) {
  if (amount == 0) amount = 0; /* -0.0 would order above every positive value */
  atomic_fetch_add_explicit(&st->count, 1, memory_order_relaxed);
  if (amount < SPECTATOR__TWO_POW_32 && amount == (double)(uint32_t)amount) {
    atomic_fetch_add_explicit(&st->total.ints, (uint64_t)(uint32_t)amount, memory_order_relaxed);
    spectator__sqsum_add_u64(&st->sq, (uint64_t)(uint32_t)amount);
  } else {
    spectator__atomic_add_double(&st->total.dbits, amount);
    spectator__atomic_add_double(&st->sq.dbits, amount * amount);
  }
  uint64_t bits = spectator__d2b(amount);
  uint64_t cur = atomic_load_explicit(&st->max_bits, memory_order_relaxed);
  while (bits > cur && !atomic_compare_exchange_weak_explicit(
                           &st->max_bits, &cur, bits, memory_order_relaxed, memory_order_relaxed)) {
  }
}

static inline bool summary_amount_ok(double amount) {
  return amount >= 0 && amount <= 1.7976931348623157e308; /* rejects NaN, <0, inf */
}

void spectator_dist_summary_record(spectator_dist_summary_t *d, double amount) {
  if (SPECTATOR__UNLIKELY(!d) || !summary_amount_ok(amount)) return;
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

void spectator__summary_state_measure(spectator__summary_state_t *st, spectator__meter_t *hdr,
                                      spectator__snap_ctx_t *ctx, bool *active) {
  uint64_t count = atomic_exchange_explicit(&st->count, 0, memory_order_relaxed);
  double total = spectator__dsum_take(&st->total);
  double sq = spectator__sqsum_take(&st->sq);
  double max = spectator__b2d(atomic_exchange_explicit(&st->max_bits, 0, memory_order_relaxed));
  if (count == 0 && total == 0 && sq == 0 && max == 0) {
    *active = false;
    return;
  }
  /* Four statistics of one id: each sets its own statistic tag (an id's own
   * statistic tag is only kept by single-statistic meters). */
  spectator__records_add(ctx->out, hdr->id, SPECTATOR__STAT_COUNT, 0, SPECTATOR_OP_ADD,
                         (double)count);
  spectator__records_add(ctx->out, hdr->id, SPECTATOR__STAT_TOTAL_AMOUNT, 0, SPECTATOR_OP_ADD,
                         total);
  spectator__records_add(ctx->out, hdr->id, SPECTATOR__STAT_TOTAL_OF_SQUARES, 0, SPECTATOR_OP_ADD,
                         sq);
  spectator__records_add(ctx->out, hdr->id, SPECTATOR__STAT_MAX, 0, SPECTATOR_OP_MAX, max);
  *active = true;
}

bool spectator__dist_summary_measure(struct spectator_dist_summary *d, spectator__snap_ctx_t *ctx) {
  bool active;
  spectator__summary_state_measure(&d->st, &d->hdr, ctx, &active);
  return active;
}
