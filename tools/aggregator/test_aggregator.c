/*
 * test_aggregator.c: tests of the local test Atlas aggregator itself. Every
 * test starts its own aggregator on an ephemeral loopback port, posts bodies
 * with libcurl and asserts exact answers, counters and aggregates.
 */
#include "aggregator.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <zlib.h>

#include <cmocka.h>

#define TAGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_TAGS ((const char *const *)NULL)

/* ------------------------------------------------------------------------ */
/* Helpers: payloads, gzip, HTTP                                             */
/* ------------------------------------------------------------------------ */

/* One datapoint: alternating key, value strings (the name is a "name" pair). */
typedef struct {
  const char *const *kv;
  int op;
  double value;
} rec_t;
#define REC(op, v, ...) ((rec_t){(const char *const[]){__VA_ARGS__, NULL}, (op), (v)})

static int str_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void put_json_string(char **p, const char *s) {
  *(*p)++ = '"';
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      *(*p)++ = '\\';
      *(*p)++ = (char)c;
    } else if (c < 0x20) {
      *p += sprintf(*p, "\\u%04x", c);
    } else {
      *(*p)++ = (char)c;
    }
  }
  *(*p)++ = '"';
}

/* Encodes records in the aggregator's format: a sorted string table, then the
 * records as indexes. The caller frees. */
static char *payload(const rec_t *recs, size_t n) {
  size_t nstr = 0, bytes = 64;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; recs[i].kv[j]; j++) {
      nstr++;
      bytes += 6 * strlen(recs[i].kv[j]) + 40;
    }
  const char **strs = calloc(nstr + 1, sizeof *strs);
  assert_non_null(strs);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; recs[i].kv[j]; j++) strs[k++] = recs[i].kv[j];
  qsort(strs, k, sizeof *strs, str_cmp);
  size_t u = 0;
  for (size_t i = 0; i < k; i++)
    if (u == 0 || strcmp(strs[u - 1], strs[i]) != 0) strs[u++] = strs[i];
  char *out = malloc(bytes + 64 * n);
  assert_non_null(out);
  char *p = out;
  p += sprintf(p, "[%zu", u);
  for (size_t i = 0; i < u; i++) {
    *p++ = ',';
    put_json_string(&p, strs[i]);
  }
  for (size_t i = 0; i < n; i++) {
    size_t t = 0;
    while (recs[i].kv[2 * t]) t++;
    p += sprintf(p, ",%zu", t);
    for (size_t j = 0; j < 2 * t; j++) {
      const char **hit = bsearch(&recs[i].kv[j], strs, u, sizeof *strs, str_cmp);
      assert_non_null(hit);
      p += sprintf(p, ",%td", hit - strs);
    }
    p += sprintf(p, ",%d,%.17g", recs[i].op, recs[i].value);
  }
  *p++ = ']';
  *p = '\0';
  free(strs);
  return out;
}

static unsigned char *gzip_bytes(const void *in, size_t len, size_t *out_len) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  assert_int_equal(
      deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
      Z_OK);
  size_t cap = deflateBound(&zs, (uLong)len) + 64;
  unsigned char *out = malloc(cap);
  assert_non_null(out);
  zs.next_in = (Bytef *)(uintptr_t)in;
  zs.avail_in = (uInt)len;
  zs.next_out = out;
  zs.avail_out = (uInt)cap;
  assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
  *out_len = zs.total_out;
  deflateEnd(&zs);
  return out;
}

typedef struct {
  CURLcode rc;
  long status;
  char *body;
  size_t len, cap;
  char content_type[128];
  double seconds;
} resp_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  resp_t *r = ud;
  size_t n = size * nmemb;
  if (r->len + n + 1 > r->cap) {
    size_t cap = r->cap ? r->cap : 1024;
    while (cap < r->len + n + 1) cap *= 2;
    char *b = realloc(r->body, cap);
    if (!b) return 0;
    r->body = b;
    r->cap = cap;
  }
  memcpy(r->body + r->len, data, n);
  r->len += n;
  r->body[r->len] = '\0';
  return n;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One request; encoding NULL sends no Content-Encoding header. */
static resp_t http(const char *method, const char *url, const void *body, size_t len,
                   const char *encoding) {
  resp_t r;
  memset(&r, 0, sizeof r);
  CURL *c = curl_easy_init();
  assert_non_null(c);
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  h = curl_slist_append(h, "Expect:");
  if (encoding) {
    char line[128];
    snprintf(line, sizeof line, "Content-Encoding: %s", encoding);
    h = curl_slist_append(h, line);
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 40000L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "aggregator-test/1.0");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  }
  double t0 = now_s();
  r.rc = curl_easy_perform(c);
  r.seconds = now_s() - t0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  char *ct = NULL;
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
  snprintf(r.content_type, sizeof r.content_type, "%s", ct ? ct : "");
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  if (!r.body) r.body = calloc(1, 1);
  return r;
}

static void resp_free(resp_t *r) {
  free(r->body);
  r->body = NULL;
}

static char *control_url(agg_t *agg, const char *path_and_query) {
  char *u = malloc(256);
  assert_non_null(u);
  snprintf(u, 256, "http://127.0.0.1:%d%s", agg_port(agg), path_and_query);
  return u;
}

static resp_t post_text(agg_t *agg, const char *json, int gzip) {
  if (!gzip) return http("POST", agg_url(agg), json, strlen(json), NULL);
  size_t n;
  unsigned char *z = gzip_bytes(json, strlen(json), &n);
  resp_t r = http("POST", agg_url(agg), z, n, "gzip");
  free(z);
  return r;
}

static resp_t post_recs(agg_t *agg, const rec_t *recs, size_t n, int gzip) {
  char *json = payload(recs, n);
  resp_t r = post_text(agg, json, gzip);
  free(json);
  return r;
}

/* Asserts a 202/400 validation answer and returns its parsed body. */
static cJSON *expect_failure_answer(const resp_t *r, long status, const char *type, int error_count,
                                    int messages) {
  assert_int_equal(r->rc, CURLE_OK);
  assert_int_equal(r->status, status);
  assert_string_equal(r->content_type, "application/json");
  cJSON *j = cJSON_Parse(r->body);
  assert_non_null(j);
  assert_string_equal(cJSON_GetObjectItem(j, "type")->valuestring, type);
  assert_int_equal(cJSON_GetObjectItem(j, "errorCount")->valueint, error_count);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "message")), messages);
  return j;
}

/* Asserts a whole-body 400 diagnostic: {"type":"error","message":"..."}. */
static void expect_diagnostic(const resp_t *r, long status, const char *message_part) {
  assert_int_equal(r->rc, CURLE_OK);
  assert_int_equal(r->status, status);
  cJSON *j = cJSON_Parse(r->body);
  assert_non_null(j);
  assert_string_equal(cJSON_GetObjectItem(j, "type")->valuestring, "error");
  const cJSON *m = cJSON_GetObjectItem(j, "message");
  assert_true(cJSON_IsString(m));
  if (!strstr(m->valuestring, message_part))
    fail_msg("message '%s' lacks '%s'", m->valuestring, message_part);
  assert_null(cJSON_GetObjectItem(j, "errorCount"));
  cJSON_Delete(j);
}

static double value_of(agg_t *agg, const char *name, const char *const *tags) {
  double v = NAN;
  if (agg_get(agg, name, tags, &v) != 0) fail_msg("series %s not found", name);
  return v;
}

static int setup(void **state) {
  agg_t *agg = agg_start(0);
  if (!agg) return -1;
  *state = agg;
  return 0;
}

static int teardown(void **state) {
  agg_stop(*state);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Accepted bodies and aggregation                                           */
/* ------------------------------------------------------------------------ */

static void gzip_body_with_two_counters_is_aggregated_exactly(void **state) {
  agg_t *agg = *state;
  rec_t recs[] = {REC(0, 3, "name", "requests", "statistic", "count", "nf.app", "www"),
                  REC(0, 1.5, "name", "errors", "statistic", "count", "nf.app", "www")};
  for (int i = 0; i < 2; i++) {
    resp_t r = post_recs(agg, recs, 2, 1);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{}");
    assert_string_equal(r.content_type, "application/json");
    resp_free(&r);
  }
  assert_true(value_of(agg, "requests", TAGS("statistic", "count", "nf.app", "www")) == 6.0);
  assert_true(value_of(agg, "errors", TAGS("nf.app", "www", "statistic", "count")) == 3.0);
  assert_int_equal(agg_series_count(agg), 2);

  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.requests, 2);
  assert_int_equal(st.ok_200, 2);
  assert_int_equal(st.gzip_bodies, 2);
  assert_int_equal(st.plain_bodies, 0);
  assert_int_equal(st.invalid_json_bodies, 0);
  assert_int_equal(st.strict_json_bodies, 2);
  assert_int_equal(st.measurements_received, 4);
  assert_int_equal(st.measurements_accepted, 4);
  assert_int_equal(st.measurements_dropped, 0);
  assert_int_equal(st.unsorted_string_tables, 0);
  assert_int_equal(st.max_request_measurements, 2);

  char ct[64], ce[64], ua[64];
  agg_last_headers(agg, ct, sizeof ct, ce, sizeof ce, ua, sizeof ua);
  assert_string_equal(ct, "application/json");
  assert_string_equal(ce, "gzip");
  assert_string_equal(ua, "aggregator-test/1.0");
}

static void plain_body_is_accepted_and_counted_as_plain(void **state) {
  agg_t *agg = *state;
  resp_t r = post_text(agg, "[4,\"count\",\"name\",\"statistic\",\"x.y\",2,1,3,2,0,0,5]", 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{}");
  resp_free(&r);
  assert_true(value_of(agg, "x.y", TAGS("statistic", "count")) == 5.0);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.plain_bodies, 1);
  assert_int_equal(st.gzip_bodies, 0);
  char ce[16] = "unset";
  agg_last_headers(agg, NULL, 0, ce, sizeof ce, NULL, 0);
  assert_string_equal(ce, "");
}

static void body_with_no_records_is_accepted(void **state) {
  agg_t *agg = *state;
  resp_t r = post_text(agg, "[0]", 1);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{}");
  resp_free(&r);
  assert_int_equal(agg_series_count(agg), 0);
}

static void max_op_keeps_the_largest_value(void **state) {
  agg_t *agg = *state;
  const double values[] = {3, 7.25, 5};
  for (size_t i = 0; i < 3; i++) {
    rec_t rec[] = {REC(10, values[i], "name", "queue.size", "statistic", "max"),
                   REC(10, -values[i], "name", "temperature", "statistic", "gauge")};
    resp_t r = post_recs(agg, rec, 2, 1);
    assert_int_equal(r.status, 200);
    resp_free(&r);
  }
  assert_true(value_of(agg, "queue.size", TAGS("statistic", "max")) == 7.25);
  /* The max of negative values is not clamped at zero. */
  assert_true(value_of(agg, "temperature", TAGS("statistic", "gauge")) == -3.0);
  agg_series_info_t info;
  assert_int_equal(agg_get_series(agg, "queue.size", TAGS("statistic", "max"), &info), 0);
  assert_int_equal(info.op, 10);
  assert_true(info.last == 5.0);
  assert_int_equal(info.count, 3);
  assert_true(info.interval_value == 7.25);
}

static void add_op_sums_values_across_records_of_one_body(void **state) {
  agg_t *agg = *state;
  rec_t recs[] = {REC(0, 0.1, "name", "bytes", "statistic", "totalAmount"),
                  REC(0, 0.2, "name", "bytes", "statistic", "totalAmount"),
                  REC(0, -1, "name", "bytes", "statistic", "totalAmount")};
  resp_t r = post_recs(agg, recs, 3, 1);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  assert_true(value_of(agg, "bytes", TAGS("statistic", "totalAmount")) == 0.1 + 0.2 + -1.0);
}

static void repeated_key_in_a_record_keeps_the_last_value(void **state) {
  agg_t *agg = *state;
  resp_t r = post_text(agg, "[5,\"a\",\"b\",\"k1\",\"m.x\",\"name\",3,4,3,2,0,2,1,0,1]", 0);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  assert_true(value_of(agg, "m.x", TAGS("k1", "b")) == 1.0);
  assert_int_equal(agg_get(agg, "m.x", TAGS("k1", "a"), NULL), -1);
}

static void unsorted_string_table_is_accepted_and_counted(void **state) {
  agg_t *agg = *state;
  resp_t r = post_text(agg, "[3,\"name\",\"m.x\",\"m.x\",1,0,2,0,1]", 0);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.unsorted_string_tables, 1);
  assert_true(value_of(agg, "m.x", NO_TAGS) == 1.0);
}

static void sanitization_merges_a_space_b_and_a_underscore_b(void **state) {
  agg_t *agg = *state;
  rec_t recs[] = {REC(0, 1, "name", "a b", "k y", "v/1"), REC(0, 2, "name", "a_b", "k_y", "v_1"),
                  REC(0, 4, "name", "a_b", "k?y", "v 1"),
                  /* One '_' per code point: two-byte and four-byte characters. */
                  REC(0, 8, "name", "caf\xc3\xa9", "emoji", "x\xf0\x9f\x98\x80y")};
  resp_t r = post_recs(agg, recs, 4, 1);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  assert_true(value_of(agg, "a_b", TAGS("k_y", "v_1")) == 7.0);
  assert_true(value_of(agg, "caf_", TAGS("emoji", "x_y")) == 8.0);
  assert_int_equal(agg_series_count(agg), 2);
}

static void collect(const char *name, const char *tags, int op, double value, void *ctx) {
  char *out = ctx;
  size_t len = strlen(out);
  snprintf(out + len, 512 - len, "%s{%s}%d:%g;", name, tags, op, value);
}

static void foreach_visits_series_sorted_by_name_then_tags(void **state) {
  agg_t *agg = *state;
  rec_t recs[] = {REC(0, 1, "name", "ab", "statistic", "count"),
                  REC(10, 2, "name", "aa", "statistic", "max", "id", "2"),
                  REC(0, 3, "name", "aa", "statistic", "count", "id", "1"),
                  REC(0, 4, "name", "aab", "statistic", "count")};
  resp_t r = post_recs(agg, recs, 4, 0);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  char seen[512] = "";
  agg_foreach(agg, collect, seen);
  /* By name first: "aa" < "aab" although "aa{" > "aab{". */
  assert_string_equal(seen, "aa{id=1,statistic=count}0:3;aa{id=2,statistic=max}10:2;"
                            "aab{statistic=count}0:4;ab{statistic=count}0:1;");
}

/* ------------------------------------------------------------------------ */
/* Validation                                                                */
/* ------------------------------------------------------------------------ */

/* Posts good, bad, good; expects 202 with one exact message, the good ones
 * aggregated and the bad one not. */
static void expect_only_bad_dropped(agg_t *agg, rec_t bad, const char *message) {
  rec_t recs[] = {REC(0, 1, "name", "good.one", "statistic", "count"), bad,
                  REC(0, 2, "name", "good.two", "statistic", "count")};
  resp_t r = post_recs(agg, recs, 3, 1);
  cJSON *j = expect_failure_answer(&r, 202, "partial", 1, 1);
  assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "message"), 0)->valuestring,
                      message);
  cJSON_Delete(j);
  resp_free(&r);
  assert_true(value_of(agg, "good.one", TAGS("statistic", "count")) == 1.0);
  assert_true(value_of(agg, "good.two", TAGS("statistic", "count")) == 2.0);
  assert_int_equal(agg_series_count(agg), 2);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.partial_202, 1);
  assert_int_equal(st.measurements_received, 3);
  assert_int_equal(st.measurements_accepted, 2);
  assert_int_equal(st.measurements_dropped, 1);
}

/* Posts one datapoint and expects it accepted. */
static void expect_accepted(agg_t *agg, rec_t rec) {
  resp_t r = post_recs(agg, &rec, 1, 1);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{}");
  resp_free(&r);
}

static char *repeat(char c, size_t n) {
  char *s = malloc(n + 1);
  assert_non_null(s);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

static void key_shorter_than_two_characters_is_dropped(void **state) {
  expect_only_bad_dropped(*state, REC(0, 9, "name", "bad", "k", "v"),
                          "key too short: [k] (1 < 2) (tags={\"k\":\"v\",\"name\":\"bad\"})");
}

static void empty_key_is_dropped(void **state) {
  expect_only_bad_dropped(*state, REC(0, 9, "name", "bad", "", "v"),
                          "key too short: [] (0 < 2) (tags={\"\":\"v\",\"name\":\"bad\"})");
}

static void key_longer_than_sixty_characters_is_dropped(void **state) {
  char *k60 = repeat('k', 60), *k61 = repeat('k', 61);
  char msg[512];
  snprintf(msg, sizeof msg, "key too long: [%s] (61 > 60) (tags={\"%s\":\"v\",\"name\":\"bad\"})",
           k61, k61);
  expect_only_bad_dropped(*state, REC(0, 9, "name", "bad", k61, "v"), msg);
  expect_accepted(*state, REC(0, 9, "name", "fine", k60, "v"));
  free(k60);
  free(k61);
}

static void name_shorter_than_two_characters_is_dropped(void **state) {
  expect_only_bad_dropped(*state, REC(0, 9, "name", "a", "statistic", "count"),
                          "value too short: name = [a] (1 < 2) "
                          "(tags={\"name\":\"a\",\"statistic\":\"count\"})");
  expect_accepted(*state, REC(0, 9, "name", "ab"));
}

static void name_longer_than_255_characters_is_dropped(void **state) {
  char *n255 = repeat('n', 255), *n256 = repeat('n', 256);
  char msg[1024];
  snprintf(msg, sizeof msg, "value too long: name = [%s] (256 > 255) (tags={\"name\":\"%s\"})",
           n256, n256);
  expect_only_bad_dropped(*state, REC(0, 9, "name", n256), msg);
  expect_accepted(*state, REC(0, 9, "name", n255));
  free(n255);
  free(n256);
}

static void value_longer_than_120_characters_is_dropped(void **state) {
  char *v120 = repeat('v', 120), *v121 = repeat('v', 121);
  char msg[512];
  snprintf(msg, sizeof msg,
           "value too long: id = [%s] (121 > 120) (tags={\"id\":\"%s\",\"name\":\"bad\"})", v121,
           v121);
  expect_only_bad_dropped(*state, REC(0, 9, "name", "bad", "id", v121), msg);
  expect_accepted(*state, REC(0, 9, "name", "fine", "id", v120));
  free(v120);
  free(v121);
}

static void empty_value_is_dropped(void **state) {
  expect_only_bad_dropped(*state, REC(0, 9, "name", "bad", "id", ""),
                          "value too short: id = [] (0 < 1) (tags={\"id\":\"\",\"name\":\"bad\"})");
  expect_accepted(*state, REC(0, 9, "name", "fine", "id", "x"));
}

static void unknown_atlas_key_is_dropped_and_known_ones_pass(void **state) {
  expect_only_bad_dropped(*state, REC(0, 9, "name", "bad", "atlas.foo", "x"),
                          "invalid key for reserved prefix 'atlas.': atlas.foo "
                          "(tags={\"atlas.foo\":\"x\",\"name\":\"bad\"})");
  expect_accepted(*state, REC(0, 9, "name", "fine", "atlas.aggr", "a", "atlas.dstype", "rate",
                              "atlas.offset", "0", "atlas.legacy", "l"));
}

static void unknown_nf_key_is_dropped_and_all_known_ones_pass(void **state) {
  expect_only_bad_dropped(*state, REC(0, 9, "name", "bad", "nf.foo", "x"),
                          "invalid key for reserved prefix 'nf.': nf.foo "
                          "(tags={\"name\":\"bad\",\"nf.foo\":\"x\"})");
  /* 20 nf.* keys plus name and statistic: only 2 user tags. */
  expect_accepted(*state, REC(0, 9, "name", "fine", "statistic", "count", "nf.account", "1",
                              "nf.ami", "a", "nf.app", "a", "nf.asg", "a", "nf.cluster", "a",
                              "nf.container", "a", "nf.country", "a", "nf.country.rollup", "a",
                              "nf.job", "a", "nf.node", "a", "nf.process", "a", "nf.region", "a",
                              "nf.shard1", "a", "nf.shard2", "a", "nf.stack", "a", "nf.subnet", "a",
                              "nf.task", "a", "nf.vmtype", "a", "nf.vpc", "a", "nf.zone", "a"));
}

static void more_than_twenty_user_tags_are_dropped(void **state) {
  /* name + 19 tags = 20 user tags: fine; name + 20 = 21: dropped. nf.* and
   * atlas.* keys do not count. */
  expect_accepted(*state,
                  REC(0, 9, "name", "fine", "t01", "v", "t02", "v", "t03", "v", "t04", "v", "t05",
                      "v", "t06", "v", "t07", "v", "t08", "v", "t09", "v", "t10", "v", "t11", "v",
                      "t12", "v", "t13", "v", "t14", "v", "t15", "v", "t16", "v", "t17", "v", "t18",
                      "v", "t19", "v", "nf.app", "a", "atlas.dstype", "rate"));
  agg_reset(*state);
  rec_t bad =
      REC(0, 9, "name", "bad", "t01", "v", "t02", "v", "t03", "v", "t04", "v", "t05", "v", "t06",
          "v", "t07", "v", "t08", "v", "t09", "v", "t10", "v", "t11", "v", "t12", "v", "t13", "v",
          "t14", "v", "t15", "v", "t16", "v", "t17", "v", "t18", "v", "t19", "v", "t20", "v");
  expect_only_bad_dropped(
      *state, bad,
      "too many user tags: 21 > 20 (tags={\"name\":\"bad\",\"t01\":\"v\",\"t02\":\"v\",\"t03\":"
      "\"v\",\"t04\":\"v\",\"t05\":\"v\",\"t06\":\"v\",\"t07\":\"v\",\"t08\":\"v\",\"t09\":\"v\","
      "\"t10\":\"v\",\"t11\":\"v\",\"t12\":\"v\",\"t13\":\"v\",\"t14\":\"v\",\"t15\":\"v\",\"t16\":"
      "\"v\",\"t17\":\"v\",\"t18\":\"v\",\"t19\":\"v\",\"t20\":\"v\"})");
}

static void datapoint_without_name_is_dropped(void **state) {
  expect_only_bad_dropped(*state, REC(0, 9, "statistic", "count"),
                          "missing key 'name' (tags={\"statistic\":\"count\"})");
}

static void all_datapoints_bad_answers_400_with_type_error(void **state) {
  agg_t *agg = *state;
  rec_t recs[] = {REC(0, 1, "name", "x"), REC(0, 1, "name", "ok", "nf.nope", "1")};
  resp_t r = post_recs(agg, recs, 2, 1);
  cJSON *j = expect_failure_answer(&r, 400, "error", 2, 2);
  cJSON_Delete(j);
  resp_free(&r);
  assert_int_equal(agg_series_count(agg), 0);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.bad_400, 1);
  assert_int_equal(st.measurements_dropped, 2);
  assert_int_equal(st.invalid_json_bodies, 0);
  assert_int_equal(st.malformed_payloads, 0);
}

static void message_limit_caps_messages_but_not_error_count(void **state) {
  agg_t *agg = *state;
  agg_set_max_messages(agg, 1);
  rec_t recs[] = {REC(0, 1, "name", "x"), REC(0, 1, "name", "y"), REC(0, 1, "name", "z"),
                  REC(0, 1, "name", "fine")};
  resp_t r = post_recs(agg, recs, 4, 1);
  cJSON *j = expect_failure_answer(&r, 202, "partial", 3, 1);
  cJSON_Delete(j);
  resp_free(&r);
}

/* ------------------------------------------------------------------------ */
/* Invalid JSON and malformed payloads                                       */
/* ------------------------------------------------------------------------ */

static void nan_and_infinity_literals_are_rejected_as_invalid_json(void **state) {
  agg_t *agg = *state;
  const char *bodies[] = {"[2,\"name\",\"x.y\",1,0,1,0,NaN]", "[2,\"name\",\"x.y\",1,0,1,0,nan]",
                          "[2,\"name\",\"x.y\",1,0,1,0,Infinity]",
                          "[2,\"name\",\"x.y\",1,0,1,0,-Infinity]"};
  for (size_t i = 0; i < 4; i++) {
    /* cJSON itself refuses them too (the length counts the terminating NUL). */
    assert_null(cJSON_ParseWithLengthOpts(bodies[i], strlen(bodies[i]) + 1, NULL, 1));
    assert_int_equal(agg_json_is_strict(bodies[i], strlen(bodies[i])), 0);
    resp_t r = post_text(agg, bodies[i], 1);
    expect_diagnostic(&r, 400, "not strict RFC 8259 JSON");
    resp_free(&r);
  }
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.invalid_json_bodies, 4);
  assert_int_equal(st.strict_json_bodies, 0);
  assert_int_equal(st.bad_400, 4);
  assert_int_equal(st.gzip_bodies, 4);
  assert_int_equal(st.measurements_received, 0);
  assert_int_equal(agg_series_count(agg), 0);
}

static void bodies_cjson_accepts_but_strict_json_forbids_are_rejected(void **state) {
  agg_t *agg = *state;
  static const struct {
    const char *text;
    size_t len;
  } bodies[] = {
#define B(s) {s, sizeof s - 1}
      B("[2,\"name\",\"x.y\",1,0,1,0,01]"),            /* leading zero */
      B("[2,\"name\",\"x.y\",1,0,1,0,1.]"),            /* bare dot */
      B("\xEF\xBB\xBF[2,\"name\",\"x.y\",1,0,1,0,1]"), /* BOM */
      B("\v[2,\"name\",\"x.y\",1,0,1,0,1]"),           /* vertical tab as whitespace */
      B("[2,\"name\",\"x\x01y\",1,0,1,0,1]"),          /* raw control character */
      B("[2,\"name\",\"x\xffy\",1,0,1,0,1]"),          /* invalid UTF-8 */
      B("[2,\"name\",\"x\xc0\xaf\",1,0,1,0,1]"),       /* overlong UTF-8 */
#undef B
  };
  size_t n = sizeof bodies / sizeof bodies[0];
  for (size_t i = 0; i < n; i++) {
    cJSON *j = cJSON_ParseWithLengthOpts(bodies[i].text, bodies[i].len + 1, NULL, 1);
    if (!j) fail_msg("cJSON now rejects case %zu: make this test stricter", i);
    cJSON_Delete(j);
    assert_int_equal(agg_json_is_strict(bodies[i].text, bodies[i].len), 0);
    resp_t r = http("POST", agg_url(agg), bodies[i].text, bodies[i].len, NULL);
    expect_diagnostic(&r, 400, "not strict RFC 8259 JSON");
    resp_free(&r);
  }
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.invalid_json_bodies, n);
  assert_int_equal(agg_series_count(agg), 0);
}

static void strict_checker_accepts_valid_json_and_rejects_the_rest(void **state) {
  (void)state;
  const char *good[] = {"[]",
                        "{}",
                        " [ 1 , -0 , -0.5e+10 , 1E-2 , true , false , null ] ",
                        "{\"a\":{\"b\":[\"\\u00e9\\ud83d\\ude00\\\"\\\\\\/\\b\\f\\n\\r\\t\"]}}",
                        "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",
                        "0",
                        "\r\n\t[0]"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    if (!agg_json_is_strict(good[i], strlen(good[i]))) fail_msg("rejected: %s", good[i]);
  const char *bad[] = {"",
                       "[",
                       "[1,]",
                       "{\"a\"}",
                       "{\"a\":1,}",
                       "[+1]",
                       "[.5]",
                       "[1e]",
                       "[-]",
                       "[0x10]",
                       "[1] x",
                       "[1][2]",
                       "['a']",
                       "[\"\\x\"]",
                       "[\"\\ud800\"]",
                       "[\"\\udc00\"]",
                       "[tru]",
                       "{1:2}",
                       "[\"a\tb\"]",
                       "[\"\xed\xa0\x80\"]",
                       "[\"\xf4\x90\x80\x80\"]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (agg_json_is_strict(bad[i], strlen(bad[i]))) fail_msg("accepted: %s", bad[i]);
  /* Nesting: 1000 levels pass, 1001 do not. */
  char *deep = malloc(2004);
  assert_non_null(deep);
  memset(deep, '[', 1001);
  memset(deep + 1001, ']', 1001);
  assert_int_equal(agg_json_is_strict(deep + 1, 2000), 1);
  assert_int_equal(agg_json_is_strict(deep, 2002), 0);
  free(deep);
  /* An embedded NUL is not whitespace. */
  assert_int_equal(agg_json_is_strict("[1]\0", 4), 0);
  assert_int_equal(agg_json_is_strict(NULL, 0), 0);
}

static void malformed_payloads_are_rejected_with_400(void **state) {
  agg_t *agg = *state;
  static const struct {
    const char *body, *message;
  } cases[] = {
      {"[2,\"name\",\"x.y\",1,0,5,0,1]", "record 0: tag value 0 is not an index"},
      {"[2,\"name\",\"x.y\",1,-1,1,0,1]", "record 0: tag key 0 is not an index"},
      {"[2,\"name\",\"x.y\",1,0,1.5,0,1]", "record 0: tag value 0 is not an index"},
      {"[2,\"name\",\"x.y\",1,0,\"1\",0,1]", "record 0: tag value 0 is not an index"},
      {"[2,\"name\",\"x.y\",1,0,1,0,1,1,0,1,0]", "record 1: truncated (missing op or value)"},
      {"[2,\"name\",\"x.y\",2,0,1,0]", "record 0: truncated (2 tags announced)"},
      {"[2,\"name\",\"x.y\",1,0,1,3,1]", "record 0: op must be 0 (add) or 10 (max)"},
      {"[2,\"name\",\"x.y\",1,0,1,0,\"1\"]", "record 0: value is not a number"},
      {"[2,\"name\",\"x.y\",1,0,1,0,1e400]", "record 0: value is not finite"},
      {"[2,\"name\",\"x.y\",1,0,1,0,1,\"x\"]", "record 1: tag count is not an integer"},
      {"[2,\"name\",3,1,0,1,0,1]", "string table entry 1 of 2 is not a string"},
      {"[9,\"name\"]", "expected the string table size first"},
      {"[]", "expected the string table size first"},
      {"{\"a\":1}", "expected a JSON array"},
      {"[2,\"name\",\"x\\u0000y\",1,0,1,0,1]", "\\u0000 in strings is not supported"},
  };
  size_t n = sizeof cases / sizeof cases[0];
  for (size_t i = 0; i < n; i++) {
    resp_t r = post_text(agg, cases[i].body, 1);
    expect_diagnostic(&r, 400, cases[i].message);
    resp_free(&r);
  }
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.malformed_payloads, n);
  assert_int_equal(st.invalid_json_bodies, 0);
  assert_int_equal(st.bad_400, n);
  assert_int_equal(st.measurements_received, 0);
  assert_int_equal(agg_series_count(agg), 0);
}

static void malformed_record_after_good_ones_aggregates_nothing(void **state) {
  agg_t *agg = *state;
  resp_t r = post_text(agg, "[2,\"name\",\"x.y\",1,0,1,0,1,1,0,7,0,1]", 1);
  expect_diagnostic(&r, 400, "record 1");
  resp_free(&r);
  assert_int_equal(agg_series_count(agg), 0);
}

static void corrupt_gzip_answers_400_and_counts_a_gzip_error(void **state) {
  agg_t *agg = *state;
  const char *plain = "[0]";
  resp_t r = http("POST", agg_url(agg), plain, strlen(plain), "gzip");
  expect_diagnostic(&r, 400, "invalid gzip body");
  resp_free(&r);
  /* Bytes after the gzip member are refused too. */
  size_t zn;
  unsigned char *z = gzip_bytes(plain, strlen(plain), &zn);
  unsigned char *z2 = malloc(zn + 1);
  assert_non_null(z2);
  memcpy(z2, z, zn);
  z2[zn] = 'x';
  r = http("POST", agg_url(agg), z2, zn + 1, "gzip");
  expect_diagnostic(&r, 400, "invalid gzip body");
  resp_free(&r);
  /* A truncated member as well. */
  r = http("POST", agg_url(agg), z, zn - 4, "gzip");
  expect_diagnostic(&r, 400, "invalid gzip body");
  resp_free(&r);
  free(z);
  free(z2);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.gzip_errors, 3);
  assert_int_equal(st.invalid_json_bodies, 3);
  assert_int_equal(st.gzip_bodies, 3);
}

static void unknown_content_encoding_answers_415(void **state) {
  agg_t *agg = *state;
  resp_t r = http("POST", agg_url(agg), "[0]", 3, "br");
  expect_diagnostic(&r, 415, "Content-Encoding");
  resp_free(&r);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.other_status, 1);
  assert_int_equal(st.gzip_bodies + st.plain_bodies, 0);
}

static void bodies_over_the_size_limit_answer_413(void **state) {
  agg_t *agg = *state;
  agg_set_max_body_size(agg, 1000);
  char *big = repeat(' ', 2000);
  big[0] = '[';
  big[1] = '0';
  big[2] = ']';
  resp_t r = http("POST", agg_url(agg), big, 2000, NULL);
  expect_diagnostic(&r, 413, "too large");
  resp_free(&r);
  /* Small compressed, too large once inflated. */
  size_t zn;
  unsigned char *z = gzip_bytes(big, 2000, &zn);
  assert_true(zn < 1000);
  r = http("POST", agg_url(agg), z, zn, "gzip");
  expect_diagnostic(&r, 413, "decompressed request body too large");
  resp_free(&r);
  /* At the limit it is fine. */
  r = http("POST", agg_url(agg), big, 1000, NULL);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  free(z);
  free(big);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.too_large_bodies, 2);
  assert_int_equal(st.strict_json_bodies, 1); /* only the one at the limit was looked at */
  assert_int_equal(st.other_status, 2);
  assert_int_equal(st.ok_200, 1);
}

/* ------------------------------------------------------------------------ */
/* Failure injection                                                         */
/* ------------------------------------------------------------------------ */

static const rec_t one_count[] = {REC(0, 1, "name", "calls", "statistic", "count")};

static void injected_503_for_two_requests_then_ok(void **state) {
  agg_t *agg = *state;
  agg_fail_next(agg, 2, AGG_FAIL_STATUS, 503, 0);
  assert_int_equal(agg_fail_pending(agg), 2);
  const long expected[] = {503, 503, 200};
  for (size_t i = 0; i < 3; i++) {
    resp_t r = post_recs(agg, one_count, 1, 1);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, expected[i]);
    assert_int_equal(r.len, i < 2 ? 0 : 2);
    resp_free(&r);
  }
  assert_true(value_of(agg, "calls", TAGS("statistic", "count")) == 1.0);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.requests, 3);
  assert_int_equal(st.other_status, 2);
  assert_int_equal(st.ok_200, 1);
  assert_int_equal(st.injected_failures, 2);
  assert_int_equal(st.gzip_bodies, 3);
  assert_int_equal(st.measurements_received, 1);
  assert_int_equal(agg_fail_pending(agg), 0);
}

static void injected_2xx_status_is_aggregated_with_an_empty_answer(void **state) {
  agg_t *agg = *state;
  agg_fail_next(agg, 1, AGG_FAIL_STATUS, 200, 0);
  resp_t r = post_recs(agg, one_count, 1, 1);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.len, 0);
  resp_free(&r);
  assert_true(value_of(agg, "calls", TAGS("statistic", "count")) == 1.0);
}

static void failure_rules_queue_up_in_order(void **state) {
  agg_t *agg = *state;
  agg_fail_next(agg, 1, AGG_FAIL_STATUS, 429, 0);
  agg_fail_next(agg, 2, AGG_FAIL_STATUS, 500, 0);
  agg_fail_next(agg, 1, AGG_FAIL_STATUS, -5, 0); /* out of range: the default 503 */
  const long expected[] = {429, 500, 500, 503, 200};
  for (size_t i = 0; i < 5; i++) {
    resp_t r = post_recs(agg, one_count, 1, 1);
    assert_int_equal(r.status, expected[i]);
    resp_free(&r);
  }
  agg_fail_next(agg, 3, AGG_FAIL_STATUS, 500, 0);
  agg_fail_clear(agg);
  assert_int_equal(agg_fail_pending(agg), 0);
}

static void dropped_connection_gives_curl_an_empty_reply(void **state) {
  agg_t *agg = *state;
  agg_fail_next(agg, 1, AGG_FAIL_DROP, 0, 0);
  resp_t r = post_recs(agg, one_count, 1, 1);
  assert_int_equal(r.rc, CURLE_GOT_NOTHING);
  resp_free(&r);
  assert_int_equal(agg_get(agg, "calls", TAGS("statistic", "count"), NULL), -1);
  r = post_recs(agg, one_count, 1, 1);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  assert_true(value_of(agg, "calls", TAGS("statistic", "count")) == 1.0);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.requests, 2);
  assert_int_equal(st.dropped_connections, 1);
  assert_int_equal(st.ok_200, 1);
  assert_int_equal(st.gzip_bodies, 2);
}

static void delayed_request_is_answered_late_and_aggregated(void **state) {
  agg_t *agg = *state;
  agg_fail_next(agg, 1, AGG_FAIL_DELAY, 0, 300);
  resp_t r = post_recs(agg, one_count, 1, 1);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{}");
  assert_true(r.seconds >= 0.3);
  resp_free(&r);
  assert_true(value_of(agg, "calls", TAGS("statistic", "count")) == 1.0);
}

static void delay_with_a_status_answers_it_late_without_aggregating(void **state) {
  agg_t *agg = *state;
  agg_fail_next(agg, 1, AGG_FAIL_DELAY, 504, 200);
  resp_t r = post_recs(agg, one_count, 1, 1);
  assert_int_equal(r.status, 504);
  assert_true(r.seconds >= 0.2);
  resp_free(&r);
  assert_int_equal(agg_series_count(agg), 0);
}

static void huge_answer_body_is_ten_mebibytes(void **state) {
  agg_t *agg = *state;
  agg_fail_next(agg, 1, AGG_FAIL_HUGE_BODY, 0, 0);
  resp_t r = post_recs(agg, one_count, 1, 1);
  assert_int_equal(r.rc, CURLE_OK);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.len, AGG_HUGE_BODY_SIZE);
  resp_free(&r);
  /* A 2xx answer: the body was processed. */
  assert_true(value_of(agg, "calls", TAGS("statistic", "count")) == 1.0);
}

static void garbage_answer_body_is_not_json(void **state) {
  agg_t *agg = *state;
  agg_fail_next(agg, 1, AGG_FAIL_GARBAGE_BODY, 202, 0);
  agg_fail_next(agg, 1, AGG_FAIL_GARBAGE_BODY, 500, 0);
  resp_t r = post_recs(agg, one_count, 1, 1);
  assert_int_equal(r.status, 202);
  assert_true(r.len > 10);
  assert_int_equal(agg_json_is_strict(r.body, r.len), 0);
  resp_free(&r);
  r = post_recs(agg, one_count, 1, 1);
  assert_int_equal(r.status, 500);
  assert_int_equal(agg_json_is_strict(r.body, r.len), 0);
  resp_free(&r);
  assert_true(value_of(agg, "calls", TAGS("statistic", "count")) == 1.0);
}

typedef struct {
  agg_t *agg;
  resp_t resp;
  double delay_s;
} poster_t;

static void *post_in_thread(void *arg) {
  poster_t *p = arg;
  if (p->delay_s > 0) {
    struct timespec ts = {0, (long)(p->delay_s * 1e9)};
    nanosleep(&ts, NULL);
  }
  char *json = payload(one_count, 1);
  p->resp = http("POST", agg_url(p->agg), json, strlen(json), NULL);
  free(json);
  return NULL;
}

static void stop_during_a_delay_returns_promptly(void **state) {
  (void)state;
  agg_t *agg = agg_start(0);
  assert_non_null(agg);
  agg_fail_next(agg, 1, AGG_FAIL_DELAY, 0, 30000);
  poster_t p = {agg, {0}, 0};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, post_in_thread, &p), 0);
  /* The request took its rule once its headers arrived. */
  double t0 = now_s();
  while (agg_fail_pending(agg) != 0 && now_s() - t0 < 10) {
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL);
  }
  assert_int_equal(agg_fail_pending(agg), 0);
  struct timespec ts = {0, 200000000};
  nanosleep(&ts, NULL);
  double s0 = now_s();
  agg_stop(agg);
  double stop_s = now_s() - s0;
  assert_int_equal(pthread_join(t, NULL), 0);
  if (stop_s > 5) fail_msg("agg_stop took %.3f s during a 30 s delay", stop_s);
  assert_int_not_equal(p.resp.rc, CURLE_OK);
  assert_true(p.resp.seconds < 10);
  resp_free(&p.resp);
}

static void stop_with_an_idle_keep_alive_connection_returns_promptly(void **state) {
  (void)state;
  agg_t *agg = agg_start(0);
  assert_non_null(agg);
  /* One handle, reused: the connection stays open after the answer. */
  CURL *c = curl_easy_init();
  assert_non_null(c);
  char *json = payload(one_count, 1);
  resp_t r;
  memset(&r, 0, sizeof r);
  curl_easy_setopt(c, CURLOPT_URL, agg_url(agg));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  assert_int_equal(curl_easy_perform(c), CURLE_OK);
  assert_int_equal(curl_easy_perform(c), CURLE_OK);
  long connects = -1;
  curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
  assert_int_equal(connects, 0); /* the second request reused the connection */
  assert_true(value_of(agg, "calls", TAGS("statistic", "count")) == 2.0);
  double s0 = now_s();
  agg_stop(agg);
  double stop_s = now_s() - s0;
  if (stop_s > 5) fail_msg("agg_stop took %.3f s with an idle connection", stop_s);
  curl_easy_cleanup(c);
  free(json);
  resp_free(&r);
}

/* ------------------------------------------------------------------------ */
/* Waiting                                                                   */
/* ------------------------------------------------------------------------ */

static void wait_functions_time_out_when_nothing_arrives(void **state) {
  agg_t *agg = *state;
  double t0 = now_s();
  assert_int_equal(agg_wait_requests(agg, 1, 0.2), -1);
  double waited = now_s() - t0;
  assert_true(waited >= 0.2 && waited < 3);
  assert_int_equal(agg_wait_requests(agg, 0, 0.2), 0);

  t0 = now_s();
  assert_int_equal(agg_wait_value(agg, "calls", TAGS("statistic", "count"), 1, 0.2), -1);
  waited = now_s() - t0;
  assert_true(waited >= 0.2 && waited < 3);

  /* Present but with another value: still a timeout. */
  resp_t r = post_recs(agg, one_count, 1, 1);
  resp_free(&r);
  t0 = now_s();
  assert_int_equal(agg_wait_value(agg, "calls", TAGS("statistic", "count"), 2, 0.2), -1);
  waited = now_s() - t0;
  assert_true(waited >= 0.2 && waited < 3);
  assert_int_equal(agg_wait_value(agg, "calls", TAGS("statistic", "count"), 1, 0), 0);
  assert_int_equal(agg_wait_requests(agg, 1, 0), 0);
}

static void wait_functions_return_once_another_thread_posts(void **state) {
  agg_t *agg = *state;
  poster_t p = {agg, {0}, 0.1};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, post_in_thread, &p), 0);
  assert_int_equal(agg_wait_value(agg, "calls", TAGS("statistic", "count"), 1, 20), 0);
  assert_int_equal(agg_wait_requests(agg, 1, 20), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(p.resp.status, 200);
  resp_free(&p.resp);
}

#define POSTERS 8
#define POSTS_EACH 15

static void *post_many(void *arg) {
  agg_t *agg = arg;
  rec_t recs[] = {REC(0, 1, "name", "hits", "statistic", "count"),
                  REC(10, 3, "name", "peak", "statistic", "max")};
  for (int i = 0; i < POSTS_EACH; i++) {
    resp_t r = post_recs(agg, recs, 2, i % 2);
    if (r.status != 200) fprintf(stderr, "unexpected status %ld\n", r.status);
    resp_free(&r);
  }
  return NULL;
}

static void concurrent_posts_from_many_threads_sum_exactly(void **state) {
  agg_t *agg = *state;
  pthread_t t[POSTERS];
  for (int i = 0; i < POSTERS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, post_many, agg), 0);
  assert_int_equal(agg_wait_requests(agg, POSTERS * POSTS_EACH, 40), 0);
  for (int i = 0; i < POSTERS; i++) assert_int_equal(pthread_join(t[i], NULL), 0);
  assert_true(value_of(agg, "hits", TAGS("statistic", "count")) == POSTERS * POSTS_EACH);
  assert_true(value_of(agg, "peak", TAGS("statistic", "max")) == 3.0);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.ok_200, POSTERS * POSTS_EACH);
  assert_int_equal(st.gzip_bodies + st.plain_bodies, POSTERS * POSTS_EACH);
}

/* ------------------------------------------------------------------------ */
/* Reset, verbose output, control endpoints                                  */
/* ------------------------------------------------------------------------ */

static void reset_clears_aggregates_stats_failures_and_headers(void **state) {
  agg_t *agg = *state;
  resp_t r = post_recs(agg, one_count, 1, 1);
  resp_free(&r);
  agg_fail_next(agg, 5, AGG_FAIL_STATUS, 500, 0);
  agg_reset(agg);
  assert_int_equal(agg_series_count(agg), 0);
  assert_int_equal(agg_fail_pending(agg), 0);
  agg_stats_t st, zero;
  memset(&zero, 0, sizeof zero);
  agg_stats(agg, &st);
  assert_memory_equal(&st, &zero, sizeof st);
  char ua[32] = "x";
  agg_last_headers(agg, NULL, 0, NULL, 0, ua, sizeof ua);
  assert_string_equal(ua, "");
  r = post_recs(agg, one_count, 1, 1);
  assert_int_equal(r.status, 200);
  resp_free(&r);
}

static void verbose_mode_prints_each_datapoint_and_request(void **state) {
  agg_t *agg = *state;
  FILE *out = tmpfile();
  assert_non_null(out);
  agg_set_verbose(agg, out);
  rec_t recs[] = {
      REC(0, 12, "name", "http.server.requests", "endpoint", "/a", "statistic", "count"),
      REC(10, 0.25, "name", "gc.pause", "statistic", "max"), REC(0, 1, "name", "x")};
  resp_t r = post_recs(agg, recs, 3, 1);
  assert_int_equal(r.status, 202);
  resp_free(&r);
  agg_set_verbose(agg, NULL);
  char text[4096];
  rewind(out);
  size_t n = fread(text, 1, sizeof text - 1, out);
  text[n] = '\0';
  fclose(out);
  const char *expected =
      "[interval 1] http.server.requests{endpoint=_a,statistic=count} add 12 (interval sum 12, "
      "total sum 12)\n"
      "[interval 1] gc.pause{statistic=max} max 0.25 (interval max 0.25, total max 0.25)\n"
      "[interval 1] dropped: value too short: name = [x] (1 < 2) (tags={\"name\":\"x\"})\n"
      "[interval 1] request 1: 202, gzip body of ";
  if (strncmp(text, expected, strlen(expected)) != 0) fail_msg("verbose output:\n%s", text);
  assert_non_null(strstr(text, ", 3 datapoints: 2 accepted, 1 dropped\n"));
}

static void control_endpoints_report_stats_series_and_inject_failures(void **state) {
  agg_t *agg = *state;
  rec_t recs[] = {REC(0, 2, "name", "calls", "statistic", "count", "id", "a")};
  resp_t r = post_recs(agg, recs, 1, 1);
  resp_free(&r);

  char *u = control_url(agg, "/api/v1/stats");
  r = http("GET", u, NULL, 0, NULL);
  assert_int_equal(r.status, 200);
  cJSON *j = cJSON_Parse(r.body);
  assert_non_null(j);
  assert_int_equal(cJSON_GetObjectItem(j, "requests")->valueint, 1);
  assert_int_equal(cJSON_GetObjectItem(j, "ok_200")->valueint, 1);
  assert_int_equal(cJSON_GetObjectItem(j, "gzip_bodies")->valueint, 1);
  assert_int_equal(cJSON_GetObjectItem(j, "measurements_accepted")->valueint, 1);
  cJSON_Delete(j);
  resp_free(&r);
  /* Wrong method. */
  r = http("POST", u, "", 0, NULL);
  assert_int_equal(r.status, 405);
  resp_free(&r);
  free(u);

  u = control_url(agg, "/api/v1/series");
  r = http("GET", u, NULL, 0, NULL);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body,
                      "[{\"name\":\"calls\",\"tags\":{\"id\":\"a\",\"statistic\":\"count\"},"
                      "\"op\":0,\"value\":2,\"count\":1,\"last\":2}]");
  resp_free(&r);
  free(u);

  u = control_url(agg, "/api/v1/fail?count=1&kind=status&status=500");
  r = http("POST", u, "", 0, NULL);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  free(u);
  r = post_recs(agg, recs, 1, 1);
  assert_int_equal(r.status, 500);
  resp_free(&r);

  u = control_url(agg, "/api/v1/fail?count=1&kind=delay&delay_ms=100");
  r = http("POST", u, "", 0, NULL);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  free(u);
  r = post_recs(agg, recs, 1, 1);
  assert_int_equal(r.status, 200);
  assert_true(r.seconds >= 0.1);
  resp_free(&r);
  assert_true(value_of(agg, "calls", TAGS("statistic", "count", "id", "a")) == 4.0);

  u = control_url(agg, "/api/v1/fail?count=1&kind=bogus");
  r = http("POST", u, "", 0, NULL);
  assert_int_equal(r.status, 400);
  resp_free(&r);
  free(u);
  u = control_url(agg, "/api/v1/fail?count=-1&kind=drop");
  r = http("POST", u, "", 0, NULL);
  assert_int_equal(r.status, 400);
  resp_free(&r);
  free(u);
  assert_int_equal(agg_fail_pending(agg), 0);

  u = control_url(agg, "/api/v1/reset");
  r = http("POST", u, "", 0, NULL);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  free(u);
  assert_int_equal(agg_series_count(agg), 0);

  u = control_url(agg, "/nowhere");
  r = http("GET", u, NULL, 0, NULL);
  assert_int_equal(r.status, 404);
  resp_free(&r);
  free(u);
  r = http("GET", agg_url(agg), NULL, 0, NULL);
  assert_int_equal(r.status, 405);
  resp_free(&r);
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.requests, 0);
}

static void null_aggregator_is_harmless(void **state) {
  (void)state;
  agg_stats_t st;
  memset(&st, 0xff, sizeof st);
  agg_stats(NULL, &st);
  assert_int_equal(st.requests, 0);
  assert_int_equal(agg_get(NULL, "x", NO_TAGS, NULL), -1);
  assert_int_equal(agg_series_count(NULL), 0);
  assert_int_equal(agg_wait_requests(NULL, 1, 0.01), -1);
  assert_int_equal(agg_port(NULL), 0);
  agg_fail_next(NULL, 1, AGG_FAIL_DROP, 0, 0);
  agg_reset(NULL);
  agg_stop(NULL);
}

static void explicit_port_is_used_and_a_busy_one_fails(void **state) {
  agg_t *agg = *state;
  assert_true(agg_port(agg) > 0);
  char expected[64];
  snprintf(expected, sizeof expected, "http://127.0.0.1:%d/api/v4/update", agg_port(agg));
  assert_string_equal(agg_url(agg), expected);
  assert_null(agg_start(agg_port(agg)));
  assert_null(agg_start(70000));
}

/* ------------------------------------------------------------------------ */
/* History (GET /api/v1/history, the web page's source)                     */
/* ------------------------------------------------------------------------ */

static cJSON *get_history(agg_t *agg) {
  char *u = control_url(agg, "/api/v1/history");
  resp_t r = http("GET", u, NULL, 0, NULL);
  free(u);
  assert_int_equal(r.status, 200);
  cJSON *h = cJSON_Parse(r.body);
  resp_free(&r);
  assert_non_null(h);
  return h;
}

static const cJSON *history_series(const cJSON *h, const char *name) {
  const cJSON *s;
  cJSON_ArrayForEach(s, cJSON_GetObjectItem(h, "series")) {
    if (strcmp(cJSON_GetObjectItem(s, "name")->valuestring, name) == 0) return s;
  }
  fail_msg("no series %s in the history", name);
  return NULL;
}

static void history_sums_each_interval_and_bounds_the_series_it_keeps(void **state) {
  agg_t *agg = *state;
  agg_set_interval_step(agg, 3600); /* everything below lands in interval 1 */
  rec_t two[] = {REC(0, 3, "name", "h.one", "statistic", "count"),
                 REC(0, 4, "name", "h.one", "statistic", "count")};
  for (int i = 0; i < 2; i++) {
    resp_t r = post_recs(agg, two, 2, 1);
    assert_int_equal(r.status, 200);
    resp_free(&r);
  }
  /* AGG_HISTORY_MAX_SERIES + 5 more series: 6 in all get no history. */
  size_t n = AGG_HISTORY_MAX_SERIES + 5;
  rec_t *many = calloc(n, sizeof *many);
  char(*names)[16] = calloc(n, sizeof *names);
  const char *(*kv)[5] = calloc(n, sizeof *kv);
  assert_true(many && names && kv);
  for (size_t i = 0; i < n; i++) {
    snprintf(names[i], sizeof names[i], "h.s%05zu", i);
    kv[i][0] = "name";
    kv[i][1] = names[i];
    kv[i][2] = "statistic";
    kv[i][3] = "count";
    kv[i][4] = NULL;
    many[i] = (rec_t){kv[i], 0, 1};
  }
  resp_t r = post_recs(agg, many, n, 1);
  assert_int_equal(r.status, 200);
  resp_free(&r);

  cJSON *h = get_history(agg);
  assert_true(cJSON_GetObjectItem(h, "step")->valuedouble == 3600);
  assert_true(cJSON_GetObjectItem(h, "interval")->valuedouble == 1);
  assert_true(cJSON_GetObjectItem(h, "max_points")->valuedouble == AGG_HISTORY_POINTS);
  assert_true(cJSON_GetObjectItem(h, "series_without_history")->valuedouble == 6);
  const cJSON *one = history_series(h, "h.one");
  assert_true(cJSON_GetObjectItem(one, "value")->valuedouble == 14);
  char *pts = cJSON_PrintUnformatted(cJSON_GetObjectItem(one, "points"));
  assert_string_equal(pts, "[[1,14]]");
  free(pts);
  size_t with = 0, total = 0;
  const cJSON *s;
  cJSON_ArrayForEach(s, cJSON_GetObjectItem(h, "series")) {
    total++;
    with += cJSON_GetArraySize(cJSON_GetObjectItem(s, "points")) > 0;
  }
  assert_int_equal(total, n + 1);
  assert_int_equal(with, AGG_HISTORY_MAX_SERIES);
  cJSON_Delete(h);
  free(many);
  free(names);
  free(kv);

  /* A reset forgets the history and its count. */
  agg_reset(agg);
  h = get_history(agg);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(h, "series")), 0);
  assert_true(cJSON_GetObjectItem(h, "series_without_history")->valuedouble == 0);
  cJSON_Delete(h);
}

static void history_keeps_the_last_intervals_of_a_series(void **state) {
  agg_t *agg = *state;
  /* One interval per microsecond: each request lands in an interval of its
   * own, 10 more than a series keeps. */
  agg_set_interval_step(agg, 1e-6);
  rec_t rec[] = {REC(10, 0, "name", "h.ring", "statistic", "max")};
  for (int i = 1; i <= AGG_HISTORY_POINTS + 10; i++) {
    rec[0].value = i;
    resp_t r = post_recs(agg, rec, 1, 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
  }
  cJSON *h = get_history(agg);
  const cJSON *pts = cJSON_GetObjectItem(history_series(h, "h.ring"), "points");
  assert_int_equal(cJSON_GetArraySize(pts), AGG_HISTORY_POINTS);
  double prev_iv = 0, expect = 11; /* the first 10 fell out */
  const cJSON *p;
  cJSON_ArrayForEach(p, pts) {
    double iv = cJSON_GetArrayItem(p, 0)->valuedouble;
    assert_true(iv > prev_iv);
    assert_true(cJSON_GetArrayItem(p, 1)->valuedouble == expect);
    prev_iv = iv;
    expect++;
  }
  cJSON_Delete(h);
}

static void files_are_served_on_get_with_their_type(void **state) {
  agg_t *agg = *state;
  static const unsigned char page[] = "<p>hi</p>";
  static const agg_file_t files[] = {{"/", "text/html; charset=utf-8", page, 9}, {0, 0, 0, 0}};
  char *u = control_url(agg, "/");
  resp_t r = http("GET", u, NULL, 0, NULL);
  assert_int_equal(r.status, 404); /* none served yet */
  resp_free(&r);
  agg_serve_files(agg, files);
  const char *paths[] = {"/", "/index.html"};
  for (size_t i = 0; i < 2; i++) {
    char *pu = control_url(agg, paths[i]);
    r = http("GET", pu, NULL, 0, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "<p>hi</p>");
    assert_string_equal(r.content_type, "text/html; charset=utf-8");
    resp_free(&r);
    free(pu);
  }
  r = http("POST", u, "x", 1, NULL); /* GET only */
  assert_int_equal(r.status, 404);
  resp_free(&r);
  free(u);
}

/* Two POSTs of one counter on one handle: how many new connections each made. */
static void post_twice_on_one_handle(const char *url, const char *ca_file, long connects[2]) {
  CURL *c = curl_easy_init();
  assert_non_null(c);
  rec_t rec = REC(0, 1, "name", "keep.alive", "statistic", "count");
  char *body = payload(&rec, 1);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  if (ca_file) curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
  resp_t r;
  memset(&r, 0, sizeof r);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 200);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects[i]);
  }
  resp_free(&r);
  free(body);
  curl_easy_cleanup(c);
}

static void close_connections_makes_every_answer_close_its_connection(void **state) {
  agg_t *agg = *state;
  long connects[2];
  post_twice_on_one_handle(agg_url(agg), NULL, connects);
  assert_int_equal(connects[0], 1);
  assert_int_equal(connects[1], 0); /* kept alive and reused */
  agg_set_close_connections(agg, 1);
  post_twice_on_one_handle(agg_url(agg), NULL, connects);
  assert_int_equal(connects[0], 1);
  assert_int_equal(connects[1], 1); /* closed by the server: a new one */
  assert_true(value_of(agg, "keep.alive", TAGS("statistic", "count")) == 4);
}

/* The https mode: a self-signed certificate for 127.0.0.1 made with the
 * openssl CLI (skipped without it or without libmicrohttpd's TLS support). */
static void https_mode_serves_the_update_endpoint_with_the_given_certificate(void **state) {
  (void)state;
  char dir[] = "/tmp/agg-tls.XXXXXX", cmd[1024], key_path[64], cert_path[64];
  assert_non_null(mkdtemp(dir));
  snprintf(key_path, sizeof key_path, "%s/key.pem", dir);
  snprintf(cert_path, sizeof cert_path, "%s/cert.pem", dir);
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-keyout %s -out %s -days 1 -subj '/CN=agg test' -addext subjectAltName=IP:127.0.0.1 "
           ">/dev/null 2>&1",
           key_path, cert_path);
  int made = system(cmd) == 0;
  FILE *kf = fopen(key_path, "r"), *cf = fopen(cert_path, "r");
  char key[4096] = "", cert[4096] = "";
  if (kf) key[fread(key, 1, sizeof key - 1, kf)] = '\0';
  if (cf) cert[fread(cert, 1, sizeof cert - 1, cf)] = '\0';
  if (kf) fclose(kf);
  if (cf) fclose(cf);
  agg_t *tls = made ? agg_start_tls(0, key, cert) : NULL;
  if (!tls) {
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    print_message("no openssl CLI or no TLS in libmicrohttpd: skipped\n");
    skip();
  }
  char expected[64];
  snprintf(expected, sizeof expected, "https://127.0.0.1:%d/api/v4/update", agg_port(tls));
  assert_string_equal(agg_url(tls), expected);
  long connects[2];
  post_twice_on_one_handle(agg_url(tls), cert_path, connects);
  assert_true(value_of(tls, "keep.alive", TAGS("statistic", "count")) == 2);
  /* plain http to the https port gets no answer */
  char plain[64];
  snprintf(plain, sizeof plain, "http://127.0.0.1:%d/api/v4/update", agg_port(tls));
  resp_t r = http("POST", plain, "[]", 2, NULL);
  assert_int_not_equal(r.rc, CURLE_OK);
  resp_free(&r);
  assert_null(agg_start_tls(0, NULL, cert));
  agg_stop(tls);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      T(gzip_body_with_two_counters_is_aggregated_exactly),
      T(plain_body_is_accepted_and_counted_as_plain),
      T(body_with_no_records_is_accepted),
      T(max_op_keeps_the_largest_value),
      T(add_op_sums_values_across_records_of_one_body),
      T(repeated_key_in_a_record_keeps_the_last_value),
      T(unsorted_string_table_is_accepted_and_counted),
      T(sanitization_merges_a_space_b_and_a_underscore_b),
      T(foreach_visits_series_sorted_by_name_then_tags),
      T(history_sums_each_interval_and_bounds_the_series_it_keeps),
      T(history_keeps_the_last_intervals_of_a_series),
      T(files_are_served_on_get_with_their_type),
      T(key_shorter_than_two_characters_is_dropped),
      T(empty_key_is_dropped),
      T(key_longer_than_sixty_characters_is_dropped),
      T(name_shorter_than_two_characters_is_dropped),
      T(name_longer_than_255_characters_is_dropped),
      T(value_longer_than_120_characters_is_dropped),
      T(empty_value_is_dropped),
      T(unknown_atlas_key_is_dropped_and_known_ones_pass),
      T(unknown_nf_key_is_dropped_and_all_known_ones_pass),
      T(more_than_twenty_user_tags_are_dropped),
      T(datapoint_without_name_is_dropped),
      T(all_datapoints_bad_answers_400_with_type_error),
      T(message_limit_caps_messages_but_not_error_count),
      T(nan_and_infinity_literals_are_rejected_as_invalid_json),
      T(bodies_cjson_accepts_but_strict_json_forbids_are_rejected),
      cmocka_unit_test(strict_checker_accepts_valid_json_and_rejects_the_rest),
      T(malformed_payloads_are_rejected_with_400),
      T(malformed_record_after_good_ones_aggregates_nothing),
      T(corrupt_gzip_answers_400_and_counts_a_gzip_error),
      T(unknown_content_encoding_answers_415),
      T(bodies_over_the_size_limit_answer_413),
      T(injected_503_for_two_requests_then_ok),
      T(injected_2xx_status_is_aggregated_with_an_empty_answer),
      T(failure_rules_queue_up_in_order),
      T(dropped_connection_gives_curl_an_empty_reply),
      T(delayed_request_is_answered_late_and_aggregated),
      T(delay_with_a_status_answers_it_late_without_aggregating),
      T(huge_answer_body_is_ten_mebibytes),
      T(garbage_answer_body_is_not_json),
      cmocka_unit_test(stop_during_a_delay_returns_promptly),
      cmocka_unit_test(stop_with_an_idle_keep_alive_connection_returns_promptly),
      T(wait_functions_time_out_when_nothing_arrives),
      T(wait_functions_return_once_another_thread_posts),
      T(concurrent_posts_from_many_threads_sum_exactly),
      T(reset_clears_aggregates_stats_failures_and_headers),
      T(verbose_mode_prints_each_datapoint_and_request),
      T(control_endpoints_report_stats_series_and_inject_failures),
      cmocka_unit_test(null_aggregator_is_harmless),
      T(explicit_port_is_used_and_a_busy_one_fails),
      T(close_connections_makes_every_answer_close_its_connection),
      cmocka_unit_test(https_mode_serves_the_update_endpoint_with_the_given_certificate),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return failed;
}
