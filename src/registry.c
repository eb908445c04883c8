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
 * - What a meter is, the registry only knows through its type's descriptor
 *   (meter.h): the size to carve, how to initialize it, how to measure it at
 *   a snapshot and how to reset it in a forked child.
 *
 * - A snapshot (publisher or spectator_registry_snapshot) holds `snap_lock`
 *   while it swaps each meter's interval state for zero; that lock also owns
 *   the few per-meter fields only snapshots touch (gauge timestamps, monotonic
 *   counter bases). Neither lock is ever held across network I/O or a call into
 *   application code; lock order is lock -> snap_lock never nested, and the
 *   fork hooks take the list lock, then each registry's lock and snap_lock.
 *
 * Bad input and type conflicts give a shared static no-op meter of the
 * requested type: recording on it is harmless and it is never reported. The
 * number of meters is capped (cfg.max_meters); past the cap lookups of new ids
 * give no-op meters and a rate-limited warning.
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "id.h"
#include "registry.h"

/* The descriptor of each type, generated from the one list in meter.h. */
static const spectator__meter_type_t *const types[SPECTATOR__METER_TYPES] = {
#define TYPE_ENTRY(name, stem, lookup) [SPECTATOR__##name] = &spectator__##stem##_type,
    SPECTATOR__METER_TYPE_MAP(TYPE_ENTRY)
#undef TYPE_ENTRY
};

/* ------------------------------------------------------------------------ */
/* Live registries                                                           */
/* ------------------------------------------------------------------------ */

static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static spectator_registry_t *all_head;

void spectator__registries_lock(void) { pthread_mutex_lock(&all_lock); }
void spectator__registries_unlock(void) { pthread_mutex_unlock(&all_lock); }
spectator_registry_t *spectator__registries_head(void) { return all_head; }

void spectator__registries_link(spectator_registry_t *reg) {
  pthread_mutex_lock(&all_lock);
  reg->next_all = all_head;
  all_head = reg;
  pthread_mutex_unlock(&all_lock);
}

void spectator__registries_unlink(spectator_registry_t *reg) {
  pthread_mutex_lock(&all_lock);
  for (spectator_registry_t **p = &all_head; *p; p = &(*p)->next_all) {
    if (*p == reg) {
      *p = reg->next_all;
      break;
    }
  }
  pthread_mutex_unlock(&all_lock);
}

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

static void free_config_copies(spectator_config_t *cfg) {
  for (size_t i = 0; cfg->common_tags && cfg->common_tags[i]; i++)
    free((char *)cfg->common_tags[i]);
  free((void *)cfg->common_tags);
  free((char *)cfg->uri);
  free((char *)cfg->ca_info);
}

static spectator__table_t *table_new(size_t cap) {
  spectator__table_t *t = calloc(1, sizeof(*t) + cap * sizeof(t->slots[0]));
  if (t) t->mask = cap - 1;
  return t;
}

spectator_registry_t *spectator__registry_create(const spectator_config_t *cfg) {
  spectator_registry_t *reg = calloc(1, sizeof(*reg));
  if (!reg) goto nomem;
  reg->cfg = *cfg;
  bool ok = true;
  reg->cfg.uri = dup_str(cfg->uri);
  reg->cfg.ca_info = dup_str(cfg->ca_info);
  reg->cfg.common_tags = merge_common_tags(cfg, &ok);
  if ((cfg->uri && !reg->cfg.uri) || (cfg->ca_info && !reg->cfg.ca_info)) ok = false;
  /* The chunk directory is sized from the cap up front (snapshots read it
   * without the insert lock), so a cap beyond any real use is clamped. */
  if (reg->cfg.max_meters > SPECTATOR__MAX_METERS_LIMIT)
    reg->cfg.max_meters = SPECTATOR__MAX_METERS_LIMIT; /* "no cap", e.g. SIZE_MAX */
  reg->nchunks = reg->cfg.max_meters / SPECTATOR__CHUNK + 1;
  reg->chunks = calloc(reg->nchunks, sizeof(*reg->chunks));
  spectator__table_t *t = table_new(64);
  if (!ok || !reg->chunks || !t) {
    free(t);
    free(reg->chunks);
    free_config_copies(&reg->cfg);
    free(reg);
    goto nomem;
  }
  atomic_init(&reg->table, t);
  atomic_init(&reg->count, 0);
  pthread_mutex_init(&reg->lock, NULL);
  pthread_mutex_init(&reg->snap_lock, NULL);
  return reg;
nomem:
  spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_INIT, "out of memory creating a registry");
  return NULL;
}

static inline spectator__meter_t *meter_at(const spectator_registry_t *reg, size_t i) {
  return reg->chunks[i / SPECTATOR__CHUNK][i % SPECTATOR__CHUNK];
}

void spectator__registry_destroy(spectator_registry_t *reg) {
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
  free_config_copies(&reg->cfg);
  free(reg);
}

size_t spectator_registry_size(spectator_registry_t *reg) {
  return reg ? atomic_load_explicit(&reg->count, memory_order_relaxed) : 0;
}

int64_t spectator__registry_now_ns(const spectator_registry_t *reg) {
  return reg->cfg.clock ? reg->cfg.clock(reg->cfg.clock_ctx) : spectator__monotonic_ns();
}

/* ------------------------------------------------------------------------ */
/* Lookup                                                                    */
/* ------------------------------------------------------------------------ */

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

static void *conflict(spectator__meter_t *m, spectator__type_t type) {
  const char *want = types[type]->name;
  if (!atomic_exchange(&m->conflict_logged, 1))
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                   "id '%.*s' is already a %s and cannot be used as a %s; using a no-op %s",
                   SPECTATOR__LOG_STR(m->id->name), types[m->type]->name, want, want);
  return types[type]->noop;
}

/* Called with reg->lock held: create, index and publish a new meter. */
static spectator__meter_t *create_locked(spectator_registry_t *reg, const spectator__canon_t *c,
                                         spectator__type_t type,
                                         const spectator__meter_params_t *p) {
  const spectator__meter_type_t *mt = types[type];
  size_t n = atomic_load_explicit(&reg->count, memory_order_relaxed);
  if (n >= reg->cfg.max_meters) {
    SPECTATOR__LOG_LIMITED(&reg->rl_full, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                           "registry is full (%zu meters, the max_meters cap): '%.*s' gets a "
                           "no-op %s",
                           n, SPECTATOR__LOG_STR(c->name), mt->name);
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
  spectator__meter_t *m = id ? slab_alloc(reg, mt->size) : NULL;
  if (!m) {
    spectator_id_free(id);
    return NULL;
  }
  m->id = id;
  m->type = (uint8_t)type;
  m->has_statistic = spectator_id_tag(id, "statistic") != NULL;
  m->last_active_ns = spectator__registry_now_ns(reg);
  if (mt->init) {
    static const spectator__meter_params_t none = {0, 0, 0};
    spectator__meter_env_t env = {&reg->stripes, (int64_t)(reg->cfg.meter_ttl_s * 1e9),
                                  m->last_active_ns};
    mt->init(m, p ? p : &none, &env);
  }
  reg->chunks[chunk][n % SPECTATOR__CHUNK] = m;
  table_put(t, m, n);
  atomic_store_explicit(&reg->count, n + 1, memory_order_release);
  return m;
}

void *spectator__registry_lookup(spectator_registry_t *reg, spectator__type_t type,
                                 const char *name, const spectator_id_t *id,
                                 const char *const *tags, const spectator__meter_params_t *p) {
  const spectator__meter_type_t *mt = types[type];
  if (SPECTATOR__UNLIKELY(!reg)) {
    static spectator__ratelimit_t rl_noreg;
    SPECTATOR__LOG_LIMITED(&rl_noreg, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                           "%s lookup on a NULL registry; using a no-op", mt->name);
    return mt->noop;
  }
  spectator__canon_t c;
  int rc;
  if (id)
    rc = spectator__canon_init(&c, NULL, id, NULL);
  else
    rc = spectator__canon_init(&c, name, NULL, tags);
  if (SPECTATOR__UNLIKELY(rc != 0)) {
    spectator__canon_log_error(&c, mt->name, name);
    return mt->noop;
  }
  spectator__meter_t *m = probe(reg, atomic_load_explicit(&reg->table, memory_order_acquire), &c);
  if (!m) {
    pthread_mutex_lock(&reg->lock);
    m = probe(reg, atomic_load_explicit(&reg->table, memory_order_relaxed), &c);
    if (!m) m = create_locked(reg, &c, type, p);
    pthread_mutex_unlock(&reg->lock);
  }
  spectator__canon_free(&c);
  if (!m) return mt->noop;
  if (SPECTATOR__UNLIKELY(m->type != type)) return conflict(m, type);
  return m;
}

/* ------------------------------------------------------------------------ */
/* Snapshot                                                                  */
/* ------------------------------------------------------------------------ */

bool spectator__registry_collect_some(spectator_registry_t *reg, spectator__cursor_t *cur,
                                      spectator__records_t *rs, size_t want) {
  pthread_mutex_lock(&reg->snap_lock);
  if (!cur->started) {
    cur->started = true;
    cur->next = 0;
    cur->end = atomic_load_explicit(&reg->count, memory_order_acquire);
    /* Meters that found the stripe pool empty get their stripes now. */
    spectator__stripes_refill(&reg->stripes, false);
  }
  spectator__snap_ctx_t ctx = {rs, spectator__registry_now_ns(reg)};
  size_t i = cur->next;
  for (; i < cur->end && rs->len < want; i++) {
    spectator__meter_t *m = meter_at(reg, i);
    if (types[m->type]->measure(m, &ctx)) m->last_active_ns = ctx.now_ns;
  }
  pthread_mutex_unlock(&reg->snap_lock);
  cur->next = i;
  return i >= cur->end;
}

void spectator__registry_collect(spectator_registry_t *reg, spectator__records_t *rs) {
  spectator__cursor_t cur = {0};
  spectator__registry_collect_some(reg, &cur, rs, SIZE_MAX);
}

/* ------------------------------------------------------------------------ */
/* Fork hooks                                                                */
/* ------------------------------------------------------------------------ */

void spectator__registries_prefork(void) {
  pthread_mutex_lock(&all_lock);
  for (spectator_registry_t *r = all_head; r; r = r->next_all) {
    pthread_mutex_lock(&r->lock);
    pthread_mutex_lock(&r->snap_lock);
  }
}

void spectator__registries_postfork_parent(void) {
  for (spectator_registry_t *r = all_head; r; r = r->next_all) {
    pthread_mutex_unlock(&r->snap_lock);
    pthread_mutex_unlock(&r->lock);
  }
  pthread_mutex_unlock(&all_lock);
}

/* The parent reports what it had pending; the child drops it, so that nothing
 * is reported twice. Meters stay where they are: pointers stay valid. */
void spectator__registries_postfork_child(void) {
  for (spectator_registry_t *r = all_head; r; r = r->next_all) {
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->snap_lock, NULL);
    spectator__snap_ctx_t drop = {NULL, 0};
    size_t n = atomic_load_explicit(&r->count, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
      spectator__meter_t *m = meter_at(r, i);
      const spectator__meter_type_t *mt = types[m->type];
      if (mt->postfork_child)
        mt->postfork_child(m);
      else
        mt->measure(m, &drop);
    }
  }
  pthread_mutex_init(&all_lock, NULL);
}
