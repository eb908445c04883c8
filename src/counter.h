/*
 * Private: the counter's layout (counter.c), for white-box tests of its
 * stripes. Nothing else in the library needs it: the registry sees counters
 * through their descriptor (meter.h).
 */
#ifndef SPECTATOR_COUNTER_H
#define SPECTATOR_COUNTER_H

#include "accum.h"
#include "meter.h"

/* 56 bytes: the header, the uncontended cell, the stripes word and the source
 * of stripes; one cache line. A stripe cell holds a spectator__dsum_t. */
struct spectator_counter {
  spectator__meter_t hdr;
  spectator__dsum_t sum;        /* the uncontended cell */
  _Atomic uintptr_t stripes;    /* see SPECTATOR__STRIPES_PENDING */
  spectator__stripe_src_t *src; /* the registry's; NULL for the no-op counter */
} SPECTATOR__ALIGNED;

#endif
