/*
 * The monotonic clock, condition variables and timed lock and join waits on
 * it, and the stopwatch's clock reads.
 */
#include <errno.h>
#include <time.h>

#include "clock.h"

int64_t spectator__monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * SPECTATOR__NS_PER_S + ts.tv_nsec;
}

int64_t spectator__realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * SPECTATOR__NS_PER_S + ts.tv_nsec;
}

void spectator__cond_init_monotonic(pthread_cond_t *cv) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &ca);
  pthread_condattr_destroy(&ca);
}

int spectator__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t until_ns) {
  struct timespec ts;
  ts.tv_sec = (time_t)(until_ns / SPECTATOR__NS_PER_S);
  ts.tv_nsec = (long)(until_ns % SPECTATOR__NS_PER_S);
  return pthread_cond_timedwait(cv, mu, &ts);
}

static struct timespec to_timespec(int64_t ns) {
  struct timespec ts = {(time_t)(ns / SPECTATOR__NS_PER_S), (long)(ns % SPECTATOR__NS_PER_S)};
  return ts;
}

/* The timed waits of POSIX count in CLOCK_REALTIME, which can jump. They are
 * made in slices of at most WAIT_SLICE_NS, each ending at a REALTIME time
 * computed from the remaining CLOCK_MONOTONIC time, so a jump moves the end of
 * the wait by one slice at most. (The CLOCK_MONOTONIC variants glibc has,
 * pthread_mutex_clocklock and pthread_clockjoin_np, are not used: the thread
 * sanitizer does not follow them.) */
#define WAIT_SLICE_NS (10 * 1000 * 1000LL)

/* The end of the next slice towards deadline_ns, in CLOCK_REALTIME; false
 * when the deadline has passed. */
static bool next_slice(int64_t deadline_ns, struct timespec *ts) {
  int64_t left = deadline_ns - spectator__monotonic_ns();
  if (left <= 0) return false;
  if (left > WAIT_SLICE_NS) left = WAIT_SLICE_NS;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  *ts = to_timespec((int64_t)now.tv_sec * SPECTATOR__NS_PER_S + now.tv_nsec + left);
  return true;
}

int spectator__mutex_lock_until(pthread_mutex_t *mu, int64_t deadline_ns) {
  int rc = pthread_mutex_trylock(mu);
  struct timespec ts;
  while (rc == EBUSY || rc == ETIMEDOUT) {
    if (!next_slice(deadline_ns, &ts)) return ETIMEDOUT;
    rc = pthread_mutex_timedlock(mu, &ts);
  }
  return rc;
}

int spectator__join_until(pthread_t t, int64_t deadline_ns) {
#ifdef __GLIBC__
  struct timespec ts;
  int rc = ETIMEDOUT;
  while (rc == ETIMEDOUT && next_slice(deadline_ns, &ts)) rc = pthread_timedjoin_np(t, NULL, &ts);
  return rc;
#else
  (void)deadline_ns; /* no timed join: callers join threads that have finished their work */
  return pthread_join(t, NULL);
#endif
}

spectator_stopwatch_t spectator_stopwatch_start(void) {
  spectator_stopwatch_t sw = {spectator__monotonic_ns()};
  return sw;
}

int64_t spectator_stopwatch_elapsed_ns(spectator_stopwatch_t sw) {
  /* A stopwatch is a plain value: a garbage start must not overflow. */
  int64_t now = spectator__monotonic_ns();
  if (sw.start_ns >= now) return 0;
  uint64_t d = (uint64_t)now - (uint64_t)sw.start_ns;
  return d > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)d;
}
