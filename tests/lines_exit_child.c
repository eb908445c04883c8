/* Used by test_outputs: records through the global API, then returns from
 * main without calling spectator_stop(). The at-exit flush must deliver every
 * line to SPECTATOR_OUTPUT_LOCATION (SPECTATOR_FREQUENCY long enough that no
 * interval passes). */
#include <spectator.h>

int main(void) {
  spectator_counter_add(spectator_counter("exit.counter", SPECTATOR_TAGS("key", "v")), 41);
  spectator_counter_increment(spectator_counter("exit.counter", SPECTATOR_TAGS("key", "v")));
  spectator_timer_record(spectator_timer("exit.timer", NULL), 0.5);
  spectator_timer_record_ns(spectator_timer("exit.timer", NULL), 250000000);
  spectator_dist_summary_record(spectator_dist_summary("exit.summary", NULL), 3);
  spectator_gauge_set(spectator_gauge("exit.gauge", NULL), 7);
  return 0;
}
