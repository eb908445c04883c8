/*
 * Helpers shared by the unit tests (header only; everything is static inline so
 * a test that does not use a helper gets no warning):
 *
 * - tu_log_*: capture log lines through spectator_log_set_handler into a
 *   buffer guarded by a mutex, and count or find lines afterwards.
 * - tu_clock_*: a fake clock for spectator_config_t.clock, moved by hand.
 * - tu_value / tu_find: look a measurement up in a snapshot.
 * - tu_in_child: run a function in a forked child with a fresh capture and get
 *   its result and log lines back. Rate limiters and once-only state are
 *   process-wide; a child starts from the parent's state, so a parent that
 *   never touched that state gives each child a clean one.
 *
 * Include after <cmocka.h>.
 */
#ifndef SPECTATOR_TEST_UTIL_H
#define SPECTATOR_TEST_UTIL_H

#include <locale.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sanitizers.h"
#include "spectator.h"

/* ------------------------------------------------------------------------ */
/* Log capture                                                               */
/* ------------------------------------------------------------------------ */

#define TU_LOG_MAX_LINES 512
#define TU_LOG_MAX_MSG 1200

typedef struct {
  spectator_log_level_t level;
  char logger[64];
  char msg[TU_LOG_MAX_MSG];
  size_t msg_len; /* strlen of the message as received (before any clipping here) */
} tu_log_line_t;

typedef struct {
  pthread_mutex_t lock;
  size_t n;       /* lines kept */
  size_t dropped; /* lines beyond TU_LOG_MAX_LINES */
  tu_log_line_t lines[TU_LOG_MAX_LINES];
} tu_log_t;

static tu_log_t tu_log_buf = {PTHREAD_MUTEX_INITIALIZER, 0, 0, {{0}}};

static inline void tu_log_handler(spectator_log_level_t level, const char *logger,
                                  const char *message, void *ctx) {
  tu_log_t *l = ctx;
  pthread_mutex_lock(&l->lock);
  if (l->n < TU_LOG_MAX_LINES) {
    tu_log_line_t *line = &l->lines[l->n++];
    line->level = level;
    snprintf(line->logger, sizeof(line->logger), "%s", logger ? logger : "(null)");
    line->msg_len = message ? strlen(message) : 0;
    snprintf(line->msg, sizeof(line->msg), "%s", message ? message : "(null)");
  } else {
    l->dropped++;
  }
  pthread_mutex_unlock(&l->lock);
}

static inline void tu_log_clear(void) {
  pthread_mutex_lock(&tu_log_buf.lock);
  tu_log_buf.n = 0;
  tu_log_buf.dropped = 0;
  pthread_mutex_unlock(&tu_log_buf.lock);
}

/* Start capturing (clears the buffer). */
static inline void tu_log_capture(void) {
  tu_log_clear();
  spectator_log_set_handler(tu_log_handler, &tu_log_buf);
}

/* Stop capturing: back to the default handler. */
static inline void tu_log_release(void) { spectator_log_set_handler(NULL, NULL); }

static inline size_t tu_log_count(void) {
  pthread_mutex_lock(&tu_log_buf.lock);
  size_t n = tu_log_buf.n + tu_log_buf.dropped;
  pthread_mutex_unlock(&tu_log_buf.lock);
  return n;
}

/* Lines on `logger` (NULL: any) whose message contains `needle` (NULL: any). */
static inline size_t tu_log_count_matching(const char *logger, const char *needle) {
  size_t c = 0;
  pthread_mutex_lock(&tu_log_buf.lock);
  for (size_t i = 0; i < tu_log_buf.n; i++) {
    const tu_log_line_t *l = &tu_log_buf.lines[i];
    if (logger && strcmp(l->logger, logger) != 0) continue;
    if (needle && !strstr(l->msg, needle)) continue;
    c++;
  }
  pthread_mutex_unlock(&tu_log_buf.lock);
  return c;
}

/* The i-th captured line (not to be used while other threads still log). */
static inline const tu_log_line_t *tu_log_line(size_t i) {
  return i < tu_log_buf.n ? &tu_log_buf.lines[i] : NULL;
}

/* Print every captured line (to explain a failure). */
static inline void tu_log_dump(void) {
  for (size_t i = 0; i < tu_log_buf.n; i++)
    fprintf(stderr, "  captured[%zu] level=%d %s: %.300s\n", i, (int)tu_log_buf.lines[i].level,
            tu_log_buf.lines[i].logger, tu_log_buf.lines[i].msg);
}

/* Assert the number of captured lines, dumping them when it is wrong. */
#define tu_assert_log_count(expected)                                                   \
  do {                                                                                  \
    size_t tu_n_ = tu_log_count();                                                      \
    if (tu_n_ != (size_t)(expected)) {                                                  \
      print_error("captured %zu log lines, expected %zu\n", tu_n_, (size_t)(expected)); \
      tu_log_dump();                                                                    \
      fail();                                                                           \
    }                                                                                   \
  } while (0)

/* Assert that line i has this level and logger and contains every needle. */
#define tu_assert_log_line(i, lvl, lgr, ...)                                              \
  do {                                                                                    \
    const tu_log_line_t *tu_l_ = tu_log_line(i);                                          \
    if (!tu_l_) {                                                                         \
      print_error("no captured log line %zu\n", (size_t)(i));                             \
      tu_log_dump();                                                                      \
      fail();                                                                             \
    }                                                                                     \
    assert_int_equal(tu_l_->level, (lvl));                                                \
    assert_string_equal(tu_l_->logger, (lgr));                                            \
    const char *const tu_needles_[] = {__VA_ARGS__, NULL};                                \
    for (size_t tu_j_ = 0; tu_needles_[tu_j_]; tu_j_++) {                                 \
      if (!strstr(tu_l_->msg, tu_needles_[tu_j_])) {                                      \
        print_error("log line %zu '%s' does not contain '%s'\n", (size_t)(i), tu_l_->msg, \
                    tu_needles_[tu_j_]);                                                  \
        fail();                                                                           \
      }                                                                                   \
    }                                                                                     \
  } while (0)

/* ------------------------------------------------------------------------ */
/* Fake clock                                                                */
/* ------------------------------------------------------------------------ */

typedef struct {
  _Atomic int64_t now_ns;
} tu_clock_t;

static inline int64_t tu_clock_fn(void *ctx) { return atomic_load(&((tu_clock_t *)ctx)->now_ns); }

static inline void tu_clock_set(tu_clock_t *c, int64_t ns) { atomic_store(&c->now_ns, ns); }

static inline void tu_clock_advance(tu_clock_t *c, int64_t ns) { atomic_fetch_add(&c->now_ns, ns); }

/* Point a config at a fake clock. */
static inline void tu_clock_install(spectator_config_t *cfg, tu_clock_t *c) {
  cfg->clock = tu_clock_fn;
  cfg->clock_ctx = c;
}

/* ------------------------------------------------------------------------ */
/* Snapshots                                                                 */
/* ------------------------------------------------------------------------ */

/* The value of the measurement with this name and exactly these tags
 * (including statistic); false when there is none. */
static inline bool tu_find(const spectator_measurements_t *ms, const char *name,
                           const char *const *tags, double *value) {
  const spectator_measurement_t *m = spectator_measurements_find(ms, name, tags);
  if (!m) return false;
  if (value) *value = m->value;
  return true;
}

/* Assert that the snapshot has this measurement (name and exact tags,
 * statistic included) with exactly this value. */
#define tu_assert_measurement(ms, name, tags, expected)                               \
  do {                                                                                \
    double tu_v_ = 0;                                                                 \
    if (!tu_find((ms), (name), (tags), &tu_v_)) {                                     \
      print_error("no measurement %s in the snapshot (%zu measurements)\n", (name),   \
                  spectator_measurements_count(ms));                                  \
      fail();                                                                         \
    }                                                                                 \
    if (!(tu_v_ == (double)(expected))) {                                             \
      print_error("%s = %.17g, expected %.17g\n", (name), tu_v_, (double)(expected)); \
      fail();                                                                         \
    }                                                                                 \
  } while (0)

/* ------------------------------------------------------------------------ */
/* Running a piece of a test in a forked child                               */
/* ------------------------------------------------------------------------ */

/* Run fn(arg) in a child process with log capture on. The child's captured
 * lines replace the parent's capture buffer (tu_log_count and friends then
 * describe the child's lines) and fn's result is returned. A child that dies
 * fails the test. Only call this while the process has no other threads. */
static inline long tu_in_child(long (*fn)(void *), void *arg) {
  int fds[2];
  if (pipe(fds) != 0) {
    print_error("pipe failed\n");
    fail();
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    print_error("fork failed\n");
    fail();
  }
  if (pid == 0) {
    close(fds[0]);
    tu_log_capture();
    long r = fn(arg);
    tu_log_release();
    size_t n = tu_log_buf.n;
    /* result, line count, then the lines */
    struct {
      const void *p;
      size_t len;
    } parts[3] = {{&r, sizeof(r)}, {&n, sizeof(n)}, {tu_log_buf.lines, n * sizeof(tu_log_line_t)}};
    for (int k = 0; k < 3; k++) {
      const char *b = parts[k].p;
      size_t len = parts[k].len;
      while (len) {
        ssize_t w = write(fds[1], b, len);
        if (w <= 0) _exit(2);
        b += w;
        len -= (size_t)w;
      }
    }
    close(fds[1]);
    _exit(0);
  }
  close(fds[1]);
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (len == cap) buf = realloc(buf, cap *= 2);
    assert_non_null(buf);
    ssize_t r = read(fds[0], buf + len, cap - len);
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    free(buf);
    print_error("child failed (status %d)\n", status);
    fail();
  }
  long result = 0;
  size_t n = 0;
  assert_true(len >= sizeof(result) + sizeof(n));
  memcpy(&result, buf, sizeof(result));
  memcpy(&n, buf + sizeof(result), sizeof(n));
  assert_int_equal(len, sizeof(result) + sizeof(n) + n * sizeof(tu_log_line_t));
  pthread_mutex_lock(&tu_log_buf.lock);
  tu_log_buf.n = n;
  tu_log_buf.dropped = 0;
  memcpy(tu_log_buf.lines, buf + sizeof(result) + sizeof(n), n * sizeof(tu_log_line_t));
  pthread_mutex_unlock(&tu_log_buf.lock);
  free(buf);
  return result;
}

/* ------------------------------------------------------------------------ */
/* Environment                                                               */
/* ------------------------------------------------------------------------ */

/* setenv, or unsetenv when value is NULL. */
static inline void tu_setenv(const char *name, const char *value) {
  if (value)
    setenv(name, value, 1);
  else
    unsetenv(name);
}

/* ------------------------------------------------------------------------ */
/* A locale whose decimal separator is a comma                               */
/* ------------------------------------------------------------------------ */

/* Switch LC_NUMERIC to German (decimal comma), compiled from glibc's locale
 * sources into a directory of our own (LOCPATH) when the system has not
 * installed it. Returns false when neither is possible (no locale sources:
 * the `locales` package). tu_locale_reset() goes back to "C". */
static char tu_locale_dir[] = "/tmp/spectator-locale-XXXXXX";
static pid_t tu_locale_owner;

/* At exit of the process that made it (not of its forked children, which
 * share it): the compiled locale is about 3 MB. */
static void tu_locale_dir_remove(void) {
  if (getpid() != tu_locale_owner) return;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tu_locale_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tu_locale_dir);
}

static inline bool tu_comma_locale(void) {
  if (setlocale(LC_NUMERIC, "de_DE.UTF-8")) return true;
  static bool made;
  if (!made) {
    if (!mkdtemp(tu_locale_dir)) return false;
    tu_locale_owner = getpid();
    atexit(tu_locale_dir_remove);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 >/dev/null 2>&1",
             tu_locale_dir);
    if (system(cmd) != 0) return false;
    made = true;
  }
  setenv("LOCPATH", tu_locale_dir, 1);
  return setlocale(LC_NUMERIC, "de_DE.UTF-8") != NULL && localeconv()->decimal_point[0] == ',';
}

static inline void tu_locale_reset(void) { setlocale(LC_NUMERIC, "C"); }

#endif /* SPECTATOR_TEST_UTIL_H */
