/*
 * fork() safety.
 *
 * DESIGN
 * pthread_atfork handlers, installed once when the first registry is created,
 * make fork() safe at any moment and from any thread. Each module owns what
 * it locks and resets, in hooks named <module>_prefork, _postfork_parent and
 * _postfork_child; this file only calls them in a fixed order:
 *
 * - prepare takes every library lock: the line outputs' cycle locks (a
 *   cycle takes the registry's locks inside its own), the registries' (the
 *   list of live registries, then each registry's snapshot and insert locks),
 *   each registry's poller lock, the publishers' state locks, then the log
 *   handler lock. None of these is ever
 *   held across network I/O or a user callback, so prepare waits at most for
 *   a lookup miss or a snapshot to finish, never for the network. Recording
 *   takes no lock at all and is never blocked.
 * - the parent releases them in reverse order.
 * - the child re-initializes them (their owners and waiters were threads that
 *   do not exist here), the lookups other threads were in are forgotten
 *   (smr.h), the registries drop the interval state the parent had
 *   pending (the parent reports it), the line outputs forget the lines and
 *   samples the parent buffered (the parent sends them), and the publishers,
 *   last, when everything
 *   a publishing thread touches is consistent again, abandon the parent's
 *   connections and restart publishing where the parent was publishing (or
 *   inside its stop). Meter pointers stay valid: meters are never moved or
 *   freed. No child hook calls into libcurl, allocates, or waits: the new
 *   publishing thread uses libcurl handles made ahead in the parent, since
 *   libcurl's global lock may be held forever in the child (publisher.c and
 *   http.c, FORK).
 */
#include <pthread.h>

#include "fork.h"
#include "log.h"
#include "output.h"
#include "poller.h"
#include "publisher.h"
#include "registry.h"
#include "smr.h"

static void prepare(void) {
  spectator__outputs_prefork();
  spectator__registries_prefork();
  spectator__pollers_prefork();
  spectator__publishers_prefork();
  spectator__log_prefork();
}

static void parent(void) {
  spectator__log_postfork_parent();
  spectator__publishers_postfork_parent();
  spectator__pollers_postfork_parent();
  spectator__registries_postfork_parent();
  spectator__outputs_postfork_parent();
}

static void child(void) {
  spectator__log_postfork_child();
  spectator__smr_postfork_child();
  spectator__registries_postfork_child();
  spectator__pollers_postfork_child();
  spectator__outputs_postfork_child();
  spectator__publishers_postfork_child();
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void install(void) { pthread_atfork(prepare, parent, child); }

void spectator__fork_init(void) { pthread_once(&once, install); }
