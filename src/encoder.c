/*
 * Encoder: snapshot records -> Atlas aggregator batches (SPEC section 3).
 *
 * DESIGN
 * A publish turns every record into a datapoint: the common tags, then the
 * id's tags, then the statistic (and percentile) tag, then ("name", name),
 * later keys overriding earlier ones; every key and value sanitized to
 * `-._A-Za-z0-9^~` (anything else becomes `_`). Sanitizing can make two ids
 * equal, so datapoints are merged by their sanitized tag set (adds summed,
 * maxes kept) before they are cut into batches of at most batch_size.
 *
 * Strings are interned once per cycle into a hash set, so a datapoint is a
 * short array of (key index, value index) pairs; merging hashes and compares
 * those small integer arrays. Each batch gets its own sorted string table
 * holding only the strings it uses.
 *
 * The JSON is written directly rather than through a DOM: after sanitization
 * no string needs escaping, and numbers are written as integers when whole or
 * with the shortest of %.15g / %.17g that reads back to the same double, so
 * the output is strict RFC 8259 JSON (non-finite values never reach here). It
 * is then gzip-compressed with zlib.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "encoder.h"

/* ------------------------------------------------------------------------ */
/* Small helpers: growable buffer, arena                                     */
/* ------------------------------------------------------------------------ */

typedef struct {
  char *data;
  size_t len, cap;
  bool failed;
} buf_t;

static bool buf_reserve(buf_t *b, size_t extra) {
  if (b->failed) return false;
  if (b->len + extra <= b->cap) return true;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + extra) cap *= 2;
  char *d = realloc(b->data, cap);
  if (!d) {
    b->failed = true;
    return false;
  }
  b->data = d;
  b->cap = cap;
  return true;
}

static inline void buf_put(buf_t *b, const char *s, size_t n) {
  if (!buf_reserve(b, n)) return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
}

static inline void buf_putc(buf_t *b, char c) {
  if (!buf_reserve(b, 1)) return;
  b->data[b->len++] = c;
}

static void buf_put_u64(buf_t *b, uint64_t v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  if (!buf_reserve(b, n)) return;
  while (n) b->data[b->len++] = tmp[--n];
}

void spectator__json_number(char *out, size_t size, double v) {
  if (v == 0) {
    snprintf(out, size, "0");
  } else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
    snprintf(out, size, "%.0f", v);
  } else {
    snprintf(out, size, "%.15g", v);
    if (strtod(out, NULL) != v) snprintf(out, size, "%.17g", v);
  }
}

static void buf_put_double(buf_t *b, double v) {
  if (v >= 0 && v < 1e15 && v == (double)(uint64_t)v) {
    buf_put_u64(b, (uint64_t)v);
    return;
  }
  char tmp[40];
  spectator__json_number(tmp, sizeof(tmp), v);
  buf_put(b, tmp, strlen(tmp));
}

/* Bump allocator for sanitized strings and rows of one encode. */
typedef struct arena_block {
  struct arena_block *next;
  size_t used, cap;
  _Alignas(8) char data[];
} arena_block_t;

typedef struct {
  arena_block_t *head;
} arena_t;

static void *arena_alloc(arena_t *a, size_t n) {
  n = (n + 7) & ~(size_t)7;
  if (!a->head || a->head->used + n > a->head->cap) {
    size_t cap = n > 65536 ? n : 65536;
    arena_block_t *blk = malloc(sizeof(*blk) + cap);
    if (!blk) return NULL;
    blk->next = a->head;
    blk->used = 0;
    blk->cap = cap;
    a->head = blk;
  }
  void *p = a->head->data + a->head->used;
  a->head->used += n;
  return p;
}

static void arena_free(arena_t *a) {
  while (a->head) {
    arena_block_t *n = a->head->next;
    free(a->head);
    a->head = n;
  }
}

/* ------------------------------------------------------------------------ */
/* Sanitization                                                              */
/* ------------------------------------------------------------------------ */

static inline bool allowed(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '^' || c == '~';
}

/* Length of the UTF-8 sequence starting at p when it is well formed, else 0. */
static size_t utf8_len(const unsigned char *p) {
  size_t n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
  if (p[0] >= 0xf8) return 0;
  for (size_t i = 1; i < n; i++)
    if ((p[i] & 0xc0) != 0x80) return 0;
  return n;
}

/* Every character outside the allowed set becomes one '_': a well-formed
 * UTF-8 sequence is one character (as the aggregator, which sees decoded
 * text, counts it), any other byte is one character on its own. */
size_t spectator__sanitize(const char *in, char *out) {
  const unsigned char *p = (const unsigned char *)in;
  size_t o = 0;
  while (*p) {
    if (allowed(*p)) {
      out[o++] = (char)*p++;
    } else {
      size_t n = *p >= 0x80 ? utf8_len(p) : 0;
      p += n ? n : 1;
      out[o++] = '_';
    }
  }
  out[o] = '\0';
  return o;
}

/* The sanitized form of s: s itself when it is already clean. */
static const char *sanitized(arena_t *a, const char *s, size_t *len) {
  size_t i = 0;
  while (s[i] && allowed((unsigned char)s[i])) i++;
  if (!s[i]) {
    *len = i;
    return s;
  }
  size_t n = i + strlen(s + i);
  char *out = arena_alloc(a, n + 1);
  if (!out) return NULL;
  *len = spectator__sanitize(s, out);
  return out;
}

/* ------------------------------------------------------------------------ */
/* String interning                                                          */
/* ------------------------------------------------------------------------ */

typedef struct {
  const char *s;
  uint32_t len;
  uint32_t hash;
} istr_t;

typedef struct {
  istr_t *strs;
  size_t n, cap;
  uint32_t *slots; /* index + 1; 0 = empty */
  size_t mask;
  bool failed;
} interner_t;

static uint32_t str_hash(const char *s, size_t len) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
  return (uint32_t)(h ^ (h >> 32));
}

static bool interner_grow(interner_t *in) {
  size_t cap = in->mask ? 2 * (in->mask + 1) : 1024;
  uint32_t *slots = calloc(cap, sizeof(*slots));
  if (!slots) return false;
  for (size_t i = 0; i < in->n; i++) {
    size_t j = in->strs[i].hash & (cap - 1);
    while (slots[j]) j = (j + 1) & (cap - 1);
    slots[j] = (uint32_t)(i + 1);
  }
  free(in->slots);
  in->slots = slots;
  in->mask = cap - 1;
  return true;
}

/* Index of the string; UINT32_MAX when memory runs out. */
static uint32_t intern(interner_t *in, const char *s, size_t len) {
  if (in->failed) return UINT32_MAX;
  if (2 * (in->n + 1) > in->mask + 1 && !interner_grow(in)) goto fail;
  uint32_t h = str_hash(s, len);
  size_t j = h & in->mask;
  for (; in->slots[j]; j = (j + 1) & in->mask) {
    istr_t *e = &in->strs[in->slots[j] - 1];
    if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0) return in->slots[j] - 1;
  }
  if (in->n == in->cap) {
    size_t cap = in->cap ? 2 * in->cap : 1024;
    istr_t *strs = realloc(in->strs, cap * sizeof(*strs));
    if (!strs) goto fail;
    in->strs = strs;
    in->cap = cap;
  }
  in->strs[in->n] = (istr_t){s, (uint32_t)len, h};
  in->slots[j] = (uint32_t)(in->n + 1);
  return (uint32_t)in->n++;
fail:
  in->failed = true;
  return UINT32_MAX;
}

static void interner_free(interner_t *in) {
  free(in->strs);
  free(in->slots);
}

/* ------------------------------------------------------------------------ */
/* Datapoints                                                                */
/* ------------------------------------------------------------------------ */

typedef struct {
  uint32_t *pairs; /* 2 * npairs interned indexes, sorted by key index */
  uint32_t npairs;
  uint32_t hash;
  int op;
  double value;
} row_t;

typedef struct {
  row_t *rows;
  size_t n, cap;
  uint32_t *slots; /* index + 1 */
  size_t mask;
  bool failed;
} rowmap_t;

static uint32_t row_hash(const uint32_t *pairs, uint32_t n, int op) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)op;
  for (uint32_t i = 0; i < 2 * n; i++) {
    h ^= pairs[i];
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 29;
  }
  return (uint32_t)(h ^ (h >> 32));
}

static bool rowmap_grow(rowmap_t *m) {
  size_t cap = m->mask ? 2 * (m->mask + 1) : 1024;
  uint32_t *slots = calloc(cap, sizeof(*slots));
  if (!slots) return false;
  for (size_t i = 0; i < m->n; i++) {
    size_t j = m->rows[i].hash & (cap - 1);
    while (slots[j]) j = (j + 1) & (cap - 1);
    slots[j] = (uint32_t)(i + 1);
  }
  free(m->slots);
  m->slots = slots;
  m->mask = cap - 1;
  return true;
}

/* Add a datapoint, merging with an equal one. pairs is copied into the arena
 * only when the row is new. */
static void rowmap_add(rowmap_t *m, arena_t *a, const uint32_t *pairs, uint32_t npairs, int op,
                       double value) {
  if (m->failed) return;
  if (2 * (m->n + 1) > m->mask + 1 && !rowmap_grow(m)) goto fail;
  uint32_t h = row_hash(pairs, npairs, op);
  size_t j = h & m->mask;
  for (; m->slots[j]; j = (j + 1) & m->mask) {
    row_t *r = &m->rows[m->slots[j] - 1];
    if (r->hash == h && r->op == op && r->npairs == npairs &&
        memcmp(r->pairs, pairs, 2 * npairs * sizeof(*pairs)) == 0) {
      if (op == SPECTATOR_OP_MAX)
        r->value = value > r->value ? value : r->value;
      else
        r->value += value;
      return;
    }
  }
  if (m->n == m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 1024;
    row_t *rows = realloc(m->rows, cap * sizeof(*rows));
    if (!rows) goto fail;
    m->rows = rows;
    m->cap = cap;
  }
  uint32_t *copy = arena_alloc(a, 2 * npairs * sizeof(*copy));
  if (!copy) goto fail;
  memcpy(copy, pairs, 2 * npairs * sizeof(*copy));
  m->rows[m->n] = (row_t){copy, npairs, h, op, value};
  m->slots[j] = (uint32_t)(m->n + 1);
  m->n++;
  return;
fail:
  m->failed = true;
}

static void rowmap_free(rowmap_t *m) {
  free(m->rows);
  free(m->slots);
}

/* Pair list under construction: later keys replace earlier ones. */
#define MAX_PAIRS 256
typedef struct {
  uint32_t kv[2 * MAX_PAIRS];
  uint32_t n;
  bool overflow;
} pairs_t;

static inline void pairs_set(pairs_t *p, uint32_t k, uint32_t v) {
  for (uint32_t i = 0; i < p->n; i++) {
    if (p->kv[2 * i] == k) {
      p->kv[2 * i + 1] = v;
      return;
    }
  }
  if (p->n == MAX_PAIRS) {
    p->overflow = true;
    return;
  }
  p->kv[2 * p->n] = k;
  p->kv[2 * p->n + 1] = v;
  p->n++;
}

static void pairs_sort(pairs_t *p) {
  for (uint32_t i = 1; i < p->n; i++) {
    uint32_t k = p->kv[2 * i], v = p->kv[2 * i + 1], j = i;
    while (j > 0 && p->kv[2 * (j - 1)] > k) {
      p->kv[2 * j] = p->kv[2 * (j - 1)];
      p->kv[2 * j + 1] = p->kv[2 * (j - 1) + 1];
      j--;
    }
    p->kv[2 * j] = k;
    p->kv[2 * j + 1] = v;
  }
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct {
  arena_t arena;
  interner_t in;
  rowmap_t rows;
} encoder_t;

static uint32_t intern_sanitized(encoder_t *e, const char *s) {
  size_t len;
  const char *t = sanitized(&e->arena, s, &len);
  if (!t) {
    e->in.failed = true;
    return UINT32_MAX;
  }
  return intern(&e->in, t, len);
}

typedef struct {
  const char *s;
  uint32_t len;
  uint32_t idx;
} used_t;

static int cmp_used(const void *x, const void *y) {
  const used_t *a = x, *b = y;
  size_t n = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->s, b->s, n);
  return c ? c : (a->len < b->len ? -1 : (a->len > b->len));
}

/* Write rows [from, to) as one batch. */
static void write_batch(encoder_t *e, size_t from, size_t to, uint32_t *stamp, uint32_t *local,
                        uint32_t batch_no, buf_t *out) {
  used_t *used = malloc((e->in.n ? e->in.n : 1) * sizeof(*used));
  if (!used) {
    out->failed = true;
    return;
  }
  size_t nused = 0;
  for (size_t r = from; r < to; r++) {
    const row_t *row = &e->rows.rows[r];
    for (uint32_t i = 0; i < 2 * row->npairs; i++) {
      uint32_t s = row->pairs[i];
      if (stamp[s] != batch_no) {
        stamp[s] = batch_no;
        used[nused++] = (used_t){e->in.strs[s].s, e->in.strs[s].len, s};
      }
    }
  }
  qsort(used, nused, sizeof(*used), cmp_used);

  buf_putc(out, '[');
  buf_put_u64(out, nused);
  for (size_t i = 0; i < nused; i++) {
    local[used[i].idx] = (uint32_t)i;
    buf_put(out, ",\"", 2);
    buf_put(out, used[i].s, used[i].len);
    buf_putc(out, '"');
  }
  for (size_t r = from; r < to; r++) {
    const row_t *row = &e->rows.rows[r];
    /* Pairs in key order: local indexes follow the sorted string table. */
    uint32_t kv[2 * MAX_PAIRS];
    for (uint32_t i = 0; i < row->npairs; i++) {
      uint32_t k = local[row->pairs[2 * i]], v = local[row->pairs[2 * i + 1]], j = i;
      while (j > 0 && kv[2 * (j - 1)] > k) {
        kv[2 * j] = kv[2 * (j - 1)];
        kv[2 * j + 1] = kv[2 * (j - 1) + 1];
        j--;
      }
      kv[2 * j] = k;
      kv[2 * j + 1] = v;
    }
    buf_putc(out, ',');
    buf_put_u64(out, row->npairs);
    for (uint32_t i = 0; i < 2 * row->npairs; i++) {
      buf_putc(out, ',');
      buf_put_u64(out, kv[i]);
    }
    buf_putc(out, ',');
    buf_put_u64(out, (uint64_t)row->op);
    buf_putc(out, ',');
    buf_put_double(out, row->value);
  }
  buf_putc(out, ']');
  free(used);
}

void spectator__payload_free(spectator__payload_t *p) {
  for (size_t i = 0; p && i < p->len; i++) free(p->batches[i].data);
  if (p) {
    free(p->batches);
    memset(p, 0, sizeof(*p));
  }
}

int spectator__encode(const spectator__records_t *rs, const char *const *common_tags,
                      size_t batch_size, spectator__payload_t *out) {
  memset(out, 0, sizeof(*out));
  if (batch_size == 0) batch_size = 1;
  encoder_t e;
  memset(&e, 0, sizeof(e));
  int rc = SPECTATOR_ENOMEM;

  /* Common tags, sanitized and interned once. */
  pairs_t base;
  base.n = 0;
  base.overflow = false;
  for (size_t i = 0; common_tags && common_tags[i] && common_tags[i + 1]; i += 2)
    pairs_set(&base, intern_sanitized(&e, common_tags[i]), intern_sanitized(&e, common_tags[i + 1]));
  uint32_t k_name = intern(&e.in, "name", 4);
  uint32_t k_stat = intern(&e.in, "statistic", 9);
  uint32_t k_pct = intern(&e.in, "percentile", 10);

  pairs_t p;
  for (size_t r = 0; r < rs->len && !e.in.failed; r++) {
    const spectator__record_t *rec = &rs->items[r];
    memcpy(p.kv, base.kv, 2 * base.n * sizeof(uint32_t));
    p.n = base.n;
    p.overflow = base.overflow;
    const spectator_id_t *id = rec->id;
    for (uint32_t i = 0; i < id->ntags; i++)
      pairs_set(&p, intern_sanitized(&e, id->tags[2 * i]), intern_sanitized(&e, id->tags[2 * i + 1]));
    if (rec->statistic) pairs_set(&p, k_stat, intern_sanitized(&e, rec->statistic));
    if (rec->percentile[0]) pairs_set(&p, k_pct, intern(&e.in, rec->percentile, strlen(rec->percentile)));
    pairs_set(&p, k_name, intern_sanitized(&e, id->name));
    if (p.overflow) {
      out->dropped++;
      continue;
    }
    pairs_sort(&p);
    rowmap_add(&e.rows, &e.arena, p.kv, p.n, rec->op, rec->value);
  }
  if (e.in.failed || e.rows.failed) goto done;

  size_t nbatches = (e.rows.n + batch_size - 1) / batch_size;
  out->batches = calloc(nbatches ? nbatches : 1, sizeof(*out->batches));
  uint32_t *stamp = calloc(e.in.n ? e.in.n : 1, sizeof(*stamp));
  uint32_t *local = malloc((e.in.n ? e.in.n : 1) * sizeof(*local));
  if (!out->batches || !stamp || !local) {
    free(stamp);
    free(local);
    goto done;
  }
  bool ok = true;
  for (size_t b = 0; b < nbatches && ok; b++) {
    size_t from = b * batch_size, to = from + batch_size < e.rows.n ? from + batch_size : e.rows.n;
    buf_t json = {0};
    write_batch(&e, from, to, stamp, local, (uint32_t)(b + 1), &json);
    if (json.failed) {
      free(json.data);
      ok = false;
      break;
    }
    out->batches[out->len++] = (spectator__batch_t){json.data, json.len, to - from};
    out->measurements += to - from;
    out->raw_bytes += json.len;
  }
  free(stamp);
  free(local);
  if (ok) rc = 0;
done:
  if (rc != 0) spectator__payload_free(out);
  arena_free(&e.arena);
  interner_free(&e.in);
  rowmap_free(&e.rows);
  return rc;
}

int spectator__gzip(const char *in, size_t len, int level, char **out, size_t *out_len) {
  z_stream zs;
  memset(&zs, 0, sizeof(zs));
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return SPECTATOR_ENOMEM;
  size_t cap = deflateBound(&zs, (uLong)len);
  char *buf = malloc(cap);
  if (!buf) {
    deflateEnd(&zs);
    return SPECTATOR_ENOMEM;
  }
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)len;
  zs.next_out = (Bytef *)buf;
  zs.avail_out = (uInt)cap;
  int zrc = deflate(&zs, Z_FINISH);
  deflateEnd(&zs);
  if (zrc != Z_STREAM_END) {
    free(buf);
    return SPECTATOR_ENOMEM;
  }
  *out = buf;
  *out_len = zs.total_out;
  return 0;
}
