/*
 * The recording hot path on one thread, per call on a meter
 * pointer, against two baselines compiled into this program:
 *
 *   atomic add   a relaxed atomic_fetch_add on a uint64 (what an integer
 *                counter costs at the very least)
 *   CAS add      a CAS loop adding a double (what a double counter costs)
 *   clock read   clock_gettime(CLOCK_MONOTONIC), what the few recording
 *                calls that read the clock (age gauge set_now, long task
 *                timer start and stop) pay on top
 *
 * Both baselines are called through a non-inlinable function taking the
 * pointer, exactly as the library's functions are, so the call is in both.
 *
 *   bench_hotpath                      the table (ns/call, ratio to CAS add)
 *   bench_hotpath --list               the operation names
 *   bench_hotpath --run <op> <calls>   just <calls> calls of one operation,
 *                                      for callgrind (see callgrind.sh)
 */
#include <math.h>
#include <stdatomic.h>
#include <time.h>

#include "bench.h"
#include "common.h"

/* ------------------------------------------------------------------------ */
/* Baselines                                                                 */
/* ------------------------------------------------------------------------ */

static _Alignas(64) _Atomic uint64_t base_u64;
static _Alignas(64) _Atomic uint64_t base_dbl;

BENCH_NOINLINE static void baseline_atomic_add(_Atomic uint64_t *p) {
  atomic_fetch_add_explicit(p, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------------------ */
/* Operations                                                                */
/* ------------------------------------------------------------------------ */

static spectator_registry_t *reg;
static spectator_counter_t *counter;
static spectator_timer_t *timer;
static spectator_dist_summary_t *summary;
static spectator_gauge_t *gauge;
static spectator_max_gauge_t *max_gauge;
static spectator_percentile_timer_t *pct_timer;
static spectator_monotonic_counter_u64_t *u64_counter;
static spectator_age_gauge_t *age_gauge;
static spectator_long_task_timer_t *ltt;

/* Durations cycled by the timer rows: 16 values from 1 ms to 2 s, so the
 * percentile timer touches several buckets and the max is not always new. */
static double secs[16];
static int64_t nanos[16];
static double amounts[16];

typedef struct {
  const char *name;
  void (*run)(long n);
  const char *target; /* text, or NULL */
  double limit;       /* max ratio to the CAS baseline, 0 = none */
} op_t;

#define LOOP(body)               \
  for (long i = 0; i < n; i++) { \
    body;                        \
  }

BENCH_NOINLINE static void run_atomic_add(long n){
    LOOP(baseline_atomic_add(&base_u64))} BENCH_NOINLINE
    static void run_cas_add(long n){LOOP(bench_cas_add(&base_dbl, 1.5))} BENCH_NOINLINE
    static void run_increment(long n){LOOP(spectator_counter_increment(counter))} BENCH_NOINLINE
    static void run_add(long n){LOOP(spectator_counter_add(counter, 1.5))} BENCH_NOINLINE
    static void run_add_whole(long n){LOOP(spectator_counter_add(counter, 3.0))} BENCH_NOINLINE
    static void run_timer(long n){LOOP(spectator_timer_record(timer, secs[i & 15]))} BENCH_NOINLINE
    static void run_timer_ns(long n){
        LOOP(spectator_timer_record_ns(timer, nanos[i & 15]))} BENCH_NOINLINE
    static void run_summary(long n){
        LOOP(spectator_dist_summary_record(summary, amounts[i & 15]))} BENCH_NOINLINE
    static void run_gauge(long n){LOOP(spectator_gauge_set(gauge, (double)i))} BENCH_NOINLINE
    static void run_max_gauge(long n){
        LOOP(spectator_max_gauge_set(max_gauge, secs[i & 15]))} BENCH_NOINLINE
    static void run_pct_timer(long n){
        LOOP(spectator_percentile_timer_record(pct_timer, secs[i & 15]))}

BENCH_NOINLINE static int64_t baseline_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_nsec;
}

BENCH_NOINLINE static void run_clock(long n) {
  int64_t sum = 0;
  LOOP(sum += baseline_clock());
  if (sum == 42) printf("!");
}

BENCH_NOINLINE static void run_u64(long n) {
  LOOP(spectator_monotonic_counter_u64_set(u64_counter, (uint64_t)i));
}

BENCH_NOINLINE static void run_age_set(long n) {
  LOOP(spectator_age_gauge_set(age_gauge, 1.7e9 + (double)(i & 1023)));
}

BENCH_NOINLINE static void run_age_set_now(long n) { LOOP(spectator_age_gauge_set_now(age_gauge)); }

BENCH_NOINLINE static void run_ltt(long n) {
  LOOP(spectator_long_task_timer_stop(ltt, spectator_long_task_timer_start(ltt)));
}

static const op_t ops[] = {
    {"baseline: atomic_fetch_add u64", run_atomic_add, NULL, 0},
    {"baseline: CAS-loop double add", run_cas_add, NULL, 0},
    {"counter increment", run_increment, "<= 0.75x", 0.75},
    {"counter add (1.5)", run_add, "<= 1.25x", 1.25},
    {"counter add (3.0, whole)", run_add_whole, NULL, 0},
    {"timer record (s)", run_timer, "<= 2x", 2.0},
    {"timer record_ns", run_timer_ns, NULL, 0},
    {"dist summary record", run_summary, NULL, 0},
    {"gauge set", run_gauge, NULL, 0},
    {"max gauge set (rarely a new max)", run_max_gauge, NULL, 0},
    {"percentile timer record", run_pct_timer, "<= 3x", 3.0},
    {"baseline: clock_gettime MONOTONIC", run_clock, NULL, 0},
    {"uint64 monotonic counter set", run_u64, "<= 1x", 1.0},
    {"age gauge set (epoch s)", run_age_set, "<= 1x", 1.0},
    {"age gauge set_now (reads clock)", run_age_set_now, NULL, 0},
    {"long task timer start+stop (2 clock reads)", run_ltt, NULL, 0},
};
#define NOPS (sizeof(ops) / sizeof(ops[0]))
#define CAS_ROW 1

static void setup(void) {
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  reg = spectator_registry_new(&cfg);
  if (!reg) abort();
  const char *const *tags = SPECTATOR_TAGS("endpoint", "api_v1_items", "status", "2xx");
  counter = spectator_registry_counter(reg, "server.requestCount", tags);
  timer = spectator_registry_timer(reg, "server.requestLatency", tags);
  summary = spectator_registry_dist_summary(reg, "server.responseSize", tags);
  gauge = spectator_registry_gauge(reg, "server.queueSize", tags);
  max_gauge = spectator_registry_max_gauge(reg, "server.maxQueueSize", tags);
  pct_timer = spectator_registry_percentile_timer(reg, "server.pctLatency", tags, 0.001, 10);
  u64_counter = spectator_registry_monotonic_counter_u64(reg, "server.nicBytes", tags);
  age_gauge = spectator_registry_age_gauge(reg, "server.lastSuccess", tags);
  ltt = spectator_registry_long_task_timer(reg, "server.longTasks", tags);
  for (int i = 0; i < 16; i++) {
    secs[i] = 0.001 * pow(2000.0, i / 15.0); /* 1 ms .. 2 s */
    nanos[i] = (int64_t)(secs[i] * 1e9);
    amounts[i] = (double)(100 + 97 * i); /* bytes: whole numbers */
  }
}

int main(int argc, char **argv) {
  setup();
  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    for (size_t i = 0; i < NOPS; i++) printf("%s\n", ops[i].name);
    return 0;
  }
  if (argc == 4 && strcmp(argv[1], "--run") == 0)
    return BENCH_RUN_NAMED(ops, NOPS, argv[2], atol(argv[3]));
  if (argc != 1) {
    fprintf(stderr, "usage: %s [--list | --run <op> <calls>]\n", argv[0]);
    return 2;
  }

  bench_pin(0);
  int rounds = bench_env_int("BENCH_ROUNDS", 11);
  long n = bench_scaled(4000000);
  double *t = calloc(NOPS * (size_t)rounds, sizeof(double));
  if (!t) return 1;
  for (size_t i = 0; i < NOPS; i++) ops[i].run(n / 10); /* warm up */
  for (int r = 0; r < rounds; r++) {
    for (size_t i = 0; i < NOPS; i++) {
      int64_t t0 = bench_now_ns();
      ops[i].run(n);
      t[i * rounds + r] = (double)(bench_now_ns() - t0) / (double)n;
    }
  }

  bench_header("Hot path, 1 thread");
  printf("%ld calls per round; ratio = median over rounds of (row / CAS-loop double add "
         "in the same round)\n\n",
         n);
  printf("| operation | ns/call | x atomic add | x CAS add | target | met |\n");
  printf("|---|---:|---:|---:|---|---|\n");
  int missed = 0, targets = 0;
  for (size_t i = 0; i < NOPS; i++) {
    double med = bench_median(&t[i * rounds], rounds);
    double r_cas = bench_median_ratio(&t[i * rounds], &t[CAS_ROW * rounds], rounds);
    double r_add = bench_median_ratio(&t[i * rounds], &t[0], rounds);
    bool ok = !ops[i].limit || r_cas <= ops[i].limit;
    if (ops[i].limit) targets++;
    if (!ok) missed++;
    printf("| %s | %.2f | %.2f | %.2f | %s | %s |\n", ops[i].name, med, r_add, r_cas,
           ops[i].target ? ops[i].target : "", ops[i].limit ? bench_verdict(ok) : "");
  }
  printf("\ntargets met: %d of %d\n", targets - missed, targets);
  free(t);
  spectator_registry_free(reg);
  return 0;
}
