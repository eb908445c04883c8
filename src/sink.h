/*
 * Private: where a request body is written (sink.c): one buffer of the
 * body's counted size (raw JSON), or a window that is fed to deflate whenever
 * it fills (gzip, RFC 1952), so the whole uncompressed body never exists.
 */
#ifndef SPECTATOR_SINK_H
#define SPECTATOR_SINK_H

#include <zlib.h>

#include "common.h"

/* The window of a gzip sink. */
#define SPECTATOR__SINK_WINDOW (64 * 1024)

typedef struct {
  char *buf, *p, *end; /* raw: the whole body; gzip: the window */
  z_stream *zs;        /* NULL: raw */
  char *out;           /* gzip: the compressed body so far */
  size_t out_cap;
  size_t flushed; /* gzip: bytes already fed to deflate */
} spectator__sink_t;

/* A gzip stream at this zlib level (0-9 or Z_DEFAULT_COMPRESSION), reused
 * across bodies; end it with deflateEnd through ZLIB_FN. Z_OK or a zlib
 * error. zlib must be loaded (deps.h). */
int spectator__deflate_init(z_stream *zs, int level);

/* Open a sink for a body of `size` bytes (raw: exactly that, plus 16 bytes of
 * slack; gzip: an estimate). zs NULL: raw; else gzip through window
 * (SPECTATOR__SINK_WINDOW bytes). False when memory runs out. */
bool spectator__sink_open(spectator__sink_t *k, z_stream *zs, char *window, size_t size);
/* Feed the window to deflate (Z_NO_FLUSH or Z_FINISH); false on failure. */
bool spectator__sink_flush(spectator__sink_t *k, int flush);
/* Room for n <= SPECTATOR__SINK_WINDOW bytes at k->p; false on failure. A raw
 * body's buffer has its counted size, so only a gzip window is ever flushed. */
static inline bool spectator__sink_reserve(spectator__sink_t *k, size_t n) {
  if (!k->zs || (size_t)(k->end - k->p) >= n) return true;
  return spectator__sink_flush(k, Z_NO_FLUSH);
}
/* Copy n bytes (any length); false on failure. */
bool spectator__sink_put(spectator__sink_t *k, const char *src, size_t n);
/* Finish the body: on success *data (malloc'd, trimmed), its length and the
 * uncompressed length; when ok is false or finishing fails, everything is
 * freed and false returned. */
bool spectator__sink_close(spectator__sink_t *k, bool ok, char **data, size_t *len,
                           size_t *raw_len);

#endif
