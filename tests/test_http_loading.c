/*
 * When libcurl is loaded (SPECTATOR_DLOPEN_CURL builds): not at exec, not by
 * creating a registry or recording, but by the first publisher start; and
 * what a start does when libcurl.so.4 cannot be loaded.
 *
 * The tests share one process whose state only moves forward (libcurl, once
 * mapped, stays mapped), so they run in this order: the check that nothing is
 * mapped yet, the missing-library case in a forked child (which inherits a
 * process where libcurl was never loaded), then the start that loads it. This
 * program links the static library and nothing else that uses libcurl.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"
#include "spectator.h"
#include "test_util.h"

/* Nothing listens on port 1 of the loopback interface: a start only needs the
 * handle, and the final flush at stop fails at once. */
#define CLOSED_URI "http://127.0.0.1:1/api/v4/update"
#define MISSING_LIBRARY "libspectator-test-no-such-curl.so.4"

/* Whether a mapping of this process comes from a file named libcurl*. */
static bool libcurl_is_mapped(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  assert_non_null(f);
  char line[4096];
  bool found = false;
  while (!found && fgets(line, sizeof(line), f)) {
    const char *slash = strrchr(line, '/');
    found = slash && strncmp(slash + 1, "libcurl", 7) == 0;
  }
  fclose(f);
  return found;
}

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

static void recording_without_a_start_does_not_load_libcurl(void **state) {
  (void)state;
  if (!spectator__http_curl_dlopen) skip(); /* linked: mapped at exec by design */
  assert_false(libcurl_is_mapped());
  spectator_registry_t *reg = new_reg();
  assert_non_null(reg);
  spectator_counter_t *c = spectator_registry_counter(reg, "requests", SPECTATOR_TAGS("k", "v"));
  spectator_counter_add(c, 3);
  spectator_timer_record(spectator_registry_timer(reg, "latency", NULL), 0.25);
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  tu_assert_measurement(ms, "requests", SPECTATOR_TAGS("k", "v", "statistic", "count"), 3);
  spectator_measurements_free(ms);
  spectator_registry_stop(reg); /* never started: nothing to do */
  spectator_registry_free(reg);
  assert_false(libcurl_is_mapped());
}

/* In the child. Returns 0, or the number of the first check that failed. */
static long start_without_libcurl(void *arg) {
  (void)arg;
  spectator__http_curl_library = MISSING_LIBRARY;
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
  if (libcurl_is_mapped()) return 5;
  return 0;
}

static void a_missing_libcurl_fails_the_start_and_meters_keep_recording(void **state) {
  (void)state;
  if (!spectator__http_curl_dlopen) skip(); /* linked: it cannot be missing */
  assert_false(libcurl_is_mapped());
  long r = tu_in_child(start_without_libcurl, NULL);
  if (r != 0) tu_log_dump();
  assert_int_equal(r, 0);
  /* One error on the HTTP logger names the library and the loader's reason. */
  size_t load_errors = tu_log_count_matching(SPECTATOR_LOGGER_HTTP, "cannot load");
  if (load_errors != 1) tu_log_dump();
  assert_int_equal(load_errors, 1);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_HTTP, MISSING_LIBRARY), 1);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_HTTP, "No such file"), 1);
  /* Each failed start says so on the init logger, with the error code's text. */
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_INIT, "HTTP client error"), 2);
  assert_false(libcurl_is_mapped());
}

static void the_first_start_loads_libcurl(void **state) {
  (void)state;
  bool mapped_before = libcurl_is_mapped();
  assert_true(mapped_before == !spectator__http_curl_dlopen);
  spectator_registry_t *reg = new_reg();
  assert_non_null(reg);
  spectator_counter_increment(spectator_registry_counter(reg, "requests", NULL));
  assert_int_equal(spectator_registry_start(reg), 0);
  assert_true(libcurl_is_mapped());
  spectator_registry_stop(reg);
  /* A second start, after a stop, reuses what the first one loaded. */
  assert_int_equal(spectator_registry_start(reg), 0);
  spectator_registry_stop(reg);
  spectator_registry_free(reg);
  assert_true(libcurl_is_mapped());
}

int main(void) {
  /* Publishing failures to the closed port are expected; keep them quiet. */
  spectator_log_set_level(SPECTATOR_LOG_ERROR);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(recording_without_a_start_does_not_load_libcurl),
      cmocka_unit_test(a_missing_libcurl_fails_the_start_and_meters_keep_recording),
      cmocka_unit_test(the_first_start_loads_libcurl),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
