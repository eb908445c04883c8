/*
 * Unit tests for src/age_gauge.c: an age gauge reports (statistic=gauge, op
 * max) the seconds from its last set to each snapshot, on the registry's
 * clock, every interval; never set, the seconds since the Unix epoch.
 * set(epoch_seconds) goes through the registry's offset between its clock and
 * the wall clock (white-box: the tests read it to compute exact ages).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "meter_test_util.h"
#include "registry.h"

#define AGE_TAGS SPECTATOR_TAGS("job", "etl", "statistic", "gauge")
#define S MT_NS_PER_S

static spectator_age_gauge_t *new_age(spectator_registry_t *reg) {
  spectator_age_gauge_t *g =
      spectator_registry_age_gauge(reg, "job.age", SPECTATOR_TAGS("job", "etl"));
  assert_false(spectator__is_noop(g));
  return g;
}

static int64_t wall_offset(spectator_registry_t *reg) { return atomic_load(&reg->wall_offset_ns); }

/* The age an epoch time has at registry time now_ns, as the meter computes
 * it: the epoch time on the registry's clock is epoch * 1e9 - offset. */
static double age_of(int64_t now_ns, double epoch, int64_t off) {
  return (double)(now_ns - ((int64_t)(epoch * 1e9) - off)) / 1e9;
}

static void age_gauge_set_now_reports_the_seconds_since_on_the_registry_clock(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  tu_clock_set(&clock, 1000 * S);
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_age_gauge_t *g = new_age(reg);
  spectator_age_gauge_set_now(g);
  tu_clock_advance(&clock, 30 * S + S / 2);
  mt_expect_single(reg, "job.age", AGE_TAGS, SPECTATOR_OP_MAX, 30.5);
  /* Not set again: it keeps reporting, older each time. */
  tu_clock_advance(&clock, 10 * S);
  mt_expect_single(reg, "job.age", AGE_TAGS, SPECTATOR_OP_MAX, 40.5);
  assert_true(spectator_age_gauge_age(g) == 40.5);
  /* Set again: back to 0. */
  spectator_age_gauge_set_now(g);
  mt_expect_single(reg, "job.age", AGE_TAGS, SPECTATOR_OP_MAX, 0);
  tu_clock_advance(&clock, 2 * S);
  mt_expect_single(reg, "job.age", AGE_TAGS, SPECTATOR_OP_MAX, 2);
  spectator_registry_free(reg);
}

static void age_gauge_never_set_reports_the_seconds_since_the_unix_epoch(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  tu_clock_set(&clock, 77 * S);
  spectator_registry_t *reg = mt_registry(&clock, 0);
  new_age(reg);
  int64_t off = wall_offset(reg);
  /* The offset was measured when the registry was made: the wall clock then. */
  int64_t real = (int64_t)time(NULL) * S;
  assert_true(off + 77 * S > real - 5 * S && off + 77 * S < real + 5 * S);
  tu_clock_advance(&clock, 3 * S);
  mt_expect_single(reg, "job.age", AGE_TAGS, SPECTATOR_OP_MAX, (double)(80 * S + off) / 1e9);
  spectator_registry_free(reg);
}

/* An injected clock keeps the relation to the wall clock measured at
 * creation, so ages of epoch times follow the injected clock exactly. */
static void age_gauge_set_with_epoch_seconds_uses_the_registrys_wall_clock(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  tu_clock_set(&clock, 5000 * S);
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_age_gauge_t *g = new_age(reg);
  int64_t off = wall_offset(reg);
  /* Whole seconds two minutes before the registry's "now". */
  int64_t wall_now = 5000 * S + off;
  double epoch = (double)(wall_now / S - 120);
  spectator_age_gauge_set(g, epoch);
  double expected = age_of(5000 * S, epoch, off);
  assert_true(expected >= 120 && expected < 121);
  mt_expect_single(reg, "job.age", AGE_TAGS, SPECTATOR_OP_MAX, expected);
  tu_clock_advance(&clock, 60 * S);
  mt_expect_single(reg, "job.age", AGE_TAGS, SPECTATOR_OP_MAX, age_of(5060 * S, epoch, off));
  /* Fractions of a second. */
  spectator_age_gauge_set(g, epoch + 0.5);
  double half = age_of(5060 * S, epoch + 0.5, off);
  assert_true(half >= 179.5 && half < 180.5);
  mt_expect_single(reg, "job.age", AGE_TAGS, SPECTATOR_OP_MAX, half);
  /* A time in the future: a negative age, as spectatord reports it. */
  spectator_age_gauge_set(g, epoch + 1000);
  double future = age_of(5060 * S, epoch + 1000, off);
  assert_true(future >= -820 && future < -819);
  mt_expect_single(reg, "job.age", AGE_TAGS, SPECTATOR_OP_MAX, future);
  spectator_registry_free(reg);
}

static void age_gauge_set_to_zero_means_now(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  tu_clock_set(&clock, 10 * S);
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_age_gauge_t *g = new_age(reg);
  tu_clock_advance(&clock, 5 * S);
  spectator_age_gauge_set(g, 0);
  tu_clock_advance(&clock, 7 * S);
  mt_expect_single(reg, "job.age", AGE_TAGS, SPECTATOR_OP_MAX, 7);
  spectator_registry_free(reg);
}

/* The default clock: epoch times from time() give ages on the wall clock. */
static void age_gauge_on_the_default_clock_follows_the_wall_clock(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_age_gauge_t *g = new_age(reg);
  spectator_age_gauge_set(g, (double)time(NULL) - 30);
  spectator_measurements_t *ms = mt_snapshot(reg);
  double v = NAN;
  assert_true(tu_find(ms, "job.age", AGE_TAGS, &v));
  assert_true(v >= 29 && v < 33);
  spectator_measurements_free(ms);
  spectator_age_gauge_set_now(g);
  ms = mt_snapshot(reg);
  assert_true(tu_find(ms, "job.age", AGE_TAGS, &v));
  assert_true(v >= 0 && v < 3);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void age_gauge_ignores_nan_infinite_negative_and_far_future_times(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_age_gauge_t *g = new_age(reg);
  spectator_age_gauge_set_now(g);
  tu_clock_advance(&clock, 4 * S);
  spectator_age_gauge_set(g, NAN);
  spectator_age_gauge_set(g, INFINITY);
  spectator_age_gauge_set(g, -INFINITY);
  spectator_age_gauge_set(g, -1);
  spectator_age_gauge_set(g, 1e10); /* past 2262: does not fit nanoseconds */
  mt_expect_single(reg, "job.age", AGE_TAGS, SPECTATOR_OP_MAX, 4);
  spectator_registry_free(reg);
}

static void age_gauge_with_a_statistic_tag_keeps_it(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_age_gauge_t *g =
      spectator_registry_age_gauge(reg, "job.age", SPECTATOR_TAGS("statistic", "max"));
  spectator_age_gauge_set_now(g);
  tu_clock_advance(&clock, S);
  mt_expect_single(reg, "job.age", SPECTATOR_TAGS("statistic", "max"), SPECTATOR_OP_MAX, 1);
  spectator_registry_free(reg);
}

static void age_gauge_null_and_no_op_meters_do_nothing(void **state) {
  (void)state;
  spectator_age_gauge_set_now(NULL);
  spectator_age_gauge_set(NULL, 12);
  assert_true(isnan(spectator_age_gauge_age(NULL)));
  tu_log_capture();
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_age_gauge_t *bad = spectator_registry_age_gauge(reg, "", NULL);
  assert_true(spectator__is_noop(bad));
  assert_true(tu_log_count() >= 1);
  spectator_age_gauge_set_now(bad);
  spectator_age_gauge_set(bad, 12);
  assert_true(isnan(spectator_age_gauge_age(bad)));
  assert_true(spectator__is_noop(spectator_registry_age_gauge(NULL, "x", NULL)));
  assert_true(spectator__is_noop(spectator_registry_age_gauge_id(reg, NULL)));
  /* Another type's id. */
  spectator_registry_counter(reg, "taken", NULL);
  assert_true(spectator__is_noop(spectator_registry_age_gauge(reg, "taken", NULL)));
  tu_log_release();
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

static void age_gauge_by_id_is_the_same_meter(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_id_t *id = spectator_id_new("job.age", SPECTATOR_TAGS("job", "etl"));
  assert_ptr_equal(spectator_registry_age_gauge_id(reg, id), new_age(reg));
  spectator_id_free(id);
  spectator_registry_free(reg);
}

/* A one-shot call takes Unix seconds, 0 for now; such a gauge never expires:
 * it is active at every snapshot, however old its last set. */
static void age_gauge_one_shot_calls_set_it_and_it_never_expires(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  tu_clock_set(&clock, 100 * S);
  spectator_registry_t *reg = mt_registry_with_ttl(&clock, 0, 60);
  spectator_registry_record(reg, SPECTATOR_METER_AGE_GAUGE, "job.age", SPECTATOR_TAGS("job", "etl"),
                            0);
  tu_clock_advance(&clock, 3600 * S);
  mt_expect_single(reg, "job.age", AGE_TAGS, SPECTATOR_OP_MAX, 3600);
  tu_clock_advance(&clock, 3600 * S);
  mt_expect_single(reg, "job.age", AGE_TAGS, SPECTATOR_OP_MAX, 7200);
  assert_int_equal(spectator_registry_size(reg), 1);
  int64_t off = wall_offset(reg);
  double epoch = (double)((7300 * S + off) / S - 10);
  spectator_registry_record(reg, SPECTATOR_METER_AGE_GAUGE, "job.age", SPECTATOR_TAGS("job", "etl"),
                            epoch);
  mt_expect_single(reg, "job.age", AGE_TAGS, SPECTATOR_OP_MAX, age_of(7300 * S, epoch, off));
  spectator_registry_free(reg);
}

/* Reporting every interval is not activity: only a set is. A registry freed
 * or a process exiting counts what was recorded and never sent; an age gauge
 * that was not set since the last snapshot is not such a meter. */
static void age_gauge_counts_as_unsent_only_when_set_since_the_last_snapshot(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_age_gauge_t *g = new_age(reg);
  assert_int_equal(spectator__registry_take_unsent(reg), 0); /* never set */
  spectator_age_gauge_set_now(g);
  assert_int_equal(spectator__registry_take_unsent(reg), 1);
  spectator_age_gauge_set_now(g);
  spectator_measurements_free(mt_snapshot(reg));
  assert_int_equal(spectator__registry_take_unsent(reg), 0); /* reported, not set since */
  mt_expect_single(reg, "job.age", AGE_TAGS, SPECTATOR_OP_MAX, 0);
  spectator_registry_free(reg);
}

typedef struct {
  spectator_registry_t *reg;
  tu_clock_t *clock;
} fork_arg_t;

static long child_reports_the_same_age(void *p) {
  fork_arg_t *a = p;
  tu_clock_advance(a->clock, 10 * S); /* the child's copy of the clock */
  spectator_measurements_t *ms = spectator_registry_snapshot(a->reg);
  double v = NAN;
  bool found = tu_find(ms, "job.age", AGE_TAGS, &v);
  spectator_measurements_free(ms);
  return found && v == 25 ? 0 : 1;
}

/* The last success is a moment in time: the child keeps it. */
static void age_gauge_keeps_its_last_set_in_a_forked_child(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_age_gauge_t *g = new_age(reg);
  spectator_age_gauge_set_now(g);
  tu_clock_advance(&clock, 15 * S);
  fork_arg_t a = {reg, &clock};
  assert_int_equal(tu_in_child(child_reports_the_same_age, &a), 0);
  mt_expect_single(reg, "job.age", AGE_TAGS, SPECTATOR_OP_MAX, 15);
  spectator_registry_free(reg);
}

static void age_gauge_of_the_global_registry(void **state) {
  (void)state;
  setenv("SPECTATOR_DISABLE_AUTO_START", "1", 1);
  spectator_age_gauge_t *g = spectator_age_gauge("global.job.age", NULL);
  assert_false(spectator__is_noop(g));
  assert_ptr_equal(g, spectator_age_gauge("global.job.age", NULL));
  assert_ptr_equal(
      g, spectator_registry_age_gauge(spectator_global_registry(), "global.job.age", NULL));
  spectator_age_gauge_set_now(g);
  double age = spectator_age_gauge_age(g);
  assert_true(age >= 0 && age < 5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(age_gauge_set_now_reports_the_seconds_since_on_the_registry_clock),
      cmocka_unit_test(age_gauge_never_set_reports_the_seconds_since_the_unix_epoch),
      cmocka_unit_test(age_gauge_set_with_epoch_seconds_uses_the_registrys_wall_clock),
      cmocka_unit_test(age_gauge_set_to_zero_means_now),
      cmocka_unit_test(age_gauge_on_the_default_clock_follows_the_wall_clock),
      cmocka_unit_test(age_gauge_ignores_nan_infinite_negative_and_far_future_times),
      cmocka_unit_test(age_gauge_with_a_statistic_tag_keeps_it),
      cmocka_unit_test(age_gauge_null_and_no_op_meters_do_nothing),
      cmocka_unit_test(age_gauge_by_id_is_the_same_meter),
      cmocka_unit_test(age_gauge_one_shot_calls_set_it_and_it_never_expires),
      cmocka_unit_test(age_gauge_counts_as_unsent_only_when_set_since_the_last_snapshot),
      cmocka_unit_test(age_gauge_keeps_its_last_set_in_a_forked_child),
      cmocka_unit_test(age_gauge_of_the_global_registry),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
