/*
 * Polled meters (Spectator Java's PolledMeter): a function of the application
 * called at every snapshot of its registry, whose result a gauge reports
 * (poll gauge), or whose increase a counter reports (poll monotonic counter).
 *
 * DESIGN
 * A registry's pollers are a list guarded by `mu`. A snapshot (a publish or
 * spectator_registry_snapshot) calls spectator__pollers_run before it takes
 * any registry lock, so a poller's function never runs under a library lock:
 * a function that is slow, or that looks meters up and records, delays only
 * the snapshot that called it, never a recording thread or a lookup.
 *
 * - One run at a time per registry. The thread that finds a run in progress
 *   does not wait for it: that run's results serve its snapshot too. So a
 *   function never runs twice at once, and a snapshot taken from inside a
 *   poller's function (of the same registry) does not call the pollers again
 *   and cannot deadlock.
 * - `mu` is released around each call. `current` names the poller whose
 *   function is running and `runner` the thread running it. Results are
 *   recorded with `mu` held, into the pinned meters each poller looked up at
 *   its creation: a gauge is set to the sum of its pollers' values (several
 *   pollers may share one id, as in Java; NaN when none has a value), a
 *   counter gets each poller's increase since its previous reading.
 * - spectator_poller_remove marks the poller removed, so no run calls it
 *   again, and waits on `cv` until its function is not running. Called from
 *   inside that very function (or from another poller's function of the same
 *   run, whose own poller is then not running), it does not wait: the
 *   running function is its caller, and the run frees the poller when it
 *   returns.
 * - In a forked child, the calls other threads of the parent were making do
 *   not exist: the run they were part of is forgotten, and a removal that was
 *   waiting leaves its poller to be freed by the next run.
 * - Once the process exits (the exit handler), no function is called any
 *   more: the exit flush sends the last run's values. The data a function
 *   reads may be gone by then, and exit must not wait for application code.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "poller.h"
#include "registry.h"

/* What a poller is, as far as freeing it goes. */
enum {
  ACTIVE,           /* called at every run */
  FREED_BY_RUNNER,  /* removed from inside its own function: the run frees it */
  FREED_BY_REMOVER, /* a remover waits for its function to return, then frees it */
  ORPHAN            /* removed, and whoever would free it is gone (a fork): the next run does */
};

struct spectator_poller {
  struct spectator_poller *next;
  struct spectator__pollers *owner;
  spectator_poll_fn fn;
  void *ctx;
  void *meter;  /* spectator_gauge_t or spectator_counter_t, pinned */
  bool counter; /* a poll monotonic counter */
  uint8_t state;
  uint64_t first_run; /* the first run that calls it: one that begins after its creation */
  double last;        /* gauge: the value of the last run (NaN: none) */
  double prev;        /* counter: the previous reading (NaN: none yet) */
};

typedef struct spectator__pollers {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* a function returned */
  spectator_poller_t *head;
  bool running;                /* a run is in progress */
  uint64_t runs;               /* runs begun */
  pthread_t runner;            /* its thread */
  spectator_poller_t *current; /* whose function it is calling; NULL: none */
} spectator__pollers_t;

/* Depth of poller functions on this thread (a function may snapshot another
 * registry whose pollers run nested). */
static _Thread_local unsigned in_fn;

bool spectator__in_poll_fn(void) { return in_fn > 0; }

/* Set by the exit handler: no more calls. */
static _Atomic bool exiting;

void spectator__pollers_exiting(void) { atomic_store(&exiting, true); }

int spectator__pollers_init(spectator_registry_t *reg) {
  spectator__pollers_t *ps = calloc(1, sizeof(*ps));
  if (!ps) return SPECTATOR_ENOMEM;
  pthread_mutex_init(&ps->mu, NULL);
  pthread_cond_init(&ps->cv, NULL);
  reg->pollers = ps;
  return 0;
}

void spectator__pollers_free(spectator_registry_t *reg) {
  spectator__pollers_t *ps = reg->pollers;
  if (!ps) return;
  while (ps->head) {
    spectator_poller_t *next = ps->head->next;
    free(ps->head);
    ps->head = next;
  }
  pthread_mutex_destroy(&ps->mu);
  pthread_cond_destroy(&ps->cv);
  free(ps);
  reg->pollers = NULL;
}

/* ------------------------------------------------------------------------ */
/* The list (mu held)                                                        */
/* ------------------------------------------------------------------------ */

static void unlink_poller(spectator__pollers_t *ps, spectator_poller_t *p) {
  for (spectator_poller_t **pp = &ps->head; *pp; pp = &(*pp)->next) {
    if (*pp == p) {
      *pp = p->next;
      return;
    }
  }
}

/* Insert after the last poller of the same meter, so that pollers sharing a
 * gauge are next to each other; else at the end. */
static void insert_poller(spectator__pollers_t *ps, spectator_poller_t *p) {
  spectator_poller_t **at = &ps->head, *same = NULL;
  for (; *at; at = &(*at)->next)
    if ((*at)->meter == p->meter) same = *at;
  if (same) at = &same->next;
  p->next = *at;
  *at = p;
}

/* A removed gauge poller: when no other poller feeds its gauge, the gauge
 * stops reporting at once. */
static void retire_gauge(spectator__pollers_t *ps, const spectator_poller_t *p) {
  if (p->counter) return;
  for (const spectator_poller_t *q = ps->head; q; q = q->next)
    if (q != p && q->meter == p->meter && q->state == ACTIVE) return;
  spectator_gauge_set(p->meter, NAN);
}

/* A poller's reading, recorded at once for a counter, kept for its gauge's
 * sum otherwise. Infinite values count as NaN (nothing). */
static void take_reading(spectator_poller_t *p, double v) {
  if (!spectator__finite(v)) v = NAN;
  if (!p->counter) {
    p->last = v;
    return;
  }
  if (isnan(v)) return; /* nothing this interval: the previous reading stays the base */
  /* As Java's PolledMeter: an increase is added; a decrease (the source
   * restarted) adds nothing and becomes the new base. */
  if (!isnan(p->prev) && v > p->prev) spectator_counter_add(p->meter, v - p->prev);
  p->prev = v;
}

/* Set each gauge to the sum of its active pollers' readings (NaN: none). */
static void set_gauges(spectator__pollers_t *ps) {
  void *meter = NULL;
  double sum = NAN;
  for (spectator_poller_t *p = ps->head; p; p = p->next) {
    if (p->counter || p->state != ACTIVE) continue;
    if (p->meter != meter) {
      if (meter) spectator_gauge_set(meter, sum);
      meter = p->meter;
      sum = NAN;
    }
    if (!isnan(p->last)) sum = isnan(sum) ? p->last : sum + p->last;
  }
  if (meter) spectator_gauge_set(meter, sum);
}

/* ------------------------------------------------------------------------ */
/* Runs                                                                      */
/* ------------------------------------------------------------------------ */

void spectator__pollers_run(spectator_registry_t *reg) {
  spectator__pollers_t *ps = reg->pollers;
  if (!ps || atomic_load_explicit(&exiting, memory_order_relaxed)) return;
  pthread_mutex_lock(&ps->mu);
  if (ps->running || !ps->head) {
    pthread_mutex_unlock(&ps->mu);
    return;
  }
  ps->running = true;
  ps->runner = pthread_self();
  const uint64_t run = ++ps->runs;
  spectator_poller_t *p = ps->head;
  while (p) {
    spectator_poller_t *next = p->next;
    if (p->state == ORPHAN) {
      unlink_poller(ps, p);
      free(p);
    } else if (p->state == ACTIVE && p->first_run <= run) {
      ps->current = p;
      pthread_mutex_unlock(&ps->mu);
      in_fn++;
      double v = p->fn(p->ctx);
      in_fn--;
      pthread_mutex_lock(&ps->mu);
      ps->current = NULL;
      next = p->next; /* the list may have changed meanwhile; p is still in it */
      if (p->state == ACTIVE) {
        take_reading(p, v);
      } else if (p->state == FREED_BY_RUNNER) {
        unlink_poller(ps, p);
        free(p);
      } else {
        pthread_cond_broadcast(&ps->cv); /* a remover waits for this call to end */
      }
    }
    p = next;
  }
  set_gauges(ps);
  ps->running = false;
  pthread_mutex_unlock(&ps->mu);
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                */
/* ------------------------------------------------------------------------ */

static spectator_poller_t *poller_new(spectator_registry_t *reg, spectator__type_t type,
                                      const char *kind, const char *name, const char *const *tags,
                                      spectator_poll_fn fn, void *ctx, bool self) {
  static spectator__ratelimit_t rl_reg, rl_fn;
  if (!reg || !fn) {
    SPECTATOR__LOG_LIMITED(!reg ? &rl_reg : &rl_fn, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                           "%s '%.*s' with a NULL %s: no poller", kind, SPECTATOR__LOG_STR(name),
                           !reg ? "registry" : "function");
    return NULL;
  }
  /* Bad names and tags, a type conflict or a full registry are logged here. */
  void *meter = self ? spectator__registry_lookup_self(reg, type, name, tags)
                     : spectator__registry_lookup(reg, type, name, NULL, tags, NULL);
  if (spectator__is_noop(meter)) return NULL;
  spectator_poller_t *p = calloc(1, sizeof(*p));
  if (!p) {
    spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_REGISTRY,
                   "out of memory: no %s for '%.*s'", kind, SPECTATOR__LOG_STR(name));
    return NULL;
  }
  spectator__pollers_t *ps = reg->pollers;
  p->owner = ps;
  p->fn = fn;
  p->ctx = ctx;
  p->meter = meter;
  p->counter = type == SPECTATOR__COUNTER;
  p->state = ACTIVE;
  p->last = NAN;
  p->prev = NAN;
  pthread_mutex_lock(&ps->mu);
  p->first_run = ps->runs + 1;
  insert_poller(ps, p);
  pthread_mutex_unlock(&ps->mu);
  return p;
}

spectator_poller_t *spectator_registry_poll_gauge(spectator_registry_t *reg, const char *name,
                                                  const char *const *tags, spectator_poll_fn fn,
                                                  void *ctx) {
  return poller_new(reg, SPECTATOR__GAUGE, "poll gauge", name, tags, fn, ctx, false);
}

spectator_poller_t *spectator_registry_poll_monotonic_counter(spectator_registry_t *reg,
                                                              const char *name,
                                                              const char *const *tags,
                                                              spectator_poll_fn fn, void *ctx) {
  return poller_new(reg, SPECTATOR__COUNTER, "poll monotonic counter", name, tags, fn, ctx, false);
}

spectator_poller_t *spectator__poll_self(spectator_registry_t *reg, bool counter, const char *name,
                                         const char *const *tags, spectator_poll_fn fn, void *ctx) {
  return counter ? poller_new(reg, SPECTATOR__COUNTER, "poll monotonic counter", name, tags, fn,
                              ctx, true)
                 : poller_new(reg, SPECTATOR__GAUGE, "poll gauge", name, tags, fn, ctx, true);
}

void spectator_poller_remove(spectator_poller_t *p) {
  if (!p) return;
  spectator__pollers_t *ps = p->owner;
  pthread_mutex_lock(&ps->mu);
  if (p->state != ACTIVE) { /* a second removal while the first is under way */
    pthread_mutex_unlock(&ps->mu);
    return;
  }
  retire_gauge(ps, p);
  if (ps->current == p && pthread_equal(ps->runner, pthread_self())) {
    /* Called from inside its own function: the run frees it on return. */
    p->state = FREED_BY_RUNNER;
    pthread_mutex_unlock(&ps->mu);
    return;
  }
  p->state = FREED_BY_REMOVER;
  while (ps->current == p) pthread_cond_wait(&ps->cv, &ps->mu);
  unlink_poller(ps, p);
  pthread_mutex_unlock(&ps->mu);
  free(p);
}

/* ------------------------------------------------------------------------ */
/* Fork hooks                                                                */
/* ------------------------------------------------------------------------ */

void spectator__pollers_prefork(void) {
  for (spectator_registry_t *r = spectator__registries_head(); r; r = r->next_all)
    if (r->pollers) pthread_mutex_lock(&r->pollers->mu);
}

void spectator__pollers_postfork_parent(void) {
  for (spectator_registry_t *r = spectator__registries_head(); r; r = r->next_all)
    if (r->pollers) pthread_mutex_unlock(&r->pollers->mu);
}

/* Only the forking thread exists in the child. A run it was making itself
 * (it forked from inside a poller's function) goes on; a run of another
 * thread is gone, and so are removals that were waiting. Every counter's
 * reading starts over, as a monotonic counter's does: the child reports
 * the increase it sees itself. */
void spectator__pollers_postfork_child(void) {
  for (spectator_registry_t *r = spectator__registries_head(); r; r = r->next_all) {
    spectator__pollers_t *ps = r->pollers;
    if (!ps) continue;
    pthread_mutex_init(&ps->mu, NULL);
    pthread_cond_init(&ps->cv, NULL);
    bool ours = ps->running && pthread_equal(ps->runner, pthread_self());
    if (!ours) {
      ps->running = false;
      ps->current = NULL;
    }
    for (spectator_poller_t *p = ps->head; p; p = p->next) {
      p->prev = NAN;
      if (p->state == FREED_BY_REMOVER || (p->state == FREED_BY_RUNNER && !ours)) p->state = ORPHAN;
    }
  }
}
