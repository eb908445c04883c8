/*
 * Security (docs/reliability.md):
 *
 * - https is verified by default: against a local TLS endpoint whose
 *   certificate comes from a CA made for the test (openssl CLI, in a temporary
 *   directory), publishing fails with http.req.complete{status=ssl_error} and
 *   nothing is delivered unless spectator_config_t.ca_info names that CA; then
 *   the exact value arrives. Another CA, or a certificate for another host,
 *   is refused too. tls_verify = 0 (tests only) skips verification.
 * - Response bodies are read with a size bound (a 10 MiB answer keeps
 *   SPECTATOR__HTTP_MAX_BODY bytes and is flagged as truncated).
 * - Credentials in a URI (http://user:password@host) and the datapoints of a
 *   payload never appear in a log line above debug, whatever fails.
 *
 * The TLS endpoint is libmicrohttpd with MHD_USE_TLS (GnuTLS); it forwards
 * each request to the local test aggregator, which checks and aggregates it.
 * Tests that need the openssl CLI or MHD's TLS support are skipped without
 * them.
 */
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "aggregator.h"
#include "encoder.h"
#include "http.h"
#include "common.h"
#include "test_util.h"

static agg_t *agg;
static char tmpdir[256];
static bool have_certs;

/* ------------------------------------------------------------------------ */
/* Certificates                                                              */
/* ------------------------------------------------------------------------ */

static int run(const char *fmt, ...) SPECTATOR__PRINTF(1, 2);
static int run(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  int rc = system(cmd);
  if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
  return rc;
}

static char *path(const char *name) {
  static char buf[8][512];
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, 512, "%s/%s", tmpdir, name);
  return p;
}

/* A CA, a server certificate for 127.0.0.1 signed by it, a certificate for
 * another host signed by it, and an unrelated CA. */
static bool make_certs(void) {
  if (system("command -v openssl >/dev/null 2>&1") != 0) return false;
  const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const char *d = tmpdir;
  FILE *f = fopen(path("server.ext"), "w");
  if (!f) return false;
  fprintf(f, "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
             "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n");
  fclose(f);
  f = fopen(path("other.ext"), "w");
  if (!f) return false;
  fprintf(f, "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
             "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:other-host.invalid\n");
  fclose(f);
  const char *q = ">/dev/null 2>&1";
  for (int i = 0; i < 2; i++) {
    const char *ca = i ? "other_ca" : "ca";
    if (run("openssl req -x509 %s -keyout %s/%s.key -out %s/%s.pem -days 2 "
            "-subj '/CN=spectator-c test %s' -addext basicConstraints=critical,CA:TRUE "
            "-addext keyUsage=critical,keyCertSign,cRLSign %s",
            ec, d, ca, d, ca, ca, q))
      return false;
  }
  const char *leaves[] = {"server", "other"};
  for (int i = 0; i < 2; i++) {
    const char *l = leaves[i];
    if (run("openssl req %s -keyout %s/%s.key -out %s/%s.csr -subj '/CN=%s' %s", ec, d, l, d, l, l,
            q) ||
        run("openssl x509 -req -in %s/%s.csr -CA %s/ca.pem -CAkey %s/ca.key -CAcreateserial "
            "-out %s/%s.pem -days 2 -extfile %s/%s.ext %s",
            d, l, d, d, d, l, d, l, q))
      return false;
  }
  return true;
}

static char *slurp(const char *file) {
  FILE *f = fopen(file, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
    free(s);
    s = NULL;
  }
  if (s) s[n] = '\0';
  fclose(f);
  return s;
}

/* ------------------------------------------------------------------------ */
/* The TLS endpoint: forwards POSTs to the aggregator                        */
/* ------------------------------------------------------------------------ */

typedef struct {
  char *data;
  size_t len;
} upload_t;

typedef struct {
  struct MHD_Daemon *d;
  char *key, *cert;
  int port;
  char uri[128];
} tls_server_t;

static size_t on_agg_body(char *p, size_t size, size_t n, void *ud) {
  upload_t *b = ud;
  size_t add = size * n;
  char *d = realloc(b->data, b->len + add + 1);
  if (!d) return 0;
  memcpy(d + b->len, p, add);
  b->data = d;
  b->len += add;
  d[b->len] = '\0';
  return add;
}

static enum MHD_Result on_tls_request(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_size,
                                      void **con_cls) {
  (void)cls;
  (void)url;
  (void)version;
  upload_t *up = *con_cls;
  if (!up) {
    up = calloc(1, sizeof(*up));
    if (!up) return MHD_NO;
    *con_cls = up;
    return MHD_YES;
  }
  if (*upload_size) {
    char *d = realloc(up->data, up->len + *upload_size);
    if (!d) return MHD_NO;
    memcpy(d + up->len, upload_data, *upload_size);
    up->data = d;
    up->len += *upload_size;
    *upload_size = 0;
    return MHD_YES;
  }
  long status = 502;
  upload_t answer = {NULL, 0};
  if (strcmp(method, "POST") == 0) {
    CURL *curl = curl_easy_init();
    struct curl_slist *h = NULL;
    const char *ce = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
    char line[256];
    snprintf(line, sizeof(line), "Content-Encoding: %s", ce ? ce : "identity");
    h = curl_slist_append(h, line);
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, agg_url(agg));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, up->data ? up->data : "");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)up->len);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_agg_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    if (curl_easy_perform(curl) == CURLE_OK)
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(curl);
  }
  struct MHD_Response *r = MHD_create_response_from_buffer(
      answer.len, answer.data ? answer.data : (char *)"", MHD_RESPMEM_MUST_COPY);
  free(answer.data);
  if (!r) return MHD_NO;
  enum MHD_Result ret = MHD_queue_response(c, (unsigned int)status, r);
  MHD_destroy_response(r);
  return ret;
}

static void on_tls_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                             enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  upload_t *up = *con_cls;
  if (up) {
    free(up->data);
    free(up);
  }
  *con_cls = NULL;
}

static bool tls_start(tls_server_t *s, const char *leaf) {
  memset(s, 0, sizeof(*s));
  char name[64];
  snprintf(name, sizeof(name), "%s.key", leaf);
  s->key = slurp(path(name));
  snprintf(name, sizeof(name), "%s.pem", leaf);
  s->cert = slurp(path(name));
  if (!s->key || !s->cert) return false;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s->d = MHD_start_daemon(
      MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL,
      0, NULL, NULL, on_tls_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
      MHD_OPTION_HTTPS_MEM_KEY, s->key, MHD_OPTION_HTTPS_MEM_CERT, s->cert,
      MHD_OPTION_NOTIFY_COMPLETED, on_tls_completed, NULL, MHD_OPTION_END);
  if (!s->d) return false;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info ? info->port : 0;
  snprintf(s->uri, sizeof(s->uri), "https://127.0.0.1:%d/api/v4/update", s->port);
  return s->port != 0;
}

static void tls_stop(tls_server_t *s) {
  if (s->d) MHD_stop_daemon(s->d);
  free(s->key);
  free(s->cert);
  memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

static spectator_registry_t *new_reg(const char *uri, const char *ca_info, int verify) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.uri = uri;
  cfg.frequency_s = 60;
  cfg.timeout_s = cfg.connect_timeout_s = 2;
  cfg.env_common_tags = 0;
  cfg.flush_at_exit = 0;
  cfg.ca_info = ca_info;
  if (verify >= 0) cfg.tls_verify = verify;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  assert_non_null(r);
  return r;
}

#define HTTP_TAGS(status, code)                                                              \
  SPECTATOR_TAGS("client", "spectator-c", "method", "POST", "mode", "http-client", "status", \
                 status, "statusCode", code, "statistic", "count")

static double snap(spectator_measurements_t *ms, const char *name, const char *const *tags) {
  double v = 0;
  return tu_find(ms, name, tags, &v) ? v : 0;
}

static double agg_count(const char *name) {
  double v = NAN;
  return agg_get(agg, name, SPECTATOR_TAGS("statistic", "count"), &v) == 0 ? v : NAN;
}

/* Publish 42 on tls.counter through server s with this trust configuration;
 * returns true when it arrived (exactly), false when TLS refused it. */
static bool publish_through(const char *uri, const char *ca_info, int verify) {
  agg_reset(agg);
  spectator_registry_t *r = new_reg(uri, ca_info, verify);
  spectator_counter_add(spectator_registry_counter(r, "tls.counter", NULL), 42);
  spectator_registry_stop(r);
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  double ssl_errors = snap(ms, "http.req.complete", HTTP_TAGS("ssl_error", "ssl_error"));
  double ok = snap(ms, "http.req.complete", HTTP_TAGS("2xx", "200"));
  double sent =
      snap(ms, "spectator.measurements", SPECTATOR_TAGS("id", "sent", "statistic", "count"));
  double dropped = snap(ms, "spectator.measurements",
                        SPECTATOR_TAGS("id", "dropped", "error", "http-error", "statistic", "count"));
  spectator_measurements_free(ms);
  spectator_registry_free(r);
  agg_stats_t st;
  agg_stats(agg, &st);
  if (ok == 1) {
    /* the counter and spectator.registrySize */
    assert_true(ssl_errors == 0 && sent == 2 && dropped == 0);
    assert_true(agg_count("tls.counter") == 42);
    assert_int_equal(st.requests, 1);
    return true;
  }
  /* Refused by TLS: one ssl_error attempt (a rejected certificate is not
   * retried: the next attempt would meet it again), nothing reached the
   * server. */
  assert_true(ssl_errors == 1 && ok == 0 && sent == 0 && dropped == 2);
  assert_int_equal(st.requests, 0);
  assert_true(isnan(agg_count("tls.counter")));
  return false;
}

#define SKIP_WITHOUT_TLS()                                                \
  do {                                                                    \
    if (!have_certs) {                                                    \
      print_message("openssl CLI or MHD TLS support missing: skipped\n"); \
      skip();                                                             \
    }                                                                     \
  } while (0)

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

static void https_is_verified_by_default(void **state) {
  (void)state;
  SKIP_WITHOUT_TLS();
  tls_server_t s;
  assert_true(tls_start(&s, "server"));
  assert_false(publish_through(s.uri, NULL, -1));
  tls_stop(&s);
}

static void the_configured_ca_is_trusted_and_the_exact_value_arrives(void **state) {
  (void)state;
  SKIP_WITHOUT_TLS();
  tls_server_t s;
  assert_true(tls_start(&s, "server"));
  assert_true(publish_through(s.uri, path("ca.pem"), -1));
  tls_stop(&s);
}

static void another_ca_is_not_trusted(void **state) {
  (void)state;
  SKIP_WITHOUT_TLS();
  tls_server_t s;
  assert_true(tls_start(&s, "server"));
  assert_false(publish_through(s.uri, path("other_ca.pem"), -1));
  tls_stop(&s);
}

static void a_certificate_for_another_host_is_refused(void **state) {
  (void)state;
  SKIP_WITHOUT_TLS();
  tls_server_t s;
  assert_true(tls_start(&s, "other"));
  assert_false(publish_through(s.uri, path("ca.pem"), -1));
  tls_stop(&s);
}

static void a_missing_ca_file_is_an_ssl_error_not_a_crash(void **state) {
  (void)state;
  SKIP_WITHOUT_TLS();
  tls_server_t s;
  assert_true(tls_start(&s, "server"));
  assert_false(publish_through(s.uri, path("no-such-ca.pem"), -1));
  tls_stop(&s);
}

static void tls_verify_zero_skips_verification(void **state) {
  (void)state;
  SKIP_WITHOUT_TLS();
  tls_server_t s;
  assert_true(tls_start(&s, "other"));
  assert_true(publish_through(s.uri, NULL, 0));
  tls_stop(&s);
}

static void response_bodies_are_read_with_a_size_bound(void **state) {
  (void)state;
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  spectator__http_t *h = spectator__http_new(agg_url(agg), &cfg);
  assert_non_null(h);
  /* "[0]", gzip-compressed */
  static const char gz[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\x03\x8b\x36\x88\x05\x00"
                           "\xf9\x03\x34\x55\x03\x00\x00\x00";
  size_t gz_len = sizeof(gz) - 1;
  agg_fail_next(agg, 1, AGG_FAIL_HUGE_BODY, 200, 0);
  spectator__http_response_t res;
  assert_int_equal(spectator__http_post(h, gz, gz_len, 10000, &res), 0);
  assert_int_equal(res.status, 200);
  assert_true(res.body_truncated);
  assert_int_equal(res.body_len, SPECTATOR__HTTP_MAX_BODY);
  assert_int_equal(strlen(res.body), SPECTATOR__HTTP_MAX_BODY);
  /* The connection stays usable: the rest was read and discarded. */
  assert_int_equal(spectator__http_post(h, gz, gz_len, 10000, &res), 0);
  assert_int_equal(res.status, 200);
  assert_false(res.body_truncated);
  assert_string_equal(res.body, "{}");
  spectator__http_free(h);
}

/* Nothing above debug may contain the password of a URI or a datapoint. */
static void assert_not_logged_above_debug(const char *secret) {
  for (size_t i = 0; i < tu_log_buf.n; i++) {
    const tu_log_line_t *l = tu_log_line(i);
    if (l->level > SPECTATOR_LOG_DEBUG && strstr(l->msg, secret)) {
      print_error("'%s' logged at level %d: %s\n", secret, (int)l->level, l->msg);
      fail();
    }
  }
}

static void credentials_and_payloads_are_never_logged_above_debug(void **state) {
  (void)state;
  tu_log_capture();
  spectator_log_set_level(SPECTATOR_LOG_DEBUG);
  const char *secret = "s3cretPassw0rd";
  /* A bad scheme in the environment and in a configuration. */
  setenv("SPECTATOR_URI", "ftp://admin:s3cretPassw0rd@example.invalid/api", 1);
  spectator_config_t cfg;
  spectator_config_from_env(&cfg);
  assert_null(cfg.uri);
  setenv("SPECTATOR_URI", "admin:s3cretPassw0rd@example.invalid:80", 1);
  spectator_config_from_env(&cfg);
  unsetenv("SPECTATOR_URI");
  cfg.uri = "gopher://admin:s3cretPassw0rd@example.invalid/";
  assert_null(spectator_registry_new(&cfg));

  /* Publishing with credentials in the URI through every kind of failure. */
  char uri[256];
  snprintf(uri, sizeof(uri), "http://admin:%s@127.0.0.1:%d/api/v4/update", secret, agg_port(agg));
  agg_reset(agg);
  const agg_fail_kind_t kinds[] = {AGG_FAIL_STATUS, AGG_FAIL_DROP, AGG_FAIL_GARBAGE_BODY,
                                   AGG_FAIL_STATUS};
  const int statuses[] = {500, 0, 400, 403};
  for (size_t i = 0; i < 4; i++) {
    spectator_registry_t *r = new_reg(uri, NULL, -1);
    spectator_counter_add(spectator_registry_counter(r, "payload.marker.valid", NULL), 1);
    /* rejected by the aggregator (key too short): its message is logged */
    spectator_counter_add(spectator_registry_counter(r, "bad", SPECTATOR_TAGS("k", "v")), 1);
    agg_fail_next(agg, 3, kinds[i], statuses[i], 0);
    spectator_registry_stop(r);
    spectator_registry_free(r);
    agg_fail_clear(agg); /* rules a non-retried status left */
  }
  /* And a dead port and an unknown host. */
  snprintf(uri, sizeof(uri), "http://admin:%s@127.0.0.1:1/api/v4/update", secret);
  spectator_registry_t *r = new_reg(uri, NULL, -1);
  spectator_counter_add(spectator_registry_counter(r, "payload.marker.valid", NULL), 1);
  spectator_registry_stop(r);
  spectator_registry_free(r);
  snprintf(uri, sizeof(uri), "https://admin:%s@spectator-test.invalid/api/v4/update", secret);
  r = new_reg(uri, NULL, -1);
  spectator_counter_add(spectator_registry_counter(r, "payload.marker.valid", NULL), 1);
  spectator_registry_stop(r);
  spectator_registry_free(r);
  /* Finally a 202 with a validation message: logged, but only about "bad". */
  snprintf(uri, sizeof(uri), "http://admin:%s@127.0.0.1:%d/api/v4/update", secret, agg_port(agg));
  r = new_reg(uri, NULL, -1);
  spectator_counter_add(spectator_registry_counter(r, "payload.marker.valid", NULL), 1);
  spectator_counter_add(spectator_registry_counter(r, "bad", SPECTATOR_TAGS("k", "v")), 1);
  spectator_registry_stop(r);
  spectator_registry_free(r);
  spectator_log_set_level(SPECTATOR_LOG_WARN);

  /* The bad values were reported, with the credentials masked. */
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_INIT, "'ftp://***@example.invalid/api'"),
                   1);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_INIT, "'***@example.invalid:80'"), 1);
  if (tu_log_count_matching(SPECTATOR_LOGGER_HTTP, "rejected") < 1) tu_log_dump();
  assert_true(tu_log_count_matching(SPECTATOR_LOGGER_HTTP, "rejected") >= 1);
  assert_true(tu_log_count_matching(NULL, "payload.marker.valid") >= 1); /* at debug */
  assert_not_logged_above_debug(secret);
  assert_not_logged_above_debug("payload.marker.valid");
  tu_log_release();
}

static int setup(void **state) {
  (void)state;
  agg = agg_start(0);
  if (!agg) return -1;
  snprintf(tmpdir, sizeof(tmpdir), "%s/spectator-tls.XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(tmpdir)) return -1;
  have_certs = MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES && make_certs();
  if (!have_certs) fprintf(stderr, "no TLS endpoint: the https tests are skipped\n");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  agg_stop(agg);
  if (tmpdir[0]) run("rm -rf '%s'", tmpdir);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(https_is_verified_by_default),
      cmocka_unit_test(the_configured_ca_is_trusted_and_the_exact_value_arrives),
      cmocka_unit_test(another_ca_is_not_trusted),
      cmocka_unit_test(a_certificate_for_another_host_is_refused),
      cmocka_unit_test(a_missing_ca_file_is_an_ssl_error_not_a_crash),
      cmocka_unit_test(tls_verify_zero_skips_verification),
      cmocka_unit_test(response_bodies_are_read_with_a_size_bound),
      cmocka_unit_test(credentials_and_payloads_are_never_logged_above_debug),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
