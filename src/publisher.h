/*
 * Private: the publisher (publisher.c), one background thread per started
 * registry, and the flush at process exit.
 */
#ifndef SPECTATOR_PUBLISHER_H
#define SPECTATOR_PUBLISHER_H

#include "registry.h"

/* Give a new registry its (idle) publisher: 0 or SPECTATOR_ENOMEM. */
int spectator__publisher_init(spectator_registry_t *reg);
/* Start publishing (idempotent): 0, SPECTATOR_EHTTP or SPECTATOR_ETHREAD. */
int spectator__publisher_start(spectator_registry_t *reg);
/* Stop publishing, with a final flush bounded by the timeout (idempotent). */
void spectator__publisher_stop(spectator_registry_t *reg);
/* Free a stopped registry's publisher. */
void spectator__publisher_free(spectator_registry_t *reg);

/* Fork hooks (fork.c calls them in order, between the registries' prefork and
 * postfork hooks, which hold the list of live registries): each publisher's
 * state lock is held across fork(); in the child the parent's connections are
 * abandoned and publishing restarts where it was running. */
void spectator__publishers_prefork(void);
void spectator__publishers_postfork_parent(void);
void spectator__publishers_postfork_child(void);

#endif
