/*
 * The program test_lifecycle runs for each scenario at the edges of a
 * process's life: it is a fresh process, linked to the library as a user's
 * program is (lifecycle_child: the shared library; lifecycle_child_static:
 * the static one), so the library is the first to initialize libcurl and the
 * TLS library, and its exit handlers and destructor run exactly as in a
 * user's program.
 *
 *   lifecycle_child SCENARIO URI CA
 *
 * URI is the aggregator (http or https), CA the PEM file that signs its
 * certificate ("-" for none). Scenarios that use the global registry take
 * their settings from the SPECTATOR_* variables the test sets. Lines on
 * stdout tell the test where the program is; a byte on stdin tells the
 * program to go on where it waits for one.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <spectator.h>

static const char *uri, *ca;
static spectator_registry_t *reg;

/* Tell the test where we are: one line, flushed. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

/* Wait for the test's go (a byte on stdin). */
static int await_go(void) {
  char b;
  ssize_t n;
  do n = read(0, &b, 1);
  while (n < 0 && errno == EINTR);
  return n == 1 ? 0 : -1;
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A clock that raises SIGTERM the first time it is read once armed. The
 * library reads the configured clock inside a snapshot (holding the snapshot
 * lock) and when it creates a meter (holding the insert lock), so the signal
 * interrupts the library exactly there. */
static atomic_int armed;
static int64_t raising_clock(void *ctx) {
  (void)ctx;
  if (atomic_exchange(&armed, 0)) raise(SIGTERM);
  return mono_ns();
}

/* The handler many programs have: exit() from a signal handler. Not
 * async-signal-safe, but common; the library must not turn it into a hang. */
static void exit_on_term(int sig) {
  (void)sig;
  exit(3);
}

static void handle_term(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = exit_on_term;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
}

static spectator_registry_t *new_reg(double freq, double timeout, spectator_clock_fn clock) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.uri = uri;
  cfg.ca_info = ca;
  cfg.frequency_s = freq;
  cfg.timeout_s = cfg.connect_timeout_s = timeout;
  cfg.env_common_tags = 0;
  cfg.flush_at_exit = 1;
  cfg.clock = clock;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  if (!r) {
    say("no registry");
    exit(20);
  }
  return r;
}

static spectator_counter_t *counter(const char *name) {
  return spectator_registry_counter(reg, name, NULL);
}

/* Return from main before the first interval. */
static int exit_before_first_interval(void) {
  reg = new_reg(60, 2, NULL);
  spectator_counter_add(counter("lc.exit"), 42);
  spectator_timer_record(spectator_registry_timer(reg, "lc.exit.timer", NULL), 0.25);
  return 0;
}

/* Publish once (the connection is set up), then return from main. */
static int exit_after_a_publish(void) {
  reg = new_reg(0.05, 2, NULL);
  spectator_counter_add(counter("lc.warm"), 1);
  say("recorded");
  if (await_go() != 0) return 21; /* the test saw a publish arrive */
  spectator_counter_add(counter("lc.last"), 2);
  return 0;
}

/* Fork n children that each record and exit() within the first interval;
 * then return from main. Prints what became of the children. */
static int fork_children(int n) {
  reg = new_reg(60, 2, NULL);
  spectator_counter_t *c = counter("lc.fork");
  spectator_counter_t *children = counter("lc.fork.children");
  spectator_counter_add(c, 1000);
  int ok = 0, crashed = 0, hung = 0, failed = 0;
  const int wave = 10;
  for (int done = 0; done < n; done += wave) {
    pid_t pids[10];
    int k = n - done < wave ? n - done : wave;
    for (int i = 0; i < k; i++) {
      pids[i] = fork();
      if (pids[i] < 0) return 22;
      if (pids[i] == 0) {
        spectator_counter_increment(c); /* pointers from before the fork */
        spectator_counter_increment(children);
        exit(0); /* the exit flush sends it */
      }
    }
    /* The children have the timeout (2 s) to flush; 10 s is a hang. */
    int64_t deadline = mono_ns() + 10 * 1000000000LL;
    for (int i = 0; i < k; i++) {
      int status;
      pid_t r;
      while ((r = waitpid(pids[i], &status, WNOHANG)) == 0 && mono_ns() < deadline) {
        struct timespec nap = {0, 2000000};
        nanosleep(&nap, NULL);
      }
      if (r == 0) {
        kill(pids[i], SIGKILL);
        waitpid(pids[i], &status, 0);
        hung++;
      } else if (WIFSIGNALED(status)) {
        crashed++;
      } else if (WEXITSTATUS(status) != 0) {
        failed++;
      } else {
        ok++;
      }
    }
  }
  say("children %d ok %d crashed %d hung %d failed %d", n, ok, crashed, hung, failed);
  return 0;
}

/* exit() from a SIGTERM handler that interrupted a snapshot (the snapshot lock
 * is held by the interrupted thread, forever). */
static int sigterm_in_snapshot(double timeout) {
  handle_term();
  reg = new_reg(60, timeout, raising_clock);
  spectator_counter_add(counter("lc.sig.snapshot"), 7);
  say("raising");
  atomic_store(&armed, 1);
  spectator_measurements_free(spectator_registry_snapshot(reg));
  return 23; /* not reached: the handler exits */
}

/* exit() from a SIGTERM handler that interrupted the creation of a meter
 * (the insert lock is held by the interrupted thread, forever). */
static int sigterm_in_lookup(double timeout) {
  handle_term();
  reg = new_reg(60, timeout, raising_clock);
  spectator_counter_add(counter("lc.sig.lookup"), 5);
  say("raising");
  atomic_store(&armed, 1);
  counter("lc.sig.new");
  return 24;
}

/* exit() from a SIGTERM handler that interrupted spectator_registry_stop():
 * the test delays the aggregator's answer to the final flush and sends the
 * signal while it is in flight. */
static int sigterm_in_stop(double timeout) {
  handle_term();
  reg = new_reg(60, timeout, NULL);
  spectator_counter_add(counter("lc.sig.stop"), 9);
  say("stopping");
  spectator_registry_stop(reg);
  return 25; /* the signal comes before the stop returns */
}

/* What an exit handler that the program registered before its first use of
 * the library records: after the library's exit flush. */
static void record_late(void) { spectator_counter_increment(spectator_counter("lc.late", NULL)); }

static int record_after_the_exit_flush(void) {
  atexit(record_late);
  spectator_counter_add(spectator_counter("lc.main", NULL), 2);
  return 0;
}

/* Never started (SPECTATOR_DISABLE_AUTO_START is set). */
static int record_without_a_start(void) {
  spectator_counter_add(spectator_counter("lc.never", NULL), 1);
  spectator_counter_add(spectator_counter("lc.never2", NULL), 1);
  return 0;
}

static int record_after_stop(void) {
  spectator_counter_add(spectator_counter("lc.before", NULL), 1);
  spectator_stop();
  spectator_counter_add(spectator_counter("lc.after", NULL), 1);
  return 0;
}

/* Free the global registry, then keep using the global API. */
static int free_the_global_registry(void) {
  spectator_counter_add(spectator_counter("lc.global", NULL), 1);
  spectator_registry_free(spectator_global_registry());
  spectator_counter_add(spectator_counter("lc.global", NULL), 2);
  spectator_measurements_t *ms = spectator_registry_snapshot(spectator_global_registry());
  const spectator_measurement_t *m =
      spectator_measurements_find(ms, "lc.global", SPECTATOR_TAGS("statistic", "count"));
  double v = m ? m->value : -1;
  spectator_measurements_free(ms);
  say("value %g", v);
  spectator_counter_add(spectator_counter("lc.global", NULL), 4); /* the exit flush sends it */
  return v == 3 ? 0 : 26;
}

/* A poller: reported at each publish; returning from main must not call it
 * again (its data may be gone by then). A call after main is counted where
 * the exit flush would send it. */
static atomic_int main_returned;
static double poll_fn(void *ctx) {
  (void)ctx;
  if (atomic_load(&main_returned)) {
    spectator_counter_increment(counter("lc.poll.atExit"));
    return 99;
  }
  return 5;
}

static int exit_with_a_poller(void) {
  reg = new_reg(0.05, 2, NULL);
  spectator_registry_poll_gauge(reg, "lc.poll", NULL, poll_fn, NULL);
  say("polling");
  if (await_go() != 0) return 27; /* the test saw the poller's value arrive */
  spectator_counter_add(counter("lc.last"), 2);
  atomic_store(&main_returned, 1);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: lifecycle_child SCENARIO URI CA\n");
    return 2;
  }
  const char *s = argv[1];
  uri = argv[2];
  ca = strcmp(argv[3], "-") == 0 ? NULL : argv[3];
  double timeout = getenv("LC_TIMEOUT") ? atof(getenv("LC_TIMEOUT")) : 0.5;
  if (strcmp(s, "exit") == 0) return exit_before_first_interval();
  if (strcmp(s, "exit-warm") == 0) return exit_after_a_publish();
  if (strcmp(s, "fork") == 0)
    return fork_children(getenv("LC_FORKS") ? atoi(getenv("LC_FORKS")) : 20);
  if (strcmp(s, "sigterm-snapshot") == 0) return sigterm_in_snapshot(timeout);
  if (strcmp(s, "sigterm-lookup") == 0) return sigterm_in_lookup(timeout);
  if (strcmp(s, "sigterm-stop") == 0) return sigterm_in_stop(timeout);
  if (strcmp(s, "late") == 0) return record_after_the_exit_flush();
  if (strcmp(s, "never-started") == 0) return record_without_a_start();
  if (strcmp(s, "after-stop") == 0) return record_after_stop();
  if (strcmp(s, "free-global") == 0) return free_the_global_registry();
  if (strcmp(s, "poller-exit") == 0) return exit_with_a_poller();
  fprintf(stderr, "unknown scenario %s\n", s);
  return 2;
}
