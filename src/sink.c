/*
 * Request bodies: raw into one buffer, or gzip through a 64 KiB window.
 *
 * zlib is called through deps.h's ZLIB_FN(); the caller has loaded it.
 */
#include <stdlib.h>
#include <string.h>

#include "deps.h"
#include "sink.h"

/* zlib's deflateInit2 is a macro that passes the version and stream size the
 * caller was compiled with, so that zlib can refuse an incompatible caller;
 * its expansion is written out here to call deflateInit2_ through ZLIB_FN. */
int spectator__deflate_init(z_stream *zs, int level) {
  memset(zs, 0, sizeof(*zs));
  return ZLIB_FN(deflateInit2_)(zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                                (int)sizeof(z_stream));
}

/* Make room in the output: double it (the first size is a guess). */
static bool out_grow(z_stream *zs, char **out, size_t *cap) {
  size_t used = *out ? (size_t)((char *)zs->next_out - *out) : 0;
  size_t ncap = *cap > 4096 ? 2 * *cap : 8192;
  char *b = realloc(*out, ncap);
  if (!b) return false;
  *out = b;
  *cap = ncap;
  zs->next_out = (Bytef *)b + used;
  zs->avail_out = (uInt)(ncap - used);
  return true;
}

/* Feed len bytes to deflate with flush Z_NO_FLUSH (all input consumed) or
 * Z_FINISH (stream ended), growing the output as needed. len < 2^32. */
static bool deflate_feed(z_stream *zs, const char *in, size_t len, int flush, char **out,
                         size_t *cap) {
  zs->next_in = (Bytef *)in;
  zs->avail_in = (uInt)len;
  for (;;) {
    if (zs->avail_out == 0 && !out_grow(zs, out, cap)) return false;
    int rc = ZLIB_FN(deflate)(zs, flush);
    if (rc == Z_STREAM_END) return true;
    if (rc == Z_BUF_ERROR && zs->avail_out != 0) return false; /* no progress possible */
    if (rc != Z_OK && rc != Z_BUF_ERROR) return false;
    if (flush == Z_NO_FLUSH && zs->avail_in == 0) return true;
  }
}

bool spectator__sink_open(spectator__sink_t *k, z_stream *zs, char *window, size_t size) {
  memset(k, 0, sizeof(*k));
  if (zs) {
    if (ZLIB_FN(deflateReset)(zs) != Z_OK) return false;
    k->buf = window;
    k->end = window + SPECTATOR__SINK_WINDOW;
    /* JSON of ids compresses to well under an eighth; grown if not. */
    k->out_cap = size / 8 + 1024;
    if (!(k->out = malloc(k->out_cap))) return false;
    zs->next_out = (Bytef *)k->out;
    zs->avail_out = (uInt)k->out_cap;
    k->zs = zs;
  } else {
    /* slack: callers may copy 8 bytes at a time */
    if (!(k->buf = malloc(size + 16))) return false;
    k->end = k->buf + size + 16;
  }
  k->p = k->buf;
  return true;
}

bool spectator__sink_flush(spectator__sink_t *k, int flush) {
  if (!k->zs) return false; /* a raw body outgrew its counted size: cannot happen */
  size_t n = (size_t)(k->p - k->buf);
  k->flushed += n;
  k->p = k->buf;
  return deflate_feed(k->zs, k->buf, n, flush, &k->out, &k->out_cap);
}

bool spectator__sink_put(spectator__sink_t *k, const char *src, size_t n) {
  while (n) {
    if (k->p == k->end && !spectator__sink_flush(k, Z_NO_FLUSH)) return false;
    size_t m = (size_t)(k->end - k->p) < n ? (size_t)(k->end - k->p) : n;
    memcpy(k->p, src, m);
    k->p += m;
    src += m;
    n -= m;
  }
  return true;
}

bool spectator__sink_close(spectator__sink_t *k, bool ok, char **data, size_t *len,
                           size_t *raw_len) {
  char *body;
  if (k->zs) {
    ok = ok && spectator__sink_flush(k, Z_FINISH);
    body = k->out;
    *len = k->zs->total_out;
    *raw_len = k->flushed;
  } else {
    body = k->buf;
    *raw_len = *len = (size_t)(k->p - k->buf);
  }
  if (!ok) {
    free(body);
    return false;
  }
  char *trimmed = realloc(body, *len ? *len : 1);
  *data = trimmed ? trimmed : body;
  return true;
}
