/*
 * Private: the process metrics (process_metrics.c), polled meters a registry
 * gets when cfg.process_metrics is set.
 */
#ifndef SPECTATOR_PROCESS_METRICS_H
#define SPECTATOR_PROCESS_METRICS_H

#include "common.h"

/* Add the process metrics' pollers to a new registry (failures are logged;
 * the registry works without them). */
void spectator__process_metrics_register(spectator_registry_t *reg);

/* The readings, for tests: NaN when the system cannot tell. */
double spectator__process_cpu_seconds(bool system);
double spectator__process_resident_bytes(void);
double spectator__process_open_fds(void);
double spectator__process_max_fds(void);
double spectator__process_threads(void);

#endif
