/*
 * Private: ids and their canonical form (id.c).
 */
#ifndef SPECTATOR_ID_H
#define SPECTATOR_ID_H

#include <stdatomic.h>

#include "common.h"

struct spectator_id {
  _Atomic uint32_t refs;
  uint32_t ntags;
  uint64_t hash;
  const char *name;
  /* 2 * ntags pointers: key0, value0, key1, value1... sorted by key, unique
   * keys; the strings follow the array in the same allocation. */
  const char *tags[];
};

/* A canonical view of (name, tags) built without allocation for up to
 * SPECTATOR__CANON_INLINE pairs: used by lookups so a hit allocates nothing. */
#define SPECTATOR__CANON_INLINE 16
typedef struct {
  const char *name;
  size_t ntags;
  const char **kv; /* 2 * ntags, sorted by key, unique */
  uint64_t hash;
  const char *error; /* why canon_init failed, for a log line */
  const char *inline_kv[2 * SPECTATOR__CANON_INLINE];
  const char **heap_kv; /* used when there are more pairs; freed by canon_free */
} spectator__canon_t;

/* Canonicalize name (or base's name) + base id tags + extra tags (later
 * wins). Returns 0; SPECTATOR_EINVAL for a NULL or empty name or a NULL or
 * empty key or value or an odd tag count; SPECTATOR_ENOMEM. On failure
 * c->error says why and nothing needs freeing. */
int spectator__canon_init(spectator__canon_t *c, const char *name, const spectator_id_t *base,
                          const char *const *tags);
void spectator__canon_free(spectator__canon_t *c);
/* True when the canonical view and the id denote the same id. */
bool spectator__canon_equals_id(const spectator__canon_t *c, const spectator_id_t *id);
/* Build an id from a canonical view; NULL when memory runs out. */
spectator_id_t *spectator__id_from_canon(const spectator__canon_t *c);
/* Log a failed canon_init of a `what` (a meter type name, "id") on
 * spectator.Registry (rate limited). */
void spectator__canon_log_error(const spectator__canon_t *c, const char *what, const char *name);

#endif
