/*
 * Private: snapshot records (records.c), what every meter writes when a
 * snapshot asks for its interval values, and what the public snapshot API
 * and the encoder read.
 */
#ifndef SPECTATOR_RECORDS_H
#define SPECTATOR_RECORDS_H

#include "common.h"

/* The statistic a record adds to its id's tags (SPECTATOR__STAT_NONE: the
 * id's own tags are used as they are). Names in spectator__stat_names. */
typedef enum {
  SPECTATOR__STAT_NONE,
  SPECTATOR__STAT_COUNT,
  SPECTATOR__STAT_TOTAL_TIME,
  SPECTATOR__STAT_TOTAL_OF_SQUARES,
  SPECTATOR__STAT_MAX,
  SPECTATOR__STAT_TOTAL_AMOUNT,
  SPECTATOR__STAT_PERCENTILE,
  SPECTATOR__STAT_GAUGE,
  SPECTATOR__STAT_ACTIVE_TASKS,
  SPECTATOR__STAT_DURATION,
  SPECTATOR__STAT_COUNT_OF_NAMES
} spectator__stat_t;
extern const char *const spectator__stat_names[SPECTATOR__STAT_COUNT_OF_NAMES]; /* [NONE] = NULL */

/* Percentile tag of a record: 0 for none, else the bucket index + 1, with
 * SPECTATOR__PCT_SUMMARY set for distribution summaries ("D00A2" instead of
 * "T00A2"). */
#define SPECTATOR__PCT_SUMMARY 0x8000u

/* One measurement in the compact form the snapshot produces (24 bytes): the
 * meter's id, the statistic and percentile tags to set on it, op and value.
 * The id is borrowed: meters and their ids live as long as their registry,
 * so records must not outlive the registry they were collected from. The
 * public API and the encoder turn records into full tag sets. */
typedef struct {
  const spectator_id_t *id;
  double value;
  uint16_t pct;
  uint8_t stat; /* spectator__stat_t */
  uint8_t op;
  uint32_t type : 8; /* spectator__type_t of the meter that reported it */
  /* Records for lines (spectator__records_t.lines): the line's option, a
   * gauge's TTL in whole seconds (at most SPECTATOR__LINE_OPT_MAX); 0: none. */
  uint32_t line_opt : 24;
} spectator__record_t;
#define SPECTATOR__LINE_OPT_MAX 0xFFFFFFu

/* Records come in fixed-size chunks (no doubling, no copy on growth), so a
 * reader can free what it has consumed while it goes. */
#define SPECTATOR__RECORD_CHUNK 1024
typedef struct spectator__record_chunk {
  struct spectator__record_chunk *next;
  size_t len;
  spectator__record_t items[SPECTATOR__RECORD_CHUNK];
} spectator__record_chunk_t;

typedef struct {
  spectator__record_chunk_t *head, *tail;
  size_t len;  /* records over all chunks */
  size_t lost; /* records dropped because memory ran out: the snapshot is incomplete */
  /* The snapshot writes spectatord's lines (meter.h: SPECTATOR__LINES_MEASURED):
   * records are what a line carries, and a NaN value is kept (a gauge set to
   * NaN stops reporting). */
  bool lines;
  uint8_t type; /* the meter being measured: stamped on the records it adds */
} spectator__records_t;

/* Every record, in order: for (...) { use r }. */
#define SPECTATOR__RECORDS_FOREACH(rs, r)                                                         \
  for (spectator__record_chunk_t *r##_chunk = (rs)->head; r##_chunk; r##_chunk = r##_chunk->next) \
    for (spectator__record_t *r = r##_chunk->items; r < r##_chunk->items + r##_chunk->len; r++)

void spectator__records_init(spectator__records_t *rs);
void spectator__records_free(spectator__records_t *rs);
/* Free the first chunk (a reader is done with it); rs->len drops by its count. */
void spectator__records_pop_chunk(spectator__records_t *rs);
/* Move the records after the first n of rs, in order, to rest (empty). When
 * memory runs out for the one chunk that is split, nothing moves (rs keeps
 * more than n records). */
void spectator__records_split(spectator__records_t *rs, size_t n, spectator__records_t *rest);
/* Append a record (id borrowed, see above). rs NULL: the record is dropped
 * (a meter reset without reporting). Its op follows its final statistic (stat,
 * or the id's own statistic tag with SPECTATOR__STAT_NONE), as every
 * Spectator client does: spectator__stat_op. A value beyond the doubles
 * (an interval sum that overflowed) is reported as +-DBL_MAX, logged at
 * debug; NaN is dropped (logged at debug). On allocation failure the record is
 * counted in rs->lost. pct as above. */
void spectator__records_add(spectator__records_t *rs, const spectator_id_t *id,
                            spectator__stat_t stat, unsigned pct, double value);
/* The op of a statistic tag value: SPECTATOR_OP_ADD for count, totalAmount,
 * totalTime, totalOfSquares and percentile, SPECTATOR_OP_MAX for any other
 * (NULL included). */
int spectator__stat_op(const char *statistic);
/* Append a record for a line with an option (see line_opt above; larger
 * options are clamped to SPECTATOR__LINE_OPT_MAX). As records_add otherwise. */
void spectator__records_add_line(spectator__records_t *rs, const spectator_id_t *id, uint32_t opt,
                                 double value);
/* Where a meter reports its interval values, and the snapshot's time (the
 * registry's clock). out NULL: the meter resets without reporting (a forked
 * child drops what its parent had pending). */
typedef struct {
  spectator__records_t *out;
  int64_t now_ns;
} spectator__snap_ctx_t;

/* The percentile tag value of a record ("T00A2"); false when it has none. */
bool spectator__record_pct_tag(const spectator__record_t *r, char buf[6]);

#endif
