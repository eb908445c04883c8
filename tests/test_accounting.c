/*
 * What a publish counts and logs for each way a request can end, against the
 * real local aggregator over loopback: every measurement is either sent or
 * dropped with a reason (spectator.measurements{id=dropped,error=...}), and
 * every drop has a warning that says where, why and how many, with the URI's
 * credentials and query values masked.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agg_fixture.h"
#include "http.h"
#include "log.h"
#include "test_util.h"

#define DROPPED(error) SPECTATOR_TAGS("id", "dropped", "error", error, "statistic", "count")
#define SENT SPECTATOR_TAGS("id", "sent", "statistic", "count")

static double value(const spectator_measurements_t *ms, const char *name, const char *const *tags) {
  double v = 0;
  return tu_find(ms, name, tags, &v) ? v : 0;
}

/* The counts of one publish: a registry with `n` counters (and its
 * spectator.registrySize gauge) is stopped once, which sends them; the
 * self-metrics are read from the registry afterwards. */
typedef struct {
  double sent, validation, other, http_error;
} counts_t;

/* The self-metrics of a stopped registry (a snapshot: it resets them). */
static counts_t counts(spectator_registry_t *r) {
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  counts_t c = {value(ms, "spectator.measurements", SENT),
                value(ms, "spectator.measurements", DROPPED("validation")),
                value(ms, "spectator.measurements", DROPPED("other")),
                value(ms, "spectator.measurements", DROPPED("http-error"))};
  spectator_measurements_free(ms);
  return c;
}

static counts_t publish_once(const char *uri, int n) {
  spectator_registry_t *r = new_reg(uri, 60, 0.5);
  char name[32];
  for (int i = 0; i < n; i++) {
    snprintf(name, sizeof(name), "acct.%d", i);
    spectator_counter_increment(spectator_registry_counter(r, name, NULL));
  }
  spectator_registry_stop(r);
  counts_t c = counts(r);
  spectator_registry_free(r);
  return c;
}

static void assert_one_warning(const char *needle) {
  size_t found = 0;
  for (size_t i = 0; i < tu_log_buf.n; i++)
    if (tu_log_line(i)->level == SPECTATOR_LOG_WARN && strstr(tu_log_line(i)->msg, needle)) found++;
  if (found != 1) {
    tu_log_dump();
    print_error("expected one warning with '%s', found %zu\n", needle, found);
    fail();
  }
}

static void a_400_with_an_html_body_is_dropped_as_other_with_a_warning_naming_the_status(
    void **state) {
  (void)state;
  tu_log_capture();
  agg_fail_next(agg, 1, AGG_FAIL_GARBAGE_BODY, 400, 0);
  counts_t c = publish_once(agg_url(agg), 3);
  tu_log_release();
  /* three counters and spectator.registrySize, none sent, not retried */
  assert_true(c.sent == 0 && c.other == 4 && c.validation == 0 && c.http_error == 0);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.requests, 1);
  assert_true(isnan(agg_value("acct.0", SPECTATOR_TAGS("statistic", "count"))));
  assert_one_warning("HTTP 400, not a validation response");
  assert_one_warning("could not publish 4 measurements to http://127.0.0.1:");
}

static void a_400_with_an_empty_body_is_dropped_as_other_with_a_warning(void **state) {
  (void)state;
  tu_log_capture();
  agg_fail_next(agg, 1, AGG_FAIL_STATUS, 400, 0);
  counts_t c = publish_once(agg_url(agg), 2);
  tu_log_release();
  assert_true(c.sent == 0 && c.other == 3 && c.http_error == 0);
  assert_one_warning("HTTP 400, not a validation response");
}

static void a_validation_answer_over_64_kib_is_dropped_as_other_with_a_warning(void **state) {
  (void)state;
  /* The aggregator quotes a rejected datapoint's tags in its answer: a
   * 70,000-character tag value makes an answer bigger than the client reads. */
  size_t big = 70000;
  char *value = malloc(big + 1);
  memset(value, 'v', big);
  value[big] = '\0';
  tu_log_capture();
  spectator_registry_t *r = new_reg(agg_url(agg), 60, 1);
  spectator_counter_increment(spectator_registry_counter(r, "fine", NULL));
  spectator_counter_increment(spectator_registry_counter(r, "huge", SPECTATOR_TAGS("k", value)));
  spectator_registry_stop(r);
  tu_log_release();
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.requests, 1);
  assert_int_equal(st.partial_202, 1); /* "fine" and the registry size were accepted... */
  /* ...but the answer could not be read: nothing is known, all is other */
  counts_t c = counts(r);
  assert_true(c.other == 3 && c.sent == 0 && c.validation == 0);
  assert_one_warning("HTTP 202, not a validation response");
  spectator_registry_free(r);
  free(value);
}

static void a_5xx_after_the_retries_is_dropped_as_http_error(void **state) {
  (void)state;
  tu_log_capture();
  agg_fail_next(agg, 3, AGG_FAIL_STATUS, 503, 0);
  counts_t c = publish_once(agg_url(agg), 1);
  tu_log_release();
  assert_true(c.sent == 0 && c.http_error == 2 && c.other == 0);
  assert_one_warning("HTTP 503 after 3 attempts; dropped as http-error");
}

static void a_refused_connection_is_dropped_as_http_error_with_the_reason_and_a_masked_uri(
    void **state) {
  (void)state;
  /* Nothing listens on port 1; the URI has a password and a query token. */
  tu_log_capture();
  counts_t c = publish_once("http://admin:pw1@127.0.0.1:1/api/v4/update?token=s3cret&x=1", 1);
  assert_true(c.sent == 0 && c.http_error == 2 && c.other == 0);
  assert_one_warning("could not publish 2 measurements to "
                     "http://***@127.0.0.1:1/api/v4/update?token=***&x=***: connection_refused (");
  assert_one_warning("Couldn't connect to server");
  /* A password holding '/' is no URL libcurl accepts, and still masked. */
  c = publish_once("http://admin:pa/ss@127.0.0.1:1/api/v4/update", 1);
  assert_true(c.sent == 0 && c.http_error == 2);
  assert_one_warning(
      "to http://***@127.0.0.1:1/api/v4/update: other (URL using bad/illegal format");
  tu_log_release();
  for (size_t i = 0; i < tu_log_buf.n; i++) {
    assert_null(strstr(tu_log_line(i)->msg, "pw1"));
    assert_null(strstr(tu_log_line(i)->msg, "pa/ss"));
    assert_null(strstr(tu_log_line(i)->msg, "s3cret"));
  }
}

static void a_validation_answer_counts_its_error_count_and_logs_the_messages(void **state) {
  (void)state;
  tu_log_capture();
  spectator_registry_t *r = new_reg(agg_url(agg), 60, 1);
  spectator_counter_increment(spectator_registry_counter(r, "good", NULL));
  /* a one-character tag key is rejected by the aggregator */
  spectator_counter_increment(spectator_registry_counter(r, "bad", SPECTATOR_TAGS("k", "v")));
  spectator_registry_stop(r);
  tu_log_release();
  counts_t c = counts(r);
  assert_true(c.sent == 2 && c.validation == 1 && c.other == 0 && c.http_error == 0);
  assert_one_warning("1 measurements dropped by the aggregator's validation at http://127.0.0.1:");
  assert_true(tu_log_count_matching(SPECTATOR_LOGGER_HTTP, "rejected a measurement: ") == 1);
  spectator_registry_free(r);
}

static void start_and_stop_say_so_at_info_and_a_publish_is_confirmed_at_debug(void **state) {
  (void)state;
  char uri[256];
  snprintf(uri, sizeof(uri), "http://user:pw@127.0.0.1:%d/api/v4/update", agg_port(agg));
  tu_log_capture();
  spectator_log_set_level(SPECTATOR_LOG_DEBUG);
  spectator_registry_t *r = new_reg(uri, 60, 1);
  spectator_counter_add(spectator_registry_counter(r, "a b", NULL), 3);
  spectator_registry_stop(r);
  spectator_log_set_level(SPECTATOR_LOG_WARN);
  tu_log_release();
  char masked[256];
  snprintf(masked, sizeof(masked), "http://***@127.0.0.1:%d/api/v4/update", agg_port(agg));
  char want[512];
  snprintf(want, sizeof(want), "publishing to %s every 60 s", masked);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_INIT, want), 1);
  snprintf(want, sizeof(want), "stopped publishing to %s", masked);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_INIT, want), 1);
  snprintf(want, sizeof(want), "published to %s: 2 sent, 0 dropped", masked);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_HTTP, want), 1);
  /* what is sent, as it is sent: sanitized, with its statistic */
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY,
                                         "sending {name=a_b,statistic=count} op 0 "
                                         "value 3"),
                   1);
  for (size_t i = 0; i < tu_log_buf.n; i++) assert_null(strstr(tu_log_line(i)->msg, "user:pw"));
  spectator_registry_free(r);
}

static void a_recovery_is_logged_and_the_next_outage_is_reported_from_its_first_failure(
    void **state) {
  (void)state;
  tu_log_capture();
  spectator_log_set_level(SPECTATOR_LOG_INFO);
  spectator_registry_t *r = new_reg(agg_url(agg), 60, 1);
  spectator_counter_t *c = spectator_registry_counter(r, "outage", NULL);
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 4; i++) { /* three failed publishes, then one that works */
      if (i < 3) agg_fail_next(agg, 1, AGG_FAIL_STATUS, 403, 0);
      spectator_counter_increment(c);
      spectator_registry_stop(r); /* publishes */
      assert_int_equal(spectator_registry_start(r), 0);
    }
  }
  spectator_registry_free(r);
  spectator_log_set_level(SPECTATOR_LOG_WARN);
  tu_log_release();
  /* Each outage: failures 1 and 2 logged (then 4, 8...), and its end. */
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_HTTP, "(failure 1 in a row)"), 2);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_HTTP, "(failure 2 in a row)"), 2);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_HTTP, "(failure 3 in a row)"), 0);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_HTTP, "works again after 3 failed"), 2);
}

/* The accounting itself, answer by answer (Spectator's ValidationHelper). */
static void each_answer_is_counted_as_validation_helper_counts_it(void **state) {
  (void)state;
  static const struct {
    int rc;
    long status;
    const char *body;
    bool cut;
    size_t sent, validation, other, http_error;
  } cases[] = {
      {0, 200, "{}", false, 5, 0, 0, 0},
      {0, 200, "<html>", false, 5, 0, 0, 0},
      {0, 202, "{\"type\":\"partial\",\"errorCount\":2,\"message\":[\"a\"]}", false, 3, 2, 0, 0},
      {0, 400, "{\"type\":\"error\",\"errorCount\":5,\"message\":[\"a\"]}", false, 0, 5, 0, 0},
      {0, 400, "{\"type\":\"error\",\"errorCount\":3,\"message\":[]}", false, 2, 3, 0, 0},
      {0, 400, "{\"type\":\"error\",\"errorCount\":99}", false, 0, 5, 0, 0},
      {0, 400, "{\"type\":\"error\",\"message\":\"bad json\"}", false, 0, 0, 5, 0},
      {0, 400, "{\"type\":\"error\",\"errorCount\":1}", true, 0, 0, 5, 0},
      {0, 400, "", false, 0, 0, 5, 0},
      {0, 404, "<html>not found</html>", false, 0, 0, 5, 0},
      {0, 429, "", false, 0, 0, 5, 0},
      {0, 302, "", false, 0, 0, 5, 0},
      {0, 500, "{\"type\":\"error\",\"errorCount\":1}", false, 0, 0, 0, 5},
      {0, 503, "", false, 0, 0, 0, 5},
      {SPECTATOR_EHTTP, 0, "", false, 0, 0, 0, 5},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    spectator__http_response_t res;
    memset(&res, 0, sizeof(res));
    res.status = cases[i].status;
    res.body = (char *)cases[i].body;
    res.body_len = strlen(cases[i].body);
    res.body_truncated = cases[i].cut;
    spectator__outcome_t out;
    spectator__http_account(&res, cases[i].rc, 5, &out);
    if (out.sent != cases[i].sent || out.validation != cases[i].validation ||
        out.other != cases[i].other || out.http_error != cases[i].http_error) {
      print_error("case %zu (%ld %s): sent %zu validation %zu other %zu http-error %zu\n", i,
                  cases[i].status, cases[i].body, out.sent, out.validation, out.other,
                  out.http_error);
      fail();
    }
    spectator__aggregator_response_free(&out.answer);
  }
}

static void uris_are_masked_in_log_lines(void **state) {
  (void)state;
  static const char *const cases[][2] = {
      {"http://host:7101/api/v4/update", "http://host:7101/api/v4/update"},
      {"https://u:p@host/api", "https://***@host/api"},
      {"https://u:p/q@host/api", "https://***@host/api"},
      {"https://u:p@w@host/api", "https://***@host/api"},
      {"http://host/api?token=abc&debug", "http://host/api?token=***&***"},
      {"http://u:p@host/api?a=1#secret", "http://***@host/api?a=***#***"},
      {"host:80", "host:80"},
      {"admin:pw@host:80", "***@host:80"},
      {NULL, "(none)"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char buf[SPECTATOR__URI_LOG_MAX];
    assert_string_equal(spectator__redact_uri(cases[i][0], buf, sizeof(buf)), cases[i][1]);
  }
  char tiny[8];
  assert_string_equal(spectator__redact_uri("https://u:p@host/api", tiny, sizeof(tiny)), "https:/");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(each_answer_is_counted_as_validation_helper_counts_it),
      cmocka_unit_test(uris_are_masked_in_log_lines),
      cmocka_unit_test_setup(
          a_400_with_an_html_body_is_dropped_as_other_with_a_warning_naming_the_status, reset),
      cmocka_unit_test_setup(a_400_with_an_empty_body_is_dropped_as_other_with_a_warning, reset),
      cmocka_unit_test_setup(a_validation_answer_over_64_kib_is_dropped_as_other_with_a_warning,
                             reset),
      cmocka_unit_test_setup(a_5xx_after_the_retries_is_dropped_as_http_error, reset),
      cmocka_unit_test_setup(
          a_refused_connection_is_dropped_as_http_error_with_the_reason_and_a_masked_uri, reset),
      cmocka_unit_test_setup(a_validation_answer_counts_its_error_count_and_logs_the_messages,
                             reset),
      cmocka_unit_test_setup(start_and_stop_say_so_at_info_and_a_publish_is_confirmed_at_debug,
                             reset),
      cmocka_unit_test_setup(
          a_recovery_is_logged_and_the_next_outage_is_reported_from_its_first_failure, reset),
  };
  return cmocka_run_group_tests(tests, agg_fixture_setup, agg_fixture_teardown);
}
