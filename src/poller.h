/*
 * Private: polled meters (poller.c). A registry's pollers are called at the
 * start of each of its snapshots, before the snapshot takes any lock, and
 * what they return is recorded into ordinary gauges and counters.
 */
#ifndef SPECTATOR_POLLER_H
#define SPECTATOR_POLLER_H

#include "common.h"

/* Give a new registry its (empty) list of pollers: 0 or SPECTATOR_ENOMEM. */
int spectator__pollers_init(spectator_registry_t *reg);
/* Free a registry's pollers (no snapshot may be running). */
void spectator__pollers_free(spectator_registry_t *reg);
/* Call every poller of the registry and record what they return. Called by
 * a snapshot before it takes the registry's locks. When another thread is
 * already calling them, returns at once: that call serves this snapshot too
 * (a poller's function never runs twice at the same time). */
void spectator__pollers_run(spectator_registry_t *reg);
/* A poll monotonic counter (counter true) or poll gauge of the library's own
 * (process metrics): its meter is outside max_meters, as every meter the
 * library makes for itself. As the public calls otherwise. */
spectator_poller_t *spectator__poll_self(spectator_registry_t *reg, bool counter, const char *name,
                                         const char *const *tags, spectator_poll_fn fn, void *ctx);
/* True on a thread that is inside a poller's function. */
bool spectator__in_poll_fn(void);
/* At process exit: from now on no poller's function is called (the exit
 * flush reports the values of the last run). The application's data they
 * read may already be gone, and exit must not wait for application code. */
void spectator__pollers_exiting(void);

/* Fork hooks (fork.c calls them after the registries' prefork hook, which
 * holds the list of live registries): each registry's poller lock is held
 * across fork(); in the child, calls the parent's other threads were making
 * are forgotten. */
void spectator__pollers_prefork(void);
void spectator__pollers_postfork_parent(void);
void spectator__pollers_postfork_child(void);

#endif
