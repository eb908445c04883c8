/*
 * Counters: the sum of positive amounts per interval.
 *
 * DESIGN
 * An uncontended counter is one cache line: increments and whole amounts below
 * 2^32 add to an integer (`ints`), other amounts to a double (`dbits`), each
 * with one load and one compare-and-swap, which costs what a fetch_add does
 * when the line is in this core's cache, and tells, when it fails, that
 * another thread wrote in between. From the first failure on the counter is
 * contended and records into stripes: 1 << shift cache-line cells chosen by a
 * per-thread probe, so two threads no longer bounce one line between their
 * caches (stripes.h). Inside a cell the update is again a CAS; a failure there
 * means two threads share the cell, and the thread moves to another one (as
 * Java's LongAdder rehashes its probe).
 *
 * The recording path never allocates, locks, reads a clock or makes a system
 * call: stripe blocks come from the registry's pool, claimed with one atomic
 * index bump. A snapshot exchanges the own cell and every stripe with zero, so
 * each update lands in exactly one interval whatever the interleaving.
 */
#include "counter.h"

_Static_assert(sizeof(spectator__dsum_t) <= sizeof(spectator__cell_t), "a sum fits a stripe");

static inline spectator__dsum_t *sum_cell(spectator__cell_t *c) {
  return (spectator__dsum_t *)(void *)c;
}

/* Add to a stripe cell: a CAS, and on a collision with another thread in the
 * same cell, a move of this thread's probe and an unconditional add. */
static inline void cell_add_u64(_Atomic uint64_t *p, uint64_t v) {
  uint64_t cur = atomic_load_explicit(p, memory_order_relaxed);
  if (SPECTATOR__UNLIKELY(!atomic_compare_exchange_strong_explicit(
          p, &cur, cur + v, memory_order_relaxed, memory_order_relaxed))) {
    spectator__probe_collide();
    atomic_fetch_add_explicit(p, v, memory_order_relaxed);
  }
}

static inline void cell_add_double(_Atomic uint64_t *p, double v) {
  uint64_t cur = atomic_load_explicit(p, memory_order_relaxed);
  if (SPECTATOR__UNLIKELY(
          !atomic_compare_exchange_strong_explicit(p, &cur, spectator__d2b(spectator__b2d(cur) + v),
                                                   memory_order_relaxed, memory_order_relaxed))) {
    spectator__probe_collide();
    spectator__atomic_add_double(p, v);
  }
}

/* The contended path: claim stripes when the counter has none yet (w == 0:
 * this thread's CAS just failed), then add to this thread's stripe cell, or
 * to the own cell while stripes are pending. Out of line, so that the
 * uncontended path saves no register and ends in a tail call. */
static __attribute__((noinline)) void add_contended(spectator_counter_t *c, uintptr_t w,
                                                    double amount, bool whole) {
  if (w == 0) w = spectator__stripes_claim(c->src, &c->stripes);
  spectator__cell_t *cell = spectator__stripe_pick(w);
  spectator__dsum_t *s = cell ? sum_cell(cell) : &c->sum;
  if (whole) {
    if (cell)
      cell_add_u64(&s->ints, (uint64_t)(uint32_t)amount);
    else
      atomic_fetch_add_explicit(&s->ints, (uint64_t)(uint32_t)amount, memory_order_relaxed);
  } else {
    if (cell)
      cell_add_double(&s->dbits, amount);
    else
      spectator__atomic_add_double(&s->dbits, amount);
  }
}

void spectator_counter_increment(spectator_counter_t *c) {
  if (SPECTATOR__UNLIKELY(!c)) return;
  uintptr_t w = atomic_load_explicit(&c->stripes, memory_order_acquire);
  if (SPECTATOR__LIKELY(w == 0)) {
    uint64_t cur = atomic_load_explicit(&c->sum.ints, memory_order_relaxed);
    if (SPECTATOR__LIKELY(atomic_compare_exchange_strong_explicit(
            &c->sum.ints, &cur, cur + 1, memory_order_relaxed, memory_order_relaxed)))
      return;
  }
  add_contended(c, w, 1.0, true);
}

void spectator_counter_add(spectator_counter_t *c, double amount) {
  if (SPECTATOR__UNLIKELY(!c)) return;
  /* NaN fails the first test, +inf the second. */
  if (SPECTATOR__UNLIKELY(!(amount > 0 && amount <= DBL_MAX))) return;
  bool whole = spectator__is_small_whole(amount);
  uintptr_t w = atomic_load_explicit(&c->stripes, memory_order_acquire);
  if (SPECTATOR__LIKELY(w == 0)) {
    if (whole) {
      uint64_t cur = atomic_load_explicit(&c->sum.ints, memory_order_relaxed);
      if (SPECTATOR__LIKELY(atomic_compare_exchange_strong_explicit(
              &c->sum.ints, &cur, cur + (uint64_t)(uint32_t)amount, memory_order_relaxed,
              memory_order_relaxed)))
        return;
    } else {
      uint64_t cur = atomic_load_explicit(&c->sum.dbits, memory_order_relaxed);
      if (SPECTATOR__LIKELY(atomic_compare_exchange_strong_explicit(
              &c->sum.dbits, &cur, spectator__d2b(spectator__b2d(cur) + amount),
              memory_order_relaxed, memory_order_relaxed)))
        return;
    }
  }
  add_contended(c, w, amount, whole);
}

double spectator_counter_count(const spectator_counter_t *c) {
  if (!c || spectator__is_noop(c)) return 0;
  double v = spectator__dsum_peek(&c->sum);
  uintptr_t w = atomic_load_explicit(&c->stripes, memory_order_acquire);
  spectator__cell_t *cells = spectator__stripes_cells(w);
  for (size_t i = 0, n = spectator__stripes_count(w); i < n; i++)
    v += spectator__dsum_peek(sum_cell(&cells[i]));
  return v;
}

static void init(spectator__meter_t *m, const spectator__meter_params_t *p,
                 const spectator__meter_env_t *env) {
  (void)p;
  ((spectator_counter_t *)m)->src = env->stripes;
  /* Stripe blocks ready before it contends: the recording path never
   * allocates. Best effort: without them a contended counter keeps working
   * on its own cell. */
  spectator__stripes_refill(env->stripes, true);
}

static bool measure(spectator__meter_t *m, spectator__snap_ctx_t *ctx) {
  spectator_counter_t *c = (spectator_counter_t *)m;
  uintptr_t w = atomic_load_explicit(&c->stripes, memory_order_acquire);
  if (w == SPECTATOR__STRIPES_PENDING && c->src) /* the pool may have been refilled */
    w = spectator__stripes_claim(c->src, &c->stripes);
  double v = spectator__dsum_take(&c->sum);
  spectator__cell_t *cells = spectator__stripes_cells(w);
  for (size_t i = 0, n = spectator__stripes_count(w); i < n; i++)
    v += spectator__dsum_take(sum_cell(&cells[i]));
  if (v == 0) return false;
  spectator__records_add(ctx->out, m->id, spectator__default_stat(m, SPECTATOR__STAT_COUNT), 0, v);
  return true;
}

/* A one-shot call (spectator_record). */
static void record(spectator__meter_t *m, double value) {
  spectator_counter_add((spectator_counter_t *)m, value);
}

SPECTATOR__METER_TYPE(counter, "counter", .init = init, .measure = measure, .record = record,
                      .line_type = 'c');
