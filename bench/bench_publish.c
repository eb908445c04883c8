/*
 * One publish cycle without the network, as the publisher
 * runs it (src/publisher.c publish()): snapshot (spectator__registry_collect),
 * then encode with gzip (spectator__encode compresses each batch while it
 * writes it, and frees the records as it reads them).
 *
 * Two registries:
 *   10k counters   100 names x 100 `endpoint` values, status=2xx, 3 common
 *                  tags: one batch of 10,000 datapoints
 *   100k mixed     counters, timers, distribution summaries, gauges, max
 *                  gauges and percentile timers giving 100,000 measurements
 *                  (10 batches of 10,000)
 *
 * For each: wall time per phase (median over rounds; the meters are recorded
 * on again, untimed, before each round), the peak of extra heap during a
 * whole cycle at the chosen gzip level (counting allocator: everything the
 * process allocates, zlib's state included), bytes raw and gzipped; the
 * encoder without gzip and with gzip at levels 1, 3, 6 and 9; and a cJSON
 * baseline that builds the same payload as a cJSON DOM and prints it with
 * cJSON_PrintUnformatted (checked byte for byte against the direct encoder's
 * output).
 */
#include <cjson/cJSON.h>
#include <math.h>

#include "bench.h"
#include "encoder.h"
#include "publisher.h"
#include "id.h"
#include "records.h"
#include "registry.h"
#include "sanitize.h"
#ifdef BENCH_ALLOC_COUNT
#include "alloc_count.h"
#endif

/* The level src/publisher.c uses (GZIP_LEVEL). */
#ifndef PUBLISH_GZIP_LEVEL
#define PUBLISH_GZIP_LEVEL 1
#endif

static const char *const common_tags[] = {
    "nf.app", "myservice", "nf.cluster", "myservice-main-v042", "nf.region", "us-east-1", NULL};

static spectator_registry_t *new_registry(void) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  cfg.common_tags = common_tags;
  cfg.max_meters = 1000000;
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  if (!reg) abort();
  return reg;
}

/* ------------------------------------------------------------------------ */
/* Workloads                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct {
  const char *name;
  spectator_registry_t *reg;
  size_t ncounters, ntimers, nsummaries, ngauges, nmax, npct;
  spectator_counter_t **counters;
  spectator_timer_t **timers;
  spectator_dist_summary_t **summaries;
  spectator_gauge_t **gauges;
  spectator_max_gauge_t **maxes;
  spectator_percentile_timer_t **pcts;
} workload_t;

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) abort();
  return p;
}

static void workload_10k(workload_t *w) {
  memset(w, 0, sizeof(*w));
  w->name = "10k counters";
  w->reg = new_registry();
  w->ncounters = 10000;
  w->counters = xcalloc(w->ncounters, sizeof(*w->counters));
  char name[64], ep[64];
  for (int i = 0; i < 100; i++) {
    snprintf(name, sizeof(name), "myservice.requests.handler%02d", i);
    for (int j = 0; j < 100; j++) {
      snprintf(ep, sizeof(ep), "/api/v1/resource%02d/items", j);
      w->counters[i * 100 + j] =
          spectator_registry_counter(w->reg, name, SPECTATOR_TAGS("endpoint", ep, "status", "2xx"));
    }
  }
}

/* 100,000 measurements: 20k counters (1 each), 5k timers (4), 5k summaries
 * (4), 10k gauges (1), 10k max gauges (1), 1k percentile timers (4 + 16
 * buckets). */
static void workload_100k(workload_t *w) {
  memset(w, 0, sizeof(*w));
  w->name = "100k mixed";
  w->reg = new_registry();
  w->ncounters = 20000;
  w->ntimers = 5000;
  w->nsummaries = 5000;
  w->ngauges = 10000;
  w->nmax = 10000;
  w->npct = 1000;
  w->counters = xcalloc(w->ncounters, sizeof(void *));
  w->timers = xcalloc(w->ntimers, sizeof(void *));
  w->summaries = xcalloc(w->nsummaries, sizeof(void *));
  w->gauges = xcalloc(w->ngauges, sizeof(void *));
  w->maxes = xcalloc(w->nmax, sizeof(void *));
  w->pcts = xcalloc(w->npct, sizeof(void *));
  char ep[64];
#define TAGS(i) \
  SPECTATOR_TAGS("endpoint", (snprintf(ep, sizeof(ep), "/api/v1/r%05zu", (i)), ep), "status", "2xx")
  for (size_t i = 0; i < w->ncounters; i++)
    w->counters[i] = spectator_registry_counter(w->reg, "myservice.requests", TAGS(i));
  for (size_t i = 0; i < w->ntimers; i++)
    w->timers[i] = spectator_registry_timer(w->reg, "myservice.latency", TAGS(i));
  for (size_t i = 0; i < w->nsummaries; i++)
    w->summaries[i] = spectator_registry_dist_summary(w->reg, "myservice.responseSize", TAGS(i));
  for (size_t i = 0; i < w->ngauges; i++)
    w->gauges[i] = spectator_registry_gauge(w->reg, "myservice.queueDepth", TAGS(i));
  for (size_t i = 0; i < w->nmax; i++)
    w->maxes[i] = spectator_registry_max_gauge(w->reg, "myservice.maxInFlight", TAGS(i));
  for (size_t i = 0; i < w->npct; i++)
    w->pcts[i] =
        spectator_registry_percentile_timer(w->reg, "myservice.pctLatency", TAGS(i), 0.001, 10);
#undef TAGS
}

/* Record one interval's worth of activity on every meter (untimed). */
static void workload_record(workload_t *w, int round) {
  for (size_t i = 0; i < w->ncounters; i++)
    spectator_counter_add(w->counters[i], (double)(1 + (i * 7 + (size_t)round) % 100));
  for (size_t i = 0; i < w->ntimers; i++) {
    spectator_timer_record_ns(w->timers[i], (int64_t)(1000000 + i * 1013));
    spectator_timer_record_ns(w->timers[i], (int64_t)(3000000 + i * 7));
  }
  for (size_t i = 0; i < w->nsummaries; i++)
    spectator_dist_summary_record(w->summaries[i], (double)(512 + i % 4096));
  for (size_t i = 0; i < w->ngauges; i++) spectator_gauge_set(w->gauges[i], (double)(i % 50));
  for (size_t i = 0; i < w->nmax; i++) spectator_max_gauge_set(w->maxes[i], 0.25 * (double)i);
  for (size_t i = 0; i < w->npct; i++)
    for (int b = 0; b < 16; b++) /* 16 distinct buckets from 1 ms up */
      spectator_percentile_timer_record(w->pcts[i], 0.001 * pow(1.7, b));
}

/* ------------------------------------------------------------------------ */
/* The cJSON baseline                                                        */
/* ------------------------------------------------------------------------ */

/* A datapoint as strings: the publisher's tag rules (common tags, id tags,
 * statistic, percentile, name; later keys win), each string sanitized. */
typedef struct {
  char **kv; /* 2 * n sanitized strings (malloc'd) */
  size_t n;
  int op;
  double value;
} dp_t;

static char *sanitized_copy(const char *s) {
  char *o = malloc(strlen(s) + 1);
  if (!o) abort();
  spectator__sanitize(s, o);
  return o;
}

static void dp_set(dp_t *d, const char *k, const char *v) {
  char *ks = sanitized_copy(k), *vs = sanitized_copy(v);
  for (size_t i = 0; i < d->n; i++) {
    if (strcmp(d->kv[2 * i], ks) == 0) {
      free(d->kv[2 * i + 1]);
      d->kv[2 * i + 1] = vs;
      free(ks);
      return;
    }
  }
  d->kv[2 * d->n] = ks;
  d->kv[2 * d->n + 1] = vs;
  d->n++;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_pair(const void *a, const void *b) {
  return strcmp(((char *const *)a)[0], ((char *const *)b)[0]);
}

/* Encode records [from, to) as one batch with cJSON. Returns the printed
 * JSON (caller frees). */
static char *cjson_encode_batch(const spectator__record_t *recs, size_t from, size_t to) {
  size_t n = to - from;
  dp_t *dps = xcalloc(n, sizeof(*dps));
  size_t total_strings = 0;
  for (size_t r = 0; r < n; r++) {
    const spectator__record_t *rec = &recs[from + r];
    char pct[6];
    dp_t *d = &dps[r];
    d->kv = xcalloc(2 * (3 + rec->id->ntags + 3), sizeof(char *));
    for (size_t i = 0; common_tags[i]; i += 2) dp_set(d, common_tags[i], common_tags[i + 1]);
    for (size_t i = 0; i < rec->id->ntags; i++)
      dp_set(d, rec->id->tags[2 * i], rec->id->tags[2 * i + 1]);
    if (rec->stat) dp_set(d, "statistic", spectator__stat_names[rec->stat]);
    if (spectator__record_pct_tag(rec, pct)) dp_set(d, "percentile", pct);
    dp_set(d, "name", rec->id->name);
    qsort(d->kv, d->n, 2 * sizeof(char *), cmp_pair);
    d->op = rec->op;
    d->value = rec->value;
    total_strings += 2 * d->n;
  }
  /* The sorted, unique string table. */
  char **table = xcalloc(total_strings, sizeof(char *));
  size_t nt = 0;
  for (size_t r = 0; r < n; r++)
    for (size_t i = 0; i < 2 * dps[r].n; i++) table[nt++] = dps[r].kv[i];
  qsort(table, nt, sizeof(char *), cmp_str);
  size_t u = 0;
  for (size_t i = 0; i < nt; i++)
    if (u == 0 || strcmp(table[u - 1], table[i]) != 0) table[u++] = table[i];

  cJSON *root = cJSON_CreateArray();
  cJSON_AddItemToArray(root, cJSON_CreateNumber((double)u));
  for (size_t i = 0; i < u; i++) cJSON_AddItemToArray(root, cJSON_CreateString(table[i]));
  for (size_t r = 0; r < n; r++) {
    dp_t *d = &dps[r];
    cJSON_AddItemToArray(root, cJSON_CreateNumber((double)d->n));
    for (size_t i = 0; i < 2 * d->n; i++) {
      char **hit = bsearch(&d->kv[i], table, u, sizeof(char *), cmp_str);
      cJSON_AddItemToArray(root, cJSON_CreateNumber((double)(hit - table)));
    }
    cJSON_AddItemToArray(root, cJSON_CreateNumber(d->op));
    cJSON_AddItemToArray(root, cJSON_CreateNumber(d->value));
  }
  char *json = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  for (size_t r = 0; r < n; r++) {
    for (size_t i = 0; i < 2 * dps[r].n; i++) free(dps[r].kv[i]);
    free(dps[r].kv);
  }
  free(dps);
  free(table);
  return json;
}

/* Both parse to the same array: same strings, numbers equal as doubles (the
 * texts may differ: e.g. 1e-05 and 0.00001). */
static bool same_json(const char *a, const char *b, size_t blen) {
  cJSON *x = cJSON_Parse(a), *y = cJSON_ParseWithLength(b, blen);
  bool same = x && y;
  const cJSON *i = x ? x->child : NULL, *j = y ? y->child : NULL;
  for (; same && i && j; i = i->next, j = j->next) {
    if (cJSON_IsString(i))
      same = cJSON_IsString(j) && strcmp(i->valuestring, j->valuestring) == 0;
    else
      same = cJSON_IsNumber(i) && cJSON_IsNumber(j) && i->valuedouble == j->valuedouble;
  }
  same = same && !i && !j;
  cJSON_Delete(x);
  cJSON_Delete(y);
  return same;
}

/* ------------------------------------------------------------------------ */
/* Measurement                                                               */
/* ------------------------------------------------------------------------ */

#define MAX_ROUNDS 64
#define NLEVELS 4
static const int levels[NLEVELS] = {1, 3, 6, 9};

typedef struct {
  double collect[MAX_ROUNDS], encode[MAX_ROUNDS], gzip[NLEVELS][MAX_ROUNDS], cjson[MAX_ROUNDS];
  double cycle[MAX_ROUNDS], peak[MAX_ROUNDS];
  size_t measurements, datapoints, batches, raw, gz[NLEVELS], cjson_bytes;
  double encode_peak, cjson_peak; /* extra heap while encoding JSON only */
  bool identical, same_values, gz_same_raw;
  size_t records_bytes;
} result_t;

static double ms_since(int64_t t0) { return (double)(bench_now_ns() - t0) / 1e6; }

/* A copy of the records (the encoder consumes its input). */
static void copy_records(const spectator__records_t *from, spectator__records_t *to) {
  spectator__records_init(to);
  SPECTATOR__RECORDS_FOREACH(from, r)
  spectator__records_add(to, r->id, r->stat, r->pct, r->value);
  if (to->lost) abort();
}

/* The send step of a cycle without a network: the body is only looked at. */
static bool discard_body(void *ctx, const spectator__batch_t *body) {
  (void)ctx;
  return body->len > 0;
}

/* One cycle exactly as publish() runs it (the registry measured, encoded and
 * handed over batch by batch), but for the network, with the peak of extra
 * heap. */
static void cycle(workload_t *w, result_t *res, int r) {
#ifdef BENCH_ALLOC_COUNT
  alloc_peak_reset();
  int64_t live0 = alloc_live();
#endif
  int64_t t0 = bench_now_ns();
  spectator__stream_t st;
  if (spectator__publish_stream(w->reg, PUBLISH_GZIP_LEVEL, 0, discard_body, NULL, &st) != 0 ||
      st.late || st.lost || st.failed)
    abort();
  res->cycle[r] = ms_since(t0);
#ifdef BENCH_ALLOC_COUNT
  res->peak[r] = (double)(alloc_peak() - live0);
#else
  res->peak[r] = 0;
#endif
}

/* The phases one by one: the encoder without gzip and with gzip at each
 * level, and the cJSON baseline. Each encode gets its own copy of the
 * records, made untimed. */
static void phases(workload_t *w, result_t *res, int r) {
  int64_t t0 = bench_now_ns();
  spectator__records_t rs, work;
  spectator__records_init(&rs);
  spectator__cursor_t cur = {0};
  spectator__registry_collect(w->reg, &cur, &rs, SIZE_MAX);
  res->collect[r] = ms_since(t0);
  res->measurements = rs.len;
  res->records_bytes = 0;
  for (spectator__record_chunk_t *c = rs.head; c; c = c->next) res->records_bytes += sizeof(*c);
  size_t bs = w->reg->cfg.batch_size;

  copy_records(&rs, &work);
#ifdef BENCH_ALLOC_COUNT
  alloc_peak_reset();
  int64_t live0 = alloc_live();
#endif
  t0 = bench_now_ns();
  spectator__payload_t pl;
  if (spectator__encode(&work, w->reg->cfg.common_tags, bs, SPECTATOR__ENCODE_RAW, &pl) != 0) abort();
  res->encode[r] = ms_since(t0);
#ifdef BENCH_ALLOC_COUNT
  res->encode_peak = (double)(alloc_peak() - live0);
#endif
  res->datapoints = pl.measurements;
  res->batches = pl.len;
  res->raw = pl.raw_bytes;

  res->gz_same_raw = true;
  for (int l = 0; l < NLEVELS; l++) {
    copy_records(&rs, &work);
    spectator__payload_t gz;
    t0 = bench_now_ns();
    if (spectator__encode(&work, w->reg->cfg.common_tags, bs, levels[l], &gz) != 0) abort();
    res->gzip[l][r] = ms_since(t0);
    size_t total = 0;
    for (size_t b = 0; b < gz.len; b++) total += gz.batches[b].len;
    res->gz[l] = total;
    res->gz_same_raw = res->gz_same_raw && gz.raw_bytes == pl.raw_bytes && gz.len == pl.len;
    spectator__payload_free(&gz);
  }

  /* cJSON: the same batches (records map 1:1 to datapoints here: no two ids
   * sanitize alike, so the direct encoder merges nothing). */
  size_t cj = 0, n = 0;
  spectator__record_t *flat = xcalloc(rs.len, sizeof(*flat));
  SPECTATOR__RECORDS_FOREACH(&rs, rec) flat[n++] = *rec;
  bool same = pl.measurements == n;
  spectator__payload_t keep = pl; /* set aside: not part of the baseline's heap */
#ifdef BENCH_ALLOC_COUNT
  alloc_peak_reset();
  live0 = alloc_live();
#endif
  t0 = bench_now_ns();
  char **outs = xcalloc(pl.len, sizeof(char *));
  for (size_t b = 0; b < pl.len; b++) {
    size_t from = b * bs, to = from + bs < n ? from + bs : n;
    outs[b] = cjson_encode_batch(flat, from, to);
  }
  res->cjson[r] = ms_since(t0);
#ifdef BENCH_ALLOC_COUNT
  res->cjson_peak = (double)(alloc_peak() - live0);
#endif
  pl = keep;
  bool bytes = same;
  for (size_t b = 0; b < pl.len; b++) {
    size_t len = strlen(outs[b]);
    cj += len;
    bytes = bytes && len == pl.batches[b].len && memcmp(outs[b], pl.batches[b].data, len) == 0;
    same = same && same_json(outs[b], pl.batches[b].data, pl.batches[b].len);
    free(outs[b]);
  }
  free(outs);
  free(flat);
  res->cjson_bytes = cj;
  res->identical = bytes;
  res->same_values = same;
  spectator__payload_free(&pl);
  spectator__records_free(&rs);
  spectator__registry_collect_end(w->reg, &cur);
}

static void run(workload_t *w, result_t *res, int rounds) {
  memset(res, 0, sizeof(*res));
  for (int r = 0; r < rounds; r++) {
    workload_record(w, r);
    cycle(w, res, r);
    workload_record(w, r);
    phases(w, res, r);
  }
}

int main(void) {
  spectator_log_set_level(SPECTATOR_LOG_OFF);
  int rounds = bench_env_int("BENCH_ROUNDS", 9);
  if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
  workload_t w[2];
  result_t res[2];
  workload_10k(&w[0]);
  workload_100k(&w[1]);
  for (int i = 0; i < 2; i++) {
    workload_record(&w[i], 0); /* warm up */
    cycle(&w[i], &res[i], 0);
    run(&w[i], &res[i], rounds);
  }

  bench_header("Publish cycle without network");
  printf("cycle = the registry measured, encoded with gzip level %d and handed over batch by "
         "batch (each batch compressed while it is written), as publish() runs it but for the "
         "network; peak extra heap over the whole cycle (counting allocator, zlib included)\n\n",
         PUBLISH_GZIP_LEVEL);
  printf("| | 10k counters | 100k mixed |\n|---|---:|---:|\n");
#define ROW(label, fmt, ...)             \
  do {                                   \
    printf("| %s |", label);             \
    for (int i_ = 0; i_ < 2; i_++) {     \
      result_t *x = &res[i_];            \
      (void)x;                           \
      printf(" " fmt " |", __VA_ARGS__); \
    }                                    \
    printf("\n");                        \
  } while (0)
  ROW("measurements / datapoints / batches", "%zu / %zu / %zu", x->measurements, x->datapoints,
      x->batches);
  ROW("snapshot (ms)", "%.2f", bench_median(x->collect, rounds));
  ROW("encode, direct, JSON only (ms)", "%.2f", bench_median(x->encode, rounds));
  ROW("encode, cJSON DOM baseline (ms)", "%.2f", bench_median(x->cjson, rounds));
  ROW("cJSON / direct", "%.1fx", bench_median_ratio(x->cjson, x->encode, rounds));
  ROW("cJSON output: same bytes / same values", "%s / %s", x->identical ? "yes" : "no",
      x->same_values ? "yes" : "no");
  for (int l = 0; l < NLEVELS; l++) {
    char label[64];
    snprintf(label, sizeof(label), "encode with gzip level %d (ms)", levels[l]);
    ROW(label, "%.2f", bench_median(x->gzip[l], rounds));
  }
  ROW("gzip encodes fed deflate as many JSON bytes and batches as the JSON encode", "%s",
      x->gz_same_raw ? "yes" : "no");
  ROW("bytes raw", "%zu", x->raw);
  for (int l = 0; l < NLEVELS; l++) {
    char label[64];
    snprintf(label, sizeof(label), "bytes gzip level %d (ratio)", levels[l]);
    ROW(label, "%zu (%.1f%%)", x->gz[l], 100.0 * (double)x->gz[l] / (double)x->raw);
  }
  char label[64];
  snprintf(label, sizeof(label), "**cycle at level %d (ms)**", PUBLISH_GZIP_LEVEL);
  ROW(label, "%.2f", bench_median(x->cycle, rounds));
  ROW("cycle target (ms)", "%s", i_ == 0 ? "<= 5" : "<= 50");
  ROW("cycle target met", "%s",
      bench_verdict(bench_median(x->cycle, rounds) <= (i_ == 0 ? 5.0 : 50.0)));
#ifdef BENCH_ALLOC_COUNT
  ROW("**peak extra heap (bytes)**", "%.0f", bench_median(x->peak, rounds));
  ROW("peak extra / raw payload", "%.2fx", bench_median(x->peak, rounds) / (double)x->raw);
  ROW("memory target (<= 2x) met", "%s",
      bench_verdict(bench_median(x->peak, rounds) <= 2.0 * (double)x->raw));
  ROW("snapshot records (bytes allocated, freed while encoding)", "%zu", x->records_bytes);
  ROW("encode JSON only: peak extra heap, direct (bytes)", "%.0f", x->encode_peak);
  ROW("encode JSON only: peak extra heap, cJSON DOM (bytes)", "%.0f", x->cjson_peak);
#endif
  for (int i = 0; i < 2; i++) {
    spectator_registry_free(w[i].reg);
    free(w[i].counters);
    free(w[i].timers);
    free(w[i].summaries);
    free(w[i].gauges);
    free(w[i].maxes);
    free(w[i].pcts);
  }
  return 0;
}
