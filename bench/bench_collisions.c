/*
 * Lookups of tag values crafted to collide in the registry's lookup table,
 * with the fixed public hash seed the library used to have and with the seed
 * it now draws per process.
 *
 * The attack: the id hash and the table layout are public, so with a fixed
 * seed anyone can compute offline which values of one tag (a user name, a
 * header) land in one slot of the table, with the same 7 tag bits, and send
 * them. Every lookup of such an id then walks the whole cluster, and each
 * slot of it passes the 7-bit check and costs a visit of the meter's id.
 *
 *   1. Craft N values of "user" for api.requests{user=...} whose hashes under
 *      the fixed seed share the low bits the table indexes with (for the
 *      table the registry will have) and the 7 tag bits: brute force over
 *      16-byte values, on every CPU, where each try is two multiplies (the
 *      hash of the name and the key is fixed; only the last 8 bytes of the
 *      value change). Each value found is checked against the library's own
 *      canonical hash.
 *   2. With the fixed seed (spectator__hash_set_seed, for benchmarks only):
 *      a registry holding the N crafted ids and M ordinary ones; time
 *      lookups of the crafted ids and of the ordinary ids, in the same rounds.
 *   3. The same with a seed from the OS, as every process now has: the same
 *      crafted values, the same registry.
 *
 * Prints the crafting time and a table: ns per lookup (medians over rounds),
 * the ratio crafted / ordinary, and the mean number of table slots a lookup
 * probes (stable where nanoseconds are not).
 *
 * Knobs: BENCH_COLLIDE_N (crafted values, default 4000), BENCH_ROUNDS
 * (default 7), BENCH_SCALE (lookups per round).
 */
#include <inttypes.h>

#include "bench.h"
#include "hash.h"
#include "id.h"
#include "registry.h"

#define NAME "api.requests"
#define KEY "user"
#define ORDINARY 64 /* ordinary ids in the registry */
#define VALUE_LEN 16

/* 64 characters that need no sanitizing: each of a value's 16 bytes is one. */
static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
#define PREFIX "crafted-"

/* The table of a registry of n meters: it doubles from 64 slots whenever
 * it would be more than half full (registry.c). */
static size_t table_slots(size_t n) {
  size_t cap = 64;
  while (2 * n > cap) cap *= 2;
  return cap;
}

/* ------------------------------------------------------------------------ */
/* Crafting                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct {
  int index, threads;
  uint64_t seed, mask, want_idx, want_tag;
  size_t want;
  _Atomic size_t *found;
  char (*out)[VALUE_LEN + 1]; /* shared, slots claimed through found */
  uint64_t tries;
} craft_t;

/* 8 alphabet characters from the low 48 bits of i, as a little-endian word. */
static uint64_t word_of(uint64_t i) {
  uint64_t w = 0;
  for (int k = 0; k < 8; k++)
    w |= (uint64_t)(unsigned char)alphabet[(i >> (6 * k)) & 63] << (8 * k);
  return w;
}

/* The first 3 characters of the changing word, for every 18-bit number. */
#define LOW_BITS 18
static uint64_t low_words[1u << LOW_BITS];

/* Try values PREFIX + 8 characters until `want` are found. The hash of
 * NAME{KEY=value} is id.c's hash_canon: the name and the key are fixed, and
 * of the value's hash (spectator__hash_bytes of 16 bytes: two folds) only the
 * second fold changes. main checks every hit against the library's own. */
static void *craft_worker(void *p) {
  craft_t *c = p;
  bench_pin(c->index);
  const uint64_t seed = c->seed, K1 = SPECTATOR__HASH_K1, K2 = SPECTATOR__HASH_K2;
  uint64_t h = spectator__hash_fold(seed ^ spectator__hash_bytes(seed, NAME, strlen(NAME)), K2);
  h = spectator__hash_fold(h ^ spectator__hash_bytes(seed, KEY, strlen(KEY)), K2);
  uint64_t w0;
  memcpy(&w0, PREFIX, 8);
  const uint64_t first = spectator__hash_fold((seed ^ (VALUE_LEN * K2)) ^ w0, K1);
  uint64_t tries = 0;
  for (uint64_t hi = (uint64_t)c->index;
       atomic_load_explicit(c->found, memory_order_relaxed) < c->want; hi += (uint64_t)c->threads) {
    const uint64_t top = word_of(hi << LOW_BITS) & ~0xffffffULL;
    for (uint32_t lo = 0; lo < (1u << LOW_BITS); lo++) {
      uint64_t w1 = top | low_words[lo];
      uint64_t x = spectator__hash_fold(h ^ spectator__hash_fold(first ^ w1, K1), K2);
      x ^= x >> 33;
      x *= 0xff51afd7ed558ccdULL;
      x ^= x >> 33;
      if ((x & c->mask) != c->want_idx || (x >> 57) != c->want_tag) continue;
      size_t slot = atomic_fetch_add(c->found, 1);
      if (slot >= c->want) break;
      memcpy(c->out[slot], PREFIX, 8);
      memcpy(c->out[slot] + 8, &w1, 8);
      c->out[slot][VALUE_LEN] = '\0';
    }
    tries += 1u << LOW_BITS;
  }
  c->tries = tries;
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Lookups                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct {
  const char *const *values;
  size_t n;
} set_t;

static spectator_registry_t *reg;

BENCH_NOINLINE static void look_up(const set_t *s, long reps) {
  for (long r = 0; r < reps; r++)
    for (size_t i = 0; i < s->n; i++)
      bench_escape(spectator_registry_counter(reg, NAME, SPECTATOR_TAGS(KEY, s->values[i])));
}

/* ns per lookup of every value of s, reps times over. */
static double time_lookups(const set_t *s, long reps) {
  int64_t t0 = bench_now_ns();
  look_up(s, reps);
  return (double)(bench_now_ns() - t0) / ((double)reps * (double)s->n);
}

/* The mean number of slots a lookup of each value of s probes. */
static double mean_probes(const set_t *s) {
  spectator__table_t *t = atomic_load(&reg->table);
  double total = 0;
  for (size_t i = 0; i < s->n; i++) {
    spectator__canon_t c;
    if (spectator__canon_init(&c, NAME, NULL, SPECTATOR_TAGS(KEY, s->values[i])) != 0) abort();
    for (size_t j = c.hash & t->mask, probes = 1;; j = (j + 1) & t->mask, probes++) {
      uint32_t v = atomic_load(&t->slots[j]);
      if (!v) abort(); /* every value is in the registry */
      size_t idx = (v & SPECTATOR__SLOT_INDEX_MASK) - 1;
      spectator__meter_t *m = reg->chunks[idx / SPECTATOR__CHUNK][idx % SPECTATOR__CHUNK];
      if (spectator__canon_equals_id(&c, m->id)) {
        total += (double)probes;
        break;
      }
    }
    spectator__canon_free(&c);
  }
  return total / (double)s->n;
}

typedef struct {
  double crafted_ns, ordinary_ns, ratio, crafted_probes, ordinary_probes;
} result_t;

static result_t run(const char *const *crafted, size_t n, const char *const *ordinary, int rounds,
                    long lookups) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  reg = spectator_registry_new(&cfg);
  if (!reg) abort();
  for (size_t i = 0; i < n; i++)
    spectator_counter_increment(
        spectator_registry_counter(reg, NAME, SPECTATOR_TAGS(KEY, crafted[i])));
  for (size_t i = 0; i < ORDINARY; i++)
    spectator_counter_increment(
        spectator_registry_counter(reg, NAME, SPECTATOR_TAGS(KEY, ordinary[i])));
  if (spectator_registry_size(reg) != n + ORDINARY) abort();
  set_t cs = {crafted, n}, os = {ordinary, ORDINARY};
  long crafted_reps = lookups / (long)n > 0 ? lookups / (long)n : 1;
  long ordinary_reps = lookups / ORDINARY;
  double *c = calloc((size_t)rounds, sizeof(double)), *o = calloc((size_t)rounds, sizeof(double));
  look_up(&cs, 1); /* warm */
  look_up(&os, 1);
  for (int r = 0; r < rounds; r++) {
    c[r] = time_lookups(&cs, crafted_reps);
    o[r] = time_lookups(&os, ordinary_reps);
  }
  result_t res = {bench_median(c, (size_t)rounds), bench_median(o, (size_t)rounds),
                  bench_median_ratio(c, o, (size_t)rounds), mean_probes(&cs), mean_probes(&os)};
  free(c);
  free(o);
  spectator_registry_free(reg);
  reg = NULL;
  return res;
}

int main(void) {
  size_t n = (size_t)bench_env_int("BENCH_COLLIDE_N", 4000);
  int rounds = bench_env_int("BENCH_ROUNDS", 7);
  long lookups = bench_scaled(200000);
  int threads = bench_ncpu();
  size_t slots = table_slots(n + ORDINARY);
  unsigned bits = 0;
  while ((1ULL << bits) < slots) bits++;

  bench_header("Lookups of crafted colliding tag values (bench_collisions)");
  printf("Crafting %zu values of %s{%s=...} that share slot 0x%x of a %zu-slot table and the 7 "
         "tag bits under the fixed seed 0x%016" PRIx64 " (%u bits to match), on %d threads...\n",
         n, NAME, KEY, 0x155u & (unsigned)(slots - 1), slots, (uint64_t)SPECTATOR__HASH_FIXED_SEED,
         bits + 7, threads);
  fflush(stdout);

  /* 1. craft */
  for (uint32_t i = 0; i < (1u << LOW_BITS); i++) low_words[i] = word_of(i) & 0xffffffULL;
  char(*values)[VALUE_LEN + 1] = calloc(n, sizeof(*values));
  _Atomic size_t found = 0;
  craft_t *args = calloc((size_t)threads, sizeof(*args));
  pthread_t *th = calloc((size_t)threads, sizeof(*th));
  int64_t t0 = bench_now_ns();
  for (int i = 0; i < threads; i++) {
    args[i] = (craft_t){.index = i,
                        .threads = threads,
                        .seed = SPECTATOR__HASH_FIXED_SEED,
                        .mask = slots - 1,
                        .want_idx = 0x155u & (slots - 1),
                        .want_tag = 0x2a,
                        .want = n,
                        .found = &found,
                        .out = values};
    pthread_create(&th[i], NULL, craft_worker, &args[i]);
  }
  uint64_t tries = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(th[i], NULL);
    tries += args[i].tries;
  }
  double craft_s = (double)(bench_now_ns() - t0) / 1e9;

  /* every crafted value collides under the fixed seed, by the library's own
   * canonical hash */
  spectator__hash_set_seed(SPECTATOR__HASH_FIXED_SEED);
  const char **crafted = calloc(n, sizeof(*crafted));
  for (size_t i = 0; i < n; i++) {
    crafted[i] = values[i];
    spectator__canon_t c;
    if (spectator__canon_init(&c, NAME, NULL, SPECTATOR_TAGS(KEY, crafted[i])) != 0 ||
        (c.hash & (slots - 1)) != (0x155u & (slots - 1)) || (c.hash >> 57) != 0x2a) {
      fprintf(stderr, "crafted value %zu does not collide: the benchmark's hash is not id.c's\n",
              i);
      return 1;
    }
  }
  printf("Found %zu values in %.1f s (%.2f G hashes, %.1f ns each per thread).\n\n", n, craft_s,
         (double)tries / 1e9, craft_s * 1e9 * threads / (double)tries);

  static char ordinary_buf[ORDINARY][32];
  const char *ordinary[ORDINARY];
  for (int i = 0; i < ORDINARY; i++) {
    snprintf(ordinary_buf[i], sizeof(ordinary_buf[i]), "user-%04d", i);
    ordinary[i] = ordinary_buf[i];
  }

  /* 2. the fixed seed; 3. a seed from the OS. Each registry is made after its
   * seed is set and freed before the next. */
  result_t fixed = run(crafted, n, ordinary, rounds, lookups);
  spectator__hash_set_seed(0);
  result_t drawn = run(crafted, n, ordinary, rounds, lookups);

  printf("| seed | crafted ids ns/lookup | ordinary ids ns/lookup | crafted / ordinary | "
         "slots probed, crafted | slots probed, ordinary |\n");
  printf("|---|---:|---:|---:|---:|---:|\n");
  printf("| fixed (before) | %.0f | %.0f | %.1fx | %.1f | %.1f |\n", fixed.crafted_ns,
         fixed.ordinary_ns, fixed.ratio, fixed.crafted_probes, fixed.ordinary_probes);
  printf("| per process (now) | %.0f | %.0f | %.1fx | %.1f | %.1f |\n", drawn.crafted_ns,
         drawn.ordinary_ns, drawn.ratio, drawn.crafted_probes, drawn.ordinary_probes);
  printf("\nCrafted lookups with the per-process seed: %.1fx faster than with the fixed seed; "
         "within 2x of ordinary ids: %s\n",
         fixed.crafted_ns / drawn.crafted_ns, bench_verdict(drawn.ratio < 2));
  free(values);
  free(crafted);
  free(args);
  free(th);
  return 0;
}
