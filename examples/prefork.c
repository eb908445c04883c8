/*
 * prefork: the pre-fork server pattern. A master process forks N workers;
 * each worker starts the global registry's publisher after the fork and
 * records its own traffic. Run with SPECTATOR_DISABLE_AUTO_START=1 so that
 * the master, which may touch meters before forking, never starts a
 * publishing thread of its own (starting one in the master is also safe:
 * see docs/fork.md).
 *
 *   SPECTATOR_DISABLE_AUTO_START=1 SPECTATOR_URI=http://127.0.0.1:7101/api/v4/update \
 *     ./prefork [workers] [requests-per-worker]
 */
#include <spectator.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int worker(int n, int requests) {
  int rc = spectator_start(); /* each worker publishes on its own */
  if (rc != 0) fprintf(stderr, "worker %d: not publishing: %s\n", n, spectator_strerror(rc));
  char id[16];
  snprintf(id, sizeof(id), "%d", n);
  spectator_counter_t *served =
      spectator_counter("prefork.requests", SPECTATOR_TAGS("worker", id));
  spectator_timer_t *latency = spectator_timer("prefork.latency", NULL);
  for (int i = 0; i < requests; i++) {
    spectator_counter_increment(served);
    spectator_timer_record(latency, 0.001 * (1 + i % 10));
  }
  spectator_stop(); /* flush before exiting; returning from main also flushes */
  return 0;
}

int main(int argc, char **argv) {
  int workers = argc > 1 ? atoi(argv[1]) : 4;
  int requests = argc > 2 ? atoi(argv[2]) : 1000;
  if (workers <= 0 || workers > 64) workers = 4;
  if (requests < 0) requests = 1000;

  /* The master may create meters before forking: the pointers stay valid in
   * every worker. */
  spectator_counter_t *forks = spectator_counter("prefork.workersStarted", NULL);
  for (int n = 0; n < workers; n++) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) exit(worker(n, requests));
    spectator_counter_increment(forks);
  }
  int failed = 0;
  for (int n = 0; n < workers; n++) {
    int status;
    if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
  }
  spectator_start(); /* the master publishes its own meters too */
  spectator_stop();
  printf("prefork: %d workers x %d requests, %d failed\n", workers, requests, failed);
  return failed ? 1 : 0;
}
