/*
 * Registries: where ids become meters, and where meters end.
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
 *   again, and publish a new meter with a release store.
 *
 * - Meters are pinned or transient (meter.h). A lookup that hands out a
 *   pointer pins its meter: it is never moved or freed while the registry
 *   lives, which is what lets the hot path be a plain atomic instruction on
 *   it. Pinned meters are carved from blocks (slabs) freed with the registry,
 *   each on cache lines of its own. A meter that only one-shot calls use
 *   (spectator_record) is transient: allocated on its own, and once it has
 *   been idle for meter_ttl_s a snapshot expires it: it is marked dead, its
 *   slot becomes a tombstone (probes go on past it; inserts reuse it; an index
 *   with too many is rebuilt) and it stops counting against the cap.
 *
 * - An expired meter may still be read by a lookup that found it before it
 *   expired, and even recorded into by a one-shot call, so it is freed only
 *   after a grace period (smr.h: every lookup in progress has ended) and
 *   after a complete snapshot has measured it since (what such a call
 *   recorded is reported), and only when no snapshot's records still borrow
 *   its id. Replaced indexes are freed after a grace period too. Memory
 *   therefore follows the meters in use, however many ids come and go.
 *
 * - Meters are also kept in an array of fixed-size chunks of positions, which
 *   a snapshot walks up to the positions used so far. The position of a freed
 *   meter is reused.
 *
 * - What a meter is, the registry only knows through its type's descriptor
 *   (meter.h): the size to carve, how to initialize it, how to measure it at
 *   a snapshot, how to record one value and how to reset it in a forked child.
 *
 * - A snapshot (publisher or spectator_registry_snapshot) holds `snap_lock`
 *   while it swaps each meter's interval state for zero; that lock also owns
 *   the few per-meter fields only snapshots touch (gauge timestamps, monotonic
 *   counter bases). Neither lock is ever held across network I/O or a call into
 *   application code but the configured clock: a snapshot calls the
 *   registry's pollers (poller.c) before it takes either. Lock order is
 *   snap_lock -> lock, and the fork hooks take the list lock, then each
 *   registry's snap_lock and lock.
 *
 * Bad input and type conflicts give a shared static no-op meter of the
 * requested type: recording on it is harmless and it is never reported. The
 * number of live meters is capped (cfg.max_meters); past the cap lookups of
 * new ids give no-op meters (one-shot calls record nothing), a warning that
 * names the id (each distinct name pattern is reported, repeats are rate
 * limited: log.h) and a count in
 * spectator.measurements{id=dropped,error=registry-full}. The library's own
 * meters, that counter among them, are outside the cap (they are what tells
 * that the cap was reached), within a reserve of their own
 * (SPECTATOR__SELF_METERS_MAX). Nothing is logged with a lock held or inside
 * an SMR section.
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "hash.h"
#include "id.h"
#include "poller.h"
#include "registry.h"
#include "smr.h"

/* ------------------------------------------------------------------------ */
/* Live registries                                                           */
/* ------------------------------------------------------------------------ */

static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static spectator_registry_t *all_head;

void spectator__registries_lock(void) { pthread_mutex_lock(&all_lock); }
int spectator__registries_lock_until(int64_t deadline_ns) {
  return spectator__mutex_lock_until(&all_lock, deadline_ns);
}
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
 * of owned strings (configured tags last, so they win when encoded). With
 * env_common_tags, ATLAS_SKIP_COMMON_TAGS removes keys from the whole set,
 * the configured tags included (the environment's were filtered by
 * spectator__env_common_tags). */
static const char **merge_common_tags(const spectator_config_t *cfg, bool *ok) {
  char **env = cfg->env_common_tags ? spectator__env_common_tags() : NULL;
  *ok = !(cfg->env_common_tags && !env);
  const char *const *conf = cfg->common_tags;
  size_t n = 0;
  for (size_t i = 0; env && env[i]; i++) n++;
  for (size_t i = 0; conf && conf[i]; i++) n++;
  const char **out = calloc(n + 1, sizeof(*out));
  if (!out) {
    free(env);
    *ok = false;
    return NULL;
  }
  size_t j = 0;
  for (size_t i = 0; env && env[i]; i++)
    if (!(out[j++] = dup_str(env[i]))) *ok = false;
  for (size_t i = 0; conf && conf[i]; i += 2) {
    if (cfg->env_common_tags && spectator__env_skips_common_tag(conf[i], strlen(conf[i]))) continue;
    out[j] = dup_str(conf[i]);
    out[j + 1] = dup_str(conf[i + 1]);
    if (!out[j] || !out[j + 1]) *ok = false;
    j += 2;
  }
  free(env);
  return out;
}

/* Keys the aggregator does not count as user tags (the name is counted as
 * one on its own). */
static bool reserved_key(const char *k) {
  return strncmp(k, "nf.", 3) == 0 || strncmp(k, "atlas.", 6) == 0 || strcmp(k, "name") == 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sorted, unique user-tag keys of the common tags (common_user_keys);
 * false when memory runs out. Once per registry, so a lookup that creates a
 * meter counts its user tags in O(its tags x log(common tags)). */
static bool index_common_keys(spectator_registry_t *reg) {
  const char *const *common = reg->cfg.common_tags;
  size_t n = 0;
  for (size_t i = 0; common && common[i]; i += 2) n += !reserved_key(common[i]);
  if (!n) return true;
  const char **keys = malloc(n * sizeof(*keys));
  if (!keys) return false;
  n = 0;
  for (size_t i = 0; common[i]; i += 2)
    if (!reserved_key(common[i])) keys[n++] = common[i];
  qsort(keys, n, sizeof(*keys), cmp_str);
  size_t u = 0;
  for (size_t i = 0; i < n; i++)
    if (!u || strcmp(keys[u - 1], keys[i]) != 0) keys[u++] = keys[i];
  reg->common_user_keys = keys;
  reg->ncommon_user_keys = u;
  return true;
}

static void free_config_copies(spectator_config_t *cfg) {
  for (size_t i = 0; cfg->common_tags && cfg->common_tags[i]; i++)
    free((char *)cfg->common_tags[i]);
  free((void *)cfg->common_tags);
  free((char *)cfg->uri);
  free((char *)cfg->ca_info);
  free((char *)cfg->output_location);
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
  reg->cfg.output_location = dup_str(cfg->output_location);
  reg->cfg.common_tags = merge_common_tags(cfg, &ok);
  if ((cfg->uri && !reg->cfg.uri) || (cfg->ca_info && !reg->cfg.ca_info) ||
      (cfg->output_location && !reg->cfg.output_location))
    ok = false;
  /* The chunk directory is sized from the cap up front (snapshots read it
   * without the insert lock), so a cap beyond any real use is clamped.
   * Expired meters keep their positions until they are freed: twice the cap,
   * within what a slot can index. */
  if (reg->cfg.max_meters > SPECTATOR__MAX_METERS_LIMIT)
    reg->cfg.max_meters = SPECTATOR__MAX_METERS_LIMIT; /* "no cap", e.g. SIZE_MAX */
  reg->max_positions = 2 * reg->cfg.max_meters + SPECTATOR__SELF_METERS_MAX;
  if (reg->max_positions > SPECTATOR__SLOT_INDEX_MASK - 1)
    reg->max_positions = SPECTATOR__SLOT_INDEX_MASK - 1;
  reg->nchunks = reg->max_positions / SPECTATOR__CHUNK + 1;
  reg->chunks = calloc(reg->nchunks, sizeof(*reg->chunks));
  spectator__table_t *t = table_new(64);
  if (ok && reg->cfg.common_tags) ok = index_common_keys(reg);
  if (!ok || !reg->chunks || !t) {
    free(t);
    free(reg->chunks);
    free(reg->common_user_keys);
    free_config_copies(&reg->cfg);
    free(reg);
    goto nomem;
  }
  atomic_init(&reg->table, t);
  atomic_init(&reg->count, 0);
  atomic_init(&reg->end, 0);
  atomic_init(&reg->wall_offset_ns, spectator__realtime_ns() - spectator__registry_now_ns(reg));
  pthread_mutex_init(&reg->lock, NULL);
  pthread_mutex_init(&reg->snap_lock, NULL);
  return reg;
nomem:
  spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_INIT, "out of memory creating a registry");
  return NULL;
}

/* The meter at a position, NULL when there is none (any more). */
static inline spectator__meter_t *meter_at(const spectator_registry_t *reg, size_t i) {
  return atomic_load_explicit(&reg->chunks[i / SPECTATOR__CHUNK][i % SPECTATOR__CHUNK],
                              memory_order_acquire);
}

static void free_meter(spectator__meter_t *m) {
  spectator_id_free(m->id);
  if (m->own_alloc) free(m);
}

void spectator__registry_destroy(spectator_registry_t *reg) {
  size_t end = atomic_load(&reg->end);
  for (size_t i = 0; i < end; i++) {
    spectator__meter_t *m = meter_at(reg, i);
    if (m) free_meter(m); /* expired ones too: they keep their position until freed */
  }
  while (reg->slab) {
    spectator__slab_t *next = reg->slab->next;
    free(reg->slab);
    reg->slab = next;
  }
  for (size_t c = 0; c < reg->nchunks; c++) free(reg->chunks[c]);
  free(reg->chunks);
  spectator__stripes_free(&reg->stripes);
  free(atomic_load(&reg->table));
  while (reg->retired) {
    spectator__retired_t *next = reg->retired->next;
    free(reg->retired->table);
    free(reg->retired);
    reg->retired = next;
  }
  free(reg->free_pos);
  pthread_mutex_destroy(&reg->lock);
  pthread_mutex_destroy(&reg->snap_lock);
  free(reg->common_user_keys);
  free_config_copies(&reg->cfg);
  free(reg);
}

size_t spectator_registry_size(spectator_registry_t *reg) {
  return reg ? atomic_load_explicit(&reg->count, memory_order_relaxed) : 0;
}

int64_t spectator__registry_now_ns(const spectator_registry_t *reg) {
  return spectator__clock_now(reg->cfg.clock, reg->cfg.clock_ctx);
}

/* ------------------------------------------------------------------------ */
/* The index                                                                 */
/* ------------------------------------------------------------------------ */

static inline uint32_t slot_tag(uint64_t hash) {
  return (uint32_t)(hash >> 57) << SPECTATOR__SLOT_INDEX_BITS;
}

/* The live meter for c, or NULL. Lock-free (inside an SMR section), or with
 * reg->lock held. A dead meter is never returned. */
static inline spectator__meter_t *probe(spectator_registry_t *reg, spectator__table_t *t,
                                        const spectator__canon_t *c) {
  uint32_t tag = slot_tag(c->hash);
  for (size_t i = c->hash & t->mask;; i = (i + 1) & t->mask) {
    uint32_t v = atomic_load_explicit(&t->slots[i], memory_order_acquire);
    if (!v) return NULL;
    if (v == SPECTATOR__SLOT_TOMBSTONE || (v & ~SPECTATOR__SLOT_INDEX_MASK) != tag) continue;
    spectator__meter_t *m = meter_at(reg, (v & SPECTATOR__SLOT_INDEX_MASK) - 1);
    if (m && spectator__canon_equals_id(c, m->id))
      return atomic_load_explicit(&m->state, memory_order_acquire) == SPECTATOR__DEAD ? NULL : m;
  }
}

/* Index the meter at position pos in t (reg->lock held), in the first empty
 * or tombstone slot of its chain. Returns whether an empty slot was used. */
static bool table_put(spectator__table_t *t, const spectator__meter_t *m, size_t pos) {
  size_t i = m->id->hash & t->mask;
  uint32_t v;
  while ((v = atomic_load_explicit(&t->slots[i], memory_order_relaxed)) &&
         v != SPECTATOR__SLOT_TOMBSTONE)
    i = (i + 1) & t->mask;
  atomic_store_explicit(&t->slots[i], slot_tag(m->id->hash) | (uint32_t)(pos + 1),
                        memory_order_release);
  return v == 0;
}

/* Make the meter at position pos unreachable from t (reg->lock held). */
static void table_remove(spectator__table_t *t, const spectator__meter_t *m, size_t pos) {
  uint32_t want = slot_tag(m->id->hash) | (uint32_t)(pos + 1);
  for (size_t i = m->id->hash & t->mask;; i = (i + 1) & t->mask) {
    uint32_t v = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
    if (!v) return;
    if (v == want) {
      atomic_store_explicit(&t->slots[i], SPECTATOR__SLOT_TOMBSTONE, memory_order_release);
      return;
    }
  }
}

static void retire(spectator_registry_t *reg, spectator__retired_t *r, uint64_t epoch) {
  r->epoch = epoch;
  r->grace_pass = 0;
  r->next = reg->retired;
  reg->retired = r;
}

/* Room for one more meter in the index (reg->lock held): a new index, twice
 * the live meters (at least 64, load factor under 1/2, no tombstones), when
 * this one is half used. The old one is retired: lookups in progress may be
 * reading it. Returns the index to insert into, NULL when memory runs out. */
static spectator__table_t *table_reserve(spectator_registry_t *reg) {
  spectator__table_t *t = atomic_load_explicit(&reg->table, memory_order_relaxed);
  if (2 * (reg->table_used + 1) <= t->mask + 1) return t;
  size_t live = atomic_load_explicit(&reg->count, memory_order_relaxed) + 1, cap = 64;
  while (cap < 4 * live) cap *= 2;
  spectator__retired_t *r = calloc(1, sizeof(*r));
  spectator__table_t *fresh = r ? table_new(cap) : NULL;
  if (!fresh) {
    free(r);
    return NULL;
  }
  size_t used = 0, end = atomic_load_explicit(&reg->end, memory_order_relaxed);
  for (size_t i = 0; i < end; i++) {
    spectator__meter_t *m = meter_at(reg, i);
    if (m && atomic_load_explicit(&m->state, memory_order_relaxed) != SPECTATOR__DEAD) {
      table_put(fresh, m, i);
      used++;
    }
  }
  atomic_store_explicit(&reg->table, fresh, memory_order_release);
  reg->table_used = used;
  r->table = t;
  retire(reg, r, spectator__smr_retire_epoch());
  return fresh;
}

/* ------------------------------------------------------------------------ */
/* Creation                                                                  */
/* ------------------------------------------------------------------------ */

/* Zeroed, cache-line-aligned memory for a pinned meter (reg->lock held).
 * Blocks grow from 4 KiB to 64 KiB, so a small registry stays small. */
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

/* Zeroed memory of its own for a transient meter. */
static void *own_alloc(size_t size) {
  size = (size + SPECTATOR__CACHELINE - 1) & ~(size_t)(SPECTATOR__CACHELINE - 1);
  void *mem = NULL;
  if (posix_memalign(&mem, SPECTATOR__CACHELINE, size) != 0) return NULL;
  memset(mem, 0, size);
  return mem;
}

/* A free position (reg->lock held): a freed meter's, or the next new one;
 * SIZE_MAX when there is none. */
static size_t take_position(spectator_registry_t *reg) {
  if (reg->nfree) return reg->free_pos[--reg->nfree];
  size_t end = atomic_load_explicit(&reg->end, memory_order_relaxed);
  if (end >= reg->max_positions) return SIZE_MAX;
  size_t chunk = end / SPECTATOR__CHUNK;
  if (!reg->chunks[chunk] &&
      !(reg->chunks[chunk] = calloc(SPECTATOR__CHUNK, sizeof(*reg->chunks[chunk]))))
    return SIZE_MAX;
  return end;
}

static void *conflict(spectator__meter_t *m, spectator__type_t type) {
  const char *want = spectator__meter_types[type]->name;
  if (!atomic_exchange(&m->conflict_logged, 1))
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                   "id '%.*s' is already a %s and cannot be used as a %s; using a no-op %s",
                   SPECTATOR__LOG_STR(m->id->name), spectator__meter_types[m->type]->name, want,
                   want);
  return spectator__meter_types[type]->noop;
}

/* Mistake kinds of the registry's log lines (spectator__mistake_key); the
 * id errors use theirs (spectator__id_error_t), which are smaller. */
enum { MISTAKE_FULL = 0x100, MISTAKE_SELF_FULL, MISTAKE_USER_TAGS };

/* What create_locked did. */
typedef enum { FOUND, CREATED, REFUSED_FULL, REFUSED_SELF_FULL, NO_MEMORY } outcome_t;

/* Called with reg->lock held: create, index and publish a new meter, pinned
 * or transient; the library's own (self) outside the cap. */
static spectator__meter_t *create_locked(spectator_registry_t *reg, const spectator__canon_t *c,
                                         spectator__type_t type, const spectator__meter_params_t *p,
                                         uint8_t state, bool self, outcome_t *outcome) {
  const spectator__meter_type_t *mt = spectator__meter_types[type];
  size_t n = atomic_load_explicit(&reg->count, memory_order_relaxed);
  if (!self && n - reg->self_count >= reg->cfg.max_meters) {
    *outcome = REFUSED_FULL;
    return NULL;
  }
  if (self && reg->self_count >= SPECTATOR__SELF_METERS_MAX) {
    *outcome = REFUSED_SELF_FULL;
    return NULL;
  }
  /* Every position taken: by meters that expired and wait to be freed. The
   * registry is as full as at its cap. */
  if (!reg->nfree && atomic_load_explicit(&reg->end, memory_order_relaxed) >= reg->max_positions) {
    *outcome = REFUSED_FULL;
    return NULL;
  }
  *outcome = NO_MEMORY;
  size_t pos = take_position(reg);
  if (pos == SIZE_MAX) return NULL;
  spectator__table_t *t = table_reserve(reg);
  spectator_id_t *id = t ? spectator__id_from_canon(c) : NULL;
  bool own = state == SPECTATOR__TRANSIENT;
  spectator__meter_t *m = !id ? NULL : own ? own_alloc(mt->size) : slab_alloc(reg, mt->size);
  if (!m) {
    spectator_id_free(id);
    if (pos == atomic_load_explicit(&reg->end, memory_order_relaxed)) return NULL;
    reg->free_pos[reg->nfree++] = pos; /* it came from there: there is room */
    return NULL;
  }
  m->id = id;
  m->type = (uint8_t)type;
  m->has_statistic = spectator_id_tag(id, "statistic") != NULL;
  m->own_alloc = own;
  m->self = self;
  atomic_init(&m->state, state);
  m->last_active_ns = spectator__registry_now_ns(reg);
  if (mt->init) {
    static const spectator__meter_params_t none = {0, 0, 0};
    spectator__meter_env_t env = {&reg->stripes,      (int64_t)(reg->cfg.meter_ttl_s * 1e9),
                                  m->last_active_ns,  reg->cfg.clock,
                                  reg->cfg.clock_ctx, &reg->wall_offset_ns,
                                  reg->samples};
    mt->init(m, p ? p : &none, &env);
  }
  atomic_store_explicit(&reg->chunks[pos / SPECTATOR__CHUNK][pos % SPECTATOR__CHUNK], m,
                        memory_order_release);
  if (pos == atomic_load_explicit(&reg->end, memory_order_relaxed))
    atomic_store_explicit(&reg->end, pos + 1, memory_order_release);
  if (table_put(t, m, pos)) reg->table_used++;
  if (self) reg->self_count++;
  atomic_store_explicit(&reg->count, n + 1, memory_order_release);
  *outcome = CREATED;
  return m;
}

/* ------------------------------------------------------------------------ */
/* Lookup and one-shot recording                                             */
/* ------------------------------------------------------------------------ */

/* The meter for c of this type, created when there is none (state: what a
 * new one is; self: one of the library's own), inside an SMR section. A
 * transient meter a lookup finds is pinned when want is SPECTATOR__PINNED.
 * *outcome, which the caller sets to FOUND, is set on a miss: CREATED, or
 * why there is none (NULL returned), for the caller to log outside the
 * section. */
static inline __attribute__((always_inline)) spectator__meter_t *find_or_create(
    spectator_registry_t *reg, const spectator__canon_t *c, spectator__type_t type,
    const spectator__meter_params_t *p, uint8_t want, bool self, outcome_t *outcome) {
  spectator__meter_t *m = probe(reg, atomic_load_explicit(&reg->table, memory_order_acquire), c);
  if (m && want == SPECTATOR__PINNED &&
      atomic_load_explicit(&m->state, memory_order_relaxed) != SPECTATOR__PINNED) {
    uint8_t st = SPECTATOR__TRANSIENT;
    /* A transient meter becomes pinned, unless it just expired. */
    if (!atomic_compare_exchange_strong(&m->state, &st, SPECTATOR__PINNED) && st == SPECTATOR__DEAD)
      m = NULL;
  }
  if (!m) {
    pthread_mutex_lock(&reg->lock);
    m = probe(reg, atomic_load_explicit(&reg->table, memory_order_relaxed), c);
    if (m && want == SPECTATOR__PINNED) atomic_store(&m->state, SPECTATOR__PINNED);
    if (!m) m = create_locked(reg, c, type, p, want, self, outcome);
    pthread_mutex_unlock(&reg->lock);
  }
  return m;
}

/* The user tags every datapoint of m will carry, as the aggregator counts
 * them: the name, and the keys outside nf.* and atlas.* of the id, the
 * statistic tag and the type's own tag (percentile), and of the common tags
 * the ones these do not override. */
static size_t user_tags(const spectator_registry_t *reg, const spectator__meter_t *m) {
  const spectator_id_t *id = m->id;
  size_t own = 0, overridden = 0;
#define OWN(k)                                                                                \
  do {                                                                                        \
    const char *k_ = (k);                                                                     \
    if (reserved_key(k_)) break;                                                              \
    own++;                                                                                    \
    overridden +=                                                                             \
        reg->ncommon_user_keys && bsearch(&k_, reg->common_user_keys, reg->ncommon_user_keys, \
                                          sizeof(*reg->common_user_keys), cmp_str) != NULL;   \
  } while (0)
  for (size_t i = 0; i < id->ntags; i++) OWN(id->tags[2 * i]);
  if (!spectator_id_tag(id, "statistic")) OWN("statistic");
  const char *extra = spectator__meter_types[m->type]->extra_tag;
  if (extra && !spectator_id_tag(id, extra)) OWN(extra);
#undef OWN
  return 1 + own + reg->ncommon_user_keys - overridden;
}

/* The mistake key of a registry's line about a name: the same mistake in
 * two registries is two mistakes. */
static uint64_t registry_mistake(const spectator_registry_t *reg, unsigned kind, const char *name) {
  return spectator__mistake_key(kind, name, NULL) ^
         spectator__hash_fold((uint64_t)(uintptr_t)reg, SPECTATOR__HASH_K1);
}

static bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A name pattern being hashed, 128 bytes at a time. */
typedef struct {
  char buf[128];
  size_t n;
  uint64_t h;
} pattern_t;

static void pattern_flush(pattern_t *p) {
  if (!p->n) return;
  p->h = spectator__hash_fold(p->h ^ spectator__hash_bytes(spectator__hash_seed(), p->buf, p->n),
                              SPECTATOR__HASH_K2);
  p->n = 0;
}

static void pattern_put(pattern_t *p, char c) {
  if (p->n == sizeof(p->buf)) pattern_flush(p);
  p->buf[p->n++] = c;
}

/* The mistake key of a refused name's pattern: the name with each run of hex
 * digits that holds a decimal digit ("42", "3f2a9c1e") read as one '#', so
 * that "user.1234.requests" and "user.98.requests" are one mistake (ids made
 * from numbers are what fills a registry) while different names are not. */
static uint64_t pattern_mistake(const spectator_registry_t *reg, unsigned kind, const char *name) {
  pattern_t p = {.n = 0, .h = registry_mistake(reg, kind, NULL)};
  for (const char *s = name; *s;) {
    if (!is_hex(*s)) {
      pattern_put(&p, *s++);
      continue;
    }
    const char *end = s;
    bool digit = false;
    for (; is_hex(*end); end++) digit |= *end >= '0' && *end <= '9';
    if (digit)
      pattern_put(&p, '#');
    else
      while (s < end) pattern_put(&p, *s++);
    s = end;
  }
  pattern_flush(&p);
  return p.h;
}

/* A new meter whose datapoints will carry n user tags: a warning past what
 * the aggregator accepts (outside any lock or SMR section). */
static void check_user_tags(const spectator_registry_t *reg, const spectator__meter_type_t *mt,
                            const char *name, size_t n) {
  if (n <= SPECTATOR__MAX_USER_TAGS) return;
  const char *extra = mt->extra_tag;
  SPECTATOR__LOG_MISTAKE(registry_mistake(reg, MISTAKE_USER_TAGS, name), SPECTATOR_LOG_WARN,
                         SPECTATOR_LOGGER_REGISTRY,
                         "%s '%.*s' has %zu user tags (its name, its tag keys, the common tag "
                         "keys and the statistic%s%s tag%s it adds, except nf.* and atlas.* "
                         "keys): the aggregator accepts at most %d and will reject its "
                         "measurements",
                         mt->name, SPECTATOR__LOG_STR(name), n, extra ? " and " : "",
                         extra ? extra : "", extra ? "s" : "", SPECTATOR__MAX_USER_TAGS);
}

/* The counter of lookups the cap refused. */
static spectator_counter_t *full_counter(spectator_registry_t *reg) {
  spectator_counter_t *c = atomic_load_explicit(&reg->full_counter, memory_order_acquire);
  if (!c) {
    c = spectator__registry_lookup_self(reg, SPECTATOR__COUNTER, "spectator.measurements",
                                        SPECTATOR_TAGS("id", "dropped", "error", "registry-full"));
    if (spectator__is_noop(c)) return c; /* no memory: not kept, tried again next time */
    atomic_store_explicit(&reg->full_counter, c, memory_order_release);
  }
  return c;
}

/* A lookup or one-shot call that got no meter (outside any lock or SMR
 * section): a refusal of the cap is counted, and the id named in a warning. */
static __attribute__((noinline)) void refused(spectator_registry_t *reg,
                                              const spectator__canon_t *c,
                                              const spectator__meter_type_t *mt,
                                              outcome_t outcome) {
  char id[256];
  if (outcome == REFUSED_FULL) {
    spectator_counter_increment(full_counter(reg));
    uint64_t n = spectator__mistake_seen(pattern_mistake(reg, MISTAKE_FULL, c->name));
    if (!n) return;
    spectator__canon_format(c, id, sizeof(id));
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                   "registry is full (%zu meters, the max_meters cap): new %s '%s' dropped; "
                   "using a no-op, counted in "
                   "spectator.measurements{id=dropped,error=registry-full} (occurrence %llu)",
                   reg->cfg.max_meters, mt->name, id, (unsigned long long)n);
  } else if (outcome == REFUSED_SELF_FULL) {
    uint64_t n = spectator__mistake_seen(registry_mistake(reg, MISTAKE_SELF_FULL, c->name));
    if (!n) return;
    spectator__canon_format(c, id, sizeof(id));
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                   "the registry already holds %zu meters of the library's own: new %s '%s' "
                   "dropped (occurrence %llu)",
                   SPECTATOR__SELF_METERS_MAX, mt->name, id, (unsigned long long)n);
  } else if (outcome == NO_MEMORY) {
    static spectator__ratelimit_t rl_nomem;
    SPECTATOR__LOG_LIMITED(&rl_nomem, SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_REGISTRY,
                           "out of memory creating %s '%.*s'; using a no-op", mt->name,
                           SPECTATOR__LOG_STR(c->name));
  }
}

/* Canonicalize a lookup's id; false (logged) for bad input. */
static bool canon(spectator__canon_t *c, const spectator__meter_type_t *mt, const char *name,
                  const spectator_id_t *id, const char *const *tags) {
  int rc =
      id ? spectator__canon_init(c, NULL, id, NULL) : spectator__canon_init(c, name, NULL, tags);
  if (SPECTATOR__LIKELY(rc == 0)) return true;
  spectator__canon_log_error(c, mt->name, id ? id->name : name);
  return false;
}

static void log_null_registry(const spectator__meter_type_t *mt) {
  static spectator__ratelimit_t rl_noreg;
  SPECTATOR__LOG_LIMITED(&rl_noreg, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                         "%s lookup on a NULL registry; using a no-op", mt->name);
}

/* After a lookup that missed (outside any lock or SMR section): a refusal,
 * or a new pinned meter whose user tags are counted. */
static __attribute__((noinline)) void missed(spectator_registry_t *reg, const spectator__canon_t *c,
                                             const spectator__meter_type_t *mt,
                                             spectator__meter_t *m, outcome_t outcome) {
  if (!m)
    refused(reg, c, mt, outcome);
  else if (outcome == CREATED)
    check_user_tags(reg, mt, c->name, user_tags(reg, m));
}

/* A lookup (self: of one of the library's own meters); inlined into each
 * entry point. */
static inline __attribute__((always_inline)) void *lookup(
    spectator_registry_t *reg, spectator__type_t type, const char *name, const spectator_id_t *id,
    const char *const *tags, const spectator__meter_params_t *p, bool self) {
  const spectator__meter_type_t *mt = spectator__meter_types[type];
  if (SPECTATOR__UNLIKELY(!reg)) {
    log_null_registry(mt);
    return mt->noop;
  }
  spectator__canon_t c;
  if (!canon(&c, mt, name, id, tags)) return mt->noop;
  outcome_t outcome = FOUND;
  spectator__smr_slot_t *smr = spectator__smr_enter();
  spectator__meter_t *m = smr ? find_or_create(reg, &c, type, p, SPECTATOR__PINNED, self, &outcome)
                              : (outcome = NO_MEMORY, NULL);
  spectator__smr_leave(smr);
  /* A pinned meter is never freed: read after the section. */
  if (SPECTATOR__UNLIKELY(outcome != FOUND)) missed(reg, &c, mt, m, outcome);
  spectator__canon_free(&c);
  if (!m) return mt->noop;
  if (SPECTATOR__UNLIKELY(m->type != type)) return conflict(m, type);
  return m;
}

void *spectator__registry_lookup(spectator_registry_t *reg, spectator__type_t type,
                                 const char *name, const spectator_id_t *id,
                                 const char *const *tags, const spectator__meter_params_t *p) {
  return lookup(reg, type, name, id, tags, p, false);
}

void *spectator__registry_lookup_self(spectator_registry_t *reg, spectator__type_t type,
                                      const char *name, const char *const *tags) {
  return lookup(reg, type, name, NULL, tags, NULL, true);
}

void spectator__registry_count_measurements(spectator_registry_t *reg, const char *error,
                                            uint64_t n) {
  if (!n) return;
  const char *const dropped[] = {"id", "dropped", "error", error, NULL};
  const char *const sent[] = {"id", "sent", NULL};
  spectator_counter_t *c = lookup(reg, SPECTATOR__COUNTER, "spectator.measurements", NULL,
                                  error ? dropped : sent, NULL, true);
  spectator_counter_add(c, (double)n);
}

void spectator__registry_record(spectator_registry_t *reg, spectator__type_t type, const char *name,
                                const char *const *tags, double value) {
  const spectator__meter_type_t *mt = spectator__meter_types[type];
  if (SPECTATOR__UNLIKELY(!reg)) {
    log_null_registry(mt);
    return;
  }
  spectator__canon_t c;
  if (!canon(&c, mt, name, NULL, tags)) return;
  outcome_t outcome = FOUND;
  spectator__smr_slot_t *smr = spectator__smr_enter();
  spectator__meter_t *m =
      smr ? find_or_create(reg, &c, type, mt->defaults, SPECTATOR__TRANSIENT, false, &outcome)
          : (outcome = NO_MEMORY, NULL);
  /* Recorded inside the section: an expiring meter is not freed under it. */
  bool conflicted = m && m->type != type;
  if (m && SPECTATOR__LIKELY(!conflicted)) mt->record(m, value);
  size_t ntags = SPECTATOR__UNLIKELY(outcome == CREATED) ? user_tags(reg, m) : 0;
  spectator__smr_leave(smr);
  if (conflicted)
    conflict(m, type);
  else if (SPECTATOR__UNLIKELY(!m))
    refused(reg, &c, mt, outcome);
  if (SPECTATOR__UNLIKELY(ntags)) check_user_tags(reg, mt, c.name, ntags);
  spectator__canon_free(&c);
}

void *spectator__registry_null_id(spectator_registry_t *reg, spectator__type_t type) {
  const spectator__meter_type_t *mt = spectator__meter_types[type];
  if (!reg) { /* the NULL registry line */
    log_null_registry(mt);
    return mt->noop;
  }
  spectator__canon_t c = {.error = SPECTATOR__ID_NULL};
  spectator__canon_log_error(&c, mt->name, NULL);
  return mt->noop;
}

/* ------------------------------------------------------------------------ */
/* Snapshot and expiry                                                       */
/* ------------------------------------------------------------------------ */

/* At the start of a snapshot with no other in progress (both locks held):
 * expired meters whose grace period is over get this snapshot as the one
 * that measures them a last time; replaced indexes whose grace period is
 * over are freed. */
static void begin_pass(spectator_registry_t *reg, uint64_t seq) {
  uint64_t oldest = spectator__smr_oldest();
  for (spectator__retired_t **rp = &reg->retired; *rp;) {
    spectator__retired_t *r = *rp;
    if (r->epoch >= oldest) {
      rp = &r->next;
    } else if (r->table) {
      *rp = r->next;
      free(r->table);
      free(r);
    } else {
      if (!r->grace_pass) r->grace_pass = seq;
      rp = &r->next;
    }
  }
}

/* At the end of a complete snapshot that no other overlaps (both locks
 * held): the expired meters it measured after their grace period are freed
 * and their positions reused. */
static void end_pass(spectator_registry_t *reg, uint64_t seq) {
  /* Samples in the rings point at their meters: none may be left for a
   * meter about to be freed. Everything a lookup that found such a meter
   * recorded was published before its grace period ended, so one drain
   * here takes it. */
  bool freeing = false;
  for (spectator__retired_t *r = reg->retired; r && !freeing; r = r->next)
    freeing = r->meter && r->grace_pass && r->grace_pass <= seq;
  if (freeing && reg->fence) reg->fence(reg);
  for (spectator__retired_t **rp = &reg->retired; *rp;) {
    spectator__retired_t *r = *rp;
    if (!r->meter || !r->grace_pass || r->grace_pass > seq) {
      rp = &r->next;
      continue;
    }
    *rp = r->next;
    atomic_store_explicit(&reg->chunks[r->pos / SPECTATOR__CHUNK][r->pos % SPECTATOR__CHUNK], NULL,
                          memory_order_release);
    reg->free_pos[reg->nfree++] = r->pos;
    free_meter(r->meter);
    free(r);
  }
}

/* Expire the idle transient meters found by a part of a snapshot (snap_lock
 * held): each is marked dead unless a lookup pinned it meanwhile, removed
 * from the index and from the count, and retired. */
/* Take a registry lock, giving up at deadline_ns when one is set (0: wait).
 * A snapshot and a lookup miss hold them for microseconds: past a deadline,
 * one is held by a thread that will not give it back (one that exit()
 * interrupted, from a signal handler). */
static bool lock_by(pthread_mutex_t *mu, int64_t deadline_ns) {
  if (!deadline_ns) return pthread_mutex_lock(mu) == 0;
  return spectator__mutex_lock_until(mu, deadline_ns) == 0;
}

/* The same for the insert lock when a snapshot only wants it to free or
 * expire meters, which a later snapshot can do: a snapshot with a deadline
 * gives it up after MAINTENANCE_WAIT_NS, keeping its time for sending. */
#define MAINTENANCE_WAIT_NS (10 * 1000 * 1000LL)
static bool lock_for_maintenance(spectator_registry_t *reg, int64_t deadline_ns) {
  if (!deadline_ns) return lock_by(&reg->lock, 0);
  int64_t soon = spectator__monotonic_ns() + MAINTENANCE_WAIT_NS;
  return lock_by(&reg->lock, soon < deadline_ns ? soon : deadline_ns);
}

static void expire(spectator_registry_t *reg, spectator__retired_t *found, int64_t deadline_ns) {
  if (!found) return;
  if (!lock_for_maintenance(reg, deadline_ns)) { /* they expire at a later snapshot */
    while (found) {
      spectator__retired_t *next = found->next;
      free(found);
      found = next;
    }
    return;
  }
  /* Room to give every position back when they are freed. */
  size_t need = reg->nfree, dying = 0;
  for (spectator__retired_t *r = found; r; r = r->next) dying++;
  for (spectator__retired_t *r = reg->retired; r; r = r->next) need += r->meter != NULL;
  if (need + dying > reg->free_cap) {
    size_t cap = reg->free_cap ? 2 * reg->free_cap : 256;
    while (cap < need + dying) cap *= 2;
    size_t *fp = realloc(reg->free_pos, cap * sizeof(*fp));
    if (!fp) { /* keep them alive for now: the next snapshot tries again */
      pthread_mutex_unlock(&reg->lock);
      while (found) {
        spectator__retired_t *next = found->next;
        free(found);
        found = next;
      }
      return;
    }
    reg->free_pos = fp;
    reg->free_cap = cap;
  }
  spectator__table_t *t = atomic_load_explicit(&reg->table, memory_order_relaxed);
  spectator__retired_t *dead = NULL;
  while (found) {
    spectator__retired_t *r = found;
    found = r->next;
    uint8_t st = SPECTATOR__TRANSIENT;
    if (!atomic_compare_exchange_strong(&r->meter->state, &st, SPECTATOR__DEAD)) {
      free(r); /* pinned meanwhile */
      continue;
    }
    table_remove(t, r->meter, r->pos); /* the slot stays used, as a tombstone */
    atomic_fetch_sub_explicit(&reg->count, 1, memory_order_relaxed);
    r->next = dead;
    dead = r;
  }
  uint64_t epoch = spectator__smr_retire_epoch();
  while (dead) {
    spectator__retired_t *next = dead->next;
    retire(reg, dead, epoch);
    dead = next;
  }
  pthread_mutex_unlock(&reg->lock);
}

bool spectator__registry_collect(spectator_registry_t *reg, spectator__cursor_t *cur,
                                 spectator__records_t *rs, size_t want) {
  if (!cur->started) {
    /* Application code: before any lock. */
    spectator__pollers_run(reg);
    if (!reg->cfg.clock)
      atomic_store_explicit(&reg->wall_offset_ns,
                            spectator__realtime_ns() - spectator__monotonic_ns(),
                            memory_order_relaxed);
  }
  if (!lock_by(&reg->snap_lock, cur->deadline_ns)) {
    cur->locked_out = true;
    return true;
  }
  if (!cur->started) {
    cur->started = true;
    cur->next = 0;
    cur->end = atomic_load_explicit(&reg->end, memory_order_acquire);
    cur->seq = ++reg->pass_seq;
    /* Without the insert lock by the deadline, the freeing waits for a later
     * snapshot (entries marked earlier are still freed at the end). */
    if (atomic_fetch_add(&reg->passes, 1) == 0 && lock_for_maintenance(reg, cur->deadline_ns)) {
      begin_pass(reg, cur->seq);
      pthread_mutex_unlock(&reg->lock);
    }
    /* Meters that found the stripe pool empty get their stripes now. */
    spectator__stripes_refill(&reg->stripes, false);
  }
  spectator__snap_ctx_t ctx = {rs, spectator__registry_now_ns(reg)};
  const int64_t ttl_ns = (int64_t)(reg->cfg.meter_ttl_s * 1e9);
  spectator__retired_t *idle = NULL;
  size_t i = cur->next;
  for (; i < cur->end && rs->len < want; i++) {
    spectator__meter_t *m = meter_at(reg, i);
    if (!m) continue;
    rs->type = m->type;
    bool active = spectator__meter_types[m->type]->measure(m, &ctx);
    /* A meter sent as samples is active when one of its samples was taken. */
    if (atomic_load_explicit(&m->sampled, memory_order_relaxed)) {
      atomic_store_explicit(&m->sampled, 0, memory_order_relaxed);
      active = true;
    }
    if (active) {
      m->last_active_ns = ctx.now_ns;
    } else if (atomic_load_explicit(&m->state, memory_order_relaxed) == SPECTATOR__TRANSIENT &&
               ctx.now_ns > m->last_active_ns &&
               (uint64_t)ctx.now_ns - (uint64_t)m->last_active_ns > (uint64_t)ttl_ns) {
      spectator__retired_t *r = calloc(1, sizeof(*r)); /* no memory: expires later */
      if (r) {
        r->meter = m;
        r->pos = i;
        r->next = idle;
        idle = r;
      }
    }
  }
  expire(reg, idle, cur->deadline_ns);
  pthread_mutex_unlock(&reg->snap_lock);
  cur->next = i;
  return i >= cur->end;
}

void spectator__registry_collect_end(spectator_registry_t *reg, spectator__cursor_t *cur) {
  if (!cur->started) return;
  cur->started = false;
  /* The snapshot ends whatever happens next; only the freeing needs the
   * locks, and what it cannot free now, the end of a later snapshot frees. */
  if (atomic_fetch_sub(&reg->passes, 1) != 1 || cur->next < cur->end) return;
  if (!lock_by(&reg->snap_lock, cur->deadline_ns)) return;
  /* No snapshot began meanwhile (one begins with snap_lock held). */
  if (atomic_load(&reg->passes) == 0 && lock_for_maintenance(reg, cur->deadline_ns)) {
    end_pass(reg, cur->seq);
    pthread_mutex_unlock(&reg->lock);
  }
  pthread_mutex_unlock(&reg->snap_lock);
}

size_t spectator__registry_take_unsent(spectator_registry_t *reg) {
  if (pthread_mutex_trylock(&reg->snap_lock) != 0) return 0;
  spectator__snap_ctx_t drop = {NULL, 0}; /* measured into nothing */
  size_t n = atomic_load_explicit(&reg->end, memory_order_acquire), unsent = 0;
  for (size_t i = 0; i < n; i++) {
    spectator__meter_t *m = meter_at(reg, i); /* NULL: a freed position */
    /* The library's own meters are left out: what they hold after the last
     * publish is about that publish, not data of the application. */
    if (m && spectator__meter_types[m->type]->measure(m, &drop) && !m->self) unsent++;
  }
  pthread_mutex_unlock(&reg->snap_lock);
  return unsent;
}

/* ------------------------------------------------------------------------ */
/* Fork hooks                                                                */
/* ------------------------------------------------------------------------ */

void spectator__registries_prefork(void) {
  pthread_mutex_lock(&all_lock);
  for (spectator_registry_t *r = all_head; r; r = r->next_all) {
    pthread_mutex_lock(&r->snap_lock);
    pthread_mutex_lock(&r->lock);
  }
}

void spectator__registries_postfork_parent(void) {
  for (spectator_registry_t *r = all_head; r; r = r->next_all) {
    pthread_mutex_unlock(&r->lock);
    pthread_mutex_unlock(&r->snap_lock);
  }
  pthread_mutex_unlock(&all_lock);
}

/* The parent reports what it had pending; the child drops it, so that nothing
 * is reported twice. Meters stay where they are: pointers stay valid. The
 * parent's snapshots in progress do not exist here. */
void spectator__registries_postfork_child(void) {
  for (spectator_registry_t *r = all_head; r; r = r->next_all) {
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->snap_lock, NULL);
    atomic_store(&r->passes, 0);
    spectator__snap_ctx_t drop = {NULL, 0};
    size_t end = atomic_load_explicit(&r->end, memory_order_relaxed);
    for (size_t i = 0; i < end; i++) {
      spectator__meter_t *m = meter_at(r, i);
      if (!m) continue;
      const spectator__meter_type_t *mt = spectator__meter_types[m->type];
      if (mt->postfork_child)
        mt->postfork_child(m);
      else
        mt->measure(m, &drop);
    }
  }
  pthread_mutex_init(&all_lock, NULL);
}
