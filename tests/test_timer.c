/*
 * Unit tests for src/timer.c: what a timer reports: count,
 * totalTime (seconds), totalOfSquares (seconds^2) with op add and max (seconds)
 * with op max, per interval; a negative duration counted and nothing else,
 * NaN and infinite durations ignored;
 * nothing for an idle interval; huge durations saturate.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "meter.h"
#include "meter_test_util.h"

static void timer_record_reports_count_total_time_total_of_squares_and_max(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_timer_t *t = spectator_registry_timer(reg, "lat", SPECTATOR_TAGS("k", "v"));
  spectator_timer_record(t, 0.5);
  spectator_timer_record(t, 1.5);
  spectator_timer_record(t, 2);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_timer_alone(ms, "lat", 3, 4.0, 0.25 + 2.25 + 4.0, 2.0);
  /* Sorted by tags: count, max, totalOfSquares, totalTime, with ops add, max, add, add. */
  const char *const stats[] = {"count", "max", "totalOfSquares", "totalTime"};
  const int ops[] = {SPECTATOR_OP_ADD, SPECTATOR_OP_MAX, SPECTATOR_OP_ADD, SPECTATOR_OP_ADD};
  for (size_t i = 0; i < 4; i++) {
    const spectator_measurement_t *m = spectator_measurements_get(ms, i);
    assert_string_equal(spectator_id_tag(m->id, "statistic"), stats[i]);
    assert_int_equal(m->op, ops[i]);
    assert_int_equal(spectator_id_tag_count(m->id), 2);
  }
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void timer_record_ns_reports_seconds_and_square_seconds(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_timer_t *t = spectator_registry_timer(reg, "lat", SPECTATOR_TAGS("k", "v"));
  spectator_timer_record_ns(t, 1500);
  spectator_timer_record_ns(t, 2500);
  spectator_timer_record_ns(t, 3 * MT_NS_PER_S);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_timer_alone(ms, "lat", 3, 3000004000.0 / 1e9,
                        (1500.0 * 1500 + 2500.0 * 2500 + 9e18) / 1e18, 3.0);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void timer_counts_zero_durations(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_timer_t *t = spectator_registry_timer(reg, "lat", SPECTATOR_TAGS("k", "v"));
  spectator_timer_record(t, 0);
  spectator_timer_record(t, -0.0);
  spectator_timer_record_ns(t, 0);
  spectator_timer_record(t, 1e-10); /* below one nanosecond */
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_timer_alone(ms, "lat", 4, 0, 0, 0);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

/* As Spectator Java: a negative duration is an event that happened, with no
 * duration to add. */
static void timer_counts_a_negative_duration_and_adds_nothing_else(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_timer_t *t = spectator_registry_timer(reg, "lat", SPECTATOR_TAGS("k", "v"));
  spectator_timer_record(t, 0.25);
  spectator_timer_record(t, -1);
  spectator_timer_record(t, -1e-9);
  spectator_timer_record(t, -DBL_MAX);
  spectator_timer_record_ns(t, -1);
  spectator_timer_record_ns(t, INT64_MIN);
  assert_int_equal(spectator_timer_count(t), 6);
  assert_true(spectator_timer_total_seconds(t) == 0.25);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_timer_alone(ms, "lat", 6, 0.25, 0.0625, 0.25);
  spectator_measurements_free(ms);
  /* Only negative durations: the count alone, the others zero. */
  spectator_timer_record(t, -5);
  ms = mt_snapshot(reg);
  mt_assert_timer_alone(ms, "lat", 1, 0, 0, 0);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void timer_ignores_nan_and_infinite_durations(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_timer_t *t = spectator_registry_timer(reg, "lat", SPECTATOR_TAGS("k", "v"));
  const double bad[] = {NAN, -NAN, INFINITY, -INFINITY};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) spectator_timer_record(t, bad[i]);
  assert_int_equal(spectator_timer_count(t), 0);
  mt_expect_empty(reg);

  spectator_timer_record(t, 0.25);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) spectator_timer_record(t, bad[i]);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_timer_alone(ms, "lat", 1, 0.25, 0.0625, 0.25);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void timer_reports_nothing_for_an_idle_interval(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_timer_t *t = spectator_registry_timer(reg, "lat", SPECTATOR_TAGS("k", "v"));
  mt_expect_empty(reg);
  spectator_timer_record(t, 1);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_timer_alone(ms, "lat", 1, 1, 1, 1);
  spectator_measurements_free(ms);
  mt_expect_empty(reg);
  mt_expect_empty(reg);
  spectator_timer_record(t, 2);
  ms = mt_snapshot(reg);
  mt_assert_timer_alone(ms, "lat", 1, 2, 4, 2);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void timer_max_is_the_largest_duration_of_the_interval(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_timer_t *t = spectator_registry_timer(reg, "lat", SPECTATOR_TAGS("k", "v"));
  spectator_timer_record(t, 3);
  spectator_timer_record(t, 7);
  spectator_timer_record(t, 1);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_timer_alone(ms, "lat", 3, 11, 59, 7);
  spectator_measurements_free(ms);
  /* The max does not carry over into the next interval. */
  spectator_timer_record(t, 2);
  ms = mt_snapshot(reg);
  mt_assert_timer_alone(ms, "lat", 1, 2, 4, 2);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void timer_huge_duration_saturates_without_undefined_behaviour(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_timer_t *t = spectator_registry_timer(reg, "lat", SPECTATOR_TAGS("k", "v"));
  spectator_timer_record(t, 1e300); /* far beyond INT64_MAX nanoseconds */
  assert_int_equal(spectator_timer_count(t), 1);
  const double max_s = (double)INT64_MAX / 1e9;
  /* (2^63-1)^2 ns^2 is 2^126 as a double. */
  const double max_sq = 0x1p126 / 1e18;
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_timer_alone(ms, "lat", 1, max_s, max_sq, max_s);
  spectator_measurements_free(ms);

  spectator_timer_record(t, DBL_MAX);
  spectator_timer_record_ns(t, INT64_MAX);
  ms = mt_snapshot(reg);
  mt_assert_timer_alone(ms, "lat", 2, 2 * max_s, 2 * max_sq, max_s);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void timer_interval_sums_saturate_when_huge_durations_overflow_them(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_timer_t *t = spectator_registry_timer(reg, "lat", SPECTATOR_TAGS("k", "v"));
  /* Five saturated durations: the total (2^64 ns) and the sum of squares
   * (2^128 ns^2) no longer fit their accumulators; they must saturate, never
   * wrap around to a total smaller than the max. */
  for (int i = 0; i < 5; i++) spectator_timer_record(t, 1e300);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_timer_alone(ms, "lat", 5, 0x1p64 / 1e9, 0x1p128 / 1e18, (double)INT64_MAX / 1e9);
  spectator_measurements_free(ms);
  /* The next interval starts from zero again. */
  spectator_timer_record(t, 1);
  ms = mt_snapshot(reg);
  mt_assert_timer_alone(ms, "lat", 1, 1, 1, 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void timer_with_a_statistic_tag_reports_its_four_statistics(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  /* The id's own statistic is replaced: four statistics need four ids. */
  spectator_timer_t *t =
      spectator_registry_timer(reg, "lat", SPECTATOR_TAGS("k", "v", "statistic", "custom"));
  spectator_timer_record(t, 1);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_timer_alone(ms, "lat", 1, 1, 1, 1);
  mt_assert_absent(ms, "lat", SPECTATOR_TAGS("k", "v", "statistic", "custom"));
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void timer_getters_return_the_interval_count_and_total(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_timer_t *t = spectator_registry_timer(reg, "lat", NULL);
  assert_int_equal(spectator_timer_count(t), 0);
  assert_true(spectator_timer_total_seconds(t) == 0);
  spectator_timer_record(t, 1.5);
  spectator_timer_record_ns(t, 500000000);
  assert_int_equal(spectator_timer_count(t), 2);
  assert_true(spectator_timer_total_seconds(t) == 2.0);
  spectator_measurements_free(mt_snapshot(reg));
  assert_int_equal(spectator_timer_count(t), 0);
  assert_true(spectator_timer_total_seconds(t) == 0);
  spectator_registry_free(reg);
}

static void timer_getters_return_zero_for_null_and_noop_timers(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_timer_t *noop = spectator_registry_timer(reg, NULL, NULL);
  assert_non_null(noop);
  assert_true(spectator__is_noop(noop));
  spectator_timer_record(noop, 1);
  spectator_timer_record_ns(noop, 1000);
  assert_int_equal(spectator_timer_count(noop), 0);
  assert_true(spectator_timer_total_seconds(noop) == 0);
  spectator_timer_record(NULL, 1);
  spectator_timer_record_ns(NULL, 1);
  assert_int_equal(spectator_timer_count(NULL), 0);
  assert_true(spectator_timer_total_seconds(NULL) == 0);
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

static void stopwatch_records_one_elapsed_duration_on_a_timer(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_timer_t *t = spectator_registry_timer(reg, "sw", SPECTATOR_TAGS("k", "v"));
  spectator_stopwatch_t sw = spectator_stopwatch_start();
  int64_t ns = spectator_stopwatch_record(sw, t);
  assert_true(ns >= 0);
  assert_int_equal(spectator_stopwatch_record(sw, NULL) >= ns, 1);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_timer_alone(ms, "sw", 1, (double)ns / 1e9, (double)ns * (double)ns / 1e18,
                        (double)ns / 1e9);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(timer_record_reports_count_total_time_total_of_squares_and_max),
      cmocka_unit_test(timer_record_ns_reports_seconds_and_square_seconds),
      cmocka_unit_test(timer_counts_zero_durations),
      cmocka_unit_test(timer_counts_a_negative_duration_and_adds_nothing_else),
      cmocka_unit_test(timer_ignores_nan_and_infinite_durations),
      cmocka_unit_test(timer_reports_nothing_for_an_idle_interval),
      cmocka_unit_test(timer_max_is_the_largest_duration_of_the_interval),
      cmocka_unit_test(timer_huge_duration_saturates_without_undefined_behaviour),
      cmocka_unit_test(timer_interval_sums_saturate_when_huge_durations_overflow_them),
      cmocka_unit_test(timer_with_a_statistic_tag_reports_its_four_statistics),
      cmocka_unit_test(timer_getters_return_the_interval_count_and_total),
      cmocka_unit_test(timer_getters_return_zero_for_null_and_noop_timers),
      cmocka_unit_test(stopwatch_records_one_elapsed_duration_on_a_timer),
  };
  return cmocka_run_group_tests(tests, mt_setup_capture, mt_teardown_capture);
}
