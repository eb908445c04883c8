/* Internal: the payload encoder (encoder.c). */
#ifndef SPECTATOR_ENCODER_H
#define SPECTATOR_ENCODER_H

#include "records.h"

/* One request body (gzip-compressed JSON, or the JSON itself when encoded
 * with SPECTATOR__ENCODE_RAW) and how many datapoints it holds. */
typedef struct {
  char *data;
  size_t len;     /* bytes of data */
  size_t raw_len; /* bytes of its JSON */
  size_t count;
} spectator__batch_t;

typedef struct {
  spectator__batch_t *batches;
  size_t len;
  size_t measurements; /* datapoints over all batches, after merging */
  size_t raw_bytes;    /* uncompressed bytes over all batches */
  size_t dropped;      /* records that could not be encoded (too many tags) */
} spectator__payload_t;

/* gzip_level for spectator__encode: batches hold their JSON, uncompressed. */
#define SPECTATOR__ENCODE_RAW (-2)

/* Encode records into batches of at most batch_size datapoints: common tags, sanitization, merging
 * of ids that sanitize alike, a sorted string table per batch. Each batch is gzip-compressed (RFC
 * 1952) at gzip_level (zlib's 0-9 or Z_DEFAULT_COMPRESSION) while it is written, or left as JSON
 * with SPECTATOR__ENCODE_RAW. Consumes rs: its records are freed as they are read and rs is empty
 * on return; the ids they borrow must stay alive until this returns. Returns 0, SPECTATOR_ENOMEM,
 * or SPECTATOR_ENOLIB when compression is asked for and zlib cannot be loaded (out is then empty).
 * The first call with compression loads zlib, unless a publisher's start already did. Thread-safe.
 */
int spectator__encode(spectator__records_t *rs, const char *const *common_tags, size_t batch_size,
                      int gzip_level, spectator__payload_t *out);
void spectator__payload_free(spectator__payload_t *p);

#endif
