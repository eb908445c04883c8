/*
 * fuzz_config: the environment as configuration.
 *
 * Input: strings separated by 0 bytes, set in order as the values of the
 * variables below (a missing string unsets the variable). Then:
 * - spectator_config_from_env() must give a configuration that
 *   spectator_registry_new() accepts (bad values fall back to the defaults),
 *   with uri NULL or an http(s) URI, frequency in (0, 86400], timeout in
 *   (0, 3600], batch size and max_meters > 0;
 * - spectator__env_common_tags() must give non-empty, trimmed keys and values
 *   and no key with '=' or ',' (they separate SPECTATOR_COMMON_TAGS entries);
 * - spectator__parse_flag() and spectator_log_level_parse() take any string;
 * - a registry built from it (not started: no network) records and snapshots.
 * Every log line goes through a handler that checks it is one line.
 */
#include <ctype.h>

#include "fuzz_util.h"
#include "config.h"

static const char *const vars[] = {
    "SPECTATOR_URI",         "SPECTATOR_FREQUENCY",   "SPECTATOR_BATCH_SIZE",
    "SPECTATOR_TIMEOUT",     "SPECTATOR_MAX_METERS",  "SPECTATOR_DISABLE_AUTO_START",
    "SPECTATOR_COMMON_TAGS", "NETFLIX_APP",           "NETFLIX_ACCOUNT_ID",
    "EC2_OWNER_ID",          "NETFLIX_INSTANCE_ID",   "TITUS_TASK_INSTANCE_ID",
    "EC2_INSTANCE_ID",       "NETFLIX_REGION",        "EC2_REGION",
    "NETFLIX_STACK",         "EC2_AVAILABILITY_ZONE",
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

static bool trimmed(const char *s) {
  size_t n = strlen(s);
  return n && !isspace((unsigned char)s[0]) && !isspace((unsigned char)s[n - 1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) {
    fuzz_init_logging();
    init = 1;
  }
  size_t n;
  char *buf;
  char **s = fuzz_split(data, size, NVARS, &n, &buf);
  if (!s) return 0;
  for (size_t i = 0; i < NVARS; i++) {
    if (i < n)
      setenv(vars[i], s[i], 1);
    else
      unsetenv(vars[i]);
  }

  spectator_config_t cfg;
  spectator_config_from_env(&cfg);
  FUZZ_CHECK(cfg.frequency_s > 0 && cfg.frequency_s <= 86400);
  FUZZ_CHECK(cfg.timeout_s > 0 && cfg.timeout_s <= 3600);
  FUZZ_CHECK(cfg.batch_size > 0 && cfg.max_meters > 0);
  FUZZ_CHECK(!cfg.uri || strncasecmp(cfg.uri, "http://", 7) == 0 ||
             strncasecmp(cfg.uri, "https://", 8) == 0);
  FUZZ_CHECK(spectator__config_validate(&cfg) == 0);

  char **tags = spectator__env_common_tags();
  FUZZ_CHECK(tags);
  for (size_t i = 0; tags[i]; i += 2) {
    const char *k = tags[i], *v = tags[i + 1];
    FUZZ_CHECK(v);
    FUZZ_CHECK(trimmed(k) && trimmed(v));
    FUZZ_CHECK(!strchr(k, ',') && !strchr(k, '='));
  }
  free(tags);

  for (size_t i = 0; i < n; i++) {
    (void)spectator__parse_flag("FUZZ", s[i]);
    spectator_log_level_t level = SPECTATOR_LOG_OFF;
    if (spectator_log_level_parse(s[i], &level) == 0)
      FUZZ_CHECK((int)level >= SPECTATOR_LOG_DEBUG && (int)level <= SPECTATOR_LOG_OFF);
  }

  /* A registry from it: never started here (no network in a fuzz run). */
  cfg.auto_start = 0;
  cfg.flush_at_exit = 0;
  if (cfg.max_meters > 1024) cfg.max_meters = 1024;
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  FUZZ_CHECK(reg);
  spectator_counter_increment(spectator_registry_counter(reg, "fuzz.config", NULL));
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  FUZZ_CHECK(spectator_measurements_count(ms) == 1);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);

  free(s);
  free(buf);
  return 0;
}
