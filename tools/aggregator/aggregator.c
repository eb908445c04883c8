/*
 * aggregator.c: a local test Atlas aggregator (see aggregator.h).
 *
 * DESIGN
 * libmicrohttpd runs the server on 127.0.0.1 with one thread per connection,
 * so an injected delay blocks only its own connection. The access handler
 * collects the request body (bounded), then does all the expensive work
 * without the lock: gunzip, a hand-written strict RFC 8259 check (cJSON 1.7.15
 * accepts leading zeros, "1.", a BOM, \v as whitespace, raw control characters,
 * invalid UTF-8 and 1e400), cJSON parsing, sanitization of the string table
 * (per code point, as spectator-py), decoding of the records, Atlas's
 * validation rules and the answer. Only then does it take the one mutex to
 * fold the accepted datapoints into a chained hash table keyed by the
 * canonical id "name{k=v,...}" (sorted keys, the last of a repeated key wins,
 * the delimiters cannot occur in sanitized strings), update the counters,
 * print when verbose and broadcast the one condition variable (CLOCK_MONOTONIC)
 * that both the agg_wait_* functions and delayed handlers wait on. agg_stop
 * sets `stopping` and broadcasts before MHD_stop_daemon, so a delayed handler
 * wakes at once, drops its connection and the daemon's threads join promptly.
 * A "\u0000" escape is refused as a malformed payload: cJSON would silently
 * truncate the string there, where Atlas would sanitize it to "_".
 */
#include "aggregator.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <zlib.h>

#define UPDATE_PATH "/api/v4/update"
#define JSON_MAX_DEPTH 1000 /* the same as cJSON's CJSON_NESTING_LIMIT */
#define OP_ADD 0
#define OP_MAX 10

/* Atlas validation limits. */
#define KEY_MIN 2
#define KEY_MAX 60
#define NAME_MIN 2
#define NAME_MAX 255
#define VALUE_MIN 1
#define VALUE_MAX 120
#define MAX_USER_TAGS 20

static const char *const atlas_keys[] = {"atlas.aggr", "atlas.dstype", "atlas.offset",
                                         "atlas.legacy", NULL};
static const char *const nf_keys[] = {
    "nf.account", "nf.ami",       "nf.app",     "nf.asg",
    "nf.cluster", "nf.container", "nf.country", "nf.country.rollup",
    "nf.job",     "nf.node",      "nf.process", "nf.region",
    "nf.shard1",  "nf.shard2",    "nf.stack",   "nf.subnet",
    "nf.task",    "nf.vmtype",    "nf.vpc",     "nf.zone",
    NULL};

static const char garbage_body[] = "\x00\xff<html>502 Bad Gateway</html>{\"type\":\"partial\",";

/* ------------------------------------------------------------------------ */
/* Small helpers: string builder, number formatting, time                    */
/* ------------------------------------------------------------------------ */

typedef struct {
  char *p;
  size_t len, cap;
  int oom;
} sb_t;

static void sb_putn(sb_t *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_puts(sb_t *b, const char *s) { sb_putn(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void sb_printf(sb_t *b, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    sb_putn(b, small, (size_t)n);
    return;
  }
  char *big = malloc((size_t)n + 1);
  if (!big) {
    b->oom = 1;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb_putn(b, big, (size_t)n);
  free(big);
}

/* Takes the string out of the builder (NULL when out of memory). */
static char *sb_take(sb_t *b) {
  if (b->oom) {
    free(b->p);
    b->p = NULL;
    return NULL;
  }
  if (!b->p) return calloc(1, 1);
  char *p = b->p;
  b->p = NULL;
  return p;
}

/* Shortest of %.15g / %.17g that reads back as v. */
static const char *fmt_double(char buf[40], double v) {
  snprintf(buf, 40, "%.15g", v);
  if (strtod(buf, NULL) != v) snprintf(buf, 40, "%.17g", v);
  return buf;
}

static struct timespec mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts;
}

static double mono_seconds_since(const struct timespec *t0) {
  struct timespec t = mono_now();
  return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static struct timespec deadline_after(double seconds) {
  if (!(seconds > 0)) seconds = 0; /* also NaN */
  if (seconds > 1e7) seconds = 1e7;
  struct timespec ts = mono_now();
  double whole = floor(seconds);
  ts.tv_sec += (time_t)whole;
  ts.tv_nsec += (long)((seconds - whole) * 1e9);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec += 1;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

static int starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int in_list(const char *s, const char *const *list) {
  for (; *list; list++)
    if (strcmp(s, *list) == 0) return 1;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Strict RFC 8259 checker                                                   */
/* ------------------------------------------------------------------------ */

static size_t json_skip_ws(const unsigned char *p, size_t n, size_t i) {
  while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) i++;
  return i;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Four hex digits at p[i..i+4) as a number, -1 when absent or invalid. */
static long json_hex4(const unsigned char *p, size_t n, size_t i) {
  if (i + 4 > n) return -1;
  long v = 0;
  for (size_t k = i; k < i + 4; k++) {
    unsigned char c = p[k];
    int d = (c >= '0' && c <= '9')   ? c - '0'
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                     : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/* Length of the well-formed UTF-8 sequence at s (non-ASCII lead), 0 if invalid
 * (overlong forms, encoded surrogates and values above U+10FFFF are invalid). */
static size_t utf8_len(const unsigned char *s, size_t avail) {
  unsigned char c = s[0];
  unsigned char lo = 0x80, hi = 0xBF;
  size_t len;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (avail < len) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (size_t k = 2; k < len; k++)
    if (s[k] < 0x80 || s[k] > 0xBF) return 0;
  return len;
}

/* p[i] is an opening quote; index after the closing quote, 0 when invalid. */
static size_t json_string(const unsigned char *p, size_t n, size_t i, int *nul_escape) {
  i++;
  while (i < n) {
    unsigned char c = p[i];
    if (c == '"') return i + 1;
    if (c < 0x20) return 0;
    if (c < 0x80 && c != '\\') {
      i++;
    } else if (c >= 0x80) {
      size_t len = utf8_len(p + i, n - i);
      if (!len) return 0;
      i += len;
    } else {
      if (i + 1 >= n) return 0;
      c = p[i + 1];
      if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
          c == 't') {
        i += 2;
        continue;
      }
      if (c != 'u') return 0;
      long u = json_hex4(p, n, i + 2);
      if (u < 0) return 0;
      i += 6;
      if (u == 0) *nul_escape = 1;
      if (u >= 0xDC00 && u <= 0xDFFF) return 0; /* unpaired low surrogate */
      if (u >= 0xD800 && u <= 0xDBFF) {
        if (i + 1 >= n || p[i] != '\\' || p[i + 1] != 'u') return 0;
        long low = json_hex4(p, n, i + 2);
        if (low < 0xDC00 || low > 0xDFFF) return 0;
        i += 6;
      }
    }
  }
  return 0;
}

/* p[i] starts a number; index after it, 0 when invalid. */
static size_t json_number(const unsigned char *p, size_t n, size_t i) {
  if (p[i] == '-') i++;
  if (i >= n) return 0;
  if (p[i] == '0') {
    i++;
  } else if (p[i] >= '1' && p[i] <= '9') {
    while (i < n && is_digit(p[i])) i++;
  } else {
    return 0;
  }
  if (i < n && p[i] == '.') {
    i++;
    if (i >= n || !is_digit(p[i])) return 0;
    while (i < n && is_digit(p[i])) i++;
  }
  if (i < n && (p[i] == 'e' || p[i] == 'E')) {
    i++;
    if (i < n && (p[i] == '+' || p[i] == '-')) i++;
    if (i >= n || !is_digit(p[i])) return 0;
    while (i < n && is_digit(p[i])) i++;
  }
  return i;
}

/* 1 when p[0..n) is one strict JSON text; *nul_escape set when a string holds
 * a \u0000 escape. An explicit stack instead of recursion. */
static int json_check(const unsigned char *p, size_t n, int *nul_escape) {
  enum { VALUE, KEY, AFTER } state = VALUE;
  unsigned char stack[JSON_MAX_DEPTH];
  size_t depth = 0;
  size_t i = json_skip_ws(p, n, 0);
  *nul_escape = 0;
  for (;;) {
    if (state == VALUE) {
      if (i >= n) return 0;
      unsigned char c = p[i];
      if (c == '[' || c == '{') {
        if (depth >= JSON_MAX_DEPTH) return 0;
        stack[depth++] = c;
        i = json_skip_ws(p, n, i + 1);
        if (i < n && p[i] == (c == '[' ? ']' : '}')) {
          depth--;
          i++;
          state = AFTER;
        } else {
          state = c == '{' ? KEY : VALUE;
        }
        continue;
      }
      size_t end = 0;
      if (c == '"') {
        end = json_string(p, n, i, nul_escape);
      } else if (c == '-' || is_digit(c)) {
        end = json_number(p, n, i);
      } else {
        static const char *const lits[] = {"true", "false", "null"};
        for (size_t k = 0; k < 3; k++) {
          size_t len = strlen(lits[k]);
          if (n - i >= len && memcmp(p + i, lits[k], len) == 0) end = i + len;
        }
      }
      if (!end) return 0;
      i = end;
      state = AFTER;
    } else if (state == KEY) {
      if (i >= n || p[i] != '"') return 0;
      i = json_string(p, n, i, nul_escape);
      if (!i) return 0;
      i = json_skip_ws(p, n, i);
      if (i >= n || p[i] != ':') return 0;
      i = json_skip_ws(p, n, i + 1);
      state = VALUE;
    } else {
      i = json_skip_ws(p, n, i);
      if (depth == 0) return i == n;
      if (i >= n) return 0;
      unsigned char open = stack[depth - 1];
      if (p[i] == ',') {
        i = json_skip_ws(p, n, i + 1);
        state = open == '{' ? KEY : VALUE;
      } else if (p[i] == (open == '[' ? ']' : '}')) {
        depth--;
        i++;
      } else {
        return 0;
      }
    }
  }
}

int agg_json_is_strict(const char *text, size_t len) {
  int nul;
  if (!text) return 0;
  return json_check((const unsigned char *)text, len, &nul);
}

/* ------------------------------------------------------------------------ */
/* Sanitization and canonical ids                                            */
/* ------------------------------------------------------------------------ */

static int allowed_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '^' || c == '~';
}

/* A sanitized copy: each code point outside -._A-Za-z0-9^~ becomes '_' (the
 * text is valid UTF-8 here, so continuation bytes are skipped). */
static char *sanitize(const char *s) {
  size_t n = strlen(s);
  char *out = malloc(n + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x80 && c <= 0xBF) continue; /* continuation byte */
    out[o++] = allowed_char(c) ? (char)c : '_';
  }
  out[o] = '\0';
  return out;
}

typedef struct {
  const char *k, *v;
  size_t pos;
} pair_t;

static int pair_cmp(const void *a, const void *b) {
  const pair_t *x = a, *y = b;
  int c = strcmp(x->k, y->k);
  if (c) return c;
  return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Sorts pairs by key and keeps the last of each repeated key; new count. */
static size_t normalize_pairs(pair_t *p, size_t n) {
  if (n == 0) return 0;
  qsort(p, n, sizeof *p, pair_cmp);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (i + 1 < n && strcmp(p[i].k, p[i + 1].k) == 0) continue;
    p[o++] = p[i];
  }
  return o;
}

/* "name{k=v,k=v}" from normalized pairs, skipping a "name" pair. */
static char *make_key(const char *name, const pair_t *p, size_t n) {
  sb_t b = {0};
  sb_puts(&b, name);
  sb_putn(&b, "{", 1);
  int first = 1;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(p[i].k, "name") == 0) continue;
    if (!first) sb_putn(&b, ",", 1);
    first = 0;
    sb_puts(&b, p[i].k);
    sb_putn(&b, "=", 1);
    sb_puts(&b, p[i].v);
  }
  sb_putn(&b, "}", 1);
  return sb_take(&b);
}

/* Canonical key of a lookup (name, NULL-terminated k,v array); NULL on OOM. */
static char *lookup_key(const char *name, const char *const *tags) {
  size_t n = 0;
  if (!name) return NULL;
  if (tags)
    while (tags[2 * n] && tags[2 * n + 1]) n++;
  pair_t *p = calloc(n ? n : 1, sizeof *p);
  if (!p) return NULL;
  for (size_t i = 0; i < n; i++) p[i] = (pair_t){tags[2 * i], tags[2 * i + 1], i};
  n = normalize_pairs(p, n);
  /* As in ids, a "name" pair among the tags is ignored by make_key. */
  char *key = make_key(name, p, n);
  free(p);
  return key;
}

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

/* ------------------------------------------------------------------------ */
/* State                                                                     */
/* ------------------------------------------------------------------------ */

/* The last AGG_HISTORY_POINTS intervals in which a series received data: a
 * ring of (interval, aggregate within it). */
typedef struct {
  unsigned long iv;
  double value;
} hist_point_t;

typedef struct {
  hist_point_t pts[AGG_HISTORY_POINTS];
  size_t start, n;
} hist_t;

typedef struct series {
  struct series *next; /* hash chain */
  uint64_t hash;
  char *key;  /* "name{tags}" */
  char *name; /* the name part, NUL-terminated copy */
  char *tags; /* "k=v,k=v" */
  int op;
  double total, last, interval_value;
  unsigned long interval;
  size_t count;
  hist_t *hist; /* NULL once AGG_HISTORY_MAX_SERIES series have one */
  int no_hist;  /* counted in series_without_history */
} series_t;

typedef struct fail_rule {
  struct fail_rule *next;
  agg_fail_kind_t kind;
  int status, delay_ms;
  size_t remaining;
} fail_rule_t;

struct agg {
  struct MHD_Daemon *daemon;
  int port;
  char url[64];
  char *tls_key, *tls_cert; /* PEM copies for an https server, freed at stop */
  struct timespec start;

  pthread_mutex_t mu;
  pthread_cond_t cond; /* broadcast on every request, reset and stop */
  /* Everything below is guarded by mu. */
  int stopping;
  series_t **buckets;
  size_t nbuckets, nseries;
  agg_stats_t stats;
  fail_rule_t *fail_head, *fail_tail;
  FILE *verbose;
  double step_s;
  size_t max_body, max_messages;
  int close_connections; /* answer updates with "Connection: close" */
  unsigned long iv_no;   /* interval of the counters below */
  size_t iv_requests, iv_received, iv_accepted, iv_dropped;
  char last_ct[256], last_ce[128], last_ua[512];
  const agg_file_t *files; /* served on GET; NULL: none */
  size_t hist_series, series_without_history;
};

static series_t *series_find(agg_t *agg, const char *key, uint64_t h) {
  if (!agg->nbuckets) return NULL;
  for (series_t *s = agg->buckets[h % agg->nbuckets]; s; s = s->next)
    if (s->hash == h && strcmp(s->key, key) == 0) return s;
  return NULL;
}

static int series_grow(agg_t *agg) {
  size_t nb = agg->nbuckets ? agg->nbuckets * 2 : 64;
  series_t **b = calloc(nb, sizeof *b);
  if (!b) return -1;
  for (size_t i = 0; i < agg->nbuckets; i++) {
    series_t *s = agg->buckets[i];
    while (s) {
      series_t *next = s->next;
      s->next = b[s->hash % nb];
      b[s->hash % nb] = s;
      s = next;
    }
  }
  free(agg->buckets);
  agg->buckets = b;
  agg->nbuckets = nb;
  return 0;
}

/* key is "name{tags}" with the name name_len bytes long. */
static series_t *series_get_or_add(agg_t *agg, const char *key, size_t name_len) {
  uint64_t h = hash_str(key);
  series_t *s = series_find(agg, key, h);
  if (s) return s;
  if (agg->nseries + 1 > agg->nbuckets / 4 * 3 && series_grow(agg) != 0) return NULL;
  size_t klen = strlen(key);
  /* One block: key, name, tags. */
  s = calloc(1, sizeof *s + 2 * (klen + 1));
  if (!s) return NULL;
  s->key = (char *)(s + 1);
  memcpy(s->key, key, klen + 1);
  s->name = s->key + klen + 1;
  memcpy(s->name, key, name_len);
  s->name[name_len] = '\0';
  s->tags = s->name + name_len + 1;
  size_t tlen = klen - name_len - 2; /* minus '{' and '}' */
  memcpy(s->tags, key + name_len + 1, tlen);
  s->tags[tlen] = '\0';
  s->hash = h;
  s->next = agg->buckets[h % agg->nbuckets];
  agg->buckets[h % agg->nbuckets] = s;
  agg->nseries++;
  return s;
}

static void series_clear(agg_t *agg) {
  for (size_t i = 0; i < agg->nbuckets; i++) {
    series_t *s = agg->buckets[i];
    while (s) {
      series_t *next = s->next;
      free(s->hist);
      free(s);
      s = next;
    }
  }
  free(agg->buckets);
  agg->buckets = NULL;
  agg->nbuckets = 0;
  agg->nseries = 0;
  agg->hist_series = 0;
  agg->series_without_history = 0;
}

/* Notes the aggregate of interval iv in the series' history. Memory is
 * bounded: AGG_HISTORY_POINTS per series, for the first
 * AGG_HISTORY_MAX_SERIES series; later ones are only counted. */
static void hist_note_locked(agg_t *agg, series_t *s, unsigned long iv, double value) {
  if (!s->hist) {
    if (agg->hist_series >= AGG_HISTORY_MAX_SERIES || !(s->hist = calloc(1, sizeof *s->hist))) {
      if (!s->no_hist) {
        s->no_hist = 1;
        agg->series_without_history++;
      }
      return;
    }
    agg->hist_series++;
  }
  hist_t *h = s->hist;
  if (h->n && h->pts[(h->start + h->n - 1) % AGG_HISTORY_POINTS].iv == iv) {
    h->pts[(h->start + h->n - 1) % AGG_HISTORY_POINTS].value = value;
    return;
  }
  if (h->n == AGG_HISTORY_POINTS) {
    h->start = (h->start + 1) % AGG_HISTORY_POINTS;
    h->n--;
  }
  h->pts[(h->start + h->n) % AGG_HISTORY_POINTS] = (hist_point_t){iv, value};
  h->n++;
}

static void fail_clear_locked(agg_t *agg) {
  while (agg->fail_head) {
    fail_rule_t *r = agg->fail_head;
    agg->fail_head = r->next;
    free(r);
  }
  agg->fail_tail = NULL;
}

static unsigned long interval_now(agg_t *agg) {
  double t = mono_seconds_since(&agg->start);
  return 1 + (unsigned long)(t / agg->step_s);
}

static int series_cmp(const void *a, const void *b) {
  const series_t *x = *(const series_t *const *)a, *y = *(const series_t *const *)b;
  int c = strcmp(x->name, y->name);
  return c ? c : strcmp(x->tags, y->tags);
}

/* Sorted copies of all series (a copy each, so callers can drop the lock),
 * with a copy of their history when with_history; *n set; NULL when empty or
 * out of memory. Caller holds the lock. */
static series_t *series_snapshot_locked(agg_t *agg, size_t *n, int with_history) {
  *n = 0;
  if (!agg->nseries) return NULL;
  series_t **ptrs = malloc(agg->nseries * sizeof *ptrs);
  series_t *out = calloc(agg->nseries, sizeof *out);
  if (!ptrs || !out) {
    free(ptrs);
    free(out);
    return NULL;
  }
  size_t k = 0;
  for (size_t i = 0; i < agg->nbuckets; i++)
    for (series_t *s = agg->buckets[i]; s; s = s->next) ptrs[k++] = s;
  qsort(ptrs, k, sizeof *ptrs, series_cmp);
  size_t o = 0;
  for (size_t i = 0; i < k; i++) {
    out[o] = *ptrs[i];
    out[o].next = NULL;
    out[o].key = strdup(ptrs[i]->key);
    out[o].name = strdup(ptrs[i]->name);
    out[o].tags = strdup(ptrs[i]->tags);
    out[o].hist = NULL;
    if (with_history && ptrs[i]->hist && (out[o].hist = malloc(sizeof *out[o].hist)))
      *out[o].hist = *ptrs[i]->hist;
    if (!out[o].key || !out[o].name || !out[o].tags) {
      free(out[o].hist);
      free(out[o].key);
      free(out[o].name);
      free(out[o].tags);
      continue;
    }
    o++;
  }
  free(ptrs);
  *n = o;
  return out;
}

static void series_snapshot_free(series_t *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(s[i].hist);
    free(s[i].key);
    free(s[i].name);
    free(s[i].tags);
  }
  free(s);
}

/* ------------------------------------------------------------------------ */
/* Payload decoding and validation                                           */
/* ------------------------------------------------------------------------ */

typedef struct {
  char *key;       /* "name{tags}" */
  size_t name_len; /* bytes of the name at the start of key */
  int op;
  double value;
} datapoint_t;

typedef struct {
  int status;    /* 200, 202, 400 (also malformed), 413, 415 */
  char *body;    /* JSON answer */
  int malformed; /* 400 for the whole body: nothing accepted */
  char *malformed_msg;
  int unsorted;     /* string table not strictly ascending */
  size_t received;  /* datapoints in the body */
  datapoint_t *dps; /* accepted */
  size_t ndps;
  char **msgs; /* one per dropped datapoint */
  size_t nmsgs;
} outcome_t;

static void outcome_free(outcome_t *o) {
  free(o->body);
  free(o->malformed_msg);
  for (size_t i = 0; i < o->ndps; i++) free(o->dps[i].key);
  free(o->dps);
  for (size_t i = 0; i < o->nmsgs; i++) free(o->msgs[i]);
  free(o->msgs);
  memset(o, 0, sizeof *o);
}

static char *error_body(const char *message) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  cJSON_AddStringToObject(o, "type", "error");
  cJSON_AddStringToObject(o, "message", message);
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return s;
}

/* A whole-body failure (400/413/415) with a diagnostic message. */
static void outcome_fail(outcome_t *o, int status, const char *message) {
  o->status = status;
  o->malformed = 1;
  free(o->malformed_msg);
  o->malformed_msg = strdup(message);
  free(o->body);
  o->body = error_body(message);
}

/* Integral number in [lo, hi] as size_t; -1 if the item is anything else. */
static int item_index(const cJSON *it, double lo, double hi, size_t *out) {
  if (!it || !cJSON_IsNumber(it)) return -1;
  double d = it->valuedouble;
  if (!isfinite(d) || d != floor(d) || d < lo || d > hi) return -1;
  *out = (size_t)d;
  return 0;
}

/* Atlas's reason for dropping a datapoint with the given normalized pairs, or
 * NULL when it passes. Rule order: missing name, per tag (sorted) key length,
 * value length, reserved prefixes, then the user tag count. */
static char *validate(const pair_t *p, size_t n) {
  sb_t why = {0};
  int has_name = 0;
  size_t user = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(p[i].k, "name") == 0) has_name = 1;
    if (!starts_with(p[i].k, "nf.") && !starts_with(p[i].k, "atlas.")) user++;
  }
  if (!has_name) sb_puts(&why, "missing key 'name'");
  for (size_t i = 0; i < n && !why.len; i++) {
    const char *k = p[i].k, *v = p[i].v;
    size_t kl = strlen(k), vl = strlen(v);
    int is_name = strcmp(k, "name") == 0;
    size_t vmin = is_name ? NAME_MIN : VALUE_MIN, vmax = is_name ? NAME_MAX : VALUE_MAX;
    if (kl > KEY_MAX) {
      sb_printf(&why, "key too long: [%s] (%zu > %d)", k, kl, KEY_MAX);
    } else if (kl < KEY_MIN) {
      sb_printf(&why, "key too short: [%s] (%zu < %d)", k, kl, KEY_MIN);
    } else if (vl > vmax) {
      sb_printf(&why, "value too long: %s = [%s] (%zu > %zu)", k, v, vl, vmax);
    } else if (vl < vmin) {
      sb_printf(&why, "value too short: %s = [%s] (%zu < %zu)", k, v, vl, vmin);
    } else if (starts_with(k, "atlas.") && !in_list(k, atlas_keys)) {
      sb_printf(&why, "invalid key for reserved prefix 'atlas.': %s", k);
    } else if (starts_with(k, "nf.") && !in_list(k, nf_keys)) {
      sb_printf(&why, "invalid key for reserved prefix 'nf.': %s", k);
    }
  }
  if (!why.len && user > MAX_USER_TAGS)
    sb_printf(&why, "too many user tags: %zu > %d", user, MAX_USER_TAGS);
  if (!why.len && !why.oom) return NULL;
  /* As the aggregator: the reason, then the tags as JSON. Sanitized strings
   * need no escaping. */
  sb_puts(&why, " (tags={");
  for (size_t i = 0; i < n; i++) {
    sb_printf(&why, "%s\"%s\":\"%s\"", i ? "," : "", p[i].k, p[i].v);
  }
  sb_puts(&why, "})");
  char *s = sb_take(&why);
  return s ? s : strdup("dropped (out of memory)");
}

/* Builds the 200/202/400 answer once datapoints are decoded. */
static void outcome_answer(outcome_t *o, size_t max_messages) {
  size_t dropped = o->nmsgs;
  if (dropped == 0) {
    o->status = 200;
    o->body = strdup("{}");
    return;
  }
  o->status = dropped < o->received ? 202 : 400;
  cJSON *obj = cJSON_CreateObject();
  cJSON *arr = cJSON_CreateArray();
  if (!obj || !arr) {
    cJSON_Delete(obj);
    cJSON_Delete(arr);
    return;
  }
  cJSON_AddStringToObject(obj, "type", o->status == 202 ? "partial" : "error");
  cJSON_AddNumberToObject(obj, "errorCount", (double)dropped);
  size_t n = max_messages && max_messages < dropped ? max_messages : dropped;
  for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(o->msgs[i]));
  cJSON_AddItemToObject(obj, "message", arr);
  o->body = cJSON_PrintUnformatted(obj);
  cJSON_Delete(obj);
}

/* Decodes one strict-JSON body (NUL-terminated at len) into o. */
static void decode_payload(const char *json, size_t len, size_t max_messages, outcome_t *o) {
  char msg[256];
  cJSON *root = cJSON_ParseWithLengthOpts(json, len + 1, NULL, 1); /* length counts the NUL */
  char **table = NULL;
  size_t nt = 0;
  pair_t *pairs = NULL;
  size_t pairs_cap = 0;

  if (!root) {
    outcome_fail(o, 400, "invalid payload: not parseable JSON");
    return;
  }
  if (!cJSON_IsArray(root)) {
    outcome_fail(o, 400, "invalid payload: expected a JSON array");
    goto done;
  }
  const cJSON *it = root->child;
  size_t n;
  if (item_index(it, 0, (double)cJSON_GetArraySize(root) - 1, &n) != 0) {
    outcome_fail(o, 400,
                 "invalid payload: expected the string table size first (an integer no larger "
                 "than the number of items that follow)");
    goto done;
  }
  table = calloc(n ? n : 1, sizeof *table);
  if (!table) {
    outcome_fail(o, 500, "out of memory");
    goto done;
  }
  const char *prev = NULL;
  it = it->next;
  for (nt = 0; nt < n; nt++, it = it->next) {
    if (!it || !cJSON_IsString(it)) {
      snprintf(msg, sizeof msg, "invalid payload: string table entry %zu of %zu is %s", nt, n,
               it ? "not a string" : "missing");
      outcome_fail(o, 400, msg);
      goto done;
    }
    if (prev && strcmp(prev, it->valuestring) >= 0) o->unsorted = 1;
    prev = it->valuestring;
    table[nt] = sanitize(it->valuestring);
    if (!table[nt]) {
      outcome_fail(o, 500, "out of memory");
      goto done;
    }
  }

  size_t dps_cap = 0;
  for (size_t rec = 0; it; rec++) {
    size_t t, idx, op;
    if (item_index(it, 0, 1e9, &t) != 0) {
      snprintf(msg, sizeof msg, "invalid payload: record %zu: tag count is not an integer >= 0",
               rec);
      outcome_fail(o, 400, msg);
      goto done;
    }
    it = it->next;
    if (t > pairs_cap) {
      pair_t *np = realloc(pairs, t * sizeof *pairs);
      if (!np) {
        outcome_fail(o, 500, "out of memory");
        goto done;
      }
      pairs = np;
      pairs_cap = t;
    }
    for (size_t j = 0; j < 2 * t; j++, it = it->next) {
      if (!it) {
        snprintf(msg, sizeof msg, "invalid payload: record %zu: truncated (%zu tags announced)",
                 rec, t);
        outcome_fail(o, 400, msg);
        goto done;
      }
      if (item_index(it, 0, n ? (double)n - 1 : -1, &idx) != 0) {
        snprintf(msg, sizeof msg,
                 "invalid payload: record %zu: tag %s %zu is not an index into the string "
                 "table of %zu entries",
                 rec, j % 2 ? "value" : "key", j / 2, n);
        outcome_fail(o, 400, msg);
        goto done;
      }
      if (j % 2 == 0)
        pairs[j / 2].k = table[idx];
      else
        pairs[j / 2].v = table[idx];
      pairs[j / 2].pos = j / 2;
    }
    if (!it || !it->next) {
      snprintf(msg, sizeof msg, "invalid payload: record %zu: truncated (missing op or value)",
               rec);
      outcome_fail(o, 400, msg);
      goto done;
    }
    if (item_index(it, 0, 10, &op) != 0 || (op != OP_ADD && op != OP_MAX)) {
      snprintf(msg, sizeof msg, "invalid payload: record %zu: op must be 0 (add) or 10 (max)", rec);
      outcome_fail(o, 400, msg);
      goto done;
    }
    it = it->next;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) {
      snprintf(msg, sizeof msg, "invalid payload: record %zu: value is %s", rec,
               cJSON_IsNumber(it) ? "not finite" : "not a number");
      outcome_fail(o, 400, msg);
      goto done;
    }
    double value = it->valuedouble;
    it = it->next;
    o->received++;

    size_t np = normalize_pairs(pairs, t);
    char *why = validate(pairs, np);
    if (why) {
      char **m = realloc(o->msgs, (o->nmsgs + 1) * sizeof *m);
      if (!m) {
        free(why);
        outcome_fail(o, 500, "out of memory");
        goto done;
      }
      o->msgs = m;
      o->msgs[o->nmsgs++] = why;
      continue;
    }
    const char *name = NULL;
    for (size_t j = 0; j < np; j++)
      if (strcmp(pairs[j].k, "name") == 0) name = pairs[j].v;
    if (o->ndps == dps_cap) {
      size_t cap = dps_cap ? dps_cap * 2 : 64;
      datapoint_t *d = realloc(o->dps, cap * sizeof *d);
      if (!d) {
        outcome_fail(o, 500, "out of memory");
        goto done;
      }
      o->dps = d;
      dps_cap = cap;
    }
    char *key = make_key(name, pairs, np);
    if (!key) {
      outcome_fail(o, 500, "out of memory");
      goto done;
    }
    o->dps[o->ndps++] = (datapoint_t){key, strlen(name), (int)op, value};
  }
  outcome_answer(o, max_messages);

done:
  if (o->malformed) {
    /* Nothing of a malformed body is accepted. */
    for (size_t i = 0; i < o->ndps; i++) free(o->dps[i].key);
    o->ndps = 0;
    for (size_t i = 0; i < o->nmsgs; i++) free(o->msgs[i]);
    o->nmsgs = 0;
    o->received = 0;
  }
  for (size_t i = 0; i < nt; i++) free(table[i]);
  free(table);
  free(pairs);
  cJSON_Delete(root);
}

/* 0 ok, 1 larger than max, 2 not a valid gzip stream (or trailing bytes). */
static int gunzip(const char *in, size_t in_len, size_t max, char **out, size_t *out_len) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return 2;
  size_t cap = in_len * 4 + 1024, len = 0, in_left = in_len;
  if (cap > max + 1) cap = max + 1;
  char *buf = malloc(cap + 1);
  int result = 2;
  if (!buf) goto out;
  zs.next_in = (Bytef *)(uintptr_t)in;
  for (;;) {
    if (zs.avail_in == 0 && in_left > 0) {
      uInt chunk = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
      zs.avail_in = chunk;
      in_left -= chunk;
    }
    if (len == cap) {
      if (cap > max) {
        result = 1;
        goto out;
      }
      size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
      char *nb = realloc(buf, ncap + 1);
      if (!nb) goto out;
      buf = nb;
      cap = ncap;
    }
    size_t room = cap - len > (1u << 30) ? (1u << 30) : cap - len;
    zs.next_out = (Bytef *)buf + len;
    zs.avail_out = (uInt)room;
    int rc = inflate(&zs, Z_NO_FLUSH);
    len += room - zs.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_left == 0) goto out; /* truncated */
    if (rc != Z_OK && rc != Z_BUF_ERROR) goto out;
  }
  if (len > max) {
    result = 1;
    goto out;
  }
  if (zs.avail_in != 0 || in_left != 0) goto out; /* bytes after the gzip member */
  buf[len] = '\0';
  *out = buf;
  *out_len = len;
  buf = NULL;
  result = 0;
out:
  free(buf);
  inflateEnd(&zs);
  return result;
}

/* ------------------------------------------------------------------------ */
/* HTTP                                                                      */
/* ------------------------------------------------------------------------ */

typedef enum {
  EP_UPDATE,
  EP_STATS,
  EP_SERIES,
  EP_HISTORY,
  EP_FAIL,
  EP_RESET,
  EP_FILE,
  EP_NOT_FOUND,
  EP_METHOD
} ep_t;

typedef struct {
  ep_t ep;
  char *body;
  size_t len, cap, max_body;
  int too_large;
  int has_fail;
  fail_rule_t fail;       /* copy of the rule this request consumed */
  const agg_file_t *file; /* EP_FILE */
} req_t;

static ep_t route(const char *url, const char *method) {
  static const struct {
    const char *path, *method;
    ep_t ep;
  } routes[] = {{UPDATE_PATH, "POST", EP_UPDATE},     {"/api/v1/stats", "GET", EP_STATS},
                {"/api/v1/series", "GET", EP_SERIES}, {"/api/v1/history", "GET", EP_HISTORY},
                {"/api/v1/fail", "POST", EP_FAIL},    {"/api/v1/reset", "POST", EP_RESET}};
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    if (strcmp(url, routes[i].path) == 0)
      return strcmp(method, routes[i].method) == 0 ? routes[i].ep : EP_METHOD;
  }
  return EP_NOT_FOUND;
}

static void body_append(req_t *r, const char *data, size_t n) {
  if (r->too_large) return;
  if (r->len + n > r->max_body) {
    r->too_large = 1;
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    return;
  }
  if (r->len + n + 1 > r->cap) {
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < r->len + n + 1) cap *= 2;
    char *b = realloc(r->body, cap);
    if (!b) {
      r->too_large = 1; /* treated as too large: nothing better to say */
      free(r->body);
      r->body = NULL;
      r->len = r->cap = 0;
      return;
    }
    r->body = b;
    r->cap = cap;
  }
  memcpy(r->body + r->len, data, n);
  r->len += n;
  r->body[r->len] = '\0';
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body,
                             size_t len, const char *content_type) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
  if (!resp) return MHD_NO;
  if (content_type) MHD_add_response_header(resp, "Content-Type", content_type);
  enum MHD_Result ret = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, const char *body) {
  if (!body) return reply(c, 500, "", 0, NULL);
  return reply(c, status, body, strlen(body), "application/json");
}

static ssize_t huge_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  static const char head[] = "{\"type\":\"partial\",\"errorCount\":1,\"message\":[\"";
  (void)cls;
  if (pos >= AGG_HUGE_BODY_SIZE) return MHD_CONTENT_READER_END_OF_STREAM;
  size_t n = AGG_HUGE_BODY_SIZE - (size_t)pos;
  if (n > max) n = max;
  for (size_t i = 0; i < n; i++) {
    uint64_t p = pos + i;
    buf[i] = p < sizeof head - 1 ? head[p] : 'x';
  }
  return (ssize_t)n;
}

static int status_ok(int s) { return s >= 100 && s <= 599; }

/* Waits delay_ms unless the aggregator stops; 0 when the delay elapsed. */
static int delay_unless_stopping(agg_t *agg, int delay_ms) {
  if (delay_ms > AGG_MAX_DELAY_MS) delay_ms = AGG_MAX_DELAY_MS;
  struct timespec dl = deadline_after(delay_ms > 0 ? delay_ms / 1000.0 : 0);
  pthread_mutex_lock(&agg->mu);
  while (!agg->stopping) {
    if (pthread_cond_timedwait(&agg->cond, &agg->mu, &dl) == ETIMEDOUT) break;
  }
  int stopped = agg->stopping;
  pthread_mutex_unlock(&agg->mu);
  return stopped ? -1 : 0;
}

static void copy_header(char *dst, size_t cap, const char *v) {
  snprintf(dst, cap, "%s", v ? v : "");
}

/* Prints the summary of the finished interval and starts counting `now`. */
static void interval_roll_locked(agg_t *agg, unsigned long now) {
  if (now == agg->iv_no) return;
  if (agg->verbose && agg->iv_requests) {
    size_t updated = 0;
    for (size_t i = 0; i < agg->nbuckets; i++)
      for (series_t *s = agg->buckets[i]; s; s = s->next)
        if (s->interval == agg->iv_no) updated++;
    fprintf(agg->verbose,
            "[interval %lu] summary: %zu requests, %zu datapoints received, %zu accepted, %zu "
            "dropped, %zu series updated\n",
            agg->iv_no, agg->iv_requests, agg->iv_received, agg->iv_accepted, agg->iv_dropped,
            updated);
  }
  agg->iv_no = now;
  agg->iv_requests = agg->iv_received = agg->iv_accepted = agg->iv_dropped = 0;
}

static void count_status_locked(agg_t *agg, int status) {
  if (status == 200)
    agg->stats.ok_200++;
  else if (status == 202)
    agg->stats.partial_202++;
  else if (status == 400)
    agg->stats.bad_400++;
  else
    agg->stats.other_status++;
}

/* Folds accepted datapoints in and prints them. Caller holds the lock. */
static void aggregate_locked(agg_t *agg, const outcome_t *o, unsigned long iv) {
  char b1[40], b2[40], b3[40];
  for (size_t i = 0; i < o->ndps; i++) {
    const datapoint_t *d = &o->dps[i];
    series_t *s = series_get_or_add(agg, d->key, d->name_len);
    if (!s) continue;
    if (s->count && s->op != d->op) agg->stats.op_conflicts++;
    s->op = d->op;
    if (s->count == 0)
      s->total = d->value;
    else if (d->op == OP_ADD)
      s->total += d->value;
    else if (d->value > s->total)
      s->total = d->value;
    if (s->count == 0 || s->interval != iv)
      s->interval_value = d->value;
    else if (d->op == OP_ADD)
      s->interval_value += d->value;
    else if (d->value > s->interval_value)
      s->interval_value = d->value;
    s->interval = iv;
    s->last = d->value;
    s->count++;
    hist_note_locked(agg, s, iv, s->interval_value);
    if (agg->verbose) {
      const char *agg_word = d->op == OP_ADD ? "sum" : "max";
      fprintf(agg->verbose, "[interval %lu] %s %s %s (interval %s %s, total %s %s)\n", iv, s->key,
              d->op == OP_ADD ? "add" : "max", fmt_double(b1, d->value), agg_word,
              fmt_double(b2, s->interval_value), agg_word, fmt_double(b3, s->total));
    }
  }
}

/* Everything about one POST /api/v4/update, after its body arrived. */
static enum MHD_Result handle_update(agg_t *agg, struct MHD_Connection *c, req_t *r) {
  const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
  const char *ce = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
  const char *ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
  int is_gzip = ce && (strcasecmp(ce, "gzip") == 0 || strcasecmp(ce, "x-gzip") == 0);
  int is_plain = !ce || !*ce || strcasecmp(ce, "identity") == 0;

  int stopped = 0;
  if (r->has_fail && r->fail.kind == AGG_FAIL_DELAY)
    stopped = delay_unless_stopping(agg, r->fail.delay_ms) != 0;

  /* Decode and check the body (for every request, injected or not). */
  outcome_t o = {0};
  char *json = NULL;
  size_t json_len = 0;
  int gzip_error = 0, invalid_json = 0, strict_json = 0, too_large = r->too_large;
  size_t max_body, max_messages;
  int close_connection;
  pthread_mutex_lock(&agg->mu);
  max_body = agg->max_body;
  max_messages = agg->max_messages;
  close_connection = agg->close_connections;
  pthread_mutex_unlock(&agg->mu);

  if (too_large) {
    outcome_fail(&o, 413, "request body too large");
  } else if (!is_gzip && !is_plain) {
    outcome_fail(&o, 415, "unsupported Content-Encoding");
  } else if (is_gzip) {
    int rc = gunzip(r->body ? r->body : "", r->len, max_body, &json, &json_len);
    if (rc == 1) {
      too_large = 1;
      outcome_fail(&o, 413, "decompressed request body too large");
    } else if (rc != 0) {
      gzip_error = invalid_json = 1;
      outcome_fail(&o, 400, "invalid gzip body");
    }
  } else {
    json = r->body;
    json_len = r->len;
    r->body = NULL;
    if (!json) json = calloc(1, 1);
  }
  if (json && !o.malformed) {
    int nul = 0;
    strict_json = json_check((const unsigned char *)json, json_len, &nul);
    if (!strict_json) {
      invalid_json = 1;
      outcome_fail(&o, 400, "invalid payload: the body is not strict RFC 8259 JSON");
    } else if (nul) {
      outcome_fail(&o, 400, "invalid payload: \\u0000 in strings is not supported");
    }
  }

  /* Answer: injected or real. */
  int status = 0, drop = stopped;
  const char *body = NULL;
  size_t body_len = 0;
  int huge = 0, process = 1;
  if (r->has_fail && !drop) {
    int s = r->fail.status;
    switch (r->fail.kind) {
    case AGG_FAIL_STATUS: status = status_ok(s) ? s : 503; break;
    case AGG_FAIL_DELAY: status = status_ok(s) ? s : 0; break;
    case AGG_FAIL_DROP: drop = 1; break;
    case AGG_FAIL_HUGE_BODY:
      status = status_ok(s) ? s : 200;
      huge = 1;
      break;
    case AGG_FAIL_GARBAGE_BODY:
      status = status_ok(s) ? s : 200;
      body = garbage_body;
      body_len = sizeof garbage_body - 1;
      break;
    }
    if (status && status / 100 != 2) process = 0;
  }
  if (drop) process = 0;
  if (process && !o.malformed) decode_payload(json, json_len, max_messages, &o);
  if (!status && !drop) {
    status = o.status;
    body = o.body;
    body_len = body ? strlen(body) : 0;
  }

  /* Record it all. */
  pthread_mutex_lock(&agg->mu);
  unsigned long iv = interval_now(agg);
  interval_roll_locked(agg, iv);
  agg_stats_t *st = &agg->stats;
  st->requests++;
  st->body_bytes += r->len;
  st->last_body_bytes = r->len;
  agg->iv_requests++;
  copy_header(agg->last_ct, sizeof agg->last_ct, ct);
  copy_header(agg->last_ce, sizeof agg->last_ce, ce);
  copy_header(agg->last_ua, sizeof agg->last_ua, ua);
  if (is_gzip) st->gzip_bodies++;
  if (is_plain) st->plain_bodies++;
  if (invalid_json) st->invalid_json_bodies++;
  if (strict_json) st->strict_json_bodies++;
  if (gzip_error) st->gzip_errors++;
  if (too_large) st->too_large_bodies++;
  if (r->has_fail) st->injected_failures++;
  if (drop)
    st->dropped_connections++;
  else
    count_status_locked(agg, status);
  if (process && o.malformed && !too_large && !invalid_json && o.status == 400)
    st->malformed_payloads++;
  if (process && !o.malformed) {
    if (o.unsorted) st->unsorted_string_tables++;
    st->measurements_received += o.received;
    st->measurements_accepted += o.ndps;
    st->measurements_dropped += o.nmsgs;
    if (o.received > st->max_request_measurements) st->max_request_measurements = o.received;
    agg->iv_received += o.received;
    agg->iv_accepted += o.ndps;
    agg->iv_dropped += o.nmsgs;
    aggregate_locked(agg, &o, iv);
  }
  if (agg->verbose) {
    FILE *v = agg->verbose;
    for (size_t i = 0; process && i < o.nmsgs; i++)
      fprintf(v, "[interval %lu] dropped: %s\n", iv, o.msgs[i]);
    fprintf(v, "[interval %lu] request %zu: ", iv, st->requests);
    if (drop)
      fprintf(v, "connection dropped%s", stopped ? " (stopping)" : " (injected)");
    else
      fprintf(v, "%d", status);
    fprintf(v, ", %s body of %zu bytes", is_gzip ? "gzip" : is_plain ? "plain" : ce, r->len);
    if (r->has_fail) fprintf(v, ", injected failure");
    if (process && !o.malformed)
      fprintf(v, ", %zu datapoints: %zu accepted, %zu dropped\n", o.received, o.ndps, o.nmsgs);
    else if (o.malformed_msg)
      fprintf(v, ", not aggregated: %s\n", o.malformed_msg);
    else
      fprintf(v, ", not aggregated\n");
    fflush(v);
  }
  pthread_cond_broadcast(&agg->cond);
  pthread_mutex_unlock(&agg->mu);

  enum MHD_Result ret = MHD_NO;
  if (drop) {
    ret = MHD_NO; /* MHD closes the connection without an answer */
  } else if (huge) {
    struct MHD_Response *resp =
        MHD_create_response_from_callback(AGG_HUGE_BODY_SIZE, 64 * 1024, huge_reader, NULL, NULL);
    if (resp) {
      MHD_add_response_header(resp, "Content-Type", "application/json");
      ret = MHD_queue_response(c, (unsigned)status, resp);
      MHD_destroy_response(resp);
    }
  } else {
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        body_len, (void *)(uintptr_t)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
    if (resp) {
      if (body_len) MHD_add_response_header(resp, "Content-Type", "application/json");
      if (close_connection) MHD_add_response_header(resp, "Connection", "close");
      ret = MHD_queue_response(c, (unsigned)(status ? status : 500), resp);
      MHD_destroy_response(resp);
    }
  }
  free(json);
  outcome_free(&o);
  return ret;
}

static char *stats_json(const agg_stats_t *s) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
#define AGG_STAT(f) cJSON_AddNumberToObject(o, #f, (double)s->f)
  AGG_STAT(requests);
  AGG_STAT(ok_200);
  AGG_STAT(partial_202);
  AGG_STAT(bad_400);
  AGG_STAT(other_status);
  AGG_STAT(gzip_bodies);
  AGG_STAT(plain_bodies);
  AGG_STAT(invalid_json_bodies);
  AGG_STAT(measurements_received);
  AGG_STAT(measurements_accepted);
  AGG_STAT(measurements_dropped);
  AGG_STAT(dropped_connections);
  AGG_STAT(injected_failures);
  AGG_STAT(gzip_errors);
  AGG_STAT(too_large_bodies);
  AGG_STAT(malformed_payloads);
  AGG_STAT(unsorted_string_tables);
  AGG_STAT(max_request_measurements);
  AGG_STAT(op_conflicts);
  AGG_STAT(strict_json_bodies);
#undef AGG_STAT
  char *str = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return str;
}

/* {"name", "tags":{...}, "op", "value", "count", "last"} of a series copy
 * (whose tags string it cuts up); NULL when out of memory. */
static cJSON *series_object(series_t *s) {
  cJSON *o = cJSON_CreateObject(), *tags = cJSON_CreateObject();
  if (!o || !tags) {
    cJSON_Delete(o);
    cJSON_Delete(tags);
    return NULL;
  }
  cJSON_AddStringToObject(o, "name", s->name);
  /* "k=v,k=v": neither ',' nor '=' survives sanitization. */
  char *save = NULL;
  for (char *kv = strtok_r(s->tags, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(kv, '=');
    if (!eq) continue;
    *eq = '\0';
    cJSON_AddStringToObject(tags, kv, eq + 1);
  }
  cJSON_AddItemToObject(o, "tags", tags);
  cJSON_AddNumberToObject(o, "op", s->op);
  cJSON_AddNumberToObject(o, "value", s->total);
  cJSON_AddNumberToObject(o, "count", (double)s->count);
  cJSON_AddNumberToObject(o, "last", s->last);
  return o;
}

static char *series_json(agg_t *agg) {
  size_t n;
  pthread_mutex_lock(&agg->mu);
  series_t *snap = series_snapshot_locked(agg, &n, 0);
  pthread_mutex_unlock(&agg->mu);
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; arr && i < n; i++) {
    cJSON *o = series_object(&snap[i]);
    if (o) cJSON_AddItemToArray(arr, o);
  }
  series_snapshot_free(snap, n);
  char *s = arr ? cJSON_PrintUnformatted(arr) : NULL;
  cJSON_Delete(arr);
  return s;
}

static char *history_json(agg_t *agg) {
  size_t n, without;
  double step;
  pthread_mutex_lock(&agg->mu);
  series_t *snap = series_snapshot_locked(agg, &n, 1);
  unsigned long now = interval_now(agg);
  step = agg->step_s;
  without = agg->series_without_history;
  pthread_mutex_unlock(&agg->mu);
  cJSON *root = cJSON_CreateObject(), *arr = cJSON_CreateArray();
  if (!root || !arr) {
    cJSON_Delete(root);
    cJSON_Delete(arr);
    series_snapshot_free(snap, n);
    return NULL;
  }
  cJSON_AddNumberToObject(root, "step", step);
  cJSON_AddNumberToObject(root, "interval", (double)now);
  cJSON_AddNumberToObject(root, "max_points", AGG_HISTORY_POINTS);
  cJSON_AddNumberToObject(root, "series_without_history", (double)without);
  for (size_t i = 0; i < n; i++) {
    cJSON *o = series_object(&snap[i]), *pts = cJSON_CreateArray();
    if (!o || !pts) {
      cJSON_Delete(o);
      cJSON_Delete(pts);
      continue;
    }
    const hist_t *h = snap[i].hist;
    for (size_t k = 0; h && k < h->n; k++) {
      const hist_point_t *p = &h->pts[(h->start + k) % AGG_HISTORY_POINTS];
      cJSON *pair = cJSON_CreateArray();
      if (!pair) continue;
      cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)p->iv));
      cJSON_AddItemToArray(pair, cJSON_CreateNumber(p->value));
      cJSON_AddItemToArray(pts, pair);
    }
    cJSON_AddItemToObject(o, "points", pts);
    cJSON_AddItemToArray(arr, o);
  }
  series_snapshot_free(snap, n);
  cJSON_AddItemToObject(root, "series", arr);
  char *s = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  return s;
}

/* Parses a non-negative decimal integer; -1 when absent or invalid. */
static long parse_long(const char *s, long max) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < 0 || v > max) return -1;
  return v;
}

static enum MHD_Result handle_fail(agg_t *agg, struct MHD_Connection *c) {
  static const struct {
    const char *name;
    agg_fail_kind_t kind;
  } kinds[] = {{"status", AGG_FAIL_STATUS},
               {"delay", AGG_FAIL_DELAY},
               {"drop", AGG_FAIL_DROP},
               {"huge", AGG_FAIL_HUGE_BODY},
               {"garbage", AGG_FAIL_GARBAGE_BODY}};
  const char *count_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "count");
  const char *kind_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "kind");
  const char *status_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status");
  const char *delay_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "delay_ms");
  long count = count_s ? parse_long(count_s, 1000000000L) : 1;
  long status = status_s ? parse_long(status_s, 999) : 0;
  long delay = delay_s ? parse_long(delay_s, AGG_MAX_DELAY_MS) : 0;
  int kind = -1;
  for (size_t i = 0; kind_s && i < sizeof kinds / sizeof kinds[0]; i++)
    if (strcmp(kind_s, kinds[i].name) == 0) kind = (int)kinds[i].kind;
  if (count < 0 || status < 0 || delay < 0 || kind < 0) {
    char *b = error_body("usage: POST /api/v1/fail?count=K&kind=status|delay|drop|huge|garbage"
                         "&status=S&delay_ms=D (count >= 0, delay_ms <= 60000)");
    enum MHD_Result r = reply_json(c, 400, b);
    free(b);
    return r;
  }
  agg_fail_next(agg, (size_t)count, (agg_fail_kind_t)kind, (int)status, (int)delay);
  return reply_json(c, 200, "{}");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  agg_t *agg = cls;
  req_t *r = *con_cls;
  (void)version;
  if (!r) {
    r = calloc(1, sizeof *r);
    if (!r) return MHD_NO;
    r->ep = route(url, method);
    pthread_mutex_lock(&agg->mu);
    r->max_body = agg->max_body;
    if (r->ep == EP_NOT_FOUND && agg->files && strcmp(method, "GET") == 0) {
      const char *path = strcmp(url, "/index.html") == 0 ? "/" : url;
      for (const agg_file_t *f = agg->files; f->path; f++) {
        if (strcmp(f->path, path) == 0) {
          r->ep = EP_FILE;
          r->file = f;
          break;
        }
      }
    }
    if (r->ep == EP_UPDATE && agg->fail_head) {
      fail_rule_t *f = agg->fail_head;
      r->has_fail = 1;
      r->fail = *f;
      if (--f->remaining == 0) {
        agg->fail_head = f->next;
        if (!agg->fail_head) agg->fail_tail = NULL;
        free(f);
      }
    }
    pthread_mutex_unlock(&agg->mu);
    *con_cls = r;
    return MHD_YES;
  }
  if (*upload_data_size) {
    if (r->ep == EP_UPDATE) body_append(r, upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  switch (r->ep) {
  case EP_UPDATE: return handle_update(agg, c, r);
  case EP_STATS: {
    agg_stats_t s;
    agg_stats(agg, &s);
    char *b = stats_json(&s);
    enum MHD_Result ret = reply_json(c, 200, b);
    free(b);
    return ret;
  }
  case EP_SERIES: {
    char *b = series_json(agg);
    enum MHD_Result ret = reply_json(c, 200, b);
    free(b);
    return ret;
  }
  case EP_HISTORY: {
    char *b = history_json(agg);
    enum MHD_Result ret = reply_json(c, 200, b);
    free(b);
    return ret;
  }
  case EP_FILE: {
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->file->size, (void *)(uintptr_t)r->file->data, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", r->file->content_type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
  }
  case EP_FAIL: return handle_fail(agg, c);
  case EP_RESET: agg_reset(agg); return reply_json(c, 200, "{}");
  case EP_METHOD:
    return reply_json(c, 405, "{\"type\":\"error\",\"message\":\"method not allowed\"}");
  case EP_NOT_FOUND: break;
  }
  return reply_json(c, 404, "{\"type\":\"error\",\"message\":\"not found\"}");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  req_t *r = *con_cls;
  if (!r) return;
  free(r->body);
  free(r);
  *con_cls = NULL;
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                */
/* ------------------------------------------------------------------------ */

static char *dup_pem(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static void agg_free(agg_t *agg) {
  pthread_cond_destroy(&agg->cond);
  pthread_mutex_destroy(&agg->mu);
  free(agg->tls_key);
  free(agg->tls_cert);
  free(agg);
}

/* Both agg_start and agg_start_tls: key and cert are NULL for plain http. */
static agg_t *start_server(int port, const char *key_pem, const char *cert_pem) {
  if (port < 0 || port > 65535) return NULL;
  agg_t *agg = calloc(1, sizeof *agg);
  if (!agg) return NULL;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int ok = pthread_cond_init(&agg->cond, &ca) == 0;
  pthread_condattr_destroy(&ca);
  if (!ok) {
    free(agg);
    return NULL;
  }
  pthread_mutex_init(&agg->mu, NULL);
  agg->start = mono_now();
  agg->step_s = 5.0;
  agg->max_body = AGG_DEFAULT_MAX_BODY_SIZE;
  agg->iv_no = 1;
  int tls = key_pem && cert_pem;
  if (tls) {
    agg->tls_key = dup_pem(key_pem);
    agg->tls_cert = dup_pem(cert_pem);
    if (!agg->tls_key || !agg->tls_cert || MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
      agg_free(agg);
      return NULL;
    }
  }

  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  unsigned int flags =
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
  if (tls)
    agg->daemon = MHD_start_daemon(
        flags | MHD_USE_TLS, (uint16_t)port, NULL, NULL, on_request, agg, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, agg,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_HTTPS_MEM_KEY, agg->tls_key,
        MHD_OPTION_HTTPS_MEM_CERT, agg->tls_cert, MHD_OPTION_END);
  else
    agg->daemon =
        MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, agg, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, agg,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_END);
  const union MHD_DaemonInfo *info =
      agg->daemon ? MHD_get_daemon_info(agg->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
  if (!info || !info->port) {
    if (agg->daemon) MHD_stop_daemon(agg->daemon);
    agg_free(agg);
    return NULL;
  }
  agg->port = info->port;
  snprintf(agg->url, sizeof agg->url, "%s://127.0.0.1:%d%s", tls ? "https" : "http", agg->port,
           UPDATE_PATH);
  return agg;
}

agg_t *agg_start(int port) { return start_server(port, NULL, NULL); }

agg_t *agg_start_tls(int port, const char *key_pem, const char *cert_pem) {
  if (!key_pem || !cert_pem) return NULL;
  return start_server(port, key_pem, cert_pem);
}

int agg_port(const agg_t *agg) { return agg ? agg->port : 0; }

const char *agg_url(const agg_t *agg) { return agg ? agg->url : ""; }

void agg_stop(agg_t *agg) {
  if (!agg) return;
  pthread_mutex_lock(&agg->mu);
  agg->stopping = 1;
  pthread_cond_broadcast(&agg->cond);
  pthread_mutex_unlock(&agg->mu);
  MHD_stop_daemon(agg->daemon);
  /* No handler runs any more. */
  interval_roll_locked(agg, agg->iv_no + 1);
  if (agg->verbose) fflush(agg->verbose);
  series_clear(agg);
  fail_clear_locked(agg);
  agg_free(agg);
}

int agg_get(agg_t *agg, const char *name, const char *const *tags, double *out_value) {
  agg_series_info_t info;
  if (agg_get_series(agg, name, tags, &info) != 0) return -1;
  if (out_value) *out_value = info.value;
  return 0;
}

/* Caller holds the lock. */
static int get_series_locked(agg_t *agg, const char *key, agg_series_info_t *out) {
  series_t *s = series_find(agg, key, hash_str(key));
  if (!s) return -1;
  if (out) {
    out->op = s->op;
    out->value = s->total;
    out->last = s->last;
    out->count = s->count;
    out->interval_value = s->interval_value;
    out->interval = s->interval;
  }
  return 0;
}

int agg_get_series(agg_t *agg, const char *name, const char *const *tags, agg_series_info_t *out) {
  if (!agg) return -1;
  char *key = lookup_key(name, tags);
  if (!key) return -1;
  pthread_mutex_lock(&agg->mu);
  int rc = get_series_locked(agg, key, out);
  pthread_mutex_unlock(&agg->mu);
  free(key);
  return rc;
}

size_t agg_series_count(agg_t *agg) {
  if (!agg) return 0;
  pthread_mutex_lock(&agg->mu);
  size_t n = agg->nseries;
  pthread_mutex_unlock(&agg->mu);
  return n;
}

void agg_stats(agg_t *agg, agg_stats_t *out) {
  if (!out) return;
  if (!agg) {
    memset(out, 0, sizeof *out);
    return;
  }
  pthread_mutex_lock(&agg->mu);
  *out = agg->stats;
  pthread_mutex_unlock(&agg->mu);
}

int agg_wait_requests(agg_t *agg, size_t n, double timeout_s) {
  if (!agg) return -1;
  struct timespec dl = deadline_after(timeout_s);
  int rc = -1;
  pthread_mutex_lock(&agg->mu);
  for (;;) {
    if (agg->stats.requests >= n) {
      rc = 0;
      break;
    }
    if (agg->stopping || pthread_cond_timedwait(&agg->cond, &agg->mu, &dl) == ETIMEDOUT) {
      rc = agg->stats.requests >= n ? 0 : -1;
      break;
    }
  }
  pthread_mutex_unlock(&agg->mu);
  return rc;
}

int agg_wait_value(agg_t *agg, const char *name, const char *const *tags, double expected,
                   double timeout_s) {
  if (!agg) return -1;
  char *key = lookup_key(name, tags);
  if (!key) return -1;
  struct timespec dl = deadline_after(timeout_s);
  agg_series_info_t info;
  int rc = -1;
  pthread_mutex_lock(&agg->mu);
  for (;;) {
    if (get_series_locked(agg, key, &info) == 0 && info.value == expected) {
      rc = 0;
      break;
    }
    if (agg->stopping || pthread_cond_timedwait(&agg->cond, &agg->mu, &dl) == ETIMEDOUT) {
      rc = get_series_locked(agg, key, &info) == 0 && info.value == expected ? 0 : -1;
      break;
    }
  }
  pthread_mutex_unlock(&agg->mu);
  free(key);
  return rc;
}

void agg_fail_next(agg_t *agg, size_t k, agg_fail_kind_t kind, int status, int delay_ms) {
  if (!agg || k == 0) return;
  if ((int)kind < (int)AGG_FAIL_STATUS || (int)kind > (int)AGG_FAIL_GARBAGE_BODY) return;
  fail_rule_t *r = calloc(1, sizeof *r);
  if (!r) return;
  r->kind = kind;
  r->status = status;
  r->delay_ms = delay_ms < 0 ? 0 : delay_ms > AGG_MAX_DELAY_MS ? AGG_MAX_DELAY_MS : delay_ms;
  r->remaining = k;
  pthread_mutex_lock(&agg->mu);
  if (agg->fail_tail)
    agg->fail_tail->next = r;
  else
    agg->fail_head = r;
  agg->fail_tail = r;
  pthread_mutex_unlock(&agg->mu);
}

void agg_fail_clear(agg_t *agg) {
  if (!agg) return;
  pthread_mutex_lock(&agg->mu);
  fail_clear_locked(agg);
  pthread_mutex_unlock(&agg->mu);
}

size_t agg_fail_pending(agg_t *agg) {
  if (!agg) return 0;
  size_t n = 0;
  pthread_mutex_lock(&agg->mu);
  for (fail_rule_t *r = agg->fail_head; r; r = r->next) n += r->remaining;
  pthread_mutex_unlock(&agg->mu);
  return n;
}

void agg_reset(agg_t *agg) {
  if (!agg) return;
  pthread_mutex_lock(&agg->mu);
  series_clear(agg);
  fail_clear_locked(agg);
  memset(&agg->stats, 0, sizeof agg->stats);
  agg->iv_requests = agg->iv_received = agg->iv_accepted = agg->iv_dropped = 0;
  agg->last_ct[0] = agg->last_ce[0] = agg->last_ua[0] = '\0';
  pthread_cond_broadcast(&agg->cond);
  pthread_mutex_unlock(&agg->mu);
}

void agg_set_verbose(agg_t *agg, FILE *out) {
  if (!agg) return;
  pthread_mutex_lock(&agg->mu);
  agg->verbose = out;
  pthread_mutex_unlock(&agg->mu);
}

void agg_set_interval_step(agg_t *agg, double seconds) {
  if (!agg || !(seconds > 0) || !isfinite(seconds)) return;
  pthread_mutex_lock(&agg->mu);
  agg->step_s = seconds;
  agg->iv_no = interval_now(agg);
  pthread_mutex_unlock(&agg->mu);
}

void agg_set_max_body_size(agg_t *agg, size_t bytes) {
  if (!agg || bytes == 0) return;
  pthread_mutex_lock(&agg->mu);
  agg->max_body = bytes;
  pthread_mutex_unlock(&agg->mu);
}

void agg_set_close_connections(agg_t *agg, int on) {
  if (!agg) return;
  pthread_mutex_lock(&agg->mu);
  agg->close_connections = on != 0;
  pthread_mutex_unlock(&agg->mu);
}

void agg_set_max_messages(agg_t *agg, size_t n) {
  if (!agg) return;
  pthread_mutex_lock(&agg->mu);
  agg->max_messages = n;
  pthread_mutex_unlock(&agg->mu);
}

void agg_foreach(agg_t *agg,
                 void (*fn)(const char *name, const char *tags, int op, double value, void *ctx),
                 void *ctx) {
  if (!agg || !fn) return;
  size_t n;
  pthread_mutex_lock(&agg->mu);
  series_t *snap = series_snapshot_locked(agg, &n, 0);
  pthread_mutex_unlock(&agg->mu);
  for (size_t i = 0; i < n; i++) fn(snap[i].name, snap[i].tags, snap[i].op, snap[i].total, ctx);
  series_snapshot_free(snap, n);
}

void agg_last_headers(agg_t *agg, char *content_type, size_t ct_len, char *content_encoding,
                      size_t ce_len, char *user_agent, size_t ua_len) {
  if (!agg) return;
  pthread_mutex_lock(&agg->mu);
  if (content_type && ct_len) copy_header(content_type, ct_len, agg->last_ct);
  if (content_encoding && ce_len) copy_header(content_encoding, ce_len, agg->last_ce);
  if (user_agent && ua_len) copy_header(user_agent, ua_len, agg->last_ua);
  pthread_mutex_unlock(&agg->mu);
}

void agg_serve_files(agg_t *agg, const agg_file_t *files) {
  if (!agg) return;
  pthread_mutex_lock(&agg->mu);
  agg->files = files;
  pthread_mutex_unlock(&agg->mu);
}
