/*
 * A program built against an older spectator.h, run with this library.
 *
 * tests/CMakeLists.txt builds this one file twice, both times linked with the
 * shared library as an application would be:
 *   - config_abi_0_1: against tests/abi/0.1.0/spectator.h, the header of
 *     release 0.1.0, where spectator_config_init(), spectator_config_from_env()
 *     and spectator_registry_new() are plain functions;
 *   - config_abi_shrunk: against include/spectator.h with the last member of
 *     spectator_config_t removed (tests/abi/shrink_config.awk), as a program
 *     built before the library's struct grew by one field.
 *
 * The program allocates spectator_config_t with its own (smaller or equal)
 * sizeof, exactly, and puts canaries right after it: on the stack, and on the
 * heap both after an exactly-sized block (AddressSanitizer reports any byte
 * read or written past it) and inside a larger one. The library must write
 * and read only the caller's bytes, give every field its default, and the
 * registry built from it must work with exact values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <spectator.h>

#define CANARY 0xA5
#define CANARY_LEN 64

typedef struct {
  spectator_config_t cfg;
  unsigned char canary[CANARY_LEN];
} guarded_t;

static void arm(unsigned char *p) { memset(p, CANARY, CANARY_LEN); }

static void assert_canary(const unsigned char *p) {
  for (size_t i = 0; i < CANARY_LEN; i++) {
    if (p[i] != CANARY) fail_msg("canary byte %zu after the struct is 0x%02x", i, p[i]);
  }
}

static void assert_defaults(const spectator_config_t *cfg) {
  assert_null(cfg->uri);
  assert_true(cfg->frequency_s == 5.0);
  assert_int_equal(cfg->batch_size, 10000);
  assert_true(cfg->timeout_s == 1.0);
  assert_true(cfg->connect_timeout_s == 1.0);
  assert_null(cfg->common_tags);
  assert_int_equal(cfg->env_common_tags, 1);
  assert_int_equal(cfg->max_meters, 100000);
  assert_true(cfg->meter_ttl_s == 900.0);
  assert_int_equal(cfg->auto_start, 1);
  assert_int_equal(cfg->flush_at_exit, 1);
  assert_null(cfg->ca_info);
  assert_int_equal(cfg->tls_verify, 1);
  assert_null((void *)(uintptr_t)cfg->clock);
}

static int clean_env(void **state) {
  (void)state;
  static const char *const vars[] = {"SPECTATOR_URI",
                                     "SPECTATOR_FREQUENCY",
                                     "SPECTATOR_BATCH_SIZE",
                                     "SPECTATOR_TIMEOUT",
                                     "SPECTATOR_MAX_METERS",
                                     "SPECTATOR_DISABLE_AUTO_START",
                                     NULL};
  for (size_t i = 0; vars[i]; i++) unsetenv(vars[i]);
  return 0;
}

static void init_writes_only_the_callers_struct_on_the_stack(void **state) {
  (void)state;
  guarded_t g;
  memset(&g.cfg, 0xEE, sizeof g.cfg);
  arm(g.canary);
  spectator_config_init(&g.cfg);
  assert_canary(g.canary);
  assert_defaults(&g.cfg);
}

static void init_writes_only_the_callers_struct_on_the_heap(void **state) {
  (void)state;
  /* Exactly sized: AddressSanitizer reports a write past it. */
  spectator_config_t *exact = malloc(sizeof *exact);
  assert_non_null(exact);
  spectator_config_init(exact);
  assert_defaults(exact);
  free(exact);
  /* A larger block: the bytes after the struct keep their canary. */
  guarded_t *g = malloc(sizeof *g);
  assert_non_null(g);
  arm(g->canary);
  spectator_config_init(&g->cfg);
  assert_canary(g->canary);
  assert_defaults(&g->cfg);
  free(g);
}

static void from_env_writes_only_the_callers_struct(void **state) {
  (void)state;
  setenv("SPECTATOR_URI", "http://127.0.0.1:9/api/v4/update", 1);
  setenv("SPECTATOR_FREQUENCY", "2.5", 1);
  setenv("SPECTATOR_BATCH_SIZE", "77", 1);
  setenv("SPECTATOR_MAX_METERS", "3", 1);
  setenv("SPECTATOR_DISABLE_AUTO_START", "1", 1);
  guarded_t g;
  memset(&g.cfg, 0xEE, sizeof g.cfg);
  arm(g.canary);
  spectator_config_from_env(&g.cfg);
  assert_canary(g.canary);
  assert_string_equal(g.cfg.uri, "http://127.0.0.1:9/api/v4/update");
  assert_true(g.cfg.frequency_s == 2.5);
  assert_int_equal(g.cfg.batch_size, 77);
  assert_int_equal(g.cfg.max_meters, 3);
  assert_int_equal(g.cfg.auto_start, 0);
  assert_int_equal(g.cfg.tls_verify, 1);

  spectator_config_t *exact = malloc(sizeof *exact);
  assert_non_null(exact);
  spectator_config_from_env(exact);
  assert_int_equal(exact->batch_size, 77);
  free(exact);
}

/* No clock_ctx: the shrunk header has no such member. */
static int64_t fixed_clock(void *ctx) {
  (void)ctx;
  return 1000000000;
}

static void registry_reads_only_the_callers_struct_and_counts_exactly(void **state) {
  (void)state;
  static const char *const common[] = {"app", "abi", NULL};
  /* Exactly sized on the heap: AddressSanitizer reports a read past it. */
  spectator_config_t *cfg = malloc(sizeof *cfg);
  assert_non_null(cfg);
  spectator_config_init(cfg);
  cfg->max_meters = 2;
  cfg->auto_start = 0;
  cfg->env_common_tags = 0;
  cfg->common_tags = common;
  cfg->clock = fixed_clock;
  spectator_registry_t *reg = spectator_registry_new(cfg);
  free(cfg);
  assert_non_null(reg);

  spectator_counter_t *a = spectator_registry_counter(reg, "abi.requests", NULL);
  spectator_timer_t *t = spectator_registry_timer(reg, "abi.latency", NULL);
  spectator_counter_t *over = spectator_registry_counter(reg, "abi.over_the_cap", NULL);
  /* max_meters was read: 2 meters, and the counter of the refused lookup
   * (the library's own, outside the cap) */
  assert_int_equal(spectator_registry_size(reg), 3);
  spectator_counter_add(a, 1.5);
  spectator_counter_add(a, 2.25);
  spectator_timer_record(t, 0.5);
  spectator_counter_increment(over); /* a no-op meter */

  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  assert_non_null(ms);
  const spectator_measurement_t *m =
      spectator_measurements_find(ms, "abi.requests", SPECTATOR_TAGS("statistic", "count"));
  assert_non_null(m);
  assert_true(m->value == 3.75);
  m = spectator_measurements_find(ms, "abi.latency", SPECTATOR_TAGS("statistic", "totalTime"));
  assert_non_null(m);
  assert_true(m->value == 0.5);
  assert_null(
      spectator_measurements_find(ms, "abi.over_the_cap", SPECTATOR_TAGS("statistic", "count")));
  m = spectator_measurements_find(
      ms, "spectator.measurements",
      SPECTATOR_TAGS("id", "dropped", "error", "registry-full", "statistic", "count"));
  assert_non_null(m);
  assert_true(m->value == 1);
  /* count + 4 timer statistics + the refused lookup */
  assert_int_equal(spectator_measurements_count(ms), 6);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void registry_from_the_stack_with_garbage_after_it(void **state) {
  (void)state;
  guarded_t g;
  spectator_config_init(&g.cfg);
  memset(g.canary, 0xFF, sizeof g.canary); /* what a newer field would be, if it were read */
  g.cfg.auto_start = 0;
  g.cfg.max_meters = 1;
  spectator_registry_t *reg = spectator_registry_new(&g.cfg);
  assert_non_null(reg);
  spectator_counter_add(spectator_registry_counter(reg, "abi.one", NULL), 7);
  assert_true(spectator_counter_count(spectator_registry_counter(reg, "abi.one", NULL)) == 7);
  assert_int_equal(spectator_registry_size(reg), 1);
  spectator_registry_free(reg);
}

static void null_config_pointers_are_accepted(void **state) {
  (void)state;
  spectator_config_init(NULL);
  spectator_config_from_env(NULL);
  spectator_registry_t *reg = spectator_registry_new(NULL);
  assert_non_null(reg);
  spectator_registry_free(reg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(init_writes_only_the_callers_struct_on_the_stack, clean_env,
                                      clean_env),
      cmocka_unit_test_setup_teardown(init_writes_only_the_callers_struct_on_the_heap, clean_env,
                                      clean_env),
      cmocka_unit_test_setup_teardown(from_env_writes_only_the_callers_struct, clean_env,
                                      clean_env),
      cmocka_unit_test_setup_teardown(registry_reads_only_the_callers_struct_and_counts_exactly,
                                      clean_env, clean_env),
      cmocka_unit_test_setup_teardown(registry_from_the_stack_with_garbage_after_it, clean_env,
                                      clean_env),
      cmocka_unit_test_setup_teardown(null_config_pointers_are_accepted, clean_env, clean_env),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
