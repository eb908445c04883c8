/*
 * Unit tests for src/gauge.c: gauges and max gauges.
 *
 * A gauge reports its last value (statistic=gauge, op max) every snapshot
 * until its TTL (15 minutes by default, configurable per registry and per
 * gauge) passes without a set; NaN stops reporting and a new set restarts it.
 * Time comes from a fake clock in the registry config. A max gauge reports the
 * largest value set during the interval (statistic=max, op max) and resets.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "meter.h"
#include "meter_test_util.h"

#define S MT_NS_PER_S
#define GAUGE_TAGS SPECTATOR_TAGS("k", "v", "statistic", "gauge")
#define MAX_TAGS SPECTATOR_TAGS("k", "v", "statistic", "max")

/* The state of the tests that share one meter: the registry, and either the
 * gauge "temp"{k=v} on a fake clock (temp_gauge_setup) or the max gauge
 * "peak"{k=v} on the real clock (peak_max_gauge_setup). */
typedef struct {
  tu_clock_t clock;
  spectator_registry_t *reg;
  spectator_gauge_t *temp;
  spectator_max_gauge_t *peak;
} gauge_fixture_t;

static int temp_gauge_setup(void **state) {
  gauge_fixture_t *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  tu_clock_set(&f->clock, 0);
  f->reg = mt_registry(&f->clock, 0);
  f->temp = spectator_registry_gauge(f->reg, "temp", SPECTATOR_TAGS("k", "v"));
  *state = f;
  return 0;
}

static int peak_max_gauge_setup(void **state) {
  gauge_fixture_t *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  f->reg = mt_registry(NULL, 0);
  f->peak = spectator_registry_max_gauge(f->reg, "peak", SPECTATOR_TAGS("k", "v"));
  *state = f;
  return 0;
}

static int fixture_teardown(void **state) {
  gauge_fixture_t *f = *state;
  spectator_registry_free(f->reg);
  free(f);
  return 0;
}

/* Snapshot reg and expect exactly one measurement: the gauge "temp"{k=v}
 * (statistic=gauge) or the max gauge "peak"{k=v} (statistic=max), op max,
 * value v. */
#define expect_temp(reg, v) mt_expect_single((reg), "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, (v))
#define expect_peak(reg, v) mt_expect_single((reg), "peak", MAX_TAGS, SPECTATOR_OP_MAX, (v))

/* ------------------------------------------------------------------------ */
/* Gauges                                                                    */
/* ------------------------------------------------------------------------ */

static void gauge_reports_the_last_value_set_with_op_max(void **state) {
  gauge_fixture_t *f = *state;
  spectator_gauge_set(f->temp, 1);
  spectator_gauge_set(f->temp, 99);
  spectator_gauge_set(f->temp, 42.5);
  assert_true(spectator_gauge_get(f->temp) == 42.5);
  expect_temp(f->reg, 42.5);
  spectator_gauge_set(f->temp, -3.25);
  expect_temp(f->reg, -3.25);
  spectator_gauge_set(f->temp, 0);
  expect_temp(f->reg, 0);
}

static void gauge_that_was_never_set_reports_nothing(void **state) {
  gauge_fixture_t *f = *state;
  assert_false(spectator__is_noop(f->temp));
  assert_true(isnan(spectator_gauge_get(f->temp)));
  mt_expect_empty(f->reg);
  tu_clock_advance(&f->clock, 60 * S);
  mt_expect_empty(f->reg);
}

static void gauge_keeps_reporting_each_snapshot_until_the_default_ttl_passes(void **state) {
  gauge_fixture_t *f = *state;
  spectator_gauge_set(f->temp, 5);
  /* Every 5 s for (almost) 15 minutes: the last value each time. */
  for (int t = 0; t < 900; t += 5) {
    tu_clock_set(&f->clock, (int64_t)t * S);
    expect_temp(f->reg, 5);
  }
  tu_clock_set(&f->clock, 900 * S - 1);
  expect_temp(f->reg, 5);
  tu_clock_set(&f->clock, 900 * S + 1);
  mt_expect_empty(f->reg);
  tu_clock_set(&f->clock, 2000 * S);
  mt_expect_empty(f->reg);
  /* The value itself is still there for the getter. */
  assert_true(spectator_gauge_get(f->temp) == 5);
}

static void gauge_ttl_counts_from_the_last_set(void **state) {
  gauge_fixture_t *f = *state;
  spectator_gauge_set(f->temp, 1);
  expect_temp(f->reg, 1);
  tu_clock_set(&f->clock, 800 * S);
  spectator_gauge_set(f->temp, 7);
  expect_temp(f->reg, 7);
  tu_clock_set(&f->clock, 1600 * S); /* 1600 s after the first set, 800 s after the last */
  expect_temp(f->reg, 7);
  tu_clock_set(&f->clock, 1700 * S + 1);
  mt_expect_empty(f->reg);
}

static void gauge_set_after_the_ttl_passed_restarts_reporting(void **state) {
  gauge_fixture_t *f = *state;
  spectator_gauge_set(f->temp, 1);
  expect_temp(f->reg, 1);
  tu_clock_set(&f->clock, 1000 * S);
  mt_expect_empty(f->reg);
  spectator_gauge_set(f->temp, 2);
  expect_temp(f->reg, 2);
  tu_clock_set(&f->clock, 1500 * S);
  expect_temp(f->reg, 2);
}

static void gauge_set_long_after_creation_is_reported(void **state) {
  gauge_fixture_t *f = *state;
  tu_clock_set(&f->clock, 5000 * S); /* created 5000 s ago, no snapshot since */
  spectator_gauge_set(f->temp, 3);
  expect_temp(f->reg, 3);
}

static void gauge_nan_stops_reporting_and_a_new_set_restarts_it(void **state) {
  gauge_fixture_t *f = *state;
  spectator_gauge_set(f->temp, 3);
  expect_temp(f->reg, 3);
  spectator_gauge_set(f->temp, NAN);
  assert_true(isnan(spectator_gauge_get(f->temp)));
  mt_expect_empty(f->reg);
  tu_clock_advance(&f->clock, 5 * S);
  mt_expect_empty(f->reg);
  spectator_gauge_set(f->temp, 4);
  expect_temp(f->reg, 4);
  expect_temp(f->reg, 4);
}

static void gauge_ignores_infinite_values(void **state) {
  gauge_fixture_t *f = *state;
  spectator_gauge_set(f->temp, INFINITY);
  spectator_gauge_set(f->temp, -INFINITY);
  mt_expect_empty(f->reg);
  spectator_gauge_set(f->temp, 2);
  spectator_gauge_set(f->temp, INFINITY);
  spectator_gauge_set(f->temp, -INFINITY);
  assert_true(spectator_gauge_get(f->temp) == 2);
  expect_temp(f->reg, 2);
  spectator_gauge_set(f->temp, DBL_MAX);
  expect_temp(f->reg, DBL_MAX);
  spectator_gauge_set(f->temp, -DBL_MAX);
  expect_temp(f->reg, -DBL_MAX);
}

static void gauge_with_its_own_ttl_expires_on_its_own_schedule(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_gauge_t *shortg =
      spectator_registry_gauge_with_ttl(reg, "short", SPECTATOR_TAGS("k", "v"), 10);
  spectator_gauge_t *dflt = spectator_registry_gauge(reg, "dflt", SPECTATOR_TAGS("k", "v"));
  spectator_gauge_set(shortg, 1);
  spectator_gauge_set(dflt, 2);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 2);
  mt_assert_measurement(ms, "short", GAUGE_TAGS, SPECTATOR_OP_MAX, 1);
  mt_assert_measurement(ms, "dflt", GAUGE_TAGS, SPECTATOR_OP_MAX, 2);
  spectator_measurements_free(ms);
  tu_clock_set(&clock, 10 * S - 1);
  ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 2);
  spectator_measurements_free(ms);
  tu_clock_set(&clock, 10 * S + 1);
  mt_expect_single(reg, "dflt", GAUGE_TAGS, SPECTATOR_OP_MAX, 2);
  /* The same id again keeps the gauge and its TTL. */
  spectator_gauge_t *again =
      spectator_registry_gauge_with_ttl(reg, "short", SPECTATOR_TAGS("k", "v"), 3600);
  assert_ptr_equal(again, shortg);
  assert_ptr_equal(spectator_registry_gauge(reg, "short", SPECTATOR_TAGS("k", "v")), shortg);
  spectator_gauge_set(again, 3);
  tu_clock_set(&clock, 20 * S);
  ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 2);
  mt_assert_measurement(ms, "short", GAUGE_TAGS, SPECTATOR_OP_MAX, 3);
  spectator_measurements_free(ms);
  tu_clock_set(&clock, 31 * S);
  mt_expect_single(reg, "dflt", GAUGE_TAGS, SPECTATOR_OP_MAX, 2);
  spectator_registry_free(reg);
}

static void gauge_with_an_invalid_ttl_uses_the_registry_ttl(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  const double bad[] = {0, -1, NAN, INFINITY, -INFINITY};
  char name[16];
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    snprintf(name, sizeof(name), "g%zu", i);
    spectator_gauge_t *g = spectator_registry_gauge_with_ttl(reg, name, NULL, bad[i]);
    assert_false(spectator__is_noop(g));
    spectator_gauge_set(g, (double)i);
  }
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 5);
  spectator_measurements_free(ms);
  tu_clock_set(&clock, 900 * S);
  ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 5);
  mt_assert_measurement(ms, "g4", SPECTATOR_TAGS("statistic", "gauge"), SPECTATOR_OP_MAX, 4);
  spectator_measurements_free(ms);
  tu_clock_set(&clock, 900 * S + 1);
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

static void gauge_uses_the_registry_meter_ttl(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry_with_ttl(&clock, 0, 30);
  spectator_gauge_t *g = spectator_registry_gauge(reg, "temp", SPECTATOR_TAGS("k", "v"));
  spectator_gauge_set(g, 8);
  expect_temp(reg, 8);
  tu_clock_set(&clock, 30 * S);
  expect_temp(reg, 8);
  tu_clock_set(&clock, 30 * S + 1);
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

static void gauge_with_a_statistic_tag_keeps_it(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_gauge_t *g =
      spectator_registry_gauge(reg, "temp", SPECTATOR_TAGS("statistic", "activeThreads"));
  spectator_gauge_set(g, 12);
  mt_expect_single(reg, "temp", SPECTATOR_TAGS("statistic", "activeThreads"), SPECTATOR_OP_MAX, 12);
  spectator_registry_free(reg);
}

static void gauge_get_returns_nan_for_null_and_noop_gauges(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_gauge_t *noop = spectator_registry_gauge(reg, "", NULL);
  assert_true(spectator__is_noop(noop));
  spectator_gauge_set(noop, 1);
  assert_true(isnan(spectator_gauge_get(noop)));
  spectator_gauge_set(NULL, 1);
  assert_true(isnan(spectator_gauge_get(NULL)));
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

/* ------------------------------------------------------------------------ */
/* Max gauges                                                                */
/* ------------------------------------------------------------------------ */

static void max_gauge_reports_the_largest_value_of_the_interval(void **state) {
  gauge_fixture_t *f = *state;
  spectator_max_gauge_set(f->peak, 3);
  spectator_max_gauge_set(f->peak, 10.5);
  spectator_max_gauge_set(f->peak, -2);
  spectator_max_gauge_set(f->peak, 7);
  assert_true(spectator_max_gauge_get(f->peak) == 10.5);
  expect_peak(f->reg, 10.5);
}

static void max_gauge_reports_the_max_of_negative_values(void **state) {
  gauge_fixture_t *f = *state;
  spectator_max_gauge_set(f->peak, -5);
  spectator_max_gauge_set(f->peak, -3.5);
  spectator_max_gauge_set(f->peak, -10);
  expect_peak(f->reg, -3.5);
  spectator_max_gauge_set(f->peak, -DBL_MAX);
  expect_peak(f->reg, -DBL_MAX);
  spectator_max_gauge_set(f->peak, -1);
  spectator_max_gauge_set(f->peak, -0.0);
  spectator_max_gauge_set(f->peak, -2);
  spectator_measurements_t *ms = mt_snapshot(f->reg);
  mt_assert_measurement_count(ms, 1);
  mt_assert_measurement(ms, "peak", MAX_TAGS, SPECTATOR_OP_MAX, 0);
  spectator_measurements_free(ms);
  spectator_max_gauge_set(f->peak, DBL_MAX);
  spectator_max_gauge_set(f->peak, 0);
  expect_peak(f->reg, DBL_MAX);
}

static void max_gauge_resets_each_interval(void **state) {
  gauge_fixture_t *f = *state;
  mt_expect_empty(f->reg);
  spectator_max_gauge_set(f->peak, 10);
  expect_peak(f->reg, 10);
  assert_true(isnan(spectator_max_gauge_get(f->peak)));
  mt_expect_empty(f->reg);
  spectator_max_gauge_set(f->peak, 1);
  expect_peak(f->reg, 1);
}

static void max_gauge_ignores_nan_and_infinite_values(void **state) {
  gauge_fixture_t *f = *state;
  spectator_max_gauge_set(f->peak, NAN);
  spectator_max_gauge_set(f->peak, -NAN);
  spectator_max_gauge_set(f->peak, INFINITY);
  spectator_max_gauge_set(f->peak, -INFINITY);
  assert_true(isnan(spectator_max_gauge_get(f->peak)));
  mt_expect_empty(f->reg);
  spectator_max_gauge_set(f->peak, -7);
  spectator_max_gauge_set(f->peak, INFINITY);
  spectator_max_gauge_set(f->peak, NAN);
  expect_peak(f->reg, -7);
}

static void max_gauge_with_a_statistic_tag_keeps_it(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_max_gauge_t *g =
      spectator_registry_max_gauge(reg, "peak", SPECTATOR_TAGS("statistic", "gauge"));
  spectator_max_gauge_set(g, 4);
  mt_expect_single(reg, "peak", SPECTATOR_TAGS("statistic", "gauge"), SPECTATOR_OP_MAX, 4);
  spectator_registry_free(reg);
}

static void max_gauge_get_returns_nan_for_null_and_noop_max_gauges(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_max_gauge_t *noop = spectator_registry_max_gauge(reg, NULL, SPECTATOR_TAGS("k", "v"));
  assert_true(spectator__is_noop(noop));
  spectator_max_gauge_set(noop, 5);
  assert_true(isnan(spectator_max_gauge_get(noop)));
  spectator_max_gauge_set(NULL, 5);
  assert_true(isnan(spectator_max_gauge_get(NULL)));
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
/* Tests that start from a fixture (passed in *state). */
#define ON_TEMP(f) cmocka_unit_test_setup_teardown(f, temp_gauge_setup, fixture_teardown)
#define ON_PEAK(f) cmocka_unit_test_setup_teardown(f, peak_max_gauge_setup, fixture_teardown)
      ON_TEMP(gauge_reports_the_last_value_set_with_op_max),
      ON_TEMP(gauge_that_was_never_set_reports_nothing),
      ON_TEMP(gauge_keeps_reporting_each_snapshot_until_the_default_ttl_passes),
      ON_TEMP(gauge_ttl_counts_from_the_last_set),
      ON_TEMP(gauge_set_after_the_ttl_passed_restarts_reporting),
      ON_TEMP(gauge_set_long_after_creation_is_reported),
      ON_TEMP(gauge_nan_stops_reporting_and_a_new_set_restarts_it),
      ON_TEMP(gauge_ignores_infinite_values),
      cmocka_unit_test(gauge_with_its_own_ttl_expires_on_its_own_schedule),
      cmocka_unit_test(gauge_with_an_invalid_ttl_uses_the_registry_ttl),
      cmocka_unit_test(gauge_uses_the_registry_meter_ttl),
      cmocka_unit_test(gauge_with_a_statistic_tag_keeps_it),
      cmocka_unit_test(gauge_get_returns_nan_for_null_and_noop_gauges),
      ON_PEAK(max_gauge_reports_the_largest_value_of_the_interval),
      ON_PEAK(max_gauge_reports_the_max_of_negative_values),
      ON_PEAK(max_gauge_resets_each_interval),
      ON_PEAK(max_gauge_ignores_nan_and_infinite_values),
      cmocka_unit_test(max_gauge_with_a_statistic_tag_keeps_it),
      cmocka_unit_test(max_gauge_get_returns_nan_for_null_and_noop_max_gauges),
#undef ON_TEMP
#undef ON_PEAK
  };
  return cmocka_run_group_tests(tests, mt_setup_capture, mt_teardown_capture);
}
