/* Shared fixture of the tests that publish to the local test aggregator:
 * one aggregator per test program, reset before each test, and registries
 * that publish to it. Include after <cmocka.h>. */
#ifndef SPECTATOR_AGG_FIXTURE_H
#define SPECTATOR_AGG_FIXTURE_H

#include <math.h>

#include "aggregator.h"
#include "spectator.h"

static agg_t *agg;

static inline int agg_fixture_setup(void **state) {
  (void)state;
  agg = agg_start(0);
  return agg ? 0 : -1;
}

static inline int agg_fixture_teardown(void **state) {
  (void)state;
  agg_stop(agg);
  return 0;
}

static inline int reset(void **state) {
  (void)state;
  agg_reset(agg);
  return 0;
}

/* A registry publishing to uri every freq seconds; no environment tags, no
 * flush at exit (tests stop their registries themselves). */
static inline spectator_registry_t *new_reg(const char *uri, double freq, double timeout) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.uri = uri;
  cfg.frequency_s = freq;
  cfg.timeout_s = cfg.connect_timeout_s = timeout;
  cfg.env_common_tags = 0;
  cfg.flush_at_exit = 0;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  assert_non_null(r);
  return r;
}

/* The aggregated value of a series (statistic included in tags), NaN if absent. */
static inline double agg_value(const char *name, const char *const *tags) {
  double v = NAN;
  return agg_get(agg, name, tags, &v) == 0 ? v : NAN;
}

#endif
