/*
 * Hostile input to every public function, beyond the meter
 * level that test_bad_input.c covers: the id API, configurations and the
 * environment, the measurements API, the log API, error strings, stopwatches
 * and bucket functions at the int64 limits, the global API, huge strings in
 * configuration and common tags, format directives in user strings, and
 * 1,000,000 distinct ids against the meter cap with memory checked.
 *
 * Each case: no crash and no undefined behaviour (the sanitizer builds run
 * this), the documented result (NULL, 0, a no-op, SPECTATOR_EINVAL), and a
 * good meter recorded alongside keeps its exact value.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "encoder.h"
#include "meter.h"
#include "records.h"
#include "registry.h"
#include "test_util.h"

#define COUNT_TAGS SPECTATOR_TAGS("statistic", "count")

TU_ASAN_SMALL_QUARANTINE()
/* RSS growth allowed once a steady state is reached. */
#define RSS_GROWTH_BOUND (TU_UNDER_SANITIZER ? 16.0 * 1024 * 1024 : 4.0 * 1024 * 1024)

static spectator_registry_t *quiet_registry(size_t max_meters) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  cfg.flush_at_exit = 0;
  if (max_meters) cfg.max_meters = max_meters;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  assert_non_null(r);
  return r;
}

static char *filled(size_t n, char c) {
  char *s = malloc(n + 1);
  assert_non_null(s);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

static double rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    fclose(f);
  }
  return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

/* Every captured line is one bounded line (the handler gets the final text). */
static void assert_log_lines_bounded(void) {
  for (size_t i = 0; i < tu_log_buf.n; i++) {
    const tu_log_line_t *l = tu_log_line(i);
    assert_true(l->msg_len < 1024);
    for (const char *p = l->msg; *p; p++) assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
  }
}

/* ------------------------------------------------------------------------ */
/* Ids                                                                       */
/* ------------------------------------------------------------------------ */

static void every_id_function_accepts_null_and_garbage(void **state) {
  (void)state;
  tu_log_capture();
  assert_null(spectator_id_new(NULL, NULL));
  assert_null(spectator_id_new("", NULL));
  assert_null(spectator_id_new(NULL, SPECTATOR_TAGS("k", "v")));
  assert_null(spectator_id_new("x", SPECTATOR_TAGS("k")));     /* odd */
  assert_null(spectator_id_new("x", SPECTATOR_TAGS("", "v"))); /* empty key */
  assert_null(spectator_id_new("x", SPECTATOR_TAGS("k", ""))); /* empty value */
  assert_null(spectator_id_new("x", SPECTATOR_TAGS("k", "v", "k2")));

  spectator_id_t *id = spectator_id_new("x", SPECTATOR_TAGS("b", "2", "a", "1"));
  assert_non_null(id);
  assert_null(spectator_id_with_tag(NULL, "k", "v"));
  assert_null(spectator_id_with_tag(id, NULL, "v"));
  assert_null(spectator_id_with_tag(id, "k", NULL));
  assert_null(spectator_id_with_tag(id, "", "v"));
  assert_null(spectator_id_with_tag(id, "k", ""));
  assert_null(spectator_id_with_tags(NULL, SPECTATOR_TAGS("k", "v")));
  assert_null(spectator_id_with_tags(id, SPECTATOR_TAGS("k")));
  spectator_id_t *same = spectator_id_with_tags(id, NULL);
  assert_true(spectator_id_equals(same, id));
  spectator_id_free(same);
  assert_null(spectator_id_ref(NULL));
  spectator_id_free(NULL);

  assert_string_equal(spectator_id_name(NULL), "");
  assert_int_equal(spectator_id_tag_count(NULL), 0);
  assert_null(spectator_id_tag_key(NULL, 0));
  assert_null(spectator_id_tag_value(NULL, 0));
  assert_null(spectator_id_tag_key(id, 2));
  assert_null(spectator_id_tag_key(id, SIZE_MAX));
  assert_null(spectator_id_tag_value(id, SIZE_MAX));
  assert_null(spectator_id_tag(NULL, "a"));
  assert_null(spectator_id_tag(id, NULL));
  assert_null(spectator_id_tag(id, ""));
  assert_true(spectator_id_equals(NULL, NULL));
  assert_false(spectator_id_equals(id, NULL));
  assert_false(spectator_id_equals(NULL, id));
  assert_true(spectator_id_hash(NULL) == 0);

  char buf[8];
  memset(buf, 'z', sizeof(buf));
  assert_int_equal(spectator_id_format(NULL, buf, sizeof(buf)), 0);
  assert_string_equal(buf, "");
  const size_t need = strlen("x{a=1,b=2}");
  assert_int_equal(spectator_id_format(id, NULL, 100), need); /* NULL buffer: length only */
  memset(buf, 'z', sizeof(buf));
  assert_int_equal(spectator_id_format(id, buf, 0), need); /* size 0: nothing written */
  assert_true(buf[0] == 'z');
  assert_int_equal(spectator_id_format(id, buf, 1), need);
  assert_string_equal(buf, "");
  assert_int_equal(spectator_id_format(id, buf, sizeof(buf)), need);
  assert_string_equal(buf, "x{a=1,b");
  spectator_id_free(id);
  assert_log_lines_bounded();
  tu_log_release();
}

static void ids_take_huge_binary_and_many_tag_strings(void **state) {
  (void)state;
  tu_log_capture();
  /* 16 MiB name. */
  char *huge = filled((size_t)16 << 20, 'n');
  spectator_id_t *id = spectator_id_new(huge, SPECTATOR_TAGS("k", huge));
  assert_non_null(id);
  assert_int_equal(strlen(spectator_id_name(id)), (size_t)16 << 20);
  char small[16];
  assert_int_equal(spectator_id_format(id, small, sizeof(small)), 2 * ((size_t)16 << 20) + 4);
  assert_int_equal(strlen(small), sizeof(small) - 1);
  spectator_id_free(id);
  free(huge);

  /* Every byte value but 0, in names, keys and values. */
  char bytes[256];
  for (int i = 1; i < 256; i++) bytes[i - 1] = (char)i;
  bytes[255] = '\0';
  id = spectator_id_new(bytes, SPECTATOR_TAGS(bytes, bytes, "\xff\xfe", "\xc0\x80"));
  assert_non_null(id);
  assert_string_equal(spectator_id_tag(id, bytes), bytes);
  spectator_id_free(id);

  /* 10,000 tags with repeated keys: the last value of each key wins. */
  enum { N = 10000 };
  const char **tags = calloc(2 * N + 1, sizeof(char *));
  char(*text)[16] = calloc(2 * N, sizeof(*text));
  assert_true(tags && text);
  for (int i = 0; i < N; i++) {
    snprintf(text[2 * i], 16, "k%05d", (N - 1 - i) % 5000);
    snprintf(text[2 * i + 1], 16, "v%d", i);
    tags[2 * i] = text[2 * i];
    tags[2 * i + 1] = text[2 * i + 1];
  }
  id = spectator_id_new("many", tags);
  assert_non_null(id);
  assert_int_equal(spectator_id_tag_count(id), 5000);
  assert_string_equal(spectator_id_tag(id, "k04999"), "v5000");
  assert_string_equal(spectator_id_tag_key(id, 0), "k00000");
  spectator_id_free(id);
  free(tags);
  free(text);
  assert_log_lines_bounded();
  tu_log_release();
}

/* A name or tag full of printf directives is data, never a format. */
static void format_directives_in_user_strings_are_printed_literally(void **state) {
  (void)state;
  tu_log_capture();
  spectator_log_set_level(SPECTATOR_LOG_DEBUG);
  spectator_registry_t *r = quiet_registry(1);
  const char *evil = "%n%n%s%s%p%x%1$s%99999999d";
  spectator_counter_add(spectator_registry_counter(r, evil, NULL), 1);
  spectator_timer_record(spectator_registry_timer(r, evil, NULL), 1);     /* type conflict */
  spectator_counter_add(spectator_registry_counter(r, "other", NULL), 1); /* registry full */
  spectator_counter_add(spectator_registry_counter(r, evil, SPECTATOR_TAGS(evil)), 1);
  spectator_percentile_timer(evil, NULL, NAN, -1); /* global registry, bad range */
  spectator_log_set_level(SPECTATOR_LOG_WARN);
  /* The type conflict and the bad range name it (other lines about it may be
   * rate limited away by earlier tests). */
  assert_true(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, evil) >= 2);
  assert_log_lines_bounded();
  spectator_registry_free(r);
  tu_log_release();
}

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

static void invalid_configurations_are_refused_with_a_log_line(void **state) {
  (void)state;
  spectator_config_init(NULL);
  spectator_config_from_env(NULL);
  tu_log_capture();
  static const double bad_seconds[] = {NAN, 0, -1, INFINITY, -INFINITY, 1e300, 86400.5};
  for (size_t i = 0; i < sizeof(bad_seconds) / sizeof(bad_seconds[0]); i++) {
    spectator_config_t cfg;
    spectator_config_init(&cfg);
    cfg.env_common_tags = 0;
    cfg.frequency_s = bad_seconds[i];
    assert_null(spectator_registry_new(&cfg));
    spectator_config_init(&cfg);
    cfg.env_common_tags = 0;
    cfg.timeout_s = bad_seconds[i];
    assert_null(spectator_registry_new(&cfg));
    spectator_config_init(&cfg);
    cfg.env_common_tags = 0;
    cfg.connect_timeout_s = bad_seconds[i];
    assert_null(spectator_registry_new(&cfg));
    if (bad_seconds[i] != 86400.5) {
      spectator_config_init(&cfg);
      cfg.env_common_tags = 0;
      cfg.meter_ttl_s = bad_seconds[i];
      assert_null(spectator_registry_new(&cfg));
    }
  }
  const char *const *bad_tags[] = {SPECTATOR_TAGS("k"), SPECTATOR_TAGS("", "v"),
                                   SPECTATOR_TAGS("k", ""), SPECTATOR_TAGS("a", "1", "k")};
  for (size_t i = 0; i < 4; i++) {
    spectator_config_t cfg;
    spectator_config_init(&cfg);
    cfg.env_common_tags = 0;
    cfg.common_tags = bad_tags[i];
    assert_null(spectator_registry_new(&cfg));
  }
  const char *bad_uris[] = {"", "ftp://x/", "127.0.0.1:80", "file:///etc/passwd", "gopher://x"};
  for (size_t i = 0; i < 5; i++) {
    spectator_config_t cfg;
    spectator_config_init(&cfg);
    cfg.env_common_tags = 0;
    cfg.uri = bad_uris[i];
    assert_null(spectator_registry_new(&cfg));
  }
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.batch_size = 0;
  assert_null(spectator_registry_new(&cfg));
  spectator_config_init(&cfg);
  cfg.max_meters = 0;
  assert_null(spectator_registry_new(&cfg));
  assert_true(tu_log_count_matching(SPECTATOR_LOGGER_INIT, "invalid configuration") >= 30);
  assert_log_lines_bounded();

  /* A cap of SIZE_MAX means "no cap" (clamped), not a huge allocation. */
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.max_meters = SIZE_MAX;
  cfg.auto_start = 0;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  assert_non_null(r);
  spectator_registry_free(r);
  tu_log_release();
}

/* Huge strings in the URI, CA path and common tags: accepted, copied, bounded
 * in logs, and publishing to a URI curl cannot use fails fast and is counted. */
static void huge_strings_in_the_configuration_are_harmless(void **state) {
  (void)state;
  tu_log_capture();
  const size_t mib = (size_t)1 << 20;
  char *uri = filled(16 * mib, 'a');
  memcpy(uri, "http://", 7);
  char *host_uri = filled(mib, 'h');
  memcpy(host_uri, "http://", 7);
  char *value = filled(mib, 'v');
  const char *const *tags = SPECTATOR_TAGS("big", value, "nf.app", value);
  const char *uris[] = {uri, host_uri};
  for (size_t i = 0; i < 2; i++) {
    spectator_config_t cfg;
    spectator_config_init(&cfg);
    cfg.env_common_tags = 0;
    cfg.auto_start = 0;
    cfg.flush_at_exit = 0;
    cfg.uri = uris[i];
    cfg.ca_info = value;
    cfg.common_tags = tags;
    cfg.frequency_s = 60;
    cfg.timeout_s = cfg.connect_timeout_s = 0.5;
    spectator_registry_t *r = spectator_registry_new(&cfg);
    assert_non_null(r);
    assert_int_equal(spectator_registry_start(r), 0);
    spectator_counter_add(spectator_registry_counter(r, "huge.cfg", NULL), 2);
    spectator_stopwatch_t sw = spectator_stopwatch_start();
    spectator_registry_stop(r);
    assert_true(spectator_stopwatch_elapsed_ns(sw) < (int64_t)1500 * 1000 * 1000);
    spectator_measurements_t *ms = spectator_registry_snapshot(r);
    /* the counter and spectator.registrySize, dropped: the request failed
     * (http-error), or a slow machine ran out of time before it (other) */
    double failed = 0, late = 0;
    tu_find(ms, "spectator.measurements",
            SPECTATOR_TAGS("id", "dropped", "error", "http-error", "statistic", "count"), &failed);
    tu_find(ms, "spectator.measurements",
            SPECTATOR_TAGS("id", "dropped", "error", "other", "statistic", "count"), &late);
    assert_true(failed + late == 2);
    spectator_measurements_free(ms);
    spectator_registry_free(r);
  }
  assert_log_lines_bounded();
  free(uri);
  free(host_uri);
  free(value);
  tu_log_release();
}

/* 10,000 common tag pairs: more than a datapoint can carry. The registry
 * works; the encoder drops (and counts) what it cannot encode. */
static void ten_thousand_common_tags_are_dropped_whole_not_truncated(void **state) {
  (void)state;
  enum { N = 10000 };
  const char **tags = calloc(2 * N + 1, sizeof(char *));
  char(*text)[16] = calloc(2 * N, sizeof(*text));
  assert_true(tags && text);
  for (int i = 0; i < N; i++) {
    snprintf(text[2 * i], 16, "ck%05d", i);
    snprintf(text[2 * i + 1], 16, "cv%d", i);
    tags[2 * i] = text[2 * i];
    tags[2 * i + 1] = text[2 * i + 1];
  }
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  cfg.common_tags = tags;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  assert_non_null(r);
  spectator_counter_add(spectator_registry_counter(r, "c", NULL), 1);
  spectator_counter_add(spectator_registry_counter(r, "d", NULL), 1);
  spectator__records_t rs;
  spectator__records_init(&rs);
  spectator__cursor_t cur = {0};
  spectator__registry_collect(r, &cur, &rs, SIZE_MAX);
  assert_int_equal(rs.len, 2);
  spectator__payload_t pl;
  assert_int_equal(spectator__encode(&rs, r->cfg.common_tags, 100, 1, &pl), 0);
  assert_int_equal(pl.dropped, 2);
  assert_int_equal(pl.measurements, 0);
  spectator__payload_free(&pl);
  spectator__records_free(&rs);
  spectator__registry_collect_end(r, &cur);
  spectator_registry_free(r);
  free(tags);
  free(text);
}

static void a_hostile_environment_gives_defaults_and_bounded_log_lines(void **state) {
  (void)state;
  tu_log_capture();
  const size_t mib = (size_t)1 << 20;
  /* 4 MiB of SPECTATOR_COMMON_TAGS: 100,000 entries, good and bad. */
  size_t cap = 4 * mib, o = 0;
  char *common = malloc(cap);
  assert_non_null(common);
  for (int i = 0; o + 64 < cap; i++) {
    const char *fmt = i % 4 == 0   ? "k%d=v%d,"
                      : i % 4 == 1 ? "=%d%d,"
                      : i % 4 == 2 ? " , %d%d,"
                                   : "k%d==v%d ,";
    o += (size_t)snprintf(common + o, cap - o, fmt, i, i);
  }
  common[o] = '\0';
  char *long_value = filled(2048, 'x');
  setenv("SPECTATOR_COMMON_TAGS", common, 1);
  setenv("NETFLIX_APP", long_value, 1);
  setenv("NETFLIX_REGION", " \t\n ", 1);
  setenv("EC2_REGION", "\xff\xfe-region", 1);
  setenv("SPECTATOR_FREQUENCY", "1e999", 1);
  setenv("SPECTATOR_BATCH_SIZE", "-5", 1);
  setenv("SPECTATOR_TIMEOUT", long_value, 1);
  setenv("SPECTATOR_MAX_METERS", "18446744073709551616", 1);
  setenv("SPECTATOR_DISABLE_AUTO_START", "%s%n", 1);
  setenv("SPECTATOR_URI", "javascript:alert(1)", 1);
  spectator_config_t cfg;
  spectator_config_from_env(&cfg);
  assert_null(cfg.uri);
  assert_true(cfg.frequency_s == 5 && cfg.batch_size == 10000 && cfg.timeout_s == 1);
  assert_int_equal(cfg.max_meters, 100000);
  cfg.auto_start = 0;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  assert_non_null(r);
  /* nf.app was too long and skipped, nf.region came from EC2_REGION. */
  size_t pairs = 0;
  bool has_app = false;
  const char *region = NULL;
  for (size_t i = 0; r->cfg.common_tags[i]; i += 2) {
    pairs++;
    if (strcmp(r->cfg.common_tags[i], "nf.app") == 0) has_app = true;
    if (strcmp(r->cfg.common_tags[i], "nf.region") == 0) region = r->cfg.common_tags[i + 1];
  }
  assert_false(has_app);
  assert_non_null(region);
  assert_string_equal(region, "\xff\xfe-region");
  assert_true(pairs > 1000);
  spectator_counter_add(spectator_registry_counter(r, "env.ok", NULL), 3);
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  double v = 0;
  assert_true(tu_find(ms, "env.ok", COUNT_TAGS, &v) && v == 3);
  spectator_measurements_free(ms);
  spectator_registry_free(r);
  /* Each bad value reported, the 100,000 bad entries in 9 lines, not 100,000. */
  assert_true(tu_log_count() > 5);
  assert_true(tu_log_count_matching(SPECTATOR_LOGGER_INIT, "SPECTATOR_COMMON_TAGS") == 9);
  assert_true(tu_log_count_matching(SPECTATOR_LOGGER_INIT, "more malformed entries ignored") == 1);
  assert_true(tu_log_count() < 30);
  assert_log_lines_bounded();
  const char *vars[] = {"SPECTATOR_COMMON_TAGS",
                        "NETFLIX_APP",
                        "NETFLIX_REGION",
                        "EC2_REGION",
                        "SPECTATOR_FREQUENCY",
                        "SPECTATOR_BATCH_SIZE",
                        "SPECTATOR_TIMEOUT",
                        "SPECTATOR_MAX_METERS",
                        "SPECTATOR_DISABLE_AUTO_START",
                        "SPECTATOR_URI"};
  for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) unsetenv(vars[i]);
  free(common);
  free(long_value);
  tu_log_release();
}

/* ------------------------------------------------------------------------ */
/* Measurements, log, errors, stopwatch, buckets                             */
/* ------------------------------------------------------------------------ */

static void the_measurements_api_accepts_null_and_out_of_range(void **state) {
  (void)state;
  assert_int_equal(spectator_measurements_count(NULL), 0);
  assert_null(spectator_measurements_get(NULL, 0));
  assert_null(spectator_measurements_find(NULL, "x", NULL));
  spectator_measurements_free(NULL);
  spectator_registry_t *r = quiet_registry(0);
  spectator_counter_add(spectator_registry_counter(r, "m", NULL), 1);
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  assert_int_equal(spectator_measurements_count(ms), 1);
  assert_non_null(spectator_measurements_get(ms, 0));
  assert_null(spectator_measurements_get(ms, 1));
  assert_null(spectator_measurements_get(ms, SIZE_MAX));
  assert_null(spectator_measurements_find(ms, NULL, NULL));
  assert_null(spectator_measurements_find(ms, "", NULL));
  assert_null(spectator_measurements_find(ms, "m", SPECTATOR_TAGS("statistic")));
  assert_null(spectator_measurements_find(ms, "m", SPECTATOR_TAGS("statistic", "")));
  assert_null(spectator_measurements_find(ms, "m", NULL)); /* statistic is part of it */
  assert_non_null(spectator_measurements_find(ms, "m", COUNT_TAGS));
  spectator_measurements_free(ms);
  /* An empty snapshot. */
  ms = spectator_registry_snapshot(r);
  assert_non_null(ms);
  assert_int_equal(spectator_measurements_count(ms), 0);
  assert_null(spectator_measurements_get(ms, 0));
  assert_null(spectator_measurements_find(ms, "m", COUNT_TAGS));
  spectator_measurements_free(ms);
  spectator_registry_free(r);
}

static void the_log_and_error_apis_accept_garbage(void **state) {
  (void)state;
  spectator_log_level_t before = spectator_log_get_level();
  spectator_log_set_level((spectator_log_level_t)99);
  spectator_log_set_level((spectator_log_level_t)-1);
  spectator_log_set_level((spectator_log_level_t)INT_MIN);
  assert_int_equal(spectator_log_get_level(), before);
  spectator_log_level_t l = SPECTATOR_LOG_ERROR;
  assert_int_equal(spectator_log_level_parse(NULL, &l), SPECTATOR_EINVAL);
  assert_int_equal(spectator_log_level_parse("debug", NULL), SPECTATOR_EINVAL);
  assert_int_equal(spectator_log_level_parse("", &l), SPECTATOR_EINVAL);
  assert_int_equal(spectator_log_level_parse("   ", &l), SPECTATOR_EINVAL);
  assert_int_equal(spectator_log_level_parse("debugx", &l), SPECTATOR_EINVAL);
  assert_int_equal(spectator_log_level_parse("\xff\xfe", &l), SPECTATOR_EINVAL);
  char *huge = filled(1 << 20, 'd');
  assert_int_equal(spectator_log_level_parse(huge, &l), SPECTATOR_EINVAL);
  free(huge);
  assert_int_equal(l, SPECTATOR_LOG_ERROR); /* untouched on failure */
  assert_int_equal(spectator_log_level_parse(" DeBuG\t", &l), 0);
  assert_int_equal(l, SPECTATOR_LOG_DEBUG);
  /* A NULL handler with a garbage context is the default handler. */
  spectator_log_set_handler(NULL, (void *)(uintptr_t)0xdeadbeef);
  spectator_log_set_handler(NULL, NULL);

  static const int codes[] = {0, 1, -1, -6, -7, 12345, -12345, INT_MIN, INT_MAX};
  for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    assert_non_null(spectator_strerror(codes[i]));
    assert_non_null(spectator_err_name(codes[i]));
  }
  assert_string_equal(spectator_strerror(INT_MIN), "unknown error");
  assert_string_equal(spectator_version(), SPECTATOR_VERSION_STRING);
}

static void stopwatches_and_buckets_take_the_int64_limits(void **state) {
  (void)state;
  spectator_registry_t *r = quiet_registry(0);
  spectator_timer_t *t = spectator_registry_timer(r, "sw", NULL);
  spectator_percentile_timer_t *pt = spectator_registry_percentile_timer(r, "swp", NULL, 0, 60);
  /* A stopwatch from the far future, from a zeroed struct, from the far past. */
  static const int64_t starts[] = {INT64_MAX, 0, -1, INT64_MIN + 1, INT64_MIN};
  for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
    spectator_stopwatch_t sw = {starts[i]};
    assert_true(spectator_stopwatch_elapsed_ns(sw) >= 0);
    assert_true(spectator_stopwatch_record(sw, t) >= 0);
    assert_true(spectator_stopwatch_record_percentile(sw, pt) >= 0);
  }
  static const int64_t ns[] = {INT64_MIN, -1, 0, 1, INT64_MAX};
  for (size_t i = 0; i < 5; i++) {
    spectator_timer_record_ns(t, ns[i]);
    spectator_percentile_timer_record_ns(pt, ns[i]);
  }
  static const double secs[] = {-DBL_MAX, -0.0, DBL_MIN, 9.3e9, DBL_MAX, 4.9e-324};
  for (size_t i = 0; i < 6; i++) {
    spectator_timer_record(t, secs[i]);
    spectator_percentile_timer_record(pt, secs[i]);
  }
  assert_int_equal(spectator_percentile_buckets_index_of(INT64_MIN), 0);
  assert_int_equal(spectator_percentile_buckets_index_of(-1), 0);
  assert_int_equal(spectator_percentile_buckets_index_of(INT64_MAX),
                   SPECTATOR_PERCENTILE_BUCKETS - 1);
  assert_true(spectator_percentile_buckets_get(SPECTATOR_PERCENTILE_BUCKETS) == INT64_MAX);
  assert_true(spectator_percentile_buckets_get(SIZE_MAX) == INT64_MAX);
  static const double pcts[] = {-INFINITY, -1e300, -1, 0, 50, 99.9, 100, 101, 1e300, INFINITY};
  for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
    assert_false(isnan(spectator_percentile_timer_percentile(pt, pcts[i])));
  (void)spectator_percentile_timer_percentile(pt, NAN); /* any value, but no UB */
  /* Everything reported is finite. */
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  for (size_t i = 0; i < spectator_measurements_count(ms); i++)
    assert_true(isfinite(spectator_measurements_get(ms, i)->value));
  spectator_measurements_free(ms);
  spectator_registry_free(r);
}

/* The global API with bad input: no-op meters; start without a URI fails
 * cleanly; stop is idempotent. */
static void the_global_api_accepts_null_and_garbage(void **state) {
  (void)state;
  tu_log_capture();
  assert_non_null(spectator_counter(NULL, NULL));
  assert_non_null(spectator_timer("", NULL));
  assert_non_null(spectator_dist_summary("x", SPECTATOR_TAGS("k")));
  assert_non_null(spectator_gauge(NULL, SPECTATOR_TAGS("k", "v")));
  assert_non_null(spectator_max_gauge("x", SPECTATOR_TAGS("", "")));
  assert_non_null(spectator_monotonic_counter(NULL, NULL));
  assert_non_null(spectator_percentile_timer(NULL, NULL, NAN, NAN));
  assert_non_null(spectator_percentile_dist_summary("pd", NULL, INFINITY, -INFINITY));
  spectator_counter_add(spectator_counter(NULL, NULL), 1);
  assert_int_equal(spectator_start(), SPECTATOR_ENOURI);
  spectator_stop();
  spectator_stop();
  spectator_registry_t *g = spectator_global_registry();
  assert_non_null(g);
  assert_true(g == spectator_global_registry());
  spectator_counter_t *good = spectator_counter("global.good", NULL);
  spectator_counter_add(good, 4);
  assert_true(spectator_counter_count(good) == 4);
  assert_log_lines_bounded();
  tu_log_release();
}

/* ------------------------------------------------------------------------ */
/* A million distinct ids                                                    */
/* ------------------------------------------------------------------------ */

static void a_million_distinct_ids_stop_at_the_cap_with_bounded_memory(void **state) {
  (void)state;
  enum { TOTAL = 1000000, CAP = 100000 };
  tu_log_capture();
  spectator_registry_t *r = quiet_registry(CAP); /* the default cap, stated */
  spectator_counter_t *good = spectator_registry_counter(r, "good", NULL);
  char name[32], value[32];
  double rss_at_cap = 0, rss_warm = 0;
  size_t noops = 0;
  for (int i = 0; i < TOTAL; i++) {
    snprintf(name, sizeof(name), "hostile.%07d", i);
    snprintf(value, sizeof(value), "%d", i % 977);
    void *m;
    if (i % 2) {
      m = spectator_registry_counter(r, name, SPECTATOR_TAGS("v", value));
      spectator_counter_increment(m);
    } else {
      spectator_id_t *id = spectator_id_new(name, SPECTATOR_TAGS("v", value));
      m = spectator_registry_counter_id(r, id);
      spectator_counter_increment(m);
      spectator_id_free(id);
    }
    if (spectator__is_noop(m)) noops++;
    if (i == CAP) rss_at_cap = rss_bytes();
    if (i == 2 * CAP) rss_warm = rss_bytes();
  }
  double rss_end = rss_bytes();
  printf("  1M ids, cap %d: RSS at the cap %.1f MiB, after 200k %.1f MiB, after 1M %.1f MiB\n", CAP,
         rss_at_cap / 1048576, rss_warm / 1048576, rss_end / 1048576);
  /* the cap, and the registry-full counter (outside it) */
  assert_int_equal(spectator_registry_size(r), CAP + 1);
  assert_int_equal(noops, TOTAL - (CAP - 1)); /* "good" took one place */
  assert_true(rss_end - rss_warm < RSS_GROWTH_BOUND);
  /* Rate limited: the names differ in a number only (one name pattern,
   * hostile.#), so about log2(900,000) lines, each bounded. */
  size_t full = tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "registry is full");
  printf("  'registry is full' logged %zu times for %zu no-op lookups\n", full, noops);
  assert_true(full >= 10 && full <= 40);
  assert_log_lines_bounded();
  /* Existing meters still work, and nothing else was lost. */
  spectator_counter_add(good, 7);
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  assert_int_equal(spectator_measurements_count(ms), CAP + 1);
  double v = 0;
  assert_true(tu_find(ms, "good", COUNT_TAGS, &v) && v == 7);
  assert_true(
      tu_find(ms, "spectator.measurements",
              SPECTATOR_TAGS("id", "dropped", "error", "registry-full", "statistic", "count"),
              &v) &&
      v == (double)noops);
  assert_true(tu_find(ms, "hostile.0000001", SPECTATOR_TAGS("v", "1", "statistic", "count"), &v) &&
              v == 1);
  spectator_measurements_free(ms);
  spectator_registry_free(r);
  tu_log_release();
}

/* Creating and freeing registries over and over holds no memory. */
static void a_thousand_registries_created_and_freed_hold_no_memory(void **state) {
  (void)state;
  double warm = 0;
  for (int i = 0; i < 1000; i++) {
    spectator_registry_t *r = quiet_registry(0);
    spectator_counter_increment(spectator_registry_counter(r, "x", SPECTATOR_TAGS("i", "1")));
    spectator_measurements_free(spectator_registry_snapshot(r));
    spectator_registry_free(r);
    if (i == 100) warm = rss_bytes();
  }
  double end = rss_bytes();
  printf("  1000 registries: RSS after 100 %.1f MiB, after 1000 %.1f MiB\n", warm / 1048576,
         end / 1048576);
  assert_true(end - warm < RSS_GROWTH_BOUND);
}

int main(void) {
  /* The global registry must never publish here. */
  setenv("SPECTATOR_DISABLE_AUTO_START", "1", 1);
  unsetenv("SPECTATOR_URI");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_id_function_accepts_null_and_garbage),
      cmocka_unit_test(ids_take_huge_binary_and_many_tag_strings),
      cmocka_unit_test(format_directives_in_user_strings_are_printed_literally),
      cmocka_unit_test(invalid_configurations_are_refused_with_a_log_line),
      cmocka_unit_test(huge_strings_in_the_configuration_are_harmless),
      cmocka_unit_test(ten_thousand_common_tags_are_dropped_whole_not_truncated),
      cmocka_unit_test(a_hostile_environment_gives_defaults_and_bounded_log_lines),
      cmocka_unit_test(the_measurements_api_accepts_null_and_out_of_range),
      cmocka_unit_test(the_log_and_error_apis_accept_garbage),
      cmocka_unit_test(stopwatches_and_buckets_take_the_int64_limits),
      cmocka_unit_test(the_global_api_accepts_null_and_garbage),
      cmocka_unit_test(a_million_distinct_ids_stop_at_the_cap_with_bounded_memory),
      cmocka_unit_test(a_thousand_registries_created_and_freed_hold_no_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
