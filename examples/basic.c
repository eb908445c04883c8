/*
 * basic: record one value on every meter type of the global registry, then
 * print what the next publish would send.
 *
 * Build: part of the project build (examples/basic), or on its own against an
 * installed library: cc basic.c $(pkg-config --cflags --libs spectator)
 * Run:   SPECTATOR_URI=http://localhost:7101/api/v4/update ./basic
 *        (without SPECTATOR_URI it records and prints, but publishes nothing)
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <spectator.h>

#include <stdio.h>
#include <time.h>

static void handle_request(void) {
  struct timespec pause = {0, 20 * 1000 * 1000}; /* pretend to work for 20 ms */
  nanosleep(&pause, NULL);
}

int main(void) {
  /* Publishing: the global registry starts by itself on first use when
   * SPECTATOR_URI is set (unless SPECTATOR_DISABLE_AUTO_START is), and
   * spectator_start() is idempotent, so calling it is optional but tells us
   * whether publishing works. */
  int rc = spectator_start();
  if (rc == SPECTATOR_ENOURI)
    printf("SPECTATOR_URI is not set: recording locally, nothing will be published.\n\n");
  else if (rc != 0)
    printf("spectator_start: %s; recording locally.\n\n", spectator_strerror(rc));

  /* Look meters up once and keep the pointers: recording on a pointer is a
   * few atomic instructions. Tags are alternating keys and values. */
  spectator_counter_t *requests =
      spectator_counter("server.requests", SPECTATOR_TAGS("status", "200", "method", "GET"));
  spectator_timer_t *latency = spectator_timer("server.latency", NULL);
  spectator_dist_summary_t *sizes = spectator_dist_summary("server.responseSize", NULL);
  spectator_gauge_t *queue = spectator_gauge("server.queueSize", NULL);
  spectator_max_gauge_t *conns = spectator_max_gauge("server.maxConnections", NULL);
  spectator_monotonic_counter_t *bytes = spectator_monotonic_counter("net.bytesIn", NULL);
  spectator_percentile_timer_t *db =
      spectator_percentile_timer("db.latency", SPECTATOR_TAGS("db", "users"), 0.001, 10);

  for (int i = 0; i < 3; i++) {
    spectator_stopwatch_t sw = spectator_stopwatch_start();
    handle_request();
    spectator_stopwatch_record(sw, latency); /* the request's duration */
    spectator_counter_increment(requests);
    spectator_dist_summary_record(sizes, 1024.0 * (i + 1)); /* bytes */
    spectator_max_gauge_set(conns, 10 + i);
    spectator_percentile_timer_record(db, 0.002 * (i + 1)); /* seconds */
  }
  spectator_gauge_set(queue, 7);
  spectator_monotonic_counter_set(bytes, 123456); /* a total kept elsewhere, e.g. /proc */

  /* A snapshot hands over what a publish would send. It also resets the
   * interval, exactly as a publish does, so what it takes is not published:
   * leave snapshots to tests. (A monotonic counter reports nothing until its
   * second snapshot, so net.bytesIn is not in this list.) */
  spectator_measurements_t *ms = spectator_registry_snapshot(spectator_global_registry());
  printf("%zu measurements (op 0 = add, 10 = max):\n", spectator_measurements_count(ms));
  for (size_t i = 0; i < spectator_measurements_count(ms); i++) {
    const spectator_measurement_t *m = spectator_measurements_get(ms, i);
    char id[256];
    spectator_id_format(m->id, id, sizeof(id));
    printf("  %s %d %g\n", id, m->op, m->value);
  }
  spectator_measurements_free(ms);

  /* Stop publishing and send what is pending (also done at exit). */
  spectator_stop();
  return 0;
}
