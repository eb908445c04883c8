/*
 * The public snapshot: the measurements a publish would send, as full ids
 * with their statistic tags, sorted, owned by the caller. Users unit-test
 * their instrumentation with it, without a network.
 */
#include <stdlib.h>
#include <string.h>

#include "id.h"
#include "registry.h"

struct spectator_measurements {
  size_t len;
  spectator_measurement_t *items;
};

static int id_cmp(const spectator_id_t *a, const spectator_id_t *b) {
  int c = strcmp(a->name, b->name);
  if (c) return c;
  size_t n = a->ntags < b->ntags ? a->ntags : b->ntags;
  for (size_t i = 0; i < 2 * n; i++) {
    c = strcmp(a->tags[i], b->tags[i]);
    if (c) return c;
  }
  return a->ntags < b->ntags ? -1 : (a->ntags > b->ntags);
}

static int measurement_cmp(const void *x, const void *y) {
  const spectator_measurement_t *a = x, *b = y;
  int c = id_cmp(a->id, b->id);
  if (c) return c;
  return a->op < b->op ? -1 : (a->op > b->op);
}

/* Expand a record into a full id: the meter's id with the statistic (and
 * percentile) tag set. A new reference either way. */
static spectator_id_t *record_id(const spectator__record_t *r) {
  if (r->stat == SPECTATOR__STAT_NONE) return spectator_id_ref(r->id);
  char pct[6];
  const char *tags[5] = {"statistic", spectator__stat_names[r->stat], NULL, NULL, NULL};
  if (spectator__record_pct_tag(r, pct)) {
    tags[2] = "percentile";
    tags[3] = pct;
  }
  return spectator_id_with_tags(r->id, tags);
}

spectator_measurements_t *spectator_registry_snapshot(spectator_registry_t *reg) {
  if (!reg) return NULL;
  spectator_measurements_t *ms = calloc(1, sizeof(*ms));
  if (!ms) return NULL;
  spectator__records_t rs;
  spectator__records_init(&rs);
  spectator__cursor_t cur = {0};
  spectator__registry_collect(reg, &cur, &rs, SIZE_MAX);
  if (rs.lost)
    spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_REGISTRY,
                   "out of memory during a snapshot: %zu measurements were lost", rs.lost);
  ms->items = rs.len ? malloc(rs.len * sizeof(*ms->items)) : NULL;
  if (rs.len && !ms->items)
    spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_REGISTRY,
                   "out of memory during a snapshot: %zu measurements were lost", rs.len);
  SPECTATOR__RECORDS_FOREACH(&rs, r) {
    if (!ms->items) break;
    spectator_id_t *id = record_id(r);
    if (!id) continue;
    ms->items[ms->len++] = (spectator_measurement_t){id, r->op, r->value};
  }
  spectator__records_free(&rs);
  /* The measurements hold ids of their own: the records' are not needed. */
  spectator__registry_collect_end(reg, &cur);
  if (ms->len > 1) qsort(ms->items, ms->len, sizeof(*ms->items), measurement_cmp);
  return ms;
}

size_t spectator_measurements_count(const spectator_measurements_t *ms) { return ms ? ms->len : 0; }

const spectator_measurement_t *spectator_measurements_get(const spectator_measurements_t *ms,
                                                          size_t i) {
  return ms && i < ms->len ? &ms->items[i] : NULL;
}

const spectator_measurement_t *spectator_measurements_find(const spectator_measurements_t *ms,
                                                           const char *name,
                                                           const char *const *tags) {
  if (!ms) return NULL;
  spectator__canon_t c;
  if (spectator__canon_init(&c, name, NULL, tags) != 0) return NULL;
  const spectator_measurement_t *found = NULL;
  for (size_t i = 0; i < ms->len && !found; i++)
    if (spectator__canon_equals_id(&c, ms->items[i].id)) found = &ms->items[i];
  spectator__canon_free(&c);
  return found;
}

void spectator_measurements_free(spectator_measurements_t *ms) {
  if (!ms) return;
  for (size_t i = 0; i < ms->len; i++) spectator_id_free((spectator_id_t *)ms->items[i].id);
  free(ms->items);
  free(ms);
}
