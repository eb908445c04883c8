/*
 * Ids: immutable name + tags in canonical form.
 *
 * DESIGN
 * An id is one allocation: a header, an array of 2 * ntags string pointers
 * (key, value, key, value... sorted by key with unique keys) and then the
 * strings themselves. The hash of the canonical form is computed once. Ids are
 * reference counted with an atomic counter so a registry, a snapshot and the
 * application can share one without copies.
 *
 * Lookups must not allocate when the meter exists, so canonicalization is split
 * out: spectator__canon_init() builds a sorted, de-duplicated view of borrowed
 * strings on the stack (heap only beyond SPECTATOR__CANON_INLINE pairs), and an
 * id is only materialized from that view when a meter is created.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "id.h"
#include "log.h"
#include "pairs.h"

/* The hash of a canonical form: each string hashed on its own (hash.h), then
 * the strings' hashes folded together in order. Independent per-string chains
 * let the CPU overlap them, and the length in each string's seed makes
 * "ab","c" differ from "a","bc". */
static inline uint64_t hash_str(uint64_t seed, const char *s) {
  return spectator__hash_bytes(seed, s, strlen(s));
}

static uint64_t hash_canon(const char *name, const char *const *kv, size_t ntags) {
  uint64_t seed = spectator__hash_seed();
  uint64_t h = spectator__hash_fold(seed ^ hash_str(seed, name), SPECTATOR__HASH_K2);
  for (size_t i = 0; i < 2 * ntags; i++)
    h = spectator__hash_fold(h ^ hash_str(seed, kv[i]), SPECTATOR__HASH_K2);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

typedef struct {
  const char *k, *v;
  size_t idx;
} pair_t;

static int pair_cmp(const void *a, const void *b) {
  const pair_t *x = a, *y = b;
  int c = strcmp(x->k, y->k);
  if (c) return c;
  return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* Sort pairs stably by key and keep the last value of a repeated key.
 * Returns the number of unique pairs. */
static size_t sort_unique(const char **kv, size_t n) {
  bool dups = true;
  if (n <= SPECTATOR__CANON_INLINE) {
    /* Insertion sort (stable). The comparison that stops an insertion is with
     * the greatest key not above the new one, so it finds any repeated key:
     * without one, the de-duplication pass below is skipped. */
    dups = false;
    SPECTATOR__SORT_PAIRS(kv, n, const char *, strcmp, dups = true);
  } else {
    pair_t *p = malloc(n * sizeof(*p));
    if (!p) return (size_t)-1;
    for (size_t i = 0; i < n; i++) p[i] = (pair_t){kv[2 * i], kv[2 * i + 1], i};
    qsort(p, n, sizeof(*p), pair_cmp);
    for (size_t i = 0; i < n; i++) {
      kv[2 * i] = p[i].k;
      kv[2 * i + 1] = p[i].v;
    }
    free(p);
  }
  if (!dups) return n;
  size_t out = 0;
  for (size_t i = 0; i < n; i++) {
    if (i + 1 < n && strcmp(kv[2 * i], kv[2 * (i + 1)]) == 0) continue; /* a later one wins */
    kv[2 * out] = kv[2 * i];
    kv[2 * out + 1] = kv[2 * i + 1];
    out++;
  }
  return out;
}

static int fail(spectator__canon_t *c, spectator__id_error_t error, size_t pos, const char *key) {
  c->error = error;
  c->error_pos = pos;
  c->error_key = key;
  return error == SPECTATOR__ID_NO_MEMORY ? SPECTATOR_ENOMEM : SPECTATOR_EINVAL;
}

int spectator__canon_init(spectator__canon_t *c, const char *name, const spectator_id_t *base,
                          const char *const *tags) {
  c->heap_kv = NULL;
  c->kv = c->inline_kv;
  c->ntags = 0;
  c->hash = 0;
  c->error = SPECTATOR__ID_OK; /* error_pos and error_key are set with an error */
  c->name = base ? base->name : name;
  if (!c->name) return fail(c, SPECTATOR__ID_NAME_NULL, 0, NULL);
  if (!c->name[0]) return fail(c, SPECTATOR__ID_NAME_EMPTY, 0, NULL);

  size_t n_extra = 0;
  if (tags) {
    for (size_t i = 0; tags[i]; i += 2) {
      /* A NULL after a key ends the array: whether the value was NULL or
       * the array has an odd number of entries cannot be told apart. */
      if (!tags[i + 1]) return fail(c, SPECTATOR__ID_VALUE_MISSING, i, tags[i]);
      if (!tags[i][0]) return fail(c, SPECTATOR__ID_KEY_EMPTY, i, tags[i]);
      if (!tags[i + 1][0]) return fail(c, SPECTATOR__ID_VALUE_EMPTY, i, tags[i]);
      n_extra++;
    }
  }
  size_t n = (base ? base->ntags : 0) + n_extra;
  if (n > SPECTATOR__CANON_INLINE) {
    c->heap_kv = malloc(2 * n * sizeof(*c->heap_kv));
    if (!c->heap_kv) return fail(c, SPECTATOR__ID_NO_MEMORY, 0, NULL);
    c->kv = c->heap_kv;
  }
  size_t j = 0;
  if (base)
    for (size_t i = 0; i < 2 * (size_t)base->ntags; i++) c->kv[j++] = base->tags[i];
  for (size_t i = 0; i < 2 * n_extra; i++) c->kv[j++] = tags[i];

  size_t u = sort_unique(c->kv, n);
  if (u == (size_t)-1) {
    spectator__canon_free(c);
    return fail(c, SPECTATOR__ID_NO_MEMORY, 0, NULL);
  }
  c->ntags = u;
  c->hash = hash_canon(c->name, c->kv, u);
  return 0;
}

void spectator__canon_free(spectator__canon_t *c) {
  free(c->heap_kv);
  c->heap_kv = NULL;
  c->kv = c->inline_kv;
}

bool spectator__canon_equals_id(const spectator__canon_t *c, const spectator_id_t *id) {
  if (c->hash != id->hash || c->ntags != id->ntags) return false;
  if (strcmp(c->name, id->name) != 0) return false;
  for (size_t i = 0; i < 2 * c->ntags; i++)
    if (strcmp(c->kv[i], id->tags[i]) != 0) return false;
  return true;
}

spectator_id_t *spectator__id_from_canon(const spectator__canon_t *c) {
  size_t bytes = strlen(c->name) + 1;
  for (size_t i = 0; i < 2 * c->ntags; i++) bytes += strlen(c->kv[i]) + 1;
  size_t head = sizeof(spectator_id_t) + 2 * c->ntags * sizeof(char *);
  spectator_id_t *id = malloc(head + bytes);
  if (!id) return NULL;
  atomic_init(&id->refs, 1);
  id->ntags = (uint32_t)c->ntags;
  id->hash = c->hash;
  char *p = (char *)id + head;
  size_t len = strlen(c->name) + 1;
  memcpy(p, c->name, len);
  id->name = p;
  p += len;
  for (size_t i = 0; i < 2 * c->ntags; i++) {
    len = strlen(c->kv[i]) + 1;
    memcpy(p, c->kv[i], len);
    id->tags[i] = p;
    p += len;
  }
  return id;
}

uint64_t spectator__mistake_key(unsigned kind, const char *name, const char *detail) {
  uint64_t seed = spectator__hash_seed();
  uint64_t h = spectator__hash_fold(seed ^ kind, SPECTATOR__HASH_K1);
  h = spectator__hash_fold(h ^ (name ? hash_str(seed, name) : 0), SPECTATOR__HASH_K2);
  return spectator__hash_fold(h ^ (detail ? hash_str(seed, detail) : 1), SPECTATOR__HASH_K2);
}

void spectator__canon_format(const spectator__canon_t *c, char *buf, size_t size) {
  size_t len = 0;
  bool cut = false;
#define PUT(s)                                                  \
  do {                                                          \
    const char *s_ = (s);                                       \
    size_t l_ = strlen(s_);                                     \
    if (len + l_ + 4 > size) { /* room for "..." and the NUL */ \
      l_ = size > len + 4 ? size - len - 4 : 0;                 \
      cut = true;                                               \
    }                                                           \
    memcpy(buf + len, s_, l_);                                  \
    len += l_;                                                  \
  } while (0)
  if (size < 4) {
    if (size) buf[0] = '\0';
    return;
  }
  PUT(c->name);
  for (size_t i = 0; i < c->ntags && !cut; i++) {
    PUT(i ? "," : "{");
    PUT(c->kv[2 * i]);
    PUT("=");
    PUT(c->kv[2 * i + 1]);
  }
  if (c->ntags && !cut) PUT("}");
#undef PUT
  if (cut) {
    memcpy(buf + len, "...", 3);
    len += 3;
  }
  buf[len] = '\0';
}

/* What is wrong, as the end of "invalid id for counter 'x': ...". */
static void describe(const spectator__canon_t *c, char *buf, size_t size) {
  const char *key = c->error_key ? c->error_key : "(null)";
  int kl = spectator__strnlen_log(key);
  switch (c->error) {
  case SPECTATOR__ID_NULL: snprintf(buf, size, "the id is NULL"); break;
  case SPECTATOR__ID_NAME_NULL: snprintf(buf, size, "the name is NULL"); break;
  case SPECTATOR__ID_NAME_EMPTY: snprintf(buf, size, "the name is empty"); break;
  case SPECTATOR__ID_KEY_NULL: snprintf(buf, size, "the tag key is NULL"); break;
  case SPECTATOR__ID_KEY_EMPTY:
    if (c->error_pos == SIZE_MAX)
      snprintf(buf, size, "the tag key is empty");
    else
      snprintf(buf, size, "the tag key at position %zu is empty", c->error_pos);
    break;
  case SPECTATOR__ID_VALUE_NULL: snprintf(buf, size, "tag '%.*s' has a NULL value", kl, key); break;
  case SPECTATOR__ID_VALUE_MISSING:
    snprintf(buf, size,
             "tag '%.*s' at position %zu has no value (a NULL value, or an odd number of "
             "entries in the tag array)",
             kl, key, c->error_pos);
    break;
  case SPECTATOR__ID_VALUE_EMPTY:
    snprintf(buf, size, "tag '%.*s' has an empty value", kl, key);
    break;
  case SPECTATOR__ID_NO_MEMORY:
  default: snprintf(buf, size, "out of memory"); break;
  }
}

void spectator__canon_log_error(const spectator__canon_t *c, const char *what, const char *name) {
  uint64_t key = spectator__mistake_key((unsigned)c->error, name, c->error_key);
  uint64_t n = spectator__mistake_seen(key);
  if (!n) return;
  char why[256];
  describe(c, why, sizeof(why));
  if (c->error == SPECTATOR__ID_NULL)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                   "invalid id for %s: %s; using a no-op (occurrence %llu)", what ? what : "id",
                   why, (unsigned long long)n);
  else if (what)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                   "invalid id for %s '%.*s': %s; using a no-op (occurrence %llu)", what,
                   SPECTATOR__LOG_STR(name), why, (unsigned long long)n);
  else
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                   "invalid id '%.*s': %s; returning NULL (occurrence %llu)",
                   SPECTATOR__LOG_STR(name), why, (unsigned long long)n);
}

static spectator_id_t *make_id(const char *name, const spectator_id_t *base,
                               const char *const *tags) {
  spectator__canon_t c;
  if (spectator__canon_init(&c, name, base, tags) != 0) {
    spectator__canon_log_error(&c, NULL, base ? base->name : name);
    return NULL;
  }
  spectator_id_t *id = spectator__id_from_canon(&c);
  spectator__canon_free(&c);
  return id;
}

spectator_id_t *spectator_id_new(const char *name, const char *const *tags) {
  return make_id(name, NULL, tags);
}

spectator_id_t *spectator_id_with_tag(const spectator_id_t *id, const char *key,
                                      const char *value) {
  if (!id) return NULL;
  /* A NULL key or value here is known for what it is (in an array, a NULL
   * ends it), and there is no array position to report. */
  spectator__canon_t c = {.error = SPECTATOR__ID_OK, .error_pos = SIZE_MAX, .error_key = key};
  if (!key)
    c.error = SPECTATOR__ID_KEY_NULL;
  else if (!value)
    c.error = SPECTATOR__ID_VALUE_NULL;
  else if (!key[0])
    c.error = SPECTATOR__ID_KEY_EMPTY;
  if (c.error != SPECTATOR__ID_OK) {
    spectator__canon_log_error(&c, NULL, id->name);
    return NULL;
  }
  const char *const tags[] = {key, value, NULL};
  return make_id(NULL, id, tags);
}

spectator_id_t *spectator_id_with_tags(const spectator_id_t *id, const char *const *tags) {
  if (!id) return NULL;
  if (!tags) return spectator_id_ref(id);
  return make_id(NULL, id, tags);
}

spectator_id_t *spectator_id_ref(const spectator_id_t *id) {
  if (!id) return NULL;
  spectator_id_t *m = (spectator_id_t *)id;
  atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
  return m;
}

void spectator_id_free(spectator_id_t *id) {
  if (!id) return;
  if (atomic_fetch_sub_explicit(&id->refs, 1, memory_order_acq_rel) == 1) free(id);
}

const char *spectator_id_name(const spectator_id_t *id) { return id ? id->name : ""; }

size_t spectator_id_tag_count(const spectator_id_t *id) { return id ? id->ntags : 0; }

const char *spectator_id_tag_key(const spectator_id_t *id, size_t i) {
  return id && i < id->ntags ? id->tags[2 * i] : NULL;
}

const char *spectator_id_tag_value(const spectator_id_t *id, size_t i) {
  return id && i < id->ntags ? id->tags[2 * i + 1] : NULL;
}

const char *spectator_id_tag(const spectator_id_t *id, const char *key) {
  if (!id || !key) return NULL;
  /* tags are sorted: binary search */
  size_t lo = 0, hi = id->ntags;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(id->tags[2 * mid], key);
    if (c == 0) return id->tags[2 * mid + 1];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

int spectator_id_equals(const spectator_id_t *a, const spectator_id_t *b) {
  if (a == b) return 1;
  if (!a || !b) return 0;
  if (a->hash != b->hash || a->ntags != b->ntags || strcmp(a->name, b->name) != 0) return 0;
  for (size_t i = 0; i < 2 * (size_t)a->ntags; i++)
    if (strcmp(a->tags[i], b->tags[i]) != 0) return 0;
  return 1;
}

uint64_t spectator_id_hash(const spectator_id_t *id) { return id ? id->hash : 0; }

size_t spectator_id_format(const spectator_id_t *id, char *buf, size_t size) {
  size_t need = 0;
#define EMIT(s)                                       \
  do {                                                \
    size_t l_ = strlen(s);                            \
    if (need < size) {                                \
      size_t room_ = size - need - 1;                 \
      memcpy(buf + need, s, l_ < room_ ? l_ : room_); \
    }                                                 \
    need += l_;                                       \
  } while (0)
  if (!buf) size = 0;
  if (!id) {
    if (size) buf[0] = '\0';
    return 0;
  }
  EMIT(spectator_id_name(id));
  EMIT("{");
  for (size_t i = 0; id && i < id->ntags; i++) {
    if (i) EMIT(",");
    EMIT(id->tags[2 * i]);
    EMIT("=");
    EMIT(id->tags[2 * i + 1]);
  }
  EMIT("}");
#undef EMIT
  if (size) buf[need < size ? need : size - 1] = '\0';
  return need;
}
