/*
 * fuzz_id: id and tag canonicalization.
 *
 * Input: strings separated by 0 bytes: the name, then alternating tag keys and
 * values (an odd count leaves a key without value: bad input). Checks:
 * - spectator_id_new() accepts exactly the valid inputs (non-empty name, an
 *   even number of non-empty strings) and rejects the rest with NULL;
 * - the canonical form is sorted by key (strcmp), keys are unique, and every
 *   key maps to the last value given for it;
 * - the same tags in another order (reversed, rotated, with earlier duplicate
 *   keys) give an equal id with the same hash; a changed value gives an
 *   unequal one;
 * - with_tags(id of a prefix, rest) and a chain of with_tag() give an id equal
 *   to the one built from all tags at once;
 * - spectator_id_format() agrees with its own length and truncates safely;
 * - a registry maps the id and the (name, tags) lookup to the same meter, and
 *   its snapshot reports the canonical id with statistic=count.
 */
#include "fuzz_util.h"

#define MAX_STRINGS 81 /* name + 40 pairs: more than the 16 kept on the stack */

static size_t dedup(const char **tags, size_t npairs, const char **out) {
  /* Last value wins; the order of first appearance is kept. */
  size_t n = 0;
  for (size_t i = 0; i < npairs; i++) {
    size_t j = 0;
    while (j < n && strcmp(out[2 * j], tags[2 * i]) != 0) j++;
    out[2 * j] = tags[2 * i];
    out[2 * j + 1] = tags[2 * i + 1];
    if (j == n) n++;
  }
  return n;
}

static void check_format(const spectator_id_t *id) {
  size_t need = spectator_id_format(id, NULL, 0);
  char *full = malloc(need + 1);
  FUZZ_CHECK(full);
  FUZZ_CHECK(spectator_id_format(id, full, need + 1) == need);
  FUZZ_CHECK(strlen(full) == need);
  for (size_t size = 1; size < 8; size++) {
    char small[8];
    memset(small, 'x', sizeof(small));
    FUZZ_CHECK(spectator_id_format(id, small, size) == need);
    size_t len = strlen(small);
    FUZZ_CHECK(len == (need < size - 1 ? need : size - 1));
    FUZZ_CHECK(memcmp(small, full, len) == 0);
  }
  free(full);
}

static void check_registry(const spectator_id_t *id, const char *name, const char *const *tags) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  cfg.flush_at_exit = 0;
  cfg.max_meters = 16;
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  FUZZ_CHECK(reg);
  spectator_counter_t *c1 = spectator_registry_counter(reg, name, tags);
  spectator_counter_t *c2 = spectator_registry_counter_id(reg, id);
  FUZZ_CHECK(c1 && c1 == c2);
  if (!id) {
    FUZZ_CHECK(spectator_registry_size(reg) == 0);
    spectator_registry_free(reg);
    return;
  }
  FUZZ_CHECK(spectator_registry_size(reg) == 1);
  /* The same id as another type: a no-op, never the counter. */
  spectator_timer_t *t = spectator_registry_timer_id(reg, id);
  FUZZ_CHECK(t && (void *)t != (void *)c1);
  spectator_timer_record(t, 1);
  spectator_counter_increment(c1);

  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  FUZZ_CHECK(ms && spectator_measurements_count(ms) == 1);
  const spectator_measurement_t *m = spectator_measurements_get(ms, 0);
  spectator_id_t *expect = spectator_id_tag(id, "statistic")
                               ? spectator_id_ref(id)
                               : spectator_id_with_tag(id, "statistic", "count");
  FUZZ_CHECK(expect && spectator_id_equals(m->id, expect));
  /* The op follows the final statistic tag: add for these, max otherwise. */
  static const char *const adds[] = {"count", "totalAmount", "totalTime", "totalOfSquares",
                                     "percentile"};
  const char *stat = spectator_id_tag(expect, "statistic");
  int op = SPECTATOR_OP_MAX;
  for (size_t i = 0; i < sizeof(adds) / sizeof(adds[0]); i++)
    if (strcmp(stat, adds[i]) == 0) op = SPECTATOR_OP_ADD;
  FUZZ_CHECK(m->value == 1 && m->op == op);
  spectator_id_free(expect);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) {
    fuzz_init_logging();
    init = 1;
  }
  size_t n;
  char *buf;
  char **s = fuzz_split(data, size, MAX_STRINGS, &n, &buf);
  if (!s) return 0;
  const char *name = s[0];
  size_t ntag_strings = n - 1;
  const char **tags = calloc(ntag_strings + 1, sizeof(char *));
  FUZZ_CHECK(tags);
  for (size_t i = 0; i < ntag_strings; i++) tags[i] = s[1 + i];
  const char *const *ctags = ntag_strings ? tags : NULL;

  bool valid = name[0] != '\0' && ntag_strings % 2 == 0;
  for (size_t i = 0; i < ntag_strings; i++) valid = valid && tags[i][0] != '\0';

  spectator_id_t *id = spectator_id_new(name, ctags);
  FUZZ_CHECK(valid == (id != NULL));
  check_registry(id, name, ctags);
  if (!id) goto out;

  size_t npairs = ntag_strings / 2;
  const char **uniq = calloc(2 * npairs + 1, sizeof(char *));
  FUZZ_CHECK(uniq);
  size_t nu = dedup(tags, npairs, uniq);

  /* Canonical form. */
  FUZZ_CHECK(strcmp(spectator_id_name(id), name) == 0);
  FUZZ_CHECK(spectator_id_tag_count(id) == nu);
  FUZZ_CHECK(spectator_id_tag_key(id, nu) == NULL && spectator_id_tag_value(id, nu) == NULL);
  for (size_t i = 0; i + 1 < nu; i++)
    FUZZ_CHECK(strcmp(spectator_id_tag_key(id, i), spectator_id_tag_key(id, i + 1)) < 0);
  for (size_t i = 0; i < nu; i++) {
    const char *v = spectator_id_tag(id, uniq[2 * i]);
    FUZZ_CHECK(v && strcmp(v, uniq[2 * i + 1]) == 0);
  }
  check_format(id);

  /* Other orders of the same tags: equal, same hash. */
  const char **perm = calloc(4 * npairs + 1, sizeof(char *));
  FUZZ_CHECK(perm);
  for (size_t i = 0; i < nu; i++) {
    perm[2 * i] = uniq[2 * (nu - 1 - i)];
    perm[2 * i + 1] = uniq[2 * (nu - 1 - i) + 1];
  }
  spectator_id_t *rev = spectator_id_new(name, nu ? perm : NULL);
  FUZZ_CHECK(rev && spectator_id_equals(id, rev) && spectator_id_equals(rev, id));
  FUZZ_CHECK(spectator_id_hash(id) == spectator_id_hash(rev));
  spectator_id_free(rev);
  if (nu > 1) {
    size_t r = (size ? data[size - 1] : 0) % nu;
    for (size_t i = 0; i < nu; i++) {
      perm[2 * i] = uniq[2 * ((i + r) % nu)];
      perm[2 * i + 1] = uniq[2 * ((i + r) % nu) + 1];
    }
    spectator_id_t *rot = spectator_id_new(name, perm);
    FUZZ_CHECK(rot && spectator_id_equals(id, rot));
    FUZZ_CHECK(spectator_id_hash(id) == spectator_id_hash(rot));
    spectator_id_free(rot);
  }
  if (nu > 0) {
    /* Earlier duplicates of every key with another value lose. */
    for (size_t i = 0; i < nu; i++) {
      perm[2 * i] = uniq[2 * i];
      perm[2 * i + 1] = name; /* any non-empty string */
      perm[2 * (nu + i)] = uniq[2 * i];
      perm[2 * (nu + i) + 1] = uniq[2 * i + 1];
    }
    perm[4 * nu] = NULL;
    spectator_id_t *dup = spectator_id_new(name, perm);
    FUZZ_CHECK(dup && spectator_id_equals(id, dup));
    FUZZ_CHECK(spectator_id_hash(id) == spectator_id_hash(dup));
    spectator_id_free(dup);

    /* A changed value: not equal. */
    size_t len = strlen(uniq[1]);
    char *changed = malloc(len + 2);
    FUZZ_CHECK(changed);
    memcpy(changed, uniq[1], len);
    changed[len] = 'x';
    changed[len + 1] = '\0';
    spectator_id_t *other = spectator_id_with_tag(id, uniq[0], changed);
    FUZZ_CHECK(other && !spectator_id_equals(id, other));
    FUZZ_CHECK(spectator_id_tag_count(other) == nu);
    spectator_id_free(other);
    free(changed);
  }

  /* with_tags on a prefix, and a chain of with_tag. */
  size_t k = npairs ? (size_t)data[0] % (npairs + 1) : 0;
  const char **head = calloc(2 * k + 1, sizeof(char *));
  FUZZ_CHECK(head);
  memcpy(head, tags, 2 * k * sizeof(char *));
  spectator_id_t *base = spectator_id_new(name, k ? head : NULL);
  FUZZ_CHECK(base);
  spectator_id_t *joined = spectator_id_with_tags(base, npairs > k ? tags + 2 * k : NULL);
  FUZZ_CHECK(joined && spectator_id_equals(id, joined));
  FUZZ_CHECK(spectator_id_hash(id) == spectator_id_hash(joined));
  spectator_id_free(joined);
  spectator_id_free(base);
  free(head);

  spectator_id_t *chain = spectator_id_new(name, NULL);
  for (size_t i = 0; i < npairs && chain; i++) {
    spectator_id_t *next = spectator_id_with_tag(chain, tags[2 * i], tags[2 * i + 1]);
    spectator_id_free(chain);
    chain = next;
  }
  FUZZ_CHECK(chain && spectator_id_equals(id, chain));
  spectator_id_free(chain);

  spectator_id_t *ref = spectator_id_ref(id);
  FUZZ_CHECK(ref == id);
  spectator_id_free(ref);

  free(perm);
  free(uniq);
  spectator_id_free(id);
out:
  free(tags);
  free(s);
  free(buf);
  return 0;
}
