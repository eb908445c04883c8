/*
 * Bad input: never a crash, never undefined behaviour, never
 * lost data. Each case checks the no-op (what is recorded on the returned
 * meter never appears in a snapshot) and/or the log line (logger, level and a
 * key phrase), and that a good meter recorded in the same test keeps its exact
 * value.
 *
 * Some log lines are rate limited by process-wide counters (invalid ids,
 * invalid percentile ranges): those cases run in a forked child
 * (tu_in_child), which starts from this process's counters, untouched here, so
 * each child sees occurrence 1 first. A child must not use cmocka assertions:
 * it returns 0 when every check passed, else the source line of the first
 * check that failed.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "meter.h"
#include "meter_test_util.h"

#define REG SPECTATOR_LOGGER_REGISTRY
#define COUNT_TAGS SPECTATOR_TAGS("statistic", "count")

/* In a child: fail with the line number. */
#define CHECK(cond)                                                             \
  do {                                                                          \
    if (!(cond)) return __LINE__;                                               \
  } while (0)

/* A registry for a child (no cmocka assertions there). */
static spectator_registry_t *child_registry(size_t max_meters) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  if (max_meters) cfg.max_meters = max_meters;
  return spectator_registry_new(&cfg);
}

/* A snapshot that holds exactly one measurement, "good" {statistic=count}
 * with this value. */
static bool only_good_counter(spectator_registry_t *reg, double value) {
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  const spectator_measurement_t *m = spectator_measurements_find(ms, "good", COUNT_TAGS);
  bool ok = spectator_measurements_count(ms) == 1 && m && m->op == SPECTATOR_OP_ADD &&
            m->value == value;
  spectator_measurements_free(ms);
  return ok;
}

/* The eight meter types looked up with one (name, tags). */
typedef struct {
  spectator_counter_t *c;
  spectator_timer_t *t;
  spectator_dist_summary_t *d;
  spectator_gauge_t *g;
  spectator_max_gauge_t *mg;
  spectator_monotonic_counter_t *mc;
  spectator_percentile_timer_t *pt;
  spectator_percentile_dist_summary_t *pd;
} meters_t;

static meters_t lookup_all(spectator_registry_t *reg, const char *name, const char *const *tags) {
  meters_t m;
  m.c = spectator_registry_counter(reg, name, tags);
  m.t = spectator_registry_timer(reg, name, tags);
  m.d = spectator_registry_dist_summary(reg, name, tags);
  m.g = spectator_registry_gauge(reg, name, tags);
  m.mg = spectator_registry_max_gauge(reg, name, tags);
  m.mc = spectator_registry_monotonic_counter(reg, name, tags);
  m.pt = spectator_registry_percentile_timer(reg, name, tags, 0.01, 60);
  m.pd = spectator_registry_percentile_dist_summary(reg, name, tags, 0, 1000);
  return m;
}

static bool all_noop(const meters_t *m) {
  return spectator__is_noop(m->c) && spectator__is_noop(m->t) && spectator__is_noop(m->d) &&
         spectator__is_noop(m->g) && spectator__is_noop(m->mg) && spectator__is_noop(m->mc) &&
         spectator__is_noop(m->pt) && spectator__is_noop(m->pd);
}

/* Record valid values on each meter (twice for the monotonic counter). */
static void record_all(const meters_t *m) {
  spectator_counter_add(m->c, 5);
  spectator_counter_increment(m->c);
  spectator_timer_record(m->t, 1);
  spectator_timer_record_ns(m->t, 1000);
  spectator_dist_summary_record(m->d, 3);
  spectator_gauge_set(m->g, 4);
  spectator_max_gauge_set(m->mg, 6);
  spectator_monotonic_counter_set(m->mc, 1);
  spectator_monotonic_counter_set(m->mc, 9);
  spectator_percentile_timer_record(m->pt, 0.5);
  spectator_percentile_timer_record_ns(m->pt, 10);
  spectator_percentile_dist_summary_record(m->pd, 7);
}

/* ------------------------------------------------------------------------ */
/* Invalid names and tags: no-op meters, rate-limited log lines              */
/* ------------------------------------------------------------------------ */

typedef struct {
  const char *name;
  const char *const *tags;
} id_case_t;

/* Look the bad id up as every meter type, record on the results, snapshot
 * twice (the monotonic counter needs two), and check that only the good
 * counter was reported. */
static long bad_id_for_every_meter_type(void *p) {
  const id_case_t *bad = p;
  spectator_registry_t *reg = child_registry(0);
  CHECK(reg);
  spectator_counter_t *good = spectator_registry_counter(reg, "good", NULL);
  spectator_counter_add(good, 2);
  meters_t m = lookup_all(reg, bad->name, bad->tags);
  CHECK(all_noop(&m));
  record_all(&m);
  spectator_counter_increment(good);
  CHECK(spectator_registry_size(reg) == 1);
  CHECK(only_good_counter(reg, 3));
  record_all(&m);
  spectator_counter_add(good, 0.5);
  CHECK(only_good_counter(reg, 0.5));
  spectator_registry_free(reg);
  return 0;
}

/* Run one bad id in a child and check its four log lines: the eight lookups
 * (counter, timer, ... percentile distribution summary) are one mistake
 * repeated (the same name, error and key), so its 1st, 2nd, 4th and 8th
 * occurrences get through: counter, timer, gauge and percentile distribution
 * summary. */
static void check_bad_id(const char *name, const char *const *tags, const char *why,
                         const char *shown_name) {
  id_case_t c = {name, tags};
  assert_int_equal(tu_in_child(bad_id_for_every_meter_type, &c), 0);
  tu_assert_log_count(4);
  const char *types[] = {"counter", "timer", "gauge", "percentile distribution summary"};
  for (unsigned i = 0; i < 4; i++) {
    char want[512];
    snprintf(want, sizeof(want), "invalid id for %s %s: %s; using a no-op (occurrence %u)",
             types[i], shown_name, why, 1u << i);
    tu_assert_log_line(i, SPECTATOR_LOG_WARN, REG, "invalid id");
    assert_string_equal(tu_log_line(i)->msg, want);
  }
}

#define WHY_TAGS "an odd number of entries"
#define NO_VALUE "has no value (a NULL value, or an odd number of entries in the tag array)"

static void a_null_name_gives_noop_meters_and_a_rate_limited_log_line(void **state) {
  (void)state;
  check_bad_id(NULL, NULL, "the name is NULL", "'(null)'");
  check_bad_id(NULL, SPECTATOR_TAGS("k", "v"), "the name is NULL", "'(null)'");
}

static void an_empty_name_gives_noop_meters_and_a_rate_limited_log_line(void **state) {
  (void)state;
  check_bad_id("", NULL, "the name is empty", "''");
  check_bad_id("", SPECTATOR_TAGS("k", "v"), "the name is empty", "''");
}

static void an_odd_tag_array_gives_noop_meters_and_a_log_line(void **state) {
  (void)state;
  check_bad_id("odd", SPECTATOR_TAGS("k"), "tag 'k' at position 0 " NO_VALUE, "'odd'");
  check_bad_id("odd", SPECTATOR_TAGS("a", "1", "b"), "tag 'b' at position 2 " NO_VALUE, "'odd'");
}

static void a_null_or_empty_tag_value_or_an_empty_key_gives_noop_meters_and_a_log_line(
    void **state) {
  (void)state;
  check_bad_id("tags", SPECTATOR_TAGS("k", NULL), "tag 'k' at position 0 " NO_VALUE, "'tags'");
  check_bad_id("tags", SPECTATOR_TAGS("a", "1", "k", NULL), "tag 'k' at position 2 " NO_VALUE,
               "'tags'");
  check_bad_id("tags", SPECTATOR_TAGS("k", ""), "tag 'k' has an empty value", "'tags'");
  check_bad_id("tags", SPECTATOR_TAGS("", "v"), "the tag key at position 0 is empty", "'tags'");
  check_bad_id("tags", SPECTATOR_TAGS("a", "1", "", ""), "the tag key at position 2 is empty",
               "'tags'");
}

/* The report: eight different counters with an empty tag value gave
 * lines for the 1st, 2nd, 4th and 8th only. Each is a mistake of its own and
 * is named. */
static long eight_counters_with_an_empty_status(void *p) {
  (void)p;
  spectator_registry_t *reg = child_registry(0);
  CHECK(reg);
  char name[32];
  for (int i = 0; i < 8; i++) {
    snprintf(name, sizeof(name), "http.requests.%d", i);
    CHECK(spectator__is_noop(
        spectator_registry_counter(reg, name, SPECTATOR_TAGS("method", "GET", "status", ""))));
  }
  CHECK(spectator_registry_size(reg) == 0);
  spectator_registry_free(reg);
  return 0;
}

static void eight_different_counters_with_an_empty_tag_value_are_each_named_in_a_warning(
    void **state) {
  (void)state;
  assert_int_equal(tu_in_child(eight_counters_with_an_empty_status, NULL), 0);
  tu_assert_log_count(8);
  for (unsigned i = 0; i < 8; i++) {
    char want[256];
    snprintf(want, sizeof(want),
             "invalid id for counter 'http.requests.%u': tag 'status' has an empty value; using "
             "a no-op (occurrence 1)",
             i);
    tu_assert_log_line(i, SPECTATOR_LOG_WARN, REG, "invalid id");
    assert_string_equal(tu_log_line(i)->msg, want);
  }
}

/* Repeats of one mistake are limited; a different mistake on the same meter
 * (another key, another error) or the same one on another meter is new. */
static long repeated_and_interleaved_mistakes(void *p) {
  (void)p;
  spectator_registry_t *reg = child_registry(0);
  CHECK(reg);
  for (int i = 0; i < 10; i++) {
    spectator_registry_counter(reg, "req", SPECTATOR_TAGS("status", ""));
    if (i == 2) spectator_registry_counter(reg, "req", SPECTATOR_TAGS("method", "")); /* key */
    if (i == 4) spectator_registry_counter(reg, "req", SPECTATOR_TAGS("", "x"));      /* error */
    if (i == 6) spectator_registry_timer(reg, "lat", SPECTATOR_TAGS("status", ""));   /* name */
  }
  CHECK(spectator_registry_size(reg) == 0);
  spectator_registry_free(reg);
  return 0;
}

static void repeats_of_one_mistake_are_limited_and_never_hide_a_different_one(void **state) {
  (void)state;
  assert_int_equal(tu_in_child(repeated_and_interleaved_mistakes, NULL), 0);
  const char *want[] = {
      "invalid id for counter 'req': tag 'status' has an empty value; using a no-op "
      "(occurrence 1)",
      "invalid id for counter 'req': tag 'status' has an empty value; using a no-op "
      "(occurrence 2)",
      "invalid id for counter 'req': tag 'method' has an empty value; using a no-op "
      "(occurrence 1)",
      "invalid id for counter 'req': tag 'status' has an empty value; using a no-op "
      "(occurrence 4)",
      "invalid id for counter 'req': the tag key at position 0 is empty; using a no-op "
      "(occurrence 1)",
      "invalid id for timer 'lat': tag 'status' has an empty value; using a no-op "
      "(occurrence 1)",
      "invalid id for counter 'req': tag 'status' has an empty value; using a no-op "
      "(occurrence 8)",
  };
  tu_assert_log_count(7);
  for (size_t i = 0; i < 7; i++) assert_string_equal(tu_log_line(i)->msg, want[i]);
}

/* A NULL key cannot be told from the array's terminator: the tags end there.
 * This documents that (SPECTATOR_TAGS arrays are NULL-terminated). */
static void a_null_key_ends_the_tag_array(void **state) {
  (void)state;
  tu_log_clear();
  spectator_registry_t *reg = mt_registry(NULL, 0);
  const char *const tags[] = {"a", "1", NULL, "ignored", NULL};
  spectator_counter_t *c = spectator_registry_counter(reg, "c", tags);
  assert_false(spectator__is_noop(c));
  assert_ptr_equal(c, spectator_registry_counter(reg, "c", SPECTATOR_TAGS("a", "1")));
  spectator_counter_increment(c);
  mt_expect_single(reg, "c", SPECTATOR_TAGS("a", "1", "statistic", "count"), SPECTATOR_OP_ADD, 1);
  tu_assert_log_count(0);
  spectator_registry_free(reg);
}

static void null_tags_are_valid_and_mean_no_tags(void **state) {
  (void)state;
  tu_log_clear();
  spectator_registry_t *reg = mt_registry(NULL, 0);
  meters_t m = lookup_all(reg, "plain", NULL);
  assert_false(spectator__is_noop(m.c));
  spectator_counter_t *c = spectator_registry_counter(reg, "plain.c", NULL);
  assert_false(spectator__is_noop(c));
  assert_ptr_equal(c, spectator_registry_counter(reg, "plain.c", (const char *const[]){NULL}));
  spectator_counter_add(c, 2);
  mt_expect_single(reg, "plain.c", COUNT_TAGS, SPECTATOR_OP_ADD, 2);
  /* "plain" itself is a counter: the other seven types conflicted with it. */
  assert_true(spectator__is_noop(m.t) && spectator__is_noop(m.pd));
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, REG, "'plain'", "already a counter");
  spectator_registry_free(reg);
}

/* By id: a NULL id is reported as a NULL name. */
static long null_id_for_every_meter_type(void *p) {
  (void)p;
  spectator_registry_t *reg = child_registry(0);
  CHECK(reg);
  spectator_counter_t *good = spectator_registry_counter(reg, "good", NULL);
  spectator_counter_add(good, 4);
  CHECK(spectator__is_noop(spectator_registry_counter_id(reg, NULL)));
  CHECK(spectator__is_noop(spectator_registry_timer_id(reg, NULL)));
  CHECK(spectator__is_noop(spectator_registry_dist_summary_id(reg, NULL)));
  CHECK(spectator__is_noop(spectator_registry_gauge_id(reg, NULL)));
  CHECK(spectator__is_noop(spectator_registry_gauge_with_ttl_id(reg, NULL, 10)));
  CHECK(spectator__is_noop(spectator_registry_max_gauge_id(reg, NULL)));
  CHECK(spectator__is_noop(spectator_registry_monotonic_counter_id(reg, NULL)));
  CHECK(spectator__is_noop(spectator_registry_percentile_timer_id(reg, NULL, 0.01, 60)));
  CHECK(spectator__is_noop(spectator_registry_percentile_dist_summary_id(reg, NULL, 0, 10)));
  spectator_counter_increment(spectator_registry_counter_id(reg, NULL));
  CHECK(spectator_registry_size(reg) == 1);
  CHECK(only_good_counter(reg, 4));
  spectator_registry_free(reg);
  return 0;
}

static void a_null_id_gives_noop_meters_and_a_rate_limited_log_line(void **state) {
  (void)state;
  assert_int_equal(tu_in_child(null_id_for_every_meter_type, NULL), 0);
  tu_assert_log_count(4); /* 10 lookups: occurrences 1, 2, 4, 8 */
  assert_string_equal(tu_log_line(0)->msg,
                      "invalid id for counter: the id is NULL; using a no-op (occurrence 1)");
  assert_string_equal(
      tu_log_line(3)->msg,
      "invalid id for percentile timer: the id is NULL; using a no-op (occurrence 8)");
}

/* Ids themselves: bad input gives NULL and a log line. */
static long bad_ids(void *p) {
  (void)p;
  spectator_id_t *ok = spectator_id_new("ok", SPECTATOR_TAGS("k", "v"));
  CHECK(ok);
  CHECK(!spectator_id_new(NULL, NULL));
  CHECK(!spectator_id_new("x", SPECTATOR_TAGS("k")));
  CHECK(!spectator_id_with_tag(ok, NULL, "v"));
  CHECK(!spectator_id_with_tag(ok, "k", NULL));
  CHECK(!spectator_id_with_tag(ok, "", "v"));
  CHECK(!spectator_id_with_tags(ok, SPECTATOR_TAGS("a", "")));
  CHECK(!spectator_id_with_tag(NULL, "k", "v"));
  CHECK(!spectator_id_with_tags(NULL, NULL));
  /* the same mistake again: its 2nd occurrence */
  CHECK(!spectator_id_new("x", SPECTATOR_TAGS("k")));
  /* ok is unchanged and still works for a lookup. */
  CHECK(spectator_id_tag_count(ok) == 1);
  spectator_registry_t *reg = child_registry(0);
  CHECK(reg);
  spectator_counter_t *good = spectator_registry_counter_id(reg, ok);
  CHECK(good == spectator_registry_counter(reg, "ok", SPECTATOR_TAGS("k", "v")));
  spectator_counter_add(good, 1);
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  const spectator_measurement_t *m =
      spectator_measurements_find(ms, "ok", SPECTATOR_TAGS("k", "v", "statistic", "count"));
  CHECK(spectator_measurements_count(ms) == 1 && m && m->value == 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
  spectator_id_free(ok);
  return 0;
}

static void bad_ids_are_null_and_each_distinct_mistake_is_logged(void **state) {
  (void)state;
  assert_int_equal(tu_in_child(bad_ids, NULL), 0);
  const char *want[] = {
      "invalid id '(null)': the name is NULL; returning NULL (occurrence 1)",
      "invalid id 'x': tag 'k' at position 0 " NO_VALUE "; returning NULL (occurrence 1)",
      "invalid id 'ok': the tag key is NULL; returning NULL (occurrence 1)",
      "invalid id 'ok': tag 'k' has a NULL value; returning NULL (occurrence 1)",
      "invalid id 'ok': the tag key is empty; returning NULL (occurrence 1)",
      "invalid id 'ok': tag 'a' has an empty value; returning NULL (occurrence 1)",
      "invalid id 'x': tag 'k' at position 0 " NO_VALUE "; returning NULL (occurrence 2)",
  };
  tu_assert_log_count(7);
  for (size_t i = 0; i < 7; i++) {
    tu_assert_log_line(i, SPECTATOR_LOG_WARN, REG, "invalid id");
    assert_string_equal(tu_log_line(i)->msg, want[i]);
  }
}

/* ------------------------------------------------------------------------ */
/* NULL pointers                                                             */
/* ------------------------------------------------------------------------ */

static void null_meter_pointers_are_accepted_by_every_recording_and_getter_function(
    void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *good = spectator_registry_counter(reg, "good", NULL);
  spectator_counter_add(good, 1);

  spectator_counter_increment(NULL);
  spectator_counter_add(NULL, 1);
  spectator_timer_record(NULL, 1);
  spectator_timer_record_ns(NULL, 1);
  spectator_dist_summary_record(NULL, 1);
  spectator_gauge_set(NULL, 1);
  spectator_max_gauge_set(NULL, 1);
  spectator_monotonic_counter_set(NULL, 1);
  spectator_percentile_timer_record(NULL, 1);
  spectator_percentile_timer_record_ns(NULL, 1);
  spectator_percentile_dist_summary_record(NULL, 1);
  spectator_stopwatch_t sw = spectator_stopwatch_start();
  assert_true(spectator_stopwatch_record(sw, NULL) >= 0);
  assert_true(spectator_stopwatch_record_percentile(sw, NULL) >= 0);

  assert_true(spectator_counter_count(NULL) == 0);
  assert_int_equal(spectator_timer_count(NULL), 0);
  assert_true(spectator_timer_total_seconds(NULL) == 0);
  assert_int_equal(spectator_dist_summary_count(NULL), 0);
  assert_true(spectator_dist_summary_total(NULL) == 0);
  assert_true(isnan(spectator_gauge_get(NULL)));
  assert_true(isnan(spectator_max_gauge_get(NULL)));
  assert_true(spectator_monotonic_counter_get(NULL) == 0);
  assert_int_equal(spectator_percentile_timer_count(NULL), 0);
  assert_true(spectator_percentile_timer_total_seconds(NULL) == 0);
  assert_true(spectator_percentile_timer_percentile(NULL, 50) == 0);
  assert_int_equal(spectator_percentile_dist_summary_count(NULL), 0);
  assert_true(spectator_percentile_dist_summary_total(NULL) == 0);
  assert_true(spectator_percentile_dist_summary_percentile(NULL, 50) == 0);

  spectator_counter_add(good, 1);
  mt_expect_single(reg, "good", COUNT_TAGS, SPECTATOR_OP_ADD, 2);
  spectator_registry_free(reg);
}

static void null_registry_pointers_are_accepted_by_every_registry_function(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *good = spectator_registry_counter(reg, "good", NULL);
  spectator_counter_add(good, 1);
  spectator_id_t *id = spectator_id_new("x", NULL);
  assert_non_null(id);

  meters_t m = lookup_all(NULL, "x", NULL);
  assert_true(all_noop(&m));
  record_all(&m);
  assert_true(spectator__is_noop(spectator_registry_gauge_with_ttl(NULL, "x", NULL, 10)));
  assert_true(spectator__is_noop(spectator_registry_counter_id(NULL, id)));
  assert_true(spectator__is_noop(spectator_registry_timer_id(NULL, id)));
  assert_true(spectator__is_noop(spectator_registry_dist_summary_id(NULL, id)));
  assert_true(spectator__is_noop(spectator_registry_gauge_id(NULL, id)));
  assert_true(spectator__is_noop(spectator_registry_gauge_with_ttl_id(NULL, id, 10)));
  assert_true(spectator__is_noop(spectator_registry_max_gauge_id(NULL, id)));
  assert_true(spectator__is_noop(spectator_registry_monotonic_counter_id(NULL, id)));
  assert_true(spectator__is_noop(spectator_registry_percentile_timer_id(NULL, id, 0.01, 60)));
  assert_true(spectator__is_noop(spectator_registry_percentile_dist_summary_id(NULL, id, 0, 1)));
  assert_int_equal(spectator_registry_size(NULL), 0);
  assert_null(spectator_registry_snapshot(NULL));
  assert_int_equal(spectator_registry_start(NULL), SPECTATOR_EINVAL);
  spectator_registry_stop(NULL);
  spectator_registry_free(NULL);
  spectator_id_free(id);

  spectator_counter_add(good, 1);
  mt_expect_single(reg, "good", COUNT_TAGS, SPECTATOR_OP_ADD, 2);
  spectator_registry_free(reg);
}

/* ------------------------------------------------------------------------ */
/* NaN, infinities and negative values                                       */
/* ------------------------------------------------------------------------ */

/* NaN and infinities are ignored by every type; negative values by counters
 * only (a negative duration or amount is counted by timers and summaries, a
 * negative value is a value for gauges: their own tests cover that). */
static void nan_and_infinite_values_are_ignored_by_every_meter_type(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry(&clock, 0);
  spectator_counter_t *good = spectator_registry_counter(reg, "good", NULL);
  meters_t m;
  m.c = spectator_registry_counter(reg, "m", SPECTATOR_TAGS("k", "v"));
  m.t = spectator_registry_timer(reg, "t", NULL);
  m.d = spectator_registry_dist_summary(reg, "d", NULL);
  m.g = spectator_registry_gauge(reg, "g", NULL);
  m.mg = spectator_registry_max_gauge(reg, "mg", NULL);
  m.mc = spectator_registry_monotonic_counter(reg, "mc", NULL);
  m.pt = spectator_registry_percentile_timer(reg, "pt", NULL, 0.01, 60);
  m.pd = spectator_registry_percentile_dist_summary(reg, "pd", NULL, 0, 1000);
  const double bad[] = {NAN, -NAN, INFINITY, -INFINITY};
  const double negative[] = {-1, -1e-300, -DBL_MAX};
  for (int round = 0; round < 2; round++) {
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
      spectator_counter_add(m.c, bad[i]);
      spectator_timer_record(m.t, bad[i]);
      spectator_dist_summary_record(m.d, bad[i]);
      if (!isnan(bad[i])) spectator_gauge_set(m.g, bad[i]); /* NaN means "stop" */
      spectator_max_gauge_set(m.mg, bad[i]);
      spectator_monotonic_counter_set(m.mc, bad[i]);
      spectator_percentile_timer_record(m.pt, bad[i]);
      spectator_percentile_dist_summary_record(m.pd, bad[i]);
    }
    for (size_t i = 0; i < sizeof(negative) / sizeof(negative[0]); i++)
      spectator_counter_add(m.c, negative[i]);
    spectator_counter_increment(good);
    mt_expect_single(reg, "good", COUNT_TAGS, SPECTATOR_OP_ADD, 1);
  }
  /* The meters still work: valid values after all that. */
  spectator_counter_add(m.c, 1);
  spectator_timer_record(m.t, 1);
  spectator_dist_summary_record(m.d, 1);
  spectator_gauge_set(m.g, -1); /* negative values are fine for gauges */
  spectator_max_gauge_set(m.mg, -2);
  spectator_monotonic_counter_set(m.mc, -3);
  spectator_percentile_timer_record(m.pt, 1);
  spectator_percentile_dist_summary_record(m.pd, 1);
  spectator_counter_increment(good);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 1 + 1 + 4 + 4 + 1 + 1 + 5 + 5);
  mt_assert_measurement(ms, "good", COUNT_TAGS, SPECTATOR_OP_ADD, 1);
  mt_assert_measurement(ms, "m", SPECTATOR_TAGS("k", "v", "statistic", "count"), SPECTATOR_OP_ADD,
                        1);
  mt_assert_measurement(ms, "t", SPECTATOR_TAGS("statistic", "count"), SPECTATOR_OP_ADD, 1);
  mt_assert_measurement(ms, "t", SPECTATOR_TAGS("statistic", "totalTime"), SPECTATOR_OP_ADD, 1);
  mt_assert_measurement(ms, "d", SPECTATOR_TAGS("statistic", "count"), SPECTATOR_OP_ADD, 1);
  mt_assert_measurement(ms, "d", SPECTATOR_TAGS("statistic", "totalAmount"), SPECTATOR_OP_ADD, 1);
  mt_assert_measurement(ms, "g", SPECTATOR_TAGS("statistic", "gauge"), SPECTATOR_OP_MAX, -1);
  mt_assert_measurement(ms, "mg", SPECTATOR_TAGS("statistic", "max"), SPECTATOR_OP_MAX, -2);
  mt_assert_measurement(ms, "pt", SPECTATOR_TAGS("statistic", "count"), SPECTATOR_OP_ADD, 1);
  mt_assert_measurement(ms, "pd", SPECTATOR_TAGS("statistic", "count"), SPECTATOR_OP_ADD, 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

/* ------------------------------------------------------------------------ */
/* Huge strings and non-ASCII bytes                                          */
/* ------------------------------------------------------------------------ */

static char *big_string(size_t n, char fill) {
  char *s = malloc(n + 1);
  assert_non_null(s);
  memset(s, fill, n);
  s[n] = '\0';
  return s;
}

static void a_one_megabyte_name_and_tag_value_are_kept_in_the_snapshot(void **state) {
  (void)state;
  tu_log_clear();
  spectator_registry_t *reg = mt_registry(NULL, 0);
  const size_t n = 1 << 20;
  char *name = big_string(n, 'n');
  char *value = big_string(n, 'v');
  spectator_counter_t *good = spectator_registry_counter(reg, "good", NULL);
  spectator_counter_t *c = spectator_registry_counter(reg, name, NULL);
  spectator_counter_t *t = spectator_registry_counter(reg, "tagged", SPECTATOR_TAGS("k", value));
  assert_false(spectator__is_noop(c));
  assert_false(spectator__is_noop(t));
  assert_ptr_equal(c, spectator_registry_counter(reg, name, NULL));
  spectator_counter_add(c, 3);
  spectator_counter_add(t, 4);
  spectator_counter_add(good, 5);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 3);
  mt_assert_measurement(ms, name, COUNT_TAGS, SPECTATOR_OP_ADD, 3);
  mt_assert_measurement(ms, "tagged", SPECTATOR_TAGS("k", value, "statistic", "count"),
                        SPECTATOR_OP_ADD, 4);
  mt_assert_measurement(ms, "good", COUNT_TAGS, SPECTATOR_OP_ADD, 5);
  const spectator_measurement_t *m = spectator_measurements_find(ms, name, COUNT_TAGS);
  assert_int_equal(strlen(spectator_id_name(m->id)), n);
  spectator_measurements_free(ms);
  tu_assert_log_count(0);
  spectator_registry_free(reg);
  free(name);
  free(value);
}

static long huge_bad_name(void *p) {
  spectator_registry_t *reg = child_registry(0);
  CHECK(reg);
  CHECK(spectator__is_noop(spectator_registry_counter(reg, p, SPECTATOR_TAGS("odd"))));
  spectator_registry_free(reg);
  return 0;
}

static void a_log_line_about_a_huge_bad_name_is_bounded(void **state) {
  (void)state;
  char *name = big_string(1 << 20, 'h');
  assert_int_equal(tu_in_child(huge_bad_name, name), 0);
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, REG, "invalid id for counter", WHY_TAGS);
  assert_true(tu_log_line(0)->msg_len < 400);
  /* The name is shortened to 120 bytes in the message. */
  char expect[130];
  memset(expect, 'h', 120);
  snprintf(expect + 120, sizeof(expect) - 120, "'");
  assert_non_null(strstr(tu_log_line(0)->msg, expect));
  free(name);
}

static void non_ascii_bytes_in_names_and_tags_are_kept_in_the_snapshot_id(void **state) {
  (void)state;
  tu_log_clear();
  spectator_registry_t *reg = mt_registry(NULL, 0);
  const char *name = "caf\xc3\xa9.\xf0\x9f\x98\x80";         /* UTF-8 */
  const char *key = "k\xff\xfe";                             /* not UTF-8 */
  const char *value = "v \x01\x7f\x80 spaces & {braces}=,"; /* control and ASCII specials */
  spectator_counter_t *c = spectator_registry_counter(reg, name, SPECTATOR_TAGS(key, value));
  assert_false(spectator__is_noop(c));
  spectator_gauge_t *g = spectator_registry_gauge(reg, "g\xe2\x82\xac", SPECTATOR_TAGS("k", "\xe2\x82\xac"));
  spectator_counter_add(c, 2);
  spectator_gauge_set(g, 1.5);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 2);
  mt_assert_measurement(ms, name, SPECTATOR_TAGS(key, value, "statistic", "count"),
                        SPECTATOR_OP_ADD, 2);
  mt_assert_measurement(ms, "g\xe2\x82\xac", SPECTATOR_TAGS("k", "\xe2\x82\xac", "statistic", "gauge"),
                        SPECTATOR_OP_MAX, 1.5);
  const spectator_measurement_t *m =
      spectator_measurements_find(ms, name, SPECTATOR_TAGS(key, value, "statistic", "count"));
  assert_string_equal(spectator_id_name(m->id), name);
  assert_string_equal(spectator_id_tag(m->id, key), value);
  spectator_measurements_free(ms);
  tu_assert_log_count(0);
  spectator_registry_free(reg);
}

static long control_characters_in_a_bad_name(void *p) {
  (void)p;
  spectator_registry_t *reg = child_registry(0);
  CHECK(reg);
  CHECK(spectator__is_noop(
      spectator_registry_timer(reg, "evil\nWARN spectator.init: forged\r", SPECTATOR_TAGS("k"))));
  spectator_registry_free(reg);
  return 0;
}

static void control_characters_cannot_forge_log_lines(void **state) {
  (void)state;
  assert_int_equal(tu_in_child(control_characters_in_a_bad_name, NULL), 0);
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, REG, "'evil?WARN spectator.init: forged?'");
  assert_null(strchr(tu_log_line(0)->msg, '\n'));
  assert_null(strchr(tu_log_line(0)->msg, '\r'));
}

/* ------------------------------------------------------------------------ */
/* The same id as two types                                                  */
/* ------------------------------------------------------------------------ */

static void the_same_id_as_two_types_gives_the_second_a_noop_and_logs_once(void **state) {
  (void)state;
  tu_log_clear();
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *c = spectator_registry_counter(reg, "dup", SPECTATOR_TAGS("a", "1", "b", "2"));
  spectator_counter_add(c, 2);
  spectator_timer_t *t = spectator_registry_timer(reg, "dup", SPECTATOR_TAGS("b", "2", "a", "1"));
  assert_ptr_equal(t, (void *)spectator__timer_type.noop);
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, REG, "'dup'", "already a counter", "as a timer",
                     "no-op");
  spectator_timer_record(t, 1);
  /* More conflicts on the same id: no-ops, no more lines. */
  spectator_gauge_t *g = spectator_registry_gauge(reg, "dup", SPECTATOR_TAGS("a", "1", "b", "2"));
  assert_ptr_equal(g, (void *)spectator__gauge_type.noop);
  spectator_gauge_set(g, 5);
  assert_ptr_equal(spectator_registry_timer(reg, "dup", SPECTATOR_TAGS("a", "1", "b", "2")),
                   (void *)spectator__timer_type.noop);
  tu_assert_log_count(1);
  /* The first meter keeps working and is the same pointer. */
  assert_ptr_equal(c, spectator_registry_counter(reg, "dup", SPECTATOR_TAGS("b", "2", "a", "1")));
  spectator_counter_increment(c);
  assert_int_equal(spectator_registry_size(reg), 1);
  mt_expect_single(reg, "dup", SPECTATOR_TAGS("a", "1", "b", "2", "statistic", "count"),
                   SPECTATOR_OP_ADD, 3);
  spectator_registry_free(reg);
}

static void a_timer_and_a_percentile_timer_cannot_share_an_id(void **state) {
  (void)state;
  tu_log_clear();
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_percentile_timer_t *pt = spectator_registry_percentile_timer(reg, "lat", NULL, 0.01, 60);
  spectator_timer_t *t = spectator_registry_timer(reg, "lat", NULL);
  assert_true(spectator__is_noop(t));
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, REG, "'lat'", "already a percentile timer",
                     "as a timer");
  spectator_timer_record(t, 100);
  spectator_percentile_timer_record(pt, 1);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 5);
  mt_assert_measurement(ms, "lat", SPECTATOR_TAGS("statistic", "max"), SPECTATOR_OP_MAX, 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

/* ------------------------------------------------------------------------ */
/* Millions of distinct ids: the meter cap                                   */
/* ------------------------------------------------------------------------ */

#define FULL_TAGS SPECTATOR_TAGS("id", "dropped", "error", "registry-full", "statistic", "count")

/* One name with 100,000 tag values (a cardinality explosion), then ten names
 * that differ in a number only (one name pattern, other.#), into a registry
 * capped at 1000 (in a child: the mistake table is process-wide). */
static long overflow_the_cap(void *p) {
  (void)p;
  enum { IDS = 100000, CAP = 1000 };
  spectator_registry_t *reg = child_registry(CAP);
  CHECK(reg);
  char v[32];
  size_t noops = 0;
  for (int i = 0; i < IDS; i++) {
    snprintf(v, sizeof(v), "%d", i);
    spectator_counter_t *c = spectator_registry_counter(reg, "id", SPECTATOR_TAGS("k", v));
    noops += spectator__is_noop(c);
    spectator_counter_increment(c);
  }
  CHECK(noops == IDS - CAP);
  for (int i = 0; i < 10; i++) {
    snprintf(v, sizeof(v), "other.%d", i);
    CHECK(spectator__is_noop(spectator_registry_timer(reg, v, NULL)));
  }
  /* Every type is refused once full. */
  meters_t m = lookup_all(reg, "new", NULL);
  CHECK(all_noop(&m));
  record_all(&m);
  /* The cap's meters and the registry-full counter, outside the cap. */
  CHECK(spectator_registry_size(reg) == CAP + 1);
  /* Existing ids still get their real meters. */
  spectator_counter_t *first = spectator_registry_counter(reg, "id", SPECTATOR_TAGS("k", "0"));
  CHECK(!spectator__is_noop(first));
  spectator_counter_add(first, 10);
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  CHECK(spectator_measurements_count(ms) == CAP + 1);
  const spectator_measurement_t *full =
      spectator_measurements_find(ms, "spectator.measurements", FULL_TAGS);
  /* every refused lookup: 99,000 + 10 + the 8 of lookup_all */
  CHECK(full && full->op == SPECTATOR_OP_ADD && full->value == IDS - CAP + 10 + 8);
  const spectator_measurement_t *m0 =
      spectator_measurements_find(ms, "id", SPECTATOR_TAGS("k", "0", "statistic", "count"));
  CHECK(m0 && m0->value == 11);
  CHECK(!spectator_measurements_find(ms, "id", SPECTATOR_TAGS("k", "1000", "statistic", "count")));
  double sum = 0;
  for (size_t i = 0; i < spectator_measurements_count(ms); i++)
    sum += spectator_measurements_get(ms, i)->value;
  CHECK(sum == CAP + 10 + full->value);
  spectator_measurements_free(ms);
  /* The next interval counts from zero: two more refusals. */
  spectator_registry_counter(reg, "id", SPECTATOR_TAGS("k", "x"));
  spectator_registry_counter(reg, "id", SPECTATOR_TAGS("k", "x"));
  ms = spectator_registry_snapshot(reg);
  full = spectator_measurements_find(ms, "spectator.measurements", FULL_TAGS);
  CHECK(spectator_measurements_count(ms) == 1 && full && full->value == 2);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
  return 0;
}

static void a_full_registry_counts_every_refused_lookup_and_names_the_ids(void **state) {
  (void)state;
  assert_int_equal(tu_in_child(overflow_the_cap, NULL), 0);
  /* "id": 99,000 + 2 refusals, logged at occurrences 1, 2, 4, ..., 65536
   * (17 lines); other.# at its 1st, 2nd, 4th and 8th name; "new" at its 1st,
   * 2nd, 4th and 8th lookup (the eight types). */
  tu_assert_log_count(17 + 4 + 4);
  const char *prefix = "registry is full (1000 meters, the max_meters cap): new ";
  const char *suffix = " dropped; using a no-op, counted in "
                       "spectator.measurements{id=dropped,error=registry-full}";
  char want[512];
  for (unsigned i = 0; i < 17; i++) {
    snprintf(want, sizeof(want), "%scounter 'id{k=%u}'%s (occurrence %u)", prefix,
             1000 + (1u << i) - 1, suffix, 1u << i);
    tu_assert_log_line(i, SPECTATOR_LOG_WARN, REG, "registry is full");
    assert_string_equal(tu_log_line(i)->msg, want);
  }
  for (unsigned i = 0; i < 4; i++) {
    snprintf(want, sizeof(want), "%stimer 'other.%u'%s (occurrence %u)", prefix, (1u << i) - 1,
             suffix, 1u << i);
    assert_string_equal(tu_log_line(17 + i)->msg, want);
  }
  const char *types[] = {"counter", "timer", "gauge", "percentile distribution summary"};
  for (unsigned i = 0; i < 4; i++) {
    snprintf(want, sizeof(want), "%s%s 'new'%s (occurrence %u)", prefix, types[i], suffix, 1u << i);
    assert_string_equal(tu_log_line(21 + i)->msg, want);
  }
}

/* ------------------------------------------------------------------------ */
/* Invalid percentile ranges                                                 */
/* ------------------------------------------------------------------------ */

static long invalid_percentile_ranges(void *p) {
  (void)p;
  spectator_registry_t *reg = child_registry(0);
  CHECK(reg);
  spectator_percentile_timer_t *t =
      spectator_registry_percentile_timer(reg, "pt", NULL, -1, 1); /* 1: logged */
  spectator_percentile_dist_summary_t *d =
      spectator_registry_percentile_dist_summary(reg, "pd", NULL, 5, 1); /* 2: logged */
  CHECK(!spectator__is_noop(t) && !spectator__is_noop(d));
  /* Existing meters keep their range: no check, no log line. */
  CHECK(spectator_registry_percentile_timer(reg, "pt", NULL, NAN, NAN) == t);
  CHECK(spectator_registry_percentile_dist_summary(reg, "pd", NULL, -5, -10) == d);
  spectator_percentile_timer_record_ns(t, 1);             /* default min: 10 ms */
  spectator_percentile_dist_summary_record(d, 1e300);     /* default max: 2^63-1 */
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  CHECK(spectator_measurements_count(ms) == 10); /* pd's totalOfSquares is DBL_MAX */
  const spectator_measurement_t *m = spectator_measurements_find(
      ms, "pt", SPECTATOR_TAGS("statistic", "percentile", "percentile", "T0064"));
  CHECK(m && m->value == 1);
  m = spectator_measurements_find(ms, "pd",
                                  SPECTATOR_TAGS("statistic", "percentile", "percentile", "D0113"));
  CHECK(m && m->value == 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
  return 0;
}

static void invalid_percentile_ranges_use_the_defaults_and_log_a_warning(void **state) {
  (void)state;
  assert_int_equal(tu_in_child(invalid_percentile_ranges, NULL), 0);
  tu_assert_log_count(2);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, REG, "percentile timer 'pt'", "invalid range",
                     "[-1, 1]", "[0.01, 60] s");
  tu_assert_log_line(1, SPECTATOR_LOG_WARN, REG, "percentile distribution summary 'pd'",
                     "invalid range", "[5, 1]", "[0, 2^63-1]");
}

/* ------------------------------------------------------------------------ */
/* Many tags                                                                 */
/* ------------------------------------------------------------------------ */

static void an_id_with_hundreds_of_tags_is_kept_whole(void **state) {
  (void)state;
  tu_log_clear();
  spectator_registry_t *reg = mt_registry(NULL, 0);
  enum { PAIRS = 300 };
  static char keys[PAIRS][8], vals[PAIRS][8];
  const char *tags[2 * PAIRS + 3];
  for (int i = 0; i < PAIRS; i++) {
    snprintf(keys[i], sizeof(keys[i]), "k%03d", PAIRS - 1 - i); /* reverse order */
    snprintf(vals[i], sizeof(vals[i]), "v%d", i);
    tags[2 * i] = keys[i];
    tags[2 * i + 1] = vals[i];
  }
  tags[2 * PAIRS] = "k000"; /* a repeated key: the last value wins */
  tags[2 * PAIRS + 1] = "last";
  tags[2 * PAIRS + 2] = NULL;
  spectator_counter_t *c = spectator_registry_counter(reg, "many", tags);
  assert_false(spectator__is_noop(c));
  spectator_counter_increment(c);
  spectator_measurements_t *ms = mt_snapshot(reg);
  mt_assert_measurement_count(ms, 1);
  const spectator_measurement_t *m = spectator_measurements_get(ms, 0);
  assert_int_equal(spectator_id_tag_count(m->id), PAIRS + 1);
  assert_string_equal(spectator_id_tag(m->id, "k000"), "last");
  assert_string_equal(spectator_id_tag(m->id, "k299"), "v0");
  assert_string_equal(spectator_id_tag(m->id, "statistic"), "count");
  assert_string_equal(spectator_id_tag_key(m->id, 0), "k000");
  spectator_measurements_free(ms);
  /* kept, with a warning that the aggregator will not take it */
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, REG, "'many'");
  assert_string_equal(tu_log_line(0)->msg,
                      "counter 'many' has 302 user tags (its name, its tag keys, the common tag "
                      "keys and the statistic tag it adds, except nf.* and atlas.* keys): the "
                      "aggregator accepts at most 20 and will reject its measurements "
                      "(occurrence 1)");
  spectator_registry_free(reg);
}

/* n user tags: keys u01.. and their values, plus the extra pairs. */
static const char *const *user_tags(size_t n, const char *const *extra) {
  static char keys[64][24];
  static const char *tags[2 * 64 + 16];
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    snprintf(keys[i], sizeof(keys[i]), "u%02zu", i + 1);
    tags[j++] = keys[i];
    tags[j++] = "v";
  }
  for (size_t i = 0; extra && extra[i]; i++) tags[j++] = extra[i];
  tags[j] = NULL;
  return tags;
}

#define OVER_20(type, name, n, added)                                                       \
  type " '" name "' has " #n " user tags (its name, its tag keys, the common tag keys and " \
       "the " added " it adds, except nf.* and atlas.* keys): the aggregator accepts at "   \
       "most 20 and will reject its measurements (occurrence 1)"

/* The aggregator counts the name and every key outside nf.* and atlas.*:
 * the statistic tag a meter adds and the percentile tag percentile meters
 * add count too, and so do the common tags. More than 20: one warning at
 * creation, and the meter works as any other. */
static long count_user_tags(void *p) {
  (void)p;
  const char *const nf[] = {"nf.app", "www",     "nf.stack", "main", "atlas.dstype",
                            "rate",   "nf.zone", "z",        NULL};
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  CHECK(reg);
  /* name + 18 + statistic = 20: fine, with nf.* and atlas.* keys on top */
  spectator_counter_t *ok = spectator_registry_counter(reg, "ok", user_tags(18, nf));
  /* name + 19 + statistic = 21 */
  spectator_counter_t *c = spectator_registry_counter(reg, "c21", user_tags(19, NULL));
  /* an id's own statistic tag is the one the meter reports: 20 */
  spectator_counter_t *own = spectator_registry_counter(
      reg, "own", user_tags(18, SPECTATOR_TAGS("statistic", "totalAmount")));
  /* percentile meters add percentile too: name + 18 + 2 = 21 */
  spectator_percentile_timer_t *pt =
      spectator_registry_percentile_timer(reg, "pt21", user_tags(18, NULL), 0.01, 60);
  spectator_percentile_dist_summary_t *pd =
      spectator_registry_percentile_dist_summary(reg, "pd20", user_tags(17, NULL), 0, 100);
  /* the same warning is not repeated at lookups of the same meter */
  CHECK(spectator_registry_counter(reg, "c21", user_tags(19, NULL)) == c);
  CHECK(!spectator__is_noop(ok) && !spectator__is_noop(c) && !spectator__is_noop(own) &&
        !spectator__is_noop(pt) && !spectator__is_noop(pd));
  spectator_counter_increment(c);
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  CHECK(spectator_measurements_count(ms) == 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);

  /* common tags count: 15 + name + statistic + 4 common = 21 ("name" and
   * a key the id has count once; nf.* not at all) */
  cfg.common_tags = SPECTATOR_TAGS("c1", "1", "c2", "2", "c3", "3", "c4", "4", "u01", "x", "nf.app",
                                   "www", "c1", "again");
  reg = spectator_registry_new(&cfg);
  CHECK(reg);
  CHECK(!spectator__is_noop(spectator_registry_gauge(reg, "g21", user_tags(15, NULL))));
  CHECK(!spectator__is_noop(spectator_registry_gauge(reg, "g20", user_tags(14, NULL))));
  spectator_registry_free(reg);
  return 0;
}

static void more_than_20_user_tags_warn_once_at_creation_and_the_meter_is_kept(void **state) {
  (void)state;
  assert_int_equal(tu_in_child(count_user_tags, NULL), 0);
  tu_assert_log_count(3);
  assert_string_equal(tu_log_line(0)->msg, OVER_20("counter", "c21", 21, "statistic tag"));
  assert_string_equal(tu_log_line(1)->msg,
                      OVER_20("percentile timer", "pt21", 21, "statistic and percentile tags"));
  assert_string_equal(tu_log_line(2)->msg, OVER_20("gauge", "g21", 21, "statistic tag"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_null_name_gives_noop_meters_and_a_rate_limited_log_line),
      cmocka_unit_test(an_empty_name_gives_noop_meters_and_a_rate_limited_log_line),
      cmocka_unit_test(an_odd_tag_array_gives_noop_meters_and_a_log_line),
      cmocka_unit_test(a_null_or_empty_tag_value_or_an_empty_key_gives_noop_meters_and_a_log_line),
      cmocka_unit_test(
          eight_different_counters_with_an_empty_tag_value_are_each_named_in_a_warning),
      cmocka_unit_test(repeats_of_one_mistake_are_limited_and_never_hide_a_different_one),
      cmocka_unit_test(a_null_key_ends_the_tag_array),
      cmocka_unit_test(null_tags_are_valid_and_mean_no_tags),
      cmocka_unit_test(a_null_id_gives_noop_meters_and_a_rate_limited_log_line),
      cmocka_unit_test(bad_ids_are_null_and_each_distinct_mistake_is_logged),
      cmocka_unit_test(null_meter_pointers_are_accepted_by_every_recording_and_getter_function),
      cmocka_unit_test(null_registry_pointers_are_accepted_by_every_registry_function),
      cmocka_unit_test(nan_and_infinite_values_are_ignored_by_every_meter_type),
      cmocka_unit_test(a_one_megabyte_name_and_tag_value_are_kept_in_the_snapshot),
      cmocka_unit_test(a_log_line_about_a_huge_bad_name_is_bounded),
      cmocka_unit_test(non_ascii_bytes_in_names_and_tags_are_kept_in_the_snapshot_id),
      cmocka_unit_test(control_characters_cannot_forge_log_lines),
      cmocka_unit_test(the_same_id_as_two_types_gives_the_second_a_noop_and_logs_once),
      cmocka_unit_test(a_timer_and_a_percentile_timer_cannot_share_an_id),
      cmocka_unit_test(a_full_registry_counts_every_refused_lookup_and_names_the_ids),
      cmocka_unit_test(invalid_percentile_ranges_use_the_defaults_and_log_a_warning),
      cmocka_unit_test(an_id_with_hundreds_of_tags_is_kept_whole),
      cmocka_unit_test(more_than_20_user_tags_warn_once_at_creation_and_the_meter_is_kept),
  };
  return cmocka_run_group_tests(tests, mt_setup_capture, mt_teardown_capture);
}
