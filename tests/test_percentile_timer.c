/*
 * Unit tests for src/percentile_timer.c: percentile timers
 * report the timer's four statistics plus one counter per non-empty bucket
 * (statistic=percentile, percentile=T%04X of the bucket index of the duration
 * in nanoseconds clamped to [min, max]); percentile distribution summaries
 * report the summary's four plus percentile=D%04X of the clamped amount.
 * Invalid ranges give the defaults (10 ms .. 60 s; 0 .. 2^63-1).
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "meter.h"
#include "meter_test_util.h"

#define S MT_NS_PER_S
#define MS 1000000LL

/* The expected percentile tag of a value: prefix + index in 4 hex digits. */
static const char *pct_tag(char prefix, int64_t v, char buf[8]) {
  snprintf(buf, 8, "%c%04zX", prefix, spectator_percentile_buckets_index_of(v));
  return buf;
}

/* Assert one percentile bucket counter of a meter tagged {k=v}. */
#define assert_bucket(ms, name, tag, count)                                                     \
  mt_assert_measurement(ms, name,                                                               \
                        SPECTATOR_TAGS("k", "v", "statistic", "percentile", "percentile", tag), \
                        SPECTATOR_OP_ADD, count)

/* ------------------------------------------------------------------------ */
/* Percentile timers                                                         */
/* ------------------------------------------------------------------------ */

static void percentile_timer_reports_timer_statistics_and_one_counter_per_bucket(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_timer_t *t =
      spectator_registry_percentile_timer(reg, "lat", SPECTATOR_TAGS("k", "v"), 0.001, 10);
  spectator_percentile_timer_record(t, 0.05);
  spectator_percentile_timer_record(t, 0.05);
  spectator_percentile_timer_record_ns(t, 200 * MS);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 6);
  mt_assert_timer_stats(ms, "lat", 3, 300000000.0 / 1e9, 4.5e16 / 1e18, 0.2);
  char tag[8];
  /* The exact tags for these buckets, and the same computed from index_of. */
  assert_string_equal(pct_tag('T', 50 * MS, tag), "T006E");
  assert_bucket(ms, "lat", "T006E", 2);
  assert_string_equal(pct_tag('T', 200 * MS, tag), "T0077");
  assert_bucket(ms, "lat", "T0077", 1);
  mt_assert_sorted(ms);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void percentile_timer_bucket_ids_carry_both_statistic_and_percentile_tags(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_timer_t *t =
      spectator_registry_percentile_timer(reg, "lat", SPECTATOR_TAGS("k", "v"), 0, 100);
  spectator_percentile_timer_record_ns(t, 42);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 5);
  size_t found = 0;
  for (size_t i = 0; i < spectator_measurements_count(ms); i++) {
    const spectator_measurement_t *m = spectator_measurements_get(ms, i);
    const char *p = spectator_id_tag(m->id, "percentile");
    if (!p) continue;
    found++;
    assert_string_equal(spectator_id_name(m->id), "lat");
    assert_int_equal(spectator_id_tag_count(m->id), 3);
    assert_string_equal(spectator_id_tag(m->id, "k"), "v");
    assert_string_equal(spectator_id_tag(m->id, "statistic"), "percentile");
    assert_string_equal(p, "T0014"); /* 42 ns: bucket 20, [41, 46) */
    assert_int_equal(m->op, SPECTATOR_OP_ADD);
    assert_true(m->value == 1);
  }
  assert_int_equal(found, 1);
  assert_int_equal(spectator_percentile_buckets_index_of(42), 0x14);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void percentile_timer_clamps_durations_to_its_range(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_timer_t *t =
      spectator_registry_percentile_timer(reg, "lat", SPECTATOR_TAGS("k", "v"), 0.01, 1);
  spectator_percentile_timer_record(t, 0.001); /* below min: bucket of 10 ms */
  spectator_percentile_timer_record_ns(t, 0);
  spectator_percentile_timer_record(t, 3); /* above max: bucket of 1 s */
  spectator_percentile_timer_record(t, 2);
  spectator_percentile_timer_record(t, 0.05); /* inside */
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 7);
  /* The timer statistics use the real durations. */
  mt_assert_timer_stats(ms, "lat", 5, 5051000000.0 / 1e9, (1e12 + 9e18 + 4e18 + 2.5e15) / 1e18, 3);
  char tag[8];
  assert_string_equal(pct_tag('T', 10 * MS, tag), "T0064");
  assert_bucket(ms, "lat", "T0064", 2);
  assert_string_equal(pct_tag('T', 1 * S, tag), "T0083");
  assert_bucket(ms, "lat", "T0083", 2);
  assert_bucket(ms, "lat", pct_tag('T', 50 * MS, tag), 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void percentile_timer_uses_the_default_range_when_the_range_is_invalid(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  const double ranges[][2] = {{-1, 1}, {NAN, 1}, {1, NAN}, {2, 1}, {1, INFINITY}, {-INFINITY, 1}};
  char name[16], tag[8];
  for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
    snprintf(name, sizeof(name), "t%zu", i);
    spectator_percentile_timer_t *t = spectator_registry_percentile_timer(
        reg, name, SPECTATOR_TAGS("k", "v"), ranges[i][0], ranges[i][1]);
    assert_false(spectator__is_noop(t));
    spectator_percentile_timer_record_ns(t, 1); /* -> 10 ms */
    spectator_percentile_timer_record(t, 3600); /* -> 60 s */
    spectator_percentile_timer_record(t, 0.5);  /* inside */
    spectator_measurements_t *ms = mt_snapshot(reg);
    mt_assert_measurement_count(ms, 7);
    assert_string_equal(pct_tag('T', 10 * MS, tag), "T0064");
    assert_bucket(ms, name, "T0064", 1);
    assert_string_equal(pct_tag('T', 60 * S, tag), "T009D");
    assert_bucket(ms, name, "T009D", 1);
    assert_bucket(ms, name, pct_tag('T', 500 * MS, tag), 1);
    spectator_measurements_free(ms);
  }
  spectator_registry_free(reg);
}

static void percentile_timer_accepts_an_empty_range_at_one_point(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_timer_t *t =
      spectator_registry_percentile_timer(reg, "lat", SPECTATOR_TAGS("k", "v"), 2, 2);
  spectator_percentile_timer_record(t, 0.001);
  spectator_percentile_timer_record(t, 100);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 5);
  char tag[8];
  assert_string_equal(pct_tag('T', 2 * S, tag), "T0086");
  assert_bucket(ms, "lat", "T0086", 2);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void percentile_timer_existing_meter_keeps_its_range(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_timer_t *a =
      spectator_registry_percentile_timer(reg, "lat", SPECTATOR_TAGS("k", "v"), 0.01, 1);
  spectator_percentile_timer_t *b =
      spectator_registry_percentile_timer(reg, "lat", SPECTATOR_TAGS("k", "v"), 0, 100);
  assert_ptr_equal(a, b);
  spectator_percentile_timer_record(b, 5);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 5);
  assert_bucket(ms, "lat", "T0083", 1); /* clamped to 1 s */
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

/* As Spectator Java: every value is clamped into the range, a negative one
 * too, so the buckets always sum to the count. */
static void percentile_timer_counts_a_negative_duration_in_the_first_bucket_of_its_range(
    void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_timer_t *t =
      spectator_registry_percentile_timer(reg, "lat", SPECTATOR_TAGS("k", "v"), 0.01, 60);
  spectator_percentile_timer_record(t, -1);
  spectator_percentile_timer_record(t, -1e-9);
  spectator_percentile_timer_record(t, -DBL_MAX);
  spectator_percentile_timer_record_ns(t, -1);
  spectator_percentile_timer_record_ns(t, INT64_MIN);
  spectator_percentile_timer_record(t, 0.05);
  assert_int_equal(spectator_percentile_timer_count(t), 6);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 6);
  mt_assert_timer_stats(ms, "lat", 6, 0.05, 0.0025, 0.05);
  char tag[8];
  assert_bucket(ms, "lat", pct_tag('T', 10 * MS, tag), 5); /* T0064: the bucket of 10 ms */
  assert_bucket(ms, "lat", pct_tag('T', 50 * MS, tag), 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void percentile_timer_ignores_nan_and_infinite_durations(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_timer_t *t =
      spectator_registry_percentile_timer(reg, "lat", SPECTATOR_TAGS("k", "v"), 0.01, 60);
  const double bad[] = {NAN, -NAN, INFINITY, -INFINITY};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    spectator_percentile_timer_record(t, bad[i]);
  assert_int_equal(spectator_percentile_timer_count(t), 0);
  assert_true(spectator_percentile_timer_percentile(t, 50) == 0);
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

static void percentile_timer_huge_duration_goes_to_the_bucket_of_the_max(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_timer_t *wide =
      spectator_registry_percentile_timer(reg, "wide", SPECTATOR_TAGS("k", "v"), 0, 9e9);
  spectator_percentile_timer_record(wide, 1e300);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 5);
  char tag[8];
  assert_bucket(ms, "wide", pct_tag('T', (int64_t)9e18, tag), 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

/* spectator.h: only "not finite, negative or min > max" ranges are invalid; a
 * max beyond 2^63-1 ns is finite and valid and means "no upper clamp", as it
 * does for percentile distribution summaries. */
static void percentile_timer_max_beyond_int64_nanoseconds_means_no_upper_clamp(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_timer_t *t =
      spectator_registry_percentile_timer(reg, "lat", SPECTATOR_TAGS("k", "v"), 0, 1e300);
  assert_false(spectator__is_noop(t));
  spectator_percentile_timer_record(t, 1e300);
  spectator_percentile_timer_record_ns(t, 1);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 6);
  assert_bucket(ms, "lat", "T0113", 1); /* 2^63-1 ns: the last bucket, not 60 s */
  assert_bucket(ms, "lat", "T0001", 1); /* 1 ns: min is 0, not 10 ms */
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void percentile_timer_buckets_reset_after_each_snapshot(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_timer_t *t =
      spectator_registry_percentile_timer(reg, "lat", SPECTATOR_TAGS("k", "v"), 0.01, 60);
  spectator_percentile_timer_record(t, 1);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 5);
  spectator_measurements_free(ms);
  mt_expect_empty(reg);
  spectator_percentile_timer_record(t, 2);
  ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 5);
  mt_assert_timer_stats(ms, "lat", 1, 2, 4, 2);
  assert_bucket(ms, "lat", "T0086", 1);
  mt_assert_absent(ms, "lat",
                   SPECTATOR_TAGS("k", "v", "statistic", "percentile", "percentile", "T0083"));
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void percentile_timer_percentile_estimates_are_inside_the_right_buckets(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_timer_t *t =
      spectator_registry_percentile_timer(reg, "lat", SPECTATOR_TAGS("k", "v"), 0.001, 10);
  assert_true(spectator_percentile_timer_percentile(t, 50) == 0);
  for (int i = 1; i <= 100; i++) spectator_percentile_timer_record_ns(t, i * MS);
  assert_int_equal(spectator_percentile_timer_count(t), 100);
  assert_true(spectator_percentile_timer_total_seconds(t) == 5050 * MS / 1e9);
  double prev = 0;
  const double pcts[] = {0, 10, 25, 50, 75, 90, 99, 100};
  for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
    double p = spectator_percentile_timer_percentile(t, pcts[i]);
    assert_true(p >= prev);
    prev = p;
  }
  /* p50 of 1..100 ms lies in the bucket of the 50th value, within its bounds. */
  size_t b = spectator_percentile_buckets_index_of(50 * MS);
  double p50 = spectator_percentile_timer_percentile(t, 50);
  assert_true(p50 >= (double)spectator_percentile_buckets_get(b - 1) / 1e9);
  assert_true(p50 <= (double)spectator_percentile_buckets_get(b) / 1e9);
  assert_true(fabs(p50 - 0.05) < 0.006);
  double p100 = spectator_percentile_timer_percentile(t, 100);
  size_t top = spectator_percentile_buckets_index_of(100 * MS);
  assert_true(p100 <= (double)spectator_percentile_buckets_get(top) / 1e9);
  assert_true(p100 >= (double)spectator_percentile_buckets_get(top - 1) / 1e9);
  /* Percentiles outside 0..100 are clamped. */
  assert_true(spectator_percentile_timer_percentile(t, -5) ==
              spectator_percentile_timer_percentile(t, 0));
  assert_true(spectator_percentile_timer_percentile(t, 150) == p100);
  /* The estimate reads the current interval: 0 again after a snapshot. */
  spectator_measurements_free(mt_snapshot(reg));
  assert_true(spectator_percentile_timer_percentile(t, 50) == 0);
  assert_int_equal(spectator_percentile_timer_count(t), 0);
  assert_true(spectator_percentile_timer_total_seconds(t) == 0);
  spectator_registry_free(reg);
}

static void percentile_timer_with_a_statistic_tag_reports_all_its_statistics(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_timer_t *t = spectator_registry_percentile_timer(
      reg, "lat", SPECTATOR_TAGS("k", "v", "statistic", "custom"), 0.01, 60);
  spectator_percentile_timer_record(t, 1);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 5);
  mt_assert_timer_stats(ms, "lat", 1, 1, 1, 1);
  assert_bucket(ms, "lat", "T0083", 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void percentile_timer_getters_return_zero_for_null_and_noop_timers(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_timer_t *noop =
      spectator_registry_percentile_timer(reg, NULL, NULL, 0.01, 60);
  assert_true(spectator__is_noop(noop));
  spectator_percentile_timer_record(noop, 1);
  spectator_percentile_timer_record_ns(noop, 1);
  assert_int_equal(spectator_percentile_timer_count(noop), 0);
  assert_true(spectator_percentile_timer_total_seconds(noop) == 0);
  assert_true(spectator_percentile_timer_percentile(noop, 50) == 0);
  spectator_percentile_timer_record(NULL, 1);
  spectator_percentile_timer_record_ns(NULL, 1);
  assert_int_equal(spectator_percentile_timer_count(NULL), 0);
  assert_true(spectator_percentile_timer_total_seconds(NULL) == 0);
  assert_true(spectator_percentile_timer_percentile(NULL, 50) == 0);
  assert_int_equal(spectator_stopwatch_record_percentile(spectator_stopwatch_start(), NULL) >= 0,
                   1);
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

static void stopwatch_records_one_duration_on_a_percentile_timer(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_timer_t *t =
      spectator_registry_percentile_timer(reg, "sw", SPECTATOR_TAGS("k", "v"), 0.01, 60);
  int64_t ns = spectator_stopwatch_record_percentile(spectator_stopwatch_start(), t);
  assert_true(ns >= 0);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 5);
  mt_assert_measurement(ms, "sw", SPECTATOR_TAGS("k", "v", "statistic", "count"), SPECTATOR_OP_ADD,
                        1);
  char tag[8];
  assert_bucket(ms, "sw", pct_tag('T', ns < 10 * MS ? 10 * MS : ns, tag), 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

/* ------------------------------------------------------------------------ */
/* Percentile distribution summaries                                         */
/* ------------------------------------------------------------------------ */

static void percentile_dist_summary_reports_summary_statistics_and_d_buckets(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_dist_summary_t *d =
      spectator_registry_percentile_dist_summary(reg, "size", SPECTATOR_TAGS("k", "v"), 0, 1e6);
  spectator_percentile_dist_summary_record(d, 100);
  spectator_percentile_dist_summary_record(d, 100);
  spectator_percentile_dist_summary_record(d, 5000);
  spectator_percentile_dist_summary_record(d, 0);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 7);
  mt_assert_summary_stats(ms, "size", 4, 5200, 25020000, 5000);
  char tag[8];
  assert_string_equal(pct_tag('D', 100, tag), "D0019");
  assert_bucket(ms, "size", "D0019", 2);
  assert_string_equal(pct_tag('D', 5000, tag), "D0033");
  assert_bucket(ms, "size", "D0033", 1);
  assert_bucket(ms, "size", "D0000", 1);
  mt_assert_sorted(ms);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void percentile_dist_summary_clamps_amounts_to_its_range(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_dist_summary_t *d =
      spectator_registry_percentile_dist_summary(reg, "size", SPECTATOR_TAGS("k", "v"), 10, 1000);
  spectator_percentile_dist_summary_record(d, 1);
  spectator_percentile_dist_summary_record(d, 0);
  spectator_percentile_dist_summary_record(d, 5000);
  spectator_percentile_dist_summary_record(d, 1e300);
  spectator_percentile_dist_summary_record(d, 100);
  spectator_measurements_t *ms = mt_snapshot(reg);
  /* 1e300^2 overflows: totalOfSquares is reported as DBL_MAX. */
  mt_assert_measurement_count(ms, 7);
  mt_assert_measurement(ms, "size", SPECTATOR_TAGS("k", "v", "statistic", "totalOfSquares"),
                        SPECTATOR_OP_ADD, DBL_MAX);
  mt_assert_measurement(ms, "size", SPECTATOR_TAGS("k", "v", "statistic", "count"),
                        SPECTATOR_OP_ADD, 5);
  mt_assert_measurement(ms, "size", SPECTATOR_TAGS("k", "v", "statistic", "totalAmount"),
                        SPECTATOR_OP_ADD, 1e300);
  mt_assert_measurement(ms, "size", SPECTATOR_TAGS("k", "v", "statistic", "max"), SPECTATOR_OP_MAX,
                        1e300);
  assert_bucket(ms, "size", "D000A", 2);
  char tag[8];
  assert_string_equal(pct_tag('D', 1000, tag), "D0029");
  assert_bucket(ms, "size", "D0029", 2);
  assert_bucket(ms, "size", "D0019", 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void percentile_dist_summary_truncates_fractional_amounts_for_the_bucket(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_dist_summary_t *d =
      spectator_registry_percentile_dist_summary(reg, "size", SPECTATOR_TAGS("k", "v"), 0, 100);
  spectator_percentile_dist_summary_record(d, 2.75);
  spectator_percentile_dist_summary_record(d, 0.5);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 6);
  mt_assert_summary_stats(ms, "size", 2, 3.25, 7.5625 + 0.25, 2.75);
  assert_bucket(ms, "size", "D0002", 1);
  assert_bucket(ms, "size", "D0000", 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void percentile_dist_summary_uses_the_default_range_when_the_range_is_invalid(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  const double ranges[][2] = {{-1, 10}, {10, 5}, {NAN, 1}, {0, NAN}, {0, INFINITY}, {-INFINITY, 0}};
  char name[16];
  for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
    snprintf(name, sizeof(name), "d%zu", i);
    spectator_percentile_dist_summary_t *d = spectator_registry_percentile_dist_summary(
        reg, name, SPECTATOR_TAGS("k", "v"), ranges[i][0], ranges[i][1]);
    assert_false(spectator__is_noop(d));
    spectator_percentile_dist_summary_record(d, 0);
    spectator_percentile_dist_summary_record(d, 5000);
    spectator_percentile_dist_summary_record(d, 1e300); /* -> 2^63-1: the last bucket */
    spectator_measurements_t *ms = mt_snapshot(reg);
    mt_assert_measurement_count(ms, 7); /* 3 buckets; totalOfSquares saturated */
    assert_bucket(ms, name, "D0000", 1);
    assert_bucket(ms, name, "D0033", 1);
    assert_bucket(ms, name, "D0113", 1);
    spectator_measurements_free(ms);
  }
  /* A max beyond 2^63 is valid: it means "no upper clamp". */
  spectator_percentile_dist_summary_t *d =
      spectator_registry_percentile_dist_summary(reg, "wide", SPECTATOR_TAGS("k", "v"), 1, 1e300);
  spectator_percentile_dist_summary_record(d, 0);
  spectator_percentile_dist_summary_record(d, DBL_MAX);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 6); /* 2 buckets; totalOfSquares saturated */
  assert_bucket(ms, "wide", "D0001", 1);
  assert_bucket(ms, "wide", "D0113", 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void percentile_dist_summary_counts_a_negative_amount_in_the_first_bucket_of_its_range(
    void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_dist_summary_t *d =
      spectator_registry_percentile_dist_summary(reg, "size", SPECTATOR_TAGS("k", "v"), 10, 100);
  spectator_percentile_dist_summary_record(d, -1);
  spectator_percentile_dist_summary_record(d, -0.5);
  spectator_percentile_dist_summary_record(d, -DBL_MAX);
  spectator_percentile_dist_summary_record(d, 50);
  assert_int_equal(spectator_percentile_dist_summary_count(d), 4);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 6);
  mt_assert_summary_stats(ms, "size", 4, 50, 2500, 50);
  assert_bucket(ms, "size", "D000A", 3); /* the bucket of 10, the range's first */
  char tag[8];
  assert_bucket(ms, "size", pct_tag('D', 50, tag), 1);
  spectator_measurements_free(ms);
  /* A range that starts at 0: bucket 0. */
  spectator_percentile_dist_summary_t *z =
      spectator_registry_percentile_dist_summary(reg, "zero", SPECTATOR_TAGS("k", "v"), 0, 100);
  spectator_percentile_dist_summary_record(z, -7);
  ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 5);
  mt_assert_summary_stats(ms, "zero", 1, 0, 0, 0);
  assert_bucket(ms, "zero", "D0000", 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void percentile_dist_summary_ignores_nan_and_infinite_amounts(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_dist_summary_t *d =
      spectator_registry_percentile_dist_summary(reg, "size", SPECTATOR_TAGS("k", "v"), 0, 100);
  const double bad[] = {NAN, -NAN, INFINITY, -INFINITY};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    spectator_percentile_dist_summary_record(d, bad[i]);
  assert_int_equal(spectator_percentile_dist_summary_count(d), 0);
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

static void percentile_dist_summary_getters_and_estimates(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_dist_summary_t *d =
      spectator_registry_percentile_dist_summary(reg, "size", SPECTATOR_TAGS("k", "v"), 0, 1e6);
  assert_true(spectator_percentile_dist_summary_percentile(d, 50) == 0);
  for (int i = 1; i <= 1000; i++) spectator_percentile_dist_summary_record(d, i);
  assert_int_equal(spectator_percentile_dist_summary_count(d), 1000);
  assert_true(spectator_percentile_dist_summary_total(d) == 500500);
  double p50 = spectator_percentile_dist_summary_percentile(d, 50);
  size_t b = spectator_percentile_buckets_index_of(500);
  assert_true(p50 >= (double)spectator_percentile_buckets_get(b - 1));
  assert_true(p50 <= (double)spectator_percentile_buckets_get(b));
  assert_true(fabs(p50 - 500) < 50);
  assert_true(spectator_percentile_dist_summary_percentile(d, 90) >= p50);
  spectator_measurements_free(mt_snapshot(reg));
  assert_int_equal(spectator_percentile_dist_summary_count(d), 0);
  assert_true(spectator_percentile_dist_summary_total(d) == 0);
  assert_true(spectator_percentile_dist_summary_percentile(d, 50) == 0);

  spectator_percentile_dist_summary_t *noop =
      spectator_registry_percentile_dist_summary(reg, "", NULL, 0, 1);
  assert_true(spectator__is_noop(noop));
  spectator_percentile_dist_summary_record(noop, 1);
  assert_int_equal(spectator_percentile_dist_summary_count(noop), 0);
  assert_true(spectator_percentile_dist_summary_total(noop) == 0);
  assert_true(spectator_percentile_dist_summary_percentile(noop, 50) == 0);
  spectator_percentile_dist_summary_record(NULL, 1);
  assert_int_equal(spectator_percentile_dist_summary_count(NULL), 0);
  assert_true(spectator_percentile_dist_summary_total(NULL) == 0);
  assert_true(spectator_percentile_dist_summary_percentile(NULL, 50) == 0);
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(percentile_timer_reports_timer_statistics_and_one_counter_per_bucket),
      cmocka_unit_test(percentile_timer_bucket_ids_carry_both_statistic_and_percentile_tags),
      cmocka_unit_test(percentile_timer_clamps_durations_to_its_range),
      cmocka_unit_test(percentile_timer_uses_the_default_range_when_the_range_is_invalid),
      cmocka_unit_test(percentile_timer_accepts_an_empty_range_at_one_point),
      cmocka_unit_test(percentile_timer_existing_meter_keeps_its_range),
      cmocka_unit_test(
          percentile_timer_counts_a_negative_duration_in_the_first_bucket_of_its_range),
      cmocka_unit_test(percentile_timer_ignores_nan_and_infinite_durations),
      cmocka_unit_test(percentile_timer_huge_duration_goes_to_the_bucket_of_the_max),
      cmocka_unit_test(percentile_timer_max_beyond_int64_nanoseconds_means_no_upper_clamp),
      cmocka_unit_test(percentile_timer_buckets_reset_after_each_snapshot),
      cmocka_unit_test(percentile_timer_percentile_estimates_are_inside_the_right_buckets),
      cmocka_unit_test(percentile_timer_with_a_statistic_tag_reports_all_its_statistics),
      cmocka_unit_test(percentile_timer_getters_return_zero_for_null_and_noop_timers),
      cmocka_unit_test(stopwatch_records_one_duration_on_a_percentile_timer),
      cmocka_unit_test(percentile_dist_summary_reports_summary_statistics_and_d_buckets),
      cmocka_unit_test(percentile_dist_summary_clamps_amounts_to_its_range),
      cmocka_unit_test(percentile_dist_summary_truncates_fractional_amounts_for_the_bucket),
      cmocka_unit_test(percentile_dist_summary_uses_the_default_range_when_the_range_is_invalid),
      cmocka_unit_test(
          percentile_dist_summary_counts_a_negative_amount_in_the_first_bucket_of_its_range),
      cmocka_unit_test(percentile_dist_summary_ignores_nan_and_infinite_amounts),
      cmocka_unit_test(percentile_dist_summary_getters_and_estimates),
  };
  return cmocka_run_group_tests(tests, mt_setup_capture, mt_teardown_capture);
}
