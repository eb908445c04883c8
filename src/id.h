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

/* Why an id is invalid (spectator__canon_t.error). */
typedef enum {
  SPECTATOR__ID_OK,
  SPECTATOR__ID_NULL,          /* a lookup by id was given NULL */
  SPECTATOR__ID_NAME_NULL,     /* the name is NULL */
  SPECTATOR__ID_NAME_EMPTY,    /* the name is "" */
  SPECTATOR__ID_KEY_NULL,      /* spectator_id_with_tag with a NULL key */
  SPECTATOR__ID_KEY_EMPTY,     /* a key is "" */
  SPECTATOR__ID_VALUE_NULL,    /* spectator_id_with_tag with a NULL value */
  SPECTATOR__ID_VALUE_MISSING, /* a key is last in its array: odd count, or a NULL value */
  SPECTATOR__ID_VALUE_EMPTY,   /* a value is "" */
  SPECTATOR__ID_NO_MEMORY
} spectator__id_error_t;

/* A canonical view of (name, tags) built without allocation for up to
 * SPECTATOR__CANON_INLINE pairs: used by lookups so a hit allocates nothing. */
#define SPECTATOR__CANON_INLINE 16
typedef struct {
  const char *name;
  size_t ntags;
  const char **kv; /* 2 * ntags, sorted by key, unique */
  uint64_t hash;
  /* Why canon_init failed, for a log line: the error, the position in the
   * tag array of the entry at fault (SIZE_MAX: none) and its key (borrowed,
   * NULL if none). */
  spectator__id_error_t error;
  size_t error_pos;
  const char *error_key;
  const char *inline_kv[2 * SPECTATOR__CANON_INLINE];
  const char **heap_kv; /* used when there are more pairs; freed by canon_free */
} spectator__canon_t;

/* Canonicalize name (or base's name) + base id tags + extra tags (later
 * wins). Returns 0; SPECTATOR_EINVAL for a NULL or empty name or a NULL or
 * empty key or value or an odd tag count; SPECTATOR_ENOMEM. On failure
 * c->error says why (the first bad entry of the array) and nothing needs
 * freeing. */
int spectator__canon_init(spectator__canon_t *c, const char *name, const spectator_id_t *base,
                          const char *const *tags);
void spectator__canon_free(spectator__canon_t *c);
/* True when the canonical view and the id denote the same id. */
bool spectator__canon_equals_id(const spectator__canon_t *c, const spectator_id_t *id);
/* Build an id from a canonical view; NULL when memory runs out. */
spectator_id_t *spectator__id_from_canon(const spectator__canon_t *c);
/* Log why c failed (c->error) on spectator.Registry: for a meter type
 * (`what` = its display name, "counter"...: a no-op meter is used) or for an
 * id function (`what` NULL: it returns NULL). name is the id's name as given.
 * Each distinct mistake (the name, the error and the key at fault) is
 * reported; its repeats are rate limited (spectator__mistake_seen). */
void spectator__canon_log_error(const spectator__canon_t *c, const char *what, const char *name);
/* The mistake key of (kind, name, detail) for spectator__mistake_seen: kind
 * is a small number of the caller's (an error, "registry full"...), the
 * strings may be NULL. */
uint64_t spectator__mistake_key(unsigned kind, const char *name, const char *detail);
/* "name{k=v,...}" of a canonical view into buf (NUL-terminated, shortened
 * with "..." when it does not fit), for log lines. */
void spectator__canon_format(const spectator__canon_t *c, char *buf, size_t size);

#endif
