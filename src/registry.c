/*
 * Registries: where ids become meters.
 *
 * DESIGN
 * Looking a meter up must be cheap and scale across threads, and recording on
 * it must never wait, so the registry is read without locks:
 *
 * - The index is an open-addressing hash table with linear probing whose
 *   4-byte slots hold a meter's position in the chunk array (below) and 7 bits
 *   of its hash, so a probe skips other meters without touching them. Readers
 *   load the table pointer and the slots with acquire loads and compare the
 *   canonical (name, tags) view built on their stack, so a hit takes no lock
 *   and allocates nothing. Writers (a lookup that misses) take `lock`, probe
 *   again, and publish a new meter with a release store. Growing the table
 *   publishes a new one; retired tables stay allocated until the registry is
 *   freed, so a reader holding an old one never touches freed memory (it may
 *   miss a new meter, and then takes the slow path).
 *
 * - Meters are never freed or moved while the registry lives: the pointer a
 *   lookup returns stays valid, which is what lets the hot path be a plain
 *   atomic instruction on it. They are carved from blocks (slabs) freed with
 *   the registry, each meter on cache lines of its own (no false sharing
 *   between two meters, no per-meter allocator header). They are also kept in
 *   an append-only array of fixed-size chunks whose count is published with a
 *   release store, so a snapshot walks them without the insert lock.
 *
 * - A snapshot (publisher or spectator_registry_snapshot) holds `snap_lock`
 *   while it swaps each meter's interval state for zero; that lock also owns
 *   the few per-meter fields only snapshots touch (gauge timestamps, monotonic
 *   counter bases). Neither lock is ever held across network I/O or a call into
 *   application code; lock order is lock -> snap_lock never nested, and the
 *   fork handlers take all_lock, then each registry's lock and snap_lock.
 *
 * Bad input and type conflicts give a shared static no-op meter of the
 * requested type: recording on it is harmless and it is never reported. The
 * number of meters is capped (cfg.max_meters); past the cap lookups of new ids
 * give no-op meters and a rate-limited warning.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* ------------------------------------------------------------------------ */
/* No-op meters                                                              */
/* ------------------------------------------------------------------------ */

struct spectator_counter spectator__noop_counter;
struct spectator_timer spectator__noop_timer;
struct spectator_dist_summary spectator__noop_dist_summary;
struct spectator_gauge spectator__noop_gauge;
struct spectator_max_gauge spectator__noop_max_gauge;
struct spectator_monotonic_counter spectator__noop_monotonic_counter;
struct spectator_percentile_timer spectator__noop_percentile_timer;
struct spectator_percentile_dist_summary spectator__noop_percentile_dist_summary;

void *spectator__noop_meter(spectator__type_t t) {
  switch (t) {
  case SPECTATOR__COUNTER: return &spectator__noop_counter;
  case SPECTATOR__TIMER: return &spectator__noop_timer;
  case SPECTATOR__DIST_SUMMARY: return &spectator__noop_dist_summary;
  case SPECTATOR__GAUGE: return &spectator__noop_gauge;
  case SPECTATOR__MAX_GAUGE: return &spectator__noop_max_gauge;
  case SPECTATOR__MONOTONIC_COUNTER: return &spectator__noop_monotonic_counter;
  case SPECTATOR__PERCENTILE_TIMER: return &spectator__noop_percentile_timer;
  case SPECTATOR__PERCENTILE_DIST_SUMMARY: return &spectator__noop_percentile_dist_summary;
  default: return NULL;
  }
}

bool spectator__is_noop(const void *m) {
  return m == &spectator__noop_counter || m == &spectator__noop_timer ||
         m == &spectator__noop_dist_summary || m == &spectator__noop_gauge ||
         m == &spectator__noop_max_gauge || m == &spectator__noop_monotonic_counter ||
         m == &spectator__noop_percentile_timer || m == &spectator__noop_percentile_dist_summary;
}

const char *spectator__type_name(spectator__type_t t) {
  static const char *const names[] = {"counter",
                                      "timer",
                                      "distribution summary",
                                      "gauge",
                                      "max gauge",
                                      "monotonic counter",
                                      "percentile timer",
                                      "percentile distribution summary"};
  return (unsigned)t < SPECTATOR__METER_TYPES ? names[t] : "unknown";
}

/* ------------------------------------------------------------------------ */
/* Live registries                                                           */
/* ------------------------------------------------------------------------ */

static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static spectator_registry_t *all_head;

void spectator__registries_lock(void) { pthread_mutex_lock(&all_lock); }
void spectator__registries_unlock(void) { pthread_mutex_unlock(&all_lock); }
spectator_registry_t *spectator__registries_head(void) { return all_head; }
void spectator__registries_child_reinit(void) { pthread_mutex_init(&all_lock, NULL); }

/* ------------------------------------------------------------------------ */
/* Creation                                                                  */
/* ------------------------------------------------------------------------ */

static char *dup_str(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* Merge environment and configured common tags into one NULL-terminated array
 * of owned strings (configured tags last, so they win when encoded). */
static const char **merge_common_tags(const spectator_config_t *cfg, bool *ok) {
  char **env = cfg->env_common_tags ? spectator__env_common_tags() : NULL;
  *ok = !(cfg->env_common_tags && !env);
  size_t n = 0;
  for (size_t i = 0; env && env[i]; i++) n++;
  for (size_t i = 0; cfg->common_tags && cfg->common_tags[i]; i++) n++;
  const char **out = calloc(n + 1, sizeof(*out));
  if (!out) {
    free(env);
    *ok = false;
    return NULL;
  }
  size_t j = 0;
  for (size_t i = 0; env && env[i]; i++)
    if (!(out[j++] = dup_str(env[i]))) *ok = false;
  for (size_t i = 0; cfg->common_tags && cfg->common_tags[i]; i++)
    if (!(out[j++] = dup_str(cfg->common_tags[i]))) *ok = false;
  free(env);
  return out;
}

static void free_common_tags(const char **tags) {
  for (size_t i = 0; tags && tags[i]; i++) free((char *)tags[i]);
  free(tags);
}

static spectator__table_t *table_new(size_t cap) {
  spectator__table_t *t = calloc(1, sizeof(*t) + cap * sizeof(t->slots[0]));
  if (t) t->mask = cap - 1;
  return t;
}

spectator_registry_t *spectator_registry_new_size(const spectator_config_t *cfg_caller,
                                                  size_t size) {
  /* Only the caller's bytes are read: its struct may be older and smaller. */
  spectator_config_t cfg;
  if (spectator__config_load(&cfg, cfg_caller, size) != 0) return NULL;
  const spectator_config_t *cfg_in = &cfg;
  if (spectator__config_validate(cfg_in) != 0) return NULL;

  spectator_registry_t *reg = calloc(1, sizeof(*reg));
  if (!reg) return NULL;
  reg->cfg = *cfg_in;
  bool ok = true;
  reg->uri = dup_str(cfg_in->uri);
  reg->ca_info = dup_str(cfg_in->ca_info);
  reg->common_tags = merge_common_tags(cfg_in, &ok);
  if ((cfg_in->uri && !reg->uri) || (cfg_in->ca_info && !reg->ca_info)) ok = false;
  reg->cfg.uri = reg->uri;
  reg->cfg.ca_info = reg->ca_info;
  reg->cfg.common_tags = reg->common_tags;
  reg->meter_ttl_ns = (int64_t)(cfg_in->meter_ttl_s * 1e9);
  /* The chunk directory is sized from the cap up front (snapshots read it
   * without the insert lock), so a cap beyond any real use is clamped. */
  if (reg->cfg.max_meters > SPECTATOR__MAX_METERS_LIMIT)
    reg->cfg.max_meters = SPECTATOR__MAX_METERS_LIMIT; /* "no cap", e.g. SIZE_MAX */
  reg->nchunks = reg->cfg.max_meters / SPECTATOR__CHUNK + 1;
  reg->chunks = calloc(reg->nchunks, sizeof(*reg->chunks));
  spectator__table_t *t = table_new(64);
  if (!ok || !reg->chunks || !t || spectator__publisher_init(reg) != 0) {
    free(t);
    free(reg->chunks);
    free_common_tags(reg->common_tags);
    free(reg->uri);
    free(reg->ca_info);
    free(reg);
    spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_INIT, "out of memory creating a registry");
    return NULL;
  }
  atomic_init(&reg->table, t);
  atomic_init(&reg->count, 0);
  pthread_mutex_init(&reg->lock, NULL);
  pthread_mutex_init(&reg->snap_lock, NULL);

  spectator__fork_init();
  pthread_mutex_lock(&all_lock);
  reg->next_all = all_head;
  all_head = reg;
  pthread_mutex_unlock(&all_lock);

  if (reg->cfg.auto_start && reg->uri) spectator_registry_start(reg);
  return reg;
}

/* The 0.1.0 entry point (the header maps the name to the sized one). */
spectator_registry_t *(spectator_registry_new)(const spectator_config_t *cfg) {
  return spectator_registry_new_size(cfg, SPECTATOR__CONFIG_SIZE_0_1);
}

static void unlink_registry(spectator_registry_t *reg) {
  pthread_mutex_lock(&all_lock);
  for (spectator_registry_t **p = &all_head; *p; p = &(*p)->next_all) {
    if (*p == reg) {
      *p = reg->next_all;
      break;
    }
  }
  pthread_mutex_unlock(&all_lock);
}

static inline spectator__meter_t *meter_at(spectator_registry_t *reg, size_t i) {
  return reg->chunks[i / SPECTATOR__CHUNK][i % SPECTATOR__CHUNK];
}

void spectator_registry_free(spectator_registry_t *reg) {
  if (!reg) return;
  /* Unlink first: from here on neither fork handlers nor exit see it. */
  unlink_registry(reg);
  spectator_registry_stop(reg);
  spectator__publisher_free(reg);
  size_t n = atomic_load(&reg->count);
  for (size_t i = 0; i < n; i++) spectator_id_free(meter_at(reg, i)->id);
  while (reg->slab) {
    spectator__slab_t *next = reg->slab->next;
    free(reg->slab);
    reg->slab = next;
  }
  for (size_t c = 0; c < reg->nchunks; c++) free(reg->chunks[c]);
  free(reg->chunks);
  spectator__stripes_free(&reg->stripes);
  spectator__table_t *t = atomic_load(&reg->table);
  while (t) {
    spectator__table_t *prev = t->prev;
    free(t);
    t = prev;
  }
  pthread_mutex_destroy(&reg->lock);
  pthread_mutex_destroy(&reg->snap_lock);
  free_common_tags(reg->common_tags);
  free(reg->uri);
  free(reg->ca_info);
  free(reg);
}

size_t spectator_registry_size(spectator_registry_t *reg) {
  return reg ? atomic_load_explicit(&reg->count, memory_order_relaxed) : 0;
}

int64_t spectator__now_ns(const spectator_registry_t *reg) {
  return reg->cfg.clock ? reg->cfg.clock(reg->cfg.clock_ctx) : spectator__monotonic_ns();
}

/* ------------------------------------------------------------------------ */
/* Lookup                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct {
  double ttl_s;    /* gauges */
  double min, max; /* percentile meters, in seconds or base units */
} params_t;

static inline uint32_t slot_tag(uint64_t hash) {
  return (uint32_t)(hash >> 57) << SPECTATOR__SLOT_INDEX_BITS;
}

static spectator__meter_t *probe(spectator_registry_t *reg, spectator__table_t *t,
                                 const spectator__canon_t *c) {
  uint32_t tag = slot_tag(c->hash);
  for (size_t i = c->hash & t->mask;; i = (i + 1) & t->mask) {
    uint32_t v = atomic_load_explicit(&t->slots[i], memory_order_acquire);
    if (!v) return NULL;
    if ((v & ~SPECTATOR__SLOT_INDEX_MASK) != tag) continue;
    spectator__meter_t *m = meter_at(reg, (v & SPECTATOR__SLOT_INDEX_MASK) - 1);
    if (spectator__canon_equals_id(c, m->id)) return m;
  }
}

/* Index meter number idx (its position in the chunk array). */
static void table_put(spectator__table_t *t, const spectator__meter_t *m, size_t idx) {
  size_t i = m->id->hash & t->mask;
  while (atomic_load_explicit(&t->slots[i], memory_order_relaxed)) i = (i + 1) & t->mask;
  atomic_store_explicit(&t->slots[i], slot_tag(m->id->hash) | (uint32_t)(idx + 1),
                        memory_order_release);
}

/* Zeroed, cache-line-aligned memory for a meter (reg->lock held). Blocks grow
 * from 4 KiB to 64 KiB, so a small registry stays small. */
static void *slab_alloc(spectator_registry_t *reg, size_t size) {
  size = (size + SPECTATOR__CACHELINE - 1) & ~(size_t)(SPECTATOR__CACHELINE - 1);
  spectator__slab_t *s = reg->slab;
  if (!s || s->cap - s->used < size) {
    size_t cap = s ? 2 * (s->cap + sizeof(*s)) : 4096;
    if (cap > 65536) cap = 65536;
    cap -= sizeof(*s);
    if (cap < size) cap = size;
    void *mem = NULL;
    if (posix_memalign(&mem, SPECTATOR__CACHELINE, sizeof(*s) + cap) != 0) return NULL;
    s = mem;
    s->next = reg->slab;
    s->used = 0;
    s->cap = cap;
    memset(s->data, 0, cap);
    reg->slab = s;
  }
  void *m = s->data + s->used;
  s->used += size;
  return m;
}

static size_t meter_size(spectator__type_t type) {
  switch (type) {
  case SPECTATOR__COUNTER: return sizeof(struct spectator_counter);
  case SPECTATOR__TIMER: return sizeof(struct spectator_timer);
  case SPECTATOR__DIST_SUMMARY: return sizeof(struct spectator_dist_summary);
  case SPECTATOR__GAUGE: return sizeof(struct spectator_gauge);
  case SPECTATOR__MAX_GAUGE: return sizeof(struct spectator_max_gauge);
  case SPECTATOR__MONOTONIC_COUNTER: return sizeof(struct spectator_monotonic_counter);
  case SPECTATOR__PERCENTILE_TIMER: return sizeof(struct spectator_percentile_timer);
  case SPECTATOR__PERCENTILE_DIST_SUMMARY: return sizeof(struct spectator_percentile_dist_summary);
  default: return 0;
  }
}

static int64_t checked_ns(double seconds, int64_t dflt) {
  if (!(seconds >= 0) || seconds * 1e9 >= 9223372036854775807.0) return dflt;
  return (int64_t)(seconds * 1e9);
}

static int64_t checked_i64(double v, int64_t dflt) {
  if (!(v >= 0) || v >= 9223372036854775807.0) return dflt;
  return (int64_t)v;
}

static spectator__ratelimit_t rl_range;

static void init_meter(spectator_registry_t *reg, spectator__meter_t *m, spectator__type_t type,
                       const params_t *p) {
  m->type = (uint8_t)type;
  m->has_statistic = spectator_id_tag(m->id, "statistic") != NULL;
  m->last_active_ns = spectator__now_ns(reg);
  switch (type) {
  case SPECTATOR__COUNTER: ((struct spectator_counter *)m)->src = &reg->stripes; break;
  case SPECTATOR__TIMER: ((struct spectator_timer *)m)->st.src = &reg->stripes; break;
  case SPECTATOR__GAUGE: {
    struct spectator_gauge *g = (void *)m;
    atomic_init(&g->bits, spectator__d2b(NAN));
    g->ttl_ns = (p->ttl_s > 0 && p->ttl_s < 9.2e9) ? (int64_t)(p->ttl_s * 1e9) : reg->meter_ttl_ns;
    g->last_set_ns = m->last_active_ns;
    break;
  }
  case SPECTATOR__MONOTONIC_COUNTER: {
    struct spectator_monotonic_counter *mc = (void *)m;
    atomic_init(&mc->bits, spectator__d2b(NAN));
    mc->prev = NAN;
    break;
  }
  case SPECTATOR__PERCENTILE_TIMER: {
    struct spectator_percentile_timer *t = (void *)m;
    int64_t lo = checked_ns(p->min, -1), hi = checked_ns(p->max, -1);
    /* a finite max past 2^63 ns means "no upper clamp", as for summaries */
    if (p->max * 1e9 >= 9223372036854775807.0 && p->max <= 1.7976931348623157e308) hi = INT64_MAX;
    if (lo < 0 || hi < 0 || lo > hi) {
      SPECTATOR__LOG_LIMITED(&rl_range, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                             "percentile timer '%.*s': invalid range [%g, %g] s; using "
                             "[0.01, 60] s",
                             SPECTATOR__LOG_STR(m->id->name), p->min, p->max);
      lo = 10 * 1000 * 1000;
      hi = 60 * SPECTATOR__NS_PER_S;
    }
    t->min_ns = lo;
    t->max_ns = hi;
    t->st.src = &reg->stripes;
    break;
  }
  case SPECTATOR__PERCENTILE_DIST_SUMMARY: {
    struct spectator_percentile_dist_summary *d = (void *)m;
    int64_t lo = checked_i64(p->min, -1), hi = checked_i64(p->max, -1);
    if (p->max >= 9223372036854775807.0 && p->max <= 1.7976931348623157e308) hi = INT64_MAX;
    if (lo < 0 || hi < 0 || lo > hi) {
      SPECTATOR__LOG_LIMITED(&rl_range, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                             "percentile distribution summary '%.*s': invalid range [%g, %g]; "
                             "using [0, 2^63-1]",
                             SPECTATOR__LOG_STR(m->id->name), p->min, p->max);
      lo = 0;
      hi = INT64_MAX;
    }
    d->min = lo;
    d->max = hi;
    break;
  }
  default: break; /* zeroed memory is the initial state of the others */
  }
}

static void *conflict(spectator_registry_t *reg, spectator__meter_t *m, spectator__type_t type) {
  if (!atomic_exchange(&m->conflict_logged, 1))
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                   "id '%.*s' is already a %s and cannot be used as a %s; using a no-op %s",
                   SPECTATOR__LOG_STR(m->id->name), spectator__type_name(m->type),
                   spectator__type_name(type), spectator__type_name(type));
  (void)reg;
  return spectator__noop_meter(type);
}

/* Called with reg->lock held: create, index and publish a new meter. */
static spectator__meter_t *create_locked(spectator_registry_t *reg, const spectator__canon_t *c,
                                         spectator__type_t type, const params_t *p) {
  size_t n = atomic_load_explicit(&reg->count, memory_order_relaxed);
  if (n >= reg->cfg.max_meters) {
    SPECTATOR__LOG_LIMITED(&reg->rl_full, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                           "registry is full (%zu meters, the max_meters cap): '%.*s' gets a "
                           "no-op %s",
                           n, SPECTATOR__LOG_STR(c->name), spectator__type_name(type));
    return NULL;
  }
  spectator__table_t *t = atomic_load_explicit(&reg->table, memory_order_relaxed);
  if (2 * (n + 1) > t->mask + 1) { /* keep the load factor under 1/2 */
    spectator__table_t *bigger = table_new(2 * (t->mask + 1));
    if (!bigger) return NULL;
    for (size_t i = 0; i < n; i++) table_put(bigger, meter_at(reg, i), i);
    bigger->prev = t;
    atomic_store_explicit(&reg->table, bigger, memory_order_release);
    t = bigger;
  }
  size_t chunk = n / SPECTATOR__CHUNK;
  if (!reg->chunks[chunk]) {
    reg->chunks[chunk] = calloc(SPECTATOR__CHUNK, sizeof(spectator__meter_t *));
    if (!reg->chunks[chunk]) return NULL;
  }
  spectator_id_t *id = spectator__id_from_canon(c);
  spectator__meter_t *m = id ? slab_alloc(reg, meter_size(type)) : NULL;
  if (!m) {
    spectator_id_free(id);
    return NULL;
  }
  m->id = id;
  init_meter(reg, m, type, p);
  /* Meters that may spread need stripe blocks ready before they contend: the
   * recording path never allocates. Best effort: without them a contended
   * meter keeps working on its own cell. */
  if (type == SPECTATOR__COUNTER || type == SPECTATOR__TIMER || type == SPECTATOR__PERCENTILE_TIMER)
    spectator__stripes_refill(&reg->stripes, true);
  reg->chunks[chunk][n % SPECTATOR__CHUNK] = m;
  table_put(t, m, n);
  atomic_store_explicit(&reg->count, n + 1, memory_order_release);
  return m;
}

static void *lookup(spectator_registry_t *reg, spectator__type_t type, const char *name,
                    const spectator_id_t *id, const char *const *tags, const params_t *p) {
  if (SPECTATOR__UNLIKELY(!reg)) {
    static spectator__ratelimit_t rl_noreg;
    SPECTATOR__LOG_LIMITED(&rl_noreg, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                           "%s lookup on a NULL registry; using a no-op",
                           spectator__type_name(type));
    return spectator__noop_meter(type);
  }
  spectator__canon_t c;
  spectator__canon_status_t st;
  if (id)
    st = spectator__canon_init(&c, NULL, id, NULL);
  else if (name || tags)
    st = spectator__canon_init(&c, name, NULL, tags);
  else
    st = SPECTATOR__CANON_BAD_NAME;
  if (SPECTATOR__UNLIKELY(st != SPECTATOR__CANON_OK)) {
    spectator__canon_log_error(st, spectator__type_name(type), name);
    return spectator__noop_meter(type);
  }
  spectator__meter_t *m = probe(reg, atomic_load_explicit(&reg->table, memory_order_acquire), &c);
  if (!m) {
    pthread_mutex_lock(&reg->lock);
    m = probe(reg, atomic_load_explicit(&reg->table, memory_order_relaxed), &c);
    if (!m) m = create_locked(reg, &c, type, p);
    pthread_mutex_unlock(&reg->lock);
  }
  spectator__canon_free(&c);
  if (!m) return spectator__noop_meter(type);
  if (SPECTATOR__UNLIKELY(m->type != type)) return conflict(reg, m, type);
  return m;
}

static const params_t no_params = {0, 0, 0};

spectator_counter_t *spectator_registry_counter(spectator_registry_t *reg, const char *name,
                                                const char *const *tags) {
  return lookup(reg, SPECTATOR__COUNTER, name, NULL, tags, &no_params);
}
spectator_timer_t *spectator_registry_timer(spectator_registry_t *reg, const char *name,
                                            const char *const *tags) {
  return lookup(reg, SPECTATOR__TIMER, name, NULL, tags, &no_params);
}
spectator_dist_summary_t *spectator_registry_dist_summary(spectator_registry_t *reg,
                                                          const char *name,
                                                          const char *const *tags) {
  return lookup(reg, SPECTATOR__DIST_SUMMARY, name, NULL, tags, &no_params);
}
spectator_gauge_t *spectator_registry_gauge(spectator_registry_t *reg, const char *name,
                                            const char *const *tags) {
  return lookup(reg, SPECTATOR__GAUGE, name, NULL, tags, &no_params);
}
spectator_gauge_t *spectator_registry_gauge_with_ttl(spectator_registry_t *reg, const char *name,
                                                     const char *const *tags, double ttl_s) {
  params_t p = {ttl_s, 0, 0};
  return lookup(reg, SPECTATOR__GAUGE, name, NULL, tags, &p);
}
spectator_max_gauge_t *spectator_registry_max_gauge(spectator_registry_t *reg, const char *name,
                                                    const char *const *tags) {
  return lookup(reg, SPECTATOR__MAX_GAUGE, name, NULL, tags, &no_params);
}
spectator_monotonic_counter_t *spectator_registry_monotonic_counter(spectator_registry_t *reg,
                                                                    const char *name,
                                                                    const char *const *tags) {
  return lookup(reg, SPECTATOR__MONOTONIC_COUNTER, name, NULL, tags, &no_params);
}
spectator_percentile_timer_t *spectator_registry_percentile_timer(spectator_registry_t *reg,
                                                                  const char *name,
                                                                  const char *const *tags,
                                                                  double min_s, double max_s) {
  params_t p = {0, min_s, max_s};
  return lookup(reg, SPECTATOR__PERCENTILE_TIMER, name, NULL, tags, &p);
}
spectator_percentile_dist_summary_t *spectator_registry_percentile_dist_summary(
    spectator_registry_t *reg, const char *name, const char *const *tags, double min, double max) {
  params_t p = {0, min, max};
  return lookup(reg, SPECTATOR__PERCENTILE_DIST_SUMMARY, name, NULL, tags, &p);
}

/* By id: a NULL id is bad input, reported like a NULL name. */
#define BY_ID(type, id, p) \
  ((id) ? lookup(reg, type, NULL, id, NULL, p) : lookup(reg, type, NULL, NULL, NULL, p))

spectator_counter_t *spectator_registry_counter_id(spectator_registry_t *reg,
                                                   const spectator_id_t *id) {
  return BY_ID(SPECTATOR__COUNTER, id, &no_params);
}
spectator_timer_t *spectator_registry_timer_id(spectator_registry_t *reg,
                                               const spectator_id_t *id) {
  return BY_ID(SPECTATOR__TIMER, id, &no_params);
}
spectator_dist_summary_t *spectator_registry_dist_summary_id(spectator_registry_t *reg,
                                                             const spectator_id_t *id) {
  return BY_ID(SPECTATOR__DIST_SUMMARY, id, &no_params);
}
spectator_gauge_t *spectator_registry_gauge_id(spectator_registry_t *reg,
                                               const spectator_id_t *id) {
  return BY_ID(SPECTATOR__GAUGE, id, &no_params);
}
spectator_gauge_t *spectator_registry_gauge_with_ttl_id(spectator_registry_t *reg,
                                                        const spectator_id_t *id, double ttl_s) {
  params_t p = {ttl_s, 0, 0};
  return BY_ID(SPECTATOR__GAUGE, id, &p);
}
spectator_max_gauge_t *spectator_registry_max_gauge_id(spectator_registry_t *reg,
                                                       const spectator_id_t *id) {
  return BY_ID(SPECTATOR__MAX_GAUGE, id, &no_params);
}
spectator_monotonic_counter_t *spectator_registry_monotonic_counter_id(spectator_registry_t *reg,
                                                                       const spectator_id_t *id) {
  return BY_ID(SPECTATOR__MONOTONIC_COUNTER, id, &no_params);
}
spectator_percentile_timer_t *spectator_registry_percentile_timer_id(spectator_registry_t *reg,
                                                                     const spectator_id_t *id,
                                                                     double min_s, double max_s) {
  params_t p = {0, min_s, max_s};
  return BY_ID(SPECTATOR__PERCENTILE_TIMER, id, &p);
}
spectator_percentile_dist_summary_t *spectator_registry_percentile_dist_summary_id(
    spectator_registry_t *reg, const spectator_id_t *id, double min, double max) {
  params_t p = {0, min, max};
  return BY_ID(SPECTATOR__PERCENTILE_DIST_SUMMARY, id, &p);
}

/* ------------------------------------------------------------------------ */
/* Snapshot                                                                  */
/* ------------------------------------------------------------------------ */

static bool measure(spectator__meter_t *m, spectator__snap_ctx_t *ctx) {
  switch ((spectator__type_t)m->type) {
  case SPECTATOR__COUNTER: return spectator__counter_measure((void *)m, ctx);
  case SPECTATOR__TIMER: return spectator__timer_measure((void *)m, ctx);
  case SPECTATOR__DIST_SUMMARY: return spectator__dist_summary_measure((void *)m, ctx);
  case SPECTATOR__GAUGE: return spectator__gauge_measure((void *)m, ctx);
  case SPECTATOR__MAX_GAUGE: return spectator__max_gauge_measure((void *)m, ctx);
  case SPECTATOR__MONOTONIC_COUNTER: return spectator__monotonic_counter_measure((void *)m, ctx);
  case SPECTATOR__PERCENTILE_TIMER: return spectator__percentile_timer_measure((void *)m, ctx);
  case SPECTATOR__PERCENTILE_DIST_SUMMARY:
    return spectator__percentile_dist_summary_measure((void *)m, ctx);
  default: return false;
  }
}

void spectator__registry_collect(spectator_registry_t *reg, spectator__records_t *rs) {
  pthread_mutex_lock(&reg->snap_lock);
  /* Meters that found the stripe pool empty get their stripes now. */
  spectator__stripes_refill(&reg->stripes, false);
  spectator__snap_ctx_t ctx = {rs, spectator__now_ns(reg)};
  size_t n = atomic_load_explicit(&reg->count, memory_order_acquire);
  for (size_t i = 0; i < n; i++) {
    spectator__meter_t *m = meter_at(reg, i);
    if (measure(m, &ctx)) m->last_active_ns = ctx.now_ns;
  }
  pthread_mutex_unlock(&reg->snap_lock);
}

/* Drop interval state without reporting it: used in a forked child so that
 * what the parent had pending is reported once, by the parent. Gauges forget
 * their value too: the child reports only what it sets itself. */
void spectator__meter_discard(spectator__meter_t *m) {
  switch ((spectator__type_t)m->type) {
  case SPECTATOR__GAUGE: {
    struct spectator_gauge *g = (void *)m;
    atomic_store(&g->bits, spectator__d2b(NAN));
    atomic_store(&g->updated, 0);
    return;
  }
  case SPECTATOR__MONOTONIC_COUNTER: {
    /* The parent keeps reporting the source's growth; the child starts over. */
    struct spectator_monotonic_counter *mc = (void *)m;
    atomic_store(&mc->bits, spectator__d2b(NAN));
    atomic_store(&mc->updated, 0);
    mc->prev = NAN;
    return;
  }
  default: {
    spectator__records_t rs;
    spectator__records_init(&rs);
    spectator__snap_ctx_t ctx = {&rs, 0};
    measure(m, &ctx);
    spectator__records_free(&rs);
    return;
  }
  }
}

/* ------------------------------------------------------------------------ */
/* Start / stop                                                              */
/* ------------------------------------------------------------------------ */

int spectator_registry_start(spectator_registry_t *reg) {
  if (!reg) return SPECTATOR_EINVAL;
  if (!reg->uri) {
    static atomic_flag logged = ATOMIC_FLAG_INIT; /* SPEC: log once */
    if (!atomic_flag_test_and_set(&logged))
      spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT,
                     "no URI configured (SPECTATOR_URI): measurements are collected but not "
                     "published");
    return SPECTATOR_ENOURI;
  }
  return spectator__publisher_start(reg);
}

void spectator_registry_stop(spectator_registry_t *reg) {
  if (!reg) return;
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

spectator_counter_t *spectator_counter(const char *name, const char *const *tags) {
  return spectator_registry_counter(spectator_global_registry(), name, tags);
}
spectator_timer_t *spectator_timer(const char *name, const char *const *tags) {
  return spectator_registry_timer(spectator_global_registry(), name, tags);
}
spectator_dist_summary_t *spectator_dist_summary(const char *name, const char *const *tags) {
  return spectator_registry_dist_summary(spectator_global_registry(), name, tags);
}
spectator_gauge_t *spectator_gauge(const char *name, const char *const *tags) {
  return spectator_registry_gauge(spectator_global_registry(), name, tags);
}
spectator_max_gauge_t *spectator_max_gauge(const char *name, const char *const *tags) {
  return spectator_registry_max_gauge(spectator_global_registry(), name, tags);
}
spectator_monotonic_counter_t *spectator_monotonic_counter(const char *name,
                                                           const char *const *tags) {
  return spectator_registry_monotonic_counter(spectator_global_registry(), name, tags);
}
spectator_percentile_timer_t *spectator_percentile_timer(const char *name, const char *const *tags,
                                                         double min_seconds, double max_seconds) {
  return spectator_registry_percentile_timer(spectator_global_registry(), name, tags, min_seconds,
                                             max_seconds);
}
spectator_percentile_dist_summary_t *spectator_percentile_dist_summary(const char *name,
                                                                       const char *const *tags,
                                                                       double min, double max) {
  return spectator_registry_percentile_dist_summary(spectator_global_registry(), name, tags, min,
                                                    max);
}
