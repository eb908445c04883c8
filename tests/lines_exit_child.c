/* Used by test_outputs: records through the global API, then returns from
 * main without calling spectator_stop(). The at-exit flush must deliver every
 * line to SPECTATOR_OUTPUT_LOCATION (SPECTATOR_FREQUENCY long enough that no
 * interval passes).
 *
 * With LINES_EXIT_LATE set it stops publishing first and records after the
 * stop instead, with the library's log lines on stdout: what no publish will
 * send must be reported when the process ends. */
#include <spectator.h>
#include <stdio.h>
#include <stdlib.h>

static void to_stdout(spectator_log_level_t level, const char *logger, const char *message,
                      void *ctx) {
  (void)level;
  (void)ctx;
  printf("%s: %s\n", logger, message);
  fflush(stdout);
}

int main(void) {
  if (getenv("LINES_EXIT_LATE")) {
    spectator_log_set_handler(to_stdout, NULL);
    spectator_timer_record(spectator_timer("late.timer", NULL), 0.5);
    spectator_stop();
    for (int i = 0; i < 3; i++) spectator_timer_record(spectator_timer("late.timer", NULL), 0.5);
    spectator_counter_increment(spectator_counter("late.counter", NULL));
    return 0;
  }
  spectator_counter_add(spectator_counter("exit.counter", SPECTATOR_TAGS("key", "v")), 41);
  spectator_counter_increment(spectator_counter("exit.counter", SPECTATOR_TAGS("key", "v")));
  spectator_timer_record(spectator_timer("exit.timer", NULL), 0.5);
  spectator_timer_record_ns(spectator_timer("exit.timer", NULL), 250000000);
  spectator_dist_summary_record(spectator_dist_summary("exit.summary", NULL), 3);
  spectator_gauge_set(spectator_gauge("exit.gauge", NULL), 7);
  return 0;
}
