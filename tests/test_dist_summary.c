/*
 * Unit tests for src/dist_summary.c: what a distribution summary reports:
 * count, totalAmount and totalOfSquares with op add and max with
 * op max, in base units, per interval; a negative amount counted and nothing
 * else, NaN and infinite amounts ignored, zero amounts counted, nothing for an
 * idle interval, sums beyond the doubles reported as DBL_MAX.
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

static void dist_summary_reports_count_total_amount_total_of_squares_and_max(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_dist_summary_t *d =
      spectator_registry_dist_summary(reg, "size", SPECTATOR_TAGS("k", "v"));
  spectator_dist_summary_record(d, 1);
  spectator_dist_summary_record(d, 2);
  spectator_dist_summary_record(d, 3);
  spectator_dist_summary_record(d, 10);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_summary_alone(ms, "size", 4, 16, 114, 10);
  const char *const stats[] = {"count", "max", "totalAmount", "totalOfSquares"};
  const int ops[] = {SPECTATOR_OP_ADD, SPECTATOR_OP_MAX, SPECTATOR_OP_ADD, SPECTATOR_OP_ADD};
  for (size_t i = 0; i < 4; i++) {
    const spectator_measurement_t *m = spectator_measurements_get(ms, i);
    assert_string_equal(spectator_id_tag(m->id, "statistic"), stats[i]);
    assert_int_equal(m->op, ops[i]);
  }
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void dist_summary_sums_fractional_and_whole_amounts_exactly(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_dist_summary_t *d =
      spectator_registry_dist_summary(reg, "size", SPECTATOR_TAGS("k", "v"));
  spectator_dist_summary_record(d, 0.5);
  spectator_dist_summary_record(d, 0.25);
  spectator_dist_summary_record(d, 1.75);
  spectator_dist_summary_record(d, 2);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_summary_alone(ms, "size", 4, 4.5, 0.25 + 0.0625 + 3.0625 + 4, 2);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void dist_summary_sums_large_whole_amounts_exactly(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_dist_summary_t *d =
      spectator_registry_dist_summary(reg, "size", SPECTATOR_TAGS("k", "v"));
  spectator_dist_summary_record(d, 4294967295.0); /* 2^32-1: integer path, square > 2^63 */
  spectator_dist_summary_record(d, 4294967295.0);
  spectator_dist_summary_record(d, 5e9); /* beyond 2^32: double path */
  spectator_measurements_t *ms = mt_snapshot(reg);
  /* 2 * (2^32-1)^2 = 2^65 - 2^34 + 2 as a double is 2^65 - 2^34; 5e9^2 = 2.5e19 exactly. */
  mt_assert_summary_alone(ms, "size", 3, 2 * 4294967295.0 + 5e9, (0x1p65 - 0x1p34) + 2.5e19, 5e9);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void dist_summary_counts_zero_amounts(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_dist_summary_t *d =
      spectator_registry_dist_summary(reg, "size", SPECTATOR_TAGS("k", "v"));
  spectator_dist_summary_record(d, 0);
  spectator_dist_summary_record(d, -0.0);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_summary_alone(ms, "size", 2, 0, 0, 0);
  const spectator_measurement_t *max =
      spectator_measurements_find(ms, "size", SPECTATOR_TAGS("k", "v", "statistic", "max"));
  assert_false(signbit(max->value));
  spectator_measurements_free(ms);

  /* -0.0 must not beat a positive amount to the max. */
  spectator_dist_summary_record(d, -0.0);
  spectator_dist_summary_record(d, 3);
  spectator_dist_summary_record(d, -0.0);
  ms = mt_snapshot(reg);
  mt_assert_summary_alone(ms, "size", 3, 3, 9, 3);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

/* As Spectator Java: a negative amount is counted and adds nothing else. */
static void dist_summary_counts_a_negative_amount_and_adds_nothing_else(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_dist_summary_t *d =
      spectator_registry_dist_summary(reg, "size", SPECTATOR_TAGS("k", "v"));
  spectator_dist_summary_record(d, 7);
  spectator_dist_summary_record(d, -1);
  spectator_dist_summary_record(d, -0.5);
  spectator_dist_summary_record(d, -DBL_MAX);
  assert_int_equal(spectator_dist_summary_count(d), 4);
  assert_true(spectator_dist_summary_total(d) == 7);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_summary_alone(ms, "size", 4, 7, 49, 7);
  spectator_measurements_free(ms);
  spectator_dist_summary_record(d, -3);
  ms = mt_snapshot(reg);
  mt_assert_summary_alone(ms, "size", 1, 0, 0, 0);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void dist_summary_ignores_nan_and_infinite_amounts(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_dist_summary_t *d =
      spectator_registry_dist_summary(reg, "size", SPECTATOR_TAGS("k", "v"));
  const double bad[] = {NAN, -NAN, INFINITY, -INFINITY};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    spectator_dist_summary_record(d, bad[i]);
  assert_int_equal(spectator_dist_summary_count(d), 0);
  mt_expect_empty(reg);
  spectator_dist_summary_record(d, 7);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    spectator_dist_summary_record(d, bad[i]);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_summary_alone(ms, "size", 1, 7, 49, 7);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void dist_summary_reports_nothing_for_an_idle_interval(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_dist_summary_t *d =
      spectator_registry_dist_summary(reg, "size", SPECTATOR_TAGS("k", "v"));
  mt_expect_empty(reg);
  spectator_dist_summary_record(d, 5);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_summary_alone(ms, "size", 1, 5, 25, 5);
  spectator_measurements_free(ms);
  mt_expect_empty(reg);
  spectator_dist_summary_record(d, 1);
  ms = mt_snapshot(reg);
  mt_assert_summary_alone(ms, "size", 1, 1, 1, 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

/* Values sent are finite: a statistic whose interval value leaves the
 * doubles is reported as DBL_MAX (records.c), never dropped. */
static void dist_summary_statistics_that_overflow_a_double_saturate_at_dbl_max(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_dist_summary_t *d =
      spectator_registry_dist_summary(reg, "size", SPECTATOR_TAGS("k", "v"));
  spectator_dist_summary_record(d, 1e200); /* its square overflows */
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_summary_alone(ms, "size", 1, 1e200, DBL_MAX, 1e200);
  spectator_measurements_free(ms);
  spectator_dist_summary_record(d, DBL_MAX); /* the total overflows too */
  spectator_dist_summary_record(d, DBL_MAX);
  ms = mt_snapshot(reg);
  mt_assert_summary_alone(ms, "size", 2, DBL_MAX, DBL_MAX, DBL_MAX);
  spectator_measurements_free(ms);
  /* The next interval is whole again. */
  spectator_dist_summary_record(d, 2);
  ms = mt_snapshot(reg);
  mt_assert_summary_alone(ms, "size", 1, 2, 4, 2);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void dist_summary_with_a_statistic_tag_reports_its_four_statistics(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_dist_summary_t *d =
      spectator_registry_dist_summary(reg, "size", SPECTATOR_TAGS("statistic", "custom", "k", "v"));
  spectator_dist_summary_record(d, 2);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_summary_alone(ms, "size", 1, 2, 4, 2);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void dist_summary_getters_return_the_interval_count_and_total(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_dist_summary_t *d = spectator_registry_dist_summary(reg, "size", NULL);
  assert_int_equal(spectator_dist_summary_count(d), 0);
  assert_true(spectator_dist_summary_total(d) == 0);
  spectator_dist_summary_record(d, 3);
  spectator_dist_summary_record(d, 0.5);
  assert_int_equal(spectator_dist_summary_count(d), 2);
  assert_true(spectator_dist_summary_total(d) == 3.5);
  spectator_measurements_free(mt_snapshot(reg));
  assert_int_equal(spectator_dist_summary_count(d), 0);
  assert_true(spectator_dist_summary_total(d) == 0);
  spectator_registry_free(reg);
}

static void dist_summary_getters_return_zero_for_null_and_noop_summaries(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_dist_summary_t *noop =
      spectator_registry_dist_summary(reg, "size", SPECTATOR_TAGS("k"));
  assert_true(spectator__is_noop(noop));
  spectator_dist_summary_record(noop, 5);
  assert_int_equal(spectator_dist_summary_count(noop), 0);
  assert_true(spectator_dist_summary_total(noop) == 0);
  spectator_dist_summary_record(NULL, 5);
  assert_int_equal(spectator_dist_summary_count(NULL), 0);
  assert_true(spectator_dist_summary_total(NULL) == 0);
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(dist_summary_reports_count_total_amount_total_of_squares_and_max),
      cmocka_unit_test(dist_summary_sums_fractional_and_whole_amounts_exactly),
      cmocka_unit_test(dist_summary_sums_large_whole_amounts_exactly),
      cmocka_unit_test(dist_summary_counts_zero_amounts),
      cmocka_unit_test(dist_summary_counts_a_negative_amount_and_adds_nothing_else),
      cmocka_unit_test(dist_summary_ignores_nan_and_infinite_amounts),
      cmocka_unit_test(dist_summary_reports_nothing_for_an_idle_interval),
      cmocka_unit_test(dist_summary_statistics_that_overflow_a_double_saturate_at_dbl_max),
      cmocka_unit_test(dist_summary_with_a_statistic_tag_reports_its_four_statistics),
      cmocka_unit_test(dist_summary_getters_return_the_interval_count_and_total),
      cmocka_unit_test(dist_summary_getters_return_zero_for_null_and_noop_summaries),
  };
  return cmocka_run_group_tests(tests, mt_setup_capture, mt_teardown_capture);
}
