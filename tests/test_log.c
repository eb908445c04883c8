/*
 * Unit tests for src/log.c: levels (and SPECTATOR_LOG_LEVEL), handlers,
 * sanitizing and truncation of messages, the rate limiter, error strings.
 *
 * The level is read from the environment once per process, so the tests of
 * SPECTATOR_LOG_LEVEL run this program again (fork + exec of /proc/self/exe
 * with "--print-level") in a fresh process with the variable set; the child
 * prints its level and the lines it logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "test_util.h"

static int setup(void **state) {
  (void)state;
  spectator_log_set_level(SPECTATOR_LOG_WARN);
  tu_log_capture();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tu_log_release();
  spectator_log_set_level(SPECTATOR_LOG_WARN);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* SPECTATOR_LOG_LEVEL, in a fresh process                                   */
/* ------------------------------------------------------------------------ */

static const char *self_path; /* argv[0] */

/* Child mode: print "level=<n>" and then one line per captured log line. */
static int print_level_main(void) {
  tu_log_capture();
  spectator_log_level_t level = spectator_log_get_level();
  tu_log_release();
  printf("level=%d\n", (int)level);
  for (size_t i = 0; i < tu_log_buf.n; i++)
    printf("%d %s %s\n", (int)tu_log_buf.lines[i].level, tu_log_buf.lines[i].logger,
           tu_log_buf.lines[i].msg);
  return 0;
}

/* Run this program with SPECTATOR_LOG_LEVEL=value (NULL: unset); return what
 * it printed (static buffer). */
static const char *level_in_fresh_process(const char *value) {
  static char out[4096];
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    tu_setenv("SPECTATOR_LOG_LEVEL", value);
    char *const argv[] = {"test_log", "--print-level", NULL};
    /* argv[0] when it is a path (under valgrind /proc/self/exe is valgrind) */
    if (self_path && strchr(self_path, '/')) execv(self_path, argv);
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  close(fds[1]);
  size_t len = 0;
  ssize_t r;
  while (len < sizeof(out) - 1 && (r = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0)
    len += (size_t)r;
  out[len] = '\0';
  close(fds[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  return out;
}

static void log_level_defaults_to_warn(void **state) {
  (void)state;
  assert_string_equal(level_in_fresh_process(NULL), "level=2\n");
  assert_string_equal(level_in_fresh_process(""), "level=2\n");
}

static void log_level_comes_from_SPECTATOR_LOG_LEVEL(void **state) {
  (void)state;
  assert_string_equal(level_in_fresh_process("debug"), "level=0\n");
  assert_string_equal(level_in_fresh_process("INFO"), "level=1\n");
  assert_string_equal(level_in_fresh_process("Warning"), "level=2\n");
  assert_string_equal(level_in_fresh_process(" error "), "level=3\n");
  assert_string_equal(level_in_fresh_process("off"), "level=4\n");
}

static void a_bad_SPECTATOR_LOG_LEVEL_keeps_warn_and_logs_one_line_naming_it(void **state) {
  (void)state;
  assert_string_equal(level_in_fresh_process("loud"),
                      "level=2\n"
                      "2 spectator.init SPECTATOR_LOG_LEVEL='loud' is not one of debug, info, "
                      "warn, error, off; using warn\n");
}

/* ------------------------------------------------------------------------ */
/* Levels                                                                    */
/* ------------------------------------------------------------------------ */

static void log_level_parse_accepts_every_name_in_any_case(void **state) {
  (void)state;
  static const struct {
    const char *text;
    spectator_log_level_t level;
  } ok[] = {{"debug", SPECTATOR_LOG_DEBUG},  {"DEBUG", SPECTATOR_LOG_DEBUG},
            {"Debug", SPECTATOR_LOG_DEBUG},  {"info", SPECTATOR_LOG_INFO},
            {"iNfO", SPECTATOR_LOG_INFO},    {"warn", SPECTATOR_LOG_WARN},
            {"WARN", SPECTATOR_LOG_WARN},    {"warning", SPECTATOR_LOG_WARN},
            {"WARNING", SPECTATOR_LOG_WARN}, {"error", SPECTATOR_LOG_ERROR},
            {"Error", SPECTATOR_LOG_ERROR},  {"off", SPECTATOR_LOG_OFF},
            {"OFF", SPECTATOR_LOG_OFF},      {" info\n", SPECTATOR_LOG_INFO}};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    spectator_log_level_t out = (spectator_log_level_t)-1;
    assert_int_equal(spectator_log_level_parse(ok[i].text, &out), 0);
    assert_int_equal(out, ok[i].level);
  }
}

static void log_level_parse_rejects_anything_else_with_einval(void **state) {
  (void)state;
  const char *bad[] = {"", " ", "deb", "debugx", "warn ing", "2", "err", "information", "o ff"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    spectator_log_level_t out = SPECTATOR_LOG_ERROR;
    assert_int_equal(spectator_log_level_parse(bad[i], &out), SPECTATOR_EINVAL);
    assert_int_equal(out, SPECTATOR_LOG_ERROR); /* untouched */
  }
  spectator_log_level_t out;
  assert_int_equal(spectator_log_level_parse(NULL, &out), SPECTATOR_EINVAL);
  assert_int_equal(spectator_log_level_parse("info", NULL), SPECTATOR_EINVAL);
}

static void set_level_filters_messages_below_it(void **state) {
  (void)state;
  for (int level = SPECTATOR_LOG_DEBUG; level <= SPECTATOR_LOG_OFF; level++) {
    spectator_log_set_level((spectator_log_level_t)level);
    assert_int_equal(spectator_log_get_level(), level);
    tu_log_clear();
    for (int l = SPECTATOR_LOG_DEBUG; l <= SPECTATOR_LOG_ERROR; l++) {
      assert_int_equal(spectator__log_enabled((spectator_log_level_t)l), l >= level);
      spectator__log((spectator_log_level_t)l, SPECTATOR_LOGGER_REGISTRY, "at %d", l);
    }
    /* DEBUG..ERROR emitted when >= level: OFF emits nothing */
    int want = level == SPECTATOR_LOG_OFF ? 0 : SPECTATOR_LOG_ERROR - level + 1;
    tu_assert_log_count(want);
    for (int i = 0; i < want; i++) {
      char msg[16];
      snprintf(msg, sizeof(msg), "at %d", level + i);
      assert_string_equal(tu_log_line((size_t)i)->msg, msg);
      assert_int_equal(tu_log_line((size_t)i)->level, level + i);
    }
  }
}

static void a_message_at_level_off_is_never_emitted(void **state) {
  (void)state;
  spectator_log_set_level(SPECTATOR_LOG_DEBUG);
  assert_false(spectator__log_enabled(SPECTATOR_LOG_OFF));
  spectator__log(SPECTATOR_LOG_OFF, SPECTATOR_LOGGER_INIT, "never");
  tu_assert_log_count(0);
}

static void set_level_ignores_values_outside_the_enum(void **state) {
  (void)state;
  spectator_log_set_level(SPECTATOR_LOG_ERROR);
  spectator_log_set_level((spectator_log_level_t)7);
  assert_int_equal(spectator_log_get_level(), SPECTATOR_LOG_ERROR);
  spectator_log_set_level((spectator_log_level_t)-1);
  assert_int_equal(spectator_log_get_level(), SPECTATOR_LOG_ERROR);
}

/* ------------------------------------------------------------------------ */
/* Handlers                                                                  */
/* ------------------------------------------------------------------------ */

static void handler_receives_level_logger_and_message(void **state) {
  (void)state;
  spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_HTTP, "status %d for %s", 503, "POST");
  spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_INIT, "plain");
  tu_assert_log_count(2);
  assert_int_equal(tu_log_line(0)->level, SPECTATOR_LOG_WARN);
  assert_string_equal(tu_log_line(0)->logger, "spectator.HttpClient");
  assert_string_equal(tu_log_line(0)->msg, "status 503 for POST");
  assert_int_equal(tu_log_line(1)->level, SPECTATOR_LOG_ERROR);
  assert_string_equal(tu_log_line(1)->logger, "spectator.init");
  assert_string_equal(tu_log_line(1)->msg, "plain");
}

typedef struct {
  int calls;
  char last[64];
} counting_ctx_t;

static void counting_handler(spectator_log_level_t level, const char *logger, const char *message,
                             void *ctx) {
  (void)level;
  (void)logger;
  counting_ctx_t *c = ctx;
  c->calls++;
  snprintf(c->last, sizeof(c->last), "%s", message);
}

static void handler_gets_its_context_back_and_a_new_handler_replaces_the_old(void **state) {
  (void)state;
  counting_ctx_t a = {0}, b = {0};
  spectator_log_set_handler(counting_handler, &a);
  spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT, "one");
  spectator_log_set_handler(counting_handler, &b);
  spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT, "two");
  spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT, "three");
  assert_int_equal(a.calls, 1);
  assert_string_equal(a.last, "one");
  assert_int_equal(b.calls, 2);
  assert_string_equal(b.last, "three");
  tu_assert_log_count(0);
}

/* Run fn with stderr redirected to a temporary file; return what was written. */
static const char *capture_stderr(void (*fn)(void)) {
  static char out[4096];
  FILE *tmp = tmpfile();
  assert_non_null(tmp);
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  assert_true(saved >= 0);
  assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
  fn();
  fflush(stderr);
  assert_true(dup2(saved, STDERR_FILENO) >= 0);
  close(saved);
  rewind(tmp);
  size_t n = fread(out, 1, sizeof(out) - 1, tmp);
  out[n] = '\0';
  fclose(tmp);
  return out;
}

static counting_ctx_t default_test_ctx;

static void log_two_lines(void) {
  spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY, "to stderr %d", 1);
  spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_INIT, "and %s", "two");
}

static void a_null_handler_restores_the_default_stderr_output(void **state) {
  (void)state;
  spectator_log_set_handler(counting_handler, &default_test_ctx);
  spectator_log_set_handler(NULL, NULL);
  const char *err = capture_stderr(log_two_lines);
  assert_string_equal(err, "WARN spectator.Registry: to stderr 1\n"
                           "ERROR spectator.init: and two\n");
  assert_int_equal(default_test_ctx.calls, 0);
  tu_assert_log_count(0);
}

static void log_bad_level(void) {
  spectator__log((spectator_log_level_t)9, SPECTATOR_LOGGER_INIT, "bogus level");
  spectator__log((spectator_log_level_t)-1, SPECTATOR_LOGGER_INIT, "bogus level");
}

static void a_message_with_a_level_outside_the_enum_is_dropped(void **state) {
  (void)state;
  spectator_log_set_level(SPECTATOR_LOG_DEBUG);
  assert_false(spectator__log_enabled((spectator_log_level_t)9));
  assert_false(spectator__log_enabled((spectator_log_level_t)-1));
  log_bad_level();
  tu_assert_log_count(0);
  spectator_log_set_handler(NULL, NULL); /* the default handler indexes level names */
  assert_string_equal(capture_stderr(log_bad_level), "");
}

/* ------------------------------------------------------------------------ */
/* Message content                                                           */
/* ------------------------------------------------------------------------ */

static void control_characters_in_user_strings_are_replaced(void **state) {
  (void)state;
  const char *user = "a\nb\r\tc\x1b[31m\x7f"
                     "d\xc3\xa9";
  spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY, "name '%.*s'",
                 SPECTATOR__LOG_STR(user));
  tu_assert_log_count(1);
  /* bytes >= 0x80 (UTF-8) are kept */
  assert_string_equal(tu_log_line(0)->msg, "name 'a?b??c?[31m?d\xc3\xa9'");
}

static void a_null_user_string_is_shown_as_null(void **state) {
  (void)state;
  const char *user = NULL;
  spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY, "name '%.*s'",
                 SPECTATOR__LOG_STR(user));
  tu_assert_log_count(1);
  assert_string_equal(tu_log_line(0)->msg, "name '(null)'");
}

static void a_100_kb_user_string_is_cut_to_120_bytes(void **state) {
  (void)state;
  size_t n = 100 * 1024;
  char *big = malloc(n + 1);
  assert_non_null(big);
  memset(big, 'u', n);
  big[n] = '\0';
  assert_int_equal(spectator__strnlen_log(big), SPECTATOR__LOG_MAX_STR);
  assert_int_equal(spectator__strnlen_log("short"), 5);
  spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY, "[%.*s]", SPECTATOR__LOG_STR(big));
  tu_assert_log_count(1);
  assert_int_equal(tu_log_line(0)->msg_len, 122);
  assert_int_equal(tu_log_line(0)->msg[0], '[');
  assert_int_equal(tu_log_line(0)->msg[121], ']');
  free(big);
}

static void a_100_kb_message_is_truncated_to_the_line_buffer(void **state) {
  (void)state;
  /* even a caller that forgets SPECTATOR__LOG_STR cannot overflow */
  size_t n = 100 * 1024;
  char *big = malloc(n + 1);
  assert_non_null(big);
  memset(big, 'v', n);
  big[n] = '\0';
  spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_HTTP, "%s", big);
  tu_assert_log_count(1);
  assert_int_equal(tu_log_line(0)->msg_len, 1023);
  assert_int_equal(strspn(tu_log_line(0)->msg, "v"), 1023);
  free(big);
}

/* ------------------------------------------------------------------------ */
/* Rate limiting                                                             */
/* ------------------------------------------------------------------------ */

static void ratelimit_lets_the_1st_2nd_4th_8th_occurrences_through(void **state) {
  (void)state;
  spectator__ratelimit_t rl = {0};
  uint64_t passed[32];
  size_t np = 0;
  for (uint64_t i = 1; i <= 5000; i++) {
    uint64_t r = spectator__ratelimit(&rl);
    if (r) {
      assert_int_equal(r, i);
      passed[np++] = r;
    }
  }
  uint64_t want[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
  assert_int_equal(np, sizeof(want) / sizeof(want[0]));
  for (size_t i = 0; i < np; i++) assert_int_equal(passed[i], want[i]);
}

static void log_limited_emits_the_occurrence_number(void **state) {
  (void)state;
  static spectator__ratelimit_t rl;
  for (int i = 0; i < 5; i++)
    SPECTATOR__LOG_LIMITED(&rl, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY, "thing %d", i);
  tu_assert_log_count(3);
  assert_string_equal(tu_log_line(0)->msg, "thing 0 (occurrence 1)");
  assert_string_equal(tu_log_line(1)->msg, "thing 1 (occurrence 2)");
  assert_string_equal(tu_log_line(2)->msg, "thing 3 (occurrence 4)");
}

#define RL_THREADS 4
#define RL_CALLS (1 << 14)

typedef struct {
  spectator__ratelimit_t *rl;
  pthread_barrier_t *barrier;
  uint64_t passed[64];
  size_t n;
} rl_arg_t;

static void *rl_worker(void *p) {
  rl_arg_t *a = p;
  pthread_barrier_wait(a->barrier);
  for (int i = 0; i < RL_CALLS; i++) {
    uint64_t r = spectator__ratelimit(a->rl);
    if (r && a->n < 64) a->passed[a->n++] = r;
  }
  return NULL;
}

static void ratelimit_shared_by_4_threads_lets_each_power_of_two_through_once(void **state) {
  (void)state;
  spectator__ratelimit_t rl = {0};
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, RL_THREADS);
  rl_arg_t args[RL_THREADS];
  pthread_t th[RL_THREADS];
  for (int t = 0; t < RL_THREADS; t++) {
    args[t] = (rl_arg_t){&rl, &barrier, {0}, 0};
    assert_int_equal(pthread_create(&th[t], NULL, rl_worker, &args[t]), 0);
  }
  for (int t = 0; t < RL_THREADS; t++) assert_int_equal(pthread_join(th[t], NULL), 0);
  pthread_barrier_destroy(&barrier);
  /* 4 * 2^14 = 2^16 occurrences: 2^0 .. 2^16 pass, each exactly once */
  uint64_t seen = 0;
  size_t total = 0;
  for (int t = 0; t < RL_THREADS; t++) {
    for (size_t i = 0; i < args[t].n; i++) {
      uint64_t r = args[t].passed[i];
      assert_int_equal(r & (r - 1), 0);
      int bit = __builtin_ctzll(r);
      assert_int_equal(seen & (1ULL << bit), 0);
      seen |= 1ULL << bit;
      total++;
    }
  }
  assert_int_equal(total, 17);
  assert_int_equal(seen, (1ULL << 17) - 1);
}

/* ------------------------------------------------------------------------ */
/* The distinct-mistake limiter (the table is process-wide: each test uses    */
/* keys of its own, and the one that needs an empty table runs in a child)   */
/* ------------------------------------------------------------------------ */

static void mistake_limiter_reports_every_new_key_and_repeats_of_one_at_powers_of_two(
    void **state) {
  (void)state;
  for (uint64_t k = 1000; k < 1100; k++) assert_int_equal(spectator__mistake_seen(k), 1);
  const uint64_t want[] = {2, 0, 4, 0, 0, 0, 8, 0};
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    assert_int_equal(spectator__mistake_seen(1000), want[i]);
  /* the others kept their own counts */
  assert_int_equal(spectator__mistake_seen(1099), 2);
}

static long fill_the_mistake_table(void *p) {
  (void)p;
  const uint64_t base = 5000;
  /* k0 .. k255 fill the table; k0 is seen twice */
  for (uint64_t k = 0; k < SPECTATOR__MISTAKES; k++)
    if (spectator__mistake_seen(base + k) != 1) return __LINE__;
  if (spectator__mistake_seen(base) != 2) return __LINE__;
  /* a new key takes the place of the least seen, oldest one: k1 */
  if (spectator__mistake_seen(base + 1000) != 1) return __LINE__;
  /* k1 is new again (and replaces k2); k3 is still known */
  if (spectator__mistake_seen(base + 1) != 1) return __LINE__;
  if (spectator__mistake_seen(base + 3) != 2) return __LINE__;
  if (spectator__mistake_seen(base + 2) != 1) return __LINE__;
  /* a thousand more new keys churn through the entries seen once; k0 (seen
   * twice) and k3 keep their counts */
  for (uint64_t k = 2000; k < 3000; k++)
    if (spectator__mistake_seen(base + k) != 1) return __LINE__;
  if (spectator__mistake_seen(base) != 0) return __LINE__; /* 3rd */
  if (spectator__mistake_seen(base) != 4) return __LINE__;
  if (spectator__mistake_seen(base + 3) != 0) return __LINE__; /* 3rd */
  /* and key 0 is a key like any other */
  if (spectator__mistake_seen(0) != 1) return __LINE__;
  return 0;
}

static void mistake_limiter_forgets_the_least_seen_oldest_key_when_full(void **state) {
  (void)state;
  assert_int_equal(tu_in_child(fill_the_mistake_table, NULL), 0);
}

typedef struct {
  pthread_barrier_t *barrier;
  uint64_t key;
  uint64_t passed[64];
  size_t n;
} mistake_arg_t;

static void *mistake_worker(void *p) {
  mistake_arg_t *a = p;
  pthread_barrier_wait(a->barrier);
  for (int i = 0; i < RL_CALLS; i++) {
    uint64_t r = spectator__mistake_seen(a->key);
    if (r && a->n < 64) a->passed[a->n++] = r;
    /* and a key of this thread's own, new each time */
    spectator__mistake_seen(((uint64_t)a->n << 40) ^ ((uint64_t)i << 8) ^ (uint64_t)p);
  }
  return NULL;
}

static void mistake_limiter_shared_by_4_threads_lets_each_power_of_two_through_once(void **state) {
  (void)state;
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, RL_THREADS);
  mistake_arg_t args[RL_THREADS];
  pthread_t th[RL_THREADS];
  uint64_t timeouts = spectator__mistake_timeouts();
  for (int t = 0; t < RL_THREADS; t++) {
    args[t] = (mistake_arg_t){&barrier, 77, {0}, 0};
    assert_int_equal(pthread_create(&th[t], NULL, mistake_worker, &args[t]), 0);
  }
  for (int t = 0; t < RL_THREADS; t++) assert_int_equal(pthread_join(th[t], NULL), 0);
  pthread_barrier_destroy(&barrier);
  timeouts = spectator__mistake_timeouts() - timeouts;
  /* 2^16 occurrences of key 77, while 2^16 other keys come and go: a key
   * seen that often is never forgotten, so 2^0 .. 2^16 pass, each once. A
   * call that waited more than 100 ms for the table (valgrind runs one
   * thread at a time) returned 1 and counted nothing: with t of them, up to
   * t more 1s, and the last power of two may not be reached. */
  uint64_t seen = 0;
  size_t total = 0, ones = 0;
  for (int t = 0; t < RL_THREADS; t++) {
    for (size_t i = 0; i < args[t].n; i++) {
      uint64_t r = args[t].passed[i];
      assert_int_equal(r & (r - 1), 0);
      int bit = __builtin_ctzll(r);
      if (r == 1 && ones++) continue;
      assert_int_equal(seen & (1ULL << bit), 0);
      seen |= 1ULL << bit;
      total++;
    }
  }
  assert_true(ones <= timeouts + 1);
  if (timeouts == 0) {
    assert_int_equal(total, 17);
    assert_int_equal(seen, (1ULL << 17) - 1);
  } else {
    uint64_t counted = (uint64_t)RL_THREADS * RL_CALLS - timeouts; /* at least */
    int last = 63 - __builtin_clzll(counted);
    assert_true((seen & ((2ULL << last) - 1)) == ((2ULL << last) - 1));
    assert_true(seen >> 17 == 0);
    print_message("%llu calls waited too long for the mistake table\n",
                  (unsigned long long)timeouts);
  }
}

/* ------------------------------------------------------------------------ */
/* Concurrent logging while the handler changes                              */
/* ------------------------------------------------------------------------ */

#define LOG_THREADS 4
#define LOG_LINES 2000

typedef struct {
  pthread_mutex_t lock;
  int calls;
} locked_counter_t;

static void locked_counting_handler(spectator_log_level_t level, const char *logger,
                                    const char *message, void *ctx) {
  (void)level;
  (void)logger;
  (void)message;
  locked_counter_t *c = ctx;
  pthread_mutex_lock(&c->lock);
  c->calls++;
  pthread_mutex_unlock(&c->lock);
}

static void *log_worker(void *p) {
  pthread_barrier_t *barrier = p;
  pthread_barrier_wait(barrier);
  for (int i = 0; i < LOG_LINES; i++)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY, "line %d", i);
  return NULL;
}

static void every_line_reaches_exactly_one_handler_while_handlers_change(void **state) {
  (void)state;
  locked_counter_t a = {PTHREAD_MUTEX_INITIALIZER, 0}, b = {PTHREAD_MUTEX_INITIALIZER, 0};
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, LOG_THREADS + 1);
  pthread_t th[LOG_THREADS];
  spectator_log_set_handler(locked_counting_handler, &a);
  for (int t = 0; t < LOG_THREADS; t++)
    assert_int_equal(pthread_create(&th[t], NULL, log_worker, &barrier), 0);
  pthread_barrier_wait(&barrier);
  for (int i = 0; i < 2000; i++)
    spectator_log_set_handler(locked_counting_handler, (i % 2) ? &a : &b);
  for (int t = 0; t < LOG_THREADS; t++) assert_int_equal(pthread_join(th[t], NULL), 0);
  pthread_barrier_destroy(&barrier);
  assert_int_equal(a.calls + b.calls, LOG_THREADS * LOG_LINES);
  tu_log_capture(); /* back to the capture for teardown */
  tu_assert_log_count(0);
}

/* ------------------------------------------------------------------------ */
/* Error strings and version                                                 */
/* ------------------------------------------------------------------------ */

static void strerror_and_err_name_cover_every_code(void **state) {
  (void)state;
  static const struct {
    int code;
    const char *name, *text;
  } codes[] = {
      {SPECTATOR_OK, "SPECTATOR_OK", "success"},
      {SPECTATOR_EINVAL, "SPECTATOR_EINVAL", "invalid argument"},
      {SPECTATOR_ENOMEM, "SPECTATOR_ENOMEM", "out of memory"},
      {SPECTATOR_ETHREAD, "SPECTATOR_ETHREAD", "could not start the publishing thread"},
      {SPECTATOR_ENOURI, "SPECTATOR_ENOURI", "no publish URI configured"},
      {SPECTATOR_EHTTP, "SPECTATOR_EHTTP", "HTTP client error"},
      {SPECTATOR_ESTATE, "SPECTATOR_ESTATE", "operation not allowed in the current state"},
      {SPECTATOR_ENOLIB, "SPECTATOR_ENOLIB",
       "a shared library it needs (libcurl, zlib, cJSON) cannot be loaded"},
  };
  for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    assert_string_equal(spectator_err_name(codes[i].code), codes[i].name);
    assert_string_equal(spectator_strerror(codes[i].code), codes[i].text);
  }
  /* the numbers are a contract */
  assert_int_equal(SPECTATOR_EINVAL, -1);
  assert_int_equal(SPECTATOR_ENOMEM, -2);
  assert_int_equal(SPECTATOR_ETHREAD, -3);
  assert_int_equal(SPECTATOR_ENOURI, -4);
  assert_int_equal(SPECTATOR_EHTTP, -5);
  assert_int_equal(SPECTATOR_ESTATE, -6);
  assert_int_equal(SPECTATOR_ENOLIB, -7);
  /* every code in the X-macro list has a distinct name and text */
#define XX(name, value, text)                                         \
  assert_string_equal(spectator_err_name(value), "SPECTATOR_" #name); \
  assert_string_equal(spectator_strerror(value), text);
  SPECTATOR_ERRNO_MAP(XX)
#undef XX
}

static void unknown_error_codes_have_a_generic_text_and_name(void **state) {
  (void)state;
  const int unknown[] = {1, -8, -100, 42, INT_MIN, INT_MAX};
  for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
    assert_string_equal(spectator_strerror(unknown[i]), "unknown error");
    assert_string_equal(spectator_err_name(unknown[i]), "SPECTATOR_UNKNOWN");
  }
}

static void version_matches_the_header(void **state) {
  (void)state;
  assert_string_equal(spectator_version(), SPECTATOR_VERSION_STRING);
  char want[32];
  snprintf(want, sizeof(want), "%d.%d.%d", SPECTATOR_VERSION_MAJOR, SPECTATOR_VERSION_MINOR,
           SPECTATOR_VERSION_PATCH);
  assert_string_equal(spectator_version(), want);
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--print-level") == 0) return print_level_main();
  self_path = argc > 0 ? argv[0] : NULL;
  const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
      T(log_level_defaults_to_warn),
      T(log_level_comes_from_SPECTATOR_LOG_LEVEL),
      T(a_bad_SPECTATOR_LOG_LEVEL_keeps_warn_and_logs_one_line_naming_it),
      T(log_level_parse_accepts_every_name_in_any_case),
      T(log_level_parse_rejects_anything_else_with_einval),
      T(set_level_filters_messages_below_it),
      T(a_message_at_level_off_is_never_emitted),
      T(set_level_ignores_values_outside_the_enum),
      T(handler_receives_level_logger_and_message),
      T(handler_gets_its_context_back_and_a_new_handler_replaces_the_old),
      T(a_null_handler_restores_the_default_stderr_output),
      T(a_message_with_a_level_outside_the_enum_is_dropped),
      T(control_characters_in_user_strings_are_replaced),
      T(a_null_user_string_is_shown_as_null),
      T(a_100_kb_user_string_is_cut_to_120_bytes),
      T(a_100_kb_message_is_truncated_to_the_line_buffer),
      T(ratelimit_lets_the_1st_2nd_4th_8th_occurrences_through),
      T(log_limited_emits_the_occurrence_number),
      T(ratelimit_shared_by_4_threads_lets_each_power_of_two_through_once),
      /* first: its child needs a table this process has not touched */
      T(mistake_limiter_forgets_the_least_seen_oldest_key_when_full),
      T(mistake_limiter_reports_every_new_key_and_repeats_of_one_at_powers_of_two),
      T(mistake_limiter_shared_by_4_threads_lets_each_power_of_two_through_once),
      T(every_line_reaches_exactly_one_handler_while_handlers_change),
      T(strerror_and_err_name_cover_every_code),
      T(unknown_error_codes_have_a_generic_text_and_name),
      T(version_matches_the_header),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
