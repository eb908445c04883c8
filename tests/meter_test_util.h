/*
 * Helpers for the meter tests (test_counter.c, test_timer.c, ... test_bad_input.c),
 * on top of test_util.h (log capture, fake clock, forked children):
 *
 * - mt_registry(): an explicit registry with no URI, no environment common
 *   tags, no auto start, an optional fake clock and an optional meter cap;
 *   mt_registry_with_ttl() also sets the registry's meter TTL.
 * - mt_snapshot(): take a snapshot, asserting it is not NULL.
 * - mt_assert_measurement(): assert that a snapshot holds a measurement with
 *   this name and exactly these tags (statistic included), this op and exactly
 *   this value. On failure the whole snapshot is printed.
 * - mt_assert_absent(), mt_assert_measurement_count(), mt_assert_sorted().
 * - mt_expect_single(): snapshot a registry and assert that it holds exactly
 *   one measurement, with this name, tags, op and value.
 * - mt_expect_single_count(): mt_expect_single() for an untagged counter:
 *   name{statistic=count}, op add, this value.
 * - mt_expect_empty(): snapshot a registry and assert that it is empty.
 * - mt_assert_timer_stats(), mt_assert_summary_stats(): the four statistics of
 *   a timer or distribution summary tagged {k=v}; mt_assert_timer_alone() and
 *   mt_assert_summary_alone() also assert that nothing else is in the snapshot.
 *
 * Everything is static inline (or a macro), so unused helpers cost no warning.
 * Include after <cmocka.h>.
 */
#ifndef SPECTATOR_METER_TEST_UTIL_H
#define SPECTATOR_METER_TEST_UTIL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "spectator.h"
#include "test_util.h"

#define MT_NS_PER_S 1000000000LL

/* An explicit registry for tests: uri NULL (collect, never publish),
 * env_common_tags 0, auto_start 0, the fake clock when clock is not NULL,
 * max_meters when it is not 0 and meter_ttl_s when it is above 0. */
static inline spectator_registry_t *mt_registry_with_ttl(tu_clock_t *clock, size_t max_meters,
                                                         double meter_ttl_s) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.uri = NULL;
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  if (max_meters) cfg.max_meters = max_meters;
  if (meter_ttl_s > 0) cfg.meter_ttl_s = meter_ttl_s;
  if (clock) tu_clock_install(&cfg, clock);
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  assert_non_null(reg);
  return reg;
}

/* mt_registry_with_ttl() with the default meter TTL. */
static inline spectator_registry_t *mt_registry(tu_clock_t *clock, size_t max_meters) {
  return mt_registry_with_ttl(clock, max_meters, 0);
}

static inline spectator_measurements_t *mt_snapshot(spectator_registry_t *reg) {
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  assert_non_null(ms);
  return ms;
}

/* Print every measurement of a snapshot as "name{k=v,...} op=N value=V". */
static inline void mt_dump(const spectator_measurements_t *ms) {
  size_t n = spectator_measurements_count(ms);
  fprintf(stderr, "  snapshot with %zu measurements:\n", n);
  for (size_t i = 0; i < n; i++) {
    const spectator_measurement_t *m = spectator_measurements_get(ms, i);
    char buf[512];
    spectator_id_format(m->id, buf, sizeof(buf));
    fprintf(stderr, "    [%zu] %s op=%d value=%.17g\n", i, buf, m->op, m->value);
  }
}

/* Assert a measurement (name, exact tags incl. statistic, op, exact value). */
#define mt_assert_measurement(ms, name, tags, expected_op, expected_value)                       \
  do {                                                                                           \
    const spectator_measurement_t *mt_m_ = spectator_measurements_find((ms), (name), (tags));    \
    if (!mt_m_) {                                                                                \
      print_error("%s:%d: no measurement named %s with the expected tags\n", __FILE__, __LINE__, \
                  (name));                                                                       \
      mt_dump(ms);                                                                               \
      fail();                                                                                    \
    }                                                                                            \
    if (mt_m_->op != (expected_op) || !(mt_m_->value == (double)(expected_value))) {             \
      print_error("%s:%d: %s: op=%d value=%.17g, expected op=%d value=%.17g\n", __FILE__,        \
                  __LINE__, (name), mt_m_->op, mt_m_->value, (int)(expected_op),                 \
                  (double)(expected_value));                                                     \
      mt_dump(ms);                                                                               \
      fail();                                                                                    \
    }                                                                                            \
  } while (0)

/* Assert that a snapshot has no measurement with this name and these tags. */
#define mt_assert_absent(ms, name, tags)                                             \
  do {                                                                               \
    if (spectator_measurements_find((ms), (name), (tags))) {                         \
      print_error("%s:%d: unexpected measurement %s\n", __FILE__, __LINE__, (name)); \
      mt_dump(ms);                                                                   \
      fail();                                                                        \
    }                                                                                \
  } while (0)

/* Assert the number of measurements in a snapshot. */
#define mt_assert_measurement_count(ms, expected)                                       \
  do {                                                                                  \
    size_t mt_n_ = spectator_measurements_count(ms);                                    \
    if (mt_n_ != (size_t)(expected)) {                                                  \
      print_error("%s:%d: %zu measurements, expected %zu\n", __FILE__, __LINE__, mt_n_, \
                  (size_t)(expected));                                                  \
      mt_dump(ms);                                                                      \
      fail();                                                                           \
    }                                                                                   \
  } while (0)

/* Compare two ids as the snapshot documents its order: by name, then by the
 * canonical (key-sorted) tags. */
static inline int mt_id_cmp(const spectator_id_t *a, const spectator_id_t *b) {
  int c = strcmp(spectator_id_name(a), spectator_id_name(b));
  if (c) return c;
  size_t na = spectator_id_tag_count(a), nb = spectator_id_tag_count(b);
  for (size_t i = 0; i < na && i < nb; i++) {
    c = strcmp(spectator_id_tag_key(a, i), spectator_id_tag_key(b, i));
    if (c) return c;
    c = strcmp(spectator_id_tag_value(a, i), spectator_id_tag_value(b, i));
    if (c) return c;
  }
  return na < nb ? -1 : (na > nb);
}

/* Assert that the snapshot is sorted by name then tags, that every id carries
 * a statistic tag, that ops are add or max and that values are finite. */
static inline void mt_assert_sorted(const spectator_measurements_t *ms) {
  size_t n = spectator_measurements_count(ms);
  for (size_t i = 0; i < n; i++) {
    const spectator_measurement_t *m = spectator_measurements_get(ms, i);
    assert_non_null(m);
    assert_non_null(spectator_id_tag(m->id, "statistic"));
    assert_true(m->op == SPECTATOR_OP_ADD || m->op == SPECTATOR_OP_MAX);
    assert_true(isfinite(m->value));
    if (i > 0 && mt_id_cmp(spectator_measurements_get(ms, i - 1)->id, m->id) >= 0) {
      print_error("measurements %zu and %zu are not in order\n", i - 1, i);
      mt_dump(ms);
      fail();
    }
  }
  assert_null(spectator_measurements_get(ms, n));
}

/* Snapshot reg and assert it holds exactly one measurement, this one. */
#define mt_expect_single(reg, name, tags, expected_op, expected_value)              \
  do {                                                                              \
    spectator_measurements_t *mt_ms_ = mt_snapshot(reg);                            \
    mt_assert_measurement_count(mt_ms_, 1);                                         \
    mt_assert_measurement(mt_ms_, (name), (tags), (expected_op), (expected_value)); \
    spectator_measurements_free(mt_ms_);                                            \
  } while (0)

/* Snapshot reg and assert it holds exactly one measurement: the count of the
 * untagged counter `name` (name{statistic=count}, op add) with this value. */
#define mt_expect_single_count(reg, name, expected_value)                                 \
  mt_expect_single((reg), (name), SPECTATOR_TAGS("statistic", "count"), SPECTATOR_OP_ADD, \
                   (expected_value))

/* Assert the four statistics of a timer (total_statistic "totalTime", in
 * seconds) or a distribution summary ("totalAmount") named `name` and tagged
 * {k=v}: count, total and totalOfSquares with op add, max with op max. Other
 * measurements may be in the snapshot too. */
static inline void mt_assert_four_stats(const spectator_measurements_t *ms, const char *name,
                                        const char *total_statistic, double count, double total,
                                        double squares, double max) {
  mt_assert_measurement(ms, name, SPECTATOR_TAGS("k", "v", "statistic", "count"), SPECTATOR_OP_ADD,
                        count);
  mt_assert_measurement(ms, name, SPECTATOR_TAGS("k", "v", "statistic", total_statistic),
                        SPECTATOR_OP_ADD, total);
  mt_assert_measurement(ms, name, SPECTATOR_TAGS("k", "v", "statistic", "totalOfSquares"),
                        SPECTATOR_OP_ADD, squares);
  mt_assert_measurement(ms, name, SPECTATOR_TAGS("k", "v", "statistic", "max"), SPECTATOR_OP_MAX,
                        max);
}

/* The four statistics of timer `name`{k=v}: count, totalTime (s), totalOfSquares (s^2), max (s). */
static inline void mt_assert_timer_stats(const spectator_measurements_t *ms, const char *name,
                                         double count, double total, double squares, double max) {
  mt_assert_four_stats(ms, name, "totalTime", count, total, squares, max);
}

/* The four statistics of distribution summary `name`{k=v}: count, totalAmount,
 * totalOfSquares, max. */
static inline void mt_assert_summary_stats(const spectator_measurements_t *ms, const char *name,
                                           double count, double total, double squares, double max) {
  mt_assert_four_stats(ms, name, "totalAmount", count, total, squares, max);
}

/* The snapshot holds exactly four measurements: those of timer `name`{k=v}. */
static inline void mt_assert_timer_alone(const spectator_measurements_t *ms, const char *name,
                                         double count, double total, double squares, double max) {
  mt_assert_measurement_count(ms, 4);
  mt_assert_timer_stats(ms, name, count, total, squares, max);
}

/* The snapshot holds exactly four measurements: those of distribution summary
 * `name`{k=v}. */
static inline void mt_assert_summary_alone(const spectator_measurements_t *ms, const char *name,
                                           double count, double total, double squares, double max) {
  mt_assert_measurement_count(ms, 4);
  mt_assert_summary_stats(ms, name, count, total, squares, max);
}

/* Snapshot reg and assert it is empty. */
#define mt_expect_empty(reg)                             \
  do {                                                   \
    spectator_measurements_t *mt_ms_ = mt_snapshot(reg); \
    mt_assert_measurement_count(mt_ms_, 0);              \
    spectator_measurements_free(mt_ms_);                 \
  } while (0)

/* Quiet the default stderr handler for tests that are not about logging:
 * capture everything (the buffer is bounded). */
static inline int mt_setup_capture(void **state) {
  (void)state;
  spectator_log_set_level(SPECTATOR_LOG_WARN);
  tu_log_capture();
  return 0;
}

static inline int mt_teardown_capture(void **state) {
  (void)state;
  tu_log_release();
  return 0;
}

#endif /* SPECTATOR_METER_TEST_UTIL_H */
