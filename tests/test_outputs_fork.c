/*
 * The outputs of spectatord's line protocol across fork(), over a real unix
 * datagram socket to the stand-in for spectatord (tools/line_receiver): a
 * child never sends what its parent buffered. A program of its own because
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

/* A pre-fork server: the parent has samples and a count buffered (it does
 * not publish) when it forks; the child starts publishing, records its own
 * and stops: only the child's arrive, and the parent's when the parent
 * publishes. */
static void a_forked_child_sends_only_its_own_lines(void **state) {
  (void)state;
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(a_forked_child_sends_only_its_own_lines, reset),
      cmocka_unit_test_setup(children_forked_while_recording_never_send_the_parents_samples, reset),
  };
  return cmocka_run_group_tests(tests, NULL, teardown);
}
