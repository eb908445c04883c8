/*
 * fuzz_encoder: snapshot records -> Atlas payload (spectator__encode).
 *
 * Input (consumed in order; running out of bytes ends it):
 *   byte       batch size: 1..8, or 10000 when >= 0xf0
 *   byte       number of common tag pairs (0..3), then that many key, value strings
 *   records:   flags byte: bit 0 unused (a record's op follows its statistic),
 *              bits 1-2 statistic (none, count, max, totalTime), bit 3
 *              percentile tag (next byte is a timer bucket index),
 *              bits 4-6 number of tags, bit 7 value from one byte (a small whole
 *              number) instead of 8 bytes of double; then the name and the tags
 *   string:    length byte; with bit 7 set, one of a few fixed strings chosen to
 *              collide after sanitization, else (len & 31) bytes (cut at a 0 byte)
 *
 * Checks, for every input:
 * - spectator__encode() succeeds, every batch holds at most batch_size
 *   datapoints and is strict RFC 8259 JSON by the test aggregator's checker
 *   (agg_json_is_strict, an implementation independent of the encoder);
 * - decoded with cJSON, each batch is [N, N sorted unique strings, records]
 *   whose indexes are in range, every string is non-empty and only uses
 *   -._A-Za-z0-9^~, every record has a name;
 * - the datapoints over all batches are exactly the expected ones: the common
 *   tags, the id's tags, statistic, percentile and name, later keys winning,
 *   sanitized (spectator__sanitize, checked against a reference model that
 *   decodes UTF-8 and counts UTF-16 units, and for its contract), the op of
 *   the final statistic tag (add for count, totalAmount, totalTime,
 *   totalOfSquares, percentile; max otherwise), with the records of one batch
 *   of batch_size records that sanitize alike merged (adds summed in order
 *   saturating at +-DBL_MAX, maxes kept) and compared bit for bit; each batch
 *   of records is one body; NaN is never recorded, nothing non-finite is sent;
 * - the same records encoded with gzip give batches that inflate back to
 *   exactly the JSON batches.
 */
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <zlib.h>

#include "aggregator.h"
#include "encoder.h"
#include "sanitize.h"
#include "fuzz_util.h"

#define MAX_RECORDS 64
#define MAX_KV 32 /* common (3) + id (7) + statistic + percentile + name */

typedef struct {
  const uint8_t *p;
  size_t left;
} reader_t;

static bool rd_u8(reader_t *r, uint8_t *out) {
  if (!r->left) return false;
  *out = *r->p++;
  r->left--;
  return true;
}

static const char *const fixed[] = {"a b",    "a_b",         "a\xc3\xa9", "a_",
                                    "a\xff",  "name",        "statistic", "percentile",
                                    "nf.app", "count",       "x",         "\xe2\x82\xac",
                                    "_",      "a\x01",       "A",         "a\xf0\x9f\x98\x80",
                                    "a__",    "\xed\xa0\x80"};

/* A string owned by the caller's pool; NULL when the input ran out. */
static char *rd_str(reader_t *r, char **pool, size_t *npool) {
  uint8_t len;
  if (!rd_u8(r, &len)) return NULL;
  const char *src;
  size_t n;
  if (len & 0x80) {
    src = fixed[len % (sizeof(fixed) / sizeof(fixed[0]))];
    n = strlen(src);
  } else {
    n = len & 31;
    if (n > r->left) n = r->left;
    src = (const char *)r->p;
    r->p += n;
    r->left -= n;
  }
  char *s = malloc(n + 1);
  FUZZ_CHECK(s);
  memcpy(s, src, n);
  s[n] = '\0';
  pool[(*npool)++] = s;
  return s;
}

static bool allowed(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '^' || c == '~';
}

/* The reference model of sanitizing, written apart from sanitize.c: decode
 * UTF-8 into code points (overlong forms, surrogates and values above
 * U+10FFFF are not code points), then every character that is not allowed
 * becomes one '_' per UTF-16 unit (two above U+FFFF), every byte of what does
 * not decode one '_'. */
static void ref_sanitize(const char *in, char *out) {
  const unsigned char *s = (const unsigned char *)in;
  size_t o = 0;
  while (*s) {
    if (allowed(*s)) {
      out[o++] = (char)*s++;
      continue;
    }
    size_t len = *s < 0x80             ? 1
                 : (*s & 0xe0) == 0xc0 ? 2
                 : (*s & 0xf0) == 0xe0 ? 3
                 : (*s & 0xf8) == 0xf0 ? 4
                                       : 0;
    uint32_t cp = len == 2 ? *s & 0x1fu : len == 3 ? *s & 0x0fu : *s & 0x07u;
    bool ok = len >= 1;
    for (size_t i = 1; ok && i < len; i++) {
      ok = (s[i] & 0xc0) == 0x80; /* a NUL stops this before reading past it */
      cp = cp << 6 | (s[i] & 0x3fu);
    }
    if (ok && len > 1) {
      static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= least[len] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
    }
    if (!ok) len = 1;
    out[o++] = '_';
    if (ok && cp > 0xffff) out[o++] = '_';
    s += len;
  }
  out[o] = '\0';
}

/* spectator__sanitize: exactly the reference model, and its contract: only
 * allowed characters, allowed ones kept in order, never longer, idempotent.
 * Returns a malloc'd copy. */
static char *sanitize(const char *s) {
  size_t n = strlen(s);
  char *out = malloc(n + 1), *ref = malloc(2 * n + 1);
  FUZZ_CHECK(out && ref);
  size_t len = spectator__sanitize(s, out);
  ref_sanitize(s, ref);
  FUZZ_CHECK(strcmp(out, ref) == 0);
  free(ref);
  FUZZ_CHECK(len == strlen(out) && len <= n);
  FUZZ_CHECK((n == 0) == (len == 0));
  for (size_t i = 0; i < len; i++) FUZZ_CHECK(allowed((unsigned char)out[i]));
  size_t i = 0, j = 0;
  for (; s[i]; i++) {
    if (!allowed((unsigned char)s[i])) continue;
    while (out[j] && out[j] != s[i]) j++; /* allowed chars survive, in order */
    FUZZ_CHECK(out[j] == s[i]);
    j++;
  }
  char *again = malloc(len + 1);
  FUZZ_CHECK(again);
  FUZZ_CHECK(spectator__sanitize(out, again) == len && strcmp(again, out) == 0);
  free(again);
  return out;
}

typedef struct {
  char *k[MAX_KV], *v[MAX_KV];
  size_t n;
} kv_t;

static void kv_set(kv_t *m, const char *k, const char *v) {
  char *sk = sanitize(k), *sv = sanitize(v);
  for (size_t i = 0; i < m->n; i++) {
    if (strcmp(m->k[i], sk) == 0) {
      free(m->v[i]);
      m->v[i] = sv;
      free(sk);
      return;
    }
  }
  FUZZ_CHECK(m->n < MAX_KV);
  m->k[m->n] = sk;
  m->v[m->n] = sv;
  m->n++;
}

/* "k=v\1k=v\1" over the pairs sorted by key. */
static char *kv_key(char **k, char **v, size_t n) {
  size_t *order = malloc((n ? n : 1) * sizeof(size_t));
  FUZZ_CHECK(order);
  for (size_t i = 0; i < n; i++) order[i] = i;
  for (size_t i = 1; i < n; i++) /* insertion sort by key */
    for (size_t j = i; j > 0 && strcmp(k[order[j - 1]], k[order[j]]) > 0; j--) {
      size_t t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  size_t len = 1;
  for (size_t i = 0; i < n; i++) len += strlen(k[i]) + strlen(v[i]) + 2;
  char *out = malloc(len);
  FUZZ_CHECK(out);
  out[0] = '\0';
  char *p = out;
  for (size_t i = 0; i < n; i++) {
    size_t o = order[i];
    p += sprintf(p, "%s=%s\1", k[o], v[o]);
  }
  free(order);
  return out;
}

typedef struct {
  char *key;
  int op;
  double value;
  bool seen;
  size_t group; /* the batch of records it comes from */
} expect_t;

/* The op of a final statistic tag value, as every Spectator client has it. */
static int model_op(const char *statistic) {
  static const char *const adds[] = {"count", "totalAmount", "totalTime", "totalOfSquares",
                                     "percentile"};
  for (size_t i = 0; statistic && i < 5; i++)
    if (strcmp(statistic, adds[i]) == 0) return SPECTATOR_OP_ADD;
  return SPECTATOR_OP_MAX;
}

/* a + b, kept within the doubles. */
static double model_add(double a, double b) {
  double s = a + b;
  return isinf(s) ? (s > 0 ? DBL_MAX : -DBL_MAX) : s;
}

static int decode_int(const cJSON *j, double max) {
  FUZZ_CHECK(cJSON_IsNumber(j));
  double d = j->valuedouble;
  FUZZ_CHECK(d >= 0 && d <= max && d == floor(d));
  return (int)d;
}

static void check_inflates_to(const char *gz, size_t gz_len, const char *raw, size_t raw_len) {
  char *back = malloc(raw_len + 1);
  FUZZ_CHECK(back);
  z_stream zs;
  memset(&zs, 0, sizeof(zs));
  FUZZ_CHECK(inflateInit2(&zs, 15 + 16) == Z_OK);
  zs.next_in = (Bytef *)gz;
  zs.avail_in = (uInt)gz_len;
  zs.next_out = (Bytef *)back;
  zs.avail_out = (uInt)(raw_len + 1);
  FUZZ_CHECK(inflate(&zs, Z_FINISH) == Z_STREAM_END);
  FUZZ_CHECK(zs.avail_in == 0);
  FUZZ_CHECK(zs.total_out == raw_len && memcmp(back, raw, raw_len) == 0);
  inflateEnd(&zs);
  free(back);
}

/* The batch as the publisher sends it (compressed while written) inflates to
 * its JSON. */
static void check_gzip(const spectator__batch_t *raw, const spectator__batch_t *streamed) {
  FUZZ_CHECK(streamed->count == raw->count && streamed->raw_len == raw->len);
  check_inflates_to(streamed->data, streamed->len, raw->data, raw->len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) {
    fuzz_init_logging();
    init = 1;
  }
  reader_t r = {data, size};
  char *pool[2 * (MAX_RECORDS * 16 + 8)];
  size_t npool = 0;
  uint8_t b;
  if (!rd_u8(&r, &b)) return 0;
  size_t batch_size = b >= 0xf0 ? 10000 : (size_t)(b % 8) + 1;

  const char *common[2 * 3 + 1] = {NULL};
  size_t ncommon = 0;
  if (rd_u8(&r, &b)) {
    size_t want = b % 4;
    for (size_t i = 0; i < want; i++) {
      char *k = rd_str(&r, pool, &npool), *v = rd_str(&r, pool, &npool);
      if (!k || !v) break;
      if (!k[0] || !v[0]) continue; /* the registry never passes empty common tags */
      common[2 * ncommon] = k;
      common[2 * ncommon + 1] = v;
      ncommon++;
    }
  }

  static const spectator__stat_t stats[] = {SPECTATOR__STAT_NONE, SPECTATOR__STAT_COUNT,
                                            SPECTATOR__STAT_MAX, SPECTATOR__STAT_TOTAL_TIME};
  /* Records borrow their ids: kept until the end. */
  spectator_id_t *ids[MAX_RECORDS];
  size_t nids = 0;
  spectator__records_t rs;
  spectator__records_init(&rs);
  for (size_t rec = 0; rec < MAX_RECORDS; rec++) {
    uint8_t flags;
    if (!rd_u8(&r, &flags)) break;
    spectator__stat_t stat = stats[(flags >> 1) & 3];
    unsigned pct = 0;
    if (flags & 8) {
      uint8_t idx = 0;
      rd_u8(&r, &idx);
      pct = idx + 1u; /* a timer's bucket */
    }
    size_t ntags = (flags >> 4) & 7;
    double value;
    if (flags & 0x80) {
      uint8_t v = 0;
      rd_u8(&r, &v);
      value = v;
    } else {
      uint64_t bits = 0;
      for (int i = 0; i < 8; i++) {
        uint8_t x = 0;
        rd_u8(&r, &x);
        bits = bits << 8 | x;
      }
      memcpy(&value, &bits, sizeof(value));
    }
    const char *tags[2 * 7 + 1] = {NULL};
    const char *name = rd_str(&r, pool, &npool);
    if (!name) break;
    for (size_t i = 0; i < 2 * ntags; i++)
      if (!(tags[i] = rd_str(&r, pool, &npool))) break;
    spectator_id_t *id = spectator_id_new(name, ntags ? tags : NULL);
    if (!id) continue; /* bad ids never reach a snapshot */
    ids[nids++] = id;
    size_t before = rs.len;
    spectator__records_add(&rs, id, stat, pct, value);
    /* NaN is dropped; everything else is recorded, within the doubles */
    FUZZ_CHECK(rs.len == before + (isnan(value) ? 0 : 1));
    if (rs.len > before) {
      const spectator__record_t *last = &rs.tail->items[rs.tail->len - 1];
      FUZZ_CHECK(last->value == (isinf(value) ? (value > 0 ? DBL_MAX : -DBL_MAX) : value));
      FUZZ_CHECK(last->op ==
                 model_op(stat ? spectator__stat_names[stat] : spectator_id_tag(id, "statistic")));
    }
  }
  FUZZ_CHECK(rs.lost == 0);

  /* Expected datapoints, merged. */
  expect_t *exp = calloc(rs.len + 1, sizeof(*exp));
  FUZZ_CHECK(exp);
  size_t nexp = 0, nrecords = 0;
  spectator__records_t copy; /* encoded a second time, with gzip */
  spectator__records_init(&copy);
  SPECTATOR__RECORDS_FOREACH(&rs, rec) {
    size_t group = nrecords++ / batch_size;
    spectator__records_add(&copy, rec->id, rec->stat, rec->pct, rec->value);
    FUZZ_CHECK(isfinite(rec->value));
    kv_t m = {.n = 0};
    for (size_t c = 0; c < ncommon; c++) kv_set(&m, common[2 * c], common[2 * c + 1]);
    for (size_t t = 0; t < spectator_id_tag_count(rec->id); t++)
      kv_set(&m, spectator_id_tag_key(rec->id, t), spectator_id_tag_value(rec->id, t));
    char pct[6];
    if (rec->stat) kv_set(&m, "statistic", spectator__stat_names[rec->stat]);
    if (spectator__record_pct_tag(rec, pct)) kv_set(&m, "percentile", pct);
    kv_set(&m, "name", spectator_id_name(rec->id));
    char *key = kv_key(m.k, m.v, m.n);
    for (size_t j = 0; j < m.n; j++) {
      free(m.k[j]);
      free(m.v[j]);
    }
    size_t e = 0;
    while (e < nexp &&
           !(exp[e].group == group && exp[e].op == rec->op && strcmp(exp[e].key, key) == 0))
      e++;
    if (e == nexp) {
      exp[nexp++] = (expect_t){key, rec->op, rec->value, false, group};
    } else {
      free(key);
      if (rec->op == SPECTATOR_OP_MAX)
        exp[e].value = rec->value > exp[e].value ? rec->value : exp[e].value;
      else
        exp[e].value = model_add(exp[e].value, rec->value);
    }
  }
  size_t nfinite = 0;
  for (size_t e = 0; e < nexp; e++) nfinite += isfinite(exp[e].value) ? 1 : 0;
  /* The groups that send something, in order: one body each. */
  size_t ngroups = (nrecords + batch_size - 1) / batch_size, nbodies = 0;
  size_t *body_group = calloc(ngroups + 1, sizeof(*body_group));
  FUZZ_CHECK(body_group);
  for (size_t g = 0; g < ngroups; g++) {
    bool sends = false;
    for (size_t e = 0; e < nexp && !sends; e++) sends = exp[e].group == g && isfinite(exp[e].value);
    if (sends) body_group[nbodies++] = g;
  }

  spectator__payload_t pl;
  FUZZ_CHECK(
      spectator__encode(&rs, ncommon ? common : NULL, batch_size, SPECTATOR__ENCODE_RAW, &pl) == 0);
  FUZZ_CHECK(rs.len == 0 && !rs.head);
  spectator__payload_t gz;
  FUZZ_CHECK(spectator__encode(&copy, ncommon ? common : NULL, batch_size, 1, &gz) == 0);
  FUZZ_CHECK(gz.len == pl.len && gz.measurements == pl.measurements &&
             gz.raw_bytes == pl.raw_bytes && gz.dropped == pl.dropped);
  FUZZ_CHECK(pl.len == nbodies);
  size_t total = 0;
  for (size_t bi = 0; bi < pl.len; bi++) {
    const spectator__batch_t *batch = &pl.batches[bi];
    if (!agg_json_is_strict(batch->data, batch->len)) {
      fprintf(stderr, "not strict JSON: %.*s\n", (int)(batch->len < 2000 ? batch->len : 2000),
              batch->data);
      FUZZ_CHECK(!"batch is strict JSON");
    }
    FUZZ_CHECK(batch->count >= 1 && batch->count <= batch_size);
    check_gzip(batch, &gz.batches[bi]);
    cJSON *root = cJSON_ParseWithLength(batch->data, batch->len);
    FUZZ_CHECK(root && cJSON_IsArray(root));
    int len = cJSON_GetArraySize(root);
    const cJSON *it = root->child;
    int nstr = decode_int(it, len - 1);
    it = it->next;
    const char **table = calloc((size_t)nstr + 1, sizeof(char *));
    FUZZ_CHECK(table);
    for (int s = 0; s < nstr; s++, it = it->next) {
      FUZZ_CHECK(cJSON_IsString(it) && it->valuestring[0]);
      for (const char *c = it->valuestring; *c; c++) FUZZ_CHECK(allowed((unsigned char)*c));
      table[s] = it->valuestring;
      if (s) FUZZ_CHECK(strcmp(table[s - 1], table[s]) < 0);
    }
    size_t nrec = 0;
    while (it) {
      int t = decode_int(it, MAX_KV);
      FUZZ_CHECK(t >= 1);
      it = it->next;
      char *k[MAX_KV], *v[MAX_KV];
      bool has_name = false;
      for (int p = 0; p < t; p++) {
        FUZZ_CHECK(it && it->next);
        k[p] = (char *)table[decode_int(it, nstr - 1)];
        v[p] = (char *)table[decode_int(it->next, nstr - 1)];
        for (int q = 0; q < p; q++) FUZZ_CHECK(strcmp(k[q], k[p]) != 0);
        has_name = has_name || strcmp(k[p], "name") == 0;
        it = it->next->next;
      }
      FUZZ_CHECK(has_name);
      FUZZ_CHECK(it && it->next);
      int op = decode_int(it, 10);
      FUZZ_CHECK(op == SPECTATOR_OP_ADD || op == SPECTATOR_OP_MAX);
      FUZZ_CHECK(cJSON_IsNumber(it->next) && isfinite(it->next->valuedouble));
      double value = it->next->valuedouble;
      it = it->next->next;
      char *key = kv_key(k, v, (size_t)t);
      size_t e = 0;
      while (e < nexp &&
             !(exp[e].group == body_group[bi] && exp[e].op == op && strcmp(exp[e].key, key) == 0))
        e++;
      if (e == nexp) fprintf(stderr, "unexpected datapoint %s op %d\n", key, op);
      FUZZ_CHECK(e < nexp && !exp[e].seen);
      exp[e].seen = true;
      if (memcmp(&exp[e].value, &value, sizeof(value)) != 0 && !(exp[e].value == 0 && value == 0))
        fprintf(stderr, "datapoint %s: expected %.17g, got %.17g\n", key, exp[e].value, value);
      FUZZ_CHECK(exp[e].value == value);
      free(key);
      nrec++;
    }
    FUZZ_CHECK(nrec == batch->count);
    total += nrec;
    free(table);
    cJSON_Delete(root);
  }
  /* every datapoint is sent: values stay within the doubles */
  FUZZ_CHECK(nfinite == nexp && pl.dropped == 0);
  FUZZ_CHECK(total == nfinite && pl.measurements == nfinite);
  for (size_t e = 0; e < nexp; e++) FUZZ_CHECK(exp[e].seen == isfinite(exp[e].value));

  spectator__payload_free(&pl);
  spectator__payload_free(&gz);
  free(body_group);
  for (size_t e = 0; e < nexp; e++) free(exp[e].key);
  free(exp);
  spectator__records_free(&rs);
  for (size_t i = 0; i < nids; i++) spectator_id_free(ids[i]);
  for (size_t i = 0; i < npool; i++) free(pool[i]);
  return 0;
}
