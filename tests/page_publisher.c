/*
 * page_publisher: publishes known values with the real library to the
 * aggregator at argv[1] (its /api/v4/update URL), for the browser test of the
 * aggregator's page (aggregator_page.sh). Each run is one registry and one
 * publish, the final flush of spectator_registry_free(), which returns once
 * the aggregator has answered.
 *
 *   page_publisher URL    page.requests{status=200} count 7.5 (7 increments
 *                         and 0.5), page.queue gauge 3, page.latency 1.5 s
 *   page_publisher URL 2  page.requests{status=200} count 2.5
 * The browser test checks what arrived.
 */
#include <spectator.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: page_publisher URL [2]\n");
    return 2;
  }
  int second = argc > 2 && strcmp(argv[2], "2") == 0;
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.uri = argv[1];
  cfg.env_common_tags = 0;
  cfg.auto_start = 1;
  cfg.frequency_s = 3600; /* only the final flush publishes */
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  if (!reg) return 1;
  spectator_counter_t *c =
      spectator_registry_counter(reg, "page.requests", SPECTATOR_TAGS("status", "200"));
  if (second) {
    spectator_counter_add(c, 2.5);
  } else {
    for (int i = 0; i < 7; i++) spectator_counter_increment(c);
    spectator_counter_add(c, 0.5);
    spectator_gauge_set(spectator_registry_gauge(reg, "page.queue", NULL), 3);
    spectator_timer_record(spectator_registry_timer(reg, "page.latency", NULL), 1.5);
  }
  spectator_registry_free(reg); /* stops: the final flush publishes */
  return 0;
}
