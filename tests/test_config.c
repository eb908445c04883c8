/*
 * Unit tests for src/config.c: defaults, the SPECTATOR_* variables, the flag
 * parser, common tags from SPECTATOR_COMMON_TAGS and the Netflix environment,
 * and how a registry merges them with configured common tags.
 *
 * Every test starts from an environment without any variable this library
 * reads (clean_env), and captures log lines.
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

#include "config.h"
#include "registry.h"
#include "test_util.h"

static const char *const spectator_vars[] = {"SPECTATOR_URI",
                                             "SPECTATOR_FREQUENCY",
                                             "SPECTATOR_BATCH_SIZE",
                                             "SPECTATOR_TIMEOUT",
                                             "SPECTATOR_COMMON_TAGS",
                                             "SPECTATOR_DISABLE_AUTO_START",
                                             "SPECTATOR_MAX_METERS",
                                             "ATLAS_SKIP_COMMON_TAGS",
                                             "EC2_AMI_ID",
                                             NULL};

/* Every Netflix variable and the tag it gives, in the order of
 * precedence within a tag. */
static const struct {
  const char *var, *tag;
} nf_vars[] = {
    {"NETFLIX_ACCOUNT_ID", "nf.account"},
    {"EC2_OWNER_ID", "nf.account"},
    {"NETFLIX_APP", "nf.app"},
    {"NETFLIX_AUTO_SCALE_GROUP", "nf.asg"},
    {"NETFLIX_CLUSTER", "nf.cluster"},
    {"TITUS_CONTAINER_NAME", "nf.container"},
    {"NETFLIX_INSTANCE_ID", "nf.node"},
    {"TITUS_TASK_INSTANCE_ID", "nf.node"},
    {"EC2_INSTANCE_ID", "nf.node"},
    {"NETFLIX_PROCESS_NAME", "nf.process"},
    {"NETFLIX_REGION", "nf.region"},
    {"EC2_REGION", "nf.region"},
    {"NETFLIX_SHARD1", "nf.shard1"},
    {"NETFLIX_SHARD2", "nf.shard2"},
    {"NETFLIX_STACK", "nf.stack"},
    {"EC2_INSTANCE_TYPE", "nf.vmtype"},
    {"EC2_AVAILABILITY_ZONE", "nf.zone"},
};
#define NF_VARS (sizeof(nf_vars) / sizeof(nf_vars[0]))

static void clean_env(void) {
  for (size_t i = 0; spectator_vars[i]; i++) unsetenv(spectator_vars[i]);
  for (size_t i = 0; i < NF_VARS; i++) unsetenv(nf_vars[i].var);
}

static int setup(void **state) {
  (void)state;
  clean_env();
  spectator_log_set_level(SPECTATOR_LOG_WARN);
  tu_log_capture();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tu_log_release();
  clean_env();
  return 0;
}

/* "k=v,k=v" of a NULL-terminated alternating array. */
static const char *kv_str(const char *const *kv) {
  static char buf[8192];
  size_t off = 0;
  buf[0] = '\0';
  for (size_t i = 0; kv && kv[i]; i += 2)
    off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s=%s", i ? "," : "", kv[i],
                            kv[i + 1] ? kv[i + 1] : "(null)");
  return buf;
}

static const char *env_tags_str(void) {
  char **tags = spectator__env_common_tags();
  assert_non_null(tags);
  const char *s = kv_str((const char *const *)tags);
  free(tags);
  return s;
}

/* ------------------------------------------------------------------------ */
/* Defaults                                                                  */
/* ------------------------------------------------------------------------ */

static void check_defaults(const spectator_config_t *cfg) {
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
  assert_null(cfg->clock);
  assert_null(cfg->clock_ctx);
}

static void config_init_sets_the_documented_defaults(void **state) {
  (void)state;
  spectator_config_t cfg;
  memset(&cfg, 0xa5, sizeof(cfg));
  spectator_config_init(&cfg);
  check_defaults(&cfg);
  assert_int_equal(spectator__config_validate(&cfg), 0);
  spectator_config_init(NULL);
  spectator_config_from_env(NULL);
  tu_assert_log_count(0);
}

static void config_from_env_without_variables_gives_the_defaults_and_logs_nothing(void **state) {
  (void)state;
  spectator_config_t cfg;
  memset(&cfg, 0x5a, sizeof(cfg));
  spectator_config_from_env(&cfg);
  check_defaults(&cfg);
  tu_assert_log_count(0);
}

/* ------------------------------------------------------------------------ */
/* Each variable, valid and invalid                                          */
/* ------------------------------------------------------------------------ */

static void config_from_env_reads_SPECTATOR_URI(void **state) {
  (void)state;
  spectator_config_t cfg;
  setenv("SPECTATOR_URI", "http://localhost:7101/api/v4/update", 1);
  spectator_config_from_env(&cfg);
  assert_string_equal(cfg.uri, "http://localhost:7101/api/v4/update");
  setenv("SPECTATOR_URI", "https://atlas.example.com/api/v4/update", 1);
  spectator_config_from_env(&cfg);
  assert_string_equal(cfg.uri, "https://atlas.example.com/api/v4/update");
  setenv("SPECTATOR_URI", "", 1); /* empty means unset */
  spectator_config_from_env(&cfg);
  assert_null(cfg.uri);
  tu_assert_log_count(0);
}

static void config_from_env_ignores_a_SPECTATOR_URI_that_is_not_http_and_logs_it(void **state) {
  (void)state;
  spectator_config_t cfg;
  setenv("SPECTATOR_URI", "ftp://example.com/x", 1);
  setenv("SPECTATOR_FREQUENCY", "2", 1);
  spectator_config_from_env(&cfg);
  assert_null(cfg.uri);
  assert_true(cfg.frequency_s == 2.0); /* the other variables still apply */
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT, "SPECTATOR_URI",
                     "ftp://example.com/x");
  assert_int_equal(spectator__config_validate(&cfg), 0);
}

typedef struct {
  const char *var;
  const char *value;
} env_case_t;

/* Set var=value, read the config, expect the defaults for that variable and
 * exactly one warning naming the variable and quoting the value. */
static void expect_rejected(const char *var, const char *value, const char *shown) {
  clean_env();
  tu_log_clear();
  setenv(var, value, 1);
  spectator_config_t cfg;
  spectator_config_from_env(&cfg);
  check_defaults(&cfg);
  if (tu_log_count() != 1) print_error("%s='%s'\n", var, value);
  tu_assert_log_count(1);
  char quoted[256];
  snprintf(quoted, sizeof(quoted), "%s='%s'", var, shown ? shown : value);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT, quoted, "not valid",
                     "using the default");
  unsetenv(var);
}

static void config_from_env_reads_SPECTATOR_FREQUENCY_in_seconds_with_fractions(void **state) {
  (void)state;
  spectator_config_t cfg;
  static const struct {
    const char *text;
    double want;
  } ok[] = {{"10", 10}, {"0.25", 0.25}, {" 2.5 ", 2.5}, {"1e1", 10}, {"86400", 86400}};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    setenv("SPECTATOR_FREQUENCY", ok[i].text, 1);
    spectator_config_from_env(&cfg);
    assert_true(cfg.frequency_s == ok[i].want);
  }
  tu_assert_log_count(0);
}

static void config_from_env_keeps_the_default_frequency_for_invalid_values(void **state) {
  (void)state;
  const char *bad[] = {"0", "-1", "abc", "5s", "nan", "inf", "1e9", "", "  ", "1,5"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    expect_rejected("SPECTATOR_FREQUENCY", bad[i], NULL);
}

static void config_from_env_reads_SPECTATOR_BATCH_SIZE(void **state) {
  (void)state;
  spectator_config_t cfg;
  setenv("SPECTATOR_BATCH_SIZE", "500", 1);
  spectator_config_from_env(&cfg);
  assert_int_equal(cfg.batch_size, 500);
  setenv("SPECTATOR_BATCH_SIZE", " 1 ", 1);
  spectator_config_from_env(&cfg);
  assert_int_equal(cfg.batch_size, 1);
  tu_assert_log_count(0);
  const char *bad[] = {"0", "-5", "1.5", "abc", "10x", "+3", "99999999999999999999999", ""};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    expect_rejected("SPECTATOR_BATCH_SIZE", bad[i], NULL);
}

static void config_from_env_reads_SPECTATOR_TIMEOUT_for_both_timeouts(void **state) {
  (void)state;
  spectator_config_t cfg;
  setenv("SPECTATOR_TIMEOUT", "0.5", 1);
  spectator_config_from_env(&cfg);
  assert_true(cfg.timeout_s == 0.5);
  assert_true(cfg.connect_timeout_s == 0.5);
  tu_assert_log_count(0);
  const char *bad[] = {"0", "-2", "x", "7200", "NaN"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    expect_rejected("SPECTATOR_TIMEOUT", bad[i], NULL);
}

/* Numbers in the environment are read with a decimal point, as documented,
 * whatever LC_NUMERIC the program set. */
static void config_from_env_reads_a_decimal_point_whatever_the_locale(void **state) {
  (void)state;
  if (!tu_comma_locale()) {
    tu_locale_reset();
    skip(); /* no German locale, and no locale sources to make one */
  }
  spectator_config_t cfg;
  setenv("SPECTATOR_TIMEOUT", "1.5", 1);
  spectator_config_from_env(&cfg);
  tu_locale_reset();
  assert_true(cfg.timeout_s == 1.5);
  tu_assert_log_count(0);
}

static void config_from_env_reads_SPECTATOR_MAX_METERS(void **state) {
  (void)state;
  spectator_config_t cfg;
  setenv("SPECTATOR_MAX_METERS", "10", 1);
  spectator_config_from_env(&cfg);
  assert_int_equal(cfg.max_meters, 10);
  tu_assert_log_count(0);
  const char *bad[] = {"0", "ten", "-1", "1e3"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    expect_rejected("SPECTATOR_MAX_METERS", bad[i], NULL);
}

static void config_from_env_applies_valid_variables_and_logs_each_invalid_one(void **state) {
  (void)state;
  setenv("SPECTATOR_URI", "http://h:1/api/v4/update", 1);
  setenv("SPECTATOR_FREQUENCY", "zero", 1);
  setenv("SPECTATOR_BATCH_SIZE", "7", 1);
  setenv("SPECTATOR_TIMEOUT", "-1", 1);
  setenv("SPECTATOR_MAX_METERS", "20", 1);
  setenv("SPECTATOR_DISABLE_AUTO_START", "perhaps", 1);
  spectator_config_t cfg;
  spectator_config_from_env(&cfg);
  assert_string_equal(cfg.uri, "http://h:1/api/v4/update");
  assert_true(cfg.frequency_s == 5.0);
  assert_int_equal(cfg.batch_size, 7);
  assert_true(cfg.timeout_s == 1.0);
  assert_int_equal(cfg.max_meters, 20);
  assert_int_equal(cfg.auto_start, 1);
  tu_assert_log_count(3);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_INIT, "SPECTATOR_FREQUENCY='zero'"), 1);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_INIT, "SPECTATOR_TIMEOUT='-1'"), 1);
  assert_int_equal(
      tu_log_count_matching(SPECTATOR_LOGGER_INIT, "SPECTATOR_DISABLE_AUTO_START='perhaps'"), 1);
}

static void bad_values_are_logged_without_control_characters_and_cut_to_120_bytes(void **state) {
  (void)state;
  expect_rejected("SPECTATOR_FREQUENCY", "5\n6\x1b[0m", "5?6?[0m");
  /* a 100 KB value: the log line quotes its first 120 bytes */
  size_t n = 100 * 1024;
  char *big = malloc(n + 1);
  assert_non_null(big);
  memset(big, '9', n);
  big[n] = '\0';
  char shown[121];
  memset(shown, '9', 120);
  shown[120] = '\0';
  expect_rejected("SPECTATOR_BATCH_SIZE", big, shown);
  free(big);
}

/* ------------------------------------------------------------------------ */
/* SPECTATOR_DISABLE_AUTO_START                                              */
/* ------------------------------------------------------------------------ */

static int auto_start_for(const char *value) {
  spectator_config_t cfg;
  tu_setenv("SPECTATOR_DISABLE_AUTO_START", value);
  spectator_config_from_env(&cfg);
  return cfg.auto_start;
}

static void disable_auto_start_accepts_1_true_yes_in_any_case_and_trimmed(void **state) {
  (void)state;
  const char *yes[] = {"1", "true", "yes", "TRUE", "Yes", " yes ", "\ttrue\n", "on"};
  for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
    assert_int_equal(auto_start_for(yes[i]), 0);
  tu_assert_log_count(0);
}

static void disable_auto_start_0_false_empty_or_unset_keeps_auto_start(void **state) {
  (void)state;
  const char *no[] = {"0", "false", "FALSE", "no", "", "   ", " 0 ", "off"};
  for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
    assert_int_equal(auto_start_for(no[i]), 1);
  assert_int_equal(auto_start_for(NULL), 1);
  tu_assert_log_count(0);
}

static void disable_auto_start_garbage_keeps_auto_start_and_logs_a_line(void **state) {
  (void)state;
  const char *bad[] = {"2", "maybe", "yess", "y e s", "truetruetruetruetrue", "-1"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    tu_log_clear();
    assert_int_equal(auto_start_for(bad[i]), 1);
    tu_assert_log_count(1);
    char quoted[64];
    snprintf(quoted, sizeof(quoted), "SPECTATOR_DISABLE_AUTO_START='%s'", bad[i]);
    tu_assert_log_line(0, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT, quoted, "not valid");
  }
}

static void parse_flag_reports_the_variable_it_was_given(void **state) {
  (void)state;
  assert_true(spectator__parse_flag("MY_FLAG", "YES"));
  assert_false(spectator__parse_flag("MY_FLAG", NULL));
  assert_false(spectator__parse_flag("MY_FLAG", "nope"));
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT, "MY_FLAG='nope'");
}

/* ------------------------------------------------------------------------ */
/* Common tags from the environment                                          */
/* ------------------------------------------------------------------------ */

static void env_common_tags_are_empty_without_variables(void **state) {
  (void)state;
  char **tags = spectator__env_common_tags();
  assert_non_null(tags);
  assert_null(tags[0]);
  free(tags);
  tu_assert_log_count(0);
}

static void spectator_common_tags_are_parsed_and_each_malformed_entry_is_logged(void **state) {
  (void)state;
  setenv("SPECTATOR_COMMON_TAGS", "a=1, b = 2 ,bad,=x,y=", 1);
  assert_string_equal(env_tags_str(), "a=1,b=2");
  tu_assert_log_count(3);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT, "SPECTATOR_COMMON_TAGS",
                     "'bad'");
  tu_assert_log_line(1, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT, "SPECTATOR_COMMON_TAGS", "'=x'");
  tu_assert_log_line(2, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT, "SPECTATOR_COMMON_TAGS", "'y='");
}

static void spectator_common_tags_edge_cases(void **state) {
  (void)state;
  /* empty entries are skipped silently; '=' inside a value is kept */
  setenv("SPECTATOR_COMMON_TAGS", ",,k=a=b,,", 1);
  assert_string_equal(env_tags_str(), "k=a=b");
  tu_assert_log_count(0);
  setenv("SPECTATOR_COMMON_TAGS", "", 1);
  assert_string_equal(env_tags_str(), "");
  setenv("SPECTATOR_COMMON_TAGS", "only=one", 1);
  assert_string_equal(env_tags_str(), "only=one");
  /* blank entries, as left by a trailing ", ", are skipped silently too */
  setenv("SPECTATOR_COMMON_TAGS", " a=1, , b=2, ", 1);
  assert_string_equal(env_tags_str(), "a=1,b=2");
  tu_assert_log_count(0);
  /* a lone '=' is malformed */
  setenv("SPECTATOR_COMMON_TAGS", "a=1, = ", 1);
  assert_string_equal(env_tags_str(), "a=1");
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT, "' = '");
}

static void every_netflix_variable_maps_to_its_nf_tag_trimmed(void **state) {
  (void)state;
  for (size_t i = 0; i < NF_VARS; i++) {
    clean_env();
    char value[64], want[128];
    snprintf(value, sizeof(value), "  value-%zu\t", i);
    setenv(nf_vars[i].var, value, 1);
    snprintf(want, sizeof(want), "%s=value-%zu", nf_vars[i].tag, i);
    if (strcmp(env_tags_str(), want) != 0) print_error("%s\n", nf_vars[i].var);
    assert_string_equal(env_tags_str(), want);
  }
  tu_assert_log_count(0);
}

static void the_first_non_empty_netflix_variable_wins(void **state) {
  (void)state;
  setenv("NETFLIX_ACCOUNT_ID", "111", 1);
  setenv("EC2_OWNER_ID", "222", 1);
  assert_string_equal(env_tags_str(), "nf.account=111");
  setenv("NETFLIX_ACCOUNT_ID", " \t ", 1); /* whitespace only: skipped */
  assert_string_equal(env_tags_str(), "nf.account=222");
  setenv("NETFLIX_ACCOUNT_ID", "", 1);
  assert_string_equal(env_tags_str(), "nf.account=222");

  clean_env();
  setenv("EC2_INSTANCE_ID", "i-ec2", 1);
  assert_string_equal(env_tags_str(), "nf.node=i-ec2");
  setenv("TITUS_TASK_INSTANCE_ID", "titus", 1);
  assert_string_equal(env_tags_str(), "nf.node=titus");
  setenv("NETFLIX_INSTANCE_ID", "nflx", 1);
  assert_string_equal(env_tags_str(), "nf.node=nflx");
  setenv("NETFLIX_INSTANCE_ID", "  ", 1);
  assert_string_equal(env_tags_str(), "nf.node=titus");

  clean_env();
  setenv("EC2_REGION", "us-west-2", 1);
  setenv("NETFLIX_REGION", "us-east-1", 1);
  assert_string_equal(env_tags_str(), "nf.region=us-east-1");
  tu_assert_log_count(0);
}

static void all_netflix_variables_then_spectator_common_tags_in_order(void **state) {
  (void)state;
  for (size_t i = 0; i < NF_VARS; i++) setenv(nf_vars[i].var, nf_vars[i].var, 1);
  setenv("SPECTATOR_COMMON_TAGS", "x=1,nf.app=override", 1);
  assert_string_equal(env_tags_str(),
                      "nf.account=NETFLIX_ACCOUNT_ID,nf.app=NETFLIX_APP,"
                      "nf.asg=NETFLIX_AUTO_SCALE_GROUP,nf.cluster=NETFLIX_CLUSTER,"
                      "nf.container=TITUS_CONTAINER_NAME,nf.node=NETFLIX_INSTANCE_ID,"
                      "nf.process=NETFLIX_PROCESS_NAME,nf.region=NETFLIX_REGION,"
                      "nf.shard1=NETFLIX_SHARD1,nf.shard2=NETFLIX_SHARD2,nf.stack=NETFLIX_STACK,"
                      "nf.vmtype=EC2_INSTANCE_TYPE,nf.zone=EC2_AVAILABILITY_ZONE,"
                      "x=1,nf.app=override");
  tu_assert_log_count(0);
}

/* As Spectator Java's commonTagsForAtlas: nf.ami is not a tag metrics carry. */
static void nf_ami_is_not_sent_even_when_EC2_AMI_ID_is_set(void **state) {
  (void)state;
  setenv("EC2_AMI_ID", "ami-0123456789", 1);
  assert_string_equal(env_tags_str(), "");
  setenv("NETFLIX_APP", "www", 1);
  assert_string_equal(env_tags_str(), "nf.app=www");
  tu_assert_log_count(0);
}

static void atlas_skip_common_tags_removes_the_keys_it_lists_trimmed(void **state) {
  (void)state;
  for (size_t i = 0; i < NF_VARS; i++) setenv(nf_vars[i].var, nf_vars[i].var, 1);
  setenv("SPECTATOR_COMMON_TAGS", "x=1,y=2", 1);
  /* blank entries, whitespace around keys (newlines and tabs too), and a key
   * that is not there */
  setenv("ATLAS_SKIP_COMMON_TAGS", "nf.node, , nf.zone\n\t,nf.asg,,x,nf.none", 1);
  assert_string_equal(env_tags_str(),
                      "nf.account=NETFLIX_ACCOUNT_ID,nf.app=NETFLIX_APP,"
                      "nf.cluster=NETFLIX_CLUSTER,nf.container=TITUS_CONTAINER_NAME,"
                      "nf.process=NETFLIX_PROCESS_NAME,nf.region=NETFLIX_REGION,"
                      "nf.shard1=NETFLIX_SHARD1,nf.shard2=NETFLIX_SHARD2,nf.stack=NETFLIX_STACK,"
                      "nf.vmtype=EC2_INSTANCE_TYPE,y=2");
  /* Keys are matched whole: a prefix or a longer key is kept. */
  clean_env();
  setenv("NETFLIX_APP", "www", 1);
  setenv("NETFLIX_CLUSTER", "www-main", 1);
  setenv("ATLAS_SKIP_COMMON_TAGS", "nf.ap,nf.clusters", 1);
  assert_string_equal(env_tags_str(), "nf.app=www,nf.cluster=www-main");
  setenv("ATLAS_SKIP_COMMON_TAGS", " \t", 1);
  assert_string_equal(env_tags_str(), "nf.app=www,nf.cluster=www-main");
  tu_assert_log_count(0);
}

static void a_netflix_value_over_1024_bytes_is_skipped_and_logged(void **state) {
  (void)state;
  char *big = malloc(2000);
  assert_non_null(big);
  memset(big, 'a', 1999);
  big[1999] = '\0';
  setenv("NETFLIX_APP", big, 1);
  setenv("NETFLIX_CLUSTER", "c", 1);
  assert_string_equal(env_tags_str(), "nf.cluster=c");
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT, "NETFLIX_APP='aaaa");

  /* leading whitespace must not turn a too long value into a cut one */
  tu_log_clear();
  big[0] = big[1] = big[2] = ' ';
  setenv("NETFLIX_APP", big, 1);
  assert_string_equal(env_tags_str(), "nf.cluster=c");
  tu_assert_log_count(1);

  /* exactly 1024 bytes after trimming is fine */
  tu_log_clear();
  memset(big, 'b', 1999);
  big[0] = ' ';
  big[1025] = ' ';
  big[1026] = '\0';
  setenv("NETFLIX_APP", big, 1);
  char **tags = spectator__env_common_tags();
  assert_string_equal(tags[0], "nf.app");
  assert_int_equal(strlen(tags[1]), 1024);
  free(tags);
  tu_assert_log_count(0);

  /* 1024 bytes, spaces, then more: too long, not cut at the spaces */
  memset(big, 'c', 1999);
  big[1024] = big[1025] = ' ';
  big[1030] = '\0';
  setenv("NETFLIX_APP", big, 1);
  assert_string_equal(env_tags_str(), "nf.cluster=c");
  tu_assert_log_count(1);
  free(big);
}

/* ------------------------------------------------------------------------ */
/* Registries and common tags                                                */
/* ------------------------------------------------------------------------ */

static void registry_has_env_common_tags_first_then_configured_ones(void **state) {
  (void)state;
  setenv("SPECTATOR_COMMON_TAGS", "a=1, b=2", 1);
  setenv("NETFLIX_APP", "www", 1);
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.auto_start = 0;
  cfg.common_tags = SPECTATOR_TAGS("c", "3", "a", "9");
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  assert_non_null(reg);
  assert_string_equal(kv_str(reg->cfg.common_tags), "nf.app=www,a=1,b=2,c=3,a=9");
  spectator_registry_free(reg);

  cfg.common_tags = NULL;
  reg = spectator_registry_new(&cfg);
  assert_string_equal(kv_str(reg->cfg.common_tags), "nf.app=www,a=1,b=2");
  spectator_registry_free(reg);
  tu_assert_log_count(0);
}

static void registry_without_env_common_tags_ignores_the_environment(void **state) {
  (void)state;
  setenv("SPECTATOR_COMMON_TAGS", "a=1", 1);
  setenv("NETFLIX_APP", "www", 1);
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.auto_start = 0;
  cfg.env_common_tags = 0;
  cfg.common_tags = SPECTATOR_TAGS("c", "3");
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  assert_non_null(reg);
  assert_string_equal(kv_str(reg->cfg.common_tags), "c=3");
  spectator_registry_free(reg);
  cfg.common_tags = NULL;
  reg = spectator_registry_new(&cfg);
  assert_non_null(reg->cfg.common_tags);
  assert_null(reg->cfg.common_tags[0]);
  spectator_registry_free(reg);
}

/* A program built against a newer header passes a larger struct. */
typedef struct {
  spectator_config_t cfg;
  unsigned char newer[24]; /* members this library does not know */
} newer_config_t;

static void config_init_size_zeroes_the_members_of_a_newer_header(void **state) {
  (void)state;
  newer_config_t n;
  memset(&n, 0xEE, sizeof(n));
  spectator_config_init_size(&n.cfg, sizeof(n));
  for (size_t i = 0; i < sizeof(n.newer); i++) assert_int_equal(n.newer[i], 0);
  assert_true(n.cfg.frequency_s == 5.0);
  assert_int_equal(n.cfg.max_meters, 100000);

  memset(&n, 0xEE, sizeof(n));
  tu_setenv("SPECTATOR_BATCH_SIZE", "12");
  spectator_config_from_env_size(&n.cfg, sizeof(n));
  for (size_t i = 0; i < sizeof(n.newer); i++) assert_int_equal(n.newer[i], 0);
  assert_int_equal(n.cfg.batch_size, 12);
  assert_int_equal(tu_log_count(), 0);
}

static void config_init_size_writes_only_the_given_bytes(void **state) {
  (void)state;
  unsigned char buf[sizeof(spectator_config_t) + 8];
  size_t size = offsetof(spectator_config_t, batch_size); /* uri and frequency_s */
  memset(buf, 0xEE, sizeof(buf));
  spectator_config_init_size((spectator_config_t *)(void *)buf, size);
  const spectator_config_t *cfg = (const spectator_config_t *)(const void *)buf;
  assert_null(cfg->uri);
  assert_true(cfg->frequency_s == 5.0);
  for (size_t i = size; i < sizeof(buf); i++) assert_int_equal(buf[i], 0xEE);
}

static void registry_new_size_ignores_the_members_of_a_newer_header_and_says_so(void **state) {
  (void)state;
  newer_config_t n;
  spectator_config_init_size(&n.cfg, sizeof(n));
  n.cfg.auto_start = 0;
  n.cfg.max_meters = 7;
  spectator_registry_t *reg = spectator_registry_new_size(&n.cfg, sizeof(n));
  assert_non_null(reg);
  assert_int_equal(reg->cfg.max_meters, 7);
  spectator_registry_free(reg);
  assert_int_equal(tu_log_count(), 0); /* members left at their defaults: nothing ignored */

  n.newer[5] = 1; /* a setting of the newer header */
  reg = spectator_registry_new_size(&n.cfg, sizeof(n));
  assert_non_null(reg);
  assert_int_equal(reg->cfg.max_meters, 7);
  spectator_registry_free(reg);
  assert_int_equal(
      tu_log_count_matching(SPECTATOR_LOGGER_INIT, "built against a newer spectator.h"), 1);
}

static void registry_new_size_gives_defaults_past_a_shorter_struct(void **state) {
  (void)state;
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.auto_start = 0;
  cfg.max_meters = 3;
  cfg.tls_verify = 0; /* past the size given below: not read */
  spectator_registry_t *reg =
      spectator_registry_new_size(&cfg, offsetof(spectator_config_t, tls_verify));
  assert_non_null(reg);
  assert_int_equal(reg->cfg.max_meters, 3);
  assert_int_equal(reg->cfg.tls_verify, 1);
  spectator_registry_free(reg);
}

static void the_0_1_entry_points_touch_only_the_0_1_members(void **state) {
  (void)state;
  /* Called by name, not through the header's macros, as a program built
   * against 0.1.0 calls them. */
  void (*init)(spectator_config_t *) = spectator_config_init;
  void (*from_env)(spectator_config_t *) = spectator_config_from_env;
  spectator_registry_t *(*reg_new)(const spectator_config_t *) = spectator_registry_new;
  unsigned char buf[sizeof(spectator_config_t) + 16];
  memset(buf, 0xEE, sizeof(buf));
  init((spectator_config_t *)(void *)buf);
  for (size_t i = SPECTATOR__CONFIG_SIZE_0_1; i < sizeof(buf); i++) assert_int_equal(buf[i], 0xEE);
  from_env((spectator_config_t *)(void *)buf);
  for (size_t i = SPECTATOR__CONFIG_SIZE_0_1; i < sizeof(buf); i++) assert_int_equal(buf[i], 0xEE);
  ((spectator_config_t *)(void *)buf)->auto_start = 0;
  spectator_registry_t *reg = reg_new((spectator_config_t *)(void *)buf);
  assert_non_null(reg);
  spectator_registry_free(reg);
  assert_int_equal(tu_log_count(), 0);
}

/* The skip list applies to the whole set of a registry that reads the
 * environment, configured tags included; not to one that does not. */
static void atlas_skip_common_tags_applies_to_every_common_tag_of_a_registry(void **state) {
  (void)state;
  setenv("NETFLIX_APP", "www", 1);
  setenv("NETFLIX_STACK", "main", 1);
  setenv("EC2_AMI_ID", "ami-1", 1);
  setenv("SPECTATOR_COMMON_TAGS", "a=1,b=2", 1);
  setenv("ATLAS_SKIP_COMMON_TAGS", "nf.stack,b,c", 1);
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.auto_start = 0;
  cfg.common_tags = SPECTATOR_TAGS("c", "3", "d", "4");
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  assert_non_null(reg);
  assert_string_equal(kv_str(reg->cfg.common_tags), "nf.app=www,a=1,d=4");
  spectator_registry_free(reg);
  cfg.env_common_tags = 0;
  reg = spectator_registry_new(&cfg);
  assert_non_null(reg);
  assert_string_equal(kv_str(reg->cfg.common_tags), "c=3,d=4");
  spectator_registry_free(reg);
  tu_assert_log_count(0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
      T(config_init_sets_the_documented_defaults),
      T(config_from_env_without_variables_gives_the_defaults_and_logs_nothing),
      T(config_from_env_reads_SPECTATOR_URI),
      T(config_from_env_ignores_a_SPECTATOR_URI_that_is_not_http_and_logs_it),
      T(config_from_env_reads_SPECTATOR_FREQUENCY_in_seconds_with_fractions),
      T(config_from_env_keeps_the_default_frequency_for_invalid_values),
      T(config_from_env_reads_SPECTATOR_BATCH_SIZE),
      T(config_from_env_reads_SPECTATOR_TIMEOUT_for_both_timeouts),
      T(config_from_env_reads_a_decimal_point_whatever_the_locale),
      T(config_from_env_reads_SPECTATOR_MAX_METERS),
      T(config_from_env_applies_valid_variables_and_logs_each_invalid_one),
      T(bad_values_are_logged_without_control_characters_and_cut_to_120_bytes),
      T(disable_auto_start_accepts_1_true_yes_in_any_case_and_trimmed),
      T(disable_auto_start_0_false_empty_or_unset_keeps_auto_start),
      T(disable_auto_start_garbage_keeps_auto_start_and_logs_a_line),
      T(parse_flag_reports_the_variable_it_was_given),
      T(env_common_tags_are_empty_without_variables),
      T(spectator_common_tags_are_parsed_and_each_malformed_entry_is_logged),
      T(spectator_common_tags_edge_cases),
      T(every_netflix_variable_maps_to_its_nf_tag_trimmed),
      T(the_first_non_empty_netflix_variable_wins),
      T(all_netflix_variables_then_spectator_common_tags_in_order),
      T(nf_ami_is_not_sent_even_when_EC2_AMI_ID_is_set),
      T(atlas_skip_common_tags_removes_the_keys_it_lists_trimmed),
      T(a_netflix_value_over_1024_bytes_is_skipped_and_logged),
      T(registry_has_env_common_tags_first_then_configured_ones),
      T(registry_without_env_common_tags_ignores_the_environment),
      T(config_init_size_zeroes_the_members_of_a_newer_header),
      T(config_init_size_writes_only_the_given_bytes),
      T(registry_new_size_ignores_the_members_of_a_newer_header_and_says_so),
      T(registry_new_size_gives_defaults_past_a_shorter_struct),
      T(the_0_1_entry_points_touch_only_the_0_1_members),
      T(atlas_skip_common_tags_applies_to_every_common_tag_of_a_registry),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
