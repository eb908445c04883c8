/*
 * Lifecycle: registries are created, started, stopped and freed here, and the
 * global registry behind spectator_counter() and friends lives here.
 *
 * A registry is made of the meter store (registry.c) and, from its creation,
 * a publisher (publisher.c) that is idle until started. Created registries
 * join the list of live registries that the fork hooks (fork.c) and the exit
 * flush (publisher.c) walk; freeing one leaves that list first, so neither
 * sees a registry being torn down.
 */
#include "config.h"
#include "fork.h"
#include "location.h"
#include "output.h"
#include "poller.h"
#include "process_metrics.h"
#include "publisher.h"
#include "registry.h"

/* Stopping or freeing a registry from inside a poller's function would wait
 * for the publishing thread that may be the caller, or free the run the
 * caller is part of: refused. */
static bool refused_in_poll_fn(spectator__ratelimit_t *rl, const char *what) {
  if (!spectator__in_poll_fn()) return false;
  SPECTATOR__LOG_LIMITED(rl, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                         "%s called from inside a poller's function: refused", what);
  return true;
}

spectator_registry_t *spectator_registry_new_size(const spectator_config_t *cfg_caller,
                                                  size_t size) {
  /* Only the caller's bytes are read: its struct may be older and smaller. */
  spectator_config_t cfg_copy;
  if (spectator__config_load(&cfg_copy, cfg_caller, size) != 0) return NULL;
  const spectator_config_t *cfg = &cfg_copy;
  if (spectator__config_validate(cfg) != 0) return NULL;
  spectator__config_apply_floors(&cfg_copy);
  spectator_registry_t *reg = spectator__registry_create(cfg);
  if (!reg) return NULL;
  /* The output first: meters made later record into its sample rings. */
  if (spectator__output_init(reg, cfg) != 0) {
    spectator__registry_destroy(reg);
    return NULL;
  }
  if (spectator__publisher_init(reg) != 0 || spectator__pollers_init(reg) != 0) {
    spectator__publisher_free(reg);
    spectator__output_free(reg);
    spectator__registry_destroy(reg);
    spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_INIT, "out of memory creating a registry");
    return NULL;
  }
  spectator__fork_init();
  spectator__registries_link(reg);
  if (reg->cfg.process_metrics) spectator__process_metrics_register(reg);
  if (reg->cfg.auto_start && (reg->cfg.uri || reg->output)) spectator_registry_start(reg);
  return reg;
}

/* The 0.1.0 entry point (the header maps the name to the sized one). */
spectator_registry_t *(spectator_registry_new)(const spectator_config_t *cfg) {
  return spectator_registry_new_size(cfg, SPECTATOR__CONFIG_SIZE_0_1);
}

void spectator_registry_free(spectator_registry_t *reg) {
  static spectator__ratelimit_t rl_free;
  if (!reg || refused_in_poll_fn(&rl_free, "spectator_registry_free")) return;
  if (reg->is_global) {
    /* Pointers to the global registry's meters are valid until the process
     * exits, in every part of the program: it is never freed. */
    static spectator__ratelimit_t rl_global;
    SPECTATOR__LOG_LIMITED(&rl_global, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY, "%s",
                           "spectator_registry_free() of the global registry ignored: it lives "
                           "until the process exits (spectator_stop() stops its publishing)");
    return;
  }
  /* Unlink first: from here on neither fork handlers nor exit see it. */
  spectator__registries_unlink(reg);
  spectator_registry_stop(reg);
  /* What the stop's flush did not send (never started, recorded after a
   * stop) goes with the registry: said once, as at exit. */
  size_t unsent = reg->cfg.uri || reg->output ? spectator__registry_take_unsent(reg) : 0;
  uint64_t samples = spectator__output_unsent_samples(reg);
  if (samples)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                   "spectator_registry_free(): %zu meter%s and %llu sample%s (timers and "
                   "distribution summaries) recorded after the last publish will never be sent",
                   unsent, unsent == 1 ? "" : "s", (unsigned long long)samples,
                   samples == 1 ? "" : "s");
  else if (unsent)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                   "spectator_registry_free(): %zu meter%s recorded values after the last "
                   "publish that will never be sent",
                   unsent, unsent == 1 ? "" : "s");
  spectator__publisher_free(reg);
  spectator__pollers_free(reg);
  spectator__output_free(reg);
  spectator__registry_destroy(reg);
}

int spectator_registry_start(spectator_registry_t *reg) {
  if (!reg) return SPECTATOR_EINVAL;
  if (reg->output_kind == SPECTATOR__OUT_NONE) return 0; /* nothing to send: no thread */
  if (!reg->cfg.uri && !reg->output) {
    static atomic_flag logged = ATOMIC_FLAG_INIT; /* logged once per process */
    if (!atomic_flag_test_and_set(&logged))
      spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT,
                     "no URI configured (SPECTATOR_URI): measurements are collected but not "
                     "published");
    return SPECTATOR_ENOURI;
  }
  return spectator__publisher_start(reg);
}

void spectator_registry_stop(spectator_registry_t *reg) {
  static spectator__ratelimit_t rl_stop;
  if (!reg || refused_in_poll_fn(&rl_stop, "spectator_registry_stop")) return;
  spectator__publisher_stop(reg);
}

/* ------------------------------------------------------------------------ */
/* The global registry                                                       */
/* ------------------------------------------------------------------------ */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static spectator_registry_t *_Atomic global_reg;

static void global_init(void) {
  spectator_config_t cfg;
  spectator_config_from_env(&cfg);
  /* Start below, after the pointer is published, so the publisher thread and
   * anything it logs can use the global registry. */
  int auto_start = cfg.auto_start;
  cfg.auto_start = 0;
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  if (!reg) {
    /* A bad environment must not leave the process without metrics: fall back
     * to the defaults (the problem was logged by the config checks). */
    spectator_config_init(&cfg);
    cfg.auto_start = 0;
    reg = spectator_registry_new(&cfg);
  }
  if (!reg) return;
  reg->is_global = true;
  atomic_store(&global_reg, reg);
  if (auto_start) spectator_registry_start(reg);
}

spectator_registry_t *spectator_global_registry(void) {
  spectator_registry_t *reg = atomic_load_explicit(&global_reg, memory_order_acquire);
  if (SPECTATOR__LIKELY(reg)) return reg;
  pthread_once(&global_once, global_init);
  return atomic_load_explicit(&global_reg, memory_order_acquire);
}

int spectator_start(void) {
  spectator_registry_t *reg = spectator_global_registry();
  return reg ? spectator_registry_start(reg) : SPECTATOR_ENOMEM;
}

void spectator_stop(void) {
  spectator_registry_t *reg = atomic_load_explicit(&global_reg, memory_order_acquire);
  if (reg) spectator_registry_stop(reg);
}
