/*
 * Long task timers (Spectator Java's LongTaskTimer): tasks that run for
 * minutes or hours (a batch job, a migration) are reported while they run.
 * Each snapshot reports statistic=activeTasks (the tasks running) and
 * statistic=duration (the seconds all running tasks have run so far), both
 * gauges (op max), computed at the snapshot from the registry's clock. An
 * idle timer reports 0 and 0, as Java's does.
 *
 * DESIGN
 * start and stop are recording calls: no lock, no allocation, no log. They
 * read the registry's clock (the task's start, and its end for the duration
 * stop returns). A timer holds a fixed table of SLOTS task slots; a slot is
 * free (seq 0), being claimed (CLAIMING), or holds a running task: the task's
 * sequence number (unique per timer, from a counter) and its start time.
 *
 * - start takes the next sequence number, claims a free slot with a
 *   compare-and-swap (the search starts at a slot picked by the sequence
 *   number, so concurrent starts spread), writes the start time and then
 *   publishes the sequence number (release). The task id is the sequence
 *   number and the slot index together, so it is >= 0 and never reused.
 * - stop checks that the slot still holds that sequence number, reads the
 *   start, and frees the slot with a compare-and-swap from exactly that
 *   number: a second stop of the same task, an id from before a fork or a
 *   made-up id fails and returns -1, as Java's does for an unknown task.
 * - a snapshot reads the slots (acquire on the sequence number, so the start
 *   time it reads is the task's) for the duration. The slots are read one
 *   after another, not at one instant, so a count of them could include a
 *   task stopped early in the scan and another started later in it: more
 *   tasks than ever ran at once. activeTasks is therefore a counter of its
 *   own, raised by a tracked start and lowered by a stop that frees a slot,
 *   exact at the instant it is read.
 *
 * When every slot is busy, a start does not wait and does not allocate: the
 * task is untracked. Its id carries its start time (UNTRACKED bit set), so
 * stop still returns its duration, but it is missing from activeTasks and
 * duration. Such starts are counted, and the next snapshot logs how many.
 */
#include <math.h>

#include "clock.h"
#include "log.h"
#include "meter.h"

#define SLOT_BITS 8
#define SLOTS (1u << SLOT_BITS) /* tasks tracked at once per timer */
#define CLAIMING UINT64_MAX
/* Sequence numbers stay below 2^54, so that a task id (sequence << 8 | slot)
 * is below 2^62; bit 62 marks an untracked task, whose low bits are its start
 * time since the timer was made. */
#define MAX_SEQ ((UINT64_C(1) << 54) - 1)
#define UNTRACKED (INT64_C(1) << 62)
#define UNTRACKED_MASK (UNTRACKED - 1)

typedef struct {
  _Atomic uint64_t seq;     /* 0: free; CLAIMING; else the task's sequence number */
  _Atomic int64_t start_ns; /* registry clock; valid while seq holds the task */
} slot_t;

struct spectator_long_task_timer {
  spectator__meter_t hdr;
  spectator_clock_fn clock;
  void *clock_ctx;
  int64_t base_ns;            /* when the timer was made (registry clock) */
  _Atomic uint64_t untracked; /* starts that found every slot busy, since the last snapshot */
  _Atomic uint64_t next_seq;  /* the next task's sequence number; starts at 1 */
  _Atomic int64_t running;    /* tracked tasks started and not yet stopped */
  _Atomic uint8_t touched;    /* a start or stop since the last snapshot */
  slot_t slots[SLOTS];
} SPECTATOR__ALIGNED;

static inline int64_t diff(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }

/* Seconds from start to now; 0 for a clock that went backwards. */
static inline double seconds_since(int64_t start, int64_t now) {
  int64_t d = diff(now, start);
  return d > 0 ? (double)d / 1e9 : 0;
}

/* Activity for the registry (an interval with starts or stops); written only
 * when not set yet, so it costs a read on a busy timer. */
static inline void touch(spectator_long_task_timer_t *t) {
  if (!atomic_load_explicit(&t->touched, memory_order_relaxed))
    atomic_store_explicit(&t->touched, 1, memory_order_relaxed);
}

int64_t spectator_long_task_timer_start(spectator_long_task_timer_t *t) {
  if (SPECTATOR__UNLIKELY(!t) || spectator__is_noop(t)) return -1;
  int64_t now = spectator__clock_now(t->clock, t->clock_ctx);
  touch(t);
  uint64_t seq = atomic_fetch_add_explicit(&t->next_seq, 1, memory_order_relaxed);
  if (SPECTATOR__LIKELY(seq <= MAX_SEQ)) {
    for (unsigned k = 0; k < SLOTS; k++) {
      unsigned i = (unsigned)(seq + k) & (SLOTS - 1);
      slot_t *s = &t->slots[i];
      uint64_t expect = 0;
      if (atomic_load_explicit(&s->seq, memory_order_relaxed) == 0 &&
          atomic_compare_exchange_strong_explicit(&s->seq, &expect, CLAIMING, memory_order_relaxed,
                                                  memory_order_relaxed)) {
        atomic_store_explicit(&s->start_ns, now, memory_order_relaxed);
        atomic_store_explicit(&s->seq, seq, memory_order_release);
        atomic_fetch_add_explicit(&t->running, 1, memory_order_relaxed);
        return (int64_t)(seq << SLOT_BITS | i);
      }
    }
  }
  atomic_fetch_add_explicit(&t->untracked, 1, memory_order_relaxed);
  int64_t since = diff(now, t->base_ns);
  return UNTRACKED | (since > 0 ? since & UNTRACKED_MASK : 0);
}

double spectator_long_task_timer_stop(spectator_long_task_timer_t *t, int64_t task) {
  if (SPECTATOR__UNLIKELY(!t) || spectator__is_noop(t) || task < 0) return -1;
  if (task & UNTRACKED)
    return seconds_since(t->base_ns + (task & UNTRACKED_MASK),
                         spectator__clock_now(t->clock, t->clock_ctx));
  uint64_t seq = (uint64_t)task >> SLOT_BITS;
  slot_t *s = &t->slots[(uint64_t)task & (SLOTS - 1)];
  if (seq == 0 || atomic_load_explicit(&s->seq, memory_order_acquire) != seq) return -1;
  /* Sequence numbers are never reused: if the slot still holds seq when it
   * is freed below, this start time was the task's. */
  int64_t start = atomic_load_explicit(&s->start_ns, memory_order_relaxed);
  uint64_t expect = seq;
  if (!atomic_compare_exchange_strong_explicit(&s->seq, &expect, 0, memory_order_relaxed,
                                               memory_order_relaxed))
    return -1; /* stopped by another call meanwhile */
  atomic_fetch_sub_explicit(&t->running, 1, memory_order_relaxed);
  touch(t);
  return seconds_since(start, spectator__clock_now(t->clock, t->clock_ctx));
}

/* Tracked tasks running now. A stop of a task whose start has not yet
 * returned (its id guessed by another thread) can lower the counter first:
 * never below 0. */
static uint32_t active_now(const spectator_long_task_timer_t *t) {
  int64_t n = atomic_load_explicit(&t->running, memory_order_relaxed);
  return n > 0 ? (uint32_t)n : 0;
}

/* The nanoseconds the running tasks have run at registry time now. */
static double total_ns(const spectator_long_task_timer_t *t, int64_t now) {
  double sum = 0;
  for (unsigned i = 0; i < SLOTS; i++) {
    uint64_t seq = atomic_load_explicit(&t->slots[i].seq, memory_order_acquire);
    if (seq == 0 || seq == CLAIMING) continue;
    int64_t d = diff(now, atomic_load_explicit(&t->slots[i].start_ns, memory_order_relaxed));
    if (d > 0) sum += (double)d;
  }
  return sum;
}

int spectator_long_task_timer_active_tasks(const spectator_long_task_timer_t *t) {
  if (!t || spectator__is_noop(t)) return 0;
  return (int)active_now(t);
}

double spectator_long_task_timer_duration(const spectator_long_task_timer_t *t) {
  if (!t || spectator__is_noop(t)) return 0;
  return total_ns(t, spectator__clock_now(t->clock, t->clock_ctx)) / 1e9;
}

static void init(spectator__meter_t *m, const spectator__meter_params_t *p,
                 const spectator__meter_env_t *env) {
  (void)p;
  spectator_long_task_timer_t *t = (spectator_long_task_timer_t *)m;
  t->clock = env->clock;
  t->clock_ctx = env->clock_ctx;
  t->base_ns = env->now_ns;
  atomic_init(&t->next_seq, 1);
}

static bool measure(spectator__meter_t *m, spectator__snap_ctx_t *ctx) {
  spectator_long_task_timer_t *t = (spectator_long_task_timer_t *)m;
  uint32_t active = active_now(t);
  double ns = total_ns(t, ctx->now_ns);
  spectator__records_add(ctx->out, m->id, SPECTATOR__STAT_ACTIVE_TASKS, 0, (double)active);
  spectator__records_add(ctx->out, m->id, SPECTATOR__STAT_DURATION, 0, ns / 1e9);
  uint64_t untracked = atomic_exchange_explicit(&t->untracked, 0, memory_order_relaxed);
  if (untracked && ctx->out) {
    static spectator__ratelimit_t rl;
    SPECTATOR__LOG_LIMITED(&rl, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                           "long task timer '%.*s': %llu tasks started while its %u task slots "
                           "were all busy; they are missing from activeTasks and duration "
                           "(stop still returns their time)",
                           SPECTATOR__LOG_STR(spectator_id_name(m->id)),
                           (unsigned long long)untracked, SLOTS);
  }
  /* Reported every interval; activity is a start or stop in it. */
  return atomic_exchange_explicit(&t->touched, 0, memory_order_relaxed);
}

/* The parent's tasks ran on the parent's threads: the child reports only the
 * tasks it starts, and stopping a parent's task there returns -1. */
static void postfork_child(spectator__meter_t *m) {
  spectator_long_task_timer_t *t = (spectator_long_task_timer_t *)m;
  for (unsigned i = 0; i < SLOTS; i++) atomic_store(&t->slots[i].seq, 0);
  atomic_store(&t->running, 0);
  atomic_store(&t->untracked, 0);
  atomic_store(&t->touched, 0);
}

/* No .record: a task is started and stopped, there is no one value to record. */
/* spectatord has no long task timer: its two statistics go as gauges ('g'),
 * each line with its statistic tag, every interval, as the aggregator gets
 * them. */
SPECTATOR__METER_TYPE(long_task_timer, "long task timer", .init = init, .measure = measure,
                      .postfork_child = postfork_child, .line_type = 'g',
                      .line_kind = SPECTATOR__LINES_MEASURED_STATS);
