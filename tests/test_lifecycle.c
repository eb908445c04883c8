/*
 * The edges of a process's life, as a user's program lives them: exit over
 * http and https, forked children that exit at once, exit() from a SIGTERM
 * handler that interrupted the library while it held one of its locks, data
 * recorded where it can never be published, and freeing the global registry.
 *
 * Each scenario runs in a fresh process (tests/lifecycle_child.c, linked to
 * the shared library, and for some scenarios to the static one as well), so
 * the library is the first to initialize libcurl and the TLS library in it
 * and its exit handler and destructor run as in a user's program. That
 * process publishes to a real aggregator in this one, over http or over https
 * (the test aggregator's TLS mode, with a self-signed certificate made for the
 * test by the openssl CLI); values are checked there exactly. Hangs are
 * bounded by deadlines (the process is then killed and the test fails), and
 * the times are measured from the moment the signal is raised.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aggregator.h"
#include "sanitizers.h"
#include "spectator.h"

/* Under ThreadSanitizer a thread created in the child of a threaded process
 * aborts the child ("dup thread with used id"), and under gcc's
 * AddressSanitizer such a child can hang in the sanitizer's allocator (see
 * test_fork.c): the scenarios whose children publish are skipped there. */

static agg_t *http_agg, *https_agg;
static char tmpdir[256], ca_path[512];

/* SPECTATOR_TEST_SCALE=n runs every scenario n times as often (for the figures
 * in docs/reliability.md); default 1. */
static int scale(void) {
  const char *s = getenv("SPECTATOR_TEST_SCALE");
  int n = s ? atoi(s) : 1;
  return n > 0 ? n : 1;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------------ */
/* Running a scenario                                                        */
/* ------------------------------------------------------------------------ */

typedef struct {
  pid_t pid;
  int in_fd, out_fd; /* its stdin (we write), its stdout (we read) */
  char out_buf[4096];
  size_t out_len;
  char err_path[512]; /* its stderr */
  int status;         /* exit code, 128 + signal, -2 when it hung and was killed */
} helper_t;

/* Start exe with scenario, uri and ca; env is a NULL-terminated list of
 * "NAME=value" for the SPECTATOR_* variables (all others are cleared). */
static void helper_start(helper_t *h, const char *exe, const char *scenario, agg_t *a,
                         const char *const *env) {
  static int n;
  memset(h, 0, sizeof(*h));
  snprintf(h->err_path, sizeof(h->err_path), "%s/stderr.%d", tmpdir, n++);
  int in[2], out[2];
  assert_int_equal(pipe(in), 0);
  assert_int_equal(pipe(out), 0);
  fflush(NULL);
  h->pid = fork();
  assert_true(h->pid >= 0);
  if (h->pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    int err = open(h->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(err, 2);
    close(in[1]);
    close(out[0]);
    static const char *const vars[] = {
        "SPECTATOR_URI",     "SPECTATOR_FREQUENCY", "SPECTATOR_DISABLE_AUTO_START",
        "SPECTATOR_TIMEOUT", "SPECTATOR_LOG_LEVEL", "SPECTATOR_COMMON_TAGS"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) unsetenv(vars[i]);
    for (size_t i = 0; env && env[i]; i++) putenv((char *)env[i]);
    /* Under ThreadSanitizer: no sleep of its own at exit (1 s by default),
     * which would count in the exit times measured here; and in the signal
     * scenarios, exit() from a signal handler is not async-signal-safe by
     * design and leaves threads unjoined (the interrupted stop's, an
     * abandoned publisher), which it would report. */
    const char *tsan = getenv("TSAN_OPTIONS");
    if (tsan) {
      static char opts[1024];
      snprintf(opts, sizeof(opts), "%s:atexit_sleep_ms=0%s", tsan,
               strncmp(scenario, "sigterm", 7) == 0
                   ? ":report_signal_unsafe=0:report_thread_leaks=0"
                   : "");
      setenv("TSAN_OPTIONS", opts, 1);
    }
    const char *ca = strncmp(agg_url(a), "https", 5) == 0 ? ca_path : "-";
    execl(exe, exe, scenario, agg_url(a), ca, (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  h->in_fd = in[1];
  h->out_fd = out[0];
}

/* The next line it prints, within timeout_s; false when none came. */
static bool helper_line(helper_t *h, char *line, size_t size, double timeout_s) {
  double deadline = now_s() + timeout_s;
  for (;;) {
    char *nl = memchr(h->out_buf, '\n', h->out_len);
    if (nl) {
      size_t len = (size_t)(nl - h->out_buf);
      snprintf(line, size, "%.*s", (int)len, h->out_buf);
      memmove(h->out_buf, nl + 1, h->out_len - len - 1);
      h->out_len -= len + 1;
      return true;
    }
    double left = deadline - now_s();
    if (left <= 0 || h->out_len == sizeof(h->out_buf)) return false;
    struct pollfd p = {h->out_fd, POLLIN, 0};
    if (poll(&p, 1, (int)(left * 1000) + 1) <= 0) continue;
    ssize_t r = read(h->out_fd, h->out_buf + h->out_len, sizeof(h->out_buf) - h->out_len);
    if (r <= 0) return false;
    h->out_len += (size_t)r;
  }
}

static void helper_go(helper_t *h) { assert_int_equal(write(h->in_fd, "g", 1), 1); }

/* Wait for it to end within deadline_s; kill it when it does not. Returns
 * the seconds it took; h->status says how it ended. */
static double helper_wait(helper_t *h, double deadline_s) {
  double start = now_s();
  for (;;) {
    int st;
    pid_t r = waitpid(h->pid, &st, WNOHANG);
    if (r == h->pid) {
      h->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (now_s() - start > deadline_s) {
      kill(h->pid, SIGKILL);
      waitpid(h->pid, &st, 0);
      h->status = -2;
      break;
    }
    struct timespec nap = {0, 1000000};
    nanosleep(&nap, NULL);
  }
  close(h->in_fd);
  close(h->out_fd);
  return now_s() - start;
}

/* Lines of its stderr that contain needle. */
static int helper_log_count(const helper_t *h, const char *needle) {
  FILE *f = fopen(h->err_path, "r");
  if (!f) return -1;
  char line[2048];
  int n = 0;
  while (fgets(line, sizeof(line), f))
    if (strstr(line, needle)) n++;
  fclose(f);
  return n;
}

static void helper_dump_log(const helper_t *h) {
  FILE *f = fopen(h->err_path, "r");
  if (!f) return;
  char line[2048];
  while (fgets(line, sizeof(line), f)) print_message("  stderr: %s", line);
  fclose(f);
}

static double value_at(agg_t *a, const char *name, const char *const *tags) {
  double v = NAN;
  return agg_get(a, name, tags, &v) == 0 ? v : NAN;
}
#define COUNT SPECTATOR_TAGS("statistic", "count")

static int reset(void **state) {
  (void)state;
  agg_reset(http_agg);
  agg_reset(https_agg);
  agg_fail_clear(http_agg);
  return 0;
}

#define SKIP_WITHOUT_HTTPS()                                                   \
  do {                                                                         \
    if (!https_agg) {                                                          \
      print_message("no https aggregator (openssl CLI or MHD TLS missing)\n"); \
      skip();                                                                  \
    }                                                                          \
  } while (0)

/* ------------------------------------------------------------------------ */
/* Exit flush                                                                */
/* ------------------------------------------------------------------------ */

#define EXIT_RUNS (10 * scale())

/* Run the "exit" scenario runs times with exe against a: every run must end
 * with 0 and deliver its values. */
static void exit_runs(const char *exe, agg_t *a, int runs) {
  int crashed = 0, hung = 0, lost = 0;
  for (int i = 0; i < runs; i++) {
    helper_t h;
    helper_start(&h, exe, "exit", a, NULL);
    helper_wait(&h, 10);
    if (h.status == -2)
      hung++;
    else if (h.status != 0)
      crashed++;
    if (h.status != 0 && crashed + hung == 1) {
      print_message("run %d ended with %d\n", i, h.status);
      helper_dump_log(&h);
    }
  }
  double v = value_at(a, "lc.exit", COUNT);
  lost = runs - (isnan(v) ? 0 : (int)v / 42);
  print_message("%d runs: %d crashed, %d hung, %d runs' values lost\n", runs, crashed, hung, lost);
  assert_int_equal(crashed, 0);
  assert_int_equal(hung, 0);
  assert_true(v == 42.0 * runs);
  assert_true(value_at(a, "lc.exit.timer", SPECTATOR_TAGS("statistic", "totalTime")) ==
              0.25 * runs);
}

static void returning_from_main_flushes_over_https(void **state) {
  (void)state;
  SKIP_WITHOUT_HTTPS();
  exit_runs(LIFECYCLE_CHILD, https_agg, EXIT_RUNS);
}

static void returning_from_main_flushes_over_https_when_statically_linked(void **state) {
  (void)state;
  SKIP_WITHOUT_HTTPS();
  exit_runs(LIFECYCLE_CHILD_STATIC, https_agg, EXIT_RUNS);
}

static void returning_from_main_flushes_over_http(void **state) {
  (void)state;
  exit_runs(LIFECYCLE_CHILD, http_agg, EXIT_RUNS);
}

/* A periodic publish set up a connection before the exit; the aggregator
 * kept it open, or closed it (as a proxy closing idle connections does), so
 * that the exit flush connects again. What is recorded just before the exit
 * must arrive. */
static void exit_after_a_publish(int close_connections) {
  agg_set_close_connections(https_agg, close_connections);
  int failed = 0;
  int runs = 5 * scale();
  for (int i = 0; i < runs; i++) {
    agg_reset(https_agg);
    helper_t h;
    helper_start(&h, LIFECYCLE_CHILD, "exit-warm", https_agg, NULL);
    char line[128];
    bool published = helper_line(&h, line, sizeof(line), 10) &&
                     agg_wait_requests(https_agg, 1, 10) == 0; /* a connection was made */
    if (published)
      helper_go(&h);
    else { /* no go: it returns at once */
      close(h.in_fd);
      h.in_fd = -1;
    }
    helper_wait(&h, 10);
    if (!published || h.status != 0 || value_at(https_agg, "lc.last", COUNT) != 2) {
      if (!failed++) {
        print_message("run %d: %s, ended with %d\n", i,
                      published ? "published" : "no publish arrived", h.status);
        helper_dump_log(&h);
      }
    }
  }
  agg_set_close_connections(https_agg, 0);
  print_message("%d runs: %d failed\n", runs, failed);
  assert_int_equal(failed, 0);
}

static void returning_from_main_after_a_publish_flushes_over_https(void **state) {
  (void)state;
  SKIP_WITHOUT_HTTPS();
  exit_after_a_publish(0);
}

static void returning_from_main_flushes_over_a_new_https_connection(void **state) {
  (void)state;
  SKIP_WITHOUT_HTTPS();
  exit_after_a_publish(1);
}

/* Children of a publishing parent that exit() before their first interval:
 * each one's values arrive, through its own exit flush. */
static void fork_children_and_check(agg_t *a, int forks) {
  helper_t h;
  char env_forks[32];
  snprintf(env_forks, sizeof(env_forks), "LC_FORKS=%d", forks);
  const char *env[] = {env_forks, NULL};
  helper_start(&h, LIFECYCLE_CHILD, "fork", a, env);
  char line[256] = "";
  bool got = helper_line(&h, line, sizeof(line), 120);
  helper_wait(&h, 20);
  print_message("%s\n", got ? line : "(no report)");
  int n = -1, ok = -1, crashed = -1, hung = -1, failed = -1;
  assert_int_equal(sscanf(line, "children %d ok %d crashed %d hung %d failed %d", &n, &ok, &crashed,
                          &hung, &failed),
                   5);
  if (h.status != 0) helper_dump_log(&h);
  assert_int_equal(h.status, 0);
  assert_int_equal(crashed, 0);
  assert_int_equal(hung, 0);
  assert_int_equal(failed, 0);
  assert_int_equal(ok, forks);
  assert_true(value_at(a, "lc.fork.children", COUNT) == forks);
  assert_true(value_at(a, "lc.fork", COUNT) == 1000 + forks);
}

static void forked_children_that_exit_at_once_flush_over_https(void **state) {
  (void)state;
  SKIP_WITHOUT_HTTPS();
  if (TU_UNDER_SANITIZER) skip();
  fork_children_and_check(https_agg, 100 * scale());
}

static void forked_children_that_exit_at_once_flush_over_http(void **state) {
  (void)state;
  if (TU_UNDER_SANITIZER) skip();
  fork_children_and_check(http_agg, 100 * scale());
}

/* ------------------------------------------------------------------------ */
/* exit() from a signal handler                                              */
/* ------------------------------------------------------------------------ */

#define SIGNAL_RUNS (8 * scale())
#define SIGNAL_TIMEOUT 0.3

/* The scenario raises SIGTERM itself (deterministically inside the library)
 * after printing a line; its handler calls exit(3). exit() must return within
 * the timeout plus one second. */
static void sigterm_runs(const char *scenario, const char *delivered_name, double delivered) {
  int hung = 0, other = 0;
  double worst = 0;
  for (int i = 0; i < SIGNAL_RUNS; i++) {
    agg_reset(http_agg);
    helper_t h;
    char to[32];
    snprintf(to, sizeof(to), "LC_TIMEOUT=%g", SIGNAL_TIMEOUT);
    const char *env[] = {to, NULL};
    helper_start(&h, LIFECYCLE_CHILD, scenario, http_agg, env);
    char line[128];
    assert_true(helper_line(&h, line, sizeof(line), 10));
    double took = helper_wait(&h, 5);
    if (took > worst) worst = took;
    if (h.status == -2)
      hung++;
    else if (h.status != 3)
      other++;
    if (h.status != 3 && hung + other == 1) helper_dump_log(&h);
    if (h.status == 3) {
      /* What could not be sent was counted and logged. */
      if (delivered_name) {
        assert_true(value_at(http_agg, delivered_name, COUNT) == delivered);
      } else if (helper_log_count(&h, "WARN") < 1) {
        helper_dump_log(&h);
        fail_msg("nothing was logged about the values that were not sent");
      }
    }
  }
  print_message("%d runs: %d hung, %d ended otherwise; slowest exit %.3f s\n", SIGNAL_RUNS, hung,
                other, worst);
  assert_int_equal(hung, 0);
  assert_int_equal(other, 0);
  assert_true(worst < SIGNAL_TIMEOUT + 1.0);
}

/* The interrupted thread holds the snapshot lock: the exit flush cannot take
 * a snapshot; it says so and exit goes on. */
static void exit_from_a_signal_handler_that_interrupted_a_snapshot_is_bounded(void **state) {
  (void)state;
  sigterm_runs("sigterm-snapshot", NULL, 0);
}

/* The interrupted thread holds the insert lock: the exit flush sends the
 * data, then waits for that lock for its own metrics; exit does not wait for
 * it beyond the bound. */
static void exit_from_a_signal_handler_that_interrupted_a_lookup_is_bounded(void **state) {
  (void)state;
  sigterm_runs("sigterm-lookup", "lc.sig.lookup", 5);
}

/* The interrupted thread is inside spectator_registry_stop(), waiting for the
 * final flush, which a slow aggregator holds. */
static void exit_from_a_signal_handler_that_interrupted_a_stop_is_bounded(void **state) {
  (void)state;
  int hung = 0, other = 0;
  double worst = 0;
  for (int i = 0; i < SIGNAL_RUNS; i++) {
    agg_reset(http_agg);
    agg_fail_next(http_agg, 1, AGG_FAIL_DELAY, 0, 3000); /* the final flush's answer */
    helper_t h;
    char to[32];
    snprintf(to, sizeof(to), "LC_TIMEOUT=%g", SIGNAL_TIMEOUT);
    const char *env[] = {to, NULL};
    helper_start(&h, LIFECYCLE_CHILD, "sigterm-stop", http_agg, env);
    char line[128];
    assert_true(helper_line(&h, line, sizeof(line), 10));
    /* The final flush's request has arrived: the stop is waiting for it. */
    double start = now_s();
    while (agg_fail_pending(http_agg) > 0 && now_s() - start < 10) {
      struct timespec nap = {0, 1000000};
      nanosleep(&nap, NULL);
    }
    assert_int_equal(agg_fail_pending(http_agg), 0);
    kill(h.pid, SIGTERM);
    kill(h.pid, SIGTERM); /* a second one, as an impatient supervisor sends: no effect */
    double took = helper_wait(&h, 5);
    if (took > worst) worst = took;
    if (h.status == -2)
      hung++;
    else if (h.status != 3)
      other++;
    if (h.status != 3 && hung + other == 1) helper_dump_log(&h);
    /* The aggregator held the answer past the timeout: the counter and the
     * registry size gauge were counted as dropped and logged. */
    if (h.status == 3 && helper_log_count(&h, "could not publish 2 measurements") != 1) {
      helper_dump_log(&h);
      fail_msg("the dropped measurements were not logged");
    }
    agg_fail_clear(http_agg);
  }
  print_message("%d runs: %d hung, %d ended otherwise; slowest exit %.3f s\n", SIGNAL_RUNS, hung,
                other, worst);
  assert_int_equal(hung, 0);
  assert_int_equal(other, 0);
  assert_true(worst < SIGNAL_TIMEOUT + 1.0);
}

/* ------------------------------------------------------------------------ */
/* Data that can never be published                                          */
/* ------------------------------------------------------------------------ */

/* One warning that values will never be sent, naming this many meters
 * ("1 meter", "2 meters"); the child's log is printed when it is not so. */
static void assert_one_never_sent_warning(helper_t *h, const char *meters) {
  if (helper_log_count(h, "will never be sent") != 1 || helper_log_count(h, meters) != 1)
    helper_dump_log(h);
  assert_int_equal(helper_log_count(h, "will never be sent"), 1);
  assert_int_equal(helper_log_count(h, meters), 1);
}

static void global_scenario(const char *exe, const char *scenario, const char *const *env,
                            helper_t *h) {
  helper_start(h, exe, scenario, http_agg, env);
  helper_wait(h, 10);
  if (h->status != 0) helper_dump_log(h);
  assert_int_equal(h->status, 0);
}

/* One warning, from the library's destructor, which runs after every exit
 * handler: in the shared and in the static build. */
static void data_recorded_after_the_exit_flush_is_reported_once(void **state) {
  (void)state;
  const char *exes[] = {LIFECYCLE_CHILD, LIFECYCLE_CHILD_STATIC};
  char uri[160];
  snprintf(uri, sizeof(uri), "SPECTATOR_URI=%s", agg_url(http_agg));
  const char *env[] = {uri, "SPECTATOR_FREQUENCY=60", NULL};
  for (int i = 0; i < 2; i++) {
    agg_reset(http_agg);
    helper_t h;
    global_scenario(exes[i], "late", env, &h);
    assert_true(value_at(http_agg, "lc.main", COUNT) == 2);
    assert_true(isnan(value_at(http_agg, "lc.late", COUNT)));
    assert_one_never_sent_warning(&h, "1 meter");
  }
}

static void data_of_a_registry_never_started_is_reported_once(void **state) {
  (void)state;
  char uri[160];
  snprintf(uri, sizeof(uri), "SPECTATOR_URI=%s", agg_url(http_agg));
  const char *env[] = {uri, "SPECTATOR_DISABLE_AUTO_START=1", NULL};
  helper_t h;
  global_scenario(LIFECYCLE_CHILD, "never-started", env, &h);
  assert_true(isnan(value_at(http_agg, "lc.never", COUNT)));
  assert_true(isnan(value_at(http_agg, "lc.never2", COUNT)));
  assert_one_never_sent_warning(&h, "2 meters");
}

static void data_recorded_after_stop_is_reported_once(void **state) {
  (void)state;
  char uri[160];
  snprintf(uri, sizeof(uri), "SPECTATOR_URI=%s", agg_url(http_agg));
  const char *env[] = {uri, "SPECTATOR_FREQUENCY=60", NULL};
  helper_t h;
  global_scenario(LIFECYCLE_CHILD, "after-stop", env, &h);
  assert_true(value_at(http_agg, "lc.before", COUNT) == 1);
  assert_true(isnan(value_at(http_agg, "lc.after", COUNT)));
  assert_one_never_sent_warning(&h, "1 meter");
}

/* ------------------------------------------------------------------------ */
/* Polled meters at exit                                                     */
/* ------------------------------------------------------------------------ */

/* A poller's function runs at each publish, but not on the exit path: the
 * data it reads may be gone when main has returned, and exit must not wait
 * for application code. The exit flush still sends everything else. */
static void the_exit_flush_calls_no_poller(void **state) {
  (void)state;
  helper_t h;
  helper_start(&h, LIFECYCLE_CHILD, "poller-exit", http_agg, NULL);
  char line[128] = "";
  bool polled =
      helper_line(&h, line, sizeof(line), 10) &&
      agg_wait_value(http_agg, "lc.poll", SPECTATOR_TAGS("statistic", "gauge"), 5, 10) == 0;
  if (polled)
    helper_go(&h);
  else {
    close(h.in_fd);
    h.in_fd = -1;
  }
  helper_wait(&h, 10);
  if (!polled || h.status != 0) helper_dump_log(&h);
  assert_true(polled);
  assert_int_equal(h.status, 0);
  assert_true(value_at(http_agg, "lc.last", COUNT) == 2); /* the flush ran */
  assert_true(isnan(value_at(http_agg, "lc.poll.atExit", COUNT)));
}

/* ------------------------------------------------------------------------ */
/* The global registry                                                       */
/* ------------------------------------------------------------------------ */

static void freeing_the_global_registry_is_refused(void **state) {
  (void)state;
  char uri[160];
  snprintf(uri, sizeof(uri), "SPECTATOR_URI=%s", agg_url(http_agg));
  const char *env[] = {uri, "SPECTATOR_FREQUENCY=60", NULL};
  helper_t h;
  helper_start(&h, LIFECYCLE_CHILD, "free-global", http_agg, env);
  char line[128] = "";
  helper_line(&h, line, sizeof(line), 10);
  helper_wait(&h, 10);
  if (h.status != 0) helper_dump_log(&h);
  assert_int_equal(h.status, 0);
  assert_string_equal(line, "value 3");
  /* the snapshot took 3; the exit flush sends the 4 recorded after it */
  assert_true(value_at(http_agg, "lc.global", COUNT) == 4);
  assert_int_equal(helper_log_count(&h, "global registry"), 1);
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                     */
/* ------------------------------------------------------------------------ */

static char *slurp(const char *file) {
  FILE *f = fopen(file, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
    free(s);
    s = NULL;
  }
  if (s) s[n] = '\0';
  fclose(f);
  return s;
}

/* A self-signed certificate for 127.0.0.1, its own CA. */
static agg_t *start_https(void) {
  if (system("command -v openssl >/dev/null 2>&1") != 0) return NULL;
  char cmd[2048], key_path[512];
  snprintf(key_path, sizeof(key_path), "%s/key.pem", tmpdir);
  snprintf(ca_path, sizeof(ca_path), "%s/cert.pem", tmpdir);
  snprintf(cmd, sizeof(cmd),
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-keyout %s -out %s -days 2 -subj '/CN=spectator-c lifecycle test' "
           "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
           key_path, ca_path);
  if (system(cmd) != 0) return NULL;
  char *key = slurp(key_path), *cert = slurp(ca_path);
  agg_t *a = key && cert ? agg_start_tls(0, key, cert) : NULL;
  free(key);
  free(cert);
  return a;
}

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof(tmpdir), "%s/spectator-lifecycle.XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(tmpdir)) return -1;
  http_agg = agg_start(0);
  if (!http_agg) return -1;
  https_agg = start_https();
  if (!https_agg) fprintf(stderr, "no https aggregator: the https tests are skipped\n");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  agg_stop(http_agg);
  agg_stop(https_agg);
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) return -1;
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(returning_from_main_flushes_over_https, reset),
      cmocka_unit_test_setup(returning_from_main_flushes_over_https_when_statically_linked, reset),
      cmocka_unit_test_setup(returning_from_main_flushes_over_http, reset),
      cmocka_unit_test_setup(returning_from_main_after_a_publish_flushes_over_https, reset),
      cmocka_unit_test_setup(returning_from_main_flushes_over_a_new_https_connection, reset),
      cmocka_unit_test_setup(forked_children_that_exit_at_once_flush_over_https, reset),
      cmocka_unit_test_setup(forked_children_that_exit_at_once_flush_over_http, reset),
      cmocka_unit_test_setup(exit_from_a_signal_handler_that_interrupted_a_snapshot_is_bounded,
                             reset),
      cmocka_unit_test_setup(exit_from_a_signal_handler_that_interrupted_a_lookup_is_bounded,
                             reset),
      cmocka_unit_test_setup(exit_from_a_signal_handler_that_interrupted_a_stop_is_bounded, reset),
      cmocka_unit_test_setup(data_recorded_after_the_exit_flush_is_reported_once, reset),
      cmocka_unit_test_setup(data_of_a_registry_never_started_is_reported_once, reset),
      cmocka_unit_test_setup(data_recorded_after_stop_is_reported_once, reset),
      cmocka_unit_test_setup(the_exit_flush_calls_no_poller, reset),
      cmocka_unit_test_setup(freeing_the_global_registry_is_refused, reset),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
