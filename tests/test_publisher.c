/*
 * The publisher end to end: the real library against the local test
 * aggregator over loopback HTTP. Values are asserted exactly at the
 * aggregator; the self-metrics through a snapshot of the registry.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agg_fixture.h"

static double snap_value(spectator_measurements_t *ms, const char *name, const char *const *tags) {
  const spectator_measurement_t *m = spectator_measurements_find(ms, name, tags);
  return m ? m->value : NAN;
}

#define HTTP_TAGS(status, code)                                                 \
  SPECTATOR_TAGS("client", "spectator-c", "method", "POST", "mode", "http-client", "status",   \
                 status, "statusCode", code, "statistic", "count")

static void every_meter_type_arrives_with_exact_totals_after_stop(void **state) {
  (void)state;
  spectator_registry_t *r = new_reg(agg_url(agg), 60, 1);
  spectator_counter_t *c = spectator_registry_counter(r, "e2e.counter", SPECTATOR_TAGS("key", "v"));
  for (int i = 0; i < 1000; i++) spectator_counter_increment(c);
  spectator_counter_add(c, 0.5);
  spectator_timer_t *t = spectator_registry_timer(r, "e2e.timer", NULL);
  spectator_timer_record(t, 0.5);
  spectator_timer_record(t, 1.5);
  spectator_dist_summary_t *d = spectator_registry_dist_summary(r, "e2e.summary", NULL);
  spectator_dist_summary_record(d, 3);
  spectator_dist_summary_record(d, 4);
  spectator_gauge_set(spectator_registry_gauge(r, "e2e.gauge", NULL), 42.25);
  spectator_max_gauge_t *mg = spectator_registry_max_gauge(r, "e2e.maxgauge", NULL);
  spectator_max_gauge_set(mg, 5);
  spectator_max_gauge_set(mg, -3);
  spectator_percentile_timer_t *pt = spectator_registry_percentile_timer(r, "e2e.pct", NULL, 0, 10);
  spectator_percentile_timer_record_ns(pt, 1000);
  spectator_percentile_timer_record_ns(pt, 1000);
  spectator_percentile_dist_summary_t *pd =
      spectator_registry_percentile_dist_summary(r, "e2e.pctd", NULL, 0, 1e6);
  spectator_percentile_dist_summary_record(pd, 100);
  spectator_registry_stop(r);

  assert_true(agg_value("e2e.counter", SPECTATOR_TAGS("key", "v", "statistic", "count")) == 1000.5);
  assert_true(agg_value("e2e.timer", SPECTATOR_TAGS("statistic", "count")) == 2);
  assert_true(agg_value("e2e.timer", SPECTATOR_TAGS("statistic", "totalTime")) == 2.0);
  assert_true(agg_value("e2e.timer", SPECTATOR_TAGS("statistic", "totalOfSquares")) == 2.5);
  assert_true(agg_value("e2e.timer", SPECTATOR_TAGS("statistic", "max")) == 1.5);
  assert_true(agg_value("e2e.summary", SPECTATOR_TAGS("statistic", "count")) == 2);
  assert_true(agg_value("e2e.summary", SPECTATOR_TAGS("statistic", "totalAmount")) == 7);
  assert_true(agg_value("e2e.summary", SPECTATOR_TAGS("statistic", "totalOfSquares")) == 25);
  assert_true(agg_value("e2e.summary", SPECTATOR_TAGS("statistic", "max")) == 4);
  assert_true(agg_value("e2e.gauge", SPECTATOR_TAGS("statistic", "gauge")) == 42.25);
  assert_true(agg_value("e2e.maxgauge", SPECTATOR_TAGS("statistic", "max")) == 5);
  char tag[8];
  snprintf(tag, sizeof(tag), "T%04X", (unsigned)spectator_percentile_buckets_index_of(1000));
  assert_true(agg_value("e2e.pct", SPECTATOR_TAGS("statistic", "percentile", "percentile", tag)) == 2);
  assert_true(agg_value("e2e.pct", SPECTATOR_TAGS("statistic", "count")) == 2);
  snprintf(tag, sizeof(tag), "D%04X", (unsigned)spectator_percentile_buckets_index_of(100));
  assert_true(agg_value("e2e.pctd", SPECTATOR_TAGS("statistic", "percentile", "percentile", tag)) == 1);

  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.requests, 1);
  assert_int_equal(st.ok_200, 1);
  assert_int_equal(st.gzip_bodies, 1);
  assert_int_equal(st.invalid_json_bodies, 0);
  char ct[64], ce[64], ua[64];
  agg_last_headers(agg, ct, sizeof(ct), ce, sizeof(ce), ua, sizeof(ua));
  assert_string_equal(ct, "application/json");
  assert_string_equal(ce, "gzip");
  assert_string_equal(ua, "spectator-c/" SPECTATOR_VERSION_STRING);

  /* The self-metrics of the final flush stay in the registry. */
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  assert_true(snap_value(ms, "spectator.measurements", SPECTATOR_TAGS("id", "sent", "statistic", "count")) ==
              (double)st.measurements_received);
  assert_true(snap_value(ms, "http.req.complete", HTTP_TAGS("2xx", "200")) == 1);
  spectator_measurements_free(ms);
  spectator_registry_free(r);
}

static void measurements_are_published_every_interval(void **state) {
  (void)state;
  spectator_registry_t *r = new_reg(agg_url(agg), 0.1, 1);
  spectator_counter_t *c = spectator_registry_counter(r, "periodic", NULL);
  spectator_counter_add(c, 3);
  /* No stop: the periodic publish must deliver it. */
  assert_int_equal(agg_wait_value(agg, "periodic", SPECTATOR_TAGS("statistic", "count"), 3, 10), 0);
  spectator_counter_add(c, 4);
  assert_int_equal(agg_wait_value(agg, "periodic", SPECTATOR_TAGS("statistic", "count"), 7, 10), 0);
  /* and the self-metrics of earlier cycles arrive with everything else */
  assert_int_equal(agg_wait_requests(agg, 3, 10), 0);
  spectator_registry_free(r);
  double sent = agg_value("spectator.measurements", SPECTATOR_TAGS("id", "sent", "statistic", "count"));
  assert_true(sent >= 2);
}

static void twenty_five_thousand_meters_are_sent_in_three_requests(void **state) {
  (void)state;
  spectator_registry_t *r = new_reg(agg_url(agg), 60, 5);
  char name[32];
  for (int i = 0; i < 25000; i++) {
    snprintf(name, sizeof(name), "many.%05d", i);
    spectator_counter_add(spectator_registry_counter(r, name, NULL), i + 1);
  }
  spectator_registry_stop(r);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.requests, 3);
  assert_int_equal(st.ok_200, 3);
  /* and the registry's size, reported with everything else */
  assert_int_equal(st.measurements_accepted, 25001);
  assert_int_equal(agg_series_count(agg), 25001);
  assert_true(agg_value("spectator.registrySize", SPECTATOR_TAGS("statistic", "gauge")) == 25001);
  assert_true(agg_value("many.00000", SPECTATOR_TAGS("statistic", "count")) == 1);
  assert_true(agg_value("many.24999", SPECTATOR_TAGS("statistic", "count")) == 25000);
  spectator_registry_free(r);
}

static void retries_recover_from_two_503s(void **state) {
  (void)state;
  spectator_registry_t *r = new_reg(agg_url(agg), 60, 1);
  spectator_counter_add(spectator_registry_counter(r, "retried", NULL), 9);
  agg_fail_next(agg, 2, AGG_FAIL_STATUS, 503, 0);
  spectator_registry_stop(r);
  assert_true(agg_value("retried", SPECTATOR_TAGS("statistic", "count")) == 9);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.requests, 3);
  assert_int_equal(st.ok_200, 1);
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  assert_true(snap_value(ms, "http.req.complete", HTTP_TAGS("5xx", "503")) == 2);
  assert_true(snap_value(ms, "http.req.complete", HTTP_TAGS("2xx", "200")) == 1);
  /* the counter and spectator.registrySize */
  assert_true(snap_value(ms, "spectator.measurements", SPECTATOR_TAGS("id", "sent", "statistic", "count")) == 2);
  spectator_measurements_free(ms);
  spectator_registry_free(r);
}

static void three_failures_drop_the_batch_as_http_error(void **state) {
  (void)state;
  spectator_registry_t *r = new_reg(agg_url(agg), 60, 1);
  spectator_counter_add(spectator_registry_counter(r, "lost", NULL), 1);
  agg_fail_next(agg, 3, AGG_FAIL_STATUS, 500, 0);
  spectator_registry_stop(r);
  assert_true(isnan(agg_value("lost", SPECTATOR_TAGS("statistic", "count"))));
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.requests, 3);
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  assert_true(snap_value(ms, "spectator.measurements",
                         SPECTATOR_TAGS("id", "dropped", "error", "http-error", "statistic", "count")) == 2);
  spectator_measurements_free(ms);
  spectator_registry_free(r);
}

static void client_errors_are_not_retried(void **state) {
  (void)state;
  spectator_registry_t *r = new_reg(agg_url(agg), 60, 1);
  spectator_counter_add(spectator_registry_counter(r, "forbidden", NULL), 1);
  agg_fail_next(agg, 1, AGG_FAIL_STATUS, 403, 0);
  spectator_registry_stop(r);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.requests, 1);
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  assert_true(snap_value(ms, "http.req.complete", HTTP_TAGS("4xx", "403")) == 1);
  spectator_measurements_free(ms);
  spectator_registry_free(r);
}

static void partial_failures_are_counted_as_dropped_validation(void **state) {
  (void)state;
  spectator_registry_t *r = new_reg(agg_url(agg), 60, 1);
  spectator_counter_increment(spectator_registry_counter(r, "good.one", NULL));
  /* a one-character tag key is rejected by the aggregator */
  spectator_counter_increment(spectator_registry_counter(r, "bad.one", SPECTATOR_TAGS("k", "v")));
  spectator_registry_stop(r);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.partial_202, 1);
  assert_true(agg_value("good.one", SPECTATOR_TAGS("statistic", "count")) == 1);
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  /* good.one and spectator.registrySize */
  assert_true(snap_value(ms, "spectator.measurements", SPECTATOR_TAGS("id", "sent", "statistic", "count")) == 2);
  assert_true(snap_value(ms, "spectator.measurements",
                         SPECTATOR_TAGS("id", "dropped", "error", "validation", "statistic", "count")) == 1);
  spectator_measurements_free(ms);
  spectator_registry_free(r);
}

static void a_slow_aggregator_times_out_within_the_bound(void **state) {
  (void)state;
  spectator_registry_t *r = new_reg(agg_url(agg), 60, 0.3);
  spectator_counter_increment(spectator_registry_counter(r, "slow", NULL));
  agg_fail_next(agg, 2, AGG_FAIL_DELAY, 503, 3000); /* 503 after the delay: never aggregated */
  spectator_stopwatch_t sw = spectator_stopwatch_start();
  spectator_registry_stop(r);
  double took = spectator_stopwatch_elapsed_ns(sw) / 1e9;
  assert_true(took < 0.3 + 1.0);
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  assert_true(snap_value(ms, "http.req.complete", HTTP_TAGS("timeout", "timeout")) >= 1);
  /* a timeout is an http-error: the counter and spectator.registrySize */
  assert_true(snap_value(ms, "spectator.measurements",
                         SPECTATOR_TAGS("id", "dropped", "error", "http-error", "statistic", "count")) == 2);
  spectator_measurements_free(ms);
  spectator_registry_free(r);
}

static void a_dead_endpoint_is_counted_and_stop_is_bounded(void **state) {
  (void)state;
  /* Find a port nobody listens on: start and stop a server. */
  agg_t *dead = agg_start(0);
  char uri[128];
  snprintf(uri, sizeof(uri), "%s", agg_url(dead));
  agg_stop(dead);
  spectator_registry_t *r = new_reg(uri, 60, 0.5);
  spectator_counter_increment(spectator_registry_counter(r, "nowhere", NULL));
  spectator_stopwatch_t sw = spectator_stopwatch_start();
  spectator_registry_stop(r);
  assert_true(spectator_stopwatch_elapsed_ns(sw) / 1e9 < 0.5 + 1.0);
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  assert_true(snap_value(ms, "http.req.complete", HTTP_TAGS("connection_refused", "connection_refused")) == 3);
  /* a refused connection is an http-error */
  assert_true(snap_value(ms, "spectator.measurements",
                         SPECTATOR_TAGS("id", "dropped", "error", "http-error", "statistic", "count")) == 2);
  spectator_measurements_free(ms);
  spectator_registry_free(r);
}

static void sanitized_ids_merge_into_one_series(void **state) {
  (void)state;
  spectator_registry_t *r = new_reg(agg_url(agg), 60, 1);
  spectator_counter_add(spectator_registry_counter(r, "a b", SPECTATOR_TAGS("k~", "x/y")), 1);
  spectator_counter_add(spectator_registry_counter(r, "a_b", SPECTATOR_TAGS("k~", "x_y")), 2);
  spectator_registry_stop(r);
  assert_true(agg_value("a_b", SPECTATOR_TAGS("k~", "x_y", "statistic", "count")) == 3);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.measurements_received, 2); /* and spectator.registrySize */
  spectator_registry_free(r);
}

static void common_tags_from_the_environment_are_on_every_record(void **state) {
  (void)state;
  setenv("NETFLIX_APP", " www ", 1);
  setenv("EC2_REGION", "us-east-1", 1);
  setenv("SPECTATOR_COMMON_TAGS", "team=metrics,env=test", 1);
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.uri = agg_url(agg);
  cfg.frequency_s = 60;
  cfg.flush_at_exit = 0;
  cfg.common_tags = SPECTATOR_TAGS("env", "prod");
  spectator_registry_t *r = spectator_registry_new(&cfg);
  unsetenv("NETFLIX_APP");
  unsetenv("EC2_REGION");
  unsetenv("SPECTATOR_COMMON_TAGS");
  spectator_counter_increment(spectator_registry_counter(r, "tagged", NULL));
  spectator_registry_stop(r);
  assert_true(agg_value("tagged", SPECTATOR_TAGS("nf.app", "www", "nf.region", "us-east-1", "team",
                                                 "metrics", "env", "prod", "statistic", "count")) == 1);
  assert_true(agg_value("spectator.registrySize",
                        SPECTATOR_TAGS("nf.app", "www", "nf.region", "us-east-1", "team", "metrics",
                                       "env", "prod", "statistic", "gauge")) == 2);
  assert_int_equal(agg_series_count(agg), 2);
  spectator_registry_free(r);
}

static void bad_values_never_make_the_body_invalid_json(void **state) {
  (void)state;
  spectator_registry_t *r = new_reg(agg_url(agg), 60, 1);
  spectator_gauge_set(spectator_registry_gauge(r, "bad.nan", NULL), NAN);
  spectator_gauge_set(spectator_registry_gauge(r, "bad.inf", NULL), INFINITY);
  spectator_gauge_set(spectator_registry_gauge(r, "bad.big", NULL), 1.7976931348623157e308);
  spectator_gauge_set(spectator_registry_gauge(r, "bad.tiny", NULL), 4.9e-324);
  spectator_counter_t *c = spectator_registry_counter(r, "bad.overflow", NULL);
  spectator_counter_add(c, 1.7e308);
  spectator_counter_add(c, 1.7e308); /* the sum is +inf: sent as DBL_MAX */
  spectator_max_gauge_set(spectator_registry_max_gauge(r, "bad.neg", NULL), -1e300);
  spectator_dist_summary_record(spectator_registry_dist_summary(r, "bad.sum", NULL), 1e200);
  spectator_counter_add(spectator_registry_counter(r, "bad.ok", NULL), 0.1);
  spectator_registry_stop(r);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.requests, 1);
  assert_int_equal(st.invalid_json_bodies, 0);
  assert_int_equal(st.bad_400, 0);
  assert_true(agg_value("bad.big", SPECTATOR_TAGS("statistic", "gauge")) == 1.7976931348623157e308);
  assert_true(agg_value("bad.tiny", SPECTATOR_TAGS("statistic", "gauge")) == 4.9e-324);
  assert_true(agg_value("bad.neg", SPECTATOR_TAGS("statistic", "max")) == -1e300);
  assert_true(agg_value("bad.ok", SPECTATOR_TAGS("statistic", "count")) == 0.1);
  assert_true(isnan(agg_value("bad.nan", SPECTATOR_TAGS("statistic", "gauge"))));
  assert_true(agg_value("bad.overflow", SPECTATOR_TAGS("statistic", "count")) == DBL_MAX);
  /* totalOfSquares of 1e200 overflows: sent as DBL_MAX */
  assert_true(agg_value("bad.sum", SPECTATOR_TAGS("statistic", "totalAmount")) == 1e200);
  assert_true(agg_value("bad.sum", SPECTATOR_TAGS("statistic", "totalOfSquares")) == DBL_MAX);
  spectator_registry_free(r);
}

static void start_and_stop_are_idempotent(void **state) {
  (void)state;
  spectator_registry_t *r = new_reg(agg_url(agg), 60, 1);
  assert_int_equal(spectator_registry_start(r), 0);
  assert_int_equal(spectator_registry_start(r), 0);
  spectator_counter_increment(spectator_registry_counter(r, "idem", NULL));
  spectator_registry_stop(r);
  spectator_registry_stop(r);
  assert_int_equal(spectator_registry_start(r), 0);
  spectator_counter_increment(spectator_registry_counter(r, "idem", NULL));
  spectator_registry_stop(r);
  assert_true(agg_value("idem", SPECTATOR_TAGS("statistic", "count")) == 2);
  spectator_registry_free(r);
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  spectator_registry_t *nouri = spectator_registry_new(&cfg);
  assert_int_equal(spectator_registry_start(nouri), SPECTATOR_ENOURI);
  spectator_registry_stop(nouri);
  spectator_registry_free(nouri);
}

static void returning_from_main_flushes_the_global_registry(void **state) {
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    setenv("SPECTATOR_URI", agg_url(agg), 1);
    setenv("SPECTATOR_FREQUENCY", "60", 1);
    execl(PUBLISHER_EXIT_CHILD, PUBLISHER_EXIT_CHILD, (char *)NULL);
    _exit(127);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_true(agg_value("exit.counter", SPECTATOR_TAGS("key", "v", "statistic", "count")) == 42);
  assert_true(agg_value("exit.timer", SPECTATOR_TAGS("statistic", "totalTime")) == 0.5);
  assert_true(agg_value("exit.gauge", SPECTATOR_TAGS("statistic", "gauge")) == 7);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(every_meter_type_arrives_with_exact_totals_after_stop, reset),
      cmocka_unit_test_setup(measurements_are_published_every_interval, reset),
      cmocka_unit_test_setup(twenty_five_thousand_meters_are_sent_in_three_requests, reset),
      cmocka_unit_test_setup(retries_recover_from_two_503s, reset),
      cmocka_unit_test_setup(three_failures_drop_the_batch_as_http_error, reset),
      cmocka_unit_test_setup(client_errors_are_not_retried, reset),
      cmocka_unit_test_setup(partial_failures_are_counted_as_dropped_validation, reset),
      cmocka_unit_test_setup(a_slow_aggregator_times_out_within_the_bound, reset),
      cmocka_unit_test_setup(a_dead_endpoint_is_counted_and_stop_is_bounded, reset),
      cmocka_unit_test_setup(sanitized_ids_merge_into_one_series, reset),
      cmocka_unit_test_setup(common_tags_from_the_environment_are_on_every_record, reset),
      cmocka_unit_test_setup(bad_values_never_make_the_body_invalid_json, reset),
      cmocka_unit_test_setup(start_and_stop_are_idempotent, reset),
      cmocka_unit_test_setup(returning_from_main_flushes_the_global_registry, reset),
  };
  return cmocka_run_group_tests(tests, agg_fixture_setup, agg_fixture_teardown);
}
