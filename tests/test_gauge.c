/*
 * Unit tests for src/gauge.c: gauges and max gauges (SPEC section 2).
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

#include <cmocka.h>

#include "internal.h"
#include "meter_test_util.h"

#define S MT_NS_PER_S
#define GAUGE_TAGS SPECTATOR_TAGS("k", "v", "statistic", "gauge")
#define MAX_TAGS SPECTATOR_TAGS("k", "v", "statistic", "max")

/* ------------------------------------------------------------------------ */
/* Gauges                                                                    */
/* ------------------------------------------------------------------------ */

static void gauge_reports_the_last_value_set_with_op_max(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_gauge_t *g = spectator_registry_gauge(reg, "temp", SPECTATOR_TAGS("k", "v"));
  spectator_gauge_set(g, 1);
  spectator_gauge_set(g, 99);
  spectator_gauge_set(g, 42.5);
  assert_true(spectator_gauge_get(g) == 42.5);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, 42.5);
  spectator_gauge_set(g, -3.25);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, -3.25);
  spectator_gauge_set(g, 0);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, 0);
  spectator_registry_free(reg);
}

static void gauge_that_was_never_set_reports_nothing(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_gauge_t *g = spectator_registry_gauge(reg, "temp", SPECTATOR_TAGS("k", "v"));
  assert_false(spectator__is_noop(g));
  assert_true(isnan(spectator_gauge_get(g)));
  mt_expect_empty(reg);
  tu_clock_advance(&clock, 60 * S);
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

static void gauge_keeps_reporting_each_snapshot_until_the_default_ttl_passes(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_gauge_t *g = spectator_registry_gauge(reg, "temp", SPECTATOR_TAGS("k", "v"));
  spectator_gauge_set(g, 5);
  /* Every 5 s for (almost) 15 minutes: the last value each time. */
  for (int t = 0; t < 900; t += 5) {
    tu_clock_set(&clock, (int64_t)t * S);
    mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, 5);
  }
  tu_clock_set(&clock, 900 * S - 1);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, 5);
  tu_clock_set(&clock, 900 * S + 1);
  mt_expect_empty(reg);
  tu_clock_set(&clock, 2000 * S);
  mt_expect_empty(reg);
  /* The value itself is still there for the getter. */
  assert_true(spectator_gauge_get(g) == 5);
  spectator_registry_free(reg);
}

static void gauge_ttl_counts_from_the_last_set(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_gauge_t *g = spectator_registry_gauge(reg, "temp", SPECTATOR_TAGS("k", "v"));
  spectator_gauge_set(g, 1);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, 1);
  tu_clock_set(&clock, 800 * S);
  spectator_gauge_set(g, 7);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, 7);
  tu_clock_set(&clock, 1600 * S); /* 1600 s after the first set, 800 s after the last */
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, 7);
  tu_clock_set(&clock, 1700 * S + 1);
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

static void gauge_set_after_the_ttl_passed_restarts_reporting(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_gauge_t *g = spectator_registry_gauge(reg, "temp", SPECTATOR_TAGS("k", "v"));
  spectator_gauge_set(g, 1);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, 1);
  tu_clock_set(&clock, 1000 * S);
  mt_expect_empty(reg);
  spectator_gauge_set(g, 2);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, 2);
  tu_clock_set(&clock, 1500 * S);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, 2);
  spectator_registry_free(reg);
}

static void gauge_set_long_after_creation_is_reported(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_gauge_t *g = spectator_registry_gauge(reg, "temp", SPECTATOR_TAGS("k", "v"));
  tu_clock_set(&clock, 5000 * S); /* created 5000 s ago, no snapshot since */
  spectator_gauge_set(g, 3);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, 3);
  spectator_registry_free(reg);
}

static void gauge_nan_stops_reporting_and_a_new_set_restarts_it(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_gauge_t *g = spectator_registry_gauge(reg, "temp", SPECTATOR_TAGS("k", "v"));
  spectator_gauge_set(g, 3);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, 3);
  spectator_gauge_set(g, NAN);
  assert_true(isnan(spectator_gauge_get(g)));
  mt_expect_empty(reg);
  tu_clock_advance(&clock, 5 * S);
  mt_expect_empty(reg);
  spectator_gauge_set(g, 4);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, 4);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, 4);
  spectator_registry_free(reg);
}

static void gauge_ignores_infinite_values(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_gauge_t *g = spectator_registry_gauge(reg, "temp", SPECTATOR_TAGS("k", "v"));
  spectator_gauge_set(g, INFINITY);
  spectator_gauge_set(g, -INFINITY);
  mt_expect_empty(reg);
  spectator_gauge_set(g, 2);
  spectator_gauge_set(g, INFINITY);
  spectator_gauge_set(g, -INFINITY);
  assert_true(spectator_gauge_get(g) == 2);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, 2);
  spectator_gauge_set(g, DBL_MAX);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, DBL_MAX);
  spectator_gauge_set(g, -DBL_MAX);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, -DBL_MAX);
  spectator_registry_free(reg);
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
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  cfg.meter_ttl_s = 30;
  tu_clock_install(&cfg, &clock);
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  assert_non_null(reg);
  spectator_gauge_t *g = spectator_registry_gauge(reg, "temp", SPECTATOR_TAGS("k", "v"));
  spectator_gauge_set(g, 8);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, 8);
  tu_clock_set(&clock, 30 * S);
  mt_expect_single(reg, "temp", GAUGE_TAGS, SPECTATOR_OP_MAX, 8);
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
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_max_gauge_t *g = spectator_registry_max_gauge(reg, "peak", SPECTATOR_TAGS("k", "v"));
  spectator_max_gauge_set(g, 3);
  spectator_max_gauge_set(g, 10.5);
  spectator_max_gauge_set(g, -2);
  spectator_max_gauge_set(g, 7);
  assert_true(spectator_max_gauge_get(g) == 10.5);
  mt_expect_single(reg, "peak", MAX_TAGS, SPECTATOR_OP_MAX, 10.5);
  spectator_registry_free(reg);
}

static void max_gauge_reports_the_max_of_negative_values(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_max_gauge_t *g = spectator_registry_max_gauge(reg, "peak", SPECTATOR_TAGS("k", "v"));
  spectator_max_gauge_set(g, -5);
  spectator_max_gauge_set(g, -3.5);
  spectator_max_gauge_set(g, -10);
  mt_expect_single(reg, "peak", MAX_TAGS, SPECTATOR_OP_MAX, -3.5);
  spectator_max_gauge_set(g, -DBL_MAX);
  mt_expect_single(reg, "peak", MAX_TAGS, SPECTATOR_OP_MAX, -DBL_MAX);
  spectator_max_gauge_set(g, -1);
  spectator_max_gauge_set(g, -0.0);
  spectator_max_gauge_set(g, -2);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 1);
  mt_assert_measurement(ms, "peak", MAX_TAGS, SPECTATOR_OP_MAX, 0);
  spectator_measurements_free(ms);
  spectator_max_gauge_set(g, DBL_MAX);
  spectator_max_gauge_set(g, 0);
  mt_expect_single(reg, "peak", MAX_TAGS, SPECTATOR_OP_MAX, DBL_MAX);
  spectator_registry_free(reg);
}

static void max_gauge_resets_each_interval(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_max_gauge_t *g = spectator_registry_max_gauge(reg, "peak", SPECTATOR_TAGS("k", "v"));
  mt_expect_empty(reg);
  spectator_max_gauge_set(g, 10);
  mt_expect_single(reg, "peak", MAX_TAGS, SPECTATOR_OP_MAX, 10);
  assert_true(isnan(spectator_max_gauge_get(g)));
  mt_expect_empty(reg);
  spectator_max_gauge_set(g, 1);
  mt_expect_single(reg, "peak", MAX_TAGS, SPECTATOR_OP_MAX, 1);
  spectator_registry_free(reg);
}

static void max_gauge_ignores_nan_and_infinite_values(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_max_gauge_t *g = spectator_registry_max_gauge(reg, "peak", SPECTATOR_TAGS("k", "v"));
  spectator_max_gauge_set(g, NAN);
  spectator_max_gauge_set(g, -NAN);
  spectator_max_gauge_set(g, INFINITY);
  spectator_max_gauge_set(g, -INFINITY);
  assert_true(isnan(spectator_max_gauge_get(g)));
  mt_expect_empty(reg);
  spectator_max_gauge_set(g, -7);
  spectator_max_gauge_set(g, INFINITY);
  spectator_max_gauge_set(g, NAN);
  mt_expect_single(reg, "peak", MAX_TAGS, SPECTATOR_OP_MAX, -7);
  spectator_registry_free(reg);
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
      cmocka_unit_test(gauge_reports_the_last_value_set_with_op_max),
      cmocka_unit_test(gauge_that_was_never_set_reports_nothing),
      cmocka_unit_test(gauge_keeps_reporting_each_snapshot_until_the_default_ttl_passes),
      cmocka_unit_test(gauge_ttl_counts_from_the_last_set),
      cmocka_unit_test(gauge_set_after_the_ttl_passed_restarts_reporting),
      cmocka_unit_test(gauge_set_long_after_creation_is_reported),
      cmocka_unit_test(gauge_nan_stops_reporting_and_a_new_set_restarts_it),
      cmocka_unit_test(gauge_ignores_infinite_values),
      cmocka_unit_test(gauge_with_its_own_ttl_expires_on_its_own_schedule),
      cmocka_unit_test(gauge_with_an_invalid_ttl_uses_the_registry_ttl),
      cmocka_unit_test(gauge_uses_the_registry_meter_ttl),
      cmocka_unit_test(gauge_with_a_statistic_tag_keeps_it),
      cmocka_unit_test(gauge_get_returns_nan_for_null_and_noop_gauges),
      cmocka_unit_test(max_gauge_reports_the_largest_value_of_the_interval),
      cmocka_unit_test(max_gauge_reports_the_max_of_negative_values),
      cmocka_unit_test(max_gauge_resets_each_interval),
      cmocka_unit_test(max_gauge_ignores_nan_and_infinite_values),
      cmocka_unit_test(max_gauge_with_a_statistic_tag_keeps_it),
      cmocka_unit_test(max_gauge_get_returns_nan_for_null_and_noop_max_gauges),
  };
  return cmocka_run_group_tests(tests, mt_setup_capture, mt_teardown_capture);
}
