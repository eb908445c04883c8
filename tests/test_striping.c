/*
 * White-box tests of the stripes that contended counters and timers spread to
 * (src/counter.c, src/timer.c; the stripes word and pool are in src/stripes.h).
 *
 * Contention is forced where a test needs it: spectator__stripes_claim() is
 * what the recording thread calls after a failed CAS, so calling it makes a
 * meter striped (or pending) deterministically. Threads then record from
 * several cells at once, and every test checks exactness: a snapshot holds
 * every update exactly once, and the next one holds nothing.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "counter.h"
#include "meter.h"
#include "registry.h"
#include "stripes.h"
#include "timer.h"
#include "test_util.h"

#define THREADS 4
#define PER_THREAD 200000

static spectator_registry_t *new_registry(void) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  assert_non_null(reg);
  return reg;
}

static bool is_striped(uintptr_t w) { return w > SPECTATOR__STRIPES_PENDING; }

/* Make a counter contended as a failed CAS would. */
static uintptr_t force_counter(spectator_counter_t *c) {
  return spectator__stripes_claim(c->src, &c->stripes);
}

static uintptr_t force_timer(spectator_timer_t *t) {
  return spectator__stripes_claim(t->st.src, &t->st.stripes);
}

static void expect_count(spectator_registry_t *reg, const char *name, double expected) {
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  tu_assert_measurement(ms, name, SPECTATOR_TAGS("statistic", "count"), expected);
  spectator_measurements_free(ms);
}

static void expect_empty(spectator_registry_t *reg) {
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  assert_int_equal(spectator_measurements_count(ms), 0);
  spectator_measurements_free(ms);
}

/* ------------------------------------------------------------------------ */
/* Threads                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct {
  spectator_counter_t *c;
  spectator_timer_t *t;
  pthread_barrier_t *start;
  int index;
} worker_t;

static void *count_worker(void *arg) {
  worker_t *w = arg;
  pthread_barrier_wait(w->start);
  for (int i = 0; i < PER_THREAD; i++) {
    spectator_counter_increment(w->c);
    if (i % 4 == 0) spectator_counter_add(w->c, 0.5); /* the double path */
    if (i % 8 == 0) spectator_counter_add(w->c, 3);   /* a whole amount */
  }
  return NULL;
}

static void *time_worker(void *arg) {
  worker_t *w = arg;
  pthread_barrier_wait(w->start);
  for (int i = 0; i < PER_THREAD; i++)
    spectator_timer_record_ns(w->t, 1000 + (int64_t)w->index * PER_THREAD + i);
  return NULL;
}

static void run_threads(void *(*fn)(void *), spectator_counter_t *c, spectator_timer_t *t) {
  pthread_t th[THREADS];
  worker_t w[THREADS];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, THREADS);
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker_t){c, t, &start, i};
    assert_int_equal(pthread_create(&th[i], NULL, fn, &w[i]), 0);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&start);
}

/* Per thread: PER_THREAD increments, PER_THREAD/4 adds of 0.5, PER_THREAD/8 of 3. */
static double expected_counter_total(int threads) {
  return threads * (PER_THREAD + 0.5 * (PER_THREAD / 4) + 3.0 * (PER_THREAD / 8));
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

static void counter_used_by_one_thread_never_spreads(void **state) {
  (void)state;
  spectator_registry_t *reg = new_registry();
  spectator_counter_t *c = spectator_registry_counter(reg, "c", NULL);
  for (int i = 0; i < 100000; i++) spectator_counter_increment(c);
  spectator_counter_add(c, 0.25);
  assert_int_equal(atomic_load(&c->stripes), 0);
  assert_true(spectator_counter_count(c) == 100000.25);
  expect_count(reg, "c", 100000.25);
  assert_int_equal(atomic_load(&c->stripes), 0);
  spectator_registry_free(reg);
}

static void counter_claims_stripes_from_the_pool_without_allocating(void **state) {
  (void)state;
  spectator_registry_t *reg = new_registry();
  spectator_counter_t *c = spectator_registry_counter(reg, "c", NULL);
  /* creating the counter prepared a pool */
  assert_non_null(atomic_load(&reg->stripes.pool));
  uintptr_t w = force_counter(c);
  assert_true(is_striped(w));
  assert_int_equal(atomic_load(&c->stripes), w);
  size_t n = spectator__stripes_count(w);
  assert_true(n >= 4 && n <= 64 && (n & (n - 1)) == 0);
  assert_int_equal((uintptr_t)spectator__stripes_cells(w) % SPECTATOR__CACHELINE, 0);
  /* claiming again changes nothing */
  assert_int_equal(force_counter(c), w);
  spectator_registry_free(reg);
}

static void striped_counter_sums_every_cell_once_and_resets_them(void **state) {
  (void)state;
  spectator_registry_t *reg = new_registry();
  spectator_counter_t *c = spectator_registry_counter(reg, "c", NULL);
  spectator_counter_increment(c); /* in the own cell, before the spread */
  uintptr_t w = force_counter(c);
  assert_true(is_striped(w));
  run_threads(count_worker, c, NULL);
  double expected = 1 + expected_counter_total(THREADS);
  assert_true(spectator_counter_count(c) == expected);
  expect_count(reg, "c", expected);
  /* every cell was exchanged with zero */
  spectator__cell_t *cells = spectator__stripes_cells(w);
  for (size_t i = 0; i < spectator__stripes_count(w); i++) {
    assert_int_equal(atomic_load(&((spectator__dsum_t *)(void *)&cells[i])->ints), 0);
    assert_int_equal(atomic_load(&((spectator__dsum_t *)(void *)&cells[i])->dbits), 0);
  }
  expect_empty(reg);
  /* and it keeps counting in the next interval */
  run_threads(count_worker, c, NULL);
  expect_count(reg, "c", expected_counter_total(THREADS));
  spectator_registry_free(reg);
}

static void counter_contended_for_real_is_exact(void **state) {
  (void)state;
  spectator_registry_t *reg = new_registry();
  spectator_counter_t *c = spectator_registry_counter(reg, "c", NULL);
  /* Whether the CAS ever fails depends on the scheduler: exact either way. */
  run_threads(count_worker, c, NULL);
  expect_count(reg, "c", expected_counter_total(THREADS));
  expect_empty(reg);
  spectator_registry_free(reg);
}

static void counter_with_an_empty_pool_stays_exact_and_gets_stripes_at_the_next_snapshot(
    void **state) {
  (void)state;
  spectator_registry_t *reg = new_registry();
  spectator_counter_t *c = spectator_registry_counter(reg, "c", NULL);
  /* use up the pool */
  spectator__stripe_pool_t *pool = atomic_load(&reg->stripes.pool);
  atomic_store(&pool->next, pool->nblocks);
  assert_int_equal(force_counter(c), SPECTATOR__STRIPES_PENDING);
  assert_int_equal(atomic_load(&reg->stripes.wanted), 1);
  /* pending: the own cell takes everything */
  run_threads(count_worker, c, NULL);
  double expected = expected_counter_total(THREADS);
  assert_true(spectator_counter_count(c) == expected);
  /* the snapshot refills the pool and hands the counter its stripes */
  expect_count(reg, "c", expected);
  assert_true(is_striped(atomic_load(&c->stripes)));
  assert_int_equal(atomic_load(&reg->stripes.wanted), 0);
  run_threads(count_worker, c, NULL);
  expect_count(reg, "c", expected);
  spectator_registry_free(reg);
}

static void a_new_meter_refills_a_used_up_pool(void **state) {
  (void)state;
  spectator_registry_t *reg = new_registry();
  spectator_counter_t *a = spectator_registry_counter(reg, "a", NULL);
  spectator__stripe_pool_t *pool = atomic_load(&reg->stripes.pool);
  atomic_store(&pool->next, pool->nblocks);
  spectator_counter_t *b = spectator_registry_counter(reg, "b", NULL);
  assert_ptr_not_equal(atomic_load(&reg->stripes.pool), pool);
  assert_true(is_striped(force_counter(a)));
  assert_true(is_striped(force_counter(b)));
  assert_ptr_not_equal(spectator__stripes_cells(atomic_load(&a->stripes)),
                       spectator__stripes_cells(atomic_load(&b->stripes)));
  spectator_registry_free(reg);
}

static void noop_counter_under_contention_stays_a_harmless_no_op(void **state) {
  (void)state;
  spectator_registry_t *reg = new_registry();
  spectator_counter_t *noop = spectator_registry_counter(reg, "", NULL); /* bad name */
  assert_true(spectator__is_noop(noop));
  /* no source of stripes: it stays pending for good and keeps working */
  assert_int_equal(spectator__stripes_claim(noop->src, &noop->stripes), SPECTATOR__STRIPES_PENDING);
  run_threads(count_worker, noop, NULL);
  assert_true(spectator_counter_count(noop) == 0);
  expect_empty(reg);
  spectator_registry_free(reg);
}

static void striped_timer_is_exact_and_keeps_the_max_of_all_cells(void **state) {
  (void)state;
  spectator_registry_t *reg = new_registry();
  spectator_timer_t *t = spectator_registry_timer(reg, "t", NULL);
  spectator_timer_record_ns(t, 5); /* own cell */
  assert_true(is_striped(force_timer(t)));
  run_threads(time_worker, NULL, t);
  uint64_t count = 1 + (uint64_t)THREADS * PER_THREAD, total = 5;
  unsigned __int128 sq_exact = 25;
  for (int w = 0; w < THREADS; w++) {
    for (int i = 0; i < PER_THREAD; i++) {
      uint64_t v = 1000 + (uint64_t)w * PER_THREAD + (uint64_t)i;
      total += v;
      sq_exact += (unsigned __int128)v * v;
    }
  }
  double sq = (double)sq_exact;
  int64_t max = 1000 + (int64_t)(THREADS - 1) * PER_THREAD + PER_THREAD - 1;
  assert_int_equal(spectator_timer_count(t), count);
  assert_true(spectator_timer_total_seconds(t) == (double)total / 1e9);
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  tu_assert_measurement(ms, "t", SPECTATOR_TAGS("statistic", "count"), count);
  tu_assert_measurement(ms, "t", SPECTATOR_TAGS("statistic", "totalTime"), (double)total / 1e9);
  tu_assert_measurement(ms, "t", SPECTATOR_TAGS("statistic", "max"), (double)max / 1e9);
  double got_sq = 0;
  assert_true(tu_find(ms, "t", SPECTATOR_TAGS("statistic", "totalOfSquares"), &got_sq));
  /* exact in each cell; the cells' doubles are summed: a few roundings */
  assert_true(fabs(got_sq - sq / 1e18) <= 1e-14 * (sq / 1e18));
  spectator_measurements_free(ms);
  expect_empty(reg);
  spectator_registry_free(reg);
}

static void percentile_timer_spreads_its_timer_part(void **state) {
  (void)state;
  spectator_registry_t *reg = new_registry();
  spectator_percentile_timer_t *t = spectator_registry_percentile_timer(reg, "pt", NULL, 0, 10);
  assert_true(is_striped(spectator__stripes_claim(t->st.src, &t->st.stripes)));
  for (int i = 0; i < 1000; i++) spectator_percentile_timer_record_ns(t, 1000000);
  assert_int_equal(spectator_percentile_timer_count(t), 1000);
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  tu_assert_measurement(ms, "pt", SPECTATOR_TAGS("statistic", "count"), 1000);
  tu_assert_measurement(ms, "pt", SPECTATOR_TAGS("statistic", "totalTime"), 1.0);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void discarding_a_striped_meter_drops_what_its_cells_held(void **state) {
  (void)state;
  /* what a forked child does with the parent's pending values */
  spectator_registry_t *reg = new_registry();
  spectator_counter_t *c = spectator_registry_counter(reg, "c", NULL);
  spectator_timer_t *t = spectator_registry_timer(reg, "t", NULL);
  force_counter(c);
  force_timer(t);
  run_threads(count_worker, c, NULL);
  run_threads(time_worker, NULL, t);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    spectator_measurements_t *ms = spectator_registry_snapshot(reg);
    bool dropped = spectator_counter_count(c) == 0 && spectator_timer_count(t) == 0 &&
                   spectator_measurements_count(ms) == 0;
    spectator_measurements_free(ms);
    spectator_counter_increment(c);
    ms = spectator_registry_snapshot(reg);
    bool counts = spectator_measurements_count(ms) == 1 &&
                  spectator_measurements_get(ms, 0)->value == 1;
    spectator_measurements_free(ms);
    _exit(dropped && counts ? 0 : 1);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  /* the parent still reports what it recorded */
  expect_count(reg, "c", expected_counter_total(THREADS));
  spectator_registry_free(reg);
}

static void threads_that_share_a_cell_move_apart_and_stay_exact(void **state) {
  (void)state;
  spectator_registry_t *reg = new_registry();
  spectator_counter_t *c = spectator_registry_counter(reg, "c", NULL);
  force_counter(c);
  /* The probe is per thread; pretend this one collided a few times. */
  uint32_t before = spectator__probe ? spectator__probe : spectator__probe_init();
  spectator__probe_collide();
  assert_int_not_equal(spectator__probe, 0);
  assert_int_not_equal(spectator__probe, before);
  for (int i = 0; i < 1000; i++) {
    spectator_counter_increment(c);
    spectator__probe_collide();
  }
  run_threads(count_worker, c, NULL);
  expect_count(reg, "c", 1000 + expected_counter_total(THREADS));
  spectator_registry_free(reg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(counter_used_by_one_thread_never_spreads),
      cmocka_unit_test(counter_claims_stripes_from_the_pool_without_allocating),
      cmocka_unit_test(striped_counter_sums_every_cell_once_and_resets_them),
      cmocka_unit_test(counter_contended_for_real_is_exact),
      cmocka_unit_test(
          counter_with_an_empty_pool_stays_exact_and_gets_stripes_at_the_next_snapshot),
      cmocka_unit_test(a_new_meter_refills_a_used_up_pool),
      cmocka_unit_test(noop_counter_under_contention_stays_a_harmless_no_op),
      cmocka_unit_test(striped_timer_is_exact_and_keeps_the_max_of_all_cells),
      cmocka_unit_test(percentile_timer_spreads_its_timer_part),
      cmocka_unit_test(discarding_a_striped_meter_drops_what_its_cells_held),
      cmocka_unit_test(threads_that_share_a_cell_move_apart_and_stay_exact),
  };
  spectator_log_set_level(SPECTATOR_LOG_OFF);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
