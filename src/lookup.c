/*
 * The public lookups of every meter type, on an explicit registry
 * (spectator_registry_counter, ..._id) and on the global one
 * (spectator_counter), generated from the list of types in meter.h, and the
 * one-shot calls (spectator_record). The gauge's TTL variants are the only
 * hand-written lookups. The polled meters of the global registry
 * (spectator_poll_gauge...) are here too; poller.c has the rest.
 */
#include "registry.h"

#define LOOKUPS_PLAIN(NAME, stem)                                                                 \
  spectator_##stem##_t *spectator_registry_##stem(spectator_registry_t *reg, const char *name,    \
                                                  const char *const *tags) {                      \
    return spectator__registry_lookup(reg, SPECTATOR__##NAME, name, NULL, tags, NULL);            \
  }                                                                                               \
  spectator_##stem##_t *spectator_registry_##stem##_id(spectator_registry_t *reg,                 \
                                                       const spectator_id_t *id) {                \
    if (SPECTATOR__UNLIKELY(!id)) return spectator__registry_null_id(reg, SPECTATOR__##NAME);     \
    return spectator__registry_lookup(reg, SPECTATOR__##NAME, NULL, id, NULL, NULL);              \
  }                                                                                               \
  spectator_##stem##_t *spectator_##stem(const char *name, const char *const *tags) {             \
    return spectator__registry_lookup(spectator_global_registry(), SPECTATOR__##NAME, name, NULL, \
                                      tags, NULL);                                                \
  }

/* Percentile meters: a range in seconds (timers) or base units (summaries). */
#define LOOKUPS_RANGE(NAME, stem)                                                                 \
  spectator_##stem##_t *spectator_registry_##stem(spectator_registry_t *reg, const char *name,    \
                                                  const char *const *tags, double min,            \
                                                  double max) {                                   \
    spectator__meter_params_t p = {0, min, max};                                                  \
    return spectator__registry_lookup(reg, SPECTATOR__##NAME, name, NULL, tags, &p);              \
  }                                                                                               \
  spectator_##stem##_t *spectator_registry_##stem##_id(                                           \
      spectator_registry_t *reg, const spectator_id_t *id, double min, double max) {              \
    if (SPECTATOR__UNLIKELY(!id)) return spectator__registry_null_id(reg, SPECTATOR__##NAME);     \
    spectator__meter_params_t p = {0, min, max};                                                  \
    return spectator__registry_lookup(reg, SPECTATOR__##NAME, NULL, id, NULL, &p);                \
  }                                                                                               \
  spectator_##stem##_t *spectator_##stem(const char *name, const char *const *tags, double min,   \
                                         double max) {                                            \
    spectator__meter_params_t p = {0, min, max};                                                  \
    return spectator__registry_lookup(spectator_global_registry(), SPECTATOR__##NAME, name, NULL, \
                                      tags, &p);                                                  \
  }

#define LOOKUPS(NAME, stem, shape) LOOKUPS_##shape(NAME, stem)
SPECTATOR__METER_TYPE_MAP(LOOKUPS)

spectator_gauge_t *spectator_registry_gauge_with_ttl(spectator_registry_t *reg, const char *name,
                                                     const char *const *tags, double ttl_s) {
  spectator__meter_params_t p = {ttl_s, 0, 0};
  return spectator__registry_lookup(reg, SPECTATOR__GAUGE, name, NULL, tags, &p);
}

spectator_gauge_t *spectator_registry_gauge_with_ttl_id(spectator_registry_t *reg,
                                                        const spectator_id_t *id, double ttl_s) {
  if (SPECTATOR__UNLIKELY(!id)) return spectator__registry_null_id(reg, SPECTATOR__GAUGE);
  spectator__meter_params_t p = {ttl_s, 0, 0};
  return spectator__registry_lookup(reg, SPECTATOR__GAUGE, NULL, id, NULL, &p);
}

/* The public meter types are the internal ones, in the same order. */
#define CHECK_TYPE(NAME, stem, shape) \
  _Static_assert((int)SPECTATOR_METER_##NAME == (int)SPECTATOR__##NAME, "same order");
SPECTATOR__METER_TYPE_MAP(CHECK_TYPE)

void spectator_registry_record(spectator_registry_t *reg, spectator_meter_type_t type,
                               const char *name, const char *const *tags, double value) {
  if (SPECTATOR__UNLIKELY((unsigned)type < SPECTATOR__METER_TYPES &&
                          !spectator__meter_types[type]->record)) {
    static spectator__ratelimit_t rl_none;
    SPECTATOR__LOG_LIMITED(&rl_none, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                           "spectator_record: a %s has no one-shot form; '%.*s' not recorded",
                           spectator__meter_types[type]->name, SPECTATOR__LOG_STR(name));
    return;
  }
  if (SPECTATOR__UNLIKELY((unsigned)type >= SPECTATOR__METER_TYPES)) {
    static spectator__ratelimit_t rl_type;
    SPECTATOR__LOG_LIMITED(&rl_type, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                           "spectator_record with meter type %d, which is not one; '%.*s' not "
                           "recorded",
                           (int)type, SPECTATOR__LOG_STR(name));
    return;
  }
  spectator__registry_record(reg, (spectator__type_t)type, name, tags, value);
}

void spectator_record(spectator_meter_type_t type, const char *name, const char *const *tags,
                      double value) {
  spectator_registry_record(spectator_global_registry(), type, name, tags, value);
}

spectator_poller_t *spectator_poll_gauge(const char *name, const char *const *tags,
                                         spectator_poll_fn fn, void *ctx) {
  return spectator_registry_poll_gauge(spectator_global_registry(), name, tags, fn, ctx);
}

spectator_poller_t *spectator_poll_monotonic_counter(const char *name, const char *const *tags,
                                                     spectator_poll_fn fn, void *ctx) {
  return spectator_registry_poll_monotonic_counter(spectator_global_registry(), name, tags, fn,
                                                   ctx);
}
