/*
 * The outputs of spectatord's line protocol across fork(): a child never
 * sends what its parent buffered. Over a real unix datagram socket to the
 * stand-in for spectatord (tools/line_receiver), and through the memory
 * output in children that create no thread. A program of its own because
 * the AddressSanitizer stage leaves fork tests out (docs/reliability.md: gcc
 * 12's ASan allocator is not fork-safe).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "lines_fixture.h"

/* ThreadSanitizer cannot follow a thread created in the child of a threaded
 * parent (it aborts with "dup thread with used id"), and a child that
 * publishes has a publishing thread by design: those tests are skipped under
 * TSan (as in test_fork.c), and the memory test below, whose children create
 * no thread, covers the fork handlers racing with recording and draining. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifdef UNDER_TSAN
#define SKIP_UNDER_TSAN() skip()
#else
#define SKIP_UNDER_TSAN() ((void)0)
#endif

/* A pre-fork server: the parent has samples and a count buffered (it does
 * not publish) when it forks; the child starts publishing, records its own
 * and stops: only the child's arrive, and the parent's when the parent
 * publishes. */
static void a_forked_child_sends_only_its_own_lines(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.output_location = unix_loc;
  cfg.frequency_s = 3600;
  cfg.env_common_tags = 0;
  cfg.flush_at_exit = 0;
  cfg.auto_start = 0;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  spectator_timer_t *t = spectator_registry_timer(r, "t", NULL);
  spectator_counter_t *c = spectator_registry_counter(r, "c", NULL);
  for (int i = 0; i < 1000; i++) spectator_timer_record_ns(t, 1000000);
  spectator_counter_add(c, 5);
  pid_t pid = fork();
  if (pid == 0) {
    if (spectator_registry_start(r) != 0) _exit(1);
    for (int i = 0; i < 10; i++) spectator_timer_record_ns(t, 2000000);
    spectator_counter_add(c, 3);
    spectator_registry_stop(r);
    _exit(0);
  }
  int status;
  waitpid(pid, &status, 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_true(lr_wait_lines(lr, 11, 10000));
  lr_meter_t x = get('t', "t");
  assert_int_equal(x.count, 10);
  assert_int_equal(x.total_ns, 20000000);
  assert_true(get('c', "c").sum == 3);
  assert_int_equal(spectator_registry_start(r), 0);
  spectator_registry_stop(r);
  assert_true(lr_wait_lines(lr, 11 + 1001, 10000));
  x = get('t', "t");
  assert_int_equal(x.count, 1010);
  assert_int_equal(x.total_ns, 1020000000);
  assert_true(get('c', "c").sum == 8);
  spectator_registry_free(r);
  assert_no_errors();
}

typedef struct {
  spectator_timer_t *t;
  _Atomic bool stop;
  _Atomic uint64_t recorded;
} busy_t;

static void *record_until_stopped(void *arg) {
  busy_t *b = arg;
  while (!atomic_load(&b->stop)) {
    spectator_timer_record_ns(b->t, 1000);
    atomic_fetch_add(&b->recorded, 1);
  }
  return NULL;
}

/* fork() while another thread records into the rings and the publisher
 * drains them: no child sends a sample of the parent's thread, so what
 * arrives of them plus what was dropped (and counted) is what was recorded. */
static void children_forked_while_recording_never_send_the_parents_samples(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.output_location = unix_loc;
  cfg.frequency_s = 3600;
  cfg.env_common_tags = 0;
  cfg.flush_at_exit = 0;
  tu_log_capture(); /* full rings are logged */
  spectator_registry_t *r = spectator_registry_new(&cfg);
  busy_t b = {spectator_registry_timer(r, "parent.t", NULL), false, 0};
  pthread_t th;
  pthread_create(&th, NULL, record_until_stopped, &b);
  enum { CHILDREN = 10 };
  for (int i = 0; i < CHILDREN; i++) {
    usleep(20 * 1000);
    pid_t pid = fork();
    if (pid == 0) {
      char name[32];
      snprintf(name, sizeof(name), "child.%d", i);
      spectator_timer_t *ct = spectator_registry_timer(r, name, NULL);
      for (int k = 0; k < 100; k++) spectator_timer_record_ns(ct, 5000);
      spectator_registry_stop(r);
      _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  atomic_store(&b.stop, true);
  pthread_join(th, NULL);
  spectator_registry_stop(r);
  /* Dropped by full rings, or by sends that found the receiver's queue full:
   * counted, and the counts sent with the final flush or still in the
   * registry (counted after it). */
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  double full = 0, other = 0;
  tu_find(ms, "spectator.measurements",
          SPECTATOR_TAGS("id", "dropped", "error", "buffer-full", "statistic", "count"), &full);
  tu_find(ms, "spectator.measurements",
          SPECTATOR_TAGS("id", "dropped", "error", "other", "statistic", "count"), &other);
  spectator_measurements_free(ms);
  uint64_t recorded = atomic_load(&b.recorded);
  assert_true(lr_wait_lines(lr, 1, 10000));
  lr_meter_t sent_full, sent_other;
  memset(&sent_full, 0, sizeof(sent_full));
  memset(&sent_other, 0, sizeof(sent_other));
  int64_t wait_until = now_ns() + 10 * 1000000000LL;
  while (!lr_get(lr, 'c', "spectator.measurements,error=buffer-full,id=dropped", &sent_full) &&
         now_ns() < wait_until)
    usleep(10 * 1000);
  lr_get(lr, 'c', "spectator.measurements,error=other,id=dropped", &sent_other);
  full += sent_full.sum;
  other += sent_other.sum;
  double dropped = full + other;
  /* Everything was sent or counted: wait for it. */
  int64_t until = now_ns() + 20 * 1000000000LL;
  lr_meter_t x;
  memset(&x, 0, sizeof(x));
  while (now_ns() < until) {
    lr_get(lr, 't', "parent.t", &x);
    if ((double)x.count + dropped >= (double)recorded) break;
    usleep(10 * 1000);
  }
  if ((double)x.count + dropped != (double)recorded)
    fail_msg("received %llu + dropped %.0f (full %.0f, other %.0f) != recorded %llu",
             (unsigned long long)x.count, dropped, full, other, (unsigned long long)recorded);
  for (int i = 0; i < CHILDREN; i++) {
    char name[32];
    snprintf(name, sizeof(name), "child.%d", i);
    lr_meter_t ct = get('t', name);
    assert_int_equal(ct.count, 100);
  }
  spectator_registry_free(r);
  tu_log_release();
  assert_no_errors();
}

typedef struct {
  spectator_registry_t *r;
  _Atomic bool stop;
  _Atomic uint64_t seen, dropped; /* parent.t lines read, drops counted */
} reader_t;

/* Sum what the memory output's lines say about parent.t. */
static void tally(reader_t *rd, spectator_lines_t *ls) {
  for (size_t i = 0; i < spectator_lines_count(ls); i++) {
    const char *l = spectator_lines_get(ls, i);
    if (strncmp(l, "t:parent.t:", 11) == 0)
      atomic_fetch_add(&rd->seen, 1);
    else if (strncmp(l, "c:spectator.measurements,error=buffer-full,id=dropped:", 54) == 0)
      atomic_fetch_add(&rd->dropped, (uint64_t)strtod(l + 54, NULL));
  }
}

static void *read_until_stopped(void *arg) {
  reader_t *rd = arg;
  while (!atomic_load(&rd->stop)) {
    spectator_lines_t *ls = spectator_registry_lines(rd->r);
    spectator_registry_lines_clear(rd->r);
    tally(rd, ls);
    spectator_lines_free(ls);
  }
  return NULL;
}

/* The child's checks: its lines are its own 50 samples and its count, and
 * nothing of its parent's. Exit status 0 when so. */
static int child_checks(spectator_registry_t *r, int i) {
  char name[32], want[64];
  snprintf(name, sizeof(name), "child.%d", i);
  spectator_timer_t *ct = spectator_registry_timer(r, name, NULL);
  for (int k = 0; k < 50; k++) spectator_timer_record_ns(ct, 5000);
  spectator_counter_add(spectator_registry_counter(r, "c", NULL), 3);
  spectator_lines_t *ls = spectator_registry_lines(r);
  snprintf(want, sizeof(want), "t:%s:5e-06", name);
  int samples = 0, counts = 0, other = 0;
  for (size_t k = 0; k < spectator_lines_count(ls); k++) {
    const char *l = spectator_lines_get(ls, k);
    if (strcmp(l, want) == 0)
      samples++;
    else if (strcmp(l, "c:c:3") == 0)
      counts++;
    else
      other++;
  }
  spectator_lines_free(ls);
  return samples == 50 && counts == 1 && other == 0 ? 0 : 1;
}

/* A parent whose threads record samples and read and clear the memory output
 * (draining the rings, holding its locks) forks again and again; each child,
 * creating no thread, reads its own lines: only what it recorded. In the
 * parent, what was read plus what was dropped (counted) is what was recorded. */
static void children_of_a_busy_parent_read_only_their_own_lines(void **state) {
  (void)state;
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.output_location = "memory";
  cfg.auto_start = 0;
  cfg.env_common_tags = 0;
  tu_log_capture(); /* full rings are logged */
  spectator_registry_t *r = spectator_registry_new(&cfg);
  spectator_counter_increment(spectator_registry_counter(r, "c", NULL)); /* the parent's */
  busy_t b = {spectator_registry_timer(r, "parent.t", NULL), false, 0};
  reader_t rd = {r, false, 0, 0};
  pthread_t rec, rdr;
  pthread_create(&rec, NULL, record_until_stopped, &b);
  pthread_create(&rdr, NULL, read_until_stopped, &rd);
  for (int i = 0; i < (getenv("NOFORK") ? 0 : 30); i++) {
    usleep(5 * 1000);
    pid_t pid = fork();
    if (pid == 0) _exit(getenv("CHILDNOP") ? 0 : child_checks(r, i));
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      fail_msg("child %d saw lines that are not its own", i);
  }
  if (getenv("NOFORK")) usleep((useconds_t)atoi(getenv("NOFORK")) * 1000);
  atomic_store(&b.stop, true);
  pthread_join(rec, NULL);
  atomic_store(&rd.stop, true);
  pthread_join(rdr, NULL);
  /* what is left, and the drops counted while reading it */
  for (int k = 0; k < 2; k++) {
    spectator_lines_t *ls = spectator_registry_lines(r);
    tally(&rd, ls);
    spectator_lines_free(ls);
    spectator_registry_lines_clear(r);
  }
  if (atomic_load(&rd.seen) + atomic_load(&rd.dropped) != atomic_load(&b.recorded))
    fail_msg("seen %llu dropped %llu recorded %llu", (unsigned long long)atomic_load(&rd.seen), (unsigned long long)atomic_load(&rd.dropped), (unsigned long long)atomic_load(&b.recorded));
  spectator_registry_free(r);
  tu_log_release();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(a_forked_child_sends_only_its_own_lines, reset),
      cmocka_unit_test_setup(children_forked_while_recording_never_send_the_parents_samples, reset),
      cmocka_unit_test_setup(children_of_a_busy_parent_read_only_their_own_lines, reset),
  };
  return cmocka_run_group_tests(tests, NULL, teardown);
}
