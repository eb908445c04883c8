/* The payload encoder: exact bytes, sanitization, merging, batching, strict JSON. */
#include <cjson/cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "deps.h"
#include "encoder.h"
#include "numfmt.h"
#include "registry.h"
#include "sanitize.h"
#include "sink.h"
#include "test_util.h"

/* Records borrow their ids (as they borrow a meter's in a registry): the ids
 * made here live until the test's teardown. */
static spectator_id_t **ids;
static size_t nids, ids_cap;

static int free_ids(void **state) {
  (void)state;
  for (size_t i = 0; i < nids; i++) spectator_id_free(ids[i]);
  free(ids);
  ids = NULL;
  nids = ids_cap = 0;
  return 0;
}

static spectator__stat_t stat_code(const char *stat) {
  if (!stat) return SPECTATOR__STAT_NONE;
  for (int i = 1; i < SPECTATOR__STAT_COUNT_OF_NAMES; i++)
    if (strcmp(spectator__stat_names[i], stat) == 0) return (spectator__stat_t)i;
  fail_msg("unknown statistic %s", stat);
  return SPECTATOR__STAT_NONE;
}

/* "T0042" -> bucket 0x42 of a timer; "D0001" -> bucket 1 of a summary. */
static unsigned pct_code(const char *pct) {
  if (!pct) return 0;
  unsigned idx = (unsigned)strtoul(pct + 1, NULL, 16);
  return (idx + 1) | (pct[0] == 'D' ? SPECTATOR__PCT_SUMMARY : 0);
}

/* A record of (name, tags) with statistic stat (NULL: the id's own) and
 * percentile tag pct, whose op must come out as op (records take it from
 * the final statistic). */
static void add(spectator__records_t *rs, const char *name, const char *const *tags,
                const char *stat, const char *pct, int op, double v) {
  spectator_id_t *id = spectator_id_new(name, tags);
  assert_non_null(id);
  if (nids == ids_cap) {
    ids_cap = ids_cap ? 2 * ids_cap : 64;
    ids = realloc(ids, ids_cap * sizeof(*ids));
    assert_non_null(ids);
  }
  ids[nids++] = id;
  size_t before = rs->len;
  spectator__records_add(rs, id, stat_code(stat), pct_code(pct), v);
  if (rs->len > before) assert_int_equal(rs->tail->items[rs->tail->len - 1].op, op);
}

/* gunzip a whole gzip member; *out is malloc'd. */
static void gunzip(const char *in, size_t len, char **out, size_t *out_len) {
  z_stream zs;
  memset(&zs, 0, sizeof(zs));
  assert_int_equal(inflateInit2(&zs, 16 + 15), Z_OK);
  size_t cap = 4 * len + 1024;
  char *buf = malloc(cap);
  zs.next_in = (Bytef *)in;
  zs.avail_in = (uInt)len;
  int rc;
  do {
    if (zs.total_out == cap) {
      cap *= 2;
      buf = realloc(buf, cap);
    }
    zs.next_out = (Bytef *)buf + zs.total_out;
    zs.avail_out = (uInt)(cap - zs.total_out);
    rc = inflate(&zs, Z_NO_FLUSH);
  } while (rc == Z_OK);
  assert_int_equal(rc, Z_STREAM_END);
  assert_int_equal(zs.avail_in, 0); /* one member, nothing after it */
  *out = buf;
  *out_len = zs.total_out;
  inflateEnd(&zs);
}

static char *encode_one(spectator__records_t *rs, const char *const *common, size_t batch,
                        size_t expect_batches) {
  spectator__payload_t pl;
  assert_int_equal(spectator__encode(rs, common, batch, SPECTATOR__ENCODE_RAW, &pl), 0);
  assert_int_equal(pl.len, expect_batches);
  char *s = NULL;
  if (pl.len) {
    s = malloc(pl.batches[0].len + 1);
    memcpy(s, pl.batches[0].data, pl.batches[0].len);
    s[pl.batches[0].len] = '\0';
  }
  spectator__payload_free(&pl);
  return s;
}

static void encoder_writes_exact_string_table_and_records(void **state) {
  (void)state;
  spectator__records_t rs;
  spectator__records_init(&rs);
  add(&rs, "req", SPECTATOR_TAGS("b", "2"), "count", NULL, SPECTATOR_OP_ADD, 3);
  char *s = encode_one(&rs, SPECTATOR_TAGS("a", "1"), 100, 1);
  /* strings sorted: 1 2 a b count name req statistic */
  assert_string_equal(s, "[8,\"1\",\"2\",\"a\",\"b\",\"count\",\"name\",\"req\",\"statistic\","
                         "4,2,0,3,1,5,6,7,4,0,3]");
  free(s);
  spectator__records_free(&rs);
}

static void encoder_sanitizes_and_merges_ids_that_collide(void **state) {
  (void)state;
  spectator__records_t rs;
  spectator__records_init(&rs);
  add(&rs, "a b", SPECTATOR_TAGS("k", "v\xc3\xa9"), "count", NULL, SPECTATOR_OP_ADD, 1);
  add(&rs, "a_b", SPECTATOR_TAGS("k", "v_"), "count", NULL, SPECTATOR_OP_ADD, 2);
  add(&rs, "m", NULL, "max", NULL, SPECTATOR_OP_MAX, 5);
  add(&rs, "m", NULL, "max", NULL, SPECTATOR_OP_MAX, 7);
  char *s = encode_one(&rs, NULL, 100, 1);
  assert_string_equal(s, "[8,\"a_b\",\"count\",\"k\",\"m\",\"max\",\"name\",\"statistic\","
                         "\"v_\",3,2,7,5,0,6,1,0,3,"
                         "2,5,3,6,4,10,7]");
  free(s);
  spectator__records_free(&rs);
}

static void encoder_id_tags_override_common_tags_and_statistic_overrides_both(void **state) {
  (void)state;
  spectator__records_t rs;
  spectator__records_init(&rs);
  add(&rs, "x", SPECTATOR_TAGS("nf.app", "mine", "statistic", "own"), "percentile", "T0042",
      SPECTATOR_OP_ADD, 1);
  spectator__payload_t pl;
  assert_int_equal(
      spectator__encode(&rs, SPECTATOR_TAGS("nf.app", "common"), 10, SPECTATOR__ENCODE_RAW, &pl),
      0);
  cJSON *j = cJSON_ParseWithLength(pl.batches[0].data, pl.batches[0].len);
  assert_non_null(j);
  int n = cJSON_GetArrayItem(j, 0)->valueint;
  const char *tbl[16];
  for (int i = 0; i < n; i++) tbl[i] = cJSON_GetArrayItem(j, 1 + i)->valuestring;
  int t = cJSON_GetArrayItem(j, 1 + n)->valueint;
  assert_int_equal(t, 4); /* name, nf.app, percentile, statistic */
  char seen[256] = "";
  for (int i = 0; i < t; i++) {
    strcat(seen, tbl[cJSON_GetArrayItem(j, 2 + n + 2 * i)->valueint]);
    strcat(seen, "=");
    strcat(seen, tbl[cJSON_GetArrayItem(j, 3 + n + 2 * i)->valueint]);
    strcat(seen, ";");
  }
  assert_string_equal(seen, "name=x;nf.app=mine;percentile=T0042;statistic=percentile;");
  for (int i = 0; i < n; i++) assert_string_not_equal(tbl[i], "common");
  cJSON_Delete(j);
  spectator__payload_free(&pl);
  spectator__records_free(&rs);
}

static void encoder_splits_25000_measurements_into_batches_of_10000(void **state) {
  (void)state;
  spectator__records_t rs;
  spectator__records_init(&rs);
  char name[32];
  for (int i = 0; i < 25000; i++) {
    snprintf(name, sizeof(name), "m%05d", i);
    add(&rs, name, NULL, "count", NULL, SPECTATOR_OP_ADD, i + 1);
  }
  spectator__payload_t pl;
  assert_int_equal(spectator__encode(&rs, NULL, 10000, SPECTATOR__ENCODE_RAW, &pl), 0);
  assert_int_equal(pl.len, 3);
  assert_int_equal(pl.batches[0].count, 10000);
  assert_int_equal(pl.batches[1].count, 10000);
  assert_int_equal(pl.batches[2].count, 5000);
  assert_int_equal(pl.measurements, 25000);
  double sum = 0;
  for (size_t b = 0; b < pl.len; b++) {
    cJSON *j = cJSON_ParseWithLength(pl.batches[b].data, pl.batches[b].len);
    assert_non_null(j);
    /* cJSON arrays are lists: index them once */
    int size = cJSON_GetArraySize(j);
    cJSON **item = malloc((size_t)size * sizeof(*item));
    int k = 0;
    for (cJSON *it = j->child; it; it = it->next) item[k++] = it;
    int n = item[0]->valueint;
    /* each batch's table holds only its own names plus count/name/statistic */
    assert_int_equal(n, (int)pl.batches[b].count + 3);
    for (int pos = 1 + n; pos < size;) {
      int t = item[pos]->valueint;
      pos += 1 + 2 * t + 1;
      sum += item[pos]->valuedouble;
      pos++;
    }
    free(item);
    cJSON_Delete(j);
  }
  assert_true(sum == 25000.0 * 25001.0 / 2);
  spectator__payload_free(&pl);
  spectator__records_free(&rs);
}

/* v as the encoder writes it, NUL-terminated. */
static void number(char buf[SPECTATOR__MAX_NUMBER_LEN + 1], double v) {
  buf[spectator__put_number(buf, v)] = '\0';
}

static void encoder_writes_numbers_that_read_back_exactly(void **state) {
  (void)state;
  const double values[] = {0.1,
                           1.0 / 3,
                           1e-300,
                           1.7976931348623157e308,
                           4.9e-324,
                           123456789012345678.0,
                           9007199254740993.0,
                           0.5,
                           1e21,
                           2.5e-7};
  for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
    char buf[40];
    number(buf, values[i]);
    assert_true(strtod(buf, NULL) == values[i]);
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    assert_true(cJSON_IsNumber(j));
    cJSON_Delete(j);
  }
  char buf[40];
  number(buf, 42);
  assert_string_equal(buf, "42");
  number(buf, 0.1);
  assert_string_equal(buf, "0.1");
  number(buf, -0.0);
  assert_string_equal(buf, "0");
  number(buf, -2.5);
  assert_string_equal(buf, "-2.5");
}

/* A program may run with a locale whose decimal separator is a comma (it
 * called setlocale(LC_ALL, "")); JSON and spectatord's lines need a point. */
static void encoder_writes_a_decimal_point_whatever_the_locale(void **state) {
  (void)state;
  if (!tu_comma_locale()) {
    tu_locale_reset();
    skip(); /* no German locale, and no locale sources to make one */
  }
  const double values[] = {1.0 / 3, 0.1 + 0.2, 1e-300, 1e21, 2.5e-7, -1.7976931348623157e308};
  char buf[sizeof(values) / sizeof(values[0])][40];
  for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) number(buf[i], values[i]);
  tu_locale_reset();
  for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
    assert_null(strchr(buf[i], ','));
    assert_true(strtod(buf[i], NULL) == values[i]);
  }
}

/* Records never hold a value JSON cannot carry: NaN is dropped, a value
 * beyond the doubles is the largest finite one. */
static void encoder_never_writes_a_non_finite_value(void **state) {
  (void)state;
  spectator__records_t rs;
  spectator__records_init(&rs);
  add(&rs, "a", NULL, "gauge", NULL, SPECTATOR_OP_MAX, NAN);
  add(&rs, "b", NULL, "gauge", NULL, SPECTATOR_OP_MAX, INFINITY);
  add(&rs, "c", NULL, "gauge", NULL, SPECTATOR_OP_MAX, -INFINITY);
  assert_int_equal(rs.len, 2);
  char *s = encode_one(&rs, NULL, 10, 1);
  assert_string_equal(s, "[5,\"b\",\"c\",\"gauge\",\"name\",\"statistic\","
                         "2,3,0,4,2,10,1.7976931348623157e+308,"
                         "2,3,1,4,2,10,-1.7976931348623157e+308]");
  free(s);
  spectator__records_free(&rs);
}

/* Two ids that sanitize alike merge by adding their values: a sum beyond the
 * doubles is sent as +-DBL_MAX instead of being lost. */
static void encoder_merged_adds_saturate_at_dbl_max(void **state) {
  (void)state;
  spectator__records_t rs;
  spectator__records_init(&rs);
  add(&rs, "a b", NULL, "count", NULL, SPECTATOR_OP_ADD, 1e308);
  add(&rs, "a_b", NULL, "count", NULL, SPECTATOR_OP_ADD, 1e308);
  add(&rs, "n m", SPECTATOR_TAGS("statistic", "count"), NULL, NULL, SPECTATOR_OP_ADD, -1e308);
  add(&rs, "n_m", SPECTATOR_TAGS("statistic", "count"), NULL, NULL, SPECTATOR_OP_ADD, -1e308);
  add(&rs, "n m", SPECTATOR_TAGS("statistic", "count"), NULL, NULL, SPECTATOR_OP_ADD, 1e308);
  spectator__payload_t pl;
  assert_int_equal(spectator__encode(&rs, NULL, 10, SPECTATOR__ENCODE_RAW, &pl), 0);
  assert_int_equal(pl.dropped, 0);
  assert_int_equal(pl.measurements, 2);
  const char *want = "[5,\"a_b\",\"count\",\"n_m\",\"name\",\"statistic\","
                     "2,3,0,4,1,0,1.7976931348623157e+308,"
                     "2,3,2,4,1,0,-7.976931348623157e+307]";
  assert_int_equal(pl.batches[0].len, strlen(want));
  assert_memory_equal(pl.batches[0].data, want, strlen(want));
  spectator__payload_free(&pl);
}

/* As every Spectator client: the op comes from the final statistic tag, an
 * id's own included: add for count, totalAmount, totalTime, totalOfSquares
 * and percentile, max for anything else. */
static void encoder_op_follows_the_final_statistic_tag(void **state) {
  (void)state;
  spectator__records_t rs;
  spectator__records_init(&rs);
  const struct {
    const char *stat;
    int op;
  } cases[] = {{"count", 0},      {"totalAmount", 0}, {"totalTime", 0}, {"totalOfSquares", 0},
               {"percentile", 0}, {"gauge", 10},      {"max", 10},      {"activeTasks", 10},
               {"duration", 10},  {"Count", 10},      {"custom", 10}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    add(&rs, "g", SPECTATOR_TAGS("statistic", cases[i].stat), NULL, NULL, cases[i].op, 1);
  /* a statistic set by the meter overrides the id's own, and gives the op */
  add(&rs, "t", SPECTATOR_TAGS("statistic", "gauge"), "totalTime", NULL, SPECTATOR_OP_ADD, 2);
  add(&rs, "t", SPECTATOR_TAGS("statistic", "count"), "max", NULL, SPECTATOR_OP_MAX, 2);
  char *s = encode_one(&rs, NULL, 100, 1);
  assert_string_equal(s, "[15,\"Count\",\"activeTasks\",\"count\",\"custom\",\"duration\","
                         "\"g\",\"gauge\",\"max\",\"name\",\"percentile\",\"statistic\","
                         "\"t\",\"totalAmount\",\"totalOfSquares\",\"totalTime\","
                         "2,8,5,10,2,0,1,"
                         "2,8,5,10,12,0,1,"
                         "2,8,5,10,14,0,1,"
                         "2,8,5,10,13,0,1,"
                         "2,8,5,10,9,0,1,"
                         "2,8,5,10,6,10,1,"
                         "2,8,5,10,7,10,1,"
                         "2,8,5,10,1,10,1,"
                         "2,8,5,10,4,10,1,"
                         "2,8,5,10,0,10,1,"
                         "2,8,5,10,3,10,1,"
                         "2,8,11,10,14,0,2,"
                         "2,8,11,10,7,10,2]");
  free(s);
  spectator__records_free(&rs);
}

/* Every statistic a meter sets gets the op its name has. */
static void every_statistic_a_meter_sets_has_the_op_of_its_name(void **state) {
  (void)state;
  spectator_id_t *id = spectator_id_new("s", NULL);
  assert_non_null(id);
  for (int i = 1; i < SPECTATOR__STAT_COUNT_OF_NAMES; i++) {
    spectator__records_t rs;
    spectator__records_init(&rs);
    spectator__records_add(&rs, id, (spectator__stat_t)i, 0, 1);
    assert_int_equal(rs.len, 1);
    if (rs.head->items[0].op != spectator__stat_op(spectator__stat_names[i]))
      print_error("statistic %s\n", spectator__stat_names[i]);
    assert_int_equal(rs.head->items[0].op, spectator__stat_op(spectator__stat_names[i]));
    spectator__records_free(&rs);
  }
  assert_int_equal(spectator__stat_op("activeTasks"), SPECTATOR_OP_MAX);
  assert_int_equal(spectator__stat_op("duration"), SPECTATOR_OP_MAX);
  assert_int_equal(spectator__stat_op(NULL), SPECTATOR_OP_MAX);
  spectator_id_free(id);
}

/* The same from real meters: a registry's snapshot records, encoded as a
 * publish encodes them. */
static void encoder_sends_meters_with_the_op_of_their_statistic_tag(void **state) {
  (void)state;
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  assert_non_null(reg);
  spectator_gauge_set(spectator_registry_gauge(reg, "g", SPECTATOR_TAGS("statistic", "count")), 3);
  spectator_counter_add(spectator_registry_counter(reg, "c", SPECTATOR_TAGS("statistic", "max")),
                        4);
  spectator__records_t rs;
  spectator__records_init(&rs);
  spectator__cursor_t cur = {0};
  spectator__registry_collect(reg, &cur, &rs, SIZE_MAX);
  char *s = encode_one(&rs, NULL, 10, 1);
  spectator__registry_collect_end(reg, &cur);
  assert_string_equal(s, "[6,\"c\",\"count\",\"g\",\"max\",\"name\",\"statistic\","
                         "2,4,2,5,1,0,3,"
                         "2,4,0,5,3,10,4]");
  free(s);
  spectator_registry_free(reg);
}

static void sanitize_replaces_everything_outside_the_allowed_set(void **state) {
  (void)state;
  char out[64];
  assert_int_equal(spectator__sanitize("Az09-._^~ /:{}\"\\\xff", out), 17);
  assert_string_equal(out, "Az09-._^~________");
  /* a broken sequence is one underscore per byte */
  assert_int_equal(spectator__sanitize("\xc3x\xe2\x82", out), 4);
  assert_string_equal(out, "_x__");
}

/* Characters count as the aggregator (Java) counts them: in UTF-16 units. */
static void sanitize_counts_characters_in_utf16_units(void **state) {
  (void)state;
  const struct {
    const char *in, *out;
  } cases[] = {
      /* U+00E9 (2 bytes), U+20AC (3), U+1F600 (4: outside the BMP, two units) */
      {"\xc3\xa9", "_"},
      {"\xe2\x82\xac", "_"},
      {"\xf0\x9f\x98\x80", "__"},
      {"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z", "a____z"},
      /* the first and last code points of each length */
      {"\xc2\x80", "_"},
      {"\xdf\xbf", "_"},
      {"\xe0\xa0\x80", "_"},
      {"\xef\xbf\xbf", "_"},
      {"\xf0\x90\x80\x80", "__"},
      {"\xf4\x8f\xbf\xbf", "__"},
      /* not well formed: one underscore per byte */
      {"\xc0\xaf", "__"},              /* overlong '/' */
      {"\xe0\x80\xaf", "___"},         /* overlong '/' */
      {"\xf0\x80\x80\xaf", "____"},    /* overlong '/' */
      {"\xed\xa0\x80", "___"},         /* a surrogate, U+D800 */
      {"\xf4\x90\x80\x80", "____"},    /* above U+10FFFF */
      {"\xf5\x80\x80\x80", "____"},    /* no such lead byte */
      {"\xf0\x9f\x98x", "___x"},       /* cut short */
      {"\x80\xbf", "__"},              /* continuation bytes alone */
      {"\xf0\x9f\x98\x80\x80", "___"}, /* one emoji, one stray byte */
  };
  char out[64], buf[64];
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    size_t n = spectator__sanitize(cases[i].in, out);
    if (strcmp(out, cases[i].out) != 0) print_error("case %zu\n", i);
    assert_string_equal(out, cases[i].out);
    assert_int_equal(n, strlen(cases[i].out));
    /* in place */
    strcpy(buf, cases[i].in);
    assert_int_equal(spectator__sanitize(buf, buf), n);
    assert_string_equal(buf, cases[i].out);
  }
}

/* And the same through the encoder: exact bytes of the body. */
static void encoder_sends_an_emoji_as_two_underscores(void **state) {
  (void)state;
  spectator__records_t rs;
  spectator__records_init(&rs);
  add(&rs, "cache\xf0\x9f\x94\xa5", SPECTATOR_TAGS("k", "caf\xc3\xa9"), "count", NULL,
      SPECTATOR_OP_ADD, 1);
  char *s = encode_one(&rs, NULL, 10, 1);
  assert_string_equal(s, "[6,\"cache__\",\"caf_\",\"count\",\"k\",\"name\",\"statistic\","
                         "3,3,1,4,0,5,2,0,1]");
  free(s);
  spectator__records_free(&rs);
}

/* in through a gzip sink whose first output guess is for a body of `hint`
 * bytes, as the encoder writes a batch. */
static char *sink_gzip(const char *in, size_t n, size_t hint, size_t *len) {
  assert_int_equal(spectator__dep_load(SPECTATOR__DEP_ZLIB), 0);
  z_stream zs;
  assert_int_equal(spectator__deflate_init(&zs, 1), Z_OK);
  char *window = malloc(SPECTATOR__SINK_WINDOW);
  spectator__sink_t k;
  assert_true(spectator__sink_open(&k, &zs, window, hint));
  assert_true(spectator__sink_put(&k, in, n));
  char *gz;
  size_t raw;
  assert_true(spectator__sink_close(&k, true, &gz, len, &raw));
  assert_int_equal(raw, n);
  deflateEnd(&zs);
  free(window);
  return gz;
}

static void gzip_sink_output_inflates_to_the_input(void **state) {
  (void)state;
  const char *in = "[1,\"a\",1,0,0,0,1]";
  char *gz, *back;
  size_t len, back_len;
  gz = sink_gzip(in, strlen(in), strlen(in), &len);
  assert_true((unsigned char)gz[0] == 0x1f && (unsigned char)gz[1] == 0x8b);
  gunzip(gz, len, &back, &back_len);
  assert_int_equal(back_len, strlen(in));
  assert_memory_equal(back, in, back_len);
  free(back);
  free(gz);
  /* Nothing in, a valid empty member out; and an incompressible megabyte,
   * which outgrows the first output guess. */
  gz = sink_gzip("", 0, 0, &len);
  gunzip(gz, len, &back, &back_len);
  assert_int_equal(back_len, 0);
  free(back);
  free(gz);
  size_t big = 1 << 20;
  char *noise = malloc(big);
  uint64_t x = 88172645463325252ULL;
  for (size_t i = 0; i < big; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    noise[i] = (char)x;
  }
  gz = sink_gzip(noise, big, 0, &len);
  assert_true(len > big / 8 + 1024);
  gunzip(gz, len, &back, &back_len);
  assert_int_equal(back_len, big);
  assert_memory_equal(back, noise, big);
  free(back);
  free(gz);
  free(noise);
}

/* The same records, encoded once as JSON and once with gzip. */
static void add_mixed_records(spectator__records_t *rs, const char *long_value) {
  char name[32], ep[32];
  for (int i = 0; i < 2500; i++) {
    snprintf(name, sizeof(name), "svc.requests.%d", i % 97);
    snprintf(ep, sizeof(ep), "/api/v%d/item%04d", i % 3, i);
    add(rs, name, SPECTATOR_TAGS("endpoint", ep, "status", i % 5 ? "2xx" : "5xx"), "count", NULL,
        SPECTATOR_OP_ADD, i * 0.25);
    if (i % 10 == 0)
      add(rs, "svc.latency", SPECTATOR_TAGS("endpoint", ep), "percentile", "D00A2",
          SPECTATOR_OP_ADD, i);
  }
  /* One string longer than the 64 KiB window the JSON goes through. */
  add(rs, "svc.big", SPECTATOR_TAGS("blob", long_value), "max", NULL, SPECTATOR_OP_MAX, 1.5);
}

static void encoder_gzip_batches_inflate_to_exactly_the_json_batches(void **state) {
  (void)state;
  size_t long_len = 200 * 1024;
  char *long_value = malloc(long_len + 1);
  for (size_t i = 0; i < long_len; i++) long_value[i] = (char)('a' + i % 26);
  long_value[long_len] = '\0';
  spectator__records_t rs;
  spectator__records_init(&rs);
  add_mixed_records(&rs, long_value);
  spectator__payload_t raw, gz;
  assert_int_equal(
      spectator__encode(&rs, SPECTATOR_TAGS("nf.app", "www"), 1000, SPECTATOR__ENCODE_RAW, &raw),
      0);
  add_mixed_records(&rs, long_value);
  assert_int_equal(spectator__encode(&rs, SPECTATOR_TAGS("nf.app", "www"), 1000, 1, &gz), 0);
  assert_int_equal(raw.len, 3);
  assert_int_equal(gz.len, raw.len);
  assert_int_equal(gz.measurements, 2751);
  assert_int_equal(gz.raw_bytes, raw.raw_bytes);
  for (size_t b = 0; b < gz.len; b++) {
    assert_int_equal(gz.batches[b].count, raw.batches[b].count);
    assert_int_equal(raw.batches[b].raw_len, raw.batches[b].len);
    assert_int_equal(gz.batches[b].raw_len, raw.batches[b].len);
    assert_true(gz.batches[b].len < raw.batches[b].len / 4);
    char *back;
    size_t back_len;
    gunzip(gz.batches[b].data, gz.batches[b].len, &back, &back_len);
    assert_int_equal(back_len, raw.batches[b].len);
    assert_memory_equal(back, raw.batches[b].data, back_len);
    free(back);
  }
  /* The long value made it whole into the last batch. */
  assert_non_null(memmem(raw.batches[2].data, raw.batches[2].len, long_value, long_len));
  spectator__payload_free(&raw);
  spectator__payload_free(&gz);
  free(long_value);
}

static void encoder_consumes_the_records_it_reads(void **state) {
  (void)state;
  spectator__records_t rs;
  spectator__records_init(&rs);
  for (int i = 0; i < 3000; i++) add(&rs, "c", NULL, "count", NULL, SPECTATOR_OP_ADD, 1);
  assert_int_equal(rs.len, 3000);
  assert_non_null(rs.head->next->next); /* three chunks of at most 1024 */
  spectator__payload_t pl;
  assert_int_equal(spectator__encode(&rs, NULL, 10000, SPECTATOR__ENCODE_RAW, &pl), 0);
  assert_int_equal(rs.len, 0);
  assert_null(rs.head);
  assert_null(rs.tail);
  /* 3000 equal ids merged into one datapoint */
  assert_int_equal(pl.measurements, 1);
  assert_int_equal(pl.len, 1);
  const char *want = "[4,\"c\",\"count\",\"name\",\"statistic\",2,2,0,3,1,0,3000]";
  assert_int_equal(pl.batches[0].len, strlen(want));
  assert_memory_equal(pl.batches[0].data, want, strlen(want));
  spectator__payload_free(&pl);

  /* In batches of 1024 records (cut inside a chunk of records), each batch
   * is one body whose datapoints merge within it: 1024 + 1024 + 952. */
  for (int i = 0; i < 3000; i++) add(&rs, "c", NULL, "count", NULL, SPECTATOR_OP_ADD, 1);
  assert_int_equal(spectator__encode(&rs, NULL, 1024, SPECTATOR__ENCODE_RAW, &pl), 0);
  assert_int_equal(rs.len, 0);
  assert_int_equal(pl.len, 3);
  assert_int_equal(pl.measurements, 3);
  const char *const wants[] = {
      "[4,\"c\",\"count\",\"name\",\"statistic\",2,2,0,3,1,0,1024]",
      "[4,\"c\",\"count\",\"name\",\"statistic\",2,2,0,3,1,0,1024]",
      "[4,\"c\",\"count\",\"name\",\"statistic\",2,2,0,3,1,0,952]"};
  for (size_t b = 0; b < 3; b++) {
    assert_int_equal(pl.batches[b].len, strlen(wants[b]));
    assert_memory_equal(pl.batches[b].data, wants[b], strlen(wants[b]));
  }
  spectator__payload_free(&pl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(encoder_writes_exact_string_table_and_records, free_ids),
      cmocka_unit_test_teardown(encoder_sanitizes_and_merges_ids_that_collide, free_ids),
      cmocka_unit_test_teardown(encoder_id_tags_override_common_tags_and_statistic_overrides_both,
                                free_ids),
      cmocka_unit_test_teardown(encoder_splits_25000_measurements_into_batches_of_10000, free_ids),
      cmocka_unit_test_teardown(encoder_writes_numbers_that_read_back_exactly, free_ids),
      cmocka_unit_test_teardown(encoder_never_writes_a_non_finite_value, free_ids),
      cmocka_unit_test_teardown(encoder_merged_adds_saturate_at_dbl_max, free_ids),
      cmocka_unit_test_teardown(encoder_op_follows_the_final_statistic_tag, free_ids),
      cmocka_unit_test_teardown(encoder_sends_meters_with_the_op_of_their_statistic_tag, free_ids),
      cmocka_unit_test_teardown(every_statistic_a_meter_sets_has_the_op_of_its_name, free_ids),
      cmocka_unit_test_teardown(sanitize_replaces_everything_outside_the_allowed_set, free_ids),
      cmocka_unit_test_teardown(sanitize_counts_characters_in_utf16_units, free_ids),
      cmocka_unit_test_teardown(encoder_sends_an_emoji_as_two_underscores, free_ids),
      cmocka_unit_test_teardown(gzip_sink_output_inflates_to_the_input, free_ids),
      cmocka_unit_test_teardown(encoder_gzip_batches_inflate_to_exactly_the_json_batches, free_ids),
      cmocka_unit_test_teardown(encoder_consumes_the_records_it_reads, free_ids),
      cmocka_unit_test(encoder_writes_a_decimal_point_whatever_the_locale),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
