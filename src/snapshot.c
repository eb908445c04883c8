/*
 * Snapshots: the records meters report at each interval, and the public
 * measurement list built from them.
 *
 * Meters report compact records of 24 bytes (their own id, borrowed, plus
 * codes for the statistic and percentile tags), in chunks of 1024, so that a
 * snapshot allocates nothing per meter beyond its record, and the encoder can
 * free chunks as it consumes them. The public API expands each record into a
 * full id with its statistic tag; the publisher's encoder reads the records
 * directly.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *const spectator__stat_names[SPECTATOR__STAT_COUNT_OF_NAMES] = {
    [SPECTATOR__STAT_NONE] = NULL,
    [SPECTATOR__STAT_COUNT] = "count",
    [SPECTATOR__STAT_TOTAL_TIME] = "totalTime",
    [SPECTATOR__STAT_TOTAL_OF_SQUARES] = "totalOfSquares",
    [SPECTATOR__STAT_MAX] = "max",
    [SPECTATOR__STAT_TOTAL_AMOUNT] = "totalAmount",
    [SPECTATOR__STAT_PERCENTILE] = "percentile",
    [SPECTATOR__STAT_GAUGE] = "gauge",
};

_Static_assert(sizeof(spectator__record_t) <= 24, "a record stays at 24 bytes");
_Static_assert(SPECTATOR__PCT_LENGTH < SPECTATOR__PCT_SUMMARY, "bucket index fits the pct field");

void spectator__records_init(spectator__records_t *rs) {
  rs->head = rs->tail = NULL;
  rs->len = 0;
  rs->lost = 0;
}

void spectator__records_pop_chunk(spectator__records_t *rs) {
  spectator__record_chunk_t *c = rs->head;
  if (!c) return;
  rs->head = c->next;
  if (!rs->head) rs->tail = NULL;
  rs->len -= c->len;
  free(c);
}

void spectator__records_free(spectator__records_t *rs) {
  while (rs->head) spectator__records_pop_chunk(rs);
  spectator__records_init(rs);
}

void spectator__records_add(spectator__records_t *rs, const spectator_id_t *id,
                            spectator__stat_t stat, unsigned pct, int op, double value) {
  if (!isfinite(value)) {
    if (spectator__log_enabled(SPECTATOR_LOG_DEBUG))
      spectator__log(SPECTATOR_LOG_DEBUG, SPECTATOR_LOGGER_REGISTRY,
                     "dropping non-finite value of %.*s (statistic %s)",
                     SPECTATOR__LOG_STR(id->name),
                     spectator__stat_names[stat] ? spectator__stat_names[stat] : "-");
    return;
  }
  spectator__record_chunk_t *c = rs->tail;
  if (!c || c->len == SPECTATOR__RECORD_CHUNK) {
    c = malloc(sizeof(*c));
    if (!c) {
      rs->lost++;
      return;
    }
    c->next = NULL;
    c->len = 0;
    if (rs->tail)
      rs->tail->next = c;
    else
      rs->head = c;
    rs->tail = c;
  }
  c->items[c->len++] = (spectator__record_t){id, value, (uint16_t)pct, (uint8_t)stat, (uint8_t)op};
  rs->len++;
}

bool spectator__record_pct_tag(const spectator__record_t *r, char buf[6]) {
  if (!r->pct) {
    buf[0] = '\0';
    return false;
  }
  spectator__pct_tag(r->pct & SPECTATOR__PCT_SUMMARY ? 'D' : 'T',
                     (size_t)(r->pct & ~SPECTATOR__PCT_SUMMARY) - 1, buf);
  return true;
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
  spectator__registry_collect(reg, &rs);
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
