/*
 * A bump allocator: memory handed out in order from 64 KiB blocks and freed a
 * block at a time, oldest first, so a reader that consumes in allocation order
 * can give memory back while it goes.
 */
#include <stdlib.h>

#include "arena.h"

void *spectator__arena_alloc(spectator__arena_t *a, size_t n) {
  n = n ? (n + 7) & ~(size_t)7 : 8; /* never empty: p always lies inside its block */
  if (!a->tail || a->tail->used + n > a->tail->cap) {
    size_t cap = n > 65536 ? n : 65536;
    spectator__arena_block_t *blk = malloc(sizeof(*blk) + cap);
    if (!blk) return NULL;
    blk->next = NULL;
    blk->used = 0;
    blk->cap = cap;
    if (a->tail)
      a->tail->next = blk;
    else
      a->head = blk;
    a->tail = blk;
  }
  void *p = a->tail->data + a->tail->used;
  a->tail->used += n;
  return p;
}

void spectator__arena_release_before(spectator__arena_t *a, const void *p) {
  while (a->head) {
    spectator__arena_block_t *b = a->head;
    if (p && (const char *)p >= b->data && (const char *)p < b->data + b->cap) return;
    a->head = b->next;
    if (!a->head) a->tail = NULL;
    free(b);
  }
}
