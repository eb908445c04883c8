/*
 * Unit tests for src/id.c: canonical form, equality and hash, with_tag(s),
 * reference counting, accessors, formatting and bad input.
 *
 * Bad input is logged through a process-wide rate limiter (1st, 2nd, 4th...
 * occurrence), so each bad-input case runs in a forked child of a parent that
 * never makes a bad call: every child starts with a fresh limiter and must log
 * exactly one line.
 */
#include <errno.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/syscall.h>

#include <cmocka.h>

#include "hash.h"
#include "id.h"
#include "test_util.h"

/* The id's tags as "k=v,k=v" for compact assertions. */
static const char *tags_str(const spectator_id_t *id) {
  static char buf[4096];
  size_t off = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < spectator_id_tag_count(id); i++)
    off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s=%s", i ? "," : "",
                            spectator_id_tag_key(id, i), spectator_id_tag_value(id, i));
  return buf;
}

static uint32_t refs_of(const spectator_id_t *id) {
  return atomic_load(&((spectator_id_t *)id)->refs);
}

/* ------------------------------------------------------------------------ */
/* Canonical form                                                            */
/* ------------------------------------------------------------------------ */

static void id_sorts_tags_by_key(void **state) {
  (void)state;
  spectator_id_t *id = spectator_id_new("m", SPECTATOR_TAGS("zone", "z1", "app", "www", "b", "2"));
  assert_non_null(id);
  assert_string_equal(spectator_id_name(id), "m");
  assert_int_equal(spectator_id_tag_count(id), 3);
  assert_string_equal(tags_str(id), "app=www,b=2,zone=z1");
  spectator_id_free(id);
}

static void id_sorts_keys_by_bytes(void **state) {
  (void)state;
  /* strcmp order: upper case before lower case, a prefix before longer keys,
   * bytes >= 0x80 after ASCII. */
  spectator_id_t *id =
      spectator_id_new("m", SPECTATOR_TAGS("aa", "3", "\xc3\xa9", "4", "a", "2", "B", "1"));
  assert_non_null(id);
  assert_string_equal(tags_str(id), "B=1,a=2,aa=3,\xc3\xa9=4");
  spectator_id_free(id);
}

static void id_with_repeated_key_keeps_last_value(void **state) {
  (void)state;
  spectator_id_t *id =
      spectator_id_new("m", SPECTATOR_TAGS("k", "1", "a", "x", "k", "2", "k", "3", "a", "y"));
  assert_non_null(id);
  assert_int_equal(spectator_id_tag_count(id), 2);
  assert_string_equal(tags_str(id), "a=y,k=3");
  spectator_id_t *plain = spectator_id_new("m", SPECTATOR_TAGS("a", "y", "k", "3"));
  assert_true(spectator_id_equals(id, plain));
  assert_int_equal(spectator_id_hash(id), spectator_id_hash(plain));
  spectator_id_free(plain);
  spectator_id_free(id);
}

static void ids_with_tags_in_other_order_are_equal_and_hash_equally(void **state) {
  (void)state;
  spectator_id_t *a = spectator_id_new("req", SPECTATOR_TAGS("a", "1", "b", "2", "c", "3"));
  spectator_id_t *b = spectator_id_new("req", SPECTATOR_TAGS("c", "3", "a", "1", "b", "2"));
  spectator_id_t *c = spectator_id_new("req", SPECTATOR_TAGS("b", "2", "c", "3", "a", "1"));
  assert_non_null(a);
  assert_non_null(b);
  assert_non_null(c);
  assert_ptr_not_equal(a, b);
  assert_true(spectator_id_equals(a, b));
  assert_true(spectator_id_equals(b, c));
  assert_true(spectator_id_equals(c, a));
  assert_int_equal(spectator_id_hash(a), spectator_id_hash(b));
  assert_int_equal(spectator_id_hash(a), spectator_id_hash(c));
  assert_int_not_equal(spectator_id_hash(a), 0);
  spectator_id_free(a);
  spectator_id_free(b);
  spectator_id_free(c);
}

static void ids_that_differ_in_name_or_tags_are_not_equal(void **state) {
  (void)state;
  spectator_id_t *base = spectator_id_new("ab", SPECTATOR_TAGS("k", "v"));
  spectator_id_t *other[] = {
      spectator_id_new("ac", SPECTATOR_TAGS("k", "v")),
      spectator_id_new("ab", SPECTATOR_TAGS("k", "w")),
      spectator_id_new("ab", SPECTATOR_TAGS("j", "v")),
      spectator_id_new("ab", SPECTATOR_TAGS("k", "v", "l", "v")),
      spectator_id_new("ab", NULL),
      /* string boundaries matter: "a" + "bk" is not "ab" + "k" */
      spectator_id_new("a", SPECTATOR_TAGS("bk", "v")),
      spectator_id_new("ab", SPECTATOR_TAGS("kv", "v")),
  };
  for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
    assert_non_null(other[i]);
    assert_false(spectator_id_equals(base, other[i]));
    assert_false(spectator_id_equals(other[i], base));
    assert_int_not_equal(spectator_id_hash(base), spectator_id_hash(other[i]));
    spectator_id_free(other[i]);
  }
  spectator_id_free(base);
}

static void id_without_tags_has_zero_tags(void **state) {
  (void)state;
  spectator_id_t *a = spectator_id_new("m", NULL);
  spectator_id_t *b = spectator_id_new("m", (const char *const[]){NULL});
  assert_non_null(a);
  assert_non_null(b);
  assert_int_equal(spectator_id_tag_count(a), 0);
  assert_null(spectator_id_tag_key(a, 0));
  assert_true(spectator_id_equals(a, b));
  assert_int_equal(spectator_id_hash(a), spectator_id_hash(b));
  spectator_id_free(a);
  spectator_id_free(b);
}

static void id_copies_the_strings_it_is_given(void **state) {
  (void)state;
  char name[] = "name", key[] = "key", value[] = "value";
  const char *tags[] = {key, value, NULL};
  spectator_id_t *id = spectator_id_new(name, tags);
  assert_non_null(id);
  name[0] = key[0] = value[0] = 'X';
  assert_string_equal(spectator_id_name(id), "name");
  assert_string_equal(tags_str(id), "key=value");
  spectator_id_free(id);
}

static void canonical_view_matches_the_id_built_from_it(void **state) {
  (void)state;
  spectator_id_t *id = spectator_id_new("m", SPECTATOR_TAGS("b", "2", "a", "1"));
  spectator__canon_t c;
  assert_int_equal(
      spectator__canon_init(&c, "m", NULL, SPECTATOR_TAGS("a", "0", "b", "2", "a", "1")),
      0);
  assert_int_equal(c.ntags, 2);
  assert_ptr_equal(c.kv, c.inline_kv);
  assert_true(spectator__canon_equals_id(&c, id));
  assert_int_equal(c.hash, spectator_id_hash(id));
  spectator__canon_free(&c);
  spectator_id_free(id);
}

/* ------------------------------------------------------------------------ */
/* with_tag / with_tags                                                      */
/* ------------------------------------------------------------------------ */

static void id_with_tag_returns_a_new_id_and_leaves_the_original_unchanged(void **state) {
  (void)state;
  spectator_id_t *id = spectator_id_new("m", SPECTATOR_TAGS("b", "2"));
  uint64_t hash = spectator_id_hash(id);
  spectator_id_t *more = spectator_id_with_tag(id, "a", "1");
  assert_non_null(more);
  assert_ptr_not_equal(more, id);
  assert_string_equal(spectator_id_name(more), "m");
  assert_string_equal(tags_str(more), "a=1,b=2");
  assert_string_equal(tags_str(id), "b=2");
  assert_int_equal(spectator_id_hash(id), hash);
  assert_int_equal(refs_of(id), 1);
  spectator_id_t *direct = spectator_id_new("m", SPECTATOR_TAGS("a", "1", "b", "2"));
  assert_true(spectator_id_equals(more, direct));
  assert_int_equal(spectator_id_hash(more), spectator_id_hash(direct));
  spectator_id_free(direct);
  spectator_id_free(more);
  spectator_id_free(id);
}

static void id_with_tag_overrides_an_existing_value(void **state) {
  (void)state;
  spectator_id_t *id = spectator_id_new("m", SPECTATOR_TAGS("k", "old", "z", "1"));
  spectator_id_t *over = spectator_id_with_tag(id, "k", "new");
  assert_non_null(over);
  assert_int_equal(spectator_id_tag_count(over), 2);
  assert_string_equal(tags_str(over), "k=new,z=1");
  assert_string_equal(spectator_id_tag(id, "k"), "old");
  spectator_id_free(over);
  spectator_id_free(id);
}

static void id_with_tags_adds_tags_and_later_entries_win(void **state) {
  (void)state;
  spectator_id_t *id = spectator_id_new("m", SPECTATOR_TAGS("a", "1", "c", "3"));
  spectator_id_t *more = spectator_id_with_tags(id, SPECTATOR_TAGS("c", "x", "b", "2", "c", "y"));
  assert_non_null(more);
  assert_string_equal(tags_str(more), "a=1,b=2,c=y");
  assert_string_equal(tags_str(id), "a=1,c=3");
  spectator_id_free(more);
  spectator_id_free(id);
}

static void id_with_tags_null_returns_an_equal_id(void **state) {
  (void)state;
  spectator_id_t *id = spectator_id_new("m", SPECTATOR_TAGS("a", "1"));
  spectator_id_t *same = spectator_id_with_tags(id, NULL);
  assert_non_null(same);
  assert_true(spectator_id_equals(id, same));
  spectator_id_free(same);
  assert_int_equal(refs_of(id), 1);
  spectator_id_t *empty = spectator_id_with_tags(id, (const char *const[]){NULL});
  assert_non_null(empty);
  assert_true(spectator_id_equals(id, empty));
  spectator_id_free(empty);
  spectator_id_free(id);
}

static void id_with_tag_on_a_null_id_returns_null(void **state) {
  (void)state;
  assert_null(spectator_id_with_tag(NULL, "k", "v"));
  assert_null(spectator_id_with_tags(NULL, SPECTATOR_TAGS("k", "v")));
  assert_null(spectator_id_with_tags(NULL, NULL));
}

/* ------------------------------------------------------------------------ */
/* Reference counting                                                        */
/* ------------------------------------------------------------------------ */

static void id_ref_shares_the_id_and_each_free_releases_one_reference(void **state) {
  (void)state;
  spectator_id_t *id = spectator_id_new("m", SPECTATOR_TAGS("a", "1"));
  assert_int_equal(refs_of(id), 1);
  spectator_id_t *r1 = spectator_id_ref(id);
  spectator_id_t *r2 = spectator_id_ref(r1);
  assert_ptr_equal(r1, id);
  assert_ptr_equal(r2, id);
  assert_int_equal(refs_of(id), 3);
  spectator_id_free(r2);
  assert_int_equal(refs_of(id), 2);
  spectator_id_free(id);
  /* still alive through r1 */
  assert_int_equal(refs_of(r1), 1);
  assert_string_equal(spectator_id_name(r1), "m");
  assert_string_equal(tags_str(r1), "a=1");
  spectator_id_free(r1); /* the last reference: freed (ASan/valgrind check it) */
  assert_null(spectator_id_ref(NULL));
  spectator_id_free(NULL);
}

#define REF_THREADS 4
#define REF_ROUNDS 100000

typedef struct {
  spectator_id_t *id;
  pthread_barrier_t *barrier;
  long bad; /* ref() results that were not the id, or names that changed */
} ref_arg_t;

static void *ref_worker(void *p) {
  ref_arg_t *a = p;
  spectator_id_t *mine = spectator_id_ref(a->id);
  pthread_barrier_wait(a->barrier); /* all refs taken */
  for (int i = 0; i < REF_ROUNDS; i++) {
    spectator_id_t *r = spectator_id_ref(mine);
    if (r != mine) a->bad++;
    spectator_id_free(r);
  }
  pthread_barrier_wait(a->barrier); /* main checks the count */
  pthread_barrier_wait(a->barrier); /* main has dropped its reference */
  const char *v = spectator_id_tag(mine, "k");
  if (strcmp(spectator_id_name(mine), "shared") != 0 || !v || strcmp(v, "v") != 0) a->bad++;
  spectator_id_free(mine); /* the last of these frees the id */
  return NULL;
}

static void id_shared_between_4_threads_survives_concurrent_ref_and_free(void **state) {
  (void)state;
  spectator_id_t *id = spectator_id_new("shared", SPECTATOR_TAGS("k", "v"));
  assert_non_null(id);
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, REF_THREADS + 1);
  pthread_t th[REF_THREADS];
  ref_arg_t args[REF_THREADS];
  for (int i = 0; i < REF_THREADS; i++) {
    args[i] = (ref_arg_t){id, &barrier, 0};
    assert_int_equal(pthread_create(&th[i], NULL, ref_worker, &args[i]), 0);
  }
  pthread_barrier_wait(&barrier);
  pthread_barrier_wait(&barrier);
  /* Every temporary reference was released: main's plus one per thread. */
  assert_int_equal(refs_of(id), 1 + REF_THREADS);
  spectator_id_free(id); /* the threads now hold the only references */
  pthread_barrier_wait(&barrier);
  for (int i = 0; i < REF_THREADS; i++) {
    assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(args[i].bad, 0);
  }
  pthread_barrier_destroy(&barrier);
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                 */
/* ------------------------------------------------------------------------ */

static void id_accessors_give_empty_values_for_null_and_out_of_range(void **state) {
  (void)state;
  assert_string_equal(spectator_id_name(NULL), "");
  assert_int_equal(spectator_id_tag_count(NULL), 0);
  assert_null(spectator_id_tag_key(NULL, 0));
  assert_null(spectator_id_tag_value(NULL, 0));
  assert_null(spectator_id_tag(NULL, "k"));
  assert_int_equal(spectator_id_hash(NULL), 0);

  spectator_id_t *id = spectator_id_new("m", SPECTATOR_TAGS("a", "1", "b", "2"));
  assert_string_equal(spectator_id_tag_key(id, 0), "a");
  assert_string_equal(spectator_id_tag_value(id, 0), "1");
  assert_string_equal(spectator_id_tag_key(id, 1), "b");
  assert_string_equal(spectator_id_tag_value(id, 1), "2");
  assert_null(spectator_id_tag_key(id, 2));
  assert_null(spectator_id_tag_value(id, 2));
  assert_null(spectator_id_tag_key(id, SIZE_MAX));
  assert_null(spectator_id_tag_value(id, SIZE_MAX));
  spectator_id_free(id);
}

static void id_equals_treats_null_as_equal_only_to_null(void **state) {
  (void)state;
  spectator_id_t *id = spectator_id_new("m", NULL);
  assert_true(spectator_id_equals(NULL, NULL));
  assert_false(spectator_id_equals(id, NULL));
  assert_false(spectator_id_equals(NULL, id));
  assert_true(spectator_id_equals(id, id));
  spectator_id_free(id);
}

static void id_tag_finds_values_by_key(void **state) {
  (void)state;
  spectator_id_t *id =
      spectator_id_new("m", SPECTATOR_TAGS("d", "4", "b", "2", "a", "1", "c", "3", "e", "5"));
  const char *keys[] = {"a", "b", "c", "d", "e"};
  const char *vals[] = {"1", "2", "3", "4", "5"};
  for (size_t i = 0; i < 5; i++) assert_string_equal(spectator_id_tag(id, keys[i]), vals[i]);
  assert_null(spectator_id_tag(id, "0"));  /* before the first key */
  assert_null(spectator_id_tag(id, "bb")); /* between keys */
  assert_null(spectator_id_tag(id, "z"));  /* after the last key */
  assert_null(spectator_id_tag(id, ""));
  assert_null(spectator_id_tag(id, NULL));
  spectator_id_t *none = spectator_id_new("m", NULL);
  assert_null(spectator_id_tag(none, "a"));
  spectator_id_free(none);
  spectator_id_free(id);
}

/* ------------------------------------------------------------------------ */
/* Formatting                                                                */
/* ------------------------------------------------------------------------ */

static void id_format_writes_the_name_and_sorted_tags(void **state) {
  (void)state;
  spectator_id_t *id =
      spectator_id_new("server.requests", SPECTATOR_TAGS("status", "200", "app", "www"));
  char buf[128];
  size_t n = spectator_id_format(id, buf, sizeof(buf));
  assert_string_equal(buf, "server.requests{app=www,status=200}");
  assert_int_equal(n, strlen("server.requests{app=www,status=200}"));
  spectator_id_t *bare = spectator_id_new("bare", NULL);
  assert_int_equal(spectator_id_format(bare, buf, sizeof(buf)), 6);
  assert_string_equal(buf, "bare{}");
  spectator_id_free(bare);
  spectator_id_free(id);
}

static void id_format_truncates_like_snprintf_for_every_buffer_size(void **state) {
  (void)state;
  spectator_id_t *id = spectator_id_new("name", SPECTATOR_TAGS("k1", "v1", "k2", "v2"));
  const char *full = "name{k1=v1,k2=v2}";
  size_t len = strlen(full);
  for (size_t size = 0; size <= len + 2; size++) {
    char got[64], want[64];
    memset(got, '#', sizeof(got));
    memset(want, '#', sizeof(want));
    size_t n = spectator_id_format(id, got, size);
    int wn = snprintf(want, size, "%s", full);
    assert_int_equal(n, (size_t)wn);
    /* same bytes written, nothing past size touched */
    assert_memory_equal(got, want, sizeof(got));
  }
  assert_int_equal(spectator_id_format(id, NULL, 0), len);
  assert_int_equal(spectator_id_format(id, NULL, 100), len); /* NULL buf: nothing written */
  spectator_id_free(id);
}

/* ------------------------------------------------------------------------ */
/* Bad input (each case in a fresh child, see the top of the file)           */
/* ------------------------------------------------------------------------ */

typedef enum { BAD_NEW, BAD_WITH_TAG, BAD_WITH_TAGS } bad_kind_t;

typedef struct {
  bad_kind_t kind;
  const char *name;        /* BAD_NEW */
  const char *const *tags; /* BAD_NEW, BAD_WITH_TAGS */
  const char *key, *value; /* BAD_WITH_TAG */
} bad_case_t;

static long make_bad_id(void *p) {
  const bad_case_t *c = p;
  spectator_id_t *base =
      c->kind == BAD_NEW ? NULL : spectator_id_new("base", SPECTATOR_TAGS("a", "1"));
  spectator_id_t *id = NULL;
  switch (c->kind) {
  case BAD_NEW: id = spectator_id_new(c->name, c->tags); break;
  case BAD_WITH_TAG: id = spectator_id_with_tag(base, c->key, c->value); break;
  case BAD_WITH_TAGS: id = spectator_id_with_tags(base, c->tags); break;
  }
  long result = id == NULL ? 1 : 0;
  spectator_id_free(id);
  spectator_id_free(base);
  return result;
}

/* The id is NULL and exactly one warning on spectator.Registry says what is
 * wrong: this exact line. */
static void expect_bad_id(bad_case_t c, const char *line) {
  long was_null = tu_in_child(make_bad_id, &c);
  assert_int_equal(was_null, 1);
  tu_assert_log_count(1);
  tu_assert_log_line(0, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY, "invalid id");
  assert_string_equal(tu_log_line(0)->msg, line);
}

#define NO_VALUE "has no value (a NULL value, or an odd number of entries in the tag array)"

static void id_new_with_null_name_returns_null_and_logs_once(void **state) {
  (void)state;
  expect_bad_id((bad_case_t){BAD_NEW, NULL, SPECTATOR_TAGS("k", "v"), NULL, NULL},
                "invalid id '(null)': the name is NULL; returning NULL (occurrence 1)");
}

static void id_new_with_empty_name_returns_null_and_logs_once(void **state) {
  (void)state;
  expect_bad_id((bad_case_t){BAD_NEW, "", NULL, NULL, NULL},
                "invalid id '': the name is empty; returning NULL (occurrence 1)");
}

static void id_new_with_odd_tags_returns_null_and_logs_once(void **state) {
  (void)state;
  expect_bad_id((bad_case_t){BAD_NEW, "odd", SPECTATOR_TAGS("a", "1", "b"), NULL, NULL},
                "invalid id 'odd': tag 'b' at position 2 " NO_VALUE
                "; returning NULL (occurrence 1)");
  expect_bad_id((bad_case_t){BAD_NEW, "odd", SPECTATOR_TAGS("a"), NULL, NULL},
                "invalid id 'odd': tag 'a' at position 0 " NO_VALUE
                "; returning NULL (occurrence 1)");
}

static void id_new_with_empty_key_or_value_returns_null_and_logs_once(void **state) {
  (void)state;
  expect_bad_id((bad_case_t){BAD_NEW, "m", SPECTATOR_TAGS("a", "1", "", "v"), NULL, NULL},
                "invalid id 'm': the tag key at position 2 is empty; returning NULL "
                "(occurrence 1)");
  expect_bad_id((bad_case_t){BAD_NEW, "m", SPECTATOR_TAGS("k", "", "a", "1"), NULL, NULL},
                "invalid id 'm': tag 'k' has an empty value; returning NULL (occurrence 1)");
}

static void id_new_with_null_value_returns_null_and_logs_once(void **state) {
  (void)state;
  /* a NULL value followed by more entries: the NULL ends the array there */
  static const char *const tags[] = {"k", NULL, "a", "1", NULL};
  expect_bad_id((bad_case_t){BAD_NEW, "m", tags, NULL, NULL},
                "invalid id 'm': tag 'k' at position 0 " NO_VALUE
                "; returning NULL (occurrence 1)");
}

static void id_with_tag_with_null_or_empty_key_or_value_returns_null_and_logs_once(void **state) {
  (void)state;
  expect_bad_id((bad_case_t){BAD_WITH_TAG, NULL, NULL, NULL, "v"},
                "invalid id 'base': the tag key is NULL; returning NULL (occurrence 1)");
  expect_bad_id((bad_case_t){BAD_WITH_TAG, NULL, NULL, "k", NULL},
                "invalid id 'base': tag 'k' has a NULL value; returning NULL (occurrence 1)");
  expect_bad_id((bad_case_t){BAD_WITH_TAG, NULL, NULL, "", "v"},
                "invalid id 'base': the tag key is empty; returning NULL (occurrence 1)");
  expect_bad_id((bad_case_t){BAD_WITH_TAG, NULL, NULL, "k", ""},
                "invalid id 'base': tag 'k' has an empty value; returning NULL (occurrence 1)");
}

static void id_with_tags_with_odd_or_empty_tags_returns_null_and_logs_once(void **state) {
  (void)state;
  expect_bad_id((bad_case_t){BAD_WITH_TAGS, NULL, SPECTATOR_TAGS("x", "1", "y"), NULL, NULL},
                "invalid id 'base': tag 'y' at position 2 " NO_VALUE
                "; returning NULL (occurrence 1)");
  expect_bad_id((bad_case_t){BAD_WITH_TAGS, NULL, SPECTATOR_TAGS("x", ""), NULL, NULL},
                "invalid id 'base': tag 'x' has an empty value; returning NULL (occurrence 1)");
}

static long make_bad_ids_repeatedly(void *p) {
  (void)p;
  long nulls = 0;
  for (int i = 0; i < 20; i++) nulls += spectator_id_new("", NULL) == NULL;
  return nulls;
}

static void repeated_bad_ids_are_rate_limited_to_powers_of_two(void **state) {
  (void)state;
  assert_int_equal(tu_in_child(make_bad_ids_repeatedly, NULL), 20);
  /* occurrences 1, 2, 4, 8, 16 */
  tu_assert_log_count(5);
  const char *occ[] = {"(occurrence 1)", "(occurrence 2)", "(occurrence 4)", "(occurrence 8)",
                       "(occurrence 16)"};
  for (size_t i = 0; i < 5; i++)
    tu_assert_log_line(i, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY, occ[i]);
}

/* ------------------------------------------------------------------------ */
/* More than SPECTATOR__CANON_INLINE tags (the heap path)                    */
/* ------------------------------------------------------------------------ */

#define MANY 40

typedef struct {
  char keys[MANY][24], vals[MANY][24];
  const char *fwd[2 * MANY + 1], *rev[2 * MANY + 1];
} many_tags_t;

/* n tags k00=v00 ... in order and in reverse order. */
static void many_tags(many_tags_t *m, size_t n) {
  for (size_t i = 0; i < n; i++) {
    snprintf(m->keys[i], sizeof(m->keys[i]), "k%02zu", i);
    snprintf(m->vals[i], sizeof(m->vals[i]), "v%02zu", i);
  }
  for (size_t i = 0; i < n; i++) {
    m->fwd[2 * i] = m->keys[i];
    m->fwd[2 * i + 1] = m->vals[i];
    m->rev[2 * i] = m->keys[n - 1 - i];
    m->rev[2 * i + 1] = m->vals[n - 1 - i];
  }
  m->fwd[2 * n] = m->rev[2 * n] = NULL;
}

static void check_sorted_many(const spectator_id_t *id, size_t n) {
  assert_int_equal(spectator_id_tag_count(id), n);
  for (size_t i = 0; i < n; i++) {
    char k[24], v[24];
    snprintf(k, sizeof(k), "k%02zu", i);
    snprintf(v, sizeof(v), "v%02zu", i);
    assert_string_equal(spectator_id_tag_key(id, i), k);
    assert_string_equal(spectator_id_tag_value(id, i), v);
  }
}

static void id_with_more_than_16_tags_is_canonicalized_like_the_same_tags_in_another_order(
    void **state) {
  (void)state;
  static const size_t sizes[] = {15, 16, 17, 20, MANY};
  for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
    many_tags_t m;
    many_tags(&m, sizes[s]);
    spectator_id_t *a = spectator_id_new("many", m.fwd);
    spectator_id_t *b = spectator_id_new("many", m.rev);
    assert_non_null(a);
    assert_non_null(b);
    check_sorted_many(a, sizes[s]);
    check_sorted_many(b, sizes[s]);
    assert_true(spectator_id_equals(a, b));
    assert_int_equal(spectator_id_hash(a), spectator_id_hash(b));
    spectator_id_free(a);
    spectator_id_free(b);
  }
}

static void id_with_more_than_16_tags_keeps_the_last_value_of_a_repeated_key(void **state) {
  (void)state;
  /* 20 pairs: k00..k09, each key twice, the second value wins */
  const char *tags[41];
  char keys[10][4], first[10][8], second[10][8];
  for (int i = 0; i < 10; i++) {
    snprintf(keys[i], sizeof(keys[i]), "k%d", 9 - i);
    snprintf(first[i], sizeof(first[i]), "old%d", i);
    snprintf(second[i], sizeof(second[i]), "new%d", i);
    tags[2 * i] = keys[i];
    tags[2 * i + 1] = first[i];
    tags[20 + 2 * i] = keys[i];
    tags[20 + 2 * i + 1] = second[i];
  }
  tags[40] = NULL;
  spectator_id_t *id = spectator_id_new("dup", tags);
  assert_non_null(id);
  assert_int_equal(spectator_id_tag_count(id), 10);
  for (int i = 0; i < 10; i++) {
    char k[4], v[8];
    snprintf(k, sizeof(k), "k%d", i);
    snprintf(v, sizeof(v), "new%d", 9 - i);
    assert_string_equal(spectator_id_tag_key(id, (size_t)i), k);
    assert_string_equal(spectator_id_tag_value(id, (size_t)i), v);
  }
  spectator_id_free(id);
}

static void id_with_tags_past_16_in_total_merges_base_and_extra_tags(void **state) {
  (void)state;
  many_tags_t m;
  many_tags(&m, 24);
  /* base: the first 12 tags; extra: the other 12 in reverse order plus an
   * override of k00 */
  const char *base_tags[25], *extra[27];
  for (size_t i = 0; i < 24; i++) base_tags[i] = m.fwd[i];
  base_tags[24] = NULL;
  size_t j = 0;
  for (size_t i = 0; i < 24; i += 2) {
    extra[j++] = m.rev[i];
    extra[j++] = m.rev[i + 1];
  }
  extra[j++] = "k00";
  extra[j++] = "override";
  extra[j] = NULL;
  spectator_id_t *base = spectator_id_new("merge", base_tags);
  assert_int_equal(spectator_id_tag_count(base), 12);
  spectator_id_t *all = spectator_id_with_tags(base, extra);
  assert_non_null(all);
  assert_int_equal(spectator_id_tag_count(all), 24);
  assert_string_equal(spectator_id_tag(all, "k00"), "override");
  for (size_t i = 1; i < 24; i++) {
    char k[24], v[24];
    snprintf(k, sizeof(k), "k%02zu", i);
    snprintf(v, sizeof(v), "v%02zu", i);
    assert_string_equal(spectator_id_tag_key(all, i), k);
    assert_string_equal(spectator_id_tag_value(all, i), v);
  }
  spectator_id_t *with_tag = spectator_id_with_tag(all, "k23", "last");
  assert_string_equal(spectator_id_tag(with_tag, "k23"), "last");
  assert_int_equal(spectator_id_tag_count(with_tag), 24);
  spectator_id_free(with_tag);
  spectator_id_free(all);
  spectator_id_free(base);
}

/* ------------------------------------------------------------------------ */
/* Huge and non-ASCII strings                                                */
/* ------------------------------------------------------------------------ */

#define MB (1024 * 1024)

static void id_keeps_a_1_mb_name_and_value_verbatim(void **state) {
  (void)state;
  char *big = malloc(MB + 1);
  assert_non_null(big);
  memset(big, 'n', MB);
  big[MB] = '\0';
  spectator_id_t *id = spectator_id_new(big, SPECTATOR_TAGS("k", big));
  assert_non_null(id);
  assert_int_equal(strlen(spectator_id_name(id)), MB);
  assert_string_equal(spectator_id_name(id), big);
  assert_string_equal(spectator_id_tag(id, "k"), big);
  assert_int_equal(spectator_id_format(id, NULL, 0), 2 * (size_t)MB + 4); /* name{k=value} */
  char small[8];
  assert_int_equal(spectator_id_format(id, small, sizeof(small)), 2 * (size_t)MB + 4);
  assert_string_equal(small, "nnnnnnn");

  spectator_id_t *same = spectator_id_new(big, SPECTATOR_TAGS("k", big));
  assert_true(spectator_id_equals(id, same));
  assert_int_equal(spectator_id_hash(id), spectator_id_hash(same));
  big[MB - 1] = 'm'; /* differs in the last byte only */
  spectator_id_t *other = spectator_id_new(big, SPECTATOR_TAGS("k", "v"));
  spectator_id_t *other2 = spectator_id_new(big, SPECTATOR_TAGS("k", "v"));
  assert_false(spectator_id_equals(id, other));
  assert_true(spectator_id_equals(other, other2));
  spectator_id_free(other2);
  spectator_id_free(other);
  spectator_id_free(same);
  spectator_id_free(id);
  free(big);
}

static long make_huge_bad_id(void *p) {
  const char *big = p;
  return spectator_id_new(big, SPECTATOR_TAGS("odd")) == NULL;
}

static void bad_id_with_a_1_mb_name_logs_a_line_with_the_name_cut_to_120_bytes(void **state) {
  (void)state;
  char *big = malloc(MB + 1);
  assert_non_null(big);
  memset(big, 'x', MB);
  big[MB] = '\0';
  assert_int_equal(tu_in_child(make_huge_bad_id, big), 1);
  tu_assert_log_count(1);
  const tu_log_line_t *l = tu_log_line(0);
  assert_true(l->msg_len < 1024);
  char want[130];
  memset(want, 'x', 120);
  strcpy(want + 120, "'"); /* exactly 120 x then the closing quote */
  assert_non_null(strstr(l->msg, want));
  memset(want, 'x', 121);
  want[121] = '\0'; /* 121 x: must not appear */
  assert_null(strstr(l->msg, want));
  free(big);
}

static void id_keeps_non_ascii_bytes_verbatim(void **state) {
  (void)state;
  const char *name = "caf\xc3\xa9.\xe6\x97\xa5\xe6\x9c\xac";
  const char *key = "\xff\xfe";
  const char *value = "\x01\x7f\x80 \t?";
  spectator_id_t *id = spectator_id_new(name, SPECTATOR_TAGS(key, value, "a", "\xf0\x9f\x98\x80"));
  assert_non_null(id);
  assert_string_equal(spectator_id_name(id), name);
  assert_string_equal(spectator_id_tag_key(id, 0), "a");
  assert_string_equal(spectator_id_tag_value(id, 0), "\xf0\x9f\x98\x80");
  assert_string_equal(spectator_id_tag_key(id, 1), key);
  assert_string_equal(spectator_id_tag_value(id, 1), value);
  assert_string_equal(spectator_id_tag(id, key), value);
  char buf[64];
  spectator_id_format(id, buf, sizeof(buf));
  assert_string_equal(
      buf, "caf\xc3\xa9.\xe6\x97\xa5\xe6\x9c\xac{a=\xf0\x9f\x98\x80,\xff\xfe=\x01\x7f\x80 \t?}");
  spectator_id_free(id);
}

/* ------------------------------------------------------------------------ */
/* The hash seed: drawn per process (this program run again as a child)      */
/* ------------------------------------------------------------------------ */

/* This program, to run it again with a mode (see main). */
static char self_path[PATH_MAX];

/* getrandom(2) made to fail with ENOSYS by a seccomp filter, as on a kernel
 * without it or in a sandbox that forbids it. False where the filter cannot
 * be built for this architecture. */
static bool forbid_getrandom(void) {
#if defined(__x86_64__)
  const uint32_t arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  const uint32_t arch = AUDIT_ARCH_AARCH64;
#else
  return false;
#endif
#if defined(__x86_64__) || defined(__aarch64__)
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getrandom, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {(unsigned short)(sizeof(filter) / sizeof(filter[0])), filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
#endif
}

/* The child's side: print the hash of one id and the log lines its first
 * hash gave. */
static int print_hash(const char *mode) {
  if (strcmp(mode, "--print-hash-without-getrandom") == 0) {
    if (!forbid_getrandom()) {
      printf("skip\n");
      return 0;
    }
    char b[8];
    if (getrandom(b, sizeof(b), GRND_NONBLOCK) != -1 || errno != ENOSYS) return 3;
  }
  spectator_log_set_level(SPECTATOR_LOG_INFO);
  tu_log_capture();
  spectator_id_t *id = spectator_id_new("http.requests", SPECTATOR_TAGS("status", "200"));
  if (!id) return 4;
  printf("hash=%016llx\n", (unsigned long long)spectator_id_hash(id));
  for (size_t i = 0; i < tu_log_count(); i++) printf("line=%s\n", tu_log_line(i)->msg);
  spectator_id_free(id);
  tu_log_release();
  return 0;
}

typedef struct {
  bool skipped;
  uint64_t hash;
  size_t nlines;
  char lines[4][1024];
} child_hash_t;

/* Run this program with mode and read what print_hash printed. */
static child_hash_t child_hash(const char *mode) {
  child_hash_t r;
  memset(&r, 0, sizeof(r));
  char cmd[PATH_MAX + 64];
  snprintf(cmd, sizeof(cmd), "'%s' %s", self_path, mode);
  FILE *f = popen(cmd, "r");
  assert_non_null(f);
  char line[1024];
  bool got_hash = false;
  while (fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\n")] = '\0';
    unsigned long long h;
    if (strcmp(line, "skip") == 0) {
      r.skipped = true;
    } else if (sscanf(line, "hash=%llx", &h) == 1) {
      r.hash = h;
      got_hash = true;
    } else if (strncmp(line, "line=", 5) == 0 && r.nlines < 4) {
      snprintf(r.lines[r.nlines++], sizeof(r.lines[0]), "%s", line + 5);
    }
  }
  assert_int_equal(pclose(f), 0);
  assert_true(got_hash || r.skipped);
  return r;
}

/* Tag values crafted offline to collide in one process's lookup table must
 * not collide in another's: the seed of the hash is drawn per process. */
static void the_id_hash_is_seeded_differently_in_each_process(void **state) {
  (void)state;
  spectator_id_t *id = spectator_id_new("http.requests", SPECTATOR_TAGS("status", "200"));
  uint64_t here = spectator_id_hash(id);
  spectator_id_free(id);
  child_hash_t a = child_hash("--print-hash"), b = child_hash("--print-hash");
  assert_int_not_equal(a.hash, b.hash);
  assert_int_not_equal(a.hash, here);
  assert_int_not_equal(b.hash, here);
  /* getrandom worked: nothing to say */
  assert_int_equal(a.nlines, 0);
  assert_int_equal(b.nlines, 0);
  /* within a process the seed never changes: equal ids hash equally */
  spectator_id_t *again = spectator_id_new("http.requests", SPECTATOR_TAGS("status", "200"));
  assert_int_equal(spectator_id_hash(again), here);
  spectator_id_free(again);
}

static void without_getrandom_the_seed_comes_from_clocks_and_addresses_and_it_says_so(
    void **state) {
  (void)state;
  child_hash_t a = child_hash("--print-hash-without-getrandom");
  if (a.skipped) skip();
  child_hash_t b = child_hash("--print-hash-without-getrandom");
  assert_int_not_equal(a.hash, b.hash);
  assert_int_not_equal(a.hash, SPECTATOR__HASH_FIXED_SEED);
  const char *want = "getrandom failed (Function not implemented): the id hash is seeded from "
                     "the clocks, the process id and addresses instead";
  assert_int_equal(a.nlines, 1);
  assert_string_equal(a.lines[0], want);
  assert_int_equal(b.nlines, 1);
  assert_string_equal(b.lines[0], want);
}

int main(int argc, char **argv) {
  if (argc > 1) return print_hash(argv[1]);
  if (!realpath(argv[0], self_path)) return 2;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(id_sorts_tags_by_key),
      cmocka_unit_test(id_sorts_keys_by_bytes),
      cmocka_unit_test(id_with_repeated_key_keeps_last_value),
      cmocka_unit_test(ids_with_tags_in_other_order_are_equal_and_hash_equally),
      cmocka_unit_test(ids_that_differ_in_name_or_tags_are_not_equal),
      cmocka_unit_test(id_without_tags_has_zero_tags),
      cmocka_unit_test(id_copies_the_strings_it_is_given),
      cmocka_unit_test(canonical_view_matches_the_id_built_from_it),
      cmocka_unit_test(id_with_tag_returns_a_new_id_and_leaves_the_original_unchanged),
      cmocka_unit_test(id_with_tag_overrides_an_existing_value),
      cmocka_unit_test(id_with_tags_adds_tags_and_later_entries_win),
      cmocka_unit_test(id_with_tags_null_returns_an_equal_id),
      cmocka_unit_test(id_with_tag_on_a_null_id_returns_null),
      cmocka_unit_test(id_ref_shares_the_id_and_each_free_releases_one_reference),
      cmocka_unit_test(id_shared_between_4_threads_survives_concurrent_ref_and_free),
      cmocka_unit_test(id_accessors_give_empty_values_for_null_and_out_of_range),
      cmocka_unit_test(id_equals_treats_null_as_equal_only_to_null),
      cmocka_unit_test(id_tag_finds_values_by_key),
      cmocka_unit_test(id_format_writes_the_name_and_sorted_tags),
      cmocka_unit_test(id_format_truncates_like_snprintf_for_every_buffer_size),
      cmocka_unit_test(id_new_with_null_name_returns_null_and_logs_once),
      cmocka_unit_test(id_new_with_empty_name_returns_null_and_logs_once),
      cmocka_unit_test(id_new_with_odd_tags_returns_null_and_logs_once),
      cmocka_unit_test(id_new_with_empty_key_or_value_returns_null_and_logs_once),
      cmocka_unit_test(id_new_with_null_value_returns_null_and_logs_once),
      cmocka_unit_test(id_with_tag_with_null_or_empty_key_or_value_returns_null_and_logs_once),
      cmocka_unit_test(id_with_tags_with_odd_or_empty_tags_returns_null_and_logs_once),
      cmocka_unit_test(repeated_bad_ids_are_rate_limited_to_powers_of_two),
      cmocka_unit_test(the_id_hash_is_seeded_differently_in_each_process),
      cmocka_unit_test(without_getrandom_the_seed_comes_from_clocks_and_addresses_and_it_says_so),
      cmocka_unit_test(
          id_with_more_than_16_tags_is_canonicalized_like_the_same_tags_in_another_order),
      cmocka_unit_test(id_with_more_than_16_tags_keeps_the_last_value_of_a_repeated_key),
      cmocka_unit_test(id_with_tags_past_16_in_total_merges_base_and_extra_tags),
      cmocka_unit_test(id_keeps_a_1_mb_name_and_value_verbatim),
      cmocka_unit_test(bad_id_with_a_1_mb_name_logs_a_line_with_the_name_cut_to_120_bytes),
      cmocka_unit_test(id_keeps_non_ascii_bytes_verbatim),
  };
  /* Log lines go to stderr unless a test captures them; warn is the default. */
  spectator_log_set_level(SPECTATOR_LOG_WARN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
