/*
 * The string table: open addressing with linear probing over the strings'
 * numbers, at most half full, hashed 8 bytes at a time (hash.h).
 */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "strtab.h"

static uint32_t str_hash(const char *s, size_t len) {
  uint64_t h = spectator__hash_fold(spectator__hash_bytes(spectator__hash_seed(), s, len),
                                    SPECTATOR__HASH_K2);
  return (uint32_t)(h ^ (h >> 32));
}

static bool grow(spectator__strtab_t *t) {
  size_t cap = t->mask ? 2 * (t->mask + 1) : 1024;
  uint32_t *slots = calloc(cap, sizeof(*slots));
  if (!slots) return false;
  for (size_t i = 0; i < t->n; i++) {
    size_t j = t->strs[i].hash & (cap - 1);
    while (slots[j]) j = (j + 1) & (cap - 1);
    slots[j] = (uint32_t)(i + 1);
  }
  free(t->slots);
  t->slots = slots;
  t->mask = cap - 1;
  return true;
}

uint32_t spectator__strtab_intern(spectator__strtab_t *t, const char *s, size_t len,
                                  spectator__arena_t *copy_to) {
  if (t->failed) return UINT32_MAX;
  if (2 * (t->n + 1) > t->mask + 1 && !grow(t)) goto fail;
  uint32_t h = str_hash(s, len);
  size_t j = h & t->mask;
  for (; t->slots[j]; j = (j + 1) & t->mask) {
    spectator__str_t *e = &t->strs[t->slots[j] - 1];
    if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0) return t->slots[j] - 1;
  }
  if (t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 1024;
    spectator__str_t *strs = realloc(t->strs, cap * sizeof(*strs));
    if (!strs) goto fail;
    t->strs = strs;
    t->cap = cap;
  }
  if (copy_to) {
    char *c = spectator__arena_alloc(copy_to, len + 1);
    if (!c) goto fail;
    memcpy(c, s, len);
    c[len] = '\0';
    s = c;
  }
  t->strs[t->n] = (spectator__str_t){s, (uint32_t)len, h};
  t->slots[j] = (uint32_t)(t->n + 1);
  return (uint32_t)t->n++;
fail:
  t->failed = true;
  return UINT32_MAX;
}

void spectator__strtab_drop_index(spectator__strtab_t *t) {
  free(t->slots);
  t->slots = NULL;
}

void spectator__strtab_free(spectator__strtab_t *t) {
  free(t->strs);
  free(t->slots);
  memset(t, 0, sizeof(*t));
}
