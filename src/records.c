/*
 * Snapshot records: what meters report at each interval.
 *
 * Meters report compact records of 24 bytes (their own id, borrowed, plus
 * codes for the statistic and percentile tags), in chunks of 1024, so that a
 * snapshot allocates nothing per meter beyond its record, and the encoder can
 * free chunks as it consumes them. The public snapshot API (snapshot.c)
 * expands each record into a full id with its statistic tag; the encoder reads
 * the records directly.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "id.h"
#include "log.h"
#include "percentile_buckets.h"
#include "records.h"

const char *const spectator__stat_names[SPECTATOR__STAT_COUNT_OF_NAMES] = {
    [SPECTATOR__STAT_NONE] = NULL,
    [SPECTATOR__STAT_COUNT] = "count",
    [SPECTATOR__STAT_TOTAL_TIME] = "totalTime",
    [SPECTATOR__STAT_TOTAL_OF_SQUARES] = "totalOfSquares",
    [SPECTATOR__STAT_MAX] = "max",
    [SPECTATOR__STAT_TOTAL_AMOUNT] = "totalAmount",
    [SPECTATOR__STAT_PERCENTILE] = "percentile",
    [SPECTATOR__STAT_GAUGE] = "gauge",
    [SPECTATOR__STAT_ACTIVE_TASKS] = "activeTasks",
    [SPECTATOR__STAT_DURATION] = "duration",
};

_Static_assert(sizeof(spectator__record_t) <= 24, "a record stays at 24 bytes");
_Static_assert(SPECTATOR__PCT_LENGTH < SPECTATOR__PCT_SUMMARY, "bucket index fits the pct field");

void spectator__records_init(spectator__records_t *rs) {
  rs->head = rs->tail = NULL;
  rs->len = 0;
  rs->lost = 0;
  rs->lines = false;
  rs->type = 0;
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

void spectator__records_split(spectator__records_t *rs, size_t n, spectator__records_t *rest) {
  if (rs->len <= n) return;
  size_t seen = 0;
  spectator__record_chunk_t *c = rs->head;
  while (seen + c->len <= n) { /* n < rs->len: some chunk holds the boundary */
    seen += c->len;
    c = c->next;
  }
  size_t keep = n - seen; /* records of c that stay */
  spectator__record_chunk_t *tail_of_c = NULL;
  if (keep > 0) {
    tail_of_c = malloc(sizeof(*tail_of_c));
    if (!tail_of_c) return;
    tail_of_c->len = c->len - keep;
    memcpy(tail_of_c->items, c->items + keep, tail_of_c->len * sizeof(c->items[0]));
    tail_of_c->next = c->next;
    c->len = keep;
    c->next = NULL;
  }
  /* rs ends at c (or just before it, when all of c moves). */
  spectator__record_chunk_t *first_moved = tail_of_c ? tail_of_c : c;
  spectator__record_chunk_t *last_kept = NULL;
  if (!tail_of_c) {
    for (spectator__record_chunk_t *k = rs->head; k != c; k = k->next) last_kept = k;
  } else {
    last_kept = c;
  }
  rest->head = first_moved;
  rest->tail = tail_of_c && rs->tail == c ? tail_of_c : rs->tail;
  rest->len = rs->len - n;
  rest->lost = 0;
  if (last_kept) {
    last_kept->next = NULL;
    rs->tail = last_kept;
  } else {
    rs->head = rs->tail = NULL;
  }
  rs->len = n;
}

static void add(spectator__records_t *rs, const spectator_id_t *id, spectator__stat_t stat,
                unsigned pct, int op, double value, uint32_t opt);

/* The op of each statistic the meters set. */
static const uint8_t stat_ops[SPECTATOR__STAT_COUNT_OF_NAMES] = {
    [SPECTATOR__STAT_NONE] = SPECTATOR_OP_MAX, /* unused: the id's own tag decides */
    [SPECTATOR__STAT_COUNT] = SPECTATOR_OP_ADD,
    [SPECTATOR__STAT_TOTAL_TIME] = SPECTATOR_OP_ADD,
    [SPECTATOR__STAT_TOTAL_OF_SQUARES] = SPECTATOR_OP_ADD,
    [SPECTATOR__STAT_MAX] = SPECTATOR_OP_MAX,
    [SPECTATOR__STAT_TOTAL_AMOUNT] = SPECTATOR_OP_ADD,
    [SPECTATOR__STAT_PERCENTILE] = SPECTATOR_OP_ADD,
    [SPECTATOR__STAT_GAUGE] = SPECTATOR_OP_MAX,
    [SPECTATOR__STAT_ACTIVE_TASKS] = SPECTATOR_OP_MAX,
    [SPECTATOR__STAT_DURATION] = SPECTATOR_OP_MAX,
};
_Static_assert(SPECTATOR__STAT_COUNT_OF_NAMES == SPECTATOR__STAT_DURATION + 1,
               "a new statistic needs its op in stat_ops (tests check every one)");

int spectator__stat_op(const char *statistic) {
  static const char *const adds[] = {"count", "totalAmount", "totalTime", "totalOfSquares",
                                     "percentile"};
  for (size_t i = 0; statistic && i < sizeof(adds) / sizeof(adds[0]); i++)
    if (strcmp(statistic, adds[i]) == 0) return SPECTATOR_OP_ADD;
  return SPECTATOR_OP_MAX;
}

void spectator__records_add(spectator__records_t *rs, const spectator_id_t *id,
                            spectator__stat_t stat, unsigned pct, double value) {
  if (!rs) return;
  /* The final statistic: the one the meter sets, else the id's own. */
  int op = stat != SPECTATOR__STAT_NONE && stat < SPECTATOR__STAT_COUNT_OF_NAMES
               ? stat_ops[stat]
               : spectator__stat_op(spectator_id_tag(id, "statistic"));
  add(rs, id, stat, pct, op, value, 0);
}

void spectator__records_add_line(spectator__records_t *rs, const spectator_id_t *id, uint32_t opt,
                                 double value) {
  if (rs)
    add(rs, id, SPECTATOR__STAT_NONE, 0, SPECTATOR_OP_MAX, value,
        opt > SPECTATOR__LINE_OPT_MAX ? SPECTATOR__LINE_OPT_MAX : opt);
}

static void add(spectator__records_t *rs, const spectator_id_t *id, spectator__stat_t stat,
                unsigned pct, int op, double value, uint32_t opt) {
  /* Beyond the doubles (an interval sum that overflowed): the largest finite
   * double, as huge as can be sent, instead of nothing. NaN is dropped, but
   * for lines, where it stops a gauge. */
  if (SPECTATOR__UNLIKELY(!spectator__finite(value)) && !(rs->lines && isnan(value))) {
    bool nan = isnan(value);
    if (spectator__log_enabled(SPECTATOR_LOG_DEBUG)) {
      bool set = stat != SPECTATOR__STAT_NONE && stat < SPECTATOR__STAT_COUNT_OF_NAMES;
      const char *own = set ? NULL : spectator_id_tag(id, "statistic");
      spectator__log(SPECTATOR_LOG_DEBUG, SPECTATOR_LOGGER_REGISTRY,
                     nan ? "dropping a NaN value of %.*s (statistic %s)"
                         : "%.*s (statistic %s) overflowed the doubles: reported as the largest "
                           "finite double",
                     SPECTATOR__LOG_STR(id->name),
                     set   ? spectator__stat_names[stat]
                     : own ? own
                           : "-");
    }
    if (nan) return;
    value = value > 0 ? DBL_MAX : -DBL_MAX;
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
  c->items[c->len++] =
      (spectator__record_t){id, value, (uint16_t)pct, (uint8_t)stat, (uint8_t)op, rs->type, opt};
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
