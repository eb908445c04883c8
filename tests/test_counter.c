/*
 * Unit tests for src/counter.c: what a counter reports: the
 * sum of positive finite amounts per interval, statistic=count, op add,
 * nothing when the sum is 0, reset by each snapshot.
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

static void counter_increment_and_add_are_summed_into_one_count_measurement(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *c =
      spectator_registry_counter(reg, "requests", SPECTATOR_TAGS("app", "www"));
  spectator_counter_increment(c);
  spectator_counter_increment(c);
  spectator_counter_increment(c);
  spectator_counter_add(c, 2);
  spectator_counter_add(c, 40);
  mt_expect_single(reg, "requests", SPECTATOR_TAGS("app", "www", "statistic", "count"),
                   SPECTATOR_OP_ADD, 45);
  spectator_registry_free(reg);
}

static void counter_fractional_adds_are_summed_exactly_when_the_doubles_are_exact(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *c = spectator_registry_counter(reg, "bytes", NULL);
  /* Binary fractions: every partial sum is exact in a double. */
  for (int i = 0; i < 1000; i++) spectator_counter_add(c, 0.5);
  spectator_counter_add(c, 0.25);
  spectator_counter_add(c, 0.125);
  spectator_counter_add(c, 3);   /* whole: the integer part of the accumulator */
  spectator_counter_add(c, 1.5); /* fractional: the double part */
  spectator_counter_increment(c);
  assert_true(spectator_counter_count(c) == 505.875);
  mt_expect_single_count(reg, "bytes", 505.875);
  spectator_registry_free(reg);
}

static void counter_sums_whole_amounts_at_and_above_two_to_the_32_exactly(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *c = spectator_registry_counter(reg, "big", NULL);
  spectator_counter_add(c, 4294967295.0); /* largest amount on the integer path */
  spectator_counter_add(c, 4294967296.0); /* 2^32: the double path */
  spectator_counter_add(c, 1e15);
  spectator_counter_increment(c);
  mt_expect_single_count(reg, "big", 4294967295.0 + 4294967296.0 + 1e15 + 1);
  spectator_registry_free(reg);
}

static void counter_ignores_negative_zero_nan_and_infinite_amounts(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *c = spectator_registry_counter(reg, "c", NULL);
  const double bad[] = {-1, -0.5, -DBL_MAX, 0, -0.0, NAN, -NAN, INFINITY, -INFINITY};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) spectator_counter_add(c, bad[i]);
  assert_true(spectator_counter_count(c) == 0);
  mt_expect_empty(reg);

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) spectator_counter_add(c, bad[i]);
  spectator_counter_add(c, 2.5);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) spectator_counter_add(c, bad[i]);
  mt_expect_single_count(reg, "c", 2.5);
  spectator_registry_free(reg);
}

static void counter_accepts_the_smallest_positive_amounts(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *c = spectator_registry_counter(reg, "tiny", NULL);
  spectator_counter_add(c, DBL_MIN);
  spectator_counter_add(c, 4.9406564584124654e-324); /* smallest subnormal */
  mt_expect_single_count(reg, "tiny", DBL_MIN + 4.9406564584124654e-324);
  spectator_registry_free(reg);
}

static void counter_reports_nothing_when_nothing_was_added(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *c = spectator_registry_counter(reg, "idle", NULL);
  assert_false(spectator__is_noop(c));
  assert_int_equal(spectator_registry_size(reg), 1);
  mt_expect_empty(reg);
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

static void counter_resets_after_each_snapshot(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *c = spectator_registry_counter(reg, "c", NULL);
  spectator_counter_add(c, 5);
  mt_expect_single_count(reg, "c", 5);
  assert_true(spectator_counter_count(c) == 0);
  mt_expect_empty(reg);
  spectator_counter_increment(c);
  assert_true(spectator_counter_count(c) == 1);
  mt_expect_single_count(reg, "c", 1);
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

/* Values sent are finite: an interval sum that leaves the doubles is
 * reported as DBL_MAX (records.c), with a line at debug, and the next
 * interval is fine. */
static void counter_sum_that_overflows_a_double_saturates_at_dbl_max(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *c = spectator_registry_counter(reg, "huge", NULL);
  spectator_counter_t *other = spectator_registry_counter(reg, "other", NULL);
  spectator_counter_add(c, 1e308);
  spectator_counter_add(c, 1e308); /* the interval sum is +inf */
  spectator_counter_add(other, 2);
  tu_log_clear();
  spectator_log_set_level(SPECTATOR_LOG_DEBUG);
  spectator_measurements_t *ms = mt_snapshot(reg);
  spectator_log_set_level(SPECTATOR_LOG_WARN);
  mt_assert_measurement_count(ms, 2);
  mt_assert_measurement(ms, "huge", SPECTATOR_TAGS("statistic", "count"), SPECTATOR_OP_ADD,
                        DBL_MAX);
  mt_assert_measurement(ms, "other", SPECTATOR_TAGS("statistic", "count"), SPECTATOR_OP_ADD, 2);
  spectator_measurements_free(ms);
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_DEBUG, SPECTATOR_LOGGER_REGISTRY, "huge");
  assert_string_equal(tu_log_line(0)->msg, "huge (statistic count) overflowed the doubles: "
                                           "reported as the largest finite double");
  spectator_counter_add(c, DBL_MAX);
  spectator_counter_add(c, DBL_MAX);
  spectator_counter_add(c, DBL_MAX);
  mt_expect_single_count(reg, "huge", DBL_MAX);
  spectator_counter_add(c, 1);
  mt_expect_single_count(reg, "huge", 1);
  spectator_registry_free(reg);
}

static void counter_with_a_statistic_tag_keeps_it(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *c =
      spectator_registry_counter(reg, "c", SPECTATOR_TAGS("statistic", "totalAmount", "k", "v"));
  spectator_counter_add(c, 7);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 1);
  mt_assert_measurement(ms, "c", SPECTATOR_TAGS("k", "v", "statistic", "totalAmount"),
                        SPECTATOR_OP_ADD, 7);
  const spectator_measurement_t *m = spectator_measurements_get(ms, 0);
  assert_int_equal(spectator_id_tag_count(m->id), 2);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void counters_with_different_tags_are_reported_separately(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *a = spectator_registry_counter(reg, "req", SPECTATOR_TAGS("status", "200"));
  spectator_counter_t *b = spectator_registry_counter(reg, "req", SPECTATOR_TAGS("status", "500"));
  spectator_counter_t *a2 = spectator_registry_counter(reg, "req", SPECTATOR_TAGS("status", "200"));
  spectator_counter_t *n = spectator_registry_counter(reg, "req", NULL);
  assert_ptr_equal(a, a2);
  spectator_counter_add(a, 3);
  spectator_counter_increment(a2);
  spectator_counter_add(b, 2);
  spectator_counter_increment(n);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 3);
  mt_assert_sorted(ms);
  mt_assert_measurement(ms, "req", SPECTATOR_TAGS("status", "200", "statistic", "count"),
                        SPECTATOR_OP_ADD, 4);
  mt_assert_measurement(ms, "req", SPECTATOR_TAGS("status", "500", "statistic", "count"),
                        SPECTATOR_OP_ADD, 2);
  mt_assert_measurement(ms, "req", SPECTATOR_TAGS("statistic", "count"), SPECTATOR_OP_ADD, 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void counter_count_getter_returns_the_interval_sum(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *c = spectator_registry_counter(reg, "c", NULL);
  assert_true(spectator_counter_count(c) == 0);
  spectator_counter_add(c, 1.25);
  spectator_counter_increment(c);
  assert_true(spectator_counter_count(c) == 2.25);
  spectator_measurements_t *ms = mt_snapshot(reg);
  spectator_measurements_free(ms);
  assert_true(spectator_counter_count(c) == 0);
  spectator_registry_free(reg);
}

static void counter_count_getter_returns_zero_for_null_and_noop_counters(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *noop = spectator_registry_counter(reg, "", NULL);
  assert_non_null(noop);
  assert_true(spectator__is_noop(noop));
  spectator_counter_add(noop, 10);
  spectator_counter_increment(noop);
  assert_true(spectator_counter_count(noop) == 0);
  assert_true(spectator_counter_count(NULL) == 0);
  spectator_counter_increment(NULL);
  spectator_counter_add(NULL, 1);
  assert_int_equal(spectator_registry_size(reg), 0);
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(counter_increment_and_add_are_summed_into_one_count_measurement),
      cmocka_unit_test(counter_fractional_adds_are_summed_exactly_when_the_doubles_are_exact),
      cmocka_unit_test(counter_sums_whole_amounts_at_and_above_two_to_the_32_exactly),
      cmocka_unit_test(counter_ignores_negative_zero_nan_and_infinite_amounts),
      cmocka_unit_test(counter_accepts_the_smallest_positive_amounts),
      cmocka_unit_test(counter_reports_nothing_when_nothing_was_added),
      cmocka_unit_test(counter_resets_after_each_snapshot),
      cmocka_unit_test(counter_sum_that_overflows_a_double_saturates_at_dbl_max),
      cmocka_unit_test(counter_with_a_statistic_tag_keeps_it),
      cmocka_unit_test(counters_with_different_tags_are_reported_separately),
      cmocka_unit_test(counter_count_getter_returns_the_interval_sum),
      cmocka_unit_test(counter_count_getter_returns_zero_for_null_and_noop_counters),
  };
  return cmocka_run_group_tests(tests, mt_setup_capture, mt_teardown_capture);
}
