/*
 * Unit tests for src/snapshot.c and the public snapshot API: measurements are
 * sorted by name then tags, every id carries its statistic, a snapshot resets
 * interval state exactly once, spectator_measurements_find matches exact tag
 * sets in any order, and a snapshot owns its ids (they outlive the registry).
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "common.h"
#include "meter_test_util.h"

/* One meter of every type but the monotonic counter (which reports nothing at
 * its first snapshot), each with one recording: 1 + 4 + 4 + 1 + 1 + (4 + 1) +
 * (4 + 1) = 21 measurements. */
static void record_one_of_each(spectator_registry_t *reg) {
  spectator_counter_add(spectator_registry_counter(reg, "m.counter", SPECTATOR_TAGS("t", "1")), 3);
  spectator_timer_record(spectator_registry_timer(reg, "m.timer", SPECTATOR_TAGS("t", "1")), 2);
  spectator_dist_summary_record(
      spectator_registry_dist_summary(reg, "m.summary", SPECTATOR_TAGS("t", "1")), 5);
  spectator_gauge_set(spectator_registry_gauge(reg, "m.gauge", SPECTATOR_TAGS("t", "1")), 7);
  spectator_max_gauge_set(spectator_registry_max_gauge(reg, "m.max", SPECTATOR_TAGS("t", "1")), 9);
  spectator_percentile_timer_record(
      spectator_registry_percentile_timer(reg, "m.ptimer", SPECTATOR_TAGS("t", "1"), 0.01, 60), 1);
  spectator_percentile_dist_summary_record(
      spectator_registry_percentile_dist_summary(reg, "m.psummary", SPECTATOR_TAGS("t", "1"), 0,
                                                 1000),
      10);
}

static void snapshot_of_an_empty_registry_is_empty(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_measurements_t *ms = mt_snapshot(reg);
  assert_int_equal(spectator_measurements_count(ms), 0);
  assert_null(spectator_measurements_get(ms, 0));
  assert_null(spectator_measurements_find(ms, "x", NULL));
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void snapshot_is_sorted_by_name_then_tags_and_every_id_has_a_statistic(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  /* Created in reverse order on purpose. */
  const char *names[] = {"zeta", "mid", "alpha", "Alpha", "alpha.b"};
  const char *vals[] = {"c", "b", "a"};
  for (size_t i = 0; i < 5; i++)
    for (size_t j = 0; j < 3; j++)
      spectator_counter_add(spectator_registry_counter(reg, names[i], SPECTATOR_TAGS("k", vals[j])),
                            1.0 + (double)j);
  spectator_counter_increment(spectator_registry_counter(reg, "alpha", NULL));
  spectator_counter_increment(
      spectator_registry_counter(reg, "alpha", SPECTATOR_TAGS("a", "1", "k", "a")));
  record_one_of_each(reg);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 15 + 2 + 21);
  mt_assert_sorted(ms);
  /* Names in byte order ("Alpha" < "alpha" < "alpha.b"), then the canonical
   * tags pair by pair: for "alpha", {a=1,k=a,statistic} comes first. */
  assert_string_equal(spectator_id_name(spectator_measurements_get(ms, 0)->id), "Alpha");
  const spectator_measurement_t *m = spectator_measurements_get(ms, 3);
  assert_string_equal(spectator_id_name(m->id), "alpha");
  assert_string_equal(spectator_id_tag_key(m->id, 0), "a");
  mt_assert_measurement(ms, "zeta", SPECTATOR_TAGS("k", "a", "statistic", "count"),
                        SPECTATOR_OP_ADD, 3);
  mt_assert_measurement(ms, "alpha", SPECTATOR_TAGS("statistic", "count"), SPECTATOR_OP_ADD, 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void snapshot_reports_every_meter_type_with_its_statistics(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  record_one_of_each(reg);
  spectator_monotonic_counter_t *mc =
      spectator_registry_monotonic_counter(reg, "m.mono", SPECTATOR_TAGS("t", "1"));
  spectator_monotonic_counter_set(mc, 10);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 21);
  mt_assert_sorted(ms);
  mt_assert_measurement(ms, "m.counter", SPECTATOR_TAGS("t", "1", "statistic", "count"),
                        SPECTATOR_OP_ADD, 3);
  mt_assert_measurement(ms, "m.timer", SPECTATOR_TAGS("t", "1", "statistic", "count"),
                        SPECTATOR_OP_ADD, 1);
  mt_assert_measurement(ms, "m.timer", SPECTATOR_TAGS("t", "1", "statistic", "totalTime"),
                        SPECTATOR_OP_ADD, 2);
  mt_assert_measurement(ms, "m.timer", SPECTATOR_TAGS("t", "1", "statistic", "totalOfSquares"),
                        SPECTATOR_OP_ADD, 4);
  mt_assert_measurement(ms, "m.timer", SPECTATOR_TAGS("t", "1", "statistic", "max"),
                        SPECTATOR_OP_MAX, 2);
  mt_assert_measurement(ms, "m.summary", SPECTATOR_TAGS("t", "1", "statistic", "totalAmount"),
                        SPECTATOR_OP_ADD, 5);
  mt_assert_measurement(ms, "m.gauge", SPECTATOR_TAGS("t", "1", "statistic", "gauge"),
                        SPECTATOR_OP_MAX, 7);
  mt_assert_measurement(ms, "m.max", SPECTATOR_TAGS("t", "1", "statistic", "max"), SPECTATOR_OP_MAX,
                        9);
  mt_assert_measurement(ms, "m.ptimer",
                        SPECTATOR_TAGS("t", "1", "statistic", "percentile", "percentile", "T0083"),
                        SPECTATOR_OP_ADD, 1);
  mt_assert_measurement(ms, "m.psummary",
                        SPECTATOR_TAGS("t", "1", "statistic", "percentile", "percentile", "D000A"),
                        SPECTATOR_OP_ADD, 1);
  mt_assert_absent(ms, "m.mono", SPECTATOR_TAGS("t", "1", "statistic", "count"));
  spectator_measurements_free(ms);
  spectator_monotonic_counter_set(mc, 12);
  ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 2); /* the gauge still reports its value */
  mt_assert_measurement(ms, "m.mono", SPECTATOR_TAGS("t", "1", "statistic", "count"),
                        SPECTATOR_OP_ADD, 2);
  mt_assert_measurement(ms, "m.gauge", SPECTATOR_TAGS("t", "1", "statistic", "gauge"),
                        SPECTATOR_OP_MAX, 7);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void snapshot_resets_interval_state_exactly_once(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  record_one_of_each(reg);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 21);
  spectator_measurements_free(ms);
  /* Only the gauge, which reports its last value until its TTL, is left. */
  mt_expect_single(reg, "m.gauge", SPECTATOR_TAGS("t", "1", "statistic", "gauge"), SPECTATOR_OP_MAX,
                   7);
  mt_expect_single(reg, "m.gauge", SPECTATOR_TAGS("t", "1", "statistic", "gauge"), SPECTATOR_OP_MAX,
                   7);
  /* A second round reports the second round only. */
  record_one_of_each(reg);
  ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 21);
  mt_assert_measurement(ms, "m.counter", SPECTATOR_TAGS("t", "1", "statistic", "count"),
                        SPECTATOR_OP_ADD, 3);
  mt_assert_measurement(ms, "m.summary", SPECTATOR_TAGS("t", "1", "statistic", "count"),
                        SPECTATOR_OP_ADD, 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void snapshot_ids_carry_the_meter_tags_plus_statistic(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *c = spectator_registry_counter(
      reg, "req", SPECTATOR_TAGS("zone", "a", "app", "www", "zone", "b"));
  spectator_counter_increment(c);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 1);
  const spectator_measurement_t *m = spectator_measurements_get(ms, 0);
  assert_string_equal(spectator_id_name(m->id), "req");
  assert_int_equal(spectator_id_tag_count(m->id), 3);
  assert_string_equal(spectator_id_tag_key(m->id, 0), "app");
  assert_string_equal(spectator_id_tag_value(m->id, 0), "www");
  assert_string_equal(spectator_id_tag_key(m->id, 1), "statistic");
  assert_string_equal(spectator_id_tag_value(m->id, 1), "count");
  assert_string_equal(spectator_id_tag_key(m->id, 2), "zone");
  assert_string_equal(spectator_id_tag_value(m->id, 2), "b"); /* the last value wins */
  char buf[128];
  spectator_id_format(m->id, buf, sizeof(buf));
  assert_string_equal(buf, "req{app=www,statistic=count,zone=b}");
  assert_int_equal(m->op, SPECTATOR_OP_ADD);
  assert_true(m->value == 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void measurements_find_matches_exact_tags_in_any_order(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_add(spectator_registry_counter(reg, "req", SPECTATOR_TAGS("a", "1", "b", "2")),
                        4);
  spectator_counter_add(spectator_registry_counter(reg, "req", SPECTATOR_TAGS("a", "1")), 5);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 2);
  const spectator_measurement_t *m = spectator_measurements_find(
      ms, "req", SPECTATOR_TAGS("statistic", "count", "b", "2", "a", "1"));
  assert_non_null(m);
  assert_true(m->value == 4);
  m = spectator_measurements_find(ms, "req", SPECTATOR_TAGS("a", "1", "statistic", "count"));
  assert_non_null(m);
  assert_true(m->value == 5);
  /* Missing statistic, extra tag, other value, other name: no match. */
  assert_null(spectator_measurements_find(ms, "req", SPECTATOR_TAGS("a", "1", "b", "2")));
  assert_null(spectator_measurements_find(
      ms, "req", SPECTATOR_TAGS("a", "1", "b", "2", "c", "3", "statistic", "count")));
  assert_null(
      spectator_measurements_find(ms, "req", SPECTATOR_TAGS("a", "2", "statistic", "count")));
  assert_null(
      spectator_measurements_find(ms, "reqs", SPECTATOR_TAGS("a", "1", "statistic", "count")));
  assert_null(spectator_measurements_find(ms, "req", NULL));
  /* Bad input: no match, no crash. */
  assert_null(spectator_measurements_find(ms, NULL, SPECTATOR_TAGS("a", "1")));
  assert_null(spectator_measurements_find(ms, "", NULL));
  assert_null(spectator_measurements_find(ms, "req", SPECTATOR_TAGS("a")));
  assert_null(
      spectator_measurements_find(NULL, "req", SPECTATOR_TAGS("a", "1", "statistic", "count")));
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void snapshot_ids_stay_valid_after_the_registry_is_freed(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  record_one_of_each(reg);
  spectator_measurements_t *ms = mt_snapshot(reg);
  spectator_registry_free(reg);
  mt_assert_measurement_count(ms, 21);
  mt_assert_sorted(ms);
  mt_assert_measurement(ms, "m.counter", SPECTATOR_TAGS("t", "1", "statistic", "count"),
                        SPECTATOR_OP_ADD, 3);
  /* An id taken from the snapshot can outlive the snapshot too. */
  spectator_id_t *id = spectator_id_ref(spectator_measurements_get(ms, 0)->id);
  spectator_measurements_free(ms);
  assert_string_equal(spectator_id_name(id), "m.counter");
  spectator_id_free(id);
}

static void snapshot_functions_accept_null(void **state) {
  (void)state;
  assert_null(spectator_registry_snapshot(NULL));
  assert_int_equal(spectator_measurements_count(NULL), 0);
  assert_null(spectator_measurements_get(NULL, 0));
  assert_null(spectator_measurements_find(NULL, "x", NULL));
  spectator_measurements_free(NULL);
}

static void snapshots_of_two_registries_are_independent(void **state) {
  (void)state;
  spectator_registry_t *a = mt_registry(NULL, 0);
  spectator_registry_t *b = mt_registry(NULL, 0);
  spectator_counter_t *ca = spectator_registry_counter(a, "c", NULL);
  spectator_counter_t *cb = spectator_registry_counter(b, "c", NULL);
  assert_ptr_not_equal(ca, cb);
  spectator_counter_add(ca, 1);
  spectator_counter_add(cb, 2);
  mt_expect_single_count(a, "c", 1);
  mt_expect_single_count(b, "c", 2);
  spectator_registry_free(a);
  spectator_registry_free(b);
}

/* As every Spectator client: op follows the final statistic tag, the id's own
 * one included, whatever the meter type. */
static void snapshot_op_follows_the_final_statistic_tag(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_gauge_set(spectator_registry_gauge(reg, "g", SPECTATOR_TAGS("statistic", "count")), 3);
  spectator_gauge_set(spectator_registry_gauge(reg, "g", SPECTATOR_TAGS("statistic", "totalTime")),
                      4);
  spectator_gauge_set(spectator_registry_gauge(reg, "g", SPECTATOR_TAGS("statistic", "max")), 5);
  spectator_counter_add(spectator_registry_counter(reg, "c", SPECTATOR_TAGS("statistic", "max")),
                        6);
  spectator_counter_add(
      spectator_registry_counter(reg, "c", SPECTATOR_TAGS("statistic", "percentile")), 7);
  spectator_counter_add(
      spectator_registry_counter(reg, "c", SPECTATOR_TAGS("statistic", "duration")), 8);
  spectator_max_gauge_set(
      spectator_registry_max_gauge(reg, "m", SPECTATOR_TAGS("statistic", "totalAmount")), 9);
  spectator_max_gauge_set(
      spectator_registry_max_gauge(reg, "m", SPECTATOR_TAGS("statistic", "totalOfSquares")), 10);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 8);
  mt_assert_measurement(ms, "g", SPECTATOR_TAGS("statistic", "count"), SPECTATOR_OP_ADD, 3);
  mt_assert_measurement(ms, "g", SPECTATOR_TAGS("statistic", "totalTime"), SPECTATOR_OP_ADD, 4);
  mt_assert_measurement(ms, "g", SPECTATOR_TAGS("statistic", "max"), SPECTATOR_OP_MAX, 5);
  mt_assert_measurement(ms, "c", SPECTATOR_TAGS("statistic", "max"), SPECTATOR_OP_MAX, 6);
  mt_assert_measurement(ms, "c", SPECTATOR_TAGS("statistic", "percentile"), SPECTATOR_OP_ADD, 7);
  mt_assert_measurement(ms, "c", SPECTATOR_TAGS("statistic", "duration"), SPECTATOR_OP_MAX, 8);
  mt_assert_measurement(ms, "m", SPECTATOR_TAGS("statistic", "totalAmount"), SPECTATOR_OP_ADD, 9);
  mt_assert_measurement(ms, "m", SPECTATOR_TAGS("statistic", "totalOfSquares"), SPECTATOR_OP_ADD,
                        10);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void snapshot_of_many_meters_reports_each_once_in_order(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  enum { N = 5000 };
  char name[32];
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof(name), "c.%d", (i * 7919) % N);
    spectator_counter_add(spectator_registry_counter(reg, name, SPECTATOR_TAGS("k", "v")),
                          (double)((i * 7919) % N + 1));
  }
  assert_int_equal(spectator_registry_size(reg), N);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, N);
  mt_assert_sorted(ms);
  double sum = 0;
  for (size_t i = 0; i < N; i++) sum += spectator_measurements_get(ms, i)->value;
  assert_true(sum == (double)N * (N + 1) / 2);
  mt_assert_measurement(ms, "c.4321", SPECTATOR_TAGS("k", "v", "statistic", "count"),
                        SPECTATOR_OP_ADD, 4322);
  spectator_measurements_free(ms);
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(snapshot_of_an_empty_registry_is_empty),
      cmocka_unit_test(snapshot_is_sorted_by_name_then_tags_and_every_id_has_a_statistic),
      cmocka_unit_test(snapshot_reports_every_meter_type_with_its_statistics),
      cmocka_unit_test(snapshot_resets_interval_state_exactly_once),
      cmocka_unit_test(snapshot_ids_carry_the_meter_tags_plus_statistic),
      cmocka_unit_test(measurements_find_matches_exact_tags_in_any_order),
      cmocka_unit_test(snapshot_ids_stay_valid_after_the_registry_is_freed),
      cmocka_unit_test(snapshot_functions_accept_null),
      cmocka_unit_test(snapshots_of_two_registries_are_independent),
      cmocka_unit_test(snapshot_op_follows_the_final_statistic_tag),
      cmocka_unit_test(snapshot_of_many_meters_reports_each_once_in_order),
  };
  return cmocka_run_group_tests(tests, mt_setup_capture, mt_teardown_capture);
}
