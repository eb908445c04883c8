/*
 * work_queue: a worker thread drains a queue of jobs that the main thread
 * fills. The queue's length is reported by a poll gauge (a function the
 * library calls at each snapshot: no thread of our own to set a gauge), the
 * jobs done by a poll monotonic counter, a batch job by a long task timer
 * while it runs, and the time since the batch last succeeded by an age gauge.
 * Every few rounds the program prints what a publish would send.
 *
 * Build: part of the project build (examples/work_queue), or on its own
 * against an installed library:
 *   cc work_queue.c $(pkg-config --cflags --libs spectator) -lpthread
 * Run:   ./work_queue                (records and prints)
 *        SPECTATOR_URI=http://localhost:7101/api/v4/update ./work_queue
 *        (also publishes; with SPECTATOR_PROCESS_METRICS=1, process metrics too)
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <spectator.h>

#include <pthread.h>
#include <stdio.h>
#include <time.h>

/* The application's own state: a queue guarded by its mutex. */
typedef struct {
  pthread_mutex_t mu;
  int length; /* jobs waiting */
  long done;  /* jobs finished since start */
  int stop;
} queue_t;

static queue_t queue = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Poller functions: called on the snapshotting thread, with no library lock
 * held, so they may take the application's own locks. They must be cheap. */
static double queue_length(void *ctx) {
  queue_t *q = ctx;
  pthread_mutex_lock(&q->mu);
  double n = q->length;
  pthread_mutex_unlock(&q->mu);
  return n;
}

static double jobs_done(void *ctx) {
  queue_t *q = ctx;
  pthread_mutex_lock(&q->mu);
  double n = (double)q->done;
  pthread_mutex_unlock(&q->mu);
  return n;
}

static void *worker(void *arg) {
  queue_t *q = arg;
  for (;;) {
    pthread_mutex_lock(&q->mu);
    int stop = q->stop, have = q->length > 0;
    if (have) q->length--;
    pthread_mutex_unlock(&q->mu);
    if (stop) return NULL;
    if (!have) {
      pause_ms(5);
      continue;
    }
    pause_ms(15); /* work on one job */
    pthread_mutex_lock(&q->mu);
    q->done++;
    pthread_mutex_unlock(&q->mu);
  }
}

static void print_snapshot(spectator_registry_t *reg) {
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  for (size_t i = 0; i < spectator_measurements_count(ms); i++) {
    const spectator_measurement_t *m = spectator_measurements_get(ms, i);
    char id[256];
    spectator_id_format(m->id, id, sizeof(id));
    printf("  %-60s %s %g\n", id, m->op == SPECTATOR_OP_ADD ? "add" : "max", m->value);
  }
  printf("\n");
  spectator_measurements_free(ms);
}

int main(void) {
  /* The global registry, configured from the environment. */
  spectator_registry_t *reg = spectator_global_registry();
  if (!reg) return 1;

  /* Pollers: registered once; the library calls them at every snapshot. */
  spectator_poller_t *length =
      spectator_poll_gauge("queue.length", SPECTATOR_TAGS("queue", "jobs"), queue_length, &queue);
  spectator_poller_t *done = spectator_poll_monotonic_counter(
      "queue.jobsDone", SPECTATOR_TAGS("queue", "jobs"), jobs_done, &queue);

  /* A batch job: a long task timer while it runs, an age gauge for the time
   * since it last succeeded (set_now at start-up would count the start as a
   * success; here the first success is the first batch that finishes). */
  spectator_long_task_timer_t *batch =
      spectator_long_task_timer("batch.run", SPECTATOR_TAGS("batch", "nightly"));
  spectator_age_gauge_t *last_success =
      spectator_age_gauge("batch.lastSuccessAge", SPECTATOR_TAGS("batch", "nightly"));

  pthread_t th;
  if (pthread_create(&th, NULL, worker, &queue) != 0) return 1;

  for (int round = 1; round <= 3; round++) {
    int64_t task = spectator_long_task_timer_start(batch);
    for (int i = 0; i < 10; i++) { /* the batch enqueues jobs for a while */
      pthread_mutex_lock(&queue.mu);
      queue.length += 3;
      pthread_mutex_unlock(&queue.mu);
      pause_ms(20);
    }
    printf("round %d, the batch still running:\n", round);
    print_snapshot(reg);
    double seconds = spectator_long_task_timer_stop(batch, task);
    spectator_age_gauge_set_now(last_success);
    printf("round %d: the batch ran %.2f s\n\n", round, seconds);
  }

  pthread_mutex_lock(&queue.mu);
  queue.stop = 1;
  pthread_mutex_unlock(&queue.mu);
  pthread_join(th, NULL);

  /* After this, the functions are not running and will not be called: the
   * queue could be freed. */
  spectator_poller_remove(length);
  spectator_poller_remove(done);
  printf("after the pollers were removed:\n");
  print_snapshot(reg);
  return 0;
}
