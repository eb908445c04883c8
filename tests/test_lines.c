/*
 * spectatord's line protocol, white-box: output locations, the text of a
 * line (sanitizing, options, common tags, values that read back exactly),
 * lines joined into datagrams, the sample rings, and what a line snapshot
 * of every meter type is. The end-to-end tests over real sockets are in
 * test_outputs.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "id.h"
#include "lines.h"
#include "location.h"
#include "numfmt.h"
#include "samples.h"
#include "test_util.h"

/* ------------------------------------------------------------------------ */
/* Locations                                                                 */
/* ------------------------------------------------------------------------ */

static void location(const char *s, spectator__out_kind_t kind, const char *text) {
  spectator__location_t loc;
  const char *why = NULL;
  if (spectator__location_parse(s, &loc, &why) != 0) fail_msg("'%s' refused: %s", s, why);
  assert_int_equal(loc.kind, kind);
  assert_string_equal(loc.text, text);
}

static void location_parse_accepts_every_documented_string(void **state) {
  (void)state;
  location("none", SPECTATOR__OUT_NONE, "none");
  location("memory", SPECTATOR__OUT_MEMORY, "memory");
  location("stdout", SPECTATOR__OUT_STDOUT, "stdout");
  location("stderr", SPECTATOR__OUT_STDERR, "stderr");
  location("udp", SPECTATOR__OUT_UDP, "udp://127.0.0.1:1234");
  location("unix", SPECTATOR__OUT_UNIX, "unix:///run/spectatord/spectatord.unix");
  location(" file:///var/log/metrics.txt\n", SPECTATOR__OUT_FILE, "file:///var/log/metrics.txt");
  location("udp://localhost:8125", SPECTATOR__OUT_UDP, "udp://localhost:8125");
  location("udp://[::1]:1234", SPECTATOR__OUT_UDP, "udp://[::1]:1234");
  location("unix:///tmp/s.sock", SPECTATOR__OUT_UNIX, "unix:///tmp/s.sock");
  location(NULL, SPECTATOR__OUT_AGGREGATOR, "");
  location("  ", SPECTATOR__OUT_AGGREGATOR, "");

  spectator__location_t loc;
  const char *why;
  assert_int_equal(spectator__location_parse("udp://10.1.2.3:65535", &loc, &why), 0);
  assert_string_equal(loc.host, "10.1.2.3");
  assert_int_equal(loc.port, 65535);
  assert_int_equal(spectator__location_parse("udp://[fe80::1%eth0]:9", &loc, &why), 0);
  assert_string_equal(loc.host, "fe80::1%eth0");
  assert_int_equal(loc.port, 9);
  assert_int_equal(spectator__location_parse("unix", &loc, &why), 0);
  assert_string_equal(loc.path, "/run/spectatord/spectatord.unix");
}

static void location_parse_refuses_what_it_does_not_know_and_says_why(void **state) {
  (void)state;
  char long_unix[200] = "unix:///";
  memset(long_unix + 8, 'a', 120);
  const char *bad[] = {"UDP",          "udp:",         "udp://",        "udp://host",
                       "udp://:1234",  "udp://h:0",    "udp://h:65536", "udp://h:12a",
                       "udp://::1:80", "udp://[::1]",  "udp://[::1]80", "udp://h o:1",
                       "file://",      "file://rel/p", "file:relative", "unix://",
                       "unix://rel",   long_unix,      "tcp://h:1",     "http://h:1/x",
                       "memory2",      "none none",    "file:///a\tb"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    spectator__location_t loc;
    const char *why = NULL;
    if (spectator__location_parse(bad[i], &loc, &why) == 0) fail_msg("'%s' was accepted", bad[i]);
    assert_non_null(why);
    assert_int_equal(loc.kind, SPECTATOR__OUT_AGGREGATOR);
  }
}

/* ------------------------------------------------------------------------ */
/* Values                                                                    */
/* ------------------------------------------------------------------------ */

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void line_values_read_back_to_the_same_double(void **state) {
  (void)state;
  const double fixed[] = {0,
                          1,
                          0.1,
                          1.5,
                          -2.25,
                          1e-9,
                          3e-300,
                          1e300,
                          4.9e-324,
                          1e15,
                          123456789.123,
                          0.30000000000000004,
                          DBL_MAX,
                          -DBL_MAX,
                          9007199254740993.0};
  char buf[SPECTATOR__MAX_NUMBER_LEN + 8];
  for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
    size_t n = spectator__line_value(buf, fixed[i]);
    buf[n] = '\0';
    assert_true(strtod(buf, NULL) == fixed[i]);
  }
  for (int i = 0; i < 100000; i++) {
    uint64_t bits = next_rand();
    double v = spectator__b2d(bits);
    if (!isfinite(v)) continue;
    size_t n = spectator__line_value(buf, v);
    buf[n] = '\0';
    if (strtod(buf, NULL) != v) fail_msg("%.17g written as %s", v, buf);
    assert_null(strchr(buf, ' '));
  }
  size_t n = spectator__line_value(buf, NAN);
  buf[n] = '\0';
  assert_string_equal(buf, "NaN");
}

/* spectatord reads a duration's seconds and keeps (int64_t)(seconds * 1e9). */
static void durations_are_written_as_seconds_that_spectatord_reads_back_to_the_nanosecond(
    void **state) {
  (void)state;
  char buf[SPECTATOR__MAX_NUMBER_LEN + 8];
  for (int64_t ns = 0; ns < 300000; ns++) {
    size_t n = spectator__line_seconds(buf, ns);
    buf[n] = '\0';
    if ((int64_t)(strtod(buf, NULL) * 1e9) != ns)
      fail_msg("%lld ns written as %s", (long long)ns, buf);
  }
  /* Exact below 2^22 s (a double's steps there are below a nanosecond)... */
  for (int i = 0; i < 200000; i++) {
    int64_t ns = (int64_t)(next_rand() % (uint64_t)4194304000000000LL);
    size_t n = spectator__line_seconds(buf, ns);
    buf[n] = '\0';
    if ((int64_t)(strtod(buf, NULL) * 1e9) != ns)
      fail_msg("%lld ns written as %s", (long long)ns, buf);
  }
  /* ...and within a nanosecond up to 2^53 ns. */
  for (int i = 0; i < 100000; i++) {
    int64_t ns = (int64_t)(next_rand() % (uint64_t)(1LL << 53));
    size_t n = spectator__line_seconds(buf, ns);
    buf[n] = '\0';
    int64_t back = (int64_t)(strtod(buf, NULL) * 1e9);
    if (back < ns - 1 || back > ns + 1) fail_msg("%lld ns written as %s", (long long)ns, buf);
  }
  size_t n = spectator__line_seconds(buf, 1500000);
  buf[n] = '\0';
  assert_string_equal(buf, "0.0015");
  n = spectator__line_seconds(buf, 42000000000LL);
  buf[n] = '\0';
  assert_string_equal(buf, "42");
}

/* ------------------------------------------------------------------------ */
/* Lines and datagrams                                                       */
/* ------------------------------------------------------------------------ */

/* Every line of a list of datagrams, in order, as one string joined by '\n'. */
static char *joined(spectator__datagram_t *d, size_t *lines) {
  size_t len = 0;
  *lines = 0;
  for (spectator__datagram_t *x = d; x; x = x->next) len += x->len + 1;
  char *s = calloc(1, len + 1), *p = s;
  for (spectator__datagram_t *x = d; x; x = x->next) {
    assert_true(x->len <= SPECTATOR__DATAGRAM_MAX);
    assert_true(x->nlines > 0);
    memcpy(p, x->data, x->len);
    p += x->len;
    *p++ = '\n';
    *lines += x->nlines;
  }
  *p = '\0';
  return s;
}

static spectator__datagram_t *flush_take(spectator__lines_t *lb) {
  spectator__lines_flush(lb);
  return spectator__lines_take(lb);
}

static void free_dgrams(spectator__lines_t *lb, spectator__datagram_t *d) {
  spectator__lines_recycle(lb, d);
  spectator__lines_free(lb);
}

static void a_line_has_the_type_the_option_the_sanitized_id_and_the_value(void **state) {
  (void)state;
  spectator__lines_t lb;
  memset(&lb, 0, sizeof(lb));
  /* ':' ',' '=' space newline, UTF-8 and an invalid byte in every part. */
  spectator_id_t *id =
      spectator_id_new("req:lat ency", SPECTATOR_TAGS("st=at us", "2,xx\n", "caf\xc3\xa9",
                                                      "\xff\x41", "ok", "-._~^Az09"));
  assert_true(spectator__lines_add(&lb, 'c', 0, id, "3", 1));
  assert_true(spectator__lines_add(&lb, 'g', 60, id, "NaN", 3));
  size_t n;
  spectator__datagram_t *d = flush_take(&lb);
  char *s = joined(d, &n);
  assert_int_equal(n, 2);
  /* Tags in the id's order (sorted by key); the sanitized key "caf_" sorts as
   * the raw key did. */
  assert_string_equal(s, "c:req_lat_ency,caf_=_A,ok=-._~^Az09,st_at_us=2_xx_:3\n"
                         "g,60:req_lat_ency,caf_=_A,ok=-._~^Az09,st_at_us=2_xx_:NaN\n");
  free(s);
  free_dgrams(&lb, d);
  spectator_id_free(id);
}

static void common_tags_come_first_and_give_way_to_the_ids_own(void **state) {
  (void)state;
  const char *common[] = {"nf.process", "nf.process", "worker_1", "team", "team", "a_b", NULL};
  spectator__lines_t lb;
  memset(&lb, 0, sizeof(lb));
  lb.common = common;
  spectator_id_t *a = spectator_id_new("x", SPECTATOR_TAGS("k", "v"));
  spectator_id_t *b = spectator_id_new("y", SPECTATOR_TAGS("team", "mine"));
  spectator__lines_add(&lb, 'c', 0, a, "1", 1);
  spectator__lines_add(&lb, 'c', 0, b, "2", 1);
  size_t n;
  spectator__datagram_t *d = flush_take(&lb);
  char *s = joined(d, &n);
  assert_string_equal(s, "c:x,nf.process=worker_1,team=a_b,k=v:1\n"
                         "c:y,nf.process=worker_1,team=mine:2\n");
  free(s);
  free_dgrams(&lb, d);
  spectator_id_free(a);
  spectator_id_free(b);
}

static void lines_are_joined_into_datagrams_of_at_most_64_KiB_and_never_split(void **state) {
  (void)state;
  spectator__lines_t lb;
  memset(&lb, 0, sizeof(lb));
  char name[64];
  char *expected = malloc(100000 * 64), *e = expected;
  for (int i = 0; i < 100000; i++) {
    snprintf(name, sizeof(name), "meter.%d", i % 977);
    spectator_id_t *id = spectator_id_new(name, SPECTATOR_TAGS("i", name));
    char v[32];
    int vl = snprintf(v, sizeof(v), "%d", i);
    assert_true(spectator__lines_add(&lb, 't', 0, id, v, (size_t)vl));
    e += sprintf(e, "t:%s,i=%s:%d\n", name, name, i);
    spectator_id_free(id);
  }
  size_t n, dgrams = 0, fullish = 0;
  spectator__datagram_t *d = flush_take(&lb);
  for (spectator__datagram_t *x = d; x; x = x->next) {
    dgrams++;
    /* a datagram ends only when the next line does not fit */
    if (x->next) {
      assert_true(x->len > SPECTATOR__DATAGRAM_MAX - 40);
      fullish++;
    }
    assert_true(x->data[0] == 't');
  }
  char *s = joined(d, &n);
  assert_int_equal(n, 100000);
  assert_string_equal(s, expected);
  assert_true(dgrams > 1);
  assert_int_equal(fullish, dgrams - 1);
  free(s);
  free(expected);
  free_dgrams(&lb, d);
}

/* A line of exactly SPECTATOR__DATAGRAM_MAX bytes fills a datagram of its
 * own; one byte more can never be sent, and is counted. */
static void a_line_of_a_full_datagram_is_sent_alone_and_a_longer_one_is_dropped(void **state) {
  (void)state;
  spectator__lines_t lb;
  memset(&lb, 0, sizeof(lb));
  /* "g:n,k=<v>:1" is 8 bytes plus the value */
  size_t vlen = SPECTATOR__DATAGRAM_MAX - 8;
  char *val = malloc(vlen + 2);
  memset(val, 'v', vlen + 1);
  val[vlen] = '\0';
  spectator_id_t *small = spectator_id_new("s", NULL);
  spectator_id_t *fits = spectator_id_new("n", SPECTATOR_TAGS("k", val));
  val[vlen] = 'v';
  val[vlen + 1] = '\0';
  spectator_id_t *over = spectator_id_new("n", SPECTATOR_TAGS("k", val));
  /* Raw bytes that shrink when sanitized: a line that only fits once sanitized. */
  char *emoji = malloc(4 * (vlen / 2) + 1);
  for (size_t i = 0; i < vlen / 2; i++) memcpy(emoji + 4 * i, "\xf0\x9f\x98\x80", 4);
  emoji[4 * (vlen / 2)] = '\0';
  spectator_id_t *shrinks = spectator_id_new("n", SPECTATOR_TAGS("k", emoji));

  assert_true(spectator__lines_add(&lb, 'c', 0, small, "1", 1));
  assert_true(spectator__lines_add(&lb, 'g', 0, fits, "1", 1));
  assert_false(spectator__lines_add(&lb, 'g', 0, over, "1", 1));
  assert_int_equal(lb.too_long, 1);
  assert_true(spectator__lines_add(&lb, 'c', 0, small, "2", 1));
  /* 4 bytes an emoji, written as one or two '_': it fits either way */
  assert_true(spectator__lines_add(&lb, 'g', 0, shrinks, "1", 1));
  assert_int_equal(lb.too_long, 1);
  spectator__datagram_t *d = flush_take(&lb);
  size_t sizes[8], k = 0, lines = 0;
  for (spectator__datagram_t *x = d; x && k < 8; x = x->next) {
    sizes[k++] = x->len;
    lines += x->nlines;
    assert_true(x->len <= SPECTATOR__DATAGRAM_MAX);
  }
  assert_int_equal(lines, 4);
  assert_true(k == 3 || k == 4);
  assert_int_equal(sizes[0], 5); /* "c:s:1" */
  assert_int_equal(sizes[1], SPECTATOR__DATAGRAM_MAX);
  assert_int_equal(d->next->nlines, 1);
  assert_memory_equal(d->next->data, "g:n,k=vvv", 9);
  assert_memory_equal(d->next->next->data, "c:s:2", 5);
  free_dgrams(&lb, d);
  spectator_id_free(small);
  spectator_id_free(fits);
  spectator_id_free(over);
  spectator_id_free(shrinks);
  free(val);
  free(emoji);
}

static void lines_beyond_the_datagrams_that_may_wait_are_dropped_and_counted(void **state) {
  (void)state;
  spectator__lines_t lb;
  memset(&lb, 0, sizeof(lb));
  lb.max_ready = 2;
  char *val = malloc(40001);
  memset(val, 'x', 40000);
  val[40000] = '\0';
  spectator_id_t *id = spectator_id_new("big", SPECTATOR_TAGS("k", val));
  for (int i = 0; i < 5; i++) spectator__lines_add(&lb, 'c', 0, id, "1", 1);
  /* two full datagrams wait, a third is being filled: the rest is dropped */
  assert_int_equal(lb.no_room, 2);
  spectator__datagram_t *d = flush_take(&lb);
  size_t n;
  free(joined(d, &n));
  assert_int_equal(n, 3);
  free_dgrams(&lb, d);
  spectator_id_free(id);
  free(val);
}

/* ------------------------------------------------------------------------ */
/* Sample rings                                                              */
/* ------------------------------------------------------------------------ */

typedef struct {
  uint64_t sum, n;
  uint64_t last[64]; /* per producer: its values must come in order */
  bool in_order;
} drained_t;

static void take(void *ctx, const void *meter, uint64_t value) {
  drained_t *d = ctx;
  uintptr_t who = (uintptr_t)meter;
  if (value <= d->last[who]) d->in_order = false;
  d->last[who] = value;
  d->sum += value;
  d->n++;
}

/* Everything published so far. */
static size_t drain_all(spectator__samples_t *s, spectator__sample_fn fn, void *ctx) {
  spectator__samples_mark_t m;
  spectator__samples_mark(s, &m);
  bool done = false;
  size_t n = spectator__samples_drain(s, &m, 0, fn, ctx, &done);
  assert_true(done);
  return n;
}

static void a_full_ring_drops_and_counts_and_a_drain_frees_it(void **state) {
  (void)state;
  spectator__samples_t *s = spectator__samples_new(1, 16);
  assert_int_equal(spectator__samples_capacity(s), 16);
  for (uint64_t i = 1; i <= 20; i++) spectator__samples_push(s, (void *)1, i);
  assert_int_equal(spectator__samples_take_dropped(s), 4);
  assert_int_equal(spectator__samples_take_dropped(s), 0);
  drained_t d = {.in_order = true};
  assert_int_equal(drain_all(s, take, &d), 16);
  assert_int_equal(d.sum, 136); /* 1 + ... + 16 */
  /* every slot is free again, for many laps */
  for (uint64_t i = 21; i <= 2000; i++) {
    spectator__samples_push(s, (void *)1, i);
    if (i % 7 == 0) drain_all(s, take, &d);
  }
  drain_all(s, take, &d);
  assert_int_equal(spectator__samples_take_dropped(s), 0);
  assert_int_equal(d.n, 2000 - 4);
  assert_true(d.in_order);
  spectator__samples_free(s);
}

typedef struct {
  spectator__samples_t *s;
  uintptr_t who;
  uint64_t n;
  _Atomic int *finished;
} producer_t;

static void *produce(void *arg) {
  producer_t *p = arg;
  for (uint64_t i = 1; i <= p->n; i++) spectator__samples_push(p->s, (void *)p->who, i);
  atomic_fetch_add(p->finished, 1);
  return NULL;
}

/* Threads push while one consumer drains: every sample is taken once, each
 * producer's in order, or dropped and counted. */
static void concurrent_producers_lose_nothing_without_counting_it(void **state) {
  (void)state;
  spectator__samples_t *s = spectator__samples_new(2, 256);
  enum { T = 6, N = 200000 };
  pthread_t th[T];
  producer_t p[T];
  _Atomic int finished = 0;
  for (int i = 0; i < T; i++) {
    p[i] = (producer_t){s, (uintptr_t)i + 1, N, &finished};
    pthread_create(&th[i], NULL, produce, &p[i]);
  }
  drained_t d = {.in_order = true};
  uint64_t dropped = 0;
  while (atomic_load(&finished) < T) {
    drain_all(s, take, &d);
    dropped += spectator__samples_take_dropped(s);
  }
  for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
  drain_all(s, take, &d);
  dropped += spectator__samples_take_dropped(s);
  assert_true(d.in_order);
  assert_int_equal(d.n + dropped, (uint64_t)T * N);
  spectator__samples_free(s);
}

typedef struct {
  spectator__samples_t *s;
  _Atomic bool stop;
  _Atomic uint64_t pushed;
} refill_t;

static void *refill(void *arg) {
  refill_t *r = arg;
  for (uint64_t i = 1; !atomic_load(&r->stop) && i < 20000000; i++) {
    spectator__samples_push(r->s, (void *)1, i);
    atomic_fetch_add(&r->pushed, 1);
  }
  return NULL;
}

/* A consumer slower than the producer, as writing a line is. */
static void count_one(void *ctx, const void *meter, uint64_t value) {
  (void)meter;
  (void)value;
  for (volatile int spin = 0; spin < 200; spin++) {
  }
  (*(size_t *)ctx)++;
}

/* A drain takes what was published before its mark, however fast producers
 * refill the slots it frees (a drain that followed them would never end, and
 * would hold its lock meanwhile); a budget takes at most that many. */
static void a_drain_stops_at_its_mark_and_its_budget_while_producers_refill(void **state) {
  (void)state;
  spectator__samples_t *s = spectator__samples_new(1, 1024);
  refill_t r = {s, false, 0};
  pthread_t th;
  pthread_create(&th, NULL, refill, &r);
  while (atomic_load(&r.pushed) < 100000) {
  }
  for (int round = 0; round < 200; round++) {
    spectator__samples_mark_t m;
    spectator__samples_mark(s, &m);
    size_t n = 0;
    bool done = false;
    size_t k = spectator__samples_drain(s, &m, round % 2 ? 100 : 0, count_one, &n, &done);
    assert_int_equal(k, n);
    if (round % 2) {
      assert_true(n <= 100);
      if (n < 100) assert_true(done);
      while (!done) spectator__samples_drain(s, &m, 100, count_one, &n, &done);
    }
    assert_true(
        n <= 1024 + 1024); /* at most a ring before the mark, twice over with the budget rounds */
  }
  atomic_store(&r.stop, true);
  pthread_join(th, NULL);
  spectator__samples_free(s);
}

/* ------------------------------------------------------------------------ */
/* A line snapshot of every meter type                                       */
/* ------------------------------------------------------------------------ */

static spectator_registry_t *memory_reg(double meter_ttl_s) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.output_location = "memory";
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  cfg.meter_ttl_s = meter_ttl_s;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  assert_non_null(r);
  return r;
}

/* All lines of the memory output as one string. */
static char *all_lines(spectator_registry_t *r) {
  spectator_lines_t *ls = spectator_registry_lines(r);
  assert_non_null(ls);
  size_t len = 1;
  for (size_t i = 0; i < spectator_lines_count(ls); i++)
    len += strlen(spectator_lines_get(ls, i)) + 1;
  char *s = calloc(1, len), *p = s;
  for (size_t i = 0; i < spectator_lines_count(ls); i++)
    p += sprintf(p, "%s\n", spectator_lines_get(ls, i));
  spectator_lines_free(ls);
  return s;
}

static void every_meter_type_has_its_symbol_and_its_interval_value(void **state) {
  (void)state;
  spectator_registry_t *r = memory_reg(900);
  spectator_counter_add(spectator_registry_counter(r, "c", NULL), 2.5);
  spectator_counter_increment(spectator_registry_counter(r, "c", NULL));
  spectator_gauge_set(spectator_registry_gauge(r, "g", NULL), 7);
  spectator_gauge_set(spectator_registry_gauge_with_ttl(r, "gt", NULL, 60), -1.25);
  spectator_gauge_set(spectator_registry_gauge_with_ttl(r, "gf", NULL, 0.2), 1);
  spectator_max_gauge_set(spectator_registry_max_gauge(r, "m", NULL), 3);
  spectator_max_gauge_set(spectator_registry_max_gauge(r, "m", NULL), 9.5);
  spectator_monotonic_counter_t *mc = spectator_registry_monotonic_counter(r, "mc", NULL);
  spectator_monotonic_counter_set(mc, 100);
  spectator_timer_record(spectator_registry_timer(r, "t", NULL), 0.25);
  spectator_timer_record_ns(spectator_registry_timer(r, "t", NULL), 1500);
  spectator_dist_summary_record(spectator_registry_dist_summary(r, "d", NULL), 1024);
  spectator_percentile_timer_record(spectator_registry_percentile_timer(r, "pt", NULL, 0, 10), 2.5);
  spectator_percentile_dist_summary_record(
      spectator_registry_percentile_dist_summary(r, "pd", NULL, 0, 1000), 12.5);
  char *s = all_lines(r);
  /* samples first (taken at the start of the publish), then meters in the
   * order they were made; no statistic tag anywhere. */
  assert_string_equal(s, "t:t:0.25\nt:t:1.5e-06\nd:d:1024\nT:pt:2.5\nD:pd:12.5\n"
                         "c:c:3.5\ng:g:7\ng,60:gt:-1.25\ng,1:gf:1\nm:m:9.5\nC:mc:100\n");
  free(s);
  /* The next interval: the monotonic counter's value set (spectatord
   * computes the increase); a gauge not set again sends nothing (spectatord
   * keeps reporting it); NaN stops it. */
  spectator_registry_lines_clear(r);
  spectator_monotonic_counter_set(mc, 142.5);
  spectator_gauge_set(spectator_registry_gauge(r, "gt", NULL), NAN);
  s = all_lines(r);
  assert_string_equal(s, "g,60:gt:NaN\nC:mc:142.5\n");
  free(s);
  /* Nothing recorded: nothing written. */
  spectator_registry_lines_clear(r);
  s = all_lines(r);
  assert_string_equal(s, "");
  free(s);
  /* The registry's own TTL other than spectatord's 15 minutes goes on every gauge. */
  spectator_registry_t *r2 = memory_reg(120);
  spectator_gauge_set(spectator_registry_gauge(r2, "g", NULL), 1);
  s = all_lines(r2);
  assert_string_equal(s, "g,120:g:1\n");
  free(s);
  spectator_registry_free(r2);
  spectator_registry_free(r);
}

/* The kinds spectatord knows as A and U, and the long task timer it does not
 * know: an age gauge sends the Unix time of its last set when it was set; the
 * uint64 monotonic counter the value set, exact as an integer, when it was
 * set; a long task timer its two statistics as gauges every interval, kept
 * apart by their statistic tag. */
static void age_gauges_uint64_counters_and_long_task_timers_have_their_lines(void **state) {
  (void)state;
  tu_clock_t clk;
  tu_clock_set(&clk, 5 * 1000000000LL);
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.output_location = "memory";
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  tu_clock_install(&cfg, &clk);
  spectator_registry_t *r = spectator_registry_new(&cfg);
  spectator_age_gauge_t *a = spectator_registry_age_gauge(r, "last.success", NULL);
  spectator_age_gauge_t *never = spectator_registry_age_gauge(r, "never.set", NULL);
  (void)never;
  spectator_monotonic_counter_u64_t *u = spectator_registry_monotonic_counter_u64(r, "bytes", NULL);
  spectator_long_task_timer_t *ltt = spectator_registry_long_task_timer(r, "job", NULL);
  spectator_age_gauge_set(a, 1700000000.25);
  spectator_monotonic_counter_u64_set(u, UINT64_MAX - 10); /* beyond 2^53: exact */
  int64_t task = spectator_long_task_timer_start(ltt);
  assert_true(task >= 0);
  tu_clock_advance(&clk, 3 * 1000000000LL);
  char *s = all_lines(r);
  assert_string_equal(s, "A:last.success:1700000000.25\nU:bytes:18446744073709551605\n"
                         "g:job,statistic=activeTasks:1\ng:job,statistic=duration:3\n");
  free(s);
  spectator_registry_lines_clear(r);
  /* the counter wraps around: spectatord takes 4 after 2^64 - 11 as an
   * increase of 15 */
  spectator_monotonic_counter_u64_set(u, 4);
  tu_clock_advance(&clk, 1000000000LL);
  s = all_lines(r);
  assert_string_equal(s, "U:bytes:4\ng:job,statistic=activeTasks:1\n"
                         "g:job,statistic=duration:4\n");
  free(s);
  spectator_registry_free(r);
}

/* With sample rings, a timer's or a summary's interval state stays empty:
 * getters and snapshots have nothing (the lines have it all). */
static void timers_and_summaries_keep_no_interval_state_when_sent_as_samples(void **state) {
  (void)state;
  spectator_registry_t *r = memory_reg(900);
  spectator_timer_t *t = spectator_registry_timer(r, "t", NULL);
  spectator_dist_summary_t *d = spectator_registry_dist_summary(r, "d", NULL);
  spectator_timer_record(t, 1);
  spectator_dist_summary_record(d, 2);
  assert_int_equal(spectator_timer_count(t), 0);
  assert_int_equal(spectator_dist_summary_count(d), 0);
  spectator_measurements_t *ms = spectator_registry_snapshot(r);
  assert_int_equal(spectator_measurements_count(ms), 0);
  spectator_measurements_free(ms);
  char *s = all_lines(r);
  assert_string_equal(s, "t:t:1\nd:d:2\n");
  free(s);
  spectator_registry_free(r);
}

/* A negative, NaN or infinite value is not sent as a sample: spectatord keeps
 * the statistics (the aggregator's timers count a negative duration, SPEC 2). */
static void negative_nan_and_infinite_samples_are_not_sent(void **state) {
  (void)state;
  spectator_registry_t *r = memory_reg(900);
  spectator_timer_t *t = spectator_registry_timer(r, "t", NULL);
  spectator_percentile_timer_t *pt = spectator_registry_percentile_timer(r, "pt", NULL, 0, 10);
  spectator_dist_summary_t *d = spectator_registry_dist_summary(r, "d", NULL);
  spectator_percentile_dist_summary_t *pd =
      spectator_registry_percentile_dist_summary(r, "pd", NULL, 0, 100);
  const double bad[] = {-1, -0.5, NAN, INFINITY, -INFINITY};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    spectator_timer_record(t, bad[i]);
    spectator_percentile_timer_record(pt, bad[i]);
    spectator_dist_summary_record(d, bad[i]);
    spectator_percentile_dist_summary_record(pd, bad[i]);
  }
  spectator_timer_record_ns(t, -1);
  spectator_percentile_timer_record_ns(pt, -1);
  spectator_timer_record(t, 0.5);
  spectator_timer_record_ns(t, 250000000);
  spectator_percentile_timer_record(pt, 1);
  spectator_dist_summary_record(d, 3);
  spectator_percentile_dist_summary_record(pd, 4);
  assert_int_equal(spectator_timer_count(t), 0);
  assert_int_equal(spectator_percentile_timer_count(pt), 0);
  char *s = all_lines(r);
  assert_string_equal(s, "t:t:0.5\nt:t:0.25\nT:pt:1\nd:d:3\nD:pd:4\n");
  free(s);
  spectator_registry_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(location_parse_accepts_every_documented_string),
      cmocka_unit_test(location_parse_refuses_what_it_does_not_know_and_says_why),
      cmocka_unit_test(line_values_read_back_to_the_same_double),
      cmocka_unit_test(
          durations_are_written_as_seconds_that_spectatord_reads_back_to_the_nanosecond),
      cmocka_unit_test(a_line_has_the_type_the_option_the_sanitized_id_and_the_value),
      cmocka_unit_test(common_tags_come_first_and_give_way_to_the_ids_own),
      cmocka_unit_test(lines_are_joined_into_datagrams_of_at_most_64_KiB_and_never_split),
      cmocka_unit_test(a_line_of_a_full_datagram_is_sent_alone_and_a_longer_one_is_dropped),
      cmocka_unit_test(lines_beyond_the_datagrams_that_may_wait_are_dropped_and_counted),
      cmocka_unit_test(a_full_ring_drops_and_counts_and_a_drain_frees_it),
      cmocka_unit_test(concurrent_producers_lose_nothing_without_counting_it),
      cmocka_unit_test(a_drain_stops_at_its_mark_and_its_budget_while_producers_refill),
      cmocka_unit_test(every_meter_type_has_its_symbol_and_its_interval_value),
      cmocka_unit_test(age_gauges_uint64_counters_and_long_task_timers_have_their_lines),
      cmocka_unit_test(timers_and_summaries_keep_no_interval_state_when_sent_as_samples),
      cmocka_unit_test(negative_nan_and_infinite_samples_are_not_sent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
