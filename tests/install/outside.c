/*
 * A program outside the project: it sees only the installed <spectator.h> and
 * links the installed library (through pkg-config or find_package), as a user's
 * application would. It calls every public function, checks the results with
 * plain checks, and feeds every kind of bad input to show that nothing
 * crashes and that good meters keep their exact values.
 *
 * Run with SPECTATOR_DISABLE_AUTO_START=1 and without SPECTATOR_URI: it needs no
 * network. Exits 0 when every check passed, 1 otherwise (one line per failure).
 */
#include <spectator.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks;
static int failures;

static void fail_at(int line, const char *what) {
  fprintf(stderr, "outside.c:%d: check failed: %s\n", line, what);
  failures++;
}

#define CHECK(cond)                        \
  do {                                     \
    checks++;                              \
    if (!(cond)) fail_at(__LINE__, #cond); \
  } while (0)

static int near(double a, double b) {
  double d = a - b, m = b < 0 ? -b : b;
  if (d < 0) d = -d;
  return a == b || d <= 1e-12 * (m > 1 ? m : 1);
}

#define CHECK_DBL(a, b)                                                          \
  do {                                                                           \
    double a_ = (a), b_ = (b);                                                   \
    checks++;                                                                    \
    if (!near(a_, b_)) {                                                         \
      char msg_[256];                                                            \
      snprintf(msg_, sizeof(msg_), "%s == %s (%.17g != %.17g)", #a, #b, a_, b_); \
      fail_at(__LINE__, msg_);                                                   \
    }                                                                            \
  } while (0)

#define CHECK_STR(a, b)                                                                       \
  do {                                                                                        \
    const char *a_ = (a), *b_ = (b);                                                          \
    checks++;                                                                                 \
    if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                  \
      char msg_[256];                                                                         \
      snprintf(msg_, sizeof(msg_), "%s == %s (\"%s\" != \"%s\")", #a, #b, a_ ? a_ : "(null)", \
               b_ ? b_ : "(null)");                                                           \
      fail_at(__LINE__, msg_);                                                                \
    }                                                                                         \
  } while (0)

/* The measurement `name` + `tags` must be in the snapshot with this op and value. */
static void expect_at(int line, const spectator_measurements_t *ms, const char *name,
                      const char *const *tags, int op, double value) {
  checks++;
  const spectator_measurement_t *m = spectator_measurements_find(ms, name, tags);
  char msg[512];
  if (!m) {
    snprintf(msg, sizeof(msg), "measurement %.100s with the given tags is in the snapshot", name);
    fail_at(line, msg);
  } else if (m->op != op || !near(m->value, value)) {
    char id[256];
    spectator_id_format(m->id, id, sizeof(id));
    snprintf(msg, sizeof(msg), "%s: op %d value %.17g, expected op %d value %.17g", id, m->op,
             m->value, op, value);
    fail_at(line, msg);
  }
}
#define EXPECT(ms, name, tags, op, value) expect_at(__LINE__, ms, name, tags, op, value)
#define ADD SPECTATOR_OP_ADD
#define MAX SPECTATOR_OP_MAX

/* The percentile tag value of a raw value ("T002A", "D0010"). */
static const char *pct_tag(char prefix, int64_t v, char *buf) {
  snprintf(buf, 6, "%c%04X", prefix, (unsigned)spectator_percentile_buckets_index_of(v));
  return buf;
}

/* Log handler: counts messages so that bad input can be seen to be reported. */
static void count_logs(spectator_log_level_t level, const char *logger, const char *message,
                       void *ctx) {
  (void)level;
  if (logger && message) (*(int *)ctx)++;
}
static int log_count;

static void version_errors_and_logging(void) {
  CHECK_STR(spectator_version(), SPECTATOR_VERSION_STRING);
  CHECK(SPECTATOR_VERSION_HEX == ((SPECTATOR_VERSION_MAJOR << 16) | (SPECTATOR_VERSION_MINOR << 8) |
                                  SPECTATOR_VERSION_PATCH));
  CHECK_STR(spectator_err_name(SPECTATOR_EINVAL), "SPECTATOR_EINVAL");
  CHECK_STR(spectator_strerror(SPECTATOR_ENOURI), "no publish URI configured");
  CHECK_STR(spectator_strerror(-12345), "unknown error");
  CHECK(spectator_err_name(-12345) != NULL);
  CHECK(spectator_strerror(SPECTATOR_OK) != NULL);

  spectator_log_level_t level = SPECTATOR_LOG_OFF;
  CHECK(spectator_log_level_parse("WARNING", &level) == 0 && level == SPECTATOR_LOG_WARN);
  CHECK(spectator_log_level_parse("debug", &level) == 0 && level == SPECTATOR_LOG_DEBUG);
  CHECK(spectator_log_level_parse("loud", &level) == SPECTATOR_EINVAL);
  CHECK(spectator_log_level_parse(NULL, &level) == SPECTATOR_EINVAL);
  spectator_log_set_level(SPECTATOR_LOG_WARN);
  spectator_log_set_level((spectator_log_level_t)99); /* ignored */
  CHECK(spectator_log_get_level() == SPECTATOR_LOG_WARN);
  spectator_log_set_handler(count_logs, &log_count);

  spectator_config_t cfg;
  spectator_config_init(&cfg);
  CHECK(cfg.uri == NULL && cfg.frequency_s == 5 && cfg.batch_size == 10000);
  spectator_config_from_env(&cfg); /* run.sh unsets SPECTATOR_URI */
  CHECK(cfg.uri == NULL && cfg.auto_start == 0);
  spectator_config_init(NULL);
  spectator_config_from_env(NULL);

  CHECK(SPECTATOR_PERCENTILE_BUCKETS == 276);
  CHECK(spectator_percentile_buckets_index_of(-5) == 0);
  CHECK(spectator_percentile_buckets_index_of(0) == 0);
  CHECK(spectator_percentile_buckets_index_of(4) == 4);
  CHECK(spectator_percentile_buckets_index_of(INT64_MAX) == 275);
  CHECK(spectator_percentile_buckets_get(0) == 1);
  CHECK(spectator_percentile_buckets_get(275) == INT64_MAX);
  CHECK(spectator_percentile_buckets_get(276) == INT64_MAX);
}

static void ids(void) {
  spectator_id_t *id = spectator_id_new("n", SPECTATOR_TAGS("b", "2", "a", "1", "b", "3"));
  CHECK(id != NULL);
  CHECK_STR(spectator_id_name(id), "n");
  CHECK(spectator_id_tag_count(id) == 2);
  CHECK_STR(spectator_id_tag_key(id, 0), "a");
  CHECK_STR(spectator_id_tag_value(id, 0), "1");
  CHECK_STR(spectator_id_tag_key(id, 1), "b");
  CHECK_STR(spectator_id_tag_value(id, 1), "3"); /* a repeated key keeps the last value */
  CHECK(spectator_id_tag_key(id, 2) == NULL && spectator_id_tag_value(id, 2) == NULL);
  CHECK_STR(spectator_id_tag(id, "b"), "3");
  CHECK(spectator_id_tag(id, "zz") == NULL);

  spectator_id_t *same = spectator_id_new("n", SPECTATOR_TAGS("a", "1", "b", "3"));
  CHECK(spectator_id_equals(id, same) && spectator_id_hash(id) == spectator_id_hash(same));
  spectator_id_t *plus = spectator_id_with_tag(id, "c", "4");
  CHECK(spectator_id_tag_count(plus) == 3 && spectator_id_tag_count(id) == 2);
  CHECK(!spectator_id_equals(id, plus));
  spectator_id_t *more = spectator_id_with_tags(id, SPECTATOR_TAGS("a", "9", "d", "5"));
  CHECK_STR(spectator_id_tag(more, "a"), "9");
  CHECK_STR(spectator_id_tag(more, "d"), "5");
  spectator_id_t *copy = spectator_id_with_tags(id, NULL);
  CHECK(spectator_id_equals(copy, id));
  spectator_id_t *ref = spectator_id_ref(id);
  CHECK(ref == id);

  char buf[64];
  CHECK(spectator_id_format(id, buf, sizeof(buf)) == 10);
  CHECK_STR(buf, "n{a=1,b=3}");
  CHECK(spectator_id_format(id, buf, 4) == 10);
  CHECK_STR(buf, "n{a");
  CHECK(spectator_id_format(id, NULL, 0) == 10);

  /* Bad input: NULL everywhere it is allowed, and ids that cannot be made. */
  CHECK(spectator_id_new(NULL, NULL) == NULL);
  CHECK(spectator_id_new("", NULL) == NULL);
  CHECK(spectator_id_new("x", SPECTATOR_TAGS("odd")) == NULL);
  CHECK(spectator_id_new("x", SPECTATOR_TAGS("", "v")) == NULL);
  CHECK(spectator_id_new("x", SPECTATOR_TAGS("k", "")) == NULL);
  CHECK(spectator_id_with_tag(id, NULL, "v") == NULL);
  CHECK(spectator_id_with_tag(id, "k", NULL) == NULL);
  CHECK(spectator_id_with_tag(NULL, "k", "v") == NULL);
  CHECK(spectator_id_with_tags(id, SPECTATOR_TAGS("k")) == NULL);
  CHECK(spectator_id_ref(NULL) == NULL);
  CHECK_STR(spectator_id_name(NULL), "");
  CHECK(spectator_id_tag_count(NULL) == 0);
  CHECK(spectator_id_tag_key(NULL, 0) == NULL);
  CHECK(spectator_id_tag_value(NULL, 0) == NULL);
  CHECK(spectator_id_tag(NULL, "a") == NULL && spectator_id_tag(id, NULL) == NULL);
  CHECK(spectator_id_equals(NULL, NULL) == 1 && spectator_id_equals(id, NULL) == 0);
  CHECK(spectator_id_hash(NULL) == 0);
  spectator_id_format(NULL, buf, sizeof(buf));
  spectator_id_free(NULL);
  /* The id is unchanged by all of this. */
  CHECK(spectator_id_equals(id, same));

  spectator_id_free(ref);
  spectator_id_free(copy);
  spectator_id_free(more);
  spectator_id_free(plus);
  spectator_id_free(same);
  spectator_id_free(id);
}

/* Every lookup of an explicit registry with the same (bad) name and tags. Each must give a
 * usable, non-NULL meter; recording on it must change nothing anywhere. */
static void bad_lookups(spectator_registry_t *reg, const char *name, const char *const *tags) {
  spectator_counter_t *c = spectator_registry_counter(reg, name, tags);
  spectator_timer_t *t = spectator_registry_timer(reg, name, tags);
  spectator_dist_summary_t *d = spectator_registry_dist_summary(reg, name, tags);
  spectator_gauge_t *g = spectator_registry_gauge(reg, name, tags);
  spectator_gauge_t *gt = spectator_registry_gauge_with_ttl(reg, name, tags, 10);
  spectator_max_gauge_t *mg = spectator_registry_max_gauge(reg, name, tags);
  spectator_monotonic_counter_t *mc = spectator_registry_monotonic_counter(reg, name, tags);
  spectator_percentile_timer_t *pt = spectator_registry_percentile_timer(reg, name, tags, 0, 1);
  spectator_percentile_dist_summary_t *pd =
      spectator_registry_percentile_dist_summary(reg, name, tags, 0, 10);
  CHECK(c && t && d && g && gt && mg && mc && pt && pd);
  spectator_counter_add(c, 1);
  spectator_timer_record(t, 1);
  spectator_dist_summary_record(d, 1);
  spectator_gauge_set(g, 1);
  spectator_gauge_set(gt, 1);
  spectator_max_gauge_set(mg, 1);
  spectator_monotonic_counter_set(mc, 1);
  spectator_percentile_timer_record(pt, 1);
  spectator_percentile_dist_summary_record(pd, 1);
  CHECK(spectator_counter_count(c) == 0 && spectator_timer_count(t) == 0);
  CHECK(spectator_dist_summary_count(d) == 0 && isnan(spectator_gauge_get(g)));
  CHECK(spectator_percentile_timer_count(pt) == 0);
  CHECK(spectator_percentile_dist_summary_count(pd) == 0);
}

/* The same through the global API. */
static void bad_global_lookups(const char *name, const char *const *tags) {
  spectator_counter_t *c = spectator_counter(name, tags);
  spectator_timer_t *t = spectator_timer(name, tags);
  spectator_dist_summary_t *d = spectator_dist_summary(name, tags);
  spectator_gauge_t *g = spectator_gauge(name, tags);
  spectator_max_gauge_t *mg = spectator_max_gauge(name, tags);
  spectator_monotonic_counter_t *mc = spectator_monotonic_counter(name, tags);
  spectator_percentile_timer_t *pt = spectator_percentile_timer(name, tags, 0.001, 1);
  spectator_percentile_dist_summary_t *pd = spectator_percentile_dist_summary(name, tags, 0, 9);
  CHECK(c && t && d && g && mg && mc && pt && pd);
  spectator_counter_increment(c);
  spectator_counter_add(c, 1);
  spectator_timer_record(t, 1);
  spectator_timer_record_ns(t, 1);
  spectator_dist_summary_record(d, 1);
  spectator_gauge_set(g, 1);
  spectator_max_gauge_set(mg, 1);
  spectator_monotonic_counter_set(mc, 1);
  spectator_percentile_timer_record(pt, 1);
  spectator_percentile_timer_record_ns(pt, 1);
  spectator_percentile_dist_summary_record(pd, 1);
  CHECK(spectator_counter_count(c) == 0 && spectator_timer_count(t) == 0);
}

/* Bad values and NULL meters on every recording function and getter. */
static void null_meters(void) {
  spectator_counter_increment(NULL);
  spectator_counter_add(NULL, 1);
  spectator_timer_record(NULL, 1);
  spectator_timer_record_ns(NULL, 1);
  spectator_dist_summary_record(NULL, 1);
  spectator_gauge_set(NULL, 1);
  spectator_max_gauge_set(NULL, 1);
  spectator_monotonic_counter_set(NULL, 1);
  spectator_percentile_timer_record(NULL, 1);
  spectator_percentile_timer_record_ns(NULL, 1);
  spectator_percentile_dist_summary_record(NULL, 1);
  CHECK(spectator_counter_count(NULL) == 0);
  CHECK(spectator_timer_count(NULL) == 0 && spectator_timer_total_seconds(NULL) == 0);
  CHECK(spectator_dist_summary_count(NULL) == 0 && spectator_dist_summary_total(NULL) == 0);
  CHECK(isnan(spectator_gauge_get(NULL)) && isnan(spectator_max_gauge_get(NULL)));
  CHECK(spectator_monotonic_counter_get(NULL) == 0);
  CHECK(spectator_percentile_timer_count(NULL) == 0);
  CHECK(spectator_percentile_timer_total_seconds(NULL) == 0);
  CHECK(spectator_percentile_timer_percentile(NULL, 50) == 0);
  CHECK(spectator_percentile_dist_summary_count(NULL) == 0);
  CHECK(spectator_percentile_dist_summary_total(NULL) == 0);
  CHECK(spectator_percentile_dist_summary_percentile(NULL, 50) == 0);
  spectator_stopwatch_t sw = spectator_stopwatch_start();
  CHECK(spectator_stopwatch_record(sw, NULL) >= 0);
  CHECK(spectator_stopwatch_record_percentile(sw, NULL) >= 0);

  CHECK(spectator_registry_counter(NULL, "x", NULL) != NULL);
  CHECK(spectator_registry_counter_id(NULL, NULL) != NULL);
  CHECK(spectator_registry_snapshot(NULL) == NULL);
  CHECK(spectator_registry_size(NULL) == 0);
  CHECK(spectator_registry_start(NULL) == SPECTATOR_EINVAL);
  spectator_registry_stop(NULL);
  spectator_registry_free(NULL);
  CHECK(spectator_measurements_count(NULL) == 0);
  CHECK(spectator_measurements_get(NULL, 0) == NULL);
  CHECK(spectator_measurements_find(NULL, "x", NULL) == NULL);
  spectator_measurements_free(NULL);
}

static void explicit_registry(void) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;

  spectator_config_t bad = cfg;
  bad.frequency_s = -1;
  CHECK(spectator_registry_new(&bad) == NULL);
  bad = cfg;
  bad.batch_size = 0;
  CHECK(spectator_registry_new(&bad) == NULL);
  spectator_registry_free(spectator_registry_new(NULL));

  spectator_registry_t *reg = spectator_registry_new(&cfg);
  CHECK(reg != NULL);
  if (!reg) return;
  CHECK(spectator_registry_start(reg) == SPECTATOR_ENOURI);
  spectator_registry_stop(reg);

  /* Good meters, each looked up twice (tags in another order): the same pointer. */
  spectator_counter_t *c = spectator_registry_counter(reg, "c", SPECTATOR_TAGS("a", "1", "b", "2"));
  CHECK(c == spectator_registry_counter(reg, "c", SPECTATOR_TAGS("b", "2", "a", "1")));
  spectator_counter_t *own =
      spectator_registry_counter(reg, "own", SPECTATOR_TAGS("statistic", "totalTime"));
  spectator_timer_t *t = spectator_registry_timer(reg, "t", NULL);
  CHECK(t == spectator_registry_timer(reg, "t", NULL));
  spectator_dist_summary_t *d = spectator_registry_dist_summary(reg, "d", NULL);
  spectator_gauge_t *g = spectator_registry_gauge(reg, "g", NULL);
  spectator_gauge_t *gt = spectator_registry_gauge_with_ttl(reg, "gt", NULL, 60);
  spectator_gauge_t *gnan = spectator_registry_gauge(reg, "gnan", NULL);
  spectator_max_gauge_t *mg = spectator_registry_max_gauge(reg, "mg", NULL);
  spectator_monotonic_counter_t *mc = spectator_registry_monotonic_counter(reg, "mc", NULL);
  spectator_percentile_timer_t *pt =
      spectator_registry_percentile_timer(reg, "pt", NULL, 0.001, 10);
  spectator_percentile_dist_summary_t *pd =
      spectator_registry_percentile_dist_summary(reg, "pd", NULL, 0, 1000);
  CHECK(spectator_registry_size(reg) == 11);

  /* Lookups by id find the same meters. */
  spectator_id_t *id = spectator_id_new("c", SPECTATOR_TAGS("b", "2", "a", "1"));
#define BY_ID(call, name, expected)                    \
  do {                                                 \
    spectator_id_t *i_ = spectator_id_new(name, NULL); \
    CHECK(call == (expected));                         \
    spectator_id_free(i_);                             \
  } while (0)
  CHECK(spectator_registry_counter_id(reg, id) == c);
  BY_ID(spectator_registry_timer_id(reg, i_), "t", t);
  BY_ID(spectator_registry_dist_summary_id(reg, i_), "d", d);
  BY_ID(spectator_registry_gauge_id(reg, i_), "g", g);
  BY_ID(spectator_registry_gauge_with_ttl_id(reg, i_, 5), "gt", gt);
  BY_ID(spectator_registry_max_gauge_id(reg, i_), "mg", mg);
  BY_ID(spectator_registry_monotonic_counter_id(reg, i_), "mc", mc);
  BY_ID(spectator_registry_percentile_timer_id(reg, i_, 0.001, 10), "pt", pt);
  BY_ID(spectator_registry_percentile_dist_summary_id(reg, i_, 0, 1000), "pd", pd);
#undef BY_ID
  spectator_id_free(id);

  /* Good values. */
  spectator_counter_increment(c);
  spectator_counter_add(c, 2.5);
  spectator_counter_add(own, 2);
  spectator_timer_record(t, 0.5);
  spectator_timer_record_ns(t, 1500000000);
  spectator_dist_summary_record(d, 3);
  spectator_dist_summary_record(d, 4);
  spectator_gauge_set(g, 42);
  spectator_gauge_set(gt, -1.5);
  spectator_gauge_set(gnan, 5);
  spectator_gauge_set(gnan, NAN); /* NaN stops reporting */
  spectator_max_gauge_set(mg, 1);
  spectator_max_gauge_set(mg, 7);
  spectator_max_gauge_set(mg, -5);
  spectator_monotonic_counter_set(mc, 10);
  spectator_percentile_timer_record(pt, 0.05);
  spectator_percentile_timer_record_ns(pt, 2000000000);
  spectator_percentile_dist_summary_record(pd, 100);
  spectator_percentile_dist_summary_record(pd, 5000); /* clamped to 1000 for its bucket */

  /* Bad values on the good meters: ignored, but for the negative durations
   * and amounts, which timers and summaries count (and add nothing else), and
   * percentile meters count in the first bucket of their range. */
  const double bad_values[] = {-1, 0, NAN, INFINITY, -INFINITY};
  for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
    double v = bad_values[i];
    spectator_counter_add(c, v);
    if (v != 0) {
      spectator_timer_record(t, v);
      spectator_dist_summary_record(d, v);
      spectator_percentile_timer_record(pt, v);
      spectator_percentile_dist_summary_record(pd, v);
    }
    if (isinf(v)) spectator_gauge_set(g, v);
    if (isnan(v) || isinf(v)) {
      spectator_max_gauge_set(mg, v);
      spectator_monotonic_counter_set(mc, v);
    }
  }
  spectator_timer_record_ns(t, -5);
  spectator_percentile_timer_record_ns(pt, -5);

  /* Bad lookups: NULL/empty names, odd and empty tags, a type conflict. */
  bad_lookups(reg, NULL, NULL);
  bad_lookups(reg, "", NULL);
  bad_lookups(reg, "x", SPECTATOR_TAGS("odd"));
  bad_lookups(reg, "x", SPECTATOR_TAGS("k", "v", "odd"));
  bad_lookups(reg, "x", SPECTATOR_TAGS("", "v"));
  bad_lookups(reg, "x", SPECTATOR_TAGS("k", ""));
  spectator_timer_t *conflict =
      spectator_registry_timer(reg, "c", SPECTATOR_TAGS("a", "1", "b", "2"));
  CHECK(conflict != NULL && (void *)conflict != (void *)c);
  spectator_timer_record(conflict, 5);
  spectator_gauge_set(spectator_registry_gauge(reg, "t", NULL), 5);
  CHECK(spectator_registry_counter_id(reg, NULL) != NULL);
  CHECK(spectator_registry_size(reg) == 11);

  /* Getters see the interval's values. */
  CHECK_DBL(spectator_counter_count(c), 3.5);
  CHECK(spectator_timer_count(t) == 4); /* 2, and -1 s and -5 ns */
  CHECK_DBL(spectator_timer_total_seconds(t), 2.0);
  CHECK(spectator_dist_summary_count(d) == 3); /* 2, and -1 */
  CHECK_DBL(spectator_dist_summary_total(d), 7);
  CHECK_DBL(spectator_gauge_get(g), 42);
  CHECK(isnan(spectator_gauge_get(gnan)));
  CHECK_DBL(spectator_max_gauge_get(mg), 7);
  CHECK_DBL(spectator_monotonic_counter_get(mc), 10);
  CHECK(spectator_percentile_timer_count(pt) == 4);
  CHECK_DBL(spectator_percentile_timer_total_seconds(pt), 2.05);
  double p50 = spectator_percentile_timer_percentile(pt, 50);
  CHECK(p50 > 0 && p50 <= 2.5);
  CHECK(spectator_percentile_dist_summary_count(pd) == 3);
  CHECK_DBL(spectator_percentile_dist_summary_total(pd), 5100);
  double p99 = spectator_percentile_dist_summary_percentile(pd, 99);
  CHECK(p99 >= 100 && p99 <= 1100);

  /* The first snapshot: exactly these measurements. */
  char tag1[6], tag2[6];
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  CHECK(ms != NULL);
  EXPECT(ms, "c", SPECTATOR_TAGS("a", "1", "b", "2", "statistic", "count"), ADD, 3.5);
  EXPECT(ms, "own", SPECTATOR_TAGS("statistic", "totalTime"), ADD, 2);
  EXPECT(ms, "t", SPECTATOR_TAGS("statistic", "count"), ADD, 4);
  EXPECT(ms, "t", SPECTATOR_TAGS("statistic", "totalTime"), ADD, 2.0);
  EXPECT(ms, "t", SPECTATOR_TAGS("statistic", "totalOfSquares"), ADD, 2.5);
  EXPECT(ms, "t", SPECTATOR_TAGS("statistic", "max"), MAX, 1.5);
  EXPECT(ms, "d", SPECTATOR_TAGS("statistic", "count"), ADD, 3);
  EXPECT(ms, "d", SPECTATOR_TAGS("statistic", "totalAmount"), ADD, 7);
  EXPECT(ms, "d", SPECTATOR_TAGS("statistic", "totalOfSquares"), ADD, 25);
  EXPECT(ms, "d", SPECTATOR_TAGS("statistic", "max"), MAX, 4);
  EXPECT(ms, "g", SPECTATOR_TAGS("statistic", "gauge"), MAX, 42);
  EXPECT(ms, "gt", SPECTATOR_TAGS("statistic", "gauge"), MAX, -1.5);
  EXPECT(ms, "mg", SPECTATOR_TAGS("statistic", "max"), MAX, 7);
  EXPECT(ms, "pt", SPECTATOR_TAGS("statistic", "count"), ADD, 4);
  EXPECT(ms, "pt", SPECTATOR_TAGS("statistic", "totalTime"), ADD, 2.05);
  EXPECT(ms, "pt", SPECTATOR_TAGS("statistic", "totalOfSquares"), ADD, 4.0025);
  EXPECT(ms, "pt", SPECTATOR_TAGS("statistic", "max"), MAX, 2.0);
  EXPECT(ms, "pt",
         SPECTATOR_TAGS("statistic", "percentile", "percentile", pct_tag('T', 50000000, tag1)), ADD,
         1);
  EXPECT(ms, "pt",
         SPECTATOR_TAGS("statistic", "percentile", "percentile", pct_tag('T', 2000000000, tag2)),
         ADD, 1);
  /* the two negative durations: the bucket of the range's start, 1 ms */
  EXPECT(ms, "pt",
         SPECTATOR_TAGS("statistic", "percentile", "percentile", pct_tag('T', 1000000, tag1)), ADD,
         2);
  EXPECT(ms, "pd", SPECTATOR_TAGS("statistic", "count"), ADD, 3);
  EXPECT(ms, "pd", SPECTATOR_TAGS("statistic", "totalAmount"), ADD, 5100);
  EXPECT(ms, "pd", SPECTATOR_TAGS("statistic", "totalOfSquares"), ADD, 25010000);
  EXPECT(ms, "pd", SPECTATOR_TAGS("statistic", "max"), MAX, 5000);
  EXPECT(ms, "pd", SPECTATOR_TAGS("statistic", "percentile", "percentile", pct_tag('D', 100, tag1)),
         ADD, 1);
  EXPECT(ms, "pd",
         SPECTATOR_TAGS("statistic", "percentile", "percentile", pct_tag('D', 1000, tag2)), ADD, 1);
  /* the negative amount: the bucket of the range's start, 0 */
  EXPECT(ms, "pd", SPECTATOR_TAGS("statistic", "percentile", "percentile", pct_tag('D', 0, tag1)),
         ADD, 1);
  CHECK(spectator_measurements_count(ms) == 27); /* nothing else: no gnan, no mc, no no-ops */
  for (size_t i = 1; i < spectator_measurements_count(ms); i++) {
    const spectator_measurement_t *a = spectator_measurements_get(ms, i - 1);
    const spectator_measurement_t *b = spectator_measurements_get(ms, i);
    CHECK(strcmp(spectator_id_name(a->id), spectator_id_name(b->id)) <= 0);
  }
  CHECK(spectator_measurements_get(ms, spectator_measurements_count(ms)) == NULL);
  CHECK(spectator_measurements_find(ms, NULL, NULL) == NULL);
  CHECK(spectator_measurements_find(ms, "c", SPECTATOR_TAGS("odd")) == NULL);
  spectator_measurements_free(ms);

  /* The snapshot reset the interval; gauges keep their value. */
  CHECK(spectator_counter_count(c) == 0 && spectator_timer_count(t) == 0);
  CHECK_DBL(spectator_gauge_get(g), 42);

  /* The second interval. */
  spectator_counter_increment(c);
  spectator_monotonic_counter_set(mc, 15);
  ms = spectator_registry_snapshot(reg);
  EXPECT(ms, "c", SPECTATOR_TAGS("a", "1", "b", "2", "statistic", "count"), ADD, 1);
  EXPECT(ms, "mc", SPECTATOR_TAGS("statistic", "count"), ADD, 5);
  EXPECT(ms, "g", SPECTATOR_TAGS("statistic", "gauge"), MAX, 42);
  EXPECT(ms, "gt", SPECTATOR_TAGS("statistic", "gauge"), MAX, -1.5);
  CHECK(spectator_measurements_count(ms) == 4);
  spectator_measurements_free(ms);

  spectator_registry_free(reg);
}

/* Valid but unusual input, and the cap on the number of meters. */
static void odd_registry(void) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  cfg.max_meters = 10;
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  CHECK(reg != NULL);
  if (!reg) return;

  size_t huge_len = 100000;
  char *huge = malloc(huge_len + 1);
  if (!huge) return;
  memset(huge, 'h', huge_len);
  huge[huge_len] = '\0';
  spectator_counter_add(spectator_registry_counter(reg, huge, SPECTATOR_TAGS(huge, huge)), 1);
  spectator_counter_add(
      spectator_registry_counter(reg, "caf\xc3\xa9", SPECTATOR_TAGS("\xff", "\x01")), 2);
  /* Bad ranges give the default range, 10 ms .. 60 s: 1 ms lands in the 10 ms bucket. */
  spectator_percentile_timer_t *pt = spectator_registry_percentile_timer(reg, "pt", NULL, NAN, 1);
  spectator_percentile_timer_record(pt, 0.001);
  spectator_percentile_timer_t *pt2 = spectator_registry_percentile_timer(reg, "pt2", NULL, 5, 1);
  spectator_percentile_timer_record(pt2, 0.001);
  spectator_percentile_dist_summary_t *pd =
      spectator_registry_percentile_dist_summary(reg, "pd", NULL, -1, INFINITY);
  spectator_percentile_dist_summary_record(pd, 3);
  spectator_gauge_set(spectator_registry_gauge_with_ttl(reg, "gt", NULL, NAN), 1);
  CHECK(spectator_registry_size(reg) == 6);

  /* Past the cap, lookups give no-op meters. */
  for (int i = 0; i < 20; i++) {
    char name[32];
    snprintf(name, sizeof(name), "cap.%d", i);
    spectator_counter_t *c = spectator_registry_counter(reg, name, NULL);
    CHECK(c != NULL);
    spectator_counter_increment(c);
  }
  /* 10 meters, and the library's own counter of the refused lookups (not
   * counted against the cap) */
  CHECK(spectator_registry_size(reg) == 11);

  char tag[6];
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  EXPECT(ms, huge, SPECTATOR_TAGS(huge, huge, "statistic", "count"), ADD, 1);
  EXPECT(ms, "caf\xc3\xa9", SPECTATOR_TAGS("\xff", "\x01", "statistic", "count"), ADD, 2);
  EXPECT(ms, "pt",
         SPECTATOR_TAGS("statistic", "percentile", "percentile", pct_tag('T', 10000000, tag)), ADD,
         1);
  EXPECT(ms, "pt2", SPECTATOR_TAGS("statistic", "percentile", "percentile", tag), ADD, 1);
  EXPECT(ms, "pd", SPECTATOR_TAGS("statistic", "percentile", "percentile", pct_tag('D', 3, tag)),
         ADD, 1);
  EXPECT(ms, "gt", SPECTATOR_TAGS("statistic", "gauge"), MAX, 1);
  EXPECT(ms, "cap.0", SPECTATOR_TAGS("statistic", "count"), ADD, 1);
  CHECK(spectator_measurements_find(ms, "cap.19", SPECTATOR_TAGS("statistic", "count")) == NULL);
  EXPECT(ms, "spectator.measurements",
         SPECTATOR_TAGS("id", "dropped", "error", "registry-full", "statistic", "count"), ADD, 16);
  spectator_measurements_free(ms);
  free(huge);
  spectator_registry_free(reg);
}

/* The global API. */
static void global_api(void) {
  spectator_counter_t *c = spectator_counter("global.c", SPECTATOR_TAGS("x", "1", "y", "2"));
  CHECK(c == spectator_counter("global.c", SPECTATOR_TAGS("y", "2", "x", "1")));
  spectator_timer_t *t = spectator_timer("global.t", NULL);
  CHECK(t == spectator_timer("global.t", NULL));
  spectator_dist_summary_t *d = spectator_dist_summary("global.d", NULL);
  CHECK(d == spectator_dist_summary("global.d", NULL));
  spectator_gauge_t *g = spectator_gauge("global.g", NULL);
  CHECK(g == spectator_gauge("global.g", NULL));
  spectator_max_gauge_t *mg = spectator_max_gauge("global.mg", NULL);
  CHECK(mg == spectator_max_gauge("global.mg", NULL));
  spectator_monotonic_counter_t *mc = spectator_monotonic_counter("global.mc", NULL);
  CHECK(mc == spectator_monotonic_counter("global.mc", NULL));
  spectator_percentile_timer_t *pt = spectator_percentile_timer("global.pt", NULL, 0.001, 10);
  CHECK(pt == spectator_percentile_timer("global.pt", NULL, 0.001, 10));
  spectator_percentile_dist_summary_t *pd =
      spectator_percentile_dist_summary("global.pd", NULL, 0, 1000);
  CHECK(pd == spectator_percentile_dist_summary("global.pd", NULL, 0, 1000));
  spectator_registry_t *reg = spectator_global_registry();
  CHECK(reg != NULL && reg == spectator_global_registry());
  CHECK(c == spectator_registry_counter(reg, "global.c", SPECTATOR_TAGS("x", "1", "y", "2")));

  spectator_counter_increment(c);
  spectator_counter_add(c, 4);
  spectator_timer_record(t, 0.25);
  spectator_timer_record_ns(t, 750000000);
  spectator_dist_summary_record(d, 10);
  spectator_gauge_set(g, 3);
  spectator_max_gauge_set(mg, 8);
  spectator_monotonic_counter_set(mc, 100);
  spectator_percentile_timer_record(pt, 0.1);
  spectator_percentile_timer_record_ns(pt, 100000000);
  spectator_percentile_dist_summary_record(pd, 50);

  /* The stopwatch, on its own timers. */
  spectator_timer_t *swt = spectator_timer("global.stopwatch", NULL);
  spectator_percentile_timer_t *swp =
      spectator_percentile_timer("global.stopwatch.pct", NULL, 0, 1);
  spectator_stopwatch_t sw = spectator_stopwatch_start();
  CHECK(spectator_stopwatch_elapsed_ns(sw) >= 0);
  CHECK(spectator_stopwatch_record(sw, swt) >= 0);
  CHECK(spectator_stopwatch_record_percentile(sw, swp) >= 0);
  CHECK(spectator_timer_count(swt) == 1 && spectator_percentile_timer_count(swp) == 1);

  bad_global_lookups(NULL, NULL);
  bad_global_lookups("", NULL);
  bad_global_lookups("x", SPECTATOR_TAGS("odd"));
  bad_global_lookups("x", SPECTATOR_TAGS("", "v"));
  bad_global_lookups("x", SPECTATOR_TAGS("k", ""));
  /* The counter's id used as every other type: no-op meters. */
  const char *const *ctags = SPECTATOR_TAGS("x", "1", "y", "2");
  spectator_timer_record(spectator_timer("global.c", ctags), 1);
  spectator_dist_summary_record(spectator_dist_summary("global.c", ctags), 1);
  spectator_gauge_set(spectator_gauge("global.c", ctags), 1);
  spectator_max_gauge_set(spectator_max_gauge("global.c", ctags), 1);
  spectator_monotonic_counter_set(spectator_monotonic_counter("global.c", ctags), 1);
  spectator_percentile_timer_record(spectator_percentile_timer("global.c", ctags, 0, 1), 1);
  spectator_percentile_dist_summary_record(
      spectator_percentile_dist_summary("global.c", ctags, 0, 1), 1);
  CHECK(spectator_timer_count(spectator_timer("global.c", ctags)) == 0);
  spectator_counter_add(c, NAN);
  spectator_counter_add(c, -3);
  spectator_timer_record(t, -1); /* counted, nothing added */
  spectator_dist_summary_record(d, INFINITY);

  CHECK_DBL(spectator_counter_count(c), 5);
  CHECK(spectator_timer_count(t) == 3);
  CHECK_DBL(spectator_timer_total_seconds(t), 1.0);
  CHECK(spectator_dist_summary_count(d) == 1);

  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  EXPECT(ms, "global.c", SPECTATOR_TAGS("y", "2", "x", "1", "statistic", "count"), ADD, 5);
  EXPECT(ms, "global.t", SPECTATOR_TAGS("statistic", "totalTime"), ADD, 1.0);
  EXPECT(ms, "global.t", SPECTATOR_TAGS("statistic", "max"), MAX, 0.75);
  EXPECT(ms, "global.d", SPECTATOR_TAGS("statistic", "totalAmount"), ADD, 10);
  EXPECT(ms, "global.g", SPECTATOR_TAGS("statistic", "gauge"), MAX, 3);
  EXPECT(ms, "global.mg", SPECTATOR_TAGS("statistic", "max"), MAX, 8);
  EXPECT(ms, "global.pt", SPECTATOR_TAGS("statistic", "count"), ADD, 2);
  EXPECT(ms, "global.pd", SPECTATOR_TAGS("statistic", "max"), MAX, 50);
  EXPECT(ms, "global.stopwatch", SPECTATOR_TAGS("statistic", "count"), ADD, 1);
  spectator_measurements_free(ms);

  /* No SPECTATOR_URI: start reports it, and meters keep recording. */
  CHECK(spectator_start() == SPECTATOR_ENOURI);
  CHECK(spectator_start() == SPECTATOR_ENOURI);
  spectator_counter_increment(c);
  CHECK_DBL(spectator_counter_count(c), 1);
  spectator_stop();
  spectator_stop();
}

int main(void) {
  if (getenv("SPECTATOR_URI")) {
    fprintf(stderr, "outside: unset SPECTATOR_URI to run this test\n");
    return 2;
  }
  version_errors_and_logging();
  ids();
  null_meters();
  explicit_registry();
  odd_registry();
  global_api();
  CHECK(log_count > 0); /* bad input was reported */
  spectator_log_set_handler(NULL, NULL);

  if (failures) {
    fprintf(stderr, "outside: %d of %d checks failed\n", failures, checks);
    return 1;
  }
  printf("outside: all %d checks passed (spectator %s)\n", checks, spectator_version());
  return 0;
}
