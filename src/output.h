/*
 * Private: the outputs that write spectatord's line protocol (output.c):
 * memory, stdout, stderr, file, udp and unix, beside the Atlas aggregator's
 * HTTP client (http.c), under the publisher.
 */
#ifndef SPECTATOR_OUTPUT_H
#define SPECTATOR_OUTPUT_H

#include "registry.h"

typedef struct spectator__output spectator__output_t;

/* Choose a new registry's output from cfg.output_location (before any meter
 * exists): a bad location is logged and the aggregator is used. For a line
 * output, make it with its sample rings (reg->output, reg->samples,
 * reg->fence). 0 or SPECTATOR_ENOMEM (logged). */
int spectator__output_init(spectator_registry_t *reg, const spectator_config_t *caller_cfg);
/* Timer and summary samples a line output holds that no publish has taken,
 * and those its full buffers refused and no publish counted yet: what is
 * lost when no publish comes. 0 without a line output. Any thread. */
uint64_t spectator__output_unsent_samples(const spectator_registry_t *reg);
/* Free a registry's output once its publisher is stopped (NULL: nothing). */
void spectator__output_free(spectator_registry_t *reg);

/* One publish of a line output, on the calling thread: the samples so far
 * and every meter measured into lines, then everything written is sent (by
 * deadline_ns, CLOCK_MONOTONIC; 0: no limit). The publishing thread runs it
 * every interval (publisher.c); reading the memory output and benchmarks run
 * it too. Returns the bytes of the lines sent. */
uint64_t spectator__output_cycle(spectator_registry_t *reg, int64_t deadline_ns);
/* For the publishing thread, between publishes: when the next drain of the
 * sample rings is due (at least ten an interval, at most 100 ms apart, down
 * to 1 ms while rings fill up), capped at next_publish_ns; and the drain
 * itself, whose lines are sent at once (by deadline_ns). Returns the bytes
 * sent. */
int64_t spectator__output_next_drain(spectator_registry_t *reg, int64_t next_publish_ns);
uint64_t spectator__output_drain(spectator_registry_t *reg, int64_t deadline_ns);

/* Fork hooks (fork.c calls them in order): prefork holds every output's cycle
 * lock (before the registries' locks: a cycle takes them inside its own);
 * the child forgets every line and sample of the parent. */
void spectator__outputs_prefork(void);
void spectator__outputs_postfork_parent(void);
void spectator__outputs_postfork_child(void);

#endif
