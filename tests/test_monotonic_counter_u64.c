/*
 * Unit tests for src/monotonic_counter_u64.c: a uint64 monotonic counter
 * reports (statistic=count, op add) the increase of the value set between
 * snapshots, computed on integers (exact near 2^64), a decrease being a
 * wrap-around modulo 2^64 as spectatord computes it.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "meter.h"
#include "meter_test_util.h"

#define COUNT_TAGS SPECTATOR_TAGS("nic", "eth0", "statistic", "count")

static spectator_monotonic_counter_u64_t *new_u64(spectator_registry_t *reg) {
  spectator_monotonic_counter_u64_t *m =
      spectator_registry_monotonic_counter_u64(reg, "net.bytes", SPECTATOR_TAGS("nic", "eth0"));
  assert_false(spectator__is_noop(m));
  return m;
}

static void u64_counter_first_snapshot_after_the_first_set_reports_nothing(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_monotonic_counter_u64_t *m = new_u64(reg);
  mt_expect_empty(reg); /* never set */
  spectator_monotonic_counter_u64_set(m, 0);
  mt_expect_empty(reg); /* the base (0 is a value like any other) */
  spectator_monotonic_counter_u64_set(m, 1000);
  spectator_monotonic_counter_u64_set(m, 1500); /* the last value of the interval counts */
  mt_expect_single(reg, "net.bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 1500);
  mt_expect_empty(reg); /* no set: no growth */
  spectator_monotonic_counter_u64_set(m, 1500);
  mt_expect_empty(reg); /* the same value: no growth */
  spectator_monotonic_counter_u64_set(m, 1501);
  mt_expect_single(reg, "net.bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 1);
  spectator_registry_free(reg);
}

/* Near 2^64 a double cannot tell these values apart; the integers can. */
static void u64_counter_is_exact_near_two_to_the_64(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_monotonic_counter_u64_t *m = new_u64(reg);
  const uint64_t top = UINT64_MAX - 1000;
  assert_true((double)top == (double)(top + 999)); /* what the double counter would see */
  spectator_monotonic_counter_u64_set(m, top);
  mt_expect_empty(reg);
  spectator_monotonic_counter_u64_set(m, top + 999);
  mt_expect_single(reg, "net.bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 999);
  spectator_monotonic_counter_u64_set(m, UINT64_MAX);
  mt_expect_single(reg, "net.bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 1);
  assert_true(spectator_monotonic_counter_u64_get(m) == UINT64_MAX);
  /* Just above 2^53, where a double starts skipping odd integers. */
  spectator_monotonic_counter_u64_set(m, (UINT64_C(1) << 53) + 1);
  spectator_measurements_free(mt_snapshot(reg)); /* a wrap: see the next test */
  spectator_monotonic_counter_u64_set(m, (UINT64_C(1) << 53) + 4);
  mt_expect_single(reg, "net.bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 3);
  spectator_registry_free(reg);
}

static void u64_counter_treats_a_decrease_as_a_wrap_around(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_monotonic_counter_u64_t *m = new_u64(reg);
  spectator_monotonic_counter_u64_set(m, UINT64_MAX - 9);
  mt_expect_empty(reg);
  spectator_monotonic_counter_u64_set(m, 5); /* wrapped: 9 to reach UINT64_MAX, 1 to 0, 5 */
  mt_expect_single(reg, "net.bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 15);
  /* A 32-bit counter that wrapped, as spectatord would see it: modulo 2^64. */
  spectator_monotonic_counter_u64_set(m, 100);
  mt_expect_single(reg, "net.bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 95);
  spectator_monotonic_counter_u64_set(m, 40);
  mt_expect_single(reg, "net.bytes", COUNT_TAGS, SPECTATOR_OP_ADD,
                   (double)(UINT64_C(40) - UINT64_C(100)));
  spectator_registry_free(reg);
}

static void u64_counter_with_a_statistic_tag_keeps_it(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_monotonic_counter_u64_t *m = spectator_registry_monotonic_counter_u64(
      reg, "net.bytes", SPECTATOR_TAGS("statistic", "totalAmount"));
  spectator_monotonic_counter_u64_set(m, 1);
  mt_expect_empty(reg);
  spectator_monotonic_counter_u64_set(m, 8);
  mt_expect_single(reg, "net.bytes", SPECTATOR_TAGS("statistic", "totalAmount"), SPECTATOR_OP_ADD,
                   7);
  spectator_registry_free(reg);
}

static void u64_counter_null_and_no_op_meters_do_nothing(void **state) {
  (void)state;
  spectator_monotonic_counter_u64_set(NULL, 5);
  assert_true(spectator_monotonic_counter_u64_get(NULL) == 0);
  tu_log_capture();
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_monotonic_counter_u64_t *bad =
      spectator_registry_monotonic_counter_u64(reg, "x", SPECTATOR_TAGS("odd"));
  assert_true(spectator__is_noop(bad));
  assert_true(tu_log_count() >= 1);
  spectator_monotonic_counter_u64_set(bad, 5);
  assert_true(spectator_monotonic_counter_u64_get(bad) == 0);
  assert_true(spectator__is_noop(spectator_registry_monotonic_counter_u64(NULL, "x", NULL)));
  assert_true(spectator__is_noop(spectator_registry_monotonic_counter_u64_id(reg, NULL)));
  spectator_registry_monotonic_counter(reg, "double", NULL);
  assert_true(spectator__is_noop(spectator_registry_monotonic_counter_u64(reg, "double", NULL)));
  tu_log_release();
  mt_expect_empty(reg);
  spectator_registry_free(reg);
}

/* One-shot calls take a double: exact up to 2^53, and values outside
 * [0, 2^64) are ignored. */
static void u64_counter_one_shot_calls_set_it(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  const char *const *tags = SPECTATOR_TAGS("nic", "eth0");
  spectator_registry_record(reg, SPECTATOR_METER_MONOTONIC_COUNTER_U64, "net.bytes", tags, 10);
  mt_expect_empty(reg);
  spectator_registry_record(reg, SPECTATOR_METER_MONOTONIC_COUNTER_U64, "net.bytes", tags, 25);
  spectator_registry_record(reg, SPECTATOR_METER_MONOTONIC_COUNTER_U64, "net.bytes", tags, -1);
  spectator_registry_record(reg, SPECTATOR_METER_MONOTONIC_COUNTER_U64, "net.bytes", tags, NAN);
  spectator_registry_record(reg, SPECTATOR_METER_MONOTONIC_COUNTER_U64, "net.bytes", tags,
                            18446744073709551616.0);
  mt_expect_single(reg, "net.bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 15);
  spectator_registry_free(reg);
}

static long child_starts_over(void *p) {
  spectator_registry_t *reg = p;
  spectator_monotonic_counter_u64_t *m = new_u64(reg);
  /* The parent's pending increase is the parent's. */
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  size_t n = spectator_measurements_count(ms);
  spectator_measurements_free(ms);
  if (n != 0) return 1;
  spectator_monotonic_counter_u64_set(m, 500);
  ms = spectator_registry_snapshot(reg); /* the child's first set: the base */
  n = spectator_measurements_count(ms);
  spectator_measurements_free(ms);
  if (n != 0) return 2;
  spectator_monotonic_counter_u64_set(m, 530);
  ms = spectator_registry_snapshot(reg);
  double v = 0;
  bool found = tu_find(ms, "net.bytes", COUNT_TAGS, &v);
  spectator_measurements_free(ms);
  return found && v == 30 ? 0 : 3;
}

static void u64_counter_starts_over_in_a_forked_child(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  spectator_monotonic_counter_u64_t *m = new_u64(reg);
  spectator_monotonic_counter_u64_set(m, 100);
  mt_expect_empty(reg);
  spectator_monotonic_counter_u64_set(m, 170);
  assert_int_equal(tu_in_child(child_starts_over, reg), 0);
  mt_expect_single(reg, "net.bytes", COUNT_TAGS, SPECTATOR_OP_ADD, 70);
  spectator_registry_free(reg);
}

#define WRITES 200000

typedef struct {
  spectator_monotonic_counter_u64_t *m;
  _Atomic bool done;
} writer_t;

/* One writer sets a growing count (as a kernel counter grows) that starts
 * near 2^64 and wraps, while snapshots are taken: the increases reported add
 * up to exactly the growth. */
static void *writer(void *p) {
  writer_t *w = p;
  uint64_t v = UINT64_MAX - WRITES / 2;
  for (int i = 0; i < WRITES; i++) spectator_monotonic_counter_u64_set(w->m, v += 3);
  atomic_store(&w->done, true);
  return NULL;
}

static void u64_counter_increases_add_up_exactly_under_concurrent_snapshots(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  writer_t w = {new_u64(reg), false};
  spectator_monotonic_counter_u64_set(w.m, UINT64_MAX - WRITES / 2);
  mt_expect_empty(reg);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, writer, &w), 0);
  double total = 0;
  bool done = false;
  while (!done) {
    done = atomic_load(&w.done); /* one more snapshot after the last set */
    spectator_measurements_t *ms = mt_snapshot(reg);
    double v = 0;
    if (tu_find(ms, "net.bytes", COUNT_TAGS, &v)) total += v;
    spectator_measurements_free(ms);
  }
  pthread_join(t, NULL);
  assert_true(total == 3.0 * WRITES);
  spectator_registry_free(reg);
}

static void u64_counter_of_the_global_registry(void **state) {
  (void)state;
  setenv("SPECTATOR_DISABLE_AUTO_START", "1", 1);
  spectator_monotonic_counter_u64_t *m = spectator_monotonic_counter_u64("global.net.bytes", NULL);
  assert_false(spectator__is_noop(m));
  assert_ptr_equal(m, spectator_monotonic_counter_u64("global.net.bytes", NULL));
  spectator_monotonic_counter_u64_set(m, 7);
  assert_true(spectator_monotonic_counter_u64_get(m) == 7);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(u64_counter_first_snapshot_after_the_first_set_reports_nothing),
      cmocka_unit_test(u64_counter_is_exact_near_two_to_the_64),
      cmocka_unit_test(u64_counter_treats_a_decrease_as_a_wrap_around),
      cmocka_unit_test(u64_counter_with_a_statistic_tag_keeps_it),
      cmocka_unit_test(u64_counter_null_and_no_op_meters_do_nothing),
      cmocka_unit_test(u64_counter_one_shot_calls_set_it),
      cmocka_unit_test(u64_counter_starts_over_in_a_forked_child),
      cmocka_unit_test(u64_counter_increases_add_up_exactly_under_concurrent_snapshots),
      cmocka_unit_test(u64_counter_of_the_global_registry),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
