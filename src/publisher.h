/*
 * Private: the publisher (publisher.c), one background thread per started
 * registry, the flush at process exit (bounded), and the report, at the very
 * end of the process, of what no publish will send.
 */
#ifndef SPECTATOR_PUBLISHER_H
#define SPECTATOR_PUBLISHER_H

#include "encoder.h"
#include "registry.h"

/* Give a new registry its (idle) publisher: 0 or SPECTATOR_ENOMEM. */
int spectator__publisher_init(spectator_registry_t *reg);
/* Start publishing (idempotent): 0, SPECTATOR_EHTTP or SPECTATOR_ETHREAD. The
 * first start that initializes libcurl registers the exit flush (after the TLS
 * library registered its own cleanup, so that ours runs first). */
int spectator__publisher_start(spectator_registry_t *reg);
/* Stop publishing, with a final flush bounded by the timeout (idempotent). */
void spectator__publisher_stop(spectator_registry_t *reg);
/* Free a stopped registry's publisher. */
void spectator__publisher_free(spectator_registry_t *reg);
/* What publishing has cost so far: nanoseconds spent in publish cycles
 * (measuring, encoding, sending) and bytes of request bodies sent (each
 * attempt counts). Lock-free; 0 and 0 before the first publish. */
void spectator__publisher_cost(const spectator_registry_t *reg, uint64_t *ns, uint64_t *bytes);

/* For an output's waits on the network (output.c): true once a stop was
 * asked for (no lock taken when not), with the stop's deadline. */
bool spectator__publisher_stopping(spectator_registry_t *reg, int64_t *stop_deadline_ns);

/* What one publish cycle did with the registry's measurements. */
typedef struct {
  size_t measurements; /* datapoints in bodies handed to send */
  size_t batches;      /* bodies */
  size_t bytes;        /* their bytes */
  size_t unencodable;  /* records with more tags than a datapoint carries */
  size_t lost;         /* records lost to a failed allocation while measuring */
  size_t failed;       /* records lost to a failed allocation while encoding */
  size_t late;         /* records measured too late to be sent, or left when send said stop */
  size_t unmeasured;   /* meters not measured: the snapshot lock was not free by the
                          deadline (they keep their values) */
} spectator__stream_t;

/* Takes a body (borrowed for the call); false ends the cycle at once, leaving
 * the meters not measured yet for the next one. */
typedef bool (*spectator__body_fn)(void *ctx, const spectator__batch_t *body);

/* A publish cycle without its network part: the registry is measured batch by
 * batch (cfg.batch_size records, the snapshot lock held only while
 * measuring), each batch encoded at gzip_level and handed to send. After
 * deadline_ns (CLOCK_MONOTONIC; 0: none) the rest is measured and dropped
 * (counted in st->late); a snapshot lock not free by then ends the cycle
 * (the meters not measured are counted in st->unmeasured). Returns 0, or the encoder's error
 * (everything was then measured and dropped). The publisher's thread runs it with a send that
 * POSTs; benchmarks run it with one that does not. */
int spectator__publish_stream(spectator_registry_t *reg, int gzip_level, int64_t deadline_ns,
                              spectator__body_fn send, void *ctx, spectator__stream_t *st);

/* Fork hooks (fork.c calls them in order, between the registries' prefork and
 * postfork hooks, which hold the list of live registries): each publisher's
 * state lock is held across fork(); in the child the parent's connections are
 * abandoned and publishing restarts where it was running or stopping, with
 * libcurl handles made ahead (no libcurl call, no allocation in the hook). */
void spectator__publishers_prefork(void);
void spectator__publishers_postfork_parent(void);
void spectator__publishers_postfork_child(void);

#endif
