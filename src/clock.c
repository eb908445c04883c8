/*
 * The monotonic clock, condition variables that wait on it, and the
 * stopwatch's clock reads.
 */
#include <time.h>

#include "clock.h"

int64_t spectator__monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
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
