/*
 * Tests for src/poller.c: polled meters. A poller's function is called at
 * every snapshot of its registry, on the snapshotting thread, with no library
 * lock held; a poll gauge reports what it returns, a poll monotonic counter
 * the increase. spectator_poller_remove returns only when the function is not
 * running and will not run again, from any thread, from inside the function
 * too. The worst cases are built for real: a function blocked while other
 * threads record, look up and snapshot; removal racing snapshots; a fork while
 * another thread is inside a function.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agg_fixture.h"
#include "meter.h"
#include "meter_test_util.h"

#define GAUGE_TAGS SPECTATOR_TAGS("queue", "jobs", "statistic", "gauge")
#define COUNT_TAGS SPECTATOR_TAGS("queue", "jobs", "statistic", "count")

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* A value to report and a count of calls. */
typedef struct {
  _Atomic long calls;
  double value;
  pthread_t last_thread;
} source_t;

static double read_source(void *ctx) {
  source_t *s = ctx;
  atomic_fetch_add(&s->calls, 1);
  s->last_thread = pthread_self();
  return s->value;
}

static spectator_poller_t *poll_gauge(spectator_registry_t *reg, source_t *s) {
  spectator_poller_t *p = spectator_registry_poll_gauge(
      reg, "queue.size", SPECTATOR_TAGS("queue", "jobs"), read_source, s);
  assert_non_null(p);
  return p;
}

static spectator_poller_t *poll_counter(spectator_registry_t *reg, source_t *s) {
  spectator_poller_t *p = spectator_registry_poll_monotonic_counter(
      reg, "queue.done", SPECTATOR_TAGS("queue", "jobs"), read_source, s);
  assert_non_null(p);
  return p;
}

/* A deadline for waits on conditions that must come true (a hang fails the
 * test instead of stalling it). */
static struct timespec deadline_in(double s) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long long ns = ts.tv_nsec + (long long)(s * 1e9);
  ts.tv_sec += ns / 1000000000LL;
  ts.tv_nsec = ns % 1000000000LL;
  return ts;
}

/* A gate a poller's function blocks on until the test opens it. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool inside; /* the function has entered */
  bool open;
  bool returned; /* the function has returned */
  long calls;
  pid_t owner; /* in another process (a fork child) the gate does not block */
} gate_t;

#define GATE_INIT \
  { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, false, 0, 0 }

static double blocking_fn(void *ctx) {
  gate_t *g = ctx;
  if (getpid() != g->owner) return 7; /* a forked child: never blocks */
  pthread_mutex_lock(&g->mu);
  g->calls++;
  g->inside = true;
  g->returned = false;
  pthread_cond_broadcast(&g->cv);
  struct timespec until = deadline_in(30);
  while (!g->open)
    if (pthread_cond_timedwait(&g->cv, &g->mu, &until) == ETIMEDOUT) break;
  g->inside = false;
  g->returned = true;
  pthread_mutex_unlock(&g->mu);
  return 7;
}

/* Wait (bounded) until the blocking function is inside. */
static void gate_wait_inside(gate_t *g) {
  pthread_mutex_lock(&g->mu);
  struct timespec until = deadline_in(30);
  while (!g->inside)
    if (pthread_cond_timedwait(&g->cv, &g->mu, &until) == ETIMEDOUT) break;
  bool inside = g->inside;
  pthread_mutex_unlock(&g->mu);
  assert_true(inside);
}

static void gate_open(gate_t *g) {
  pthread_mutex_lock(&g->mu);
  g->open = true;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

static bool gate_is_inside(gate_t *g) {
  pthread_mutex_lock(&g->mu);
  bool inside = g->inside;
  pthread_mutex_unlock(&g->mu);
  return inside;
}

static void *snapshot_thread(void *arg) {
  spectator_measurements_free(spectator_registry_snapshot(arg));
  return NULL;
}

/* A snapshot on another thread that keeps its measurements. */
typedef struct {
  spectator_registry_t *reg;
  spectator_measurements_t *ms;
} kept_snapshot_t;

static void *kept_snapshot_thread(void *arg) {
  kept_snapshot_t *k = arg;
  k->ms = spectator_registry_snapshot(k->reg);
  return NULL;
}

/* Join with a deadline: a thread that does not finish fails the test. */
static void join_within(pthread_t t, double s) {
  struct timespec until = deadline_in(s);
  int rc = pthread_timedjoin_np(t, NULL, &until);
  if (rc != 0) fail_msg("a thread did not finish within %.0f s (hang)", s);
}

/* ------------------------------------------------------------------------ */
/* What they report                                                          */
/* ------------------------------------------------------------------------ */

static void poll_gauge_reports_what_its_function_returns_at_every_snapshot(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0); /* does not publish */
  source_t s = {0, 12, 0};
  poll_gauge(reg, &s);
  assert_int_equal(atomic_load(&s.calls), 0); /* not called at creation */
  mt_expect_single(reg, "queue.size", GAUGE_TAGS, SPECTATOR_OP_MAX, 12);
  assert_int_equal(atomic_load(&s.calls), 1);
  assert_true(pthread_equal(s.last_thread, pthread_self())); /* on the snapshotting thread */
  s.value = 3.5;
  mt_expect_single(reg, "queue.size", GAUGE_TAGS, SPECTATOR_OP_MAX, 3.5);
  s.value = -2;
  mt_expect_single(reg, "queue.size", GAUGE_TAGS, SPECTATOR_OP_MAX, -2);
  assert_int_equal(atomic_load(&s.calls), 3);
  spectator_registry_free(reg);
}

static void poll_gauge_nan_means_nothing_this_interval(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  source_t s = {0, NAN, 0};
  poll_gauge(reg, &s);
  mt_expect_empty(reg);
  s.value = 4;
  mt_expect_single(reg, "queue.size", GAUGE_TAGS, SPECTATOR_OP_MAX, 4);
  s.value = NAN;
  mt_expect_empty(reg);
  s.value = INFINITY; /* not a value either */
  mt_expect_empty(reg);
  assert_int_equal(atomic_load(&s.calls), 4);
  spectator_registry_free(reg);
}

/* Several pollers of one id add up, as in Java; NaN ones are left out. */
static void poll_gauges_of_one_id_add_up(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  source_t a = {0, 2, 0}, b = {0, 5, 0}, other = {0, 100, 0};
  spectator_poller_t *pa = poll_gauge(reg, &a);
  assert_non_null(spectator_registry_poll_gauge(reg, "other", NULL, read_source, &other));
  poll_gauge(reg, &b);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 2);
  mt_assert_measurement(ms, "queue.size", GAUGE_TAGS, SPECTATOR_OP_MAX, 7);
  mt_assert_measurement(ms, "other", SPECTATOR_TAGS("statistic", "gauge"), SPECTATOR_OP_MAX, 100);
  spectator_measurements_free(ms);
  b.value = NAN;
  ms = mt_snapshot(reg);
  mt_assert_measurement(ms, "queue.size", GAUGE_TAGS, SPECTATOR_OP_MAX, 2);
  spectator_measurements_free(ms);
  /* One removed: the other still reports. */
  b.value = 5;
  spectator_poller_remove(pa);
  ms = mt_snapshot(reg);
  mt_assert_measurement(ms, "queue.size", GAUGE_TAGS, SPECTATOR_OP_MAX, 5);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void poll_monotonic_counter_reports_the_increase_of_its_count(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  source_t s = {0, 1000, 0};
  poll_counter(reg, &s);
  mt_expect_empty(reg); /* the first reading only sets the base */
  s.value = 1250;
  mt_expect_single(reg, "queue.done", COUNT_TAGS, SPECTATOR_OP_ADD, 250);
  mt_expect_empty(reg); /* no increase */
  s.value = 1300.5;
  mt_expect_single(reg, "queue.done", COUNT_TAGS, SPECTATOR_OP_ADD, 50.5);
  /* A decrease (the source restarted) adds nothing and is the new base, as
   * Java's PolledMeter does. */
  s.value = 10;
  mt_expect_empty(reg);
  s.value = 25;
  mt_expect_single(reg, "queue.done", COUNT_TAGS, SPECTATOR_OP_ADD, 15);
  /* NaN: nothing this interval; the base stays. */
  s.value = NAN;
  mt_expect_empty(reg);
  s.value = 30;
  mt_expect_single(reg, "queue.done", COUNT_TAGS, SPECTATOR_OP_ADD, 5);
  assert_int_equal(atomic_load(&s.calls), 8);
  spectator_registry_free(reg);
}

/* Each poller of one id has its own base; their increases add up. */
static void poll_monotonic_counters_of_one_id_add_up(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  source_t a = {0, 100, 0}, b = {0, 7, 0};
  poll_counter(reg, &a);
  poll_counter(reg, &b);
  mt_expect_empty(reg);
  a.value = 110;
  b.value = 9;
  mt_expect_single(reg, "queue.done", COUNT_TAGS, SPECTATOR_OP_ADD, 12);
  spectator_registry_free(reg);
}

/* ------------------------------------------------------------------------ */
/* Removal                                                                   */
/* ------------------------------------------------------------------------ */

static void removed_poller_is_not_called_again_and_its_gauge_stops_at_once(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  source_t *s = calloc(1, sizeof(*s)); /* freed after removal: a late call would be caught */
  s->value = 9;
  spectator_poller_t *p = poll_gauge(reg, s);
  mt_expect_single(reg, "queue.size", GAUGE_TAGS, SPECTATOR_OP_MAX, 9);
  spectator_poller_remove(p);
  assert_int_equal(atomic_load(&s->calls), 1);
  free(s);
  mt_expect_empty(reg); /* not the last value for the gauge's TTL */
  mt_expect_empty(reg);
  spectator_poller_remove(NULL); /* no-op */
  spectator_registry_free(reg);
}

typedef struct {
  spectator_poller_t *self;
  spectator_poller_t *other;
  _Atomic long calls;
} remover_ctx_t;

static double removes_itself(void *ctx) {
  remover_ctx_t *r = ctx;
  atomic_fetch_add(&r->calls, 1);
  spectator_poller_remove(r->self); /* must not wait for itself */
  return 3;
}

static void a_poller_can_remove_itself_from_inside_its_function(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  remover_ctx_t r = {0};
  r.self = spectator_registry_poll_gauge(reg, "self", NULL, removes_itself, &r);
  assert_non_null(r.self);
  /* Its last value is not reported: it was removed before it returned. */
  mt_expect_empty(reg);
  mt_expect_empty(reg);
  assert_int_equal(atomic_load(&r.calls), 1);
  spectator_registry_free(reg);
}

static double removes_the_other(void *ctx) {
  remover_ctx_t *r = ctx;
  atomic_fetch_add(&r->calls, 1);
  if (r->other) spectator_poller_remove(r->other);
  r->other = NULL;
  return 1;
}

static void a_poller_can_remove_another_from_inside_its_function(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  remover_ctx_t r = {0};
  source_t before = {0, 1, 0}, after = {0, 2, 0};
  /* one registered before it, one after: both removed, neither called */
  spectator_poller_t *first = spectator_registry_poll_gauge(reg, "a", NULL, read_source, &before);
  r.self = spectator_registry_poll_gauge(reg, "b", NULL, removes_the_other, &r);
  spectator_poller_t *last = spectator_registry_poll_gauge(reg, "c", NULL, read_source, &after);
  r.other = last;
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement(ms, "b", SPECTATOR_TAGS("statistic", "gauge"), SPECTATOR_OP_MAX, 1);
  mt_assert_absent(ms, "c", SPECTATOR_TAGS("statistic", "gauge"));
  spectator_measurements_free(ms);
  assert_int_equal(atomic_load(&after.calls), 0);
  r.other = first;
  ms = mt_snapshot(reg); /* "a" was called before "b" removed it */
  spectator_measurements_free(ms);
  assert_int_equal(atomic_load(&before.calls), 2);
  mt_expect_single(reg, "b", SPECTATOR_TAGS("statistic", "gauge"), SPECTATOR_OP_MAX, 1);
  assert_int_equal(atomic_load(&before.calls), 2);
  spectator_registry_free(reg);
}

typedef struct {
  spectator_poller_t *p;
  gate_t *gate;
  _Atomic bool returned;
  bool fn_had_returned; /* when remove returned */
} remove_arg_t;

static void *remove_thread(void *arg) {
  remove_arg_t *a = arg;
  spectator_poller_remove(a->p);
  pthread_mutex_lock(&a->gate->mu);
  a->fn_had_returned = a->gate->returned;
  pthread_mutex_unlock(&a->gate->mu);
  atomic_store(&a->returned, true);
  return NULL;
}

/* Removing a poller whose function runs on another thread waits for it. */
static void remove_waits_for_a_call_in_progress_on_another_thread(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  gate_t gate = GATE_INIT;
  gate.owner = getpid();
  spectator_poller_t *p = spectator_registry_poll_gauge(reg, "slow", NULL, blocking_fn, &gate);
  pthread_t snap, rem;
  assert_int_equal(pthread_create(&snap, NULL, snapshot_thread, reg), 0);
  gate_wait_inside(&gate);
  remove_arg_t a = {p, &gate, false, false};
  assert_int_equal(pthread_create(&rem, NULL, remove_thread, &a), 0);
  /* Give the remover time to reach the wait; whatever it did, it must not
   * have returned while the function is inside. */
  struct timespec nap = {0, 50 * 1000 * 1000};
  nanosleep(&nap, NULL);
  assert_false(atomic_load(&a.returned));
  assert_true(gate_is_inside(&gate));
  gate_open(&gate);
  join_within(rem, 30);
  join_within(snap, 30);
  assert_true(a.fn_had_returned);
  assert_int_equal(gate.calls, 1);
  mt_expect_empty(reg); /* removed: neither called nor reported */
  assert_int_equal(gate.calls, 1);
  spectator_registry_free(reg);
}

/* ------------------------------------------------------------------------ */
/* Calling back into the library                                             */
/* ------------------------------------------------------------------------ */

typedef struct {
  spectator_registry_t *reg;
  _Atomic long calls;
  long inner_measurements;
  bool inner_snapshot_ok;
  spectator_poller_t *made;
  source_t made_src;
} reentrant_t;

static double calls_back(void *ctx) {
  reentrant_t *r = ctx;
  atomic_fetch_add(&r->calls, 1);
  /* lookups (hits and a miss) and recording */
  spectator_counter_increment(spectator_registry_counter(r->reg, "from.poller", NULL));
  spectator_registry_record(r->reg, SPECTATOR_METER_COUNTER, "from.poller.oneshot", NULL, 2);
  /* a new poller (first called at the next snapshot) */
  if (!r->made) {
    r->made_src.value = 11;
    r->made = spectator_registry_poll_gauge(r->reg, "made.inside", NULL, read_source, &r->made_src);
  }
  /* a snapshot of its own registry: handled, the pollers are not called again */
  spectator_measurements_t *ms = spectator_registry_snapshot(r->reg);
  r->inner_snapshot_ok = ms != NULL;
  r->inner_measurements = (long)spectator_measurements_count(ms);
  spectator_measurements_free(ms);
  /* stopping or freeing the registry: refused */
  spectator_registry_stop(r->reg);
  spectator_registry_free(r->reg);
  return 1;
}

static void a_function_that_calls_back_into_the_library_does_not_deadlock(void **state) {
  (void)state;
  tu_log_capture();
  spectator_registry_t *reg = mt_registry(NULL, 0);
  reentrant_t r = {reg, 0, 0, false, NULL, {0}};
  assert_non_null(spectator_registry_poll_gauge(reg, "reentrant", NULL, calls_back, &r));
  spectator_measurements_t *ms = mt_snapshot(reg);
  assert_int_equal(atomic_load(&r.calls), 1);          /* not again for the inner snapshot */
  assert_int_equal(atomic_load(&r.made_src.calls), 0); /* made during the run: next one */
  assert_true(r.inner_snapshot_ok);
  assert_int_equal(r.inner_measurements, 2); /* what the function recorded before it */
  mt_assert_measurement_count(ms, 1);        /* the poll gauge: the inner one took the rest */
  mt_assert_measurement(ms, "reentrant", SPECTATOR_TAGS("statistic", "gauge"), SPECTATOR_OP_MAX, 1);
  spectator_measurements_free(ms);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY,
                                         "spectator_registry_stop called from inside a poller"),
                   1);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY,
                                         "spectator_registry_free called from inside a poller"),
                   1);
  tu_log_release();
  ms = mt_snapshot(reg);
  mt_assert_measurement(ms, "made.inside", SPECTATOR_TAGS("statistic", "gauge"), SPECTATOR_OP_MAX,
                        11);
  spectator_measurements_free(ms);
  assert_int_equal(atomic_load(&r.calls), 2);
  spectator_registry_free(reg); /* outside a function: works */
}

/* A snapshot of registry B from inside a poller of A, whose function takes a
 * snapshot of A: the pollers of each run once, nothing waits. */
typedef struct {
  spectator_registry_t *other;
  _Atomic long calls;
} cross_t;

static double snapshots_other(void *ctx) {
  cross_t *c = ctx;
  atomic_fetch_add(&c->calls, 1);
  spectator_measurements_free(spectator_registry_snapshot(c->other));
  return 1;
}

static void pollers_that_snapshot_each_others_registries_do_not_recurse(void **state) {
  (void)state;
  spectator_registry_t *a = mt_registry(NULL, 0), *b = mt_registry(NULL, 0);
  cross_t ca = {b, 0}, cb = {a, 0};
  spectator_registry_poll_gauge(a, "a", NULL, snapshots_other, &ca);
  spectator_registry_poll_gauge(b, "b", NULL, snapshots_other, &cb);
  spectator_measurements_free(mt_snapshot(a));
  assert_int_equal(atomic_load(&ca.calls), 1);
  assert_int_equal(atomic_load(&cb.calls), 1);
  spectator_registry_free(a);
  spectator_registry_free(b);
}

/* ------------------------------------------------------------------------ */
/* A slow function                                                           */
/* ------------------------------------------------------------------------ */

typedef struct {
  spectator_registry_t *reg;
  int id;
  _Atomic long done;
} worker_t;

#define WORK 2000

static void *record_and_look_up(void *arg) {
  worker_t *w = arg;
  char name[64];
  for (int i = 0; i < WORK; i++) {
    snprintf(name, sizeof(name), "worker%d.meter%d", w->id, i % 300); /* misses, then hits */
    spectator_counter_t *c = spectator_registry_counter(w->reg, name, NULL);
    spectator_counter_increment(c);
    spectator_registry_record(w->reg, SPECTATOR_METER_TIMER, "worker.oneshot", NULL, 0.001);
    spectator_gauge_set(spectator_registry_gauge(w->reg, "worker.gauge", NULL), i);
    spectator_registry_size(w->reg);
  }
  atomic_store(&w->done, 1);
  return NULL;
}

/* The sum of the workers' counters and one-shot timer counts in a snapshot. */
static double worker_total(const spectator_measurements_t *ms) {
  double total = 0, v = 0;
  for (int id = 0; id < 2; id++) {
    for (int k = 0; k < 300; k++) {
      char name[64];
      snprintf(name, sizeof(name), "worker%d.meter%d", id, k);
      if (tu_find(ms, name, SPECTATOR_TAGS("statistic", "count"), &v)) total += v;
    }
  }
  if (tu_find(ms, "worker.oneshot", SPECTATOR_TAGS("statistic", "count"), &v)) total += v;
  return total;
}

/* While a poller's function is blocked inside a snapshot, other threads
 * record, look up (creating meters: the insert lock), make and remove other
 * pollers, and take snapshots (which do not wait for it), all within a bound
 * and all while the function is still blocked; and nothing recorded meanwhile
 * is lost. */
static void a_blocked_function_does_not_block_recording_lookups_or_snapshots(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  gate_t gate = GATE_INIT;
  gate.owner = getpid();
  spectator_registry_poll_gauge(reg, "slow", NULL, blocking_fn, &gate);
  kept_snapshot_t blocked = {reg, NULL}, during = {reg, NULL};
  pthread_t snap, snap2;
  assert_int_equal(pthread_create(&snap, NULL, kept_snapshot_thread, &blocked), 0);
  gate_wait_inside(&gate);

  worker_t w[2] = {{reg, 0, 0}, {reg, 1, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[i], NULL, record_and_look_up, &w[i]), 0);
  for (int i = 0; i < 2; i++) join_within(th[i], 60);
  /* Another snapshot does not wait for the function: its results serve it. */
  assert_int_equal(pthread_create(&snap2, NULL, kept_snapshot_thread, &during), 0);
  join_within(snap2, 30);
  assert_non_null(during.ms);
  source_t s = {0, 1, 0};
  spectator_poller_t *other = spectator_registry_poll_gauge(reg, "other", NULL, read_source, &s);
  assert_non_null(other);
  spectator_poller_remove(other);     /* not running: returns at once */
  assert_true(gate_is_inside(&gate)); /* all of it while the function was blocked */
  assert_int_equal(gate.calls, 1);

  gate_open(&gate);
  join_within(snap, 30);
  assert_non_null(blocked.ms);
  spectator_measurements_t *after = mt_snapshot(reg);
  /* Every increment and one-shot record is in exactly one of the snapshots. */
  double total = worker_total(during.ms) + worker_total(blocked.ms) + worker_total(after);
  assert_true(total == 4.0 * WORK);
  mt_assert_measurement(blocked.ms, "slow", SPECTATOR_TAGS("statistic", "gauge"), SPECTATOR_OP_MAX,
                        7);
  mt_assert_measurement(after, "slow", SPECTATOR_TAGS("statistic", "gauge"), SPECTATOR_OP_MAX, 7);
  spectator_measurements_free(during.ms);
  spectator_measurements_free(blocked.ms);
  spectator_measurements_free(after);
  assert_int_equal(gate.calls, 2);
  spectator_registry_free(reg);
}

/* ------------------------------------------------------------------------ */
/* Removal racing snapshots                                                  */
/* ------------------------------------------------------------------------ */

typedef struct {
  _Atomic int alive; /* 1 while the poller may call; 0 just before free */
  _Atomic long calls;
  _Atomic long late; /* calls after removal: must stay 0 */
} racy_ctx_t;

static double racy_fn(void *ctx) {
  racy_ctx_t *c = ctx;
  if (atomic_load(&c->alive) != 1) atomic_fetch_add(&c->late, 1);
  atomic_fetch_add(&c->calls, 1);
  return 1;
}

typedef struct {
  spectator_registry_t *reg;
  _Atomic bool stop;
  _Atomic long late;
  _Atomic long rounds;
} race_arg_t;

static void *add_remove_loop(void *arg) {
  race_arg_t *r = arg;
  for (int i = 0; i < 3000; i++) {
    racy_ctx_t *c = calloc(1, sizeof(*c));
    atomic_store(&c->alive, 1);
    spectator_poller_t *p =
        i % 2 ? spectator_registry_poll_gauge(r->reg, "racy", NULL, racy_fn, c)
              : spectator_registry_poll_monotonic_counter(r->reg, "racy.count", NULL, racy_fn, c);
    /* let a snapshot or two catch it running now and then */
    for (int k = 0; k < (i % 7) * 50; k++) atomic_load(&r->stop);
    spectator_poller_remove(p);
    /* From here fn is not running and will not run: a call now is late,
     * and the memory is gone (a sanitizer reports any access). */
    atomic_store(&c->alive, 0);
    atomic_fetch_add(&r->late, atomic_load(&c->late));
    free(c);
    atomic_fetch_add(&r->rounds, 1);
  }
  atomic_store(&r->stop, true);
  return NULL;
}

static void *snapshot_loop(void *arg) {
  race_arg_t *r = arg;
  while (!atomic_load(&r->stop)) spectator_measurements_free(spectator_registry_snapshot(r->reg));
  return NULL;
}

static void removal_racing_snapshots_never_calls_a_removed_function(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  race_arg_t r = {reg, false, 0, 0};
  pthread_t adder, snappers[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&snappers[i], NULL, snapshot_loop, &r), 0);
  assert_int_equal(pthread_create(&adder, NULL, add_remove_loop, &r), 0);
  join_within(adder, 120);
  for (int i = 0; i < 2; i++) join_within(snappers[i], 30);
  assert_int_equal(atomic_load(&r.late), 0);
  assert_int_equal(atomic_load(&r.rounds), 3000);
  spectator_registry_free(reg);
}

/* ------------------------------------------------------------------------ */
/* Bad input                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct {
  spectator_registry_t *reg;
  const char *name;
  const char *const *tags;
  spectator_poll_fn fn;
  const char *says;
  int counter;
} bad_case_t;

/* In a child: rate limiters are process-wide, and each case must log. */
static long bad_case(void *arg) {
  bad_case_t *c = arg;
  source_t s = {0};
  spectator_poller_t *p =
      c->counter ? spectator_registry_poll_monotonic_counter(c->reg, c->name, c->tags, c->fn, &s)
                 : spectator_registry_poll_gauge(c->reg, c->name, c->tags, c->fn, &s);
  if (p) return 1;
  if (tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, c->says) != 1) return 2;
  if (c->reg && spectator_registry_size(c->reg) != 1) return 3; /* nothing created */
  return 0;
}

static void bad_input_gives_no_poller_and_a_log_line(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_registry_counter(reg, "taken", NULL);
  const bad_case_t cases[] = {
      {NULL, "x", NULL, read_source, "with a NULL registry", 0},
      {reg, "x", NULL, NULL, "'x' with a NULL function", 0},
      {reg, NULL, NULL, read_source, "invalid id", 0},
      {reg, "", NULL, read_source, "invalid id", 0},
      {reg, "x", SPECTATOR_TAGS("odd"), read_source, "invalid id", 0},
      {reg, "taken", NULL, read_source, "already a counter", 0},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    for (int kind = 0; kind < 2; kind++) {
      bad_case_t c = cases[i];
      c.counter = kind;
      if (kind && strcmp(c.name ? c.name : "", "taken") == 0) continue; /* a counter: fine */
      long rc = tu_in_child(bad_case, &c);
      if (rc != 0) {
        tu_log_dump();
        fail_msg("case %zu (%s): %ld", i, kind ? "counter" : "gauge", rc);
      }
    }
  }
  /* A counter named like a poll monotonic counter is that counter: shared. */
  source_t s = {0, 5, 0};
  spectator_poller_t *p =
      spectator_registry_poll_monotonic_counter(reg, "taken", NULL, read_source, &s);
  assert_non_null(p);
  spectator_poller_remove(NULL); /* no-op */
  spectator_poller_remove(p);
  spectator_registry_free(reg);
}

/* ------------------------------------------------------------------------ */
/* Global registry, publishing                                               */
/* ------------------------------------------------------------------------ */

static void global_poll_meters_report_through_the_global_registry(void **state) {
  (void)state;
  setenv("SPECTATOR_DISABLE_AUTO_START", "1", 1);
  source_t g = {0, 42, 0}, c = {0, 10, 0};
  spectator_poller_t *pg = spectator_poll_gauge("global.queue", NULL, read_source, &g);
  spectator_poller_t *pc = spectator_poll_monotonic_counter("global.done", NULL, read_source, &c);
  assert_non_null(pg);
  assert_non_null(pc);
  spectator_registry_t *reg = spectator_global_registry();
  spectator_measurements_free(mt_snapshot(reg));
  c.value = 15;
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement(ms, "global.queue", SPECTATOR_TAGS("statistic", "gauge"), SPECTATOR_OP_MAX,
                        42);
  mt_assert_measurement(ms, "global.done", SPECTATOR_TAGS("statistic", "count"), SPECTATOR_OP_ADD,
                        5);
  spectator_measurements_free(ms);
  spectator_poller_remove(pg);
  spectator_poller_remove(pc);
  assert_int_equal(atomic_load(&g.calls), 2);
}

/* A publishing registry calls its pollers on the publishing thread, at each
 * publish, and what they return reaches the aggregator. */
static void a_publish_calls_the_pollers_on_the_publishing_thread(void **state) {
  (void)state;
  agg = agg_start(0);
  assert_non_null(agg);
  spectator_registry_t *reg = new_reg(agg_url(agg), 0.05, 1);
  source_t s = {0, 5, 0};
  poll_gauge(reg, &s);
  assert_int_equal(agg_wait_value(agg, "queue.size", GAUGE_TAGS, 5, 30), 0);
  assert_false(pthread_equal(s.last_thread, pthread_self()));
  spectator_registry_stop(reg);
  long calls = atomic_load(&s.calls);
  assert_true(calls >= 1);
  spectator_registry_free(reg);
  agg_stop(agg);
  agg = NULL;
}

/* ------------------------------------------------------------------------ */
/* Fork                                                                      */
/* ------------------------------------------------------------------------ */

static int wait_child(pid_t pid, double deadline_s) {
  struct timespec start, now, nap = {0, 2 * 1000 * 1000};
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0 && errno != EINTR) return -1;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 >
        deadline_s) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -2; /* hung */
    }
    nanosleep(&nap, NULL);
  }
}

/* The worst case: another thread of the parent is inside a poller's function
 * (its snapshot in progress) when the process forks. In the child that call
 * does not exist: a snapshot calls the function (it is not skipped as if a
 * run were in progress), removing the poller does not wait for it, and a
 * counter's reading starts over (the child reports the increase it sees). */
static void in_a_forked_child_the_parents_calls_in_progress_do_not_exist(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  gate_t gate = GATE_INIT;
  gate.owner = getpid();
  gate.open = true;
  spectator_poller_t *p = spectator_registry_poll_gauge(reg, "slow", NULL, blocking_fn, &gate);
  source_t c = {0, 100, 0};
  poll_counter(reg, &c);
  spectator_measurements_free(mt_snapshot(reg)); /* the counter's base: 100 */
  pthread_mutex_lock(&gate.mu);
  gate.open = false;
  pthread_mutex_unlock(&gate.mu);
  pthread_t snap;
  assert_int_equal(pthread_create(&snap, NULL, snapshot_thread, reg), 0);
  gate_wait_inside(&gate);

  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    c.value = 130;
    spectator_measurements_t *ms = spectator_registry_snapshot(reg);
    double v = 0;
    if (!tu_find(ms, "slow", SPECTATOR_TAGS("statistic", "gauge"), &v) || v != 7) _exit(10);
    if (tu_find(ms, "queue.done", COUNT_TAGS, NULL)) _exit(11); /* first reading here */
    spectator_measurements_free(ms);
    c.value = 135;
    ms = spectator_registry_snapshot(reg);
    if (!tu_find(ms, "queue.done", COUNT_TAGS, &v) || v != 5) _exit(12);
    spectator_measurements_free(ms);
    spectator_poller_remove(p); /* the parent's call in progress is not waited for */
    ms = spectator_registry_snapshot(reg);
    if (tu_find(ms, "slow", SPECTATOR_TAGS("statistic", "gauge"), NULL)) _exit(13);
    spectator_measurements_free(ms);
    _exit(0);
  }
  int rc = wait_child(pid, 60);
  gate_open(&gate);
  join_within(snap, 30);
  assert_int_equal(rc, 0);
  /* The parent: its own base, its own gauge. */
  c.value = 110;
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement(ms, "queue.done", COUNT_TAGS, SPECTATOR_OP_ADD, 10);
  mt_assert_measurement(ms, "slow", SPECTATOR_TAGS("statistic", "gauge"), SPECTATOR_OP_MAX, 7);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

typedef struct {
  pid_t parent;
  _Atomic long calls;
  pid_t child;
} forker_t;

static double forks(void *ctx) {
  forker_t *f = ctx;
  atomic_fetch_add(&f->calls, 1);
  if (getpid() != f->parent || f->child) return 2;
  fflush(NULL);
  f->child = fork();
  return getpid() == f->parent ? 1 : 2;
}

/* A function that forks: the child goes on with the run it was part of (the
 * run is its own thread's), takes more snapshots and removes the poller. */
static void a_function_that_forks_leaves_the_child_a_working_registry(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  forker_t f = {getpid(), 0, 0};
  spectator_poller_t *p = spectator_registry_poll_gauge(reg, "forker", NULL, forks, &f);
  source_t s = {0, 3, 0};
  poll_gauge(reg, &s);
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  if (getpid() != f.parent) {
    double v = 0;
    if (!tu_find(ms, "forker", SPECTATOR_TAGS("statistic", "gauge"), &v) || v != 2) _exit(10);
    if (!tu_find(ms, "queue.size", GAUGE_TAGS, &v) || v != 3) _exit(11);
    spectator_measurements_free(ms);
    ms = spectator_registry_snapshot(reg); /* the child's own run */
    if (!tu_find(ms, "forker", SPECTATOR_TAGS("statistic", "gauge"), &v) || v != 2) _exit(12);
    spectator_measurements_free(ms);
    spectator_poller_remove(p);
    ms = spectator_registry_snapshot(reg);
    if (tu_find(ms, "forker", SPECTATOR_TAGS("statistic", "gauge"), NULL)) _exit(13);
    spectator_measurements_free(ms);
    _exit(0);
  }
  assert_true(f.child > 0);
  assert_int_equal(wait_child(f.child, 60), 0);
  mt_assert_measurement(ms, "forker", SPECTATOR_TAGS("statistic", "gauge"), SPECTATOR_OP_MAX, 1);
  mt_assert_measurement(ms, "queue.size", GAUGE_TAGS, SPECTATOR_OP_MAX, 3);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(poll_gauge_reports_what_its_function_returns_at_every_snapshot),
      cmocka_unit_test(poll_gauge_nan_means_nothing_this_interval),
      cmocka_unit_test(poll_gauges_of_one_id_add_up),
      cmocka_unit_test(poll_monotonic_counter_reports_the_increase_of_its_count),
      cmocka_unit_test(poll_monotonic_counters_of_one_id_add_up),
      cmocka_unit_test(removed_poller_is_not_called_again_and_its_gauge_stops_at_once),
      cmocka_unit_test(a_poller_can_remove_itself_from_inside_its_function),
      cmocka_unit_test(a_poller_can_remove_another_from_inside_its_function),
      cmocka_unit_test(remove_waits_for_a_call_in_progress_on_another_thread),
      cmocka_unit_test(a_function_that_calls_back_into_the_library_does_not_deadlock),
      cmocka_unit_test(pollers_that_snapshot_each_others_registries_do_not_recurse),
      cmocka_unit_test(a_blocked_function_does_not_block_recording_lookups_or_snapshots),
      cmocka_unit_test(removal_racing_snapshots_never_calls_a_removed_function),
      cmocka_unit_test(bad_input_gives_no_poller_and_a_log_line),
      cmocka_unit_test(global_poll_meters_report_through_the_global_registry),
      cmocka_unit_test(a_publish_calls_the_pollers_on_the_publishing_thread),
      cmocka_unit_test(in_a_forked_child_the_parents_calls_in_progress_do_not_exist),
      cmocka_unit_test(a_function_that_forks_leaves_the_child_a_working_registry),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
