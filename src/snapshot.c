/*
 * Snapshots: the records meters report at each interval, and the public
 * measurement list built from them.
 *
 * Meters report compact records (their own id plus a static statistic name and
 * an optional percentile tag) so that a snapshot allocates nothing per meter
 * beyond the record array. The public API expands each record into a full id
 * with its statistic tag; the publisher's encoder reads the records directly.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void spectator__records_init(spectator__records_t *rs) {
  rs->items = NULL;
  rs->len = rs->cap = 0;
  rs->failed = false;
}

void spectator__records_free(spectator__records_t *rs) {
  for (size_t i = 0; i < rs->len; i++) spectator_id_free(rs->items[i].id);
  free(rs->items);
  spectator__records_init(rs);
}

void spectator__records_add(spectator__records_t *rs, spectator_id_t *id, const char *statistic,
                            const char *percentile, int op, double value) {
  if (!isfinite(value)) {
    if (spectator__log_enabled(SPECTATOR_LOG_DEBUG))
      spectator__log(SPECTATOR_LOG_DEBUG, SPECTATOR_LOGGER_REGISTRY,
                     "dropping non-finite value of %.*s (statistic %s)",
                     SPECTATOR__LOG_STR(id->name), statistic ? statistic : "-");
    return;
  }
  if (rs->len == rs->cap) {
    size_t cap = rs->cap ? rs->cap * 2 : 64;
    spectator__record_t *items = realloc(rs->items, cap * sizeof(*items));
    if (!items) {
      rs->failed = true;
      return;
    }
    rs->items = items;
    rs->cap = cap;
  }
  spectator__record_t *r = &rs->items[rs->len++];
  r->id = spectator_id_ref(id);
  r->statistic = statistic;
  r->percentile[0] = '\0';
  if (percentile) {
    size_t n = strlen(percentile);
    if (n >= sizeof(r->percentile)) n = sizeof(r->percentile) - 1;
    memcpy(r->percentile, percentile, n);
    r->percentile[n] = '\0';
  }
  r->op = op;
  r->value = value;
}

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
  if (!r->statistic) return spectator_id_ref(r->id);
  const char *tags[5] = {"statistic", r->statistic, NULL, NULL, NULL};
  if (r->percentile[0]) {
    tags[2] = "percentile";
    tags[3] = r->percentile;
  }
  return spectator_id_with_tags(r->id, tags);
}

spectator_measurements_t *spectator_registry_snapshot(spectator_registry_t *reg) {
  if (!reg) return NULL;
  spectator_measurements_t *ms = calloc(1, sizeof(*ms));
  if (!ms) return NULL;
  spectator__records_t rs;
  spectator__records_init(&rs);
  spectator__registry_collect(reg, &rs);
  if (rs.failed)
    spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_REGISTRY,
                   "out of memory during a snapshot: some measurements were lost");
  ms->items = rs.len ? malloc(rs.len * sizeof(*ms->items)) : NULL;
  if (rs.len && !ms->items)
    spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_REGISTRY,
                   "out of memory during a snapshot: %zu measurements were lost", rs.len);
  for (size_t i = 0; ms->items && i < rs.len; i++) {
    spectator_id_t *id = record_id(&rs.items[i]);
    if (!id) continue;
    ms->items[ms->len++] = (spectator_measurement_t){id, rs.items[i].op, rs.items[i].value};
  }
  spectator__records_free(&rs);
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
  if (spectator__canon_init(&c, name, NULL, tags) != SPECTATOR__CANON_OK) return NULL;
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
