/*
 * Unit tests for src/monotonic_counter.c: a monotonic counter
 * reports (statistic=count, op add) the last value set minus the last value
 * set at the previous snapshot; the first snapshot after the first set and a
 * decrease report nothing, and a decrease becomes the new base.
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

#define COUNT_TAGS SPECTATOR_TAGS("k", "v", "statistic", "count")

static spectator_monotonic_counter_t *new_mc(spectator_registry_t *reg) {
  spectator_monotonic_counter_t *m =
      spectator_registry_monotonic_counter(reg, "bytes", SPECTATOR_TAGS("k", "v"));
  assert_false(spectator__is_noop(m));
  return m;
}

static void monotonic_counter_first_snapshot_after_the_first_set_reports_nothing(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_monotonic_counter_t *m = new_mc(reg);
  mt_expect_empty(reg); /* never set */
  spectator_monotonic_counter_set(m, 100);
  mt_expect_empty(reg); /* first sample: only the base */
  spectator_monotonic_counter_set(m, 150);
  mt_expect_single(reg, "bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 50);
  spectator_registry_free(reg);
}

static void monotonic_counter_reports_the_delta_between_snapshots(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_monotonic_counter_t *m = new_mc(reg);
  spectator_monotonic_counter_set(m, 1000);
  mt_expect_empty(reg);
  /* Only the last value of the interval counts. */
  spectator_monotonic_counter_set(m, 1200);
  spectator_monotonic_counter_set(m, 1500);
  spectator_monotonic_counter_set(m, 1300);
  mt_expect_single(reg, "bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 300);
  /* No set, or the same value: no growth, nothing reported. */
  mt_expect_empty(reg);
  spectator_monotonic_counter_set(m, 1300);
  mt_expect_empty(reg);
  spectator_monotonic_counter_set(m, 1310);
  mt_expect_single(reg, "bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 10);
  spectator_registry_free(reg);
}

static void monotonic_counter_decrease_reports_nothing_and_rebases(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_monotonic_counter_t *m = new_mc(reg);
  spectator_monotonic_counter_set(m, 100);
  mt_expect_empty(reg);
  spectator_monotonic_counter_set(m, 150);
  mt_expect_single(reg, "bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 50);
  spectator_monotonic_counter_set(m, 20); /* the source restarted */
  mt_expect_empty(reg);
  spectator_monotonic_counter_set(m, 25);
  mt_expect_single(reg, "bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 5);
  spectator_registry_free(reg);
}

static void monotonic_counter_handles_fractional_and_negative_values(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_monotonic_counter_t *m = new_mc(reg);
  spectator_monotonic_counter_set(m, 0.5);
  mt_expect_empty(reg);
  spectator_monotonic_counter_set(m, 2.0);
  mt_expect_single(reg, "bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 1.5);
  spectator_monotonic_counter_set(m, -10);
  mt_expect_empty(reg);
  spectator_monotonic_counter_set(m, -4);
  mt_expect_single(reg, "bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 6);
  spectator_registry_free(reg);
}

static void monotonic_counter_ignores_nan_and_infinite_values(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_monotonic_counter_t *m = new_mc(reg);
  spectator_monotonic_counter_set(m, NAN);
  spectator_monotonic_counter_set(m, INFINITY);
  mt_expect_empty(reg);
  assert_true(spectator_monotonic_counter_get(m) == 0);
  spectator_monotonic_counter_set(m, 10);
  mt_expect_empty(reg);
  spectator_monotonic_counter_set(m, NAN);
  spectator_monotonic_counter_set(m, INFINITY);
  spectator_monotonic_counter_set(m, -INFINITY);
  assert_true(spectator_monotonic_counter_get(m) == 10);
  mt_expect_empty(reg);
  spectator_monotonic_counter_set(m, 15);
  spectator_monotonic_counter_set(m, NAN);
  mt_expect_single(reg, "bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 5);
  spectator_registry_free(reg);
}

/* Values sent are finite: a delta beyond the doubles is reported as DBL_MAX,
 * and the value still becomes the base for the next delta. */
static void monotonic_counter_delta_that_overflows_a_double_saturates_at_dbl_max(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_monotonic_counter_t *m = new_mc(reg);
  spectator_monotonic_counter_set(m, -DBL_MAX);
  mt_expect_empty(reg);
  spectator_monotonic_counter_set(m, DBL_MAX); /* DBL_MAX - -DBL_MAX is +inf */
  mt_expect_single(reg, "bytes", COUNT_TAGS, SPECTATOR_OP_ADD, DBL_MAX);
  spectator_monotonic_counter_set(m, 0); /* a decrease: rebase */
  mt_expect_empty(reg);
  spectator_monotonic_counter_set(m, 5);
  mt_expect_single(reg, "bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 5);
  spectator_registry_free(reg);
}

static void monotonic_counter_with_a_statistic_tag_keeps_it(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_monotonic_counter_t *m = spectator_registry_monotonic_counter(
      reg, "bytes", SPECTATOR_TAGS("statistic", "totalAmount"));
  spectator_monotonic_counter_set(m, 1);
  mt_expect_empty(reg);
  spectator_monotonic_counter_set(m, 4);
  mt_expect_single(reg, "bytes", SPECTATOR_TAGS("statistic", "totalAmount"), SPECTATOR_OP_ADD, 3);
  spectator_registry_free(reg);
}

static void monotonic_counter_get_returns_the_last_value_set(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_monotonic_counter_t *m = new_mc(reg);
  assert_true(spectator_monotonic_counter_get(m) == 0);
  spectator_monotonic_counter_set(m, 42.5);
  assert_true(spectator_monotonic_counter_get(m) == 42.5);
  spectator_measurements_free(mt_snapshot(reg));
  assert_true(spectator_monotonic_counter_get(m) == 42.5); /* not an interval value */
  spectator_registry_free(reg);
}

static void monotonic_counter_get_returns_zero_for_null_and_noop_counters(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_monotonic_counter_t *noop = spectator_registry_monotonic_counter(reg, "", NULL);
  assert_true(spectator__is_noop(noop));
  spectator_monotonic_counter_set(noop, 5);
  assert_true(spectator_monotonic_counter_get(noop) == 0);
  spectator_monotonic_counter_set(NULL, 5);
  assert_true(spectator_monotonic_counter_get(NULL) == 0);
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(monotonic_counter_first_snapshot_after_the_first_set_reports_nothing),
      cmocka_unit_test(monotonic_counter_reports_the_delta_between_snapshots),
      cmocka_unit_test(monotonic_counter_decrease_reports_nothing_and_rebases),
      cmocka_unit_test(monotonic_counter_handles_fractional_and_negative_values),
      cmocka_unit_test(monotonic_counter_ignores_nan_and_infinite_values),
      cmocka_unit_test(monotonic_counter_delta_that_overflows_a_double_saturates_at_dbl_max),
      cmocka_unit_test(monotonic_counter_with_a_statistic_tag_keeps_it),
      cmocka_unit_test(monotonic_counter_get_returns_the_last_value_set),
      cmocka_unit_test(monotonic_counter_get_returns_zero_for_null_and_noop_counters),
  };
  return cmocka_run_group_tests(tests, mt_setup_capture, mt_teardown_capture);
}
