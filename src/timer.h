/*
 * Private: the layouts of timers (timer.c) and percentile timers
 * (percentile_timer.c), for white-box tests of their stripes. Nothing else in
 * the library needs them: the registry sees meters through their descriptors
 * (meter.h).
 */
#ifndef SPECTATOR_TIMER_H
#define SPECTATOR_TIMER_H

#include "accum.h"
#include "meter.h"

struct spectator_timer {
  spectator__meter_t hdr;
  spectator__timer_state_t st;
} SPECTATOR__ALIGNED;

struct spectator_percentile_timer {
  spectator__meter_t hdr;
  spectator__timer_state_t st;
  int64_t min_ns, max_ns; /* the range durations are clamped to */
  spectator__pct_counts_t buckets;
} SPECTATOR__ALIGNED;

#endif
