/*
 * Several threads recording on ONE shared meter pointer.
 * Total throughput with k threads against 1 thread (scaling = ops/s with k
 * threads / ops/s with 1 thread, in the same round), for k = 2 and k = one per
 * CPU when that is more than 2.
 *
 * Reference rows measured the same way, compiled into this program:
 *   shared atomic add      every thread fetch_adds one uint64 (one cache line)
 *   shared CAS double add  every thread CAS-adds one double
 *   padded atomics         each thread its own cache line: the hardware limit
 * and a last row where each thread has its own counter, created one after the
 * other (neighbours in memory: shows there is no false sharing between meters).
 *
 * At the end each meter's total is checked against the number of calls made
 * (snapshot values, so striped cells are included): exact or not.
 */
#include <math.h>
#include <stdatomic.h>

#include "bench.h"
#include "common.h"

#define MAX_THREADS 64

static _Alignas(64) _Atomic uint64_t shared_u64;
static _Alignas(64) _Atomic uint64_t shared_dbl;
static struct { _Alignas(64) _Atomic uint64_t v; } padded[MAX_THREADS];

static spectator_registry_t *reg;
static spectator_counter_t *counter;
static spectator_timer_t *timer;
static spectator_counter_t *counter_add;
static spectator_counter_t *own[MAX_THREADS]; /* created one after the other */

BENCH_NOINLINE static void atomic_add(_Atomic uint64_t *p) {
  atomic_fetch_add_explicit(p, 1, memory_order_relaxed);
}

typedef struct {
  const char *name;
  void (*run)(int thread, long n);
  const char *target;
} op_t;

BENCH_NOINLINE static void run_shared_atomic(int t, long n) {
  (void)t;
  for (long i = 0; i < n; i++) atomic_add(&shared_u64);
}
BENCH_NOINLINE static void run_shared_cas(int t, long n) {
  (void)t;
  for (long i = 0; i < n; i++) bench_cas_add(&shared_dbl, 1.0);
}
BENCH_NOINLINE static void run_padded(int t, long n) {
  for (long i = 0; i < n; i++) atomic_add(&padded[t].v);
}
BENCH_NOINLINE static void run_increment(int t, long n) {
  (void)t;
  for (long i = 0; i < n; i++) spectator_counter_increment(counter);
}
BENCH_NOINLINE static void run_add(int t, long n) {
  (void)t;
  for (long i = 0; i < n; i++) spectator_counter_add(counter_add, 0.5);
}
BENCH_NOINLINE static void run_own(int t, long n) {
  for (long i = 0; i < n; i++) spectator_counter_increment(own[t]);
}
BENCH_NOINLINE static void run_timer(int t, long n) {
  (void)t;
  for (long i = 0; i < n; i++) spectator_timer_record_ns(timer, 1000 + (i & 1023));
}

static const op_t ops[] = {
    {"reference: shared atomic add", run_shared_atomic, NULL},
    {"reference: shared CAS double add", run_shared_cas, NULL},
    {"reference: padded per-thread atomics", run_padded, NULL},
    {"counter increment", run_increment, ">= 1.6x"},
    {"counter add (0.5)", run_add, NULL},
    {"timer record_ns", run_timer, ">= 1.6x"},
    {"counter increment, a counter per thread (adjacent)", run_own, NULL},
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
  w->op->run(w->index, w->n);
  w->t1 = bench_now_ns();
  return NULL;
}

/* Ops per second with k threads each doing n calls. */
static double throughput(const op_t *op, int k, long n) {
  pthread_t th[MAX_THREADS];
  worker_t w[MAX_THREADS];
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
  return (double)k * (double)n / ((double)(end - start) / 1e9);
}

/* Calls made per meter, for the exactness check. */
static uint64_t calls_increment, calls_add, calls_timer;

static void count_calls(const op_t *op, uint64_t calls) {
  if (op->run == run_increment) calls_increment += calls;
  if (op->run == run_add) calls_add += calls;
  if (op->run == run_timer) calls_timer += calls;
}

int main(void) {
  int ncpu = bench_ncpu();
  int rounds = bench_env_int("BENCH_ROUNDS", 7);
  long n = bench_scaled(3000000);
  int ks[3] = {1, 2, ncpu > 2 ? (ncpu < MAX_THREADS ? ncpu : MAX_THREADS) : 0};
  int nk = ks[2] ? 3 : 2;

  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  reg = spectator_registry_new(&cfg);
  if (!reg) return 1;
  counter = spectator_registry_counter(reg, "shared.counter", NULL);
  counter_add = spectator_registry_counter(reg, "shared.counterAdd", NULL);
  timer = spectator_registry_timer(reg, "shared.timer", NULL);
  for (int i = 0; i < MAX_THREADS; i++) {
    char name[32];
    snprintf(name, sizeof(name), "own.counter%d", i);
    own[i] = spectator_registry_counter(reg, name, NULL);
  }

  /* Warm-up: a short contended run of each, as a real service would have. */
  for (size_t i = 0; i < NOPS; i++) {
    throughput(&ops[i], 2, n / 10);
    count_calls(&ops[i], 2 * (uint64_t)(n / 10));
  }

  double *tp = calloc(NOPS * 3 * (size_t)rounds, sizeof(double));
  if (!tp) return 1;
#define TP(op, k, r) tp[((op)*3 + (k)) * (size_t)rounds + (r)]
  for (int r = 0; r < rounds; r++) {
    for (size_t i = 0; i < NOPS; i++) {
      for (int k = 0; k < nk; k++) {
        TP(i, k, r) = throughput(&ops[i], ks[k], n);
        count_calls(&ops[i], (uint64_t)ks[k] * (uint64_t)n);
      }
    }
  }

  bench_header("Contention: threads on one shared meter");
  printf("%ld calls per thread per round; scaling = total throughput with k threads / with 1 "
         "thread (median of per-round ratios)\n\n",
         n);
  printf("| operation | 1 thread Mops/s | 2 threads Mops/s | 2 threads scaling |");
  if (nk == 3) printf(" %d threads scaling |", ks[2]);
  printf(" target (2 threads) | met |\n|---|---:|---:|---:|");
  if (nk == 3) printf("---:|");
  printf("---|---|\n");
  int targets = 0, met = 0;
  for (size_t i = 0; i < NOPS; i++) {
    double one = bench_median(&TP(i, 0, 0), rounds) / 1e6;
    double two = bench_median(&TP(i, 1, 0), rounds) / 1e6;
    double s2 = bench_median_ratio(&TP(i, 1, 0), &TP(i, 0, 0), rounds);
    bool ok = s2 >= 1.6;
    if (ops[i].target) {
      targets++;
      met += ok;
    }
    printf("| %s | %.1f | %.1f | %.2fx |", ops[i].name, one, two, s2);
    if (nk == 3) printf(" %.2fx |", bench_median_ratio(&TP(i, 2, 0), &TP(i, 0, 0), rounds));
    printf(" %s | %s |\n", ops[i].target ? ops[i].target : "",
           ops[i].target ? bench_verdict(ok) : "");
  }

  /* Exactness: everything recorded is in the snapshot, once. */
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  const spectator_measurement_t *mc =
      spectator_measurements_find(ms, "shared.counter", SPECTATOR_TAGS("statistic", "count"));
  const spectator_measurement_t *ma =
      spectator_measurements_find(ms, "shared.counterAdd", SPECTATOR_TAGS("statistic", "count"));
  const spectator_measurement_t *mt =
      spectator_measurements_find(ms, "shared.timer", SPECTATOR_TAGS("statistic", "count"));
  bool exact = mc && mc->value == (double)calls_increment && ma &&
               ma->value == 0.5 * (double)calls_add && mt && mt->value == (double)calls_timer;
  printf("\nexact totals after all rounds (counter %.0f of %llu, counter add %.1f of %.1f, timer "
         "%.0f of %llu): %s\n",
         mc ? mc->value : -1, (unsigned long long)calls_increment, ma ? ma->value : -1,
         0.5 * (double)calls_add, mt ? mt->value : -1, (unsigned long long)calls_timer,
         bench_verdict(exact));
  printf("targets met: %d of %d\n", met, targets);
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
  free(tp);
  return 0;
}
