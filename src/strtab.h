/*
 * Private: a string table (strtab.c): each distinct string once, numbered in
 * the order it was first seen. The encoder interns every key and value of a
 * publish in one, so datapoints are arrays of small integers.
 */
#ifndef SPECTATOR_STRTAB_H
#define SPECTATOR_STRTAB_H

#include "arena.h"
#include "common.h"

typedef struct {
  const char *s; /* not NUL-terminated when interned by address from a longer string */
  uint32_t len;
  uint32_t hash;
} spectator__str_t;

/* Zeroed memory is an empty table. */
typedef struct {
  spectator__str_t *strs; /* by number */
  size_t n, cap;
  uint32_t *slots; /* the index: number + 1; 0 = empty */
  size_t mask;
  bool failed; /* memory ran out: every later intern fails */
} spectator__strtab_t;

/* The number of the len bytes at s; UINT32_MAX when memory runs out. A new
 * string is kept by address (s must outlive the table), or copied into
 * copy_to when that is given (s may then be a scratch buffer). */
uint32_t spectator__strtab_intern(spectator__strtab_t *t, const char *s, size_t len,
                                  spectator__arena_t *copy_to);
/* Free the index (no more interning; the strings stay readable). */
void spectator__strtab_drop_index(spectator__strtab_t *t);
void spectator__strtab_free(spectator__strtab_t *t);

#endif
