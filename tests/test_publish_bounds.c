/*
 * What publishing costs has a bound whatever the configuration and the
 * registry: absurd intervals and timeouts are refused (a publisher never
 * spins), a publish streams the registry batch by batch (its memory is
 * bounded by the batch size, not by the registry), and a registry that
 * produces more than can be sent in an interval says so and counts what it
 * drops. Against the real local aggregator, with the CPU time and the memory
 * of real processes.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cmocka.h>

#include "agg_fixture.h"
#include "test_util.h"

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static void absurd_intervals_and_timeouts_are_refused_and_the_defaults_kept(void **state) {
  (void)state;
  tu_log_capture();
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.auto_start = 0;
  cfg.env_common_tags = 0;
  cfg.frequency_s = 1e-300;
  cfg.timeout_s = 1e-9;
  cfg.connect_timeout_s = 0.0001;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  assert_non_null(r);
  spectator_registry_free(r);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_INIT,
                                         "frequency_s=1e-300 is below its floor of 0.01 s: using "
                                         "the default 5 s"),
                   1);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_INIT,
                                         "timeout_s=1e-09 is below its floor of 0.001 s: using the "
                                         "default 1 s"),
                   1);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_INIT, "connect_timeout_s=0.0001"), 1);

  tu_log_clear();
  setenv("SPECTATOR_FREQUENCY", "0.0001", 1);
  setenv("SPECTATOR_TIMEOUT", "1e-9", 1);
  spectator_config_from_env(&cfg);
  unsetenv("SPECTATOR_FREQUENCY");
  unsetenv("SPECTATOR_TIMEOUT");
  tu_log_release();
  assert_true(cfg.frequency_s == 5 && cfg.timeout_s == 1 && cfg.connect_timeout_s == 1);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_INIT, "SPECTATOR_FREQUENCY='0.0001'"), 1);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_INIT, "SPECTATOR_TIMEOUT='1e-9'"), 1);
}

/* A registry configured with an interval of 1e-300 s and a timeout of
 * 1e-9 s, publishing to a dead port, for one second of wall time: the CPU
 * time the process took meanwhile, in milliseconds. */
static long cpu_ms_of_an_absurd_publisher(void) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.uri = "http://127.0.0.1:1/api/v4/update";
  cfg.env_common_tags = 0;
  cfg.flush_at_exit = 0;
  cfg.frequency_s = 1e-300;
  cfg.timeout_s = cfg.connect_timeout_s = 1e-9;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  if (!r) return -1;
  spectator_counter_increment(spectator_registry_counter(r, "spin", NULL));
  double c0 = cpu_seconds();
  sleep_s(1.0); /* a window to measure in, not a wait for anything */
  double used = cpu_seconds() - c0;
  spectator_registry_free(r);
  return (long)(used * 1000);
}

static void a_publisher_with_an_absurd_interval_does_not_spin(void **state) {
  (void)state;
  spectator_log_set_level(SPECTATOR_LOG_OFF);
  long ms = cpu_ms_of_an_absurd_publisher();
  spectator_log_set_level(SPECTATOR_LOG_WARN);
  /* spinning would take the whole second; sleeping takes next to nothing */
  if (ms > 100) print_error("the publisher used %ld ms of CPU in 1 s\n", ms);
  assert_true(ms >= 0 && ms <= 100);
}

/* Percentile summaries with (nearly) every bucket used: 267 measurements
 * each. */
#define SUMMARIES 2000

static size_t data_bytes(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  size_t kb = 0;
  while (f && fgets(line, sizeof(line), f))
    if (sscanf(line, "VmData: %zu kB", &kb) == 1) break;
  if (f) fclose(f);
  return kb * 1024;
}

/* In a child: fill the registry, then allow the process only 24 MiB more of
 * data (heap and private mappings) and publish everything. Returns the
 * measurements the publish counted as sent (the rest would be counted as
 * dropped), or a negative step that failed. */
static long publish_under_a_memory_ceiling(void *arg) {
  const char *uri = arg;
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.uri = uri;
  cfg.env_common_tags = 0;
  cfg.flush_at_exit = 0;
  cfg.frequency_s = 3600;
  cfg.timeout_s = cfg.connect_timeout_s = 30;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  if (!r) return -1;
  char name[32];
  for (int i = 0; i < SUMMARIES; i++) {
    snprintf(name, sizeof(name), "ceiling.%04d", i);
    spectator_percentile_dist_summary_t *d =
        spectator_registry_percentile_dist_summary(r, name, NULL, 0, (double)INT64_MAX);
    for (size_t b = 0; b < SPECTATOR_PERCENTILE_BUCKETS; b++)
      spectator_percentile_dist_summary_record(
          d, (double)(b ? spectator_percentile_buckets_get(b - 1) : 0));
  }
  struct rlimit lim = {data_bytes() + ((size_t)24 << 20), RLIM_INFINITY};
  if (setrlimit(RLIMIT_DATA, &lim) != 0) return -2;
  spectator_registry_stop(r); /* publishes everything */
  lim.rlim_cur = RLIM_INFINITY;
  setrlimit(RLIMIT_DATA, &lim);
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  double sent = 0;
  tu_find(ms, "spectator.measurements", SPECTATOR_TAGS("id", "sent", "statistic", "count"), &sent);
  spectator_measurements_free(ms);
  spectator_registry_free(r);
  return (long)sent;
}

static void a_publish_streams_millions_of_measurements_within_a_memory_ceiling(void **state) {
  (void)state;
  if (TU_UNDER_SANITIZER) skip(); /* the sanitizers' own mappings do not fit a data limit */
  if (getenv("RUNNING_ON_VALGRIND")) skip();
  long sent = tu_in_child(publish_under_a_memory_ceiling, (void *)agg_url(agg));
  /* the buckets the recorded values land in (large ones round as doubles) */
  bool used[SPECTATOR_PERCENTILE_BUCKETS] = {false};
  size_t buckets = 0;
  for (size_t b = 0; b < SPECTATOR_PERCENTILE_BUCKETS; b++) {
    /* recorded as a double, bucketed as an int64 */
    double v = b ? (double)spectator_percentile_buckets_get(b - 1) : 0;
    size_t i =
        spectator_percentile_buckets_index_of(v >= 9223372036854775808.0 ? INT64_MAX : (int64_t)v);
    if (!used[i]) buckets++;
    used[i] = true;
  }
  size_t expected = (size_t)SUMMARIES * (buckets + 4) + 1; /* and spectator.registrySize */
  if (sent != (long)expected) tu_log_dump();
  assert_int_equal(sent, expected);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.measurements_accepted, expected);
  assert_int_equal(st.requests, (expected + 9999) / 10000);
  /* every bucket of one summary, exactly */
  assert_true(agg_value("ceiling.0042",
                        SPECTATOR_TAGS("statistic", "percentile", "percentile", "D0001")) == 1);
  assert_true(agg_value("ceiling.0042", SPECTATOR_TAGS("statistic", "count")) ==
              SPECTATOR_PERCENTILE_BUCKETS);
}

static bool log_has(const char *needle) {
  pthread_mutex_lock(&tu_log_buf.lock);
  bool found = false;
  for (size_t i = 0; i < tu_log_buf.n && !found; i++)
    found = strstr(tu_log_buf.lines[i].msg, needle) != NULL;
  pthread_mutex_unlock(&tu_log_buf.lock);
  return found;
}

static void a_registry_that_produces_more_than_can_be_sent_says_so_and_counts_the_drop(
    void **state) {
  (void)state;
  /* 40 counters, one per request, each request answered after 100 ms, an
   * interval of 1 s: one interval carries about 10 of the 41 requests. */
  tu_log_capture();
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.uri = agg_url(agg);
  cfg.env_common_tags = 0;
  cfg.flush_at_exit = 0;
  cfg.auto_start = 0;
  cfg.frequency_s = 1;
  cfg.batch_size = 1;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  char name[32];
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof(name), "late.%02d", i);
    spectator_counter_increment(spectator_registry_counter(r, name, NULL));
  }
  agg_fail_next(agg, 1000, AGG_FAIL_DELAY, 0, 100);
  assert_int_equal(spectator_registry_start(r), 0);
  /* Wait for the first cycle's verdict (a condition, polled with a bound). */
  for (int i = 0; i < 1000 && !log_has("the registry produced more than could be sent"); i++)
    sleep_s(0.01);
  agg_fail_clear(agg);
  spectator_registry_stop(r);
  tu_log_release();
  assert_true(log_has("the registry produced more than could be sent"));
  /* The 40 counters and the registry size of the first cycle: each either
   * sent or counted as dropped, and the counts were sent by the later cycles. */
  double sent =
      agg_value("spectator.measurements", SPECTATOR_TAGS("id", "sent", "statistic", "count"));
  double late = agg_value("spectator.measurements",
                          SPECTATOR_TAGS("id", "dropped", "error", "other", "statistic", "count"));
  /* the last request of the cycle may run out of time too: the server may
   * then have taken it after the client gave up */
  double timed_out =
      agg_value("spectator.measurements",
                SPECTATOR_TAGS("id", "dropped", "error", "http-error", "statistic", "count"));
  if (isnan(timed_out)) timed_out = 0;
  double counters_sent = 0;
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof(name), "late.%02d", i);
    counters_sent += agg_value(name, SPECTATOR_TAGS("statistic", "count")) == 1;
  }
  print_message("    first cycle: %.0f of 40 counters sent, %.0f measurements dropped as too late, "
                "%.0f timed out\n",
                counters_sent, late, timed_out);
  assert_true(late > 0 && counters_sent > 0 && counters_sent < 40 && timed_out <= 1);
  /* 40 counters and the registry size: none unaccounted for, none twice
   * (but for the one the server may have taken after a timeout) */
  assert_true(counters_sent + late + timed_out >= 40);
  assert_true(counters_sent + late <= 41);
  assert_true(sent >= counters_sent);
  spectator_registry_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(absurd_intervals_and_timeouts_are_refused_and_the_defaults_kept),
      cmocka_unit_test(a_publisher_with_an_absurd_interval_does_not_spin),
      cmocka_unit_test_setup(a_publish_streams_millions_of_measurements_within_a_memory_ceiling,
                             reset),
      cmocka_unit_test_setup(
          a_registry_that_produces_more_than_can_be_sent_says_so_and_counts_the_drop, reset),
  };
  return cmocka_run_group_tests(tests, agg_fixture_setup, agg_fixture_teardown);
}
