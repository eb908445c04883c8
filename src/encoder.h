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

/* An encoder for the batches of one publish: the common tags (borrowed: they
 * must outlive it) and gzip_level (zlib's 0-9 or Z_DEFAULT_COMPRESSION, or
 * SPECTATOR__ENCODE_RAW for plain JSON). Returns 0, SPECTATOR_ENOMEM, or
 * SPECTATOR_ENOLIB when compression is asked for and zlib cannot be loaded
 * (the first call with compression loads it, unless a publisher's start
 * already did). One encoder is used by one thread at a time. */
typedef struct spectator__encoder spectator__encoder_t;
int spectator__encoder_new(const char *const *common_tags, int gzip_level,
                           spectator__encoder_t **out);
void spectator__encoder_free(spectator__encoder_t *enc);
/* Encode every record of rs as one request body: common tags, sanitization,
 * merging of the datapoints that end up with the same tags (adds summed in
 * record order, maxes kept), a sorted string table. At most rs->len
 * datapoints; out->count 0 (and no data) when none is left. Records that cannot
 * be encoded (too many tags) or merge to a value that is not finite are
 * counted in *dropped. Consumes rs, whose ids must stay alive until this
 * returns. 0 or SPECTATOR_ENOMEM (out is then empty). */
int spectator__encoder_batch(spectator__encoder_t *enc, spectator__records_t *rs,
                             spectator__batch_t *out, size_t *dropped);

/* All of rs in batches of at most batch_size records each (one body per
 * batch, as spectator__encoder_batch), consuming rs. Returns as
 * spectator__encoder_new and spectator__encoder_batch. */
int spectator__encode(spectator__records_t *rs, const char *const *common_tags, size_t batch_size,
                      int gzip_level, spectator__payload_t *out);
void spectator__payload_free(spectator__payload_t *p);

#endif
