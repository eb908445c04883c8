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

#include <cmocka.h>

#include "encoder.h"

static void add(spectator__records_t *rs, const char *name, const char *const *tags,
                const char *stat, const char *pct, int op, double v) {
  spectator_id_t *id = spectator_id_new(name, tags);
  assert_non_null(id);
  spectator__records_add(rs, id, stat, pct, op, v);
  spectator_id_free(id);
}

static char *encode_one(spectator__records_t *rs, const char *const *common, size_t batch,
                        size_t expect_batches) {
  spectator__payload_t pl;
  assert_int_equal(spectator__encode(rs, common, batch, &pl), 0);
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
  assert_int_equal(spectator__encode(&rs, SPECTATOR_TAGS("nf.app", "common"), 10, &pl), 0);
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
  assert_int_equal(spectator__encode(&rs, NULL, 10000, &pl), 0);
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

static void encoder_writes_numbers_that_read_back_exactly(void **state) {
  (void)state;
  const double values[] = {0.1, 1.0 / 3, 1e-300, 1.7976931348623157e308, 4.9e-324, 123456789012345678.0,
                           9007199254740993.0, 0.5, 1e21, 2.5e-7};
  for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
    char buf[40];
    spectator__json_number(buf, sizeof(buf), values[i]);
    assert_true(strtod(buf, NULL) == values[i]);
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    assert_true(cJSON_IsNumber(j));
    cJSON_Delete(j);
  }
  char buf[40];
  spectator__json_number(buf, sizeof(buf), 42);
  assert_string_equal(buf, "42");
  spectator__json_number(buf, sizeof(buf), 0.1);
  assert_string_equal(buf, "0.1");
}

static void encoder_drops_non_finite_values_before_they_reach_json(void **state) {
  (void)state;
  spectator__records_t rs;
  spectator__records_init(&rs);
  add(&rs, "a", NULL, "gauge", NULL, SPECTATOR_OP_MAX, NAN);
  add(&rs, "b", NULL, "gauge", NULL, SPECTATOR_OP_MAX, INFINITY);
  add(&rs, "c", NULL, "gauge", NULL, SPECTATOR_OP_MAX, -INFINITY);
  assert_int_equal(rs.len, 0);
  char *s = encode_one(&rs, NULL, 10, 0);
  assert_null(s);
  spectator__records_free(&rs);
}

static void sanitize_replaces_everything_outside_the_allowed_set(void **state) {
  (void)state;
  char out[64];
  assert_int_equal(spectator__sanitize("Az09-._^~ /:{}\"\\\xff", out), 17);
  assert_string_equal(out, "Az09-._^~________");
  /* one character, one underscore: U+00E9 (2 bytes), U+20AC (3), U+1F600 (4) */
  assert_int_equal(spectator__sanitize("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80x", out), 4);
  assert_string_equal(out, "___x");
  /* a broken sequence is one underscore per byte */
  assert_int_equal(spectator__sanitize("\xc3x\xe2\x82", out), 4);
  assert_string_equal(out, "_x__");
}

static void gzip_output_inflates_to_the_input(void **state) {
  (void)state;
  const char *in = "[1,\"a\",1,0,0,0,1]";
  char *gz;
  size_t len;
  assert_int_equal(spectator__gzip(in, strlen(in), 1, &gz, &len), 0);
  assert_true((unsigned char)gz[0] == 0x1f && (unsigned char)gz[1] == 0x8b);
  free(gz);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(encoder_writes_exact_string_table_and_records),
      cmocka_unit_test(encoder_sanitizes_and_merges_ids_that_collide),
      cmocka_unit_test(encoder_id_tags_override_common_tags_and_statistic_overrides_both),
      cmocka_unit_test(encoder_splits_25000_measurements_into_batches_of_10000),
      cmocka_unit_test(encoder_writes_numbers_that_read_back_exactly),
      cmocka_unit_test(encoder_drops_non_finite_values_before_they_reach_json),
      cmocka_unit_test(sanitize_replaces_everything_outside_the_allowed_set),
      cmocka_unit_test(gzip_output_inflates_to_the_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
