/*
 * Tests for src/process_metrics.c: the opt-in process metrics, read through
 * snapshots of a registry made with cfg.process_metrics, against what the
 * test itself does to the process: files opened, threads started, memory
 * touched, CPU burnt, a descriptor limit set, requests published.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agg_fixture.h"
#include "meter_test_util.h"
#include "publisher.h"
#include "sanitizers.h"

/* Sanitizers map shadow memory for what the program touches, and
 * ThreadSanitizer runs a thread of its own from the first pthread_create. */
#if TU_UNDER_SANITIZER
#define SHADOW_FACTOR 6.0 /* TSan's shadow is 4x what the program touches */
#else
#define SHADOW_FACTOR 1.25
#endif

#define GAUGE SPECTATOR_TAGS("statistic", "gauge")
#define COUNT SPECTATOR_TAGS("statistic", "count")
#define USER SPECTATOR_TAGS("id", "user", "statistic", "count")
#define SYSTEM SPECTATOR_TAGS("id", "system", "statistic", "count")

static spectator_registry_t *process_registry(const char *uri) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.uri = uri;
  cfg.frequency_s = 0.05;
  cfg.env_common_tags = 0;
  cfg.flush_at_exit = 0;
  cfg.auto_start = uri != NULL;
  cfg.process_metrics = 1;
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  assert_non_null(reg);
  return reg;
}

/* One value of a fresh snapshot; NaN when absent. */
static double snap_value(spectator_registry_t *reg, const char *name, const char *const *tags) {
  spectator_measurements_t *ms = mt_snapshot(reg);
  double v = NAN;
  tu_find(ms, name, tags, &v);
  spectator_measurements_free(ms);
  return v;
}

static void process_metrics_are_off_unless_asked_for(void **state) {
  (void)state;
  spectator_registry_t *reg = mt_registry(NULL, 0);
  mt_expect_empty(reg);
  spectator_registry_free(reg);
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  assert_int_equal(cfg.process_metrics, 0);
}

static void process_metrics_report_every_figure(void **state) {
  (void)state;
  spectator_registry_t *reg = process_registry(NULL);
  spectator_measurements_t *ms = mt_snapshot(reg);
  double v;
  assert_true(tu_find(ms, "process.memory.resident", GAUGE, &v) && v > 1e5);
  assert_true(tu_find(ms, "process.openFileDescriptors", GAUGE, &v) && v >= 3);
  assert_true(tu_find(ms, "process.threadCount", GAUGE, &v) && v >= 1);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != RLIM_INFINITY)
    assert_true(tu_find(ms, "process.maxFileDescriptors", GAUGE, &v) && v == (double)rl.rlim_cur);
  /* Counters: the first reading is the base. */
  mt_assert_absent(ms, "process.cpu.time", USER);
  mt_assert_absent(ms, "spectator.publish.bytes", COUNT);
  mt_assert_sorted(ms);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

/* They are the library's own meters: a registry capped at one meter still
 * gives the application its one, and reports them all. */
static void process_metrics_take_no_place_under_the_cap(void **state) {
  (void)state;
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.flush_at_exit = 0;
  cfg.auto_start = 0;
  cfg.process_metrics = 1;
  cfg.max_meters = 1;
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  assert_non_null(reg);
  spectator_counter_t *mine = spectator_registry_counter(reg, "app.requests", NULL);
  spectator_counter_add(mine, 3);
  spectator_measurements_t *ms = mt_snapshot(reg);
  double v;
  assert_true(tu_find(ms, "app.requests", SPECTATOR_TAGS("statistic", "count"), &v) && v == 3);
  assert_true(tu_find(ms, "process.threadCount", GAUGE, &v) && v >= 1);
  assert_true(tu_find(ms, "process.openFileDescriptors", GAUGE, &v) && v >= 3);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void open_file_descriptors_count_exactly_what_was_opened(void **state) {
  (void)state;
  spectator_registry_t *reg = process_registry(NULL);
  double before = snap_value(reg, "process.openFileDescriptors", GAUGE);
  int fds[17];
  for (int i = 0; i < 17; i++) assert_true((fds[i] = open("/dev/null", O_RDONLY)) >= 0);
  assert_true(snap_value(reg, "process.openFileDescriptors", GAUGE) == before + 17);
  for (int i = 0; i < 17; i++) close(fds[i]);
  assert_true(snap_value(reg, "process.openFileDescriptors", GAUGE) == before);
  spectator_registry_free(reg);
}

static void max_file_descriptors_is_the_soft_limit(void **state) {
  (void)state;
  struct rlimit old;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
  if (old.rlim_max != RLIM_INFINITY && old.rlim_max < 777) skip();
  struct rlimit lower = {777, old.rlim_max};
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &lower), 0);
  spectator_registry_t *reg = process_registry(NULL);
  assert_true(snap_value(reg, "process.maxFileDescriptors", GAUGE) == 777);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
  double restored = snap_value(reg, "process.maxFileDescriptors", GAUGE);
  if (old.rlim_cur == RLIM_INFINITY)
    assert_true(isnan(restored)); /* unlimited: nothing reported */
  else
    assert_true(restored == (double)old.rlim_cur);
  spectator_registry_free(reg);
}

static pthread_barrier_t barrier;

static void *wait_at_barrier(void *arg) {
  (void)arg;
  pthread_barrier_wait(&barrier);
  return NULL;
}

static void thread_count_counts_exactly_the_threads_started(void **state) {
  (void)state;
  spectator_registry_t *reg = process_registry(NULL);
  /* A first thread, joined: a sanitizer's own thread is started by now. */
  pthread_t warm;
  pthread_barrier_init(&barrier, NULL, 1);
  assert_int_equal(pthread_create(&warm, NULL, wait_at_barrier, NULL), 0);
  pthread_join(warm, NULL);
  pthread_barrier_destroy(&barrier);
  double before = snap_value(reg, "process.threadCount", GAUGE);
  pthread_t th[5];
  pthread_barrier_init(&barrier, NULL, 6);
  for (int i = 0; i < 5; i++)
    assert_int_equal(pthread_create(&th[i], NULL, wait_at_barrier, NULL), 0);
  assert_true(snap_value(reg, "process.threadCount", GAUGE) == before + 5);
  pthread_barrier_wait(&barrier);
  for (int i = 0; i < 5; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&barrier);
  assert_true(snap_value(reg, "process.threadCount", GAUGE) == before);
  spectator_registry_free(reg);
}

static void resident_memory_grows_with_memory_touched(void **state) {
  (void)state;
  spectator_registry_t *reg = process_registry(NULL);
  double before = snap_value(reg, "process.memory.resident", GAUGE);
  const size_t size = 64 << 20;
  volatile char *p = malloc(size);
  assert_non_null((void *)p);
  for (size_t i = 0; i < size; i += 4096) p[i] = 1;
  double after = snap_value(reg, "process.memory.resident", GAUGE);
  assert_true(after - before >= 60.0 * (1 << 20));
  assert_true(after - before <= 64.0 * (1 << 20) * SHADOW_FACTOR);
  free((void *)p);
  spectator_registry_free(reg);
}

/* Burn user CPU for about `seconds` (the clock is read rarely: reading it
 * is a system call). */
static void burn(double seconds) {
  double start = 0;
  volatile double x = 0;
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  start = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  for (;;) {
    for (int i = 0; i < 1000000; i++) x += 1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    if ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - start >= seconds) break;
  }
}

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The CPU seconds reported over an interval are those the process spent. */
static void cpu_time_reports_the_cpu_seconds_spent(void **state) {
  (void)state;
  spectator_registry_t *reg = process_registry(NULL);
  spectator_measurements_free(mt_snapshot(reg)); /* the base */
  double start = cpu_now();
  burn(0.3);
  int fd = open("/dev/null", O_WRONLY);
  for (int i = 0; i < 20000; i++) (void)!write(fd, "x", 1); /* some system time too */
  close(fd);
  double spent = cpu_now() - start;
  spectator_measurements_t *ms = mt_snapshot(reg);
  double user = 0, sys = 0;
  tu_find(ms, "process.cpu.time", USER, &user);
  tu_find(ms, "process.cpu.time", SYSTEM, &sys);
  spectator_measurements_free(ms);
  /* getrusage splits the same total the CPU clock measures; bounded by the
   * snapshots' own cost and the kernel's rounding. */
  assert_true(user > 0.1);
  assert_true(user + sys >= spent * 0.9 - 0.02);
  assert_true(user + sys <= spent * 1.1 + 0.05);
  spectator_registry_free(reg);
}

static long child_reports_its_own(void *arg) {
  spectator_registry_t *reg = arg;
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  double v;
  /* The CPU time counters start over: the child's first reading is a base. */
  bool cpu = tu_find(ms, "process.cpu.time", USER, NULL);
  bool fds = tu_find(ms, "process.openFileDescriptors", GAUGE, &v);
  spectator_measurements_free(ms);
  if (cpu) return 1;
  if (!fds) return 2;
  burn(0.1);
  ms = spectator_registry_snapshot(reg);
  double user = 0;
  tu_find(ms, "process.cpu.time", USER, &user);
  spectator_measurements_free(ms);
  return user > 0.05 && user < 1 ? 0 : 3;
}

static void a_forked_child_reports_its_own_process(void **state) {
  (void)state;
  spectator_registry_t *reg = process_registry(NULL);
  spectator_measurements_free(mt_snapshot(reg));
  assert_int_equal(tu_in_child(child_reports_its_own, reg), 0);
  spectator_registry_free(reg);
}

static void the_environment_turns_them_on(void **state) {
  (void)state;
  spectator_config_t cfg;
  setenv("SPECTATOR_PROCESS_METRICS", "1", 1);
  spectator_config_from_env(&cfg);
  assert_int_equal(cfg.process_metrics, 1);
  setenv("SPECTATOR_PROCESS_METRICS", "false", 1);
  spectator_config_from_env(&cfg);
  assert_int_equal(cfg.process_metrics, 0);
  tu_log_capture();
  setenv("SPECTATOR_PROCESS_METRICS", "sometimes", 1);
  spectator_config_from_env(&cfg);
  assert_int_equal(cfg.process_metrics, 0);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_INIT, "SPECTATOR_PROCESS_METRICS"), 1);
  tu_log_release();
  unsetenv("SPECTATOR_PROCESS_METRICS");
}

/* The library's own cost: the bytes it reports having sent are exactly the
 * bytes the aggregator received (but the last request's, which no later
 * reading saw), and the time it reports is within the time it ran. */
static void publishing_cost_matches_what_the_aggregator_received(void **state) {
  (void)state;
  agg = agg_start(0);
  assert_non_null(agg);
  double t0 = (double)time(NULL);
  spectator_registry_t *reg = process_registry(agg_url(agg));
  assert_int_equal(agg_wait_requests(agg, 5, 60), 0);
  spectator_registry_stop(reg);
  double elapsed = (double)time(NULL) - t0 + 1;
  agg_stats_t st;
  agg_stats(agg, &st);
  uint64_t ns, bytes;
  spectator__publisher_cost(reg, &ns, &bytes);
  assert_true(bytes == st.body_bytes); /* every attempt, as sent */
  double reported = agg_value("spectator.publish.bytes", COUNT);
  assert_true(reported == (double)(st.body_bytes - st.last_body_bytes));
  double secs = agg_value("spectator.publish.time", COUNT);
  assert_true(secs > 0 && secs <= (double)ns / 1e9 && secs < elapsed);
  assert_true(agg_value("process.threadCount", GAUGE) >= 2); /* the publisher's thread too */
  spectator_registry_free(reg);
  agg_stop(agg);
  agg = NULL;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(process_metrics_are_off_unless_asked_for),
      cmocka_unit_test(process_metrics_report_every_figure),
      cmocka_unit_test(process_metrics_take_no_place_under_the_cap),
      cmocka_unit_test(open_file_descriptors_count_exactly_what_was_opened),
      cmocka_unit_test(max_file_descriptors_is_the_soft_limit),
      cmocka_unit_test(thread_count_counts_exactly_the_threads_started),
      cmocka_unit_test(resident_memory_grows_with_memory_touched),
      cmocka_unit_test(cpu_time_reports_the_cpu_seconds_spent),
      cmocka_unit_test(a_forked_child_reports_its_own_process),
      cmocka_unit_test(the_environment_turns_them_on),
      cmocka_unit_test(publishing_cost_matches_what_the_aggregator_received),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
