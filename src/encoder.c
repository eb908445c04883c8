/*
 * Encoder: snapshot records -> Atlas aggregator batches (SPEC section 3).
 *
 * DESIGN
 * A publish turns every record into a datapoint: the common tags, then the
 * id's tags, then the statistic (and percentile) tag, then ("name", name),
 * later keys overriding earlier ones; every key and value sanitized to
 * `-._A-Za-z0-9^~` (anything else becomes `_`). Sanitizing can make two ids
 * equal, so datapoints are merged by their sanitized tag set (adds summed in
 * record order, maxes kept) before they are cut into batches of at most
 * batch_size. A merged value that is not finite is dropped.
 *
 * It runs once per publish on up to hundreds of thousands of records, so it
 * is built for time and memory (bench/bench_publish.c, docs/performance.md):
 *
 * - Strings are interned once per cycle (pointer and length into the ids, no
 *   copy unless sanitizing changes them); the scan that checks the allowed
 *   characters also finds the length, and the hash reads 8 bytes at a time.
 *   Consecutive records of one meter share its id, whose sanitized pairs are
 *   computed once.
 * - A datapoint is stored as its "own" pairs only: the pairs that are not one
 *   of the common tags, as (key, value) string indexes sorted by key. Equal
 *   own pairs mean equal tag sets (the common tags are the same for every
 *   datapoint), so merging hashes and compares those short integer arrays.
 *   The row array is sized once from the record count, and the merge index
 *   is freed before any JSON is written.
 * - Records are consumed: each chunk of 1024 is freed once its datapoints
 *   are built, so records and rows never both exist whole.
 * - Each batch gets its own sorted string table holding only the strings it
 *   uses. Its JSON is written directly (no DOM: after sanitization no string
 *   needs escaping). Numbers are integers when whole, else the shortest
 *   fixed-point form that reads back to the same double (checked with one
 *   division), else the shortest of %.15g / %.17g that does: strict RFC 8259
 *   JSON.
 * - With gzip (the publisher's case) the JSON goes through a 64 KiB window
 *   into deflate while it is written, so a batch's uncompressed JSON never
 *   exists whole; the compressed output starts at an eighth of the JSON's
 *   size (counted exactly before writing, non-integer values at their
 *   longest) and grows only if needed. Without gzip the JSON is written into
 *   one buffer of that size, trimmed at the end.
 *
 * zlib is called through src/deps.h's ZLIB_FN(): unless the library is linked
 * to it, it is loaded when compression is first asked for (deps.c). A
 * publisher's start has loaded it already; direct callers (tests, benchmarks,
 * fuzzing) get SPECTATOR__ENOLIB when it cannot be loaded.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deps.h"
#include "encoder.h"

/* ------------------------------------------------------------------------ */
/* Numbers                                                                   */
/* ------------------------------------------------------------------------ */

#define TWO_POW_53 9007199254740992.0
/* Longest number written: "-1.2345678901234567e-308". */
#define MAX_NUMBER_LEN 24

static const double pow10_tbl[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static const char digit_pairs[] = "00010203040506070809101112131415161718192021222324"
                                  "25262728293031323334353637383940414243444546474849"
                                  "50515253545556575859606162636465666768697071727374"
                                  "75767778798081828384858687888990919293949596979899";

static inline size_t u64_len(uint64_t v) {
  size_t n = 1;
  while (v >= 100) {
    v /= 100;
    n += 2;
  }
  return n + (v >= 10);
}

/* Decimal digits of v, no terminator; returns their count. */
static inline size_t put_u64(char *out, uint64_t v) {
  size_t n = u64_len(v), i = n;
  while (v >= 100) {
    size_t d = 2 * (size_t)(v % 100);
    v /= 100;
    out[--i] = digit_pairs[d + 1];
    out[--i] = digit_pairs[d];
  }
  if (v >= 10) {
    out[--i] = digit_pairs[2 * v + 1];
    out[--i] = digit_pairs[2 * v];
  } else {
    out[--i] = (char)('0' + v);
  }
  return n;
}

/* v as an integer when it is one below 2^53 in magnitude, else (from 1e-4 to
 * 1e15) the shortest fixed-point form with at most 17 decimals whose value,
 * read back, is v, never longer than %.15g / %.17g would be: for
 * m / 10^k with m < 2^53 the division is correctly rounded exactly as a
 * correctly rounded parser reads "m e-k", so the check is one division.
 * Returns the length written, 0 when v needs the slow path. */
static size_t fmt_fast(char *out, double v) {
  char *p = out;
  double a = v;
  if (a < 0) {
    *p++ = '-';
    a = -a;
  }
  if (a < TWO_POW_53 && a == (double)(uint64_t)a)
    return (size_t)(p - out) + put_u64(p, (uint64_t)a);
  if (!(a >= 1e-4 && a < 1e15)) return 0; /* below 1e-4 the exponent form is shorter */
  for (int k = 1; k <= 17; k++) {
    double s = a * pow10_tbl[k];
    if (s >= TWO_POW_53) return 0;
    uint64_t m = (uint64_t)(s + 0.5);
    if ((double)m / pow10_tbl[k] != a) continue;
    char d[20];
    size_t n = put_u64(d, m), kk = (size_t)k;
    while (kk > 0 && d[n - 1] == '0') { /* only if the guess above was off */
      n--;
      kk--;
    }
    if (n <= kk) {
      *p++ = '0';
      *p++ = '.';
      for (size_t z = n; z < kk; z++) *p++ = '0';
      memcpy(p, d, n);
      p += n;
    } else {
      memcpy(p, d, n - kk);
      p += n - kk;
      if (kk) {
        *p++ = '.';
        memcpy(p, d + n - kk, kk);
        p += kk;
      }
    }
    return (size_t)(p - out);
  }
  return 0;
}

/* The slow path: the shortest of %.15g and %.17g that reads back exactly. */
static void fmt_slow(char *out, size_t size, double v) {
  snprintf(out, size, "%.15g", v);
  if (strtod(out, NULL) != v) snprintf(out, size, "%.17g", v);
}

void spectator__json_number(char *out, size_t size, double v) {
  char tmp[MAX_NUMBER_LEN + 8];
  size_t n = v == 0 ? (tmp[0] = '0', 1) : fmt_fast(tmp, v);
  if (n) {
    if (!size) return;
    if (n >= size) n = size - 1;
    memcpy(out, tmp, n);
    out[n] = '\0';
    return;
  }
  fmt_slow(out, size, v);
}

/* Write v at p (room for MAX_NUMBER_LEN bytes); returns the length. */
static inline size_t put_number(char *p, double v) {
  if (v >= 0 && v < TWO_POW_53 && v == (double)(uint64_t)v) return put_u64(p, (uint64_t)v);
  size_t n = v == 0 ? (p[0] = '0', 1) : fmt_fast(p, v); /* -0.0 is 0 */
  if (n) return n;
  char tmp[MAX_NUMBER_LEN + 8];
  fmt_slow(tmp, sizeof(tmp), v);
  n = strlen(tmp);
  memcpy(p, tmp, n);
  return n;
}

/* Bytes put_number writes for v: exact for integers, at most for others. */
static inline size_t number_len_bound(double v) {
  if (v >= 0 && v < TWO_POW_53 && v == (double)(uint64_t)v) return u64_len((uint64_t)v);
  return MAX_NUMBER_LEN;
}

/* ------------------------------------------------------------------------ */
/* Arena                                                                     */
/* ------------------------------------------------------------------------ */

/* Bump allocator (blocks kept oldest first): one for sanitized strings, one
 * for datapoint pairs, whose blocks are released batch by batch. */
typedef struct arena_block {
  struct arena_block *next;
  size_t used, cap;
  _Alignas(8) char data[];
} arena_block_t;

typedef struct {
  arena_block_t *head, *tail;
} arena_t;

static void *arena_alloc(arena_t *a, size_t n) {
  n = n ? (n + 7) & ~(size_t)7 : 8; /* never empty: p always lies inside its block */
  if (!a->tail || a->tail->used + n > a->tail->cap) {
    size_t cap = n > 65536 ? n : 65536;
    arena_block_t *blk = malloc(sizeof(*blk) + cap);
    if (!blk) return NULL;
    blk->next = NULL;
    blk->used = 0;
    blk->cap = cap;
    if (a->tail)
      a->tail->next = blk;
    else
      a->head = blk;
    a->tail = blk;
  }
  void *p = a->tail->data + a->tail->used;
  a->tail->used += n;
  return p;
}

/* Free the blocks allocated before the one holding p (all of them for NULL). */
static void arena_release_before(arena_t *a, const void *p) {
  while (a->head) {
    arena_block_t *b = a->head;
    if (p && (const char *)p >= b->data && (const char *)p < b->data + b->cap) return;
    a->head = b->next;
    if (!a->head) a->tail = NULL;
    free(b);
  }
}

static void arena_free(arena_t *a) { arena_release_before(a, NULL); }

/* ------------------------------------------------------------------------ */
/* Sanitization                                                              */
/* ------------------------------------------------------------------------ */

/* -._A-Za-z0-9^~ as a bitmap of the 128 ASCII codes. */
static const uint64_t allowed_bits[2] = {0x03FF600000000000ULL, 0x47FFFFFEC7FFFFFEULL};

static inline bool allowed(unsigned char c) {
  return c < 128 && ((allowed_bits[c >> 6] >> (c & 63)) & 1);
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

/* ------------------------------------------------------------------------ */
/* String interning                                                          */
/* ------------------------------------------------------------------------ */

static inline uint64_t fold(uint64_t a, uint64_t b) {
  unsigned __int128 m = (unsigned __int128)a * b;
  return (uint64_t)m ^ (uint64_t)(m >> 64);
}

/* 8 bytes at a time, the tail with overlapping loads inside the string. */
static uint32_t str_hash(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  uint64_t h = 0x243f6a8885a308d3ULL ^ (len * 0xa0761d6478bd642fULL), v;
  size_t n = len;
  for (; n >= 8; n -= 8, p += 8) {
    memcpy(&v, p, 8);
    h = fold(h ^ v, 0x9e3779b97f4a7c15ULL);
  }
  if (n >= 4) {
    uint32_t a, b;
    memcpy(&a, p, 4);
    memcpy(&b, p + n - 4, 4);
    h = fold(h ^ ((uint64_t)a << 32 | b), 0x9e3779b97f4a7c15ULL);
  } else if (n) {
    h = fold(h ^ ((uint64_t)p[0] << 16 | (uint64_t)p[n / 2] << 8 | p[n - 1]),
             0x9e3779b97f4a7c15ULL);
  }
  h = fold(h, 0xa0761d6478bd642fULL);
  return (uint32_t)(h ^ (h >> 32));
}

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

/* Index of the string; UINT32_MAX when memory runs out. A new string is
 * kept by address, or copied into `copy_to` when that is given (s is then a
 * scratch buffer). */
static uint32_t intern_ex(interner_t *in, const char *s, size_t len, arena_t *copy_to) {
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
  if (copy_to) {
    char *c = arena_alloc(copy_to, len + 1);
    if (!c) goto fail;
    memcpy(c, s, len);
    c[len] = '\0';
    s = c;
  }
  in->strs[in->n] = (istr_t){s, (uint32_t)len, h};
  in->slots[j] = (uint32_t)(in->n + 1);
  return (uint32_t)in->n++;
fail:
  in->failed = true;
  return UINT32_MAX;
}

static inline uint32_t intern(interner_t *in, const char *s, size_t len) {
  return intern_ex(in, s, len, NULL);
}

static void interner_free(interner_t *in) {
  free(in->strs);
  free(in->slots);
}

/* ------------------------------------------------------------------------ */
/* Datapoints                                                                */
/* ------------------------------------------------------------------------ */

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

/* Insertion sort of n (key, value) pairs by key. */
static inline void sort_pairs(uint32_t *kv, uint32_t n) {
  for (uint32_t i = 1; i < n; i++) {
    uint32_t k = kv[2 * i], v = kv[2 * i + 1], j = i;
    while (j > 0 && kv[2 * (j - 1)] > k) {
      kv[2 * j] = kv[2 * (j - 1)];
      kv[2 * j + 1] = kv[2 * (j - 1) + 1];
      j--;
    }
    kv[2 * j] = k;
    kv[2 * j + 1] = v;
  }
}

/* A datapoint: its own pairs (those that are not a common tag), sorted by key
 * index, in the arena; 24 bytes. */
typedef struct {
  const uint32_t *pairs;
  double value;
  uint32_t hash;
  uint16_t npairs;
  uint8_t op;
  uint8_t merged; /* added into an earlier equal row */
} row_t;

static uint32_t row_hash(const uint32_t *pairs, uint32_t n, int op) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)op;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t kv;
    memcpy(&kv, &pairs[2 * i], 8);
    h = fold(h ^ kv, 0xff51afd7ed558ccdULL);
  }
  return (uint32_t)(h ^ (h >> 32));
}

/* Rows live in chunks, so that those already written can be freed. */
#define ROW_CHUNK 1024

typedef struct {
  arena_t strings; /* sanitized strings */
  arena_t pairs;   /* rows' pairs, in row order */
  interner_t in;
  row_t **chunks; /* ROW_CHUNK rows (24 KiB) each */
  size_t nchunks;
  size_t nrows;
  uint32_t *slots; /* merge index: row + 1; freed before writing */
  size_t mask;
  bool failed;
  /* the common tags, sanitized and interned; later ones win */
  pairs_t common;
  uint32_t k_name, k_stat, k_pct;
  /* the last record's id, whose pairs (tags, then the name) are reused */
  const spectator_id_t *last_id;
  pairs_t id_pairs;
  uint32_t id_name;
  /* where strings that need sanitizing are sanitized before interning */
  char *scratch;
  size_t scratch_cap;
  /* statistic and percentile tag values, interned on first use */
  uint32_t stat_idx[SPECTATOR__STAT_COUNT_OF_NAMES];
  uint32_t pct_idx[2][SPECTATOR__PCT_LENGTH];
} encoder_t;

/* Intern the sanitized form of s (s itself when it is already clean). */
static uint32_t intern_sanitized(encoder_t *e, const char *s) {
  size_t i = 0;
  while (allowed((unsigned char)s[i])) i++;
  if (!s[i]) return intern(&e->in, s, i);
  size_t n = i + strlen(s + i);
  if (n + 1 > e->scratch_cap) {
    size_t cap = 2 * (n + 1) > 256 ? 2 * (n + 1) : 256;
    char *b = realloc(e->scratch, cap);
    if (!b) {
      e->in.failed = true;
      return UINT32_MAX;
    }
    e->scratch = b;
    e->scratch_cap = cap;
  }
  /* Copied into the arena only when it is a new string. */
  return intern_ex(&e->in, e->scratch, spectator__sanitize(s, e->scratch), &e->strings);
}

static uint32_t intern_statistic(encoder_t *e, unsigned stat) {
  if (e->stat_idx[stat] == UINT32_MAX)
    e->stat_idx[stat] = intern_sanitized(e, spectator__stat_names[stat]);
  return e->stat_idx[stat];
}

/* The percentile tag value: copied into the arena the first time (a record
 * only holds its bucket index). */
static uint32_t intern_percentile(encoder_t *e, const spectator__record_t *rec) {
  uint32_t *slot = &e->pct_idx[rec->pct & SPECTATOR__PCT_SUMMARY ? 1 : 0]
                              [(rec->pct & ~SPECTATOR__PCT_SUMMARY) - 1];
  if (*slot == UINT32_MAX) {
    char tag[6];
    spectator__record_pct_tag(rec, tag);
    *slot = intern_ex(&e->in, tag, strlen(tag), &e->strings);
  }
  return *slot;
}

static inline row_t *row_at(const encoder_t *e, size_t i) {
  return &e->chunks[i / ROW_CHUNK][i % ROW_CHUNK];
}

/* Append a datapoint (merged with equal ones later, by merge_rows). */
static void row_add(encoder_t *e, const uint32_t *pairs, uint32_t npairs, int op, double value) {
  uint32_t *copy = arena_alloc(&e->pairs, 2 * npairs * sizeof(*copy));
  row_t *chunk = e->chunks[e->nrows / ROW_CHUNK];
  if (!chunk) chunk = e->chunks[e->nrows / ROW_CHUNK] = malloc(ROW_CHUNK * sizeof(row_t));
  if (!copy || !chunk) {
    e->failed = true;
    return;
  }
  memcpy(copy, pairs, 2 * npairs * sizeof(*copy));
  chunk[e->nrows % ROW_CHUNK] =
      (row_t){copy, value, row_hash(pairs, npairs, op), (uint16_t)npairs, (uint8_t)op, 0};
  e->nrows++;
}

/* Merge equal datapoints into the first one (adds summed in record order,
 * maxes kept). The index is far bigger than the caches and every row lands
 * at a random slot, so slots are prefetched a few rows ahead. */
static void merge_rows(encoder_t *e) {
  enum { AHEAD = 8 };
  for (size_t r = 0; r < e->nrows; r++) {
    if (r + AHEAD < e->nrows)
      __builtin_prefetch(&e->slots[row_at(e, r + AHEAD)->hash & e->mask], 1);
    row_t *row = row_at(e, r);
    size_t j = row->hash & e->mask;
    for (; e->slots[j]; j = (j + 1) & e->mask) {
      row_t *first = row_at(e, e->slots[j] - 1);
      if (first->hash == row->hash && first->op == row->op && first->npairs == row->npairs &&
          memcmp(first->pairs, row->pairs, 2 * (size_t)row->npairs * sizeof(uint32_t)) == 0) {
        if (row->op == SPECTATOR_OP_MAX)
          first->value = row->value > first->value ? row->value : first->value;
        else
          first->value += row->value;
        row->merged = 1;
        break;
      }
    }
    if (!row->merged) e->slots[j] = (uint32_t)(r + 1);
  }
}

/* Common pair i is overridden when the row has its key. */
static inline bool overridden(const row_t *r, uint32_t key) {
  for (uint32_t i = 0; i < r->npairs; i++)
    if (r->pairs[2 * i] == key) return true;
  return false;
}

/* Build the datapoint of one record and add it; false when it has too many
 * tags to be encoded. */
static bool add_record(encoder_t *e, const spectator__record_t *rec) {
  const spectator_id_t *id = rec->id;
  if (id != e->last_id) {
    e->id_pairs.n = 0;
    e->id_pairs.overflow = false;
    for (uint32_t i = 0; i < id->ntags; i++)
      pairs_set(&e->id_pairs, intern_sanitized(e, id->tags[2 * i]),
                intern_sanitized(e, id->tags[2 * i + 1]));
    e->id_name = intern_sanitized(e, id->name);
    e->last_id = id;
  }
  pairs_t p;
  memcpy(p.kv, e->id_pairs.kv, 2 * e->id_pairs.n * sizeof(uint32_t));
  p.n = e->id_pairs.n;
  p.overflow = e->id_pairs.overflow;
  if (rec->stat != SPECTATOR__STAT_NONE && rec->stat < SPECTATOR__STAT_COUNT_OF_NAMES)
    pairs_set(&p, e->k_stat, intern_statistic(e, rec->stat));
  if (rec->pct && (rec->pct & ~SPECTATOR__PCT_SUMMARY) <= SPECTATOR__PCT_LENGTH)
    pairs_set(&p, e->k_pct, intern_percentile(e, rec));
  pairs_set(&p, e->k_name, e->id_name);
  if (p.overflow) return false;
  /* Drop pairs that repeat a common tag exactly, and count the tag set. */
  uint32_t own = 0, kept_common = e->common.n;
  for (uint32_t i = 0; i < p.n; i++) {
    uint32_t k = p.kv[2 * i], v = p.kv[2 * i + 1];
    bool same = false;
    for (uint32_t c = 0; c < e->common.n; c++) {
      if (e->common.kv[2 * c] == k) {
        same = e->common.kv[2 * c + 1] == v;
        if (!same) kept_common--;
        break;
      }
    }
    if (same) continue;
    p.kv[2 * own] = k;
    p.kv[2 * own + 1] = v;
    own++;
  }
  if (own + kept_common > MAX_PAIRS) return false;
  sort_pairs(p.kv, own);
  row_add(e, p.kv, own, rec->op, rec->value);
  return true;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                   */
/* ------------------------------------------------------------------------ */

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

/* Per-batch scratch, sized once for every batch. */
typedef struct {
  uint32_t *stamp;    /* per string: the last batch that used it */
  uint32_t *local;    /* per string: its index in the batch's table */
  used_t *used;       /* the batch's strings */
  char (*digits)[12]; /* per local index: ",<index>" and its length in [11] */
} scratch_t;

static inline void mark(const encoder_t *e, scratch_t *s, uint32_t str, uint32_t batch,
                        size_t *nused) {
  if (s->stamp[str] == batch) return;
  s->stamp[str] = batch;
  s->used[(*nused)++] = (used_t){e->in.strs[str].s, e->in.strs[str].len, str};
}

/* ------------------------------------------------------------------------ */
/* Output: raw JSON, or gzip streamed through a window                        */
/* ------------------------------------------------------------------------ */

/* With gzip on, a batch's JSON is written into a window of this size and fed
 * to deflate whenever it fills, so the whole JSON of a batch never exists:
 * only its compressed form (a tenth of it, or less) grows. */
#define WINDOW (64 * 1024)
/* The most a datapoint's pairs, op and value take before the window must be
 * flushed: 2 * MAX_PAIRS indexes of up to 11 bytes (",<index>"), the pair
 * count, the op, the number, and 16 bytes of slack for 8-byte copies. */
#define ROW_BOUND (2 * MAX_PAIRS * 11 + 64 + MAX_NUMBER_LEN)
_Static_assert(ROW_BOUND < WINDOW, "a datapoint fits the window");

typedef struct {
  char *buf, *p, *end; /* raw: the whole batch; gzip: the window */
  z_stream *zs;        /* NULL: raw JSON */
  char *out;           /* gzip: the compressed batch so far */
  size_t out_cap;
  size_t flushed; /* gzip: JSON bytes already fed to deflate */
} sink_t;

/* A gzip (RFC 1952) stream at this level. zlib's deflateInit2 is a macro that
 * passes the version and stream size the caller was compiled with, so that
 * zlib can refuse an incompatible caller; its expansion is written out here
 * to call deflateInit2_ through ZLIB_FN. */
static int deflate_init(z_stream *zs, int level) {
  return ZLIB_FN(deflateInit2_)(zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                                (int)sizeof(z_stream));
}

/* Make room in the output: double it (the first size is a guess from the
 * input, see encode). */
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

static bool sink_flush(sink_t *s, int flush) {
  if (!s->zs) return false; /* a raw batch outgrew its counted size: cannot happen */
  size_t n = (size_t)(s->p - s->buf);
  s->flushed += n;
  s->p = s->buf;
  return deflate_feed(s->zs, s->buf, n, flush, &s->out, &s->out_cap);
}

/* Room for n <= WINDOW bytes at s->p. A raw batch's buffer has its exact size
 * (counted before writing), so only the window is ever flushed. */
static inline bool sink_reserve(sink_t *s, size_t n) {
  if (!s->zs || (size_t)(s->end - s->p) >= n) return true;
  return sink_flush(s, Z_NO_FLUSH);
}

static bool sink_put(sink_t *s, const char *src, size_t n) {
  while (n) {
    if (s->p == s->end && !sink_flush(s, Z_NO_FLUSH)) return false;
    size_t k = (size_t)(s->end - s->p) < n ? (size_t)(s->end - s->p) : n;
    memcpy(s->p, src, k);
    s->p += k;
    src += k;
    n -= k;
  }
  return true;
}

/* Write rows [from, to) as one batch, raw or through deflate (zs); false when
 * memory runs out. window: WINDOW bytes, used with zs. */
static bool write_batch(const encoder_t *e, scratch_t *s, size_t from, size_t to, uint32_t batch,
                        z_stream *zs, char *window, spectator__batch_t *out) {
  const pairs_t *common = &e->common;
  size_t nused = 0;
  for (size_t r = from; r < to; r++) {
    const row_t *row = row_at(e, r);
    for (uint32_t i = 0; i < 2 * (uint32_t)row->npairs; i++)
      mark(e, s, row->pairs[i], batch, &nused);
    for (uint32_t c = 0; c < common->n; c++) {
      if (overridden(row, common->kv[2 * c])) continue;
      mark(e, s, common->kv[2 * c], batch, &nused);
      mark(e, s, common->kv[2 * c + 1], batch, &nused);
    }
  }
  qsort(s->used, nused, sizeof(*s->used), cmp_used);

  /* Exact size, but for values that are not integers (counted at most). */
  size_t size = 2 + u64_len(nused);
  for (size_t i = 0; i < nused; i++) {
    s->local[s->used[i].idx] = (uint32_t)i;
    s->digits[i][0] = ',';
    s->digits[i][11] = (char)(1 + put_u64(s->digits[i] + 1, i));
    size += 3 + s->used[i].len;
  }
  for (size_t r = from; r < to; r++) {
    const row_t *row = row_at(e, r);
    uint32_t n = row->npairs;
    for (uint32_t i = 0; i < 2 * n; i++) size += (size_t)s->digits[s->local[row->pairs[i]]][11];
    for (uint32_t c = 0; c < common->n; c++) {
      if (overridden(row, common->kv[2 * c])) continue;
      n++;
      size += (size_t)s->digits[s->local[common->kv[2 * c]]][11] +
              (size_t)s->digits[s->local[common->kv[2 * c + 1]]][11];
    }
    size += 1 + u64_len(n) + 1 + u64_len(row->op) + 1 + number_len_bound(row->value);
  }

  sink_t k = {0};
  if (zs) {
    if (ZLIB_FN(deflateReset)(zs) != Z_OK) return false;
    k.buf = window;
    k.end = window + WINDOW;
    /* JSON of ids compresses to well under an eighth; grown if not. */
    k.out_cap = size / 8 + 1024;
    if (!(k.out = malloc(k.out_cap))) return false;
    zs->next_out = (Bytef *)k.out;
    zs->avail_out = (uInt)k.out_cap;
    k.zs = zs;
  } else {
    /* slack: digit entries are copied 8 bytes at a time */
    if (!(k.buf = malloc(size + 16))) return false;
    k.end = k.buf + size + 16;
  }
  k.p = k.buf;

  bool ok = sink_reserve(&k, 1 + 20);
  if (ok) {
    *k.p++ = '[';
    k.p += put_u64(k.p, nused);
  }
  for (size_t i = 0; ok && i < nused; i++) {
    if (!(ok = sink_reserve(&k, 2))) break;
    *k.p++ = ',';
    *k.p++ = '"';
    if (!(ok = sink_put(&k, s->used[i].s, s->used[i].len) && sink_reserve(&k, 1))) break;
    *k.p++ = '"';
  }
  uint32_t kv[2 * MAX_PAIRS];
  for (size_t r = from; ok && r < to; r++) {
    const row_t *row = row_at(e, r);
    /* The full tag set in local (= sorted string) order of the keys. */
    uint32_t n = 0;
    for (uint32_t i = 0; i < row->npairs; i++) {
      kv[2 * n] = s->local[row->pairs[2 * i]];
      kv[2 * n + 1] = s->local[row->pairs[2 * i + 1]];
      n++;
    }
    for (uint32_t c = 0; c < common->n; c++) {
      if (overridden(row, common->kv[2 * c])) continue;
      kv[2 * n] = s->local[common->kv[2 * c]];
      kv[2 * n + 1] = s->local[common->kv[2 * c + 1]];
      n++;
    }
    sort_pairs(kv, n);
    if (!(ok = sink_reserve(&k, ROW_BOUND))) break;
    char *p = k.p;
    *p++ = ',';
    p += put_u64(p, n);
    for (uint32_t i = 0; i < 2 * n; i++) {
      memcpy(p, s->digits[kv[i]], 8);
      size_t len = (size_t)s->digits[kv[i]][11];
      if (len > 8) memcpy(p + 8, s->digits[kv[i]] + 8, len - 8);
      p += len;
    }
    *p++ = ',';
    p += put_u64(p, row->op);
    *p++ = ',';
    p += put_number(p, row->value);
    k.p = p;
  }
  if (ok && (ok = sink_reserve(&k, 1))) *k.p++ = ']';
  if (zs) {
    ok = ok && sink_flush(&k, Z_FINISH);
    if (!ok) {
      free(k.out);
      return false;
    }
    out->len = zs->total_out;
    out->raw_len = k.flushed;
    char *trimmed = realloc(k.out, out->len ? out->len : 1);
    out->data = trimmed ? trimmed : k.out;
  } else {
    out->raw_len = out->len = (size_t)(k.p - k.buf);
    char *trimmed = realloc(k.buf, out->len);
    out->data = trimmed ? trimmed : k.buf;
  }
  out->count = to - from;
  return true;
}

void spectator__payload_free(spectator__payload_t *p) {
  for (size_t i = 0; p && i < p->len; i++) free(p->batches[i].data);
  if (p) {
    free(p->batches);
    memset(p, 0, sizeof(*p));
  }
}

int spectator__encode(spectator__records_t *rs, const char *const *common_tags, size_t batch_size,
                      int gzip_level, spectator__payload_t *out) {
  memset(out, 0, sizeof(*out));
  if (gzip_level != SPECTATOR__ENCODE_RAW && !spectator__dep_load(SPECTATOR__DEP_ZLIB)) {
    spectator__records_free(rs);
    return SPECTATOR__ENOLIB;
  }
  if (batch_size == 0) batch_size = 1;
  encoder_t e;
  memset(&e, 0, sizeof(e));
  memset(e.stat_idx, 0xff, sizeof(e.stat_idx));
  memset(e.pct_idx, 0xff, sizeof(e.pct_idx));
  scratch_t s = {0};
  z_stream zs, *zsp = NULL;
  char *window = NULL;
  int rc = SPECTATOR_ENOMEM;

  /* Common tags, sanitized and interned once. */
  for (size_t i = 0; common_tags && common_tags[i] && common_tags[i + 1]; i += 2)
    pairs_set(&e.common, intern_sanitized(&e, common_tags[i]),
              intern_sanitized(&e, common_tags[i + 1]));
  e.k_name = intern(&e.in, "name", 4);
  e.k_stat = intern(&e.in, "statistic", 9);
  e.k_pct = intern(&e.in, "percentile", 10);

  /* Datapoints: at most one per record, so the rows and the merge index are
   * sized once (index load factor at most 2/3). The index is allocated first:
   * it is freed first. Records are freed chunk by chunk as they are read. */
  size_t cap = 16;
  while (2 * cap < 3 * rs->len) cap *= 2;
  e.slots = calloc(cap, sizeof(*e.slots));
  e.nchunks = rs->len / ROW_CHUNK + 1;
  e.chunks = calloc(e.nchunks, sizeof(*e.chunks));
  e.mask = cap - 1;
  if (!e.chunks || !e.slots) goto done;
  while (rs->head && !e.in.failed && !e.failed) {
    const spectator__record_chunk_t *c = rs->head;
    for (size_t r = 0; r < c->len && !e.in.failed && !e.failed; r++)
      if (e.common.overflow || !add_record(&e, &c->items[r])) out->dropped++;
    spectator__records_pop_chunk(rs);
  }
  if (e.in.failed || e.failed) goto done;
  free(e.in.slots);
  e.in.slots = NULL;
  merge_rows(&e);
  free(e.slots);
  e.slots = NULL;

  /* Merged values that are not finite are never sent. */
  size_t live = 0;
  for (size_t r = 0; r < e.nrows; r++) {
    const row_t *row = row_at(&e, r);
    if (row->merged) continue;
    if (isfinite(row->value))
      *row_at(&e, live++) = *row;
    else
      out->dropped++;
  }
  e.nrows = live;
  for (size_t c = (live + ROW_CHUNK - 1) / ROW_CHUNK; c < e.nchunks; c++) {
    free(e.chunks[c]);
    e.chunks[c] = NULL;
  }

  size_t nbatches = (e.nrows + batch_size - 1) / batch_size;
  size_t nstr = e.in.n ? e.in.n : 1;
  out->batches = calloc(nbatches ? nbatches : 1, sizeof(*out->batches));
  s.stamp = calloc(nstr, sizeof(*s.stamp));
  s.local = malloc(nstr * sizeof(*s.local));
  s.used = malloc(nstr * sizeof(*s.used));
  s.digits = malloc(nstr * sizeof(*s.digits));
  if (!out->batches || !s.stamp || !s.local || !s.used || !s.digits) goto done;
  if (gzip_level != SPECTATOR__ENCODE_RAW && nbatches) {
    memset(&zs, 0, sizeof(zs));
    if (deflate_init(&zs, gzip_level) != Z_OK) goto done;
    zsp = &zs;
    if (!(window = malloc(WINDOW))) goto done;
  }
  for (size_t b = 0; b < nbatches; b++) {
    size_t from = b * batch_size, to = from + batch_size < e.nrows ? from + batch_size : e.nrows;
    spectator__batch_t *batch = &out->batches[out->len];
    if (!write_batch(&e, &s, from, to, (uint32_t)(b + 1), zsp, window, batch)) goto done;
    out->measurements += batch->count;
    out->raw_bytes += batch->raw_len;
    out->len++;
    /* What this batch was written from is not needed any more: the payload
     * grows while the rows shrink. */
    arena_release_before(&e.pairs, to < e.nrows ? row_at(&e, to)->pairs : NULL);
    for (size_t c = from / ROW_CHUNK; c < to / ROW_CHUNK || (to == e.nrows && c * ROW_CHUNK < to);
         c++) {
      free(e.chunks[c]);
      e.chunks[c] = NULL;
    }
  }
  rc = 0;
done:
  if (rc != 0) spectator__payload_free(out);
  spectator__records_free(rs);
  if (zsp) ZLIB_FN(deflateEnd)(zsp);
  free(window);
  free(s.stamp);
  free(s.local);
  free(s.used);
  free(s.digits);
  for (size_t c = 0; e.chunks && c < e.nchunks; c++) free(e.chunks[c]);
  free(e.chunks);
  free(e.slots);
  free(e.scratch);
  arena_free(&e.strings);
  arena_free(&e.pairs);
  interner_free(&e.in);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* gzip                                                                      */
/* ------------------------------------------------------------------------ */

int spectator__gzip(const char *in, size_t len, int level, char **out, size_t *out_len) {
  if (!spectator__dep_load(SPECTATOR__DEP_ZLIB)) return SPECTATOR__ENOLIB;
  z_stream zs;
  memset(&zs, 0, sizeof(zs));
  if (deflate_init(&zs, level) != Z_OK) return SPECTATOR_ENOMEM;
  size_t cap = len / 8 + 1024;
  char *buf = malloc(cap);
  bool ok = buf != NULL;
  zs.next_out = (Bytef *)buf;
  zs.avail_out = (uInt)cap;
  /* In pieces that fit zlib's 32-bit counts; the last one finishes. */
  while (ok) {
    size_t n = len < WINDOW * 1024 ? len : WINDOW * 1024;
    ok = deflate_feed(&zs, in, n, n == len ? Z_FINISH : Z_NO_FLUSH, &buf, &cap);
    in += n;
    len -= n;
    if (!len) break;
  }
  size_t total = zs.total_out;
  ZLIB_FN(deflateEnd)(&zs);
  if (!ok) {
    free(buf);
    return SPECTATOR_ENOMEM;
  }
  *out = buf;
  *out_len = total;
  return 0;
}
