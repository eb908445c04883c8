/*
 * fork() safety.
 *
 * DESIGN
 * pthread_atfork handlers, registered once when the first registry is created,
 * make fork() safe at any moment and from any thread:
 *
 * - prepare takes every library lock in one fixed order: the list of live
 *   registries, then for each registry its insert lock, its snapshot lock and
 *   its publisher lock, then the log handler lock. None of these is ever held
 *   across network I/O or a user callback, so prepare waits at most for a
 *   lookup miss or a snapshot to finish, never for the network. Recording
 *   takes no lock at all and is never blocked.
 * - the parent releases them in reverse order.
 * - the child re-initializes every lock and condition variable (their owners
 *   and waiters were threads that do not exist here), drops the interval state
 *   the parent had pending (the parent reports it; gauges forget their value,
 *   so the child reports only what it records itself), abandons the parent's
 *   libcurl handle without cleaning it up (cleanup could write a TLS
 *   close_notify on the parent's connection; the socket is only closed in this
 *   process) and starts a new publishing thread when the parent's was running.
 *   Meter pointers stay valid: meters are never moved or freed.
 */
#include "internal.h"

static void prepare(void) {
  spectator__registries_lock();
  for (spectator_registry_t *r = spectator__registries_head(); r; r = r->next_all) {
    pthread_mutex_lock(&r->lock);
    pthread_mutex_lock(&r->snap_lock);
    spectator__publisher_fork_lock(r);
  }
  spectator__log_fork_lock();
}

static void parent(void) {
  spectator__log_fork_unlock();
  for (spectator_registry_t *r = spectator__registries_head(); r; r = r->next_all) {
    spectator__publisher_fork_unlock(r);
    pthread_mutex_unlock(&r->snap_lock);
    pthread_mutex_unlock(&r->lock);
  }
  spectator__registries_unlock();
}

static void child(void) {
  spectator__log_fork_child();
  for (spectator_registry_t *r = spectator__registries_head(); r; r = r->next_all) {
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->snap_lock, NULL);
    size_t n = atomic_load_explicit(&r->count, memory_order_relaxed);
    for (size_t i = 0; i < n; i++)
      spectator__meter_discard(r->chunks[i / SPECTATOR__CHUNK][i % SPECTATOR__CHUNK]);
  }
  spectator__registries_child_reinit();
  /* Restart publishers last: everything they touch is consistent now. */
  for (spectator_registry_t *r = spectator__registries_head(); r; r = r->next_all)
    spectator__publisher_fork_child(r);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void install(void) { pthread_atfork(prepare, parent, child); }

void spectator__fork_init(void) { pthread_once(&once, install); }
