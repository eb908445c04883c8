/*
 * Looking up a meter that exists, by name and tags, as an
 * application does when it does not keep the pointer:
 *
 *   spectator_registry_counter(reg, name, tags)   explicit registry
 *   spectator_counter(name, tags)                 the global registry
 *
 * with 0, 2 and 5 tags, in a registry that holds 10,000 other meters. Against
 * the CAS-loop double add baseline of bench_hotpath (same function, measured
 * in the same rounds), and with 2 threads looking up the same meter (total
 * throughput against 1 thread).
 *
 * Allocation on a hit: the counting allocator (alloc_count.c) sees every
 * malloc of the process; the number of calls made during all the timed
 * lookups must be 0, and mallinfo2's in-use bytes must not move.
 */
#include <malloc.h>
#include <stdatomic.h>

#include "bench.h"
#include "common.h"
#ifdef BENCH_ALLOC_COUNT
#include "alloc_count.h"
#endif

static _Alignas(64) _Atomic uint64_t base_dbl;

static spectator_registry_t *reg;

#define NAME "server.requestCount"
BENCH_NOINLINE static void run_cas(long n) {
  for (long i = 0; i < n; i++) bench_cas_add(&base_dbl, 1.5);
}
BENCH_NOINLINE static void run_0(long n) {
  for (long i = 0; i < n; i++) bench_escape(spectator_registry_counter(reg, NAME, NULL));
}
BENCH_NOINLINE static void run_2(long n) {
  for (long i = 0; i < n; i++)
    bench_escape(spectator_registry_counter(
        reg, NAME, SPECTATOR_TAGS("endpoint", "api_v1_items", "status", "2xx")));
}
BENCH_NOINLINE static void run_5(long n) {
  for (long i = 0; i < n; i++)
    bench_escape(spectator_registry_counter(reg, NAME,
                                            SPECTATOR_TAGS("endpoint", "api_v1_items", "status",
                                                           "2xx", "method", "GET", "client",
                                                           "mobile", "region", "us-east-1")));
}
BENCH_NOINLINE static void run_g2(long n) {
  for (long i = 0; i < n; i++)
    bench_escape(
        spectator_counter(NAME, SPECTATOR_TAGS("endpoint", "api_v1_items", "status", "2xx")));
}
BENCH_NOINLINE static void run_g2_inc(long n) {
  for (long i = 0; i < n; i++)
    spectator_counter_increment(
        spectator_counter(NAME, SPECTATOR_TAGS("endpoint", "api_v1_items", "status", "2xx")));
}

/* One-shot calls: a lookup and a record in one, on a transient meter. */
BENCH_NOINLINE static void run_once_2(long n) {
  for (long i = 0; i < n; i++)
    spectator_registry_record(reg, SPECTATOR_METER_COUNTER, "server.oneShotCount",
                              SPECTATOR_TAGS("endpoint", "api_v1_items", "status", "2xx"), 1);
}
BENCH_NOINLINE static void run_g_once_2(long n) {
  for (long i = 0; i < n; i++)
    spectator_record(SPECTATOR_METER_COUNTER, "server.oneShotCount",
                     SPECTATOR_TAGS("endpoint", "api_v1_items", "status", "2xx"), 1);
}

typedef struct {
  const char *name;
  void (*run)(long n);
  double limit; /* ratio to CAS add on 1 thread, 0 = none */
} op_t;

static const op_t ops[] = {
    {"baseline: CAS-loop double add", run_cas, 0},
    {"registry_counter, 0 tags", run_0, 0},
    {"registry_counter, 2 tags", run_2, 20},
    {"registry_counter, 5 tags", run_5, 0},
    {"spectator_counter (global), 2 tags", run_g2, 0},
    {"spectator_counter + increment, 2 tags", run_g2_inc, 0},
    {"registry_record (one-shot counter), 2 tags", run_once_2, 15},
    {"spectator_record (global, one-shot counter), 2 tags", run_g_once_2, 0},
};
#define NOPS (sizeof(ops) / sizeof(ops[0]))

typedef struct {
  const op_t *op;
  int index;
  long n;
  pthread_barrier_t *barrier;
  int64_t t0, t1;
} worker_t;

static void *worker(void *arg) {
  worker_t *w = arg;
  bench_pin(w->index);
  pthread_barrier_wait(w->barrier);
  w->t0 = bench_now_ns();
  w->op->run(w->n);
  w->t1 = bench_now_ns();
  return NULL;
}

/* Wall time per call of one thread, and total throughput of k threads. */
static double run_threads(const op_t *op, int k, long n, double *ns_per_call) {
  pthread_t th[2];
  worker_t w[2];
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, (unsigned)k);
  for (int i = 0; i < k; i++) {
    w[i] = (worker_t){op, i, n, &barrier, 0, 0};
    if (pthread_create(&th[i], NULL, worker, &w[i]) != 0) abort();
  }
  int64_t start = INT64_MAX, end = 0;
  for (int i = 0; i < k; i++) {
    pthread_join(th[i], NULL);
    if (w[i].t0 < start) start = w[i].t0;
    if (w[i].t1 > end) end = w[i].t1;
  }
  pthread_barrier_destroy(&barrier);
  if (ns_per_call) *ns_per_call = (double)(end - start) / (double)n;
  return (double)k * (double)n / ((double)(end - start) / 1e9);
}

int main(void) {
  setenv("SPECTATOR_DISABLE_AUTO_START", "1", 1);
  unsetenv("SPECTATOR_URI");
  spectator_log_set_level(SPECTATOR_LOG_OFF);
  (void)bench_ncpu();
  int rounds = bench_env_int("BENCH_ROUNDS", 9);
  long n = bench_scaled(400000);

  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  reg = spectator_registry_new(&cfg);
  if (!reg) return 1;
  /* 10,000 other meters, then the ones looked up. */
  spectator_registry_t *regs[2] = {reg, spectator_global_registry()};
  for (int r = 0; r < 2; r++) {
    char ep[32];
    for (int i = 0; i < 10000; i++) {
      snprintf(ep, sizeof(ep), "api_v1_items_%d", i);
      spectator_registry_counter(regs[r], NAME, SPECTATOR_TAGS("endpoint", ep, "status", "2xx"));
    }
  }
  for (size_t i = 0; i < NOPS; i++) ops[i].run(1000); /* create and warm up */

  double *one = calloc(NOPS * (size_t)rounds, sizeof(double));
  double *tp1 = calloc(NOPS * (size_t)rounds, sizeof(double));
  double *tp2 = calloc(NOPS * (size_t)rounds, sizeof(double));
  if (!one || !tp1 || !tp2) return 1;
  for (int r = 0; r < rounds; r++) {
    for (size_t i = 0; i < NOPS; i++) {
      tp1[i * rounds + r] = run_threads(&ops[i], 1, n, &one[i * rounds + r]);
      tp2[i * rounds + r] = run_threads(&ops[i], 2, n, NULL);
    }
  }
  /* Allocation on a hit, on this thread alone (creating threads allocates):
   * n more lookups of each kind, between two readings of the heap in use and
   * of the counting allocator's calls. */
  struct mallinfo2 mi0 = mallinfo2();
#ifdef BENCH_ALLOC_COUNT
  uint64_t calls0 = alloc_calls();
#endif
  for (size_t i = 1; i < NOPS; i++) ops[i].run(n);
#ifdef BENCH_ALLOC_COUNT
  uint64_t lookup_calls = alloc_calls() - calls0;
#endif
  struct mallinfo2 mi1 = mallinfo2();

  bench_header("Lookup of an existing meter");
  printf("%ld lookups per thread per round, registry of 10,000+ meters; x CAS = median of "
         "per-round (lookup / CAS-loop double add)\n\n",
         n);
  printf("| lookup | ns/lookup (1 thread) | x CAS add | target | 2 threads scaling | target | "
         "met |\n|---|---:|---:|---|---:|---|---|\n");
  int targets = 0, met = 0;
  for (size_t i = 0; i < NOPS; i++) {
    double ns = bench_median(&one[i * rounds], rounds);
    double x = bench_median_ratio(&one[i * rounds], &one[0], rounds);
    double s2 = bench_median_ratio(&tp2[i * rounds], &tp1[i * rounds], rounds);
    bool ok1 = !ops[i].limit || x <= ops[i].limit;
    bool ok2 = i == 0 || s2 >= 1.6;
    if (ops[i].limit) targets++, met += ok1;
    if (i) targets++, met += ok2;
    char limit[16] = "";
    if (ops[i].limit) snprintf(limit, sizeof(limit), "<= %.0fx", ops[i].limit);
    printf("| %s | %.1f | %.1f | %s | %.2fx | %s | %s |\n", ops[i].name, ns, x, limit, s2,
           i ? ">= 1.6x" : "", i ? bench_verdict(ok1 && ok2) : "");
  }
  long in_use_delta = (long)mi1.uordblks - (long)mi0.uordblks;
  printf("\n%ld more lookups of each kind on one thread: heap in use (mallinfo2 uordblks) "
         "%zu -> %zu (delta %ld)",
         n, mi0.uordblks, mi1.uordblks, in_use_delta);
#ifdef BENCH_ALLOC_COUNT
  printf(", allocator calls (counting allocator) %llu", (unsigned long long)lookup_calls);
  bool no_alloc = lookup_calls == 0 && in_use_delta == 0;
#else
  bool no_alloc = in_use_delta == 0;
#endif
  printf(": no allocation on a hit: %s\n", bench_verdict(no_alloc));
  targets++, met += no_alloc;
  printf("targets met: %d of %d\n", met, targets);
  free(one);
  free(tp1);
  free(tp2);
  spectator_registry_free(reg);
  return 0;
}
