/*
 * demo: an application that records every meter type for a while, publishing
 * to the aggregator named by SPECTATOR_URI every SPECTATOR_FREQUENCY seconds.
 * scripts/demo.sh runs it against the local test aggregator, which prints
 * what arrives.
 *
 *   SPECTATOR_URI=http://127.0.0.1:7101/api/v4/update ./demo [seconds]
 */
#include <spectator.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
  int seconds = argc > 1 ? atoi(argv[1]) : 15;
  if (seconds <= 0) seconds = 15;

  /* Look meters up once; recording on the pointers is a few atomic adds. */
  spectator_counter_t *ok = spectator_counter(
      "demo.requests", SPECTATOR_TAGS("endpoint", "/home", "status", "2xx"));
  spectator_counter_t *err = spectator_counter(
      "demo.requests", SPECTATOR_TAGS("endpoint", "/home", "status", "5xx"));
  spectator_timer_t *latency = spectator_timer("demo.latency", SPECTATOR_TAGS("endpoint", "/home"));
  spectator_dist_summary_t *size = spectator_dist_summary("demo.responseSize", NULL);
  spectator_gauge_t *queue = spectator_gauge("demo.queueDepth", NULL);
  spectator_max_gauge_t *inflight = spectator_max_gauge("demo.inflight", NULL);
  spectator_monotonic_counter_t *bytes = spectator_monotonic_counter("demo.bytesRead", NULL);
  spectator_percentile_timer_t *p_latency =
      spectator_percentile_timer("demo.latencyPct", NULL, 0.001, 1.0);

  int rc = spectator_start(); /* also started on first use unless disabled */
  if (rc != 0)
    fprintf(stderr, "demo: not publishing (%s); set SPECTATOR_URI\n", spectator_strerror(rc));

  unsigned seed = 42;
  double total_bytes = 0;
  printf("demo: recording for %d s\n", seconds);
  fflush(stdout);
  for (int tick = 0; tick < seconds * 10; tick++) {
    for (int r = 0; r < 20; r++) {
      double secs = 0.005 + (rand_r(&seed) % 100) / 1000.0;
      spectator_timer_record(latency, secs);
      spectator_percentile_timer_record(p_latency, secs);
      spectator_dist_summary_record(size, 200 + rand_r(&seed) % 800);
      if (rand_r(&seed) % 20 == 0)
        spectator_counter_increment(err);
      else
        spectator_counter_increment(ok);
    }
    spectator_gauge_set(queue, rand_r(&seed) % 10);
    spectator_max_gauge_set(inflight, rand_r(&seed) % 50);
    total_bytes += 1000;
    spectator_monotonic_counter_set(bytes, total_bytes);
    sleep_ms(100);
  }
  spectator_stop(); /* final flush */
  printf("demo: done\n");
  return 0;
}
