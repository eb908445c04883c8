/*
 * Unit tests for src/registry.c: lookups (by name and by id), type conflicts,
 * the meter cap, concurrent creation, freeing, config validation at creation,
 * gauge TTLs on an injected clock, and the global registry.
 *
 * Registries here never get a URI, so nothing is published. The global
 * registry is created from the environment that main() sets before any test
 * runs (SPECTATOR_DISABLE_AUTO_START=1, no SPECTATOR_URI).
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "id.h"
#include "meter.h"
#include "registry.h"
#include "meter_test_util.h"

#define NS 1000000000LL

/* ------------------------------------------------------------------------ */
/* Lookups                                                                   */
/* ------------------------------------------------------------------------ */

static void equal_ids_return_the_same_meter(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *a =
      spectator_registry_counter(reg, "req", SPECTATOR_TAGS("a", "1", "b", "2"));
  spectator_counter_t *b =
      spectator_registry_counter(reg, "req", SPECTATOR_TAGS("b", "2", "a", "1"));
  spectator_counter_t *c =
      spectator_registry_counter(reg, "req", SPECTATOR_TAGS("a", "0", "b", "2", "a", "1"));
  assert_non_null(a);
  assert_false(spectator__is_noop(a));
  assert_ptr_equal(a, b);
  assert_ptr_equal(a, c);
  assert_int_equal(spectator_registry_size(reg), 1);

  spectator_counter_t *d = spectator_registry_counter(reg, "req", SPECTATOR_TAGS("a", "1"));
  spectator_counter_t *e = spectator_registry_counter(reg, "req", NULL);
  spectator_counter_t *f =
      spectator_registry_counter(reg, "req2", SPECTATOR_TAGS("a", "1", "b", "2"));
  assert_ptr_not_equal(a, d);
  assert_ptr_not_equal(a, e);
  assert_ptr_not_equal(d, e);
  assert_ptr_not_equal(a, f);
  assert_int_equal(spectator_registry_size(reg), 4);
  assert_int_equal(tu_log_count(), 0);
  spectator_registry_free(reg);
}

static void every_meter_type_returns_the_same_pointer_for_an_equal_id(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  const char *const *t1 = SPECTATOR_TAGS("x", "1", "y", "2");
  const char *const *t2 = SPECTATOR_TAGS("y", "2", "x", "1");
  assert_ptr_equal(spectator_registry_timer(reg, "t", t1), spectator_registry_timer(reg, "t", t2));
  assert_ptr_equal(spectator_registry_dist_summary(reg, "d", t1),
                   spectator_registry_dist_summary(reg, "d", t2));
  assert_ptr_equal(spectator_registry_gauge(reg, "g", t1), spectator_registry_gauge(reg, "g", t2));
  assert_ptr_equal(spectator_registry_gauge(reg, "g", t1),
                   spectator_registry_gauge_with_ttl(reg, "g", t2, 5));
  assert_ptr_equal(spectator_registry_max_gauge(reg, "mg", t1),
                   spectator_registry_max_gauge(reg, "mg", t2));
  assert_ptr_equal(spectator_registry_monotonic_counter(reg, "mc", t1),
                   spectator_registry_monotonic_counter(reg, "mc", t2));
  assert_ptr_equal(spectator_registry_percentile_timer(reg, "pt", t1, 0.01, 60),
                   spectator_registry_percentile_timer(reg, "pt", t2, 0.01, 60));
  assert_ptr_equal(spectator_registry_percentile_dist_summary(reg, "pd", t1, 0, 1000),
                   spectator_registry_percentile_dist_summary(reg, "pd", t2, 0, 1000));
  assert_int_equal(spectator_registry_size(reg), 7);
  assert_int_equal(tu_log_count(), 0);
  spectator_registry_free(reg);
}

static void lookups_by_id_return_the_same_meter_as_by_name(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  const char *const *tags = SPECTATOR_TAGS("k", "v", "a", "b");
  struct {
    const char *name;
    spectator__type_t type;
  } cases[] = {{"c", SPECTATOR__COUNTER},           {"t", SPECTATOR__TIMER},
               {"d", SPECTATOR__DIST_SUMMARY},      {"g", SPECTATOR__GAUGE},
               {"mg", SPECTATOR__MAX_GAUGE},        {"mc", SPECTATOR__MONOTONIC_COUNTER},
               {"pt", SPECTATOR__PERCENTILE_TIMER}, {"pd", SPECTATOR__PERCENTILE_DIST_SUMMARY}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    /* the id has the tags in another order, which must not matter */
    spectator_id_t *id = spectator_id_new(cases[i].name, SPECTATOR_TAGS("a", "b", "k", "v"));
    void *by_name = NULL, *by_id = NULL, *by_id_first = NULL;
    spectator_id_t *fresh = spectator_id_with_tag(id, "fresh", "1");
    switch (cases[i].type) {
    case SPECTATOR__COUNTER:
      by_name = spectator_registry_counter(reg, cases[i].name, tags);
      by_id = spectator_registry_counter_id(reg, id);
      by_id_first = spectator_registry_counter_id(reg, fresh);
      break;
    case SPECTATOR__TIMER:
      by_name = spectator_registry_timer(reg, cases[i].name, tags);
      by_id = spectator_registry_timer_id(reg, id);
      by_id_first = spectator_registry_timer_id(reg, fresh);
      break;
    case SPECTATOR__DIST_SUMMARY:
      by_name = spectator_registry_dist_summary(reg, cases[i].name, tags);
      by_id = spectator_registry_dist_summary_id(reg, id);
      by_id_first = spectator_registry_dist_summary_id(reg, fresh);
      break;
    case SPECTATOR__GAUGE:
      by_name = spectator_registry_gauge(reg, cases[i].name, tags);
      by_id = spectator_registry_gauge_id(reg, id);
      assert_ptr_equal(spectator_registry_gauge_with_ttl_id(reg, id, 30), by_name);
      by_id_first = spectator_registry_gauge_with_ttl_id(reg, fresh, 30);
      break;
    case SPECTATOR__MAX_GAUGE:
      by_name = spectator_registry_max_gauge(reg, cases[i].name, tags);
      by_id = spectator_registry_max_gauge_id(reg, id);
      by_id_first = spectator_registry_max_gauge_id(reg, fresh);
      break;
    case SPECTATOR__MONOTONIC_COUNTER:
      by_name = spectator_registry_monotonic_counter(reg, cases[i].name, tags);
      by_id = spectator_registry_monotonic_counter_id(reg, id);
      by_id_first = spectator_registry_monotonic_counter_id(reg, fresh);
      break;
    case SPECTATOR__PERCENTILE_TIMER:
      by_name = spectator_registry_percentile_timer(reg, cases[i].name, tags, 0.01, 60);
      by_id = spectator_registry_percentile_timer_id(reg, id, 0.01, 60);
      by_id_first = spectator_registry_percentile_timer_id(reg, fresh, 0.01, 60);
      break;
    case SPECTATOR__PERCENTILE_DIST_SUMMARY:
      by_name = spectator_registry_percentile_dist_summary(reg, cases[i].name, tags, 0, 100);
      by_id = spectator_registry_percentile_dist_summary_id(reg, id, 0, 100);
      by_id_first = spectator_registry_percentile_dist_summary_id(reg, fresh, 0, 100);
      break;
    default: fail();
    }
    assert_false(spectator__is_noop(by_name));
    assert_ptr_equal(by_name, by_id);
    assert_false(spectator__is_noop(by_id_first));
    assert_ptr_not_equal(by_id_first, by_name);
    /* the id is borrowed: the registry keeps its own copy, not a reference */
    assert_int_equal(atomic_load(&id->refs), 1);
    assert_int_equal(atomic_load(&fresh->refs), 1);
    spectator__meter_t *m = by_id_first;
    assert_int_equal(m->type, cases[i].type);
    assert_true(spectator_id_equals(m->id, fresh));
    spectator_id_free(fresh);
    spectator_id_free(id);
    /* the meter's id outlives the caller's */
    assert_string_equal(spectator_id_tag(m->id, "fresh"), "1");
  }
  assert_int_equal(spectator_registry_size(reg), 16);
  assert_int_equal(tu_log_count(), 0);
  spectator_registry_free(reg);
}

static void lookups_on_a_null_registry_give_noop_meters(void **state) {
  (void)state;
  assert_ptr_equal(spectator_registry_counter(NULL, "c", NULL), (void *)spectator__counter_type.noop);
  assert_ptr_equal(spectator_registry_timer(NULL, "t", NULL), (void *)spectator__timer_type.noop);
  assert_ptr_equal(spectator_registry_gauge(NULL, "g", NULL), (void *)spectator__gauge_type.noop);
  assert_int_equal(spectator_registry_size(NULL), 0);
  assert_null(spectator_registry_snapshot(NULL));
  spectator_registry_free(NULL);
}

static long lookup_null_names(void *p) {
  spectator_registry_t *reg = p;
  long noops = 0;
  noops += spectator__is_noop(spectator_registry_counter(reg, NULL, NULL));
  return noops + 10 * (long)spectator_registry_size(reg);
}

static long lookup_null_id(void *p) {
  spectator_registry_t *reg = p;
  return spectator__is_noop(spectator_registry_timer_id(reg, NULL)) +
         10 * (long)spectator_registry_size(reg);
}

static long lookup_odd_tags(void *p) {
  spectator_registry_t *reg = p;
  return spectator__is_noop(spectator_registry_gauge(reg, "odd", SPECTATOR_TAGS("k"))) +
         10 * (long)spectator_registry_size(reg);
}

static void bad_names_and_tags_give_a_noop_meter_and_one_log_line(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  /* the bad-id limiter is process-wide: each case runs in a fresh child */
  assert_int_equal(tu_in_child(lookup_null_names, reg), 1);
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY, "counter");
  assert_string_equal(tu_log_line(0)->msg,
                      "invalid id for counter '(null)': the name is NULL; using a no-op "
                      "(occurrence 1)");
  assert_int_equal(tu_in_child(lookup_null_id, reg), 1);
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY, "timer");
  assert_string_equal(tu_log_line(0)->msg,
                      "invalid id for timer: the id is NULL; using a no-op (occurrence 1)");
  assert_int_equal(tu_in_child(lookup_odd_tags, reg), 1);
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY, "gauge");
  assert_string_equal(tu_log_line(0)->msg,
                      "invalid id for gauge 'odd': tag 'k' at position 0 has no value (a NULL "
                      "value, or an odd number of entries in the tag array); using a no-op "
                      "(occurrence 1)");
  spectator_registry_free(reg);
}

/* ------------------------------------------------------------------------ */
/* Type conflicts                                                            */
/* ------------------------------------------------------------------------ */

static void a_type_conflict_gives_a_noop_that_is_never_reported_and_logs_once(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_counter_t *c =
      spectator_registry_counter(reg, "shared", SPECTATOR_TAGS("a", "1", "b", "2"));
  spectator_counter_increment(c);

  spectator_timer_t *t =
      spectator_registry_timer(reg, "shared", SPECTATOR_TAGS("b", "2", "a", "1"));
  assert_ptr_equal(t, (void *)spectator__timer_type.noop);
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY, "'shared'",
                     "already a counter", "a timer", "no-op");
  spectator_timer_record(t, 1.5);

  /* the same id again, as the same or other types: still no-ops, no new line */
  assert_ptr_equal(spectator_registry_timer(reg, "shared", SPECTATOR_TAGS("a", "1", "b", "2")),
                   (void *)spectator__timer_type.noop);
  spectator_gauge_t *g =
      spectator_registry_gauge(reg, "shared", SPECTATOR_TAGS("a", "1", "b", "2"));
  assert_ptr_equal(g, (void *)spectator__gauge_type.noop);
  spectator_gauge_set(g, 7);
  spectator_id_t *id = spectator_id_new("shared", SPECTATOR_TAGS("a", "1", "b", "2"));
  assert_ptr_equal(spectator_registry_dist_summary_id(reg, id), (void *)spectator__dist_summary_type.noop);
  spectator_id_free(id);
  tu_assert_log_count(1);
  /* and the counter is still the counter */
  assert_ptr_equal(spectator_registry_counter(reg, "shared", SPECTATOR_TAGS("a", "1", "b", "2")),
                   c);
  assert_int_equal(spectator_registry_size(reg), 1);

  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  assert_int_equal(spectator_measurements_count(ms), 1);
  tu_assert_measurement(ms, "shared", SPECTATOR_TAGS("a", "1", "b", "2", "statistic", "count"), 1);
  spectator_measurements_free(ms);

  /* another conflicting id logs its own line */
  spectator_registry_max_gauge(reg, "other", NULL);
  spectator_registry_counter(reg, "other", NULL);
  tu_assert_log_count(2);
  tu_assert_log_line(1, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY, "'other'",
                     "already a max gauge", "a counter");
  spectator_registry_free(reg);
}

/* ------------------------------------------------------------------------ */
/* The cap                                                                   */
/* ------------------------------------------------------------------------ */

#define FULL_TAGS SPECTATOR_TAGS("id", "dropped", "error", "registry-full", "statistic", "count")

/* The line a refused lookup of a new counter gives. */
static const char *full_line(size_t cap, const char *id, unsigned occurrence) {
  static char buf[512];
  snprintf(buf, sizeof(buf),
           "registry is full (%zu meters, the max_meters cap): new counter '%s' dropped; using a "
           "no-op, counted in spectator.measurements{id=dropped,error=registry-full} "
           "(occurrence %u)",
           cap, id, occurrence);
  return buf;
}

static void the_11th_distinct_id_past_a_cap_of_10_gives_a_noop_a_count_and_a_warning(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 10);
  spectator_counter_t *cs[10];
  for (int i = 0; i < 10; i++) {
    char name[16];
    snprintf(name, sizeof(name), "c%d", i);
    cs[i] = spectator_registry_counter(reg, name, NULL);
    assert_false(spectator__is_noop(cs[i]));
  }
  assert_int_equal(spectator_registry_size(reg), 10);
  tu_assert_log_count(0);

  spectator_counter_t *over = spectator_registry_counter(reg, "c10", NULL);
  assert_ptr_equal(over, (void *)spectator__counter_type.noop);
  spectator_counter_add(over, 5);
  /* The registry-full counter is the library's own: it is outside the cap. */
  assert_int_equal(spectator_registry_size(reg), 11);
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY, "registry is full");
  assert_string_equal(tu_log_line(0)->msg, full_line(10, "c10", 1));

  /* existing ids still resolve to their meters */
  for (int i = 0; i < 10; i++) {
    char name[16];
    snprintf(name, sizeof(name), "c%d", i);
    assert_ptr_equal(spectator_registry_counter(reg, name, NULL), cs[i]);
    spectator_counter_increment(cs[i]);
  }
  /* other types are capped too */
  assert_ptr_equal(spectator_registry_timer(reg, "t", NULL), (void *)spectator__timer_type.noop);
  assert_int_equal(spectator_registry_size(reg), 11);

  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  assert_int_equal(spectator_measurements_count(ms), 11);
  assert_false(tu_find(ms, "c10", SPECTATOR_TAGS("statistic", "count"), NULL));
  tu_assert_measurement(ms, "c9", SPECTATOR_TAGS("statistic", "count"), 1);
  tu_assert_measurement(ms, "spectator.measurements", FULL_TAGS, 2);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

/* A registry for a child (no cmocka assertions there), capped at max_meters. */
static spectator_registry_t *child_registry(size_t max_meters) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  cfg.max_meters = max_meters;
  return spectator_registry_new(&cfg);
}

static const char *const distinct[] = {"alpha", "beta", "gamma", "delta", "epsilon",
                                       "zeta",  "eta",  "theta", "iota",  "kappa"};

/* In a child (the mistake table is process-wide): a registry capped at 1. */
static long refuse_many(void *p) {
  (void)p;
  spectator_registry_t *reg = child_registry(1);
  if (!reg) return __LINE__;
  spectator_registry_counter(reg, "first", NULL);
  char name[32];
  /* ten distinct names: each is named */
  for (int i = 0; i < 10; i++) {
    if (!spectator__is_noop(spectator_registry_counter(reg, distinct[i], NULL))) return __LINE__;
  }
  /* one name seven more times: occurrences 2 to 8 of that mistake */
  for (int i = 0; i < 7; i++) spectator_registry_counter(reg, "alpha", NULL);
  /* one name with eight tag values: occurrences 1 to 8 */
  for (int i = 0; i < 8; i++) {
    snprintf(name, sizeof(name), "%d", i);
    spectator_registry_counter(reg, "req", SPECTATOR_TAGS("id", name));
  }
  /* names that differ in numbers only are one name pattern: user.#.requests */
  const char *numbered[] = {"user.1.requests", "user.22.requests",      "user.333.requests",
                            "user.4.requests", "user.5.requests",       "user.6.requests",
                            "user.7.requests", "user.8f3a9c21.requests"};
  for (int i = 0; i < 8; i++) spectator_registry_counter(reg, numbered[i], NULL);
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  const spectator_measurement_t *m =
      spectator_measurements_find(ms, "spectator.measurements", FULL_TAGS);
  long rc = m && m->value == 33 && m->op == SPECTATOR_OP_ADD ? 0 : __LINE__;
  spectator_measurements_free(ms);
  /* another registry's refusals are its own mistakes */
  spectator_registry_t *other = child_registry(1);
  spectator_registry_counter(other, "first", NULL);
  spectator_registry_counter(other, "alpha", NULL);
  spectator_registry_free(other);
  spectator_registry_free(reg);
  return rc;
}

static void warnings_about_the_cap_name_every_distinct_name_pattern_and_limit_repeats_of_one(
    void **state) {
  (void)state;
  assert_int_equal(tu_in_child(refuse_many, NULL), 0);
  tu_assert_log_count(10 + 3 + 4 + 4 + 1);
  for (unsigned i = 0; i < 10; i++)
    assert_string_equal(tu_log_line(i)->msg, full_line(1, distinct[i], 1));
  assert_string_equal(tu_log_line(10)->msg, full_line(1, "alpha", 2));
  assert_string_equal(tu_log_line(11)->msg, full_line(1, "alpha", 4));
  assert_string_equal(tu_log_line(12)->msg, full_line(1, "alpha", 8));
  assert_string_equal(tu_log_line(13)->msg, full_line(1, "req{id=0}", 1));
  assert_string_equal(tu_log_line(14)->msg, full_line(1, "req{id=1}", 2));
  assert_string_equal(tu_log_line(15)->msg, full_line(1, "req{id=3}", 4));
  assert_string_equal(tu_log_line(16)->msg, full_line(1, "req{id=7}", 8));
  assert_string_equal(tu_log_line(17)->msg, full_line(1, "user.1.requests", 1));
  assert_string_equal(tu_log_line(18)->msg, full_line(1, "user.22.requests", 2));
  assert_string_equal(tu_log_line(19)->msg, full_line(1, "user.4.requests", 4));
  assert_string_equal(tu_log_line(20)->msg, full_line(1, "user.8f3a9c21.requests", 8));
  assert_string_equal(tu_log_line(21)->msg, full_line(1, "alpha", 1));
}

/* The library's own meters (the publisher's spectator.measurements and
 * http.req.complete) are not refused by a full registry, up to a reserve of
 * their own. */
static long self_meters(void *p) {
  (void)p;
  spectator_registry_t *reg = child_registry(2);
  if (!reg) return __LINE__;
  spectator_registry_counter(reg, "a", NULL);
  spectator_registry_counter(reg, "b", NULL);
  if (!spectator__is_noop(spectator_registry_counter(reg, "c", NULL))) return __LINE__;
  spectator_counter_t *sent = spectator__registry_lookup_self(
      reg, SPECTATOR__COUNTER, "spectator.measurements", SPECTATOR_TAGS("id", "sent"));
  if (spectator__is_noop(sent)) return __LINE__;
  spectator_counter_add(sent, 3);
  /* the registry-full counter took one place of the reserve */
  char code[16];
  size_t made = 2;
  for (size_t i = 0; i < SPECTATOR__SELF_METERS_MAX - 1; i++) {
    snprintf(code, sizeof(code), "%zu", i);
    made += !spectator__is_noop(spectator__registry_lookup_self(
        reg, SPECTATOR__TIMER, "http.req.complete", SPECTATOR_TAGS("statusCode", code)));
  }
  if (made != SPECTATOR__SELF_METERS_MAX) return __LINE__;
  if (spectator_registry_size(reg) != 2 + SPECTATOR__SELF_METERS_MAX) return __LINE__;
  /* still refused: user meters */
  if (!spectator__is_noop(spectator_registry_counter(reg, "d", NULL))) return __LINE__;
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  const spectator_measurement_t *s = spectator_measurements_find(
      ms, "spectator.measurements", SPECTATOR_TAGS("id", "sent", "statistic", "count"));
  const spectator_measurement_t *f =
      spectator_measurements_find(ms, "spectator.measurements", FULL_TAGS);
  long rc = s && s->value == 3 && f && f->value == 2 ? 0 : __LINE__;
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
  return rc;
}

static void self_metrics_are_outside_the_cap_within_a_reserve_of_their_own(void **state) {
  (void)state;
  assert_int_equal(tu_in_child(self_meters, NULL), 0);
  /* c and d refused; the reserve's end named once per distinct name */
  tu_assert_log_count(2 + 1);
  assert_string_equal(tu_log_line(0)->msg, full_line(2, "c", 1));
  assert_string_equal(tu_log_line(1)->msg,
                      "the registry already holds 1024 meters of the library's own: new timer "
                      "'http.req.complete{statusCode=1022}' dropped (occurrence 1)");
  assert_string_equal(tu_log_line(2)->msg, full_line(2, "d", 1));
}

static void registry_size_counts_meters_but_not_noops(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  assert_int_equal(spectator_registry_size(reg), 0);
  spectator_registry_counter(reg, "a", NULL);
  assert_int_equal(spectator_registry_size(reg), 1);
  spectator_registry_counter(reg, "a", NULL);
  assert_int_equal(spectator_registry_size(reg), 1);
  spectator_registry_timer(reg, "a", NULL); /* conflict: no-op */
  assert_int_equal(spectator_registry_size(reg), 1);
  spectator_registry_timer(reg, "b", NULL);
  spectator_registry_gauge(reg, "c", SPECTATOR_TAGS("k", "v"));
  assert_int_equal(spectator_registry_size(reg), 3);
  spectator_registry_free(reg);
}

/* ------------------------------------------------------------------------ */
/* Concurrency                                                               */
/* ------------------------------------------------------------------------ */

#define RACE_THREADS 4
#define RACE_IDS 1000

typedef struct {
  spectator_registry_t *reg;
  pthread_barrier_t *barrier;
  int index;
  spectator_counter_t *got[RACE_IDS];
} race_arg_t;

static void *race_worker(void *p) {
  race_arg_t *a = p;
  pthread_barrier_wait(a->barrier);
  for (int k = 0; k < RACE_IDS; k++) {
    /* threads walk the ids from different starting points and directions so
     * that creations really collide */
    int i = (a->index % 2) ? (RACE_IDS - 1 - k) : k;
    i = (i + a->index * (RACE_IDS / RACE_THREADS / 2)) % RACE_IDS;
    char name[32], value[16];
    snprintf(name, sizeof(name), "race.%d", i % 10);
    snprintf(value, sizeof(value), "%d", i);
    /* tags in a thread-dependent order */
    const char *const *tags = (a->index % 2) ? SPECTATOR_TAGS("id", value, "app", "race")
                                             : SPECTATOR_TAGS("app", "race", "id", value);
    a->got[i] = spectator_registry_counter(a->reg, name, tags);
    spectator_counter_increment(a->got[i]);
  }
  return NULL;
}

static void four_threads_racing_to_create_the_same_1000_ids_get_the_same_meters(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, RACE_THREADS);
  static race_arg_t args[RACE_THREADS];
  pthread_t th[RACE_THREADS];
  for (int t = 0; t < RACE_THREADS; t++) {
    memset(&args[t], 0, sizeof(args[t]));
    args[t].reg = reg;
    args[t].barrier = &barrier;
    args[t].index = t;
    assert_int_equal(pthread_create(&th[t], NULL, race_worker, &args[t]), 0);
  }
  for (int t = 0; t < RACE_THREADS; t++) assert_int_equal(pthread_join(th[t], NULL), 0);
  pthread_barrier_destroy(&barrier);

  assert_int_equal(spectator_registry_size(reg), RACE_IDS);
  for (int i = 0; i < RACE_IDS; i++) {
    assert_non_null(args[0].got[i]);
    assert_false(spectator__is_noop(args[0].got[i]));
    for (int t = 1; t < RACE_THREADS; t++) assert_ptr_equal(args[t].got[i], args[0].got[i]);
    for (int j = 0; j < i; j += 97) assert_ptr_not_equal(args[0].got[i], args[0].got[j]);
  }
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  assert_int_equal(spectator_measurements_count(ms), RACE_IDS);
  for (size_t i = 0; i < spectator_measurements_count(ms); i++)
    assert_true(spectator_measurements_get(ms, i)->value == RACE_THREADS);
  tu_assert_measurement(
      ms, "race.7", SPECTATOR_TAGS("app", "race", "id", "517", "statistic", "count"), RACE_THREADS);
  spectator_measurements_free(ms);
  assert_int_equal(tu_log_count(), 0);
  spectator_registry_free(reg);
}

#define GROW_THREADS 4
#define GROW_IDS 2000

typedef struct {
  spectator_registry_t *reg;
  pthread_barrier_t *barrier;
  _Atomic int *done;
  int index;
  long noops;
} grow_arg_t;

static void *grow_worker(void *p) {
  grow_arg_t *a = p;
  char tid[8];
  snprintf(tid, sizeof(tid), "%d", a->index);
  pthread_barrier_wait(a->barrier);
  for (int i = 0; i < GROW_IDS; i++) {
    char v[16];
    snprintf(v, sizeof(v), "%d", i);
    spectator_counter_t *c =
        spectator_registry_counter(a->reg, "grow", SPECTATOR_TAGS("t", tid, "i", v));
    a->noops += spectator__is_noop(c);
    spectator_counter_increment(c);
  }
  atomic_fetch_add(a->done, 1);
  return NULL;
}

/* GROW_THREADS grow_workers on one registry, and the barrier that starts them
 * together with the calling thread. */
typedef struct {
  pthread_barrier_t barrier;
  _Atomic int done; /* workers finished */
  grow_arg_t args[GROW_THREADS];
  pthread_t th[GROW_THREADS];
} grow_race_t;

/* Start the workers on reg; return once they and the caller passed the barrier. */
static void grow_race_start(grow_race_t *r, spectator_registry_t *reg) {
  pthread_barrier_init(&r->barrier, NULL, GROW_THREADS + 1);
  atomic_init(&r->done, 0);
  for (int t = 0; t < GROW_THREADS; t++) {
    r->args[t] = (grow_arg_t){reg, &r->barrier, &r->done, t, 0};
    assert_int_equal(pthread_create(&r->th[t], NULL, grow_worker, &r->args[t]), 0);
  }
  pthread_barrier_wait(&r->barrier);
}

/* Join the workers and destroy the barrier; return the no-op meters they got in all. */
static long grow_race_join(grow_race_t *r) {
  long noops = 0;
  for (int t = 0; t < GROW_THREADS; t++) {
    assert_int_equal(pthread_join(r->th[t], NULL), 0);
    noops += r->args[t].noops;
  }
  pthread_barrier_destroy(&r->barrier);
  return noops;
}

/* Sum of every counter value in a snapshot (and the number of measurements). */
static double snapshot_sum(spectator_registry_t *reg, size_t *n) {
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  double sum = 0;
  for (size_t i = 0; i < spectator_measurements_count(ms); i++)
    sum += spectator_measurements_get(ms, i)->value;
  if (n) *n = spectator_measurements_count(ms);
  spectator_measurements_free(ms);
  return sum;
}

static void snapshots_while_4_threads_create_meters_lose_no_increment(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  grow_race_t race;
  grow_race_start(&race, reg);
  double total = 0;
  long snapshots = 0;
  /* At least one snapshot in the loop, even when the threads are done first
   * (it happens on a loaded machine): the sums must add up either way. */
  do {
    total += snapshot_sum(reg, NULL);
    snapshots++;
  } while (atomic_load(&race.done) < GROW_THREADS);
  grow_race_join(&race);
  for (int t = 0; t < GROW_THREADS; t++) assert_int_equal(race.args[t].noops, 0);
  total += snapshot_sum(reg, NULL);
  assert_true(snapshots >= 1);
  assert_int_equal(spectator_registry_size(reg), GROW_THREADS * GROW_IDS);
  assert_true(total == GROW_THREADS * GROW_IDS);
  size_t n = 1;
  assert_true(snapshot_sum(reg, &n) == 0); /* all taken */
  assert_int_equal(n, 0);
  spectator_registry_free(reg);
}

static void four_threads_racing_past_the_cap_create_exactly_max_meters(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 100);
  grow_race_t race;
  grow_race_start(&race, reg);
  long noops = grow_race_join(&race);
  /* 100 meters and the registry-full counter, which is outside the cap */
  assert_int_equal(spectator_registry_size(reg), 101);
  assert_int_equal(noops, GROW_THREADS * GROW_IDS - 100);
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  assert_int_equal(spectator_measurements_count(ms), 101);
  double sum = 0;
  for (size_t i = 0; i < spectator_measurements_count(ms); i++) {
    const spectator_measurement_t *m = spectator_measurements_get(ms, i);
    if (strcmp(spectator_id_name(m->id), "grow") == 0) sum += m->value;
  }
  assert_true(sum == 100); /* one increment per real meter */
  /* every refused lookup counted */
  tu_assert_measurement(
      ms, "spectator.measurements",
      SPECTATOR_TAGS("id", "dropped", "error", "registry-full", "statistic", "count"),
      GROW_THREADS * GROW_IDS - 100);
  spectator_measurements_free(ms);
  /* one name: 7900 occurrences of one mistake give 1, 2, 4, ..., 4096: 13 lines */
  tu_assert_log_count(13);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "max_meters"), 13);
  spectator_registry_free(reg);
}

/* ------------------------------------------------------------------------ */
/* Freeing                                                                   */
/* ------------------------------------------------------------------------ */

static void registry_free_releases_every_meter_id_and_table(void **state) {
  (void)state;
  /* enough meters to grow the table many times and fill several chunks */
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_id_t *mine = spectator_id_new("mine", SPECTATOR_TAGS("k", "v"));
  for (int i = 0; i < 3000; i++) {
    char v[16];
    snprintf(v, sizeof(v), "%d", i);
    const char *const *tags = SPECTATOR_TAGS("i", v);
    switch (i % 8) {
    case 0: spectator_counter_increment(spectator_registry_counter(reg, "m.c", tags)); break;
    case 1: spectator_timer_record(spectator_registry_timer(reg, "m.t", tags), 0.5); break;
    case 2:
      spectator_dist_summary_record(spectator_registry_dist_summary(reg, "m.d", tags), 3);
      break;
    case 3: spectator_gauge_set(spectator_registry_gauge(reg, "m.g", tags), 1); break;
    case 4: spectator_max_gauge_set(spectator_registry_max_gauge(reg, "m.mg", tags), 2); break;
    case 5:
      spectator_monotonic_counter_set(spectator_registry_monotonic_counter(reg, "m.mc", tags), 9);
      break;
    case 6:
      spectator_percentile_timer_record(
          spectator_registry_percentile_timer(reg, "m.pt", tags, 0.01, 60), 0.1);
      break;
    case 7:
      spectator_percentile_dist_summary_record(
          spectator_registry_percentile_dist_summary(reg, "m.pd", tags, 0, 1000), 10);
      break;
    }
  }
  spectator_registry_counter_id(reg, mine);
  assert_int_equal(spectator_registry_size(reg), 3001);
  assert_true(atomic_load(&reg->table)->mask + 1 >= 2 * 3001);
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  assert_true(spectator_measurements_count(ms) > 3000);
  spectator_registry_free(reg);
  /* the snapshot and the caller's id are independent of the registry */
  tu_assert_measurement(ms, "m.c", SPECTATOR_TAGS("i", "8", "statistic", "count"), 1);
  spectator_measurements_free(ms);
  assert_int_equal(atomic_load(&mine->refs), 1);
  assert_string_equal(spectator_id_name(mine), "mine");
  spectator_id_free(mine);
  /* leaks, if any, are reported by ASan/valgrind at exit */
}

/* ------------------------------------------------------------------------ */
/* Creation with invalid configurations                                      */
/* ------------------------------------------------------------------------ */

static void registry_new_rejects_invalid_configs_with_null_and_a_log_line(void **state) {
  (void)state;
  static const char *const empty_value[] = {"k", "", NULL};
  static const char *const empty_key[] = {"", "v", NULL};
  static const char *const odd[] = {"a", "1", "k", NULL};
  spectator_config_t bad[24];
  const char *want[24];
  size_t n = 0;
#define ADD(field_assign, text)       \
  do {                                \
    spectator_config_init(&bad[n]);   \
    bad[n].env_common_tags = 0;       \
    bad[n].auto_start = 0;            \
    spectator_config_t *c_ = &bad[n]; \
    field_assign;                     \
    want[n++] = text;                 \
  } while (0)
  ADD(c_->frequency_s = 0, "frequency_s");
  ADD(c_->frequency_s = -1, "frequency_s");
  ADD(c_->frequency_s = NAN, "frequency_s");
  ADD(c_->frequency_s = INFINITY, "frequency_s");
  ADD(c_->frequency_s = 1e12, "frequency_s"); /* ns deadlines would overflow */
  ADD(c_->batch_size = 0, "batch_size");
  ADD(c_->timeout_s = 1e12, "timeout_s");
  ADD(c_->connect_timeout_s = INFINITY, "connect_timeout_s");
  ADD(c_->timeout_s = 0, "timeout_s");
  ADD(c_->connect_timeout_s = -0.5, "connect_timeout_s");
  ADD(c_->max_meters = 0, "max_meters");
  ADD(c_->meter_ttl_s = 0, "meter_ttl_s");
  ADD(c_->uri = "ftp://example.com/api/v4/update", "uri");
  ADD(c_->uri = "localhost:7101/api/v4/update", "uri");
  ADD(c_->common_tags = empty_value, "common_tags");
  ADD(c_->common_tags = empty_key, "common_tags");
  ADD(c_->common_tags = odd, "common_tags");
#undef ADD
  for (size_t i = 0; i < n; i++) {
    tu_log_clear();
    assert_null(spectator_registry_new(&bad[i]));
    tu_assert_log_count(1);
    tu_assert_log_line(0, SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_INIT, "invalid configuration",
                       want[i]);
  }
}

static void registry_new_accepts_http_and_https_uris_and_copies_config_strings(void **state) {
  (void)state;
  char uri[] = "HTTPS://atlas.example.com/api/v4/update";
  char k[] = "cluster", v[] = "main";
  const char *common[] = {k, v, NULL};
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.uri = uri;
  cfg.auto_start = 0;
  cfg.env_common_tags = 0;
  cfg.common_tags = common;
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  assert_non_null(reg);
  uri[0] = k[0] = v[0] = 'X';
  assert_string_equal(reg->cfg.uri, "HTTPS://atlas.example.com/api/v4/update");
  assert_string_equal(reg->cfg.common_tags[0], "cluster");
  assert_string_equal(reg->cfg.common_tags[1], "main");
  assert_null(reg->cfg.common_tags[2]);
  spectator_registry_free(reg);

  cfg.uri = "http://localhost:7101/api/v4/update";
  cfg.common_tags = NULL;
  reg = spectator_registry_new(&cfg);
  assert_non_null(reg);
  assert_string_equal(reg->cfg.uri, "http://localhost:7101/api/v4/update");
  assert_null(reg->cfg.common_tags[0]);
  spectator_registry_free(reg);
  tu_assert_log_count(0);
}

static void registry_new_with_a_null_config_uses_the_defaults(void **state) {
  (void)state;
  spectator_registry_t *reg = spectator_registry_new(NULL);
  assert_non_null(reg);
  assert_true(reg->cfg.frequency_s == 5.0);
  assert_int_equal(reg->cfg.batch_size, 10000);
  assert_int_equal(reg->cfg.max_meters, 100000);
  assert_true(reg->cfg.meter_ttl_s == 900);
  assert_null(reg->cfg.uri);
  spectator_registry_free(reg);
}

static long new_registry_with_max_meters(void *p) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  cfg.max_meters = *(size_t *)p;
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  if (!reg) return 0;
  long ok = !spectator__is_noop(spectator_registry_counter(reg, "c", NULL)) &&
            spectator_registry_size(reg) == 1;
  spectator_registry_free(reg);
  return ok ? 1 : 2;
}

static void registry_new_accepts_a_huge_max_meters_as_no_practical_cap(void **state) {
  (void)state;
  /* "no cap" written as SIZE_MAX (also what SPECTATOR_MAX_METERS accepts);
   * run in a child: an allocation sized from the cap may abort under ASan */
  size_t caps[] = {SIZE_MAX};
  for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
    assert_int_equal(tu_in_child(new_registry_with_max_meters, &caps[i]), 1);
    tu_assert_log_count(0);
  }
}

/* ------------------------------------------------------------------------ */
/* Gauges and TTLs                                                           */
/* ------------------------------------------------------------------------ */

/* Snapshot and return whether gauge `name` (no tags) was reported, and its value. */
static bool snap_gauge(spectator_registry_t *reg, const char *name, double *v) {
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  bool found = tu_find(ms, name, SPECTATOR_TAGS("statistic", "gauge"), v);
  spectator_measurements_free(ms);
  return found;
}

static void gauge_reports_its_last_value_until_the_ttl_boundary_and_not_after(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  tu_clock_set(&clock, 1000 * NS);
  spectator_registry_t *reg = mt_registry_with_ttl(&clock, 0, 10); /* meter TTL 10 s */
  spectator_gauge_t *g = spectator_registry_gauge(reg, "g", NULL);
  double v = 0;
  assert_false(snap_gauge(reg, "g", &v)); /* never set: nothing */

  spectator_gauge_set(g, 42);
  tu_clock_advance(&clock, 1 * NS);
  assert_true(snap_gauge(reg, "g", &v)); /* the set is seen at t = 1001 s */
  assert_true(v == 42);
  tu_clock_advance(&clock, 5 * NS);
  assert_true(snap_gauge(reg, "g", &v));
  assert_true(v == 42);
  tu_clock_set(&clock, 1011 * NS); /* exactly TTL after the snapshot that saw the set */
  assert_true(snap_gauge(reg, "g", &v));
  assert_true(v == 42);
  tu_clock_set(&clock, 1011 * NS + 1);
  assert_false(snap_gauge(reg, "g", &v));
  tu_clock_advance(&clock, 100 * NS);
  assert_false(snap_gauge(reg, "g", &v));
  assert_true(spectator_gauge_get(g) == 42); /* the value is kept, just not reported */

  /* a new set brings it back, with a fresh TTL */
  spectator_gauge_set(g, 7);
  assert_true(snap_gauge(reg, "g", &v));
  assert_true(v == 7);
  tu_clock_advance(&clock, 10 * NS);
  assert_true(snap_gauge(reg, "g", &v));
  tu_clock_advance(&clock, 1);
  assert_false(snap_gauge(reg, "g", &v));
  spectator_registry_free(reg);
}

/* The TTL gauge `name` shows: set it, then look for the last snapshot time
 * that still reports it, checking `expected` and one nanosecond more. Returns
 * expected when the gauge is reported exactly that long, else -1. */
static int64_t ttl_seen(spectator_registry_t *reg, tu_clock_t *clock, const char *name,
                        int64_t expected) {
  double v;
  spectator_gauge_set(spectator_registry_gauge(reg, name, NULL), 1);
  if (!snap_gauge(reg, name, &v)) return -1; /* the set is seen now */
  tu_clock_advance(clock, expected);
  bool at = snap_gauge(reg, name, &v);
  tu_clock_advance(clock, 1);
  bool after = snap_gauge(reg, name, &v);
  return at && !after ? expected : -1;
}

static void gauge_with_ttl_overrides_the_registry_ttl_for_that_gauge_only(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry_with_ttl(&clock, 0, 900);
  spectator_gauge_t *short_g = spectator_registry_gauge_with_ttl(reg, "short", NULL, 2);
  spectator_gauge_t *plain = spectator_registry_gauge(reg, "plain", NULL);
  spectator_gauge_set(short_g, 1);
  spectator_gauge_set(plain, 2);
  double v;
  assert_true(snap_gauge(reg, "short", &v)); /* t = 0 */
  tu_clock_set(&clock, 2 * NS);
  assert_true(snap_gauge(reg, "short", &v));
  tu_clock_set(&clock, 2 * NS + 1);
  assert_false(snap_gauge(reg, "short", &v));
  assert_true(snap_gauge(reg, "plain", &v));
  assert_true(v == 2);
  tu_clock_set(&clock, 900 * NS);
  assert_true(snap_gauge(reg, "plain", &v));
  tu_clock_set(&clock, 900 * NS + 1);
  assert_false(snap_gauge(reg, "plain", &v));

  /* an existing gauge keeps its TTL whatever a later lookup asks */
  assert_ptr_equal(spectator_registry_gauge_with_ttl(reg, "short", NULL, 100), short_g);
  assert_int_equal(ttl_seen(reg, &clock, "short", 2 * NS), 2 * NS);
  assert_ptr_equal(spectator_registry_gauge_with_ttl(reg, "plain", NULL, 1), plain);
  assert_int_equal(ttl_seen(reg, &clock, "plain", 900 * NS), 900 * NS);

  /* a TTL that is not finite and positive keeps the registry default */
  const struct {
    const char *name;
    double ttl_s;
  } bad[] = {{"z", 0}, {"n", -3}, {"nan", NAN}, {"inf", INFINITY}};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    spectator_registry_gauge_with_ttl(reg, bad[i].name, NULL, bad[i].ttl_s);
    assert_int_equal(ttl_seen(reg, &clock, bad[i].name, 900 * NS), 900 * NS);
  }
  spectator_registry_free(reg);
}

static void gauge_set_to_nan_stops_reporting_at_once(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = mt_registry_with_ttl(&clock, 0, 900);
  spectator_gauge_t *g = spectator_registry_gauge(reg, "g", NULL);
  spectator_gauge_set(g, 3);
  double v;
  assert_true(snap_gauge(reg, "g", &v));
  spectator_gauge_set(g, NAN);
  assert_false(snap_gauge(reg, "g", &v));
  tu_clock_advance(&clock, NS);
  assert_false(snap_gauge(reg, "g", &v));
  spectator_registry_free(reg);
}

/* ------------------------------------------------------------------------ */
/* The global registry                                                       */
/* ------------------------------------------------------------------------ */

typedef struct {
  pthread_barrier_t *barrier;
  spectator_registry_t *reg;
  spectator_counter_t *counter;
} global_arg_t;

static void *global_worker(void *p) {
  global_arg_t *a = p;
  pthread_barrier_wait(a->barrier);
  a->counter = spectator_counter("global.requests", SPECTATOR_TAGS("b", "2", "a", "1"));
  a->reg = spectator_global_registry();
  return NULL;
}

static void global_registry_is_stable_and_spectator_counter_goes_to_it(void **state) {
  (void)state;
  /* main() set SPECTATOR_DISABLE_AUTO_START=1 and removed SPECTATOR_URI: the
   * first use must not try to start (which would log "no URI configured").
   * The first use happens in 4 threads at once. */
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, 4);
  global_arg_t args[4];
  pthread_t th[4];
  for (int t = 0; t < 4; t++) {
    args[t] = (global_arg_t){&barrier, NULL, NULL};
    assert_int_equal(pthread_create(&th[t], NULL, global_worker, &args[t]), 0);
  }
  for (int t = 0; t < 4; t++) assert_int_equal(pthread_join(th[t], NULL), 0);
  pthread_barrier_destroy(&barrier);
  spectator_counter_t *c = args[0].counter;
  spectator_registry_t *g = spectator_global_registry();
  assert_non_null(g);
  for (int t = 0; t < 4; t++) {
    assert_ptr_equal(args[t].reg, g);
    assert_ptr_equal(args[t].counter, c);
  }
  assert_ptr_equal(spectator_global_registry(), g);
  assert_int_equal(spectator_registry_size(g), 1);
  tu_assert_log_count(0);
  assert_true(g->is_global);
  assert_false(spectator__is_noop(c));
  assert_ptr_equal(
      spectator_registry_counter(g, "global.requests", SPECTATOR_TAGS("a", "1", "b", "2")), c);
  assert_ptr_equal(spectator_counter("global.requests", SPECTATOR_TAGS("a", "1", "b", "2")), c);
  spectator_counter_increment(c);
  spectator_counter_add(spectator_counter("global.requests", SPECTATOR_TAGS("a", "1", "b", "2")),
                        2);
  spectator_timer_record(spectator_timer("global.latency", NULL), 0.25);
  spectator_gauge_set(spectator_gauge("global.gauge", NULL), 12);

  spectator_measurements_t *ms = spectator_registry_snapshot(g);
  tu_assert_measurement(ms, "global.requests",
                        SPECTATOR_TAGS("a", "1", "b", "2", "statistic", "count"), 3);
  tu_assert_measurement(ms, "global.latency", SPECTATOR_TAGS("statistic", "totalTime"), 0.25);
  tu_assert_measurement(ms, "global.gauge", SPECTATOR_TAGS("statistic", "gauge"), 12);
  spectator_measurements_free(ms);

  /* starting without a URI is refused and says so */
  assert_int_equal(spectator_start(), SPECTATOR_ENOURI);
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT, "no URI configured");
  spectator_stop();
  assert_ptr_equal(spectator_global_registry(), g);
}

/* A registry with a URI that is freed with values no publish sent (here it
 * was never started) says so in one warning; a registry without a URI is
 * read through snapshots: nothing to say. */
static void freeing_a_registry_with_unsent_values_says_so_once(void **state) {
  (void)state;
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.uri = "http://127.0.0.1:1/api/v4/update";
  cfg.auto_start = 0;
  cfg.env_common_tags = 0;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  assert_non_null(r);
  spectator_counter_increment(spectator_registry_counter(r, "unsent.a", NULL));
  spectator_counter_increment(spectator_registry_counter(r, "unsent.b", NULL));
  spectator_gauge_set(spectator_registry_gauge(r, "unsent.c", NULL), 1);
  spectator_registry_counter(r, "unsent.idle", NULL); /* nothing recorded */
  spectator_registry_free(r);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "will never be sent"), 1);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "3 meters recorded"), 1);

  spectator_registry_t *collect_only = mt_registry(NULL, 0);
  spectator_counter_increment(spectator_registry_counter(collect_only, "kept", NULL));
  spectator_registry_free(collect_only);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "will never be sent"), 1);
}

int main(void) {
  /* Before anything touches the global registry. */
  setenv("SPECTATOR_DISABLE_AUTO_START", "1", 1);
  unsetenv("SPECTATOR_URI");
  const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, mt_setup_capture, mt_teardown_capture)
      T(equal_ids_return_the_same_meter),
      T(every_meter_type_returns_the_same_pointer_for_an_equal_id),
      T(lookups_by_id_return_the_same_meter_as_by_name),
      T(lookups_on_a_null_registry_give_noop_meters),
      T(bad_names_and_tags_give_a_noop_meter_and_one_log_line),
      T(a_type_conflict_gives_a_noop_that_is_never_reported_and_logs_once),
      T(the_11th_distinct_id_past_a_cap_of_10_gives_a_noop_a_count_and_a_warning),
      T(warnings_about_the_cap_name_every_distinct_name_pattern_and_limit_repeats_of_one),
      T(self_metrics_are_outside_the_cap_within_a_reserve_of_their_own),
      T(registry_size_counts_meters_but_not_noops),
      T(four_threads_racing_to_create_the_same_1000_ids_get_the_same_meters),
      T(snapshots_while_4_threads_create_meters_lose_no_increment),
      T(four_threads_racing_past_the_cap_create_exactly_max_meters),
      T(registry_free_releases_every_meter_id_and_table),
      T(registry_new_rejects_invalid_configs_with_null_and_a_log_line),
      T(registry_new_accepts_http_and_https_uris_and_copies_config_strings),
      T(registry_new_with_a_null_config_uses_the_defaults),
      T(registry_new_accepts_a_huge_max_meters_as_no_practical_cap),
      T(gauge_reports_its_last_value_until_the_ttl_boundary_and_not_after),
      T(gauge_with_ttl_overrides_the_registry_ttl_for_that_gauge_only),
      T(gauge_set_to_nan_stops_reporting_at_once),
      T(global_registry_is_stable_and_spectator_counter_goes_to_it),
      T(freeing_a_registry_with_unsent_values_says_so_once),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
