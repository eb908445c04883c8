/*
 * Encoder: snapshot records -> request bodies for the Atlas aggregator's
 * /api/v4/update.
 *
 * DESIGN
 * A publish turns every record into a datapoint: the common tags, then the
 * id's tags, then the statistic (and percentile) tag, then ("name", name),
 * later keys overriding earlier ones; every key and value sanitized to
 * `-._A-Za-z0-9^~` (anything else becomes `_`). Sanitizing can make two ids
 * equal, so datapoints are merged by their sanitized tag set (adds summed in
 * record order, saturating at +-DBL_MAX, maxes kept) before they are cut into
 * batches of at most batch_size. A value that is not finite (records never
 * hold one) is dropped and counted.
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
 *   needs escaping). Numbers are the shortest text that reads back to the
 *   same double (numfmt.h): strict RFC 8259 JSON.
 * - With gzip (the publisher's case) the JSON goes through a 64 KiB window
 *   into deflate while it is written (sink.h), so a batch's uncompressed JSON never
 *   exists whole; the compressed output starts at an eighth of the JSON's
 *   size (counted exactly before writing, non-integer values at their
 *   longest) and grows only if needed. Without gzip the JSON is written into
 *   one buffer of that size, trimmed at the end.
 *
 * zlib is called through deps.h's ZLIB_FN(): unless the library is linked
 * to it, it is loaded when compression is first asked for (deps.c). A
 * publisher's start has loaded it already; direct callers (tests, benchmarks,
 * fuzzing) get SPECTATOR_ENOLIB when it cannot be loaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "deps.h"
#include "encoder.h"
#include "hash.h"
#include "id.h"
#include "log.h"
#include "numfmt.h"
#include "pairs.h"
#include "percentile_buckets.h"
#include "sanitize.h"
#include "sink.h"
#include "strtab.h"

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

static inline int cmp_u32(uint32_t a, uint32_t b) { return (a > b) - (a < b); }

/* Sort n (key, value) pairs by key (keys are unique here). */
static inline void sort_pairs(uint32_t *kv, uint32_t n) {
  SPECTATOR__SORT_PAIRS(kv, n, uint32_t, cmp_u32, (void)0);
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
  uint64_t h = SPECTATOR__HASH_K1 ^ (uint64_t)op;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t kv;
    memcpy(&kv, &pairs[2 * i], 8);
    h = spectator__hash_fold(h ^ kv, 0xff51afd7ed558ccdULL);
  }
  return (uint32_t)(h ^ (h >> 32));
}

/* Rows live in chunks, so that those already written can be freed. */
#define ROW_CHUNK 1024

typedef struct {
  spectator__arena_t strings; /* sanitized strings */
  spectator__arena_t pairs;   /* rows' pairs, in row order */
  spectator__strtab_t in;
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

static inline uint32_t intern(encoder_t *e, const char *s, size_t len) {
  return spectator__strtab_intern(&e->in, s, len, NULL);
}

/* Intern the sanitized form of s (s itself when it is already clean). */
static uint32_t intern_sanitized(encoder_t *e, const char *s) {
  size_t i = 0;
  while (spectator__char_allowed((unsigned char)s[i])) i++;
  if (!s[i]) return intern(e, s, i);
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
  return spectator__strtab_intern(&e->in, e->scratch, spectator__sanitize(s, e->scratch),
                                  &e->strings);
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
    *slot = spectator__strtab_intern(&e->in, tag, strlen(tag), &e->strings);
  }
  return *slot;
}

static inline row_t *row_at(const encoder_t *e, size_t i) {
  return &e->chunks[i / ROW_CHUNK][i % ROW_CHUNK];
}

/* Append a datapoint (merged with equal ones later, by merge_rows). */
static void row_add(encoder_t *e, const uint32_t *pairs, uint32_t npairs, int op, double value) {
  uint32_t *copy = spectator__arena_alloc(&e->pairs, 2 * npairs * sizeof(*copy));
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

/* a + b, or +-DBL_MAX when the sum leaves the doubles (two huge adds of ids
 * that sanitize alike): the value stays as large as it can be sent in strict
 * JSON, instead of the datapoint being lost. Logged at debug. */
static double add_saturating(double a, double b) {
  double sum = a + b;
  if (SPECTATOR__LIKELY(spectator__finite(sum))) return sum;
  if (spectator__log_enabled(SPECTATOR_LOG_DEBUG))
    spectator__log(SPECTATOR_LOG_DEBUG, SPECTATOR_LOGGER_REGISTRY,
                   "merging two datapoints overflowed the doubles: sent as the largest finite "
                   "double");
  return sum > 0 ? DBL_MAX : -DBL_MAX;
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
          first->value = add_saturating(first->value, row->value);
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

/* The most a datapoint's pairs, op and value take before the window must be
 * flushed: 2 * MAX_PAIRS indexes of up to 11 bytes (",<index>"), the pair
 * count, the op, the number, and 16 bytes of slack for 8-byte copies. */
#define ROW_BOUND (2 * MAX_PAIRS * 11 + 64 + SPECTATOR__MAX_NUMBER_LEN)
_Static_assert(ROW_BOUND < SPECTATOR__SINK_WINDOW, "a datapoint fits the window");

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
  size_t nused;
} scratch_t;

static inline void mark(const encoder_t *e, scratch_t *s, uint32_t str, uint32_t batch) {
  if (s->stamp[str] == batch) return;
  s->stamp[str] = batch;
  s->used[s->nused++] = (used_t){e->in.strs[str].s, e->in.strs[str].len, str};
}

/* The sorted string table of rows [from, to): every string they use once,
 * with its local index and the ",<index>" text written for it. */
static void batch_strings(const encoder_t *e, scratch_t *s, size_t from, size_t to,
                          uint32_t batch) {
  const pairs_t *common = &e->common;
  s->nused = 0;
  for (size_t r = from; r < to; r++) {
    const row_t *row = row_at(e, r);
    for (uint32_t i = 0; i < 2 * (uint32_t)row->npairs; i++) mark(e, s, row->pairs[i], batch);
    for (uint32_t c = 0; c < common->n; c++) {
      if (overridden(row, common->kv[2 * c])) continue;
      mark(e, s, common->kv[2 * c], batch);
      mark(e, s, common->kv[2 * c + 1], batch);
    }
  }
  qsort(s->used, s->nused, sizeof(*s->used), cmp_used);
  for (size_t i = 0; i < s->nused; i++) {
    s->local[s->used[i].idx] = (uint32_t)i;
    s->digits[i][0] = ',';
    s->digits[i][11] = (char)(1 + spectator__put_u64(s->digits[i] + 1, i));
  }
}

/* The JSON size of rows [from, to): exact but for values that are not whole
 * numbers (counted at most). */
static size_t batch_size(const encoder_t *e, const scratch_t *s, size_t from, size_t to) {
  const pairs_t *common = &e->common;
  size_t size = 2 + spectator__u64_len(s->nused);
  for (size_t i = 0; i < s->nused; i++) size += 3 + s->used[i].len;
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
    size += 1 + spectator__u64_len(n) + 1 + spectator__u64_len(row->op) + 1 +
            spectator__number_len_bound(row->value);
  }
  return size;
}

/* `[N,"s0",...,"sN-1"` */
static bool write_table(spectator__sink_t *k, const scratch_t *s) {
  if (!spectator__sink_reserve(k, 1 + 20)) return false;
  *k->p++ = '[';
  k->p += spectator__put_u64(k->p, s->nused);
  for (size_t i = 0; i < s->nused; i++) {
    if (!spectator__sink_reserve(k, 2)) return false;
    *k->p++ = ',';
    *k->p++ = '"';
    if (!spectator__sink_put(k, s->used[i].s, s->used[i].len) || !spectator__sink_reserve(k, 1))
      return false;
    *k->p++ = '"';
  }
  return true;
}

/* `,T,k1,v1,...,kT,vT,op,value`: the full tag set in local (= sorted string)
 * order of the keys. */
/* At debug: one line per datapoint as it is sent, common tags and
 * sanitizing applied (kv: n sorted pairs of local string indexes). */
static void log_row(const scratch_t *s, const uint32_t *kv, uint32_t n, const row_t *row) {
  char line[1024];
  size_t o = 0;
  for (uint32_t i = 0; i < n && o < sizeof(line) - 1; i++) {
    const used_t *k = &s->used[kv[2 * i]], *v = &s->used[kv[2 * i + 1]];
    int w = snprintf(line + o, sizeof(line) - o, "%s%.*s=%.*s", i ? "," : "", (int)k->len, k->s,
                     (int)v->len, v->s);
    if (w < 0) break;
    o += (size_t)w < sizeof(line) - o ? (size_t)w : sizeof(line) - o - 1;
  }
  line[o] = '\0';
  char num[SPECTATOR__MAX_NUMBER_LEN + 1];
  num[spectator__put_number(num, row->value)] = '\0';
  spectator__log(SPECTATOR_LOG_DEBUG, SPECTATOR_LOGGER_REGISTRY, "sending {%s} op %d value %s",
                 line, row->op, num);
}

static bool write_row(spectator__sink_t *k, const encoder_t *e, const scratch_t *s,
                      const row_t *row, bool debug) {
  const pairs_t *common = &e->common;
  uint32_t kv[2 * MAX_PAIRS];
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
  if (debug) log_row(s, kv, n, row);
  if (!spectator__sink_reserve(k, ROW_BOUND)) return false;
  char *p = k->p;
  *p++ = ',';
  p += spectator__put_u64(p, n);
  for (uint32_t i = 0; i < 2 * n; i++) {
    memcpy(p, s->digits[kv[i]], 8);
    size_t len = (size_t)s->digits[kv[i]][11];
    if (len > 8) memcpy(p + 8, s->digits[kv[i]] + 8, len - 8);
    p += len;
  }
  *p++ = ',';
  p += spectator__put_u64(p, row->op);
  *p++ = ',';
  p += spectator__put_number(p, row->value);
  k->p = p;
  return true;
}

/* Write rows [from, to) as one batch, raw or through deflate (zs); false when
 * memory runs out. window: SPECTATOR__SINK_WINDOW bytes, used with zs. */
static bool write_batch(const encoder_t *e, scratch_t *s, size_t from, size_t to, uint32_t batch,
                        z_stream *zs, char *window, spectator__batch_t *out) {
  batch_strings(e, s, from, to, batch);
  spectator__sink_t k;
  if (!spectator__sink_open(&k, zs, window, batch_size(e, s, from, to))) return false;
  bool ok = write_table(&k, s);
  bool debug = spectator__log_enabled(SPECTATOR_LOG_DEBUG);
  for (size_t r = from; ok && r < to; r++) ok = write_row(&k, e, s, row_at(e, r), debug);
  if (ok && (ok = spectator__sink_reserve(&k, 1))) *k.p++ = ']';
  if (!spectator__sink_close(&k, ok, &out->data, &out->len, &out->raw_len)) return false;
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

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */
/* ------------------------------------------------------------------------ */

/* Datapoints of every record, merged: at most one per record, so the rows and
 * the merge index are sized once (index load factor at most 2/3). The index
 * is allocated first: it is freed first. Records are freed chunk by chunk as
 * they are read. Records that cannot be encoded count in *dropped. */
static bool build_rows(encoder_t *e, spectator__records_t *rs, size_t *dropped) {
  size_t cap = 16;
  while (2 * cap < 3 * rs->len) cap *= 2;
  e->slots = calloc(cap, sizeof(*e->slots));
  e->nchunks = rs->len / ROW_CHUNK + 1;
  e->chunks = calloc(e->nchunks, sizeof(*e->chunks));
  e->mask = cap - 1;
  if (!e->chunks || !e->slots) return false;
  while (rs->head && !e->in.failed && !e->failed) {
    const spectator__record_chunk_t *c = rs->head;
    for (size_t r = 0; r < c->len && !e->in.failed && !e->failed; r++)
      if (e->common.overflow || !add_record(e, &c->items[r])) (*dropped)++;
    spectator__records_pop_chunk(rs);
  }
  if (e->in.failed || e->failed) return false;
  spectator__strtab_drop_index(&e->in);
  merge_rows(e);
  free(e->slots);
  e->slots = NULL;
  return true;
}

/* Keep the rows that were not merged into another and whose value is finite
 * (merged values that are not are never sent: counted in *dropped). */
static void compact_rows(encoder_t *e, size_t *dropped) {
  size_t live = 0;
  for (size_t r = 0; r < e->nrows; r++) {
    const row_t *row = row_at(e, r);
    if (row->merged) continue;
    if (spectator__finite(row->value))
      *row_at(e, live++) = *row;
    else
      (*dropped)++;
  }
  e->nrows = live;
  for (size_t c = (live + ROW_CHUNK - 1) / ROW_CHUNK; c < e->nchunks; c++) {
    free(e->chunks[c]);
    e->chunks[c] = NULL;
  }
}

/* An encoder for one publish: what outlives a batch. */
struct spectator__encoder {
  encoder_t e; /* the batch being built; reset for each */
  const char *const *common_tags;
  z_stream zs, *zsp; /* zsp NULL: raw JSON */
  char *window;
  scratch_t s;
  size_t scratch_strings; /* strings the scratch arrays hold room for */
  uint32_t batch;         /* batches written: the stamp of the current one */
};

/* Forget the last batch's rows and strings; keep the scratch buffer. */
static void reset_batch(encoder_t *e) {
  for (size_t c = 0; e->chunks && c < e->nchunks; c++) free(e->chunks[c]);
  free(e->chunks);
  free(e->slots);
  spectator__arena_free(&e->strings);
  spectator__arena_free(&e->pairs);
  spectator__strtab_free(&e->in);
  char *scratch = e->scratch;
  size_t scratch_cap = e->scratch_cap;
  memset(e, 0, sizeof(*e));
  e->scratch = scratch;
  e->scratch_cap = scratch_cap;
  memset(e->stat_idx, 0xff, sizeof(e->stat_idx));
  memset(e->pct_idx, 0xff, sizeof(e->pct_idx));
}

/* A new batch: the common tags and the keys every datapoint has, sanitized
 * and interned first. */
static void start_batch(spectator__encoder_t *enc) {
  encoder_t *e = &enc->e;
  reset_batch(e);
  const char *const *common = enc->common_tags;
  for (size_t i = 0; common && common[i] && common[i + 1]; i += 2)
    pairs_set(&e->common, intern_sanitized(e, common[i]), intern_sanitized(e, common[i + 1]));
  e->k_name = intern(e, "name", 4);
  e->k_stat = intern(e, "statistic", 9);
  e->k_pct = intern(e, "percentile", 10);
}

/* Room in the scratch arrays for every string of the batch. */
static bool scratch_reserve(spectator__encoder_t *enc, size_t nstr) {
  if (nstr <= enc->scratch_strings) return true;
  size_t cap = nstr < 1024 ? 1024 : nstr;
  scratch_t *s = &enc->s;
  free(s->stamp);
  free(s->local);
  free(s->used);
  free(s->digits);
  s->stamp = calloc(cap, sizeof(*s->stamp));
  s->local = malloc(cap * sizeof(*s->local));
  s->used = malloc(cap * sizeof(*s->used));
  s->digits = malloc(cap * sizeof(*s->digits));
  enc->scratch_strings = s->stamp && s->local && s->used && s->digits ? cap : 0;
  enc->batch = 0; /* fresh stamps */
  return enc->scratch_strings != 0;
}

int spectator__encoder_new(const char *const *common_tags, int gzip_level,
                           spectator__encoder_t **out) {
  *out = NULL;
  if (gzip_level != SPECTATOR__ENCODE_RAW && spectator__dep_load(SPECTATOR__DEP_ZLIB) != 0)
    return SPECTATOR_ENOLIB;
  spectator__encoder_t *enc = calloc(1, sizeof(*enc));
  if (!enc) return SPECTATOR_ENOMEM;
  enc->common_tags = common_tags;
  reset_batch(&enc->e);
  if (gzip_level != SPECTATOR__ENCODE_RAW) {
    enc->window = malloc(SPECTATOR__SINK_WINDOW);
    if (!enc->window || spectator__deflate_init(&enc->zs, gzip_level) != Z_OK) {
      free(enc->window);
      free(enc);
      return SPECTATOR_ENOMEM;
    }
    enc->zsp = &enc->zs;
  }
  *out = enc;
  return 0;
}

void spectator__encoder_free(spectator__encoder_t *enc) {
  if (!enc) return;
  reset_batch(&enc->e);
  free(enc->e.scratch);
  if (enc->zsp) ZLIB_FN(deflateEnd)(enc->zsp);
  free(enc->window);
  free(enc->s.stamp);
  free(enc->s.local);
  free(enc->s.used);
  free(enc->s.digits);
  free(enc);
}

int spectator__encoder_batch(spectator__encoder_t *enc, spectator__records_t *rs,
                             spectator__batch_t *out, size_t *dropped) {
  memset(out, 0, sizeof(*out));
  encoder_t *e = &enc->e;
  start_batch(enc);
  int rc = SPECTATOR_ENOMEM;
  if (build_rows(e, rs, dropped)) {
    compact_rows(e, dropped);
    if (e->nrows == 0) {
      rc = 0;
    } else if (scratch_reserve(enc, e->in.n)) {
      if (++enc->batch == 0) { /* stamps wrapped: start them over */
        memset(enc->s.stamp, 0, enc->scratch_strings * sizeof(*enc->s.stamp));
        enc->batch = 1;
      }
      if (write_batch(e, &enc->s, 0, e->nrows, enc->batch, enc->zsp, enc->window, out)) rc = 0;
    }
  }
  spectator__records_free(rs);
  reset_batch(e); /* nothing of the batch outlives it but its body */
  return rc;
}

int spectator__encode(spectator__records_t *rs, const char *const *common_tags, size_t batch_size,
                      int gzip_level, spectator__payload_t *out) {
  memset(out, 0, sizeof(*out));
  if (batch_size == 0) batch_size = 1;
  spectator__encoder_t *enc;
  int rc = spectator__encoder_new(common_tags, gzip_level, &enc);
  size_t nbatches = (rs->len + batch_size - 1) / batch_size;
  if (rc == 0 && !(out->batches = calloc(nbatches ? nbatches : 1, sizeof(*out->batches))))
    rc = SPECTATOR_ENOMEM;
  while (rc == 0 && rs->len) {
    spectator__records_t rest;
    spectator__records_init(&rest);
    spectator__records_split(rs, batch_size, &rest);
    spectator__batch_t *b = &out->batches[out->len];
    rc = spectator__encoder_batch(enc, rs, b, &out->dropped);
    *rs = rest;
    if (rc == 0 && b->count) {
      out->measurements += b->count;
      out->raw_bytes += b->raw_len;
      out->len++;
    }
  }
  if (rc != 0) spectator__payload_free(out);
  spectator__records_free(rs);
  spectator__encoder_free(enc);
  return rc;
}
