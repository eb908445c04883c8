/*
 * fork() safety under stress: real forks while threads record and the
 * publisher is mid-request to a slow aggregator. Every child records,
 * publishes and exits within a deadline; the totals at the aggregator equal
 * exactly what the parent and the children recorded.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <curl/curl.h>

#include "agg_fixture.h"
#include "test_util.h"

/* ThreadSanitizer cannot follow a thread created in the child of a threaded
 * parent (it aborts with "dup thread with used id"), and the library starts a
 * publishing thread in such a child by design. Under TSan those tests are
 * skipped; the forks_while_threads_record... test, whose children create no
 * thread, covers the fork handlers racing with recording threads.
 *
 * gcc 12's AddressSanitizer allocator does not hold its own locks across
 * fork(), so a child that allocates while a parent thread was inside malloc
 * can hang in the sanitizer runtime (seen: the child's publisher thread in
 * SizeClassAllocator64::GetFromAllocator). glibc's malloc is fork-safe; the
 * stress test that forks hundreds of times is skipped under ASan for that. */
#define SKIP_UNDER_SANITIZERS()     \
  do {                              \
    if (TU_UNDER_SANITIZER) skip(); \
  } while (0)
#define SKIP_UNDER_TSAN()      \
  do {                         \
    if (TU_UNDER_TSAN) skip(); \
  } while (0)

/* SPECTATOR_TEST_SCALE=n forks n times as often in the tests that count hangs
 * (for the figures in docs/reliability.md); default 1. */
static int scale(void) {
  const char *s = getenv("SPECTATOR_TEST_SCALE");
  int n = s ? atoi(s) : 1;
  return n > 0 ? n : 1;
}

/* Wait for a child with a deadline; a child that hangs is killed and the
 * test fails. Polls waitpid with a short nanosleep: the child is another
 * process, there is nothing to wait on but its exit. */
static int wait_child(pid_t pid, double deadline_s) {
  struct timespec start, now, nap = {0, 2 * 1000 * 1000};
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0 && errno != EINTR) return -1;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 > deadline_s) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -2; /* hung */
    }
    nanosleep(&nap, NULL);
  }
}

static void child_reports_only_its_own_activity(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  spectator_registry_t *r = new_reg(agg_url(agg), 60, 1);
  spectator_counter_t *c = spectator_registry_counter(r, "fork.counter", NULL);
  spectator_gauge_t *g = spectator_registry_gauge(r, "fork.gauge", NULL);
  spectator_counter_add(c, 10);
  spectator_gauge_set(g, 1);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    spectator_counter_add(c, 5); /* a pointer from before the fork */
    spectator_registry_stop(r);  /* flush the child's own activity */
    _exit(0);
  }
  assert_int_equal(wait_child(pid, 10), 0);
  spectator_counter_add(c, 1);
  spectator_registry_stop(r);
  assert_true(agg_value("fork.counter", SPECTATOR_TAGS("statistic", "count")) == 16);
  /* the gauge was reported by the parent only */
  agg_stats_t st;
  agg_stats(agg, &st);
  assert_int_equal(st.requests, 2);
  spectator_registry_free(r);
}

/* The descriptor of this process's connection to the aggregator (its peer is
 * the aggregator's port, its own port is not), or -1. */
static int client_socket_to(int port) {
  for (int fd = 0; fd < 1024; fd++) {
    struct sockaddr_in peer, self;
    socklen_t pl = sizeof(peer), sl = sizeof(self);
    if (getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 || peer.sin_family != AF_INET) continue;
    if (getsockname(fd, (struct sockaddr *)&self, &sl) != 0) continue;
    if (ntohs(peer.sin_port) == port && ntohs(self.sin_port) != port) return fd;
  }
  return -1;
}

/* The parent's kept-alive connection is closed in the child (a descriptor of
 * the child only: the parent's connection stays up and is reused), and the
 * child publishes over a connection of its own. */
static void a_child_closes_the_parents_connection_and_opens_its_own(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  spectator_registry_t *r = new_reg(agg_url(agg), 0.05, 2);
  spectator_counter_t *c = spectator_registry_counter(r, "fork.conn", NULL);
  spectator_counter_add(c, 1);
  assert_int_equal(agg_wait_value(agg, "fork.conn", SPECTATOR_TAGS("statistic", "count"), 1, 10),
                   0);
  int parent_fd = client_socket_to(agg_port(agg));
  assert_true(parent_fd >= 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    bool closed = fcntl(parent_fd, F_GETFD) == -1 && errno == EBADF;
    spectator_counter_add(c, 10);
    spectator_registry_stop(r);
    _exit(closed ? 0 : 3);
  }
  assert_int_equal(wait_child(pid, 10), 0);
  spectator_counter_add(c, 100);
  spectator_registry_stop(r);
  assert_true(agg_value("fork.conn", SPECTATOR_TAGS("statistic", "count")) == 111);
  spectator_registry_free(r);
}

static void child_resumes_publishing_through_pointers_from_before_the_fork(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  spectator_registry_t *r = new_reg(agg_url(agg), 0.1, 1);
  spectator_counter_t *c = spectator_registry_counter(r, "fork.resume", NULL);
  int go[2];
  assert_int_equal(pipe(go), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(go[1]);
    spectator_counter_add(c, 7); /* no lookup, no start: only the old pointer */
    char b;
    ssize_t n = read(go[0], &b, 1); /* the parent says when the data arrived */
    _exit(n == 1 ? 0 : 1);
  }
  close(go[0]);
  int seen = agg_wait_value(agg, "fork.resume", SPECTATOR_TAGS("statistic", "count"), 7, 10);
  assert_int_equal(write(go[1], "x", 1), 1);
  close(go[1]);
  assert_int_equal(wait_child(pid, 10), 0);
  assert_int_equal(seen, 0);
  spectator_registry_free(r);
}

/* --- the stress test ----------------------------------------------------- */

typedef struct {
  spectator_counter_t *c;
  spectator_timer_t *t;
  atomic_bool *stop;
  uint64_t done;
} recorder_t;

static void *record_loop(void *arg) {
  recorder_t *rec = arg;
  while (!atomic_load_explicit(rec->stop, memory_order_relaxed)) {
    spectator_counter_increment(rec->c);
    spectator_timer_record_ns(rec->t, 1000);
    rec->done++;
  }
  return NULL;
}

#define FORKS 300
#define WAVE 15

static void forks_under_load_lose_and_duplicate_nothing(void **state) {
  (void)state;
  SKIP_UNDER_SANITIZERS();
  /* A request may take until the next interval: 200 ms leave room for the
   * 30 ms answers below on two cores that the recording threads keep busy. */
  spectator_registry_t *r = new_reg(agg_url(agg), 0.2, 2);
  spectator_counter_t *shared = spectator_registry_counter(r, "stress.shared", NULL);
  spectator_timer_t *timer = spectator_registry_timer(r, "stress.timer", NULL);
  spectator_counter_t *children = spectator_registry_counter(r, "stress.children", NULL);
  /* Make the publisher be mid-request often: every request takes 30 ms. */
  agg_fail_next(agg, 1000000, AGG_FAIL_DELAY, 0, 30);

  atomic_bool stop = false;
  recorder_t recs[2] = {{shared, timer, &stop, 0}, {shared, timer, &stop, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[i], NULL, record_loop, &recs[i]), 0);

  int hung = 0, failed = 0;
  for (int wave = 0; wave < FORKS / WAVE; wave++) {
    pid_t pids[WAVE];
    for (int i = 0; i < WAVE; i++) {
      pids[i] = fork();
      assert_true(pids[i] >= 0);
      if (pids[i] == 0) {
        spectator_counter_increment(shared);
        spectator_counter_increment(children);
        spectator_registry_stop(r); /* flush what the child recorded */
        _exit(0);
      }
    }
    for (int i = 0; i < WAVE; i++) {
      int rc = wait_child(pids[i], 20);
      if (rc == -2)
        hung++;
      else if (rc != 0)
        failed++;
    }
  }
  atomic_store(&stop, true);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  agg_fail_clear(agg); /* no more delays */
  spectator_registry_stop(r);

  assert_int_equal(hung, 0);
  assert_int_equal(failed, 0);
  uint64_t recorded = recs[0].done + recs[1].done;
  assert_true(agg_value("stress.children", SPECTATOR_TAGS("statistic", "count")) == FORKS);
  assert_true(agg_value("stress.shared", SPECTATOR_TAGS("statistic", "count")) ==
              (double)(recorded + FORKS));
  assert_true(agg_value("stress.timer", SPECTATOR_TAGS("statistic", "count")) == (double)recorded);
  spectator_registry_free(r);
}

/* No publisher: the children create no thread, so this one also runs under
 * ThreadSanitizer, which then checks the fork handlers against threads that
 * record and look meters up at the same time. */
static void forks_while_threads_record_keep_the_parent_exact(void **state) {
  (void)state;
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  spectator_counter_t *shared = spectator_registry_counter(r, "quiet.shared", NULL);
  spectator_timer_t *timer = spectator_registry_timer(r, "quiet.timer", NULL);
  atomic_bool stop = false;
  recorder_t recs[2] = {{shared, timer, &stop, 0}, {shared, timer, &stop, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[i], NULL, record_loop, &recs[i]), 0);
  double snapped = 0;
  for (int i = 0; i < 100; i++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      /* the child starts from zero: the parent's pending values are gone */
      spectator_measurements_t *ms = spectator_registry_snapshot(r);
      int clean = spectator_measurements_count(ms) == 0;
      spectator_measurements_free(ms);
      spectator_counter_increment(spectator_registry_counter(r, "quiet.child", NULL));
      _exit(clean ? 0 : 3);
    }
    assert_int_equal(wait_child(pid, 20), 0);
    spectator_measurements_t *ms = spectator_registry_snapshot(r);
    const spectator_measurement_t *m =
        spectator_measurements_find(ms, "quiet.shared", SPECTATOR_TAGS("statistic", "count"));
    if (m) snapped += m->value;
    spectator_measurements_free(ms);
  }
  atomic_store(&stop, true);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  const spectator_measurement_t *m =
      spectator_measurements_find(ms, "quiet.shared", SPECTATOR_TAGS("statistic", "count"));
  if (m) snapped += m->value;
  assert_null(spectator_measurements_find(ms, "quiet.child", SPECTATOR_TAGS("statistic", "count")));
  spectator_measurements_free(ms);
  assert_true(snapped == (double)(recs[0].done + recs[1].done));
  spectator_registry_free(r);
}

typedef struct {
  spectator_registry_t *r;
  spectator_counter_t *c;
  int rc;
} forker_t;

static void *fork_from_thread(void *arg) {
  forker_t *f = arg;
  pid_t pid = fork();
  if (pid == 0) {
    spectator_counter_add(f->c, 3);
    spectator_registry_stop(f->r);
    _exit(0);
  }
  f->rc = pid < 0 ? -1 : wait_child(pid, 10);
  return NULL;
}

static void fork_from_a_recording_thread_is_safe(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  spectator_registry_t *r = new_reg(agg_url(agg), 0.05, 1);
  spectator_counter_t *c = spectator_registry_counter(r, "fork.thread", NULL);
  spectator_counter_add(c, 1);
  forker_t f = {r, c, -3};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, fork_from_thread, &f), 0);
  pthread_join(t, NULL);
  assert_int_equal(f.rc, 0);
  spectator_registry_stop(r);
  assert_true(agg_value("fork.thread", SPECTATOR_TAGS("statistic", "count")) == 4);
  spectator_registry_free(r);
}

static void *stop_registry(void *arg) {
  spectator_registry_stop(arg);
  return NULL;
}

static void fork_during_stop_is_safe(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  spectator_registry_t *r = new_reg(agg_url(agg), 0.05, 1);
  spectator_counter_t *c = spectator_registry_counter(r, "fork.stopping", NULL);
  agg_fail_next(agg, 5, AGG_FAIL_DELAY, 0, 100); /* keep the final flush busy */
  spectator_counter_add(c, 1);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, stop_registry, r), 0);
  int children = 0;
  for (int i = 0; i < 20; i++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      spectator_counter_add(c, 10);
      /* whatever state the parent was in, start + stop flushes the child */
      spectator_registry_start(r);
      spectator_registry_stop(r);
      _exit(0);
    }
    assert_int_equal(wait_child(pid, 10), 0);
    children++;
  }
  pthread_join(t, NULL);
  spectator_registry_stop(r);
  assert_true(agg_value("fork.stopping", SPECTATOR_TAGS("statistic", "count")) ==
              1 + 10 * children);
  spectator_registry_free(r);
}

static void children_that_exit_at_once_or_exec_do_not_hang_or_publish(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  spectator_registry_t *r = new_reg(agg_url(agg), 0.05, 1);
  spectator_counter_t *c = spectator_registry_counter(r, "fork.exec", NULL);
  spectator_counter_add(c, 2);
  for (int i = 0; i < 20; i++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      spectator_counter_add(c, 100); /* never published: _exit and exec skip the flush */
      if (i % 2) _exit(0);
      execl("/bin/true", "true", (char *)NULL);
      _exit(127);
    }
    assert_int_equal(wait_child(pid, 10), 0);
  }
  spectator_registry_stop(r);
  assert_true(agg_value("fork.exec", SPECTATOR_TAGS("statistic", "count")) == 2);
  spectator_registry_free(r);
}

/* --- a child forked while the parent is inside stop ----------------------- */

static atomic_bool stop_returned;

static void *stop_and_note(void *arg) {
  spectator_registry_stop(arg);
  atomic_store(&stop_returned, true);
  return NULL;
}

/* Children forked while another thread of the parent waits in
 * spectator_registry_stop() for a final flush that the aggregator holds: each
 * child counts as forked from a publishing parent, and what it records
 * arrives through its own exit flush (it exits long before its first
 * interval). */
static void a_child_forked_during_stop_publishes_what_it_records(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.uri = agg_url(agg);
  cfg.frequency_s = 60;
  cfg.timeout_s = cfg.connect_timeout_s = 5;
  cfg.env_common_tags = 0;
  cfg.flush_at_exit = 1;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  assert_non_null(r);
  spectator_counter_t *c = spectator_registry_counter(r, "fork.in.stop", NULL);
  spectator_counter_add(c, 1);
  agg_fail_next(agg, 1, AGG_FAIL_DELAY, 0, 3000); /* the parent's final flush */
  atomic_store(&stop_returned, false);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, stop_and_note, r), 0);
  /* The final flush's request has arrived: the stop waits for its answer. */
  while (agg_fail_pending(agg) > 0) {
    struct timespec nap = {0, 1000000};
    nanosleep(&nap, NULL);
  }
  const int CHILDREN = 20 * scale();
  pid_t *pids = calloc((size_t)CHILDREN, sizeof(pid_t));
  assert_non_null(pids);
  for (int i = 0; i < CHILDREN; i++) {
    pids[i] = fork();
    assert_true(pids[i] >= 0);
    if (pids[i] == 0) {
      spectator_counter_add(c, 10);
      exit(0);
    }
  }
  bool forked_during_stop = !atomic_load(&stop_returned);
  int hung = 0, failed = 0;
  for (int i = 0; i < CHILDREN; i++) {
    int rc = wait_child(pids[i], 20);
    if (rc == -2)
      hung++;
    else if (rc != 0)
      failed++;
  }
  pthread_join(t, NULL);
  assert_true(forked_during_stop);
  assert_int_equal(hung, 0);
  assert_int_equal(failed, 0);
  double got = agg_value("fork.in.stop", SPECTATOR_TAGS("statistic", "count"));
  print_message("%d children forked during stop: %g of %d values arrived\n", CHILDREN,
                isnan(got) ? 0 : (got - 1) / 10, CHILDREN);
  assert_true(got == 1 + 10 * CHILDREN);
  free(pids);
  spectator_registry_free(r);
}

/* --- generations ----------------------------------------------------------- */

/* Each publishing process keeps two spare libcurl handles for its forked
 * children, made ahead (making one takes libcurl's global lock, which a fork
 * child must not touch): a child takes one and keeps the other for its own
 * children. A third generation has none left: its fork handler says so and
 * does not resume publishing, and an explicit start makes new handles. */
static void publishing_resumes_two_generations_down_and_a_start_goes_further(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  spectator_registry_t *r = new_reg(agg_url(agg), 60, 2);
  spectator_counter_t *c = spectator_registry_counter(r, "fork.generations", NULL);
  assert_int_equal(spectator_registry_start(r), 0);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    spectator_counter_add(c, 1);
    pid_t grandchild = fork();
    if (grandchild == 0) {
      spectator_counter_add(c, 10);
      tu_log_capture();
      pid_t third = fork();
      if (third == 0) {
        bool said = tu_log_count_matching(SPECTATOR_LOGGER_INIT, "publishing not resumed") == 1;
        spectator_counter_add(c, 100);
        spectator_registry_stop(r); /* no thread: nothing sent, nothing taken */
        spectator_counter_add(c, 1000);
        int started = spectator_registry_start(r);
        spectator_registry_stop(r); /* sends 1100 */
        _exit(said && started == 0 ? 0 : 3);
      }
      int rc = third > 0 ? wait_child(third, 10) : -1;
      spectator_registry_stop(r);
      _exit(rc == 0 ? 0 : 4);
    }
    int rc = grandchild > 0 ? wait_child(grandchild, 20) : -1;
    spectator_registry_stop(r);
    _exit(rc == 0 ? 0 : 5);
  }
  assert_int_equal(wait_child(child, 30), 0);
  spectator_registry_stop(r);
  assert_true(agg_value("fork.generations", SPECTATOR_TAGS("statistic", "count")) == 1111);
  spectator_registry_free(r);
}

/* --- libcurl's global lock held at the fork -------------------------------- */

/* libcurl 7.88 guards curl_global_init, curl_global_init_mem,
 * curl_global_cleanup, curl_global_sslset and curl_easy_init with one global
 * spinlock (an int taken with an atomic exchange). An application thread that
 * is inside one of them at the fork leaves it taken forever in the child. To
 * build that case deterministically, the test takes the very same lock from a
 * thread of its own, the way libcurl does, and forks while it holds it. The
 * lock is not exported: its address is read from the machine code of those
 * five functions (x86-64: each starts with `xchg reg, lock(%rip)`); all five
 * must name the same address, and a thread calling curl_global_init while the
 * test holds it must not get through until the test lets go. Anywhere else
 * (another architecture, another libcurl) the test is skipped. */
static _Atomic int *curl_global_lock(void) {
#if defined(__x86_64__)
  void *lib = dlopen("libcurl.so.4", RTLD_NOW);
  if (!lib) return NULL;
  static const char *const fns[] = {"curl_global_init", "curl_global_init_mem",
                                    "curl_global_cleanup", "curl_global_sslset", "curl_easy_init"};
  uintptr_t found = 0;
  for (size_t f = 0; f < sizeof(fns) / sizeof(fns[0]); f++) {
    const unsigned char *code = dlsym(lib, fns[f]);
    uintptr_t addr = 0;
    for (int i = 0; code && i < 96 && !addr; i++) {
      /* 87 /r with ModRM mod=00 rm=101: xchg r32, [rip + disp32] */
      if (code[i] == 0x87 && (code[i + 1] & 0xC7) == 0x05) {
        int32_t disp;
        memcpy(&disp, code + i + 2, sizeof(disp));
        addr = (uintptr_t)(code + i + 6) + (intptr_t)disp;
      }
    }
    if (!addr || (found && addr != found)) return NULL;
    found = addr;
  }
  return (_Atomic int *)found;
#else
  return NULL;
#endif
}

typedef struct {
  _Atomic int *lock;
  atomic_int state; /* 0 start, 1 held, 2 release, 3 released */
  CURLcode (*global_init)(long);
  void (*global_cleanup)(void);
  atomic_int probe_done;
} curl_lock_holder_t;

static void *hold_curl_lock(void *arg) {
  curl_lock_holder_t *h = arg;
  while (atomic_exchange(h->lock, 1) != 0) {
  }
  atomic_store(&h->state, 1);
  while (atomic_load(&h->state) != 2) {
    struct timespec nap = {0, 1000000};
    nanosleep(&nap, NULL);
  }
  atomic_store(h->lock, 0);
  atomic_store(&h->state, 3);
  return NULL;
}

static void *probe_curl_lock(void *arg) {
  curl_lock_holder_t *h = arg;
  h->global_init(CURL_GLOBAL_DEFAULT);
  atomic_store(&h->probe_done, 1);
  return NULL;
}

static void wait_state(curl_lock_holder_t *h, int state) {
  while (atomic_load(&h->state) != state) {
    struct timespec nap = {0, 100000};
    nanosleep(&nap, NULL);
  }
}

#define LOCKED_FORKS (200 * scale())
#define LOCKED_WAVE 20

static void forks_while_another_thread_holds_libcurls_global_lock_do_not_hang(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  spectator_registry_t *r = new_reg(agg_url(agg), 0.05, 2);
  spectator_counter_t *c = spectator_registry_counter(r, "fork.curl.lock", NULL);
  spectator_counter_add(c, 1);
  assert_int_equal(spectator_registry_start(r), 0); /* libcurl is loaded and initialized */
  curl_lock_holder_t h = {.lock = curl_global_lock()};
  void *lib = dlopen("libcurl.so.4", RTLD_NOW);
  if (!h.lock || !lib) {
    print_message("libcurl's global lock not found in this build: skipped\n");
    spectator_registry_free(r);
    skip();
  }
  h.global_init = (CURLcode(*)(long))dlsym(lib, "curl_global_init");
  h.global_cleanup = (void (*)(void))dlsym(lib, "curl_global_cleanup");
  pthread_t holder, probe;
  assert_int_equal(pthread_create(&holder, NULL, hold_curl_lock, &h), 0);
  wait_state(&h, 1);
  /* It is libcurl's lock: curl_global_init waits for it. */
  assert_int_equal(pthread_create(&probe, NULL, probe_curl_lock, &h), 0);
  struct timespec nap = {0, 100 * 1000 * 1000};
  nanosleep(&nap, NULL);
  bool probe_waited = atomic_load(&h.probe_done) == 0;

  int hung = 0, failed = 0, forked = 0;
  for (int wave = 0; wave < LOCKED_FORKS / LOCKED_WAVE && hung == 0; wave++) {
    pid_t pids[LOCKED_WAVE];
    for (int i = 0; i < LOCKED_WAVE; i++) {
      pids[i] = fork();
      assert_true(pids[i] >= 0);
      if (pids[i] == 0) {
        spectator_counter_increment(c); /* a pointer from before the fork */
        spectator_registry_stop(r);     /* flushed by the child's own publisher */
        _exit(0);
      }
      forked++;
    }
    /* One deadline for the wave: a hung child costs 10 s, not 10 s each. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < LOCKED_WAVE; i++) {
      clock_gettime(CLOCK_MONOTONIC, &t1);
      double left = 10 - ((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
      int rc = wait_child(pids[i], left > 0.01 ? left : 0.01);
      if (rc == -2)
        hung++;
      else if (rc != 0)
        failed++;
    }
  }
  atomic_store(&h.state, 2);
  pthread_join(holder, NULL);
  pthread_join(probe, NULL);
  h.global_cleanup(); /* the probe's reference */
  spectator_registry_stop(r);
  print_message("%d forks with libcurl's global lock held: %d hung, %d failed\n", forked, hung,
                failed);
  assert_true(probe_waited);
  assert_int_equal(hung, 0);
  assert_int_equal(failed, 0);
  assert_true(agg_value("fork.curl.lock", SPECTATOR_TAGS("statistic", "count")) ==
              1 + LOCKED_FORKS);
  spectator_registry_free(r);
}

/* The same, by chance rather than by construction: an application thread
 * creates and frees libcurl handles in a loop while the parent forks. */
typedef struct {
  CURL *(*easy_init)(void);
  void (*easy_cleanup)(CURL *);
  atomic_bool stop;
  uint64_t loops;
} curl_looper_t;

static void *loop_in_curl(void *arg) {
  curl_looper_t *l = arg;
  while (!atomic_load_explicit(&l->stop, memory_order_relaxed)) {
    l->easy_cleanup(l->easy_init());
    l->loops++;
  }
  return NULL;
}

#define LOOPING_FORKS (200 * scale())

static void forks_while_a_thread_loops_in_libcurl_do_not_hang(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  spectator_registry_t *r = new_reg(agg_url(agg), 0.05, 2);
  spectator_counter_t *c = spectator_registry_counter(r, "fork.curl.loop", NULL);
  assert_int_equal(spectator_registry_start(r), 0);
  void *lib = dlopen("libcurl.so.4", RTLD_NOW);
  assert_non_null(lib);
  curl_looper_t l = {(CURL * (*)(void)) dlsym(lib, "curl_easy_init"),
                     (void (*)(CURL *))dlsym(lib, "curl_easy_cleanup"), false, 0};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, loop_in_curl, &l), 0);
  int hung = 0, failed = 0;
  for (int wave = 0; wave < LOOPING_FORKS / LOCKED_WAVE; wave++) {
    pid_t pids[LOCKED_WAVE];
    for (int i = 0; i < LOCKED_WAVE; i++) {
      pids[i] = fork();
      assert_true(pids[i] >= 0);
      if (pids[i] == 0) {
        spectator_counter_increment(c);
        spectator_registry_stop(r);
        _exit(0);
      }
    }
    /* One deadline for the wave: a hung child costs 10 s, not 10 s each. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < LOCKED_WAVE; i++) {
      clock_gettime(CLOCK_MONOTONIC, &t1);
      double left = 10 - ((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
      int rc = wait_child(pids[i], left > 0.01 ? left : 0.01);
      if (rc == -2)
        hung++;
      else if (rc != 0)
        failed++;
    }
  }
  atomic_store(&l.stop, true);
  pthread_join(t, NULL);
  spectator_registry_stop(r);
  print_message("%d forks, %llu handles made meanwhile: %d hung, %d failed\n", LOOPING_FORKS,
                (unsigned long long)l.loops, hung, failed);
  assert_int_equal(hung, 0);
  assert_int_equal(failed, 0);
  assert_true(agg_value("fork.curl.loop", SPECTATOR_TAGS("statistic", "count")) == LOOPING_FORKS);
  spectator_registry_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(child_reports_only_its_own_activity, reset),
      cmocka_unit_test_setup(child_resumes_publishing_through_pointers_from_before_the_fork, reset),
      cmocka_unit_test_setup(a_child_closes_the_parents_connection_and_opens_its_own, reset),
      cmocka_unit_test_setup(forks_under_load_lose_and_duplicate_nothing, reset),
      cmocka_unit_test_setup(forks_while_threads_record_keep_the_parent_exact, reset),
      cmocka_unit_test_setup(fork_from_a_recording_thread_is_safe, reset),
      cmocka_unit_test_setup(fork_during_stop_is_safe, reset),
      cmocka_unit_test_setup(children_that_exit_at_once_or_exec_do_not_hang_or_publish, reset),
      cmocka_unit_test_setup(a_child_forked_during_stop_publishes_what_it_records, reset),
      cmocka_unit_test_setup(publishing_resumes_two_generations_down_and_a_start_goes_further,
                             reset),
      cmocka_unit_test_setup(forks_while_another_thread_holds_libcurls_global_lock_do_not_hang,
                             reset),
      cmocka_unit_test_setup(forks_while_a_thread_loops_in_libcurl_do_not_hang, reset),
  };
  return cmocka_run_group_tests(tests, agg_fixture_setup, agg_fixture_teardown);
}
