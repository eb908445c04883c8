/*
 * fork() safety under stress: real forks while threads record and the
 * publisher is mid-request to a slow aggregator. Every child records,
 * publishes and exits within a deadline; the totals at the aggregator equal
 * exactly what the parent and the children recorded.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agg_fixture.h"

/* ThreadSanitizer cannot follow a thread created in the child of a threaded
 * parent (it aborts with "dup thread with used id"), and the library starts a
 * publishing thread in such a child by design. Under TSan those tests are
 * skipped; the forks_while_threads_record... test, whose children create no
 * thread, covers the fork handlers racing with recording threads. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
/* gcc 12's AddressSanitizer allocator does not hold its own locks across
 * fork(), so a child that allocates while a parent thread was inside malloc
 * can hang in the sanitizer runtime (seen: the child's publisher thread in
 * SizeClassAllocator64::GetFromAllocator). glibc's malloc is fork-safe; the
 * stress test that forks hundreds of times is skipped under ASan for that. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined(UNDER_TSAN) || defined(UNDER_ASAN)
#define SKIP_UNDER_SANITIZERS() skip()
#else
#define SKIP_UNDER_SANITIZERS() ((void)0)
#endif
#ifdef UNDER_TSAN
#define SKIP_UNDER_TSAN() skip()
#else
#define SKIP_UNDER_TSAN() ((void)0)
#endif

/* Wait for a child with a deadline; a child that hangs is killed and the
 * test fails. Polls waitpid with a short nanosleep: the child is another
 * process, there is nothing to wait on but its exit. */
static int wait_child(pid_t pid, double deadline_s) {
  struct timespec start, now, nap = {0, 2 * 1000 * 1000};
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0 && errno != EINTR) return -1;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 > deadline_s) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -2; /* hung */
    }
    nanosleep(&nap, NULL);
  }
}

static void child_reports_only_its_own_activity(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  spectator_registry_t *r = new_reg(agg_url(agg), 60, 1);
  spectator_counter_t *c = spectator_registry_counter(r, "fork.counter", NULL);
  spectator_gauge_t *g = spectator_registry_gauge(r, "fork.gauge", NULL);
  spectator_counter_add(c, 10);
  spectator_gauge_set(g, 1);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    spectator_counter_add(c, 5); /* a pointer from before the fork */
    spectator_registry_stop(r);  /* flush the child's own activity */
    _exit(0);
  }
  assert_int_equal(wait_child(pid, 10), 0);
  spectator_counter_add(c, 1);
  spectator_registry_stop(r);
  assert_true(agg_value("fork.counter", SPECTATOR_TAGS("statistic", "count")) == 16);
  /* the gauge was reported by the parent only */
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.requests, 2);
  spectator_registry_free(r);
}

static void child_resumes_publishing_through_pointers_from_before_the_fork(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  spectator_registry_t *r = new_reg(agg_url(agg), 0.1, 1);
  spectator_counter_t *c = spectator_registry_counter(r, "fork.resume", NULL);
  int go[2];
  assert_int_equal(pipe(go), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(go[1]);
    spectator_counter_add(c, 7); /* no lookup, no start: only the old pointer */
    char b;
    ssize_t n = read(go[0], &b, 1); /* the parent says when the data arrived */
    _exit(n == 1 ? 0 : 1);
  }
  close(go[0]);
  int seen = agg_wait_value(agg, "fork.resume", SPECTATOR_TAGS("statistic", "count"), 7, 10);
  assert_int_equal(write(go[1], "x", 1), 1);
  close(go[1]);
  assert_int_equal(wait_child(pid, 10), 0);
  assert_int_equal(seen, 0);
  spectator_registry_free(r);
}

/* --- the stress test ----------------------------------------------------- */

typedef struct {
  spectator_counter_t *c;
  spectator_timer_t *t;
  atomic_bool *stop;
  uint64_t done;
} recorder_t;

static void *record_loop(void *arg) {
  recorder_t *rec = arg;
  while (!atomic_load_explicit(rec->stop, memory_order_relaxed)) {
    spectator_counter_increment(rec->c);
    spectator_timer_record_ns(rec->t, 1000);
    rec->done++;
  }
  return NULL;
}

#define FORKS 300
#define WAVE 15

static void forks_under_load_lose_and_duplicate_nothing(void **state) {
  (void)state;
  SKIP_UNDER_SANITIZERS();
  /* A request may take until the next interval: 200 ms leave room for the
   * 30 ms answers below on two cores that the recording threads keep busy. */
  spectator_registry_t *r = new_reg(agg_url(agg), 0.2, 2);
  spectator_counter_t *shared = spectator_registry_counter(r, "stress.shared", NULL);
  spectator_timer_t *timer = spectator_registry_timer(r, "stress.timer", NULL);
  spectator_counter_t *children = spectator_registry_counter(r, "stress.children", NULL);
  /* Make the publisher be mid-request often: every request takes 30 ms. */
  agg_fail_next(agg, 1000000, AGG_FAIL_DELAY, 0, 30);

  atomic_bool stop = false;
  recorder_t recs[2] = {{shared, timer, &stop, 0}, {shared, timer, &stop, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, record_loop, &recs[i]), 0);

  int hung = 0, failed = 0;
  for (int wave = 0; wave < FORKS / WAVE; wave++) {
    pid_t pids[WAVE];
    for (int i = 0; i < WAVE; i++) {
      pids[i] = fork();
      assert_true(pids[i] >= 0);
      if (pids[i] == 0) {
        spectator_counter_increment(shared);
        spectator_counter_increment(children);
        spectator_registry_stop(r); /* flush what the child recorded */
        _exit(0);
      }
    }
    for (int i = 0; i < WAVE; i++) {
      int rc = wait_child(pids[i], 20);
      if (rc == -2) hung++;
      else if (rc != 0) failed++;
    }
  }
  atomic_store(&stop, true);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  agg_fail_clear(agg); /* no more delays */
  spectator_registry_stop(r);

  assert_int_equal(hung, 0);
  assert_int_equal(failed, 0);
  uint64_t recorded = recs[0].done + recs[1].done;
  assert_true(agg_value("stress.children", SPECTATOR_TAGS("statistic", "count")) == FORKS);
  assert_true(agg_value("stress.shared", SPECTATOR_TAGS("statistic", "count")) ==
              (double)(recorded + FORKS));
  assert_true(agg_value("stress.timer", SPECTATOR_TAGS("statistic", "count")) == (double)recorded);
  spectator_registry_free(r);
}

/* No publisher: the children create no thread, so this one also runs under
 * ThreadSanitizer, which then checks the fork handlers against threads that
 * record and look meters up at the same time. */
static void forks_while_threads_record_keep_the_parent_exact(void **state) {
  (void)state;
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  spectator_counter_t *shared = spectator_registry_counter(r, "quiet.shared", NULL);
  spectator_timer_t *timer = spectator_registry_timer(r, "quiet.timer", NULL);
  atomic_bool stop = false;
  recorder_t recs[2] = {{shared, timer, &stop, 0}, {shared, timer, &stop, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, record_loop, &recs[i]), 0);
  double snapped = 0;
  for (int i = 0; i < 100; i++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      /* the child starts from zero: the parent's pending values are gone */
      spectator_measurements_t *ms = spectator_registry_snapshot(r);
      int clean = spectator_measurements_count(ms) == 0;
      spectator_measurements_free(ms);
      spectator_counter_increment(spectator_registry_counter(r, "quiet.child", NULL));
      _exit(clean ? 0 : 3);
    }
    assert_int_equal(wait_child(pid, 20), 0);
    spectator_measurements_t *ms = spectator_registry_snapshot(r);
    const spectator_measurement_t *m =
        spectator_measurements_find(ms, "quiet.shared", SPECTATOR_TAGS("statistic", "count"));
    if (m) snapped += m->value;
    spectator_measurements_free(ms);
  }
  atomic_store(&stop, true);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  const spectator_measurement_t *m =
      spectator_measurements_find(ms, "quiet.shared", SPECTATOR_TAGS("statistic", "count"));
  if (m) snapped += m->value;
  assert_null(spectator_measurements_find(ms, "quiet.child", SPECTATOR_TAGS("statistic", "count")));
  spectator_measurements_free(ms);
  assert_true(snapped == (double)(recs[0].done + recs[1].done));
  spectator_registry_free(r);
}

typedef struct {
  spectator_registry_t *r;
  spectator_counter_t *c;
  int rc;
} forker_t;

static void *fork_from_thread(void *arg) {
  forker_t *f = arg;
  pid_t pid = fork();
  if (pid == 0) {
    spectator_counter_add(f->c, 3);
    spectator_registry_stop(f->r);
    _exit(0);
  }
  f->rc = pid < 0 ? -1 : wait_child(pid, 10);
  return NULL;
}

static void fork_from_a_recording_thread_is_safe(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  spectator_registry_t *r = new_reg(agg_url(agg), 0.05, 1);
  spectator_counter_t *c = spectator_registry_counter(r, "fork.thread", NULL);
  spectator_counter_add(c, 1);
  forker_t f = {r, c, -3};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, fork_from_thread, &f), 0);
  pthread_join(t, NULL);
  assert_int_equal(f.rc, 0);
  spectator_registry_stop(r);
  assert_true(agg_value("fork.thread", SPECTATOR_TAGS("statistic", "count")) == 4);
  spectator_registry_free(r);
}

static void *stop_registry(void *arg) {
  spectator_registry_stop(arg);
  return NULL;
}

static void fork_during_stop_is_safe(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  spectator_registry_t *r = new_reg(agg_url(agg), 0.05, 1);
  spectator_counter_t *c = spectator_registry_counter(r, "fork.stopping", NULL);
  agg_fail_next(agg, 5, AGG_FAIL_DELAY, 0, 100); /* keep the final flush busy */
  spectator_counter_add(c, 1);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, stop_registry, r), 0);
  int children = 0;
  for (int i = 0; i < 20; i++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      spectator_counter_add(c, 10);
      /* whatever state the parent was in, start + stop flushes the child */
      spectator_registry_start(r);
      spectator_registry_stop(r);
      _exit(0);
    }
    assert_int_equal(wait_child(pid, 10), 0);
    children++;
  }
  pthread_join(t, NULL);
  spectator_registry_stop(r);
  assert_true(agg_value("fork.stopping", SPECTATOR_TAGS("statistic", "count")) == 1 + 10 * children);
  spectator_registry_free(r);
}

static void children_that_exit_at_once_or_exec_do_not_hang_or_publish(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  spectator_registry_t *r = new_reg(agg_url(agg), 0.05, 1);
  spectator_counter_t *c = spectator_registry_counter(r, "fork.exec", NULL);
  spectator_counter_add(c, 2);
  for (int i = 0; i < 20; i++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      spectator_counter_add(c, 100); /* never published: _exit and exec skip the flush */
      if (i % 2) _exit(0);
      execl("/bin/true", "true", (char *)NULL);
      _exit(127);
    }
    assert_int_equal(wait_child(pid, 10), 0);
  }
  spectator_registry_stop(r);
  assert_true(agg_value("fork.exec", SPECTATOR_TAGS("statistic", "count")) == 2);
  spectator_registry_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(child_reports_only_its_own_activity, reset),
      cmocka_unit_test_setup(child_resumes_publishing_through_pointers_from_before_the_fork, reset),
      cmocka_unit_test_setup(forks_under_load_lose_and_duplicate_nothing, reset),
      cmocka_unit_test_setup(forks_while_threads_record_keep_the_parent_exact, reset),
      cmocka_unit_test_setup(fork_from_a_recording_thread_is_safe, reset),
      cmocka_unit_test_setup(fork_during_stop_is_safe, reset),
      cmocka_unit_test_setup(children_that_exit_at_once_or_exec_do_not_hang_or_publish, reset),
  };
  return cmocka_run_group_tests(tests, agg_fixture_setup, agg_fixture_teardown);
}
