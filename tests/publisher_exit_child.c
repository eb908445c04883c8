/* Used by test_publisher: records through the global API, then returns from
 * main without calling spectator_stop(). The at-exit flush must deliver it.
 * SPECTATOR_URI and SPECTATOR_FREQUENCY come from the environment. */
#include <spectator.h>

int main(void) {
  spectator_counter_add(spectator_counter("exit.counter", SPECTATOR_TAGS("key", "v")), 41);
  spectator_counter_increment(spectator_counter("exit.counter", SPECTATOR_TAGS("key", "v")));
  spectator_timer_record(spectator_timer("exit.timer", NULL), 0.5);
  spectator_gauge_set(spectator_gauge("exit.gauge", NULL), 7);
  return 0;
}
