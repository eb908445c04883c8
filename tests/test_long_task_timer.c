/*
 * Unit tests for src/long_task_timer.c: a long task timer reports
 * statistic=activeTasks and statistic=duration (seconds all running tasks
 * have run), both op max, computed at each snapshot on the registry's clock;
 * start and stop validate task ids; more tasks than slots are counted and
 * logged, never waited for.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "meter.h"
#include "meter_test_util.h"
#include "registry.h"

#define S MT_NS_PER_S
#define ACTIVE SPECTATOR_TAGS("job", "etl", "statistic", "activeTasks")
#define DURATION SPECTATOR_TAGS("job", "etl", "statistic", "duration")
#define SLOTS 256

static spectator_long_task_timer_t *new_ltt(spectator_registry_t *reg) {
  spectator_long_task_timer_t *t =
      spectator_registry_long_task_timer(reg, "job.run", SPECTATOR_TAGS("job", "etl"));
  assert_false(spectator__is_noop(t));
  return t;
}

/* Snapshot and assert exactly the two measurements. */
static void expect_ltt(spectator_registry_t *reg, double active, double duration) {
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 2);
  mt_assert_measurement(ms, "job.run", ACTIVE, SPECTATOR_OP_MAX, active);
  mt_assert_measurement(ms, "job.run", DURATION, SPECTATOR_OP_MAX, duration);
  spectator_measurements_free(ms);
}

static void long_task_timer_reports_zero_and_zero_when_idle(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  new_ltt(reg);
  expect_ltt(reg, 0, 0);
  tu_clock_advance(&clock, 3600 * S);
  expect_ltt(reg, 0, 0);
  spectator_registry_free(reg);
}

static void long_task_timer_reports_running_tasks_and_their_total_time(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  tu_clock_set(&clock, 50 * S);
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_long_task_timer_t *t = new_ltt(reg);
  int64_t a = spectator_long_task_timer_start(t);
  tu_clock_advance(&clock, 10 * S);
  int64_t b = spectator_long_task_timer_start(t);
  assert_true(a >= 0 && b >= 0 && a != b);
  tu_clock_advance(&clock, 5 * S + S / 4);
  expect_ltt(reg, 2, 15.25 + 5.25); /* reported while they run */
  assert_int_equal(spectator_long_task_timer_active_tasks(t), 2);
  assert_true(spectator_long_task_timer_duration(t) == 20.5);
  tu_clock_advance(&clock, 60 * S);
  expect_ltt(reg, 2, 75.25 + 65.25);
  assert_true(spectator_long_task_timer_stop(t, a) == 75.25);
  expect_ltt(reg, 1, 65.25);
  assert_true(spectator_long_task_timer_stop(t, b) == 65.25);
  expect_ltt(reg, 0, 0);
  spectator_registry_free(reg);
}

static void long_task_timer_stop_of_an_unknown_task_returns_minus_one(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_long_task_timer_t *t = new_ltt(reg);
  int64_t a = spectator_long_task_timer_start(t);
  tu_clock_advance(&clock, 2 * S);
  const int64_t bad[] = {-1,           INT64_MIN,        a + 1, a ^ 1,
                         a + (1 << 8), (int64_t)1 << 61, 0,     INT64_MAX - (INT64_C(1) << 62)};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_true(spectator_long_task_timer_stop(t, bad[i]) == -1);
  expect_ltt(reg, 1, 2);
  assert_true(spectator_long_task_timer_stop(t, a) == 2);
  assert_true(spectator_long_task_timer_stop(t, a) == -1); /* stopped already */
  /* A new task gets a new id: the old one still fails. */
  int64_t b = spectator_long_task_timer_start(t);
  assert_true(b != a);
  assert_true(spectator_long_task_timer_stop(t, a) == -1);
  expect_ltt(reg, 1, 0);
  assert_true(spectator_long_task_timer_stop(t, b) == 0);
  expect_ltt(reg, 0, 0);
  spectator_registry_free(reg);
}

/* A clock that went backwards: durations are never negative. */
static void long_task_timer_durations_are_never_negative(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  tu_clock_set(&clock, 100 * S);
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_long_task_timer_t *t = new_ltt(reg);
  int64_t a = spectator_long_task_timer_start(t);
  tu_clock_set(&clock, 90 * S);
  expect_ltt(reg, 1, 0);
  assert_true(spectator_long_task_timer_stop(t, a) == 0);
  spectator_registry_free(reg);
}

static void long_task_timer_null_and_no_op_timers_do_nothing(void **state) {
  (void)state;
  assert_true(spectator_long_task_timer_start(NULL) == -1);
  assert_true(spectator_long_task_timer_stop(NULL, 0) == -1);
  assert_int_equal(spectator_long_task_timer_active_tasks(NULL), 0);
  assert_true(spectator_long_task_timer_duration(NULL) == 0);
  tu_log_capture();
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_long_task_timer_t *bad = spectator_registry_long_task_timer(reg, NULL, NULL);
  assert_true(spectator__is_noop(bad));
  assert_true(tu_log_count() >= 1);
  assert_true(spectator_long_task_timer_start(bad) == -1);
  assert_true(spectator_long_task_timer_stop(bad, 0) == -1);
  assert_int_equal(spectator_long_task_timer_active_tasks(bad), 0);
  assert_true(spectator__is_noop(spectator_registry_long_task_timer(NULL, "x", NULL)));
  assert_true(spectator__is_noop(spectator_registry_long_task_timer_id(reg, NULL)));
  spectator_registry_timer(reg, "a.timer", NULL);
  assert_true(spectator__is_noop(spectator_registry_long_task_timer(reg, "a.timer", NULL)));
  tu_log_release();
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

/* A task has no one value to record: the one-shot call is refused. */
static void long_task_timer_has_no_one_shot_form(void **state) {
  (void)state;
  tu_log_capture();
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_registry_record(reg, SPECTATOR_METER_LONG_TASK_TIMER, "job.run", NULL, 1);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "no one-shot form"), 1);
  assert_int_equal(spectator_registry_size(reg), 0);
  tu_log_release();
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

/* More tasks than slots: the extra ones are not waited for and not
 * allocated; they are missing from the report, counted and logged, and their
 * stop still returns their time. */
static void long_task_timer_beyond_its_slots_counts_logs_and_never_blocks(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  tu_clock_set(&clock, 7 * S);
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_long_task_timer_t *t = new_ltt(reg);
  static int64_t ids[SLOTS + 3];
  for (int i = 0; i < SLOTS + 3; i++) {
    ids[i] = spectator_long_task_timer_start(t);
    assert_true(ids[i] >= 0);
  }
  tu_clock_advance(&clock, 2 * S);
  tu_log_capture();
  expect_ltt(reg, SLOTS, 2.0 * SLOTS);
  assert_int_equal(
      tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "3 tasks started while its 256 task slots"),
      1);
  expect_ltt(reg, SLOTS, 2.0 * SLOTS); /* counted once */
  assert_int_equal(tu_log_count(), 1);
  tu_log_release();
  /* Untracked tasks still time themselves, once or more. */
  assert_true(spectator_long_task_timer_stop(t, ids[SLOTS + 1]) == 2);
  assert_true(spectator_long_task_timer_stop(t, ids[SLOTS + 1]) == 2);
  for (int i = 0; i < SLOTS; i++) assert_true(spectator_long_task_timer_stop(t, ids[i]) == 2);
  expect_ltt(reg, 0, 0);
  spectator_registry_free(reg);
}

/* Reporting every interval is not activity: a start or a stop is. (A
 * registry freed or a process exiting counts the meters whose values were
 * never sent.) */
static void long_task_timer_activity_is_a_start_or_a_stop(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_long_task_timer_t *t = new_ltt(reg);
  assert_int_equal(spectator__registry_take_unsent(reg), 0);
  int64_t task = spectator_long_task_timer_start(t);
  assert_int_equal(spectator__registry_take_unsent(reg), 1);
  expect_ltt(reg, 1, 0);
  assert_int_equal(spectator__registry_take_unsent(reg), 0); /* running, nothing new */
  assert_true(spectator_long_task_timer_stop(t, task) == 0);
  assert_int_equal(spectator__registry_take_unsent(reg), 1);
  assert_true(spectator_long_task_timer_stop(t, task) == -1); /* not a stop */
  assert_int_equal(spectator__registry_take_unsent(reg), 0);
  spectator_registry_free(reg);
}

typedef struct {
  spectator_long_task_timer_t *t;
  _Atomic long failures;
  _Atomic int done; /* threads finished */
} race_t;

#define ROUNDS 400000
#define RACERS 2
#define HELD 64 /* tasks each racer keeps running */

/* Keeps HELD tasks running and replaces them one by one: stop the oldest,
 * start a new one. Every stop must succeed once and only once. */
static void *racer(void *p) {
  race_t *r = p;
  int64_t held[HELD];
  for (int k = 0; k < HELD; k++) held[k] = spectator_long_task_timer_start(r->t);
  for (int i = 0; i < ROUNDS; i++) {
    int k = i % HELD;
    if (held[k] < 0 || spectator_long_task_timer_stop(r->t, held[k]) < 0 ||
        spectator_long_task_timer_stop(r->t, held[k]) != -1)
      atomic_fetch_add(&r->failures, 1);
    held[k] = spectator_long_task_timer_start(r->t);
  }
  for (int k = 0; k < HELD; k++)
    if (spectator_long_task_timer_stop(r->t, held[k]) < 0) atomic_fetch_add(&r->failures, 1);
  atomic_fetch_add(&r->done, 1);
  return NULL;
}

/* Racers replace running tasks while snapshots read the timer for as long
 * as they run: every id is stopped exactly once, no snapshot sees more tasks
 * than ran at once (a count taken slot by slot would: a task stopped behind
 * the scan and its replacement started ahead of it are both counted), and
 * the timer ends idle. */
static void long_task_timer_starts_and_stops_race_snapshots_safely(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  race_t r = {new_ltt(reg), 0, 0};
  pthread_t th[RACERS];
  for (int i = 0; i < RACERS; i++) assert_int_equal(pthread_create(&th[i], NULL, racer, &r), 0);
  long snapshots = 0, beyond = 0;
  double worst = 0;
  while (atomic_load(&r.done) < RACERS || snapshots < 200) {
    spectator_measurements_t *ms = mt_snapshot(reg);
    double active = -1;
    assert_true(tu_find(ms, "job.run", ACTIVE, &active));
    assert_true(active >= 0);
    if (active > HELD * RACERS) beyond++;
    if (active > worst) worst = active;
    snapshots++;
    spectator_measurements_free(ms);
  }
  for (int i = 0; i < RACERS; i++) pthread_join(th[i], NULL);
  if (beyond)
    print_message("%ld of %ld snapshots saw more than %d tasks (up to %.0f)\n", beyond, snapshots,
                  HELD * RACERS, worst);
  assert_int_equal(beyond, 0);
  assert_int_equal(atomic_load(&r.failures), 0);
  expect_ltt(reg, 0, 0);
  spectator_registry_free(reg);
}

typedef struct {
  spectator_registry_t *reg;
  spectator_long_task_timer_t *t;
  tu_clock_t *clock;
  int64_t parent_task;
} fork_arg_t;

static long child_has_only_its_own_tasks(void *p) {
  fork_arg_t *a = p;
  if (spectator_long_task_timer_active_tasks(a->t) != 0) return 1;
  if (spectator_long_task_timer_stop(a->t, a->parent_task) != -1) return 2;
  int64_t mine = spectator_long_task_timer_start(a->t);
  tu_clock_advance(a->clock, 4 * S);
  spectator_measurements_t *ms = spectator_registry_snapshot(a->reg);
  double active = -1, duration = -1;
  tu_find(ms, "job.run", ACTIVE, &active);
  tu_find(ms, "job.run", DURATION, &duration);
  spectator_measurements_free(ms);
  if (active != 1 || duration != 4) return 3;
  return spectator_long_task_timer_stop(a->t, mine) == 4 ? 0 : 4;
}

/* The parent's tasks ran on the parent's threads: a child reports only its
 * own, and the parent keeps reporting its own. */
static void long_task_timer_in_a_forked_child_reports_only_the_childs_tasks(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_long_task_timer_t *t = new_ltt(reg);
  int64_t task = spectator_long_task_timer_start(t);
  tu_clock_advance(&clock, 30 * S);
  fork_arg_t a = {reg, t, &clock, task};
  assert_int_equal(tu_in_child(child_has_only_its_own_tasks, &a), 0);
  expect_ltt(reg, 1, 30);
  assert_true(spectator_long_task_timer_stop(t, task) == 30);
  spectator_registry_free(reg);
}

static void long_task_timer_of_the_global_registry(void **state) {
  (void)state;
  setenv("SPECTATOR_DISABLE_AUTO_START", "1", 1);
  spectator_long_task_timer_t *t = spectator_long_task_timer("global.job.run", NULL);
  assert_false(spectator__is_noop(t));
  assert_ptr_equal(t, spectator_long_task_timer("global.job.run", NULL));
  int64_t id = spectator_long_task_timer_start(t);
  assert_int_equal(spectator_long_task_timer_active_tasks(t), 1);
  assert_true(spectator_long_task_timer_stop(t, id) >= 0);
  assert_int_equal(spectator_long_task_timer_active_tasks(t), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(long_task_timer_reports_zero_and_zero_when_idle),
      cmocka_unit_test(long_task_timer_reports_running_tasks_and_their_total_time),
      cmocka_unit_test(long_task_timer_stop_of_an_unknown_task_returns_minus_one),
      cmocka_unit_test(long_task_timer_durations_are_never_negative),
      cmocka_unit_test(long_task_timer_null_and_no_op_timers_do_nothing),
      cmocka_unit_test(long_task_timer_has_no_one_shot_form),
      cmocka_unit_test(long_task_timer_beyond_its_slots_counts_logs_and_never_blocks),
      cmocka_unit_test(long_task_timer_activity_is_a_start_or_a_stop),
      cmocka_unit_test(long_task_timer_starts_and_stops_race_snapshots_safely),
      cmocka_unit_test(long_task_timer_in_a_forked_child_reports_only_the_childs_tasks),
      cmocka_unit_test(long_task_timer_of_the_global_registry),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
