/*
 * When libcurl, zlib and cJSON are loaded (SPECTATOR_DLOPEN_DEPS builds): not
 * at exec, not by creating a registry, recording or taking snapshots, but by
 * the first publisher start, or by a direct call to the encoder or the
 * response parser for the one library it needs; and what a start, or such a
 * call, does when a library cannot be loaded. Whether a library is loaded is
 * read from /proc/self/maps.
 *
 * The tests share one process whose state only moves forward (a library, once
 * mapped, stays mapped), so they run in this order: the check that nothing is
 * mapped yet, the missing-library cases in forked children (each inherits a
 * process where nothing was loaded), the direct calls that load zlib and then
 * cJSON alone, then the start that loads libcurl. This program links the
 * static library and none of the three (see tests/CMakeLists.txt).
 *
 * In a build that links them (SPECTATOR_DLOPEN_DEPS=OFF) the same tests check
 * that all three are mapped from the start and that everything works; the
 * missing-library cases are skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deps.h"
#include "encoder.h"
#include "http.h"
#include "spectator.h"
#include "test_util.h"

/* Nothing listens on port 1 of the loopback interface: a start only needs the
 * handle, and the final flush at stop fails at once. */
#define CLOSED_URI "http://127.0.0.1:1/api/v4/update"

#define CURL SPECTATOR__DEP_CURL
#define ZLIB SPECTATOR__DEP_ZLIB
#define CJSON SPECTATOR__DEP_CJSON
#define NDEPS SPECTATOR__DEP_COUNT

/* How each library's file name starts ("libz.so", not "libz": libcurl brings
 * libzstd along), the name a test puts in its place, and the Debian package
 * the error must name. */
static const struct {
  const char *prefix;
  const char *missing;
  const char *package;
} dep[NDEPS] = {
    [CURL] = {"libcurl.so", "libspectator-test-no-such-curl.so.4", "the libcurl4 package"},
    [ZLIB] = {"libz.so", "libspectator-test-no-such-zlib.so.1", "the zlib1g package"},
    [CJSON] = {"libcjson.so", "libspectator-test-no-such-cjson.so.1", "the libcjson1 package"},
};

/* Whether a mapping of this process comes from a file whose name starts with
 * the library's prefix. */
static bool mapped(spectator__dep_t d) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return false;
  char line[4096];
  bool found = false;
  while (!found && fgets(line, sizeof(line), f)) {
    const char *slash = strrchr(line, '/');
    found = slash && strncmp(slash + 1, dep[d].prefix, strlen(dep[d].prefix)) == 0;
  }
  fclose(f);
  return found;
}

static bool none_mapped(void) { return !mapped(CURL) && !mapped(ZLIB) && !mapped(CJSON); }
static bool all_mapped(void) { return mapped(CURL) && mapped(ZLIB) && mapped(CJSON); }

static spectator_registry_t *new_reg(void) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.uri = CLOSED_URI;
  cfg.auto_start = 0;
  cfg.flush_at_exit = 0;
  cfg.env_common_tags = 0;
  cfg.timeout_s = cfg.connect_timeout_s = 1;
  return spectator_registry_new(&cfg);
}

static void recording_and_snapshots_load_nothing(void **state) {
  (void)state;
  /* Linked: the dynamic loader mapped them at exec, by design. */
  assert_true(spectator__deps_dlopen ? none_mapped() : all_mapped());
  spectator_registry_t *reg = new_reg();
  assert_non_null(reg);
  spectator_counter_t *c = spectator_registry_counter(reg, "requests", SPECTATOR_TAGS("k", "v"));
  spectator_counter_add(c, 3);
  spectator_timer_record(spectator_registry_timer(reg, "latency", NULL), 0.25);
  spectator_percentile_timer_record(spectator_registry_percentile_timer(reg, "pct", NULL, 0, 10),
                                    0.5);
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  tu_assert_measurement(ms, "requests", SPECTATOR_TAGS("k", "v", "statistic", "count"), 3);
  spectator_measurements_free(ms);
  spectator_registry_stop(reg); /* never started: nothing to do */
  spectator_registry_free(reg);
  assert_true(spectator__deps_dlopen ? none_mapped() : all_mapped());
}

/* In the child: the library d is missing. Returns 0, or the number of the
 * first check that failed. */
static long start_without(void *arg) {
  spectator__dep_t d = *(const spectator__dep_t *)arg;
  spectator__dep_file[d] = dep[d].missing;
  spectator_registry_t *reg = new_reg();
  if (!reg) return 1;
  spectator_counter_t *c = spectator_registry_counter(reg, "requests", NULL);
  spectator_counter_increment(c);
  if (spectator_registry_start(reg) != SPECTATOR_EHTTP) return 2;
  /* A second start fails the same way, without trying to load it again. */
  if (spectator_registry_start(reg) != SPECTATOR_EHTTP) return 3;
  spectator_counter_increment(c);
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  double v = 0;
  bool found = tu_find(ms, "requests", SPECTATOR_TAGS("statistic", "count"), &v);
  spectator_measurements_free(ms);
  if (!found || v != 2) return 4;
  spectator_registry_stop(reg);
  spectator_registry_free(reg);
  /* The start tried the other two anyway, so that one run of the program
   * names every library that is missing. */
  for (int o = 0; o < NDEPS; o++)
    if (o != (int)d && !mapped((spectator__dep_t)o)) return 5;
  return 0;
}

static void a_missing_library_fails_the_start_and_meters_keep_recording(void **state) {
  (void)state;
  if (!spectator__deps_dlopen) skip(); /* linked: none can be missing */
  for (int i = 0; i < NDEPS; i++) {
    spectator__dep_t d = (spectator__dep_t)i;
    assert_true(none_mapped());
    long r = tu_in_child(start_without, &d);
    if (r != 0) {
      print_error("without %s: check %ld failed\n", dep[d].prefix, r);
      tu_log_dump();
    }
    assert_int_equal(r, 0);
    /* One error on the HTTP logger names the file, the loader's reason and
     * the package to install. */
    size_t load_errors = tu_log_count_matching(SPECTATOR_LOGGER_HTTP, "cannot load");
    if (load_errors != 1) tu_log_dump();
    assert_int_equal(load_errors, 1);
    assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_HTTP, dep[d].missing), 1);
    assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_HTTP, "No such file"), 1);
    assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_HTTP, dep[d].package), 1);
    /* Each failed start says so on the init logger, with the error code's text. */
    assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_INIT, "HTTP client error"), 2);
  }
  assert_true(none_mapped());
}

/* One record of a counter, for the encoder. */
static void one_record(spectator__records_t *rs, spectator_id_t *id) {
  spectator__records_init(rs);
  spectator__records_add(rs, id, SPECTATOR__STAT_COUNT, 0, 1);
}

static const char ANSWER[] = "{\"type\":\"partial\",\"errorCount\":1,\"message\":[\"bad\"]}";

/* In the child: zlib and cJSON are missing, and the encoder and the parser
 * are called directly, as tests and benchmarks do. */
static long direct_calls_without(void *arg) {
  (void)arg;
  spectator__dep_file[ZLIB] = dep[ZLIB].missing;
  spectator__dep_file[CJSON] = dep[CJSON].missing;
  spectator_id_t *id = spectator_id_new("requests", NULL);
  spectator__records_t rs;
  spectator__payload_t pl;
  for (int i = 0; i < 2; i++) {
    one_record(&rs, id);
    if (spectator__encode(&rs, NULL, 100, 1, &pl) != SPECTATOR_ENOLIB) return 3;
    if (rs.len != 0 || rs.head || pl.len != 0 || pl.batches) return 4; /* consumed, nothing out */
  }
  /* Plain JSON needs no zlib. */
  one_record(&rs, id);
  if (spectator__encode(&rs, NULL, 100, SPECTATOR__ENCODE_RAW, &pl) != 0) return 5;
  if (pl.len != 1 || pl.measurements != 1 || pl.batches[0].data[0] != '[') return 6;
  spectator__payload_free(&pl);
  spectator_id_free(id);

  spectator__aggregator_response_t ar;
  if (spectator__parse_aggregator_response(ANSWER, strlen(ANSWER), &ar) != SPECTATOR_ENOLIB)
    return 7;
  if (ar.error_count || ar.nmessages || ar.messages) return 8;
  if (spectator__parse_aggregator_response(ANSWER, strlen(ANSWER), &ar) != SPECTATOR_ENOLIB)
    return 9;
  if (mapped(CURL)) return 10; /* nothing asked for it */
  return 0;
}

static void direct_calls_without_zlib_or_cjson_fail_cleanly(void **state) {
  (void)state;
  if (!spectator__deps_dlopen) skip();
  assert_true(none_mapped());
  long r = tu_in_child(direct_calls_without, NULL);
  if (r != 0) {
    print_error("check %ld failed\n", r);
    tu_log_dump();
  }
  assert_int_equal(r, 0);
  /* One error each, though each was asked for twice or more. */
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_HTTP, "cannot load"), 2);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_HTTP, dep[ZLIB].package), 1);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_HTTP, dep[CJSON].package), 1);
  assert_true(none_mapped());
}

static void a_direct_call_loads_only_the_library_it_needs(void **state) {
  (void)state;
  spectator_id_t *id = spectator_id_new("requests", NULL);
  spectator__records_t rs;
  spectator__payload_t pl;
  one_record(&rs, id);
  assert_int_equal(spectator__encode(&rs, NULL, 100, 1, &pl), 0);
  assert_int_equal(pl.len, 1);
  assert_true(pl.batches[0].len > 10);
  assert_int_equal((unsigned char)pl.batches[0].data[0], 0x1f); /* the gzip magic */
  assert_int_equal((unsigned char)pl.batches[0].data[1], 0x8b);
  spectator__payload_free(&pl);
  spectator_id_free(id);
  if (spectator__deps_dlopen) {
    assert_true(mapped(ZLIB));
    assert_false(mapped(CURL));
    assert_false(mapped(CJSON));
  }

  spectator__aggregator_response_t ar;
  assert_int_equal(spectator__parse_aggregator_response(ANSWER, strlen(ANSWER), &ar), 0);
  assert_int_equal(ar.error_count, 1);
  assert_int_equal(ar.nmessages, 1);
  assert_string_equal(ar.messages[0], "bad");
  spectator__aggregator_response_free(&ar);
  if (spectator__deps_dlopen) {
    assert_true(mapped(CJSON));
    assert_false(mapped(CURL));
  }
}

static void the_first_start_loads_libcurl(void **state) {
  (void)state;
  assert_true(mapped(CURL) == !spectator__deps_dlopen);
  spectator_registry_t *reg = new_reg();
  assert_non_null(reg);
  spectator_counter_increment(spectator_registry_counter(reg, "requests", NULL));
  assert_int_equal(spectator_registry_start(reg), 0);
  assert_true(all_mapped());
  spectator_registry_stop(reg);
  /* A second start, after a stop, reuses what the first one loaded. */
  assert_int_equal(spectator_registry_start(reg), 0);
  spectator_registry_stop(reg);
  spectator_registry_free(reg);
  assert_true(all_mapped());
}

int main(void) {
  /* Publishing failures to the closed port are expected; keep them quiet. */
  spectator_log_set_level(SPECTATOR_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(recording_and_snapshots_load_nothing),
      cmocka_unit_test(a_missing_library_fails_the_start_and_meters_keep_recording),
      cmocka_unit_test(direct_calls_without_zlib_or_cjson_fail_cleanly),
      cmocka_unit_test(a_direct_call_loads_only_the_library_it_needs),
      cmocka_unit_test(the_first_start_loads_libcurl),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
