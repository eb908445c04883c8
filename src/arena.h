/*
 * Private: a bump allocator (arena.c) for memory that dies together: the
 * encoder's sanitized strings and datapoint pairs of one publish.
 */
#ifndef SPECTATOR_ARENA_H
#define SPECTATOR_ARENA_H

#include "common.h"

typedef struct spectator__arena_block {
  struct spectator__arena_block *next;
  size_t used, cap;
  _Alignas(8) char data[];
} spectator__arena_block_t;

/* Blocks kept oldest first. Zeroed memory is an empty arena. */
typedef struct {
  spectator__arena_block_t *head, *tail;
} spectator__arena_t;

/* n bytes, 8-aligned, in blocks of 64 KiB (or n); NULL when memory runs out. */
void *spectator__arena_alloc(spectator__arena_t *a, size_t n);
/* Free the blocks allocated before the one holding p (all of them for NULL). */
void spectator__arena_release_before(spectator__arena_t *a, const void *p);
static inline void spectator__arena_free(spectator__arena_t *a) {
  spectator__arena_release_before(a, NULL);
}

#endif
