/*
 * Private: configuration (config.c): validation, boolean flags and the common
 * tags of the environment. The defaults and SPECTATOR_* variables are the
 * public spectator_config_init() and spectator_config_from_env().
 */
#ifndef SPECTATOR_CONFIG_H
#define SPECTATOR_CONFIG_H

#include "common.h"

/* Parse a boolean flag as SPECTATOR_DISABLE_AUTO_START does: 1/true/yes
 * (case-insensitive, trimmed) is true, 0/false/no/empty is false; anything else
 * is false and logged. */
bool spectator__parse_flag(const char *name, const char *value);
/* Common tags from the environment: the Netflix variables (first non-empty,
 * trimmed; nf.ami is not read) then SPECTATOR_COMMON_TAGS, without the keys
 * ATLAS_SKIP_COMMON_TAGS names. Returns a NULL-terminated alternating
 * array allocated as one block (free() it), or NULL when memory runs out. */
char **spectator__env_common_tags(void);
/* The least publish interval and request timeout accepted, in seconds. */
#define SPECTATOR__MIN_FREQUENCY_S 0.01
#define SPECTATOR__MIN_TIMEOUT_S 0.001
/* Settings that are valid but absurd (positive, below the floors above) are
 * logged on spectator.init and replaced by their defaults. */
void spectator__config_apply_floors(spectator_config_t *cfg);
/* True when ATLAS_SKIP_COMMON_TAGS (comma-separated keys, each trimmed) names
 * the len bytes at key. */
bool spectator__env_skips_common_tag(const char *key, size_t len);
/* Validate a config; logs on spectator.init; 0 or SPECTATOR_EINVAL. */
int spectator__config_validate(const spectator_config_t *cfg);
/* Bytes of spectator_config_t in release 0.1.0 (up to clock_ctx), which its
 * entry points spectator_config_init/_from_env and spectator_registry_new
 * write and read. */
#define SPECTATOR__CONFIG_SIZE_0_1 (offsetof(spectator_config_t, clock_ctx) + sizeof(void *))
/* A full config from the caller's first `size` bytes of in (the caller's
 * sizeof(spectator_config_t)), defaults for the rest; in NULL gives the
 * defaults. Returns 0. */
int spectator__config_load(spectator_config_t *out, const spectator_config_t *in, size_t size);

#endif
