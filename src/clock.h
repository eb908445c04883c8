/*
 * Private: the monotonic clock (clock.c). Registries may have a clock of their
 * own (spectator_config_t.clock, for TTLs and expiry; see registry.h), but
 * waits and deadlines always use CLOCK_MONOTONIC, which is what condition
 * variables wait on.
 */
#ifndef SPECTATOR_CLOCK_H
#define SPECTATOR_CLOCK_H

#include <pthread.h>

#include "common.h"

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t spectator__monotonic_ns(void);
/* CLOCK_REALTIME in nanoseconds since the Unix epoch. */
int64_t spectator__realtime_ns(void);
/* A registry's clock: fn(ctx) when a clock was configured, else
 * CLOCK_MONOTONIC. */
static inline int64_t spectator__clock_now(spectator_clock_fn fn, void *ctx) {
  return fn ? fn(ctx) : spectator__monotonic_ns();
}
/* Initialize a condition variable whose timed waits use CLOCK_MONOTONIC
 * deadlines (spectator__monotonic_ns values). */
void spectator__cond_init_monotonic(pthread_cond_t *cv);
/* Wait on cv (mu held) until the CLOCK_MONOTONIC time until_ns or a signal;
 * returns like pthread_cond_timedwait (0, or ETIMEDOUT). */
int spectator__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t until_ns);
/* Lock mu, giving up at the CLOCK_MONOTONIC time deadline_ns: 0, or
 * ETIMEDOUT. A deadline already past only tries the lock. For the exit path,
 * where a lock may be held by a thread that never returns. */
int spectator__mutex_lock_until(pthread_mutex_t *mu, int64_t deadline_ns);
/* Join t, giving up at the CLOCK_MONOTONIC time deadline_ns: 0, or
 * ETIMEDOUT. */
int spectator__join_until(pthread_t t, int64_t deadline_ns);

#endif
