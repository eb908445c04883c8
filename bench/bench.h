/*
 * Helpers shared by the bench programs: a monotonic clock, medians, CPU
 * pinning, knobs from the environment and the markdown tables every program
 * prints.
 *
 * Method (the same everywhere): every figure is measured in R rounds; within a
 * round each row and its baseline run back to back, so drift on a shared
 * machine affects both alike. A row reports the median over the rounds, and
 * its ratio is the median of the per-round ratios row / baseline.
 *
 * Knobs: BENCH_ROUNDS (rounds, default per program), BENCH_SCALE (multiplies
 * iteration counts; 0.1 for a quick look).
 */
#ifndef SPECTATOR_BENCH_H
#define SPECTATOR_BENCH_H

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__GNUC__) && !defined(__clang__)
#define BENCH_NOINLINE __attribute__((noipa))
#else
#define BENCH_NOINLINE __attribute__((noinline))
#endif
#define BENCH_UNUSED __attribute__((unused))

/* The baseline every recording figure is compared with: add v to a double
 * held as bits in *p with a relaxed compare-and-swap loop, in a function the
 * compiler cannot inline or see through, as the library's own functions are
 * called. */
BENCH_NOINLINE BENCH_UNUSED static void bench_cas_add(_Atomic uint64_t *p, double v) {
  uint64_t cur = atomic_load_explicit(p, memory_order_relaxed);
  for (;;) {
    union {
      uint64_t u;
      double d;
    } x = {cur};
    x.d += v;
    if (atomic_compare_exchange_weak_explicit(p, &cur, x.u, memory_order_relaxed,
                                              memory_order_relaxed))
      return;
  }
}

/* What `--run NAME N` does (callgrind.sh counts one operation that way): run
 * the entry of the op array ops_ (n_ops_ entries, each with .name and
 * .run(long)) named op_name_, n_ times; 0, or 2 and a line for an unknown
 * name. */
#define BENCH_RUN_NAMED(ops_, n_ops_, op_name_, n_)                                \
  __extension__({                                                                  \
    int rc_ = 2;                                                                   \
    for (size_t i_ = 0; i_ < (n_ops_) && rc_; i_++)                                \
      if (strcmp((ops_)[i_].name, (op_name_)) == 0) {                              \
        (ops_)[i_].run(n_);                                                        \
        rc_ = 0;                                                                   \
      }                                                                            \
    if (rc_) fprintf(stderr, "unknown operation '%s' (see --list)\n", (op_name_)); \
    rc_;                                                                           \
  })

/* Keep the compiler from assuming anything about p or the memory behind it. */
static inline void bench_escape(const void *p) { __asm__ volatile("" : : "g"(p) : "memory"); }

static inline int64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : (x > y);
}

/* Median of n values (sorts a copy). */
static BENCH_UNUSED double bench_median(const double *v, size_t n) {
  if (n == 0) return 0;
  double *c = malloc(n * sizeof(*c));
  if (!c) abort();
  memcpy(c, v, n * sizeof(*c));
  qsort(c, n, sizeof(*c), bench_cmp_double);
  double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
  free(c);
  return m;
}

/* Median of a[i] / b[i]. */
static BENCH_UNUSED double bench_median_ratio(const double *a, const double *b, size_t n) {
  double *r = malloc((n ? n : 1) * sizeof(*r));
  if (!r) abort();
  for (size_t i = 0; i < n; i++) r[i] = b[i] > 0 ? a[i] / b[i] : 0;
  double m = bench_median(r, n);
  free(r);
  return m;
}

static BENCH_UNUSED int bench_env_int(const char *name, int dflt) {
  const char *s = getenv(name);
  if (!s || !*s) return dflt;
  int v = atoi(s);
  return v > 0 ? v : dflt;
}

/* n scaled by BENCH_SCALE (at least 1). */
static BENCH_UNUSED long bench_scaled(long n) {
  const char *s = getenv("BENCH_SCALE");
  double f = s && *s ? atof(s) : 1.0;
  if (!(f > 0)) f = 1.0;
  long v = (long)((double)n * f);
  return v > 0 ? v : 1;
}

/* The CPUs the process may run on, taken once before any pinning (threads
 * inherit their creator's affinity). */
static cpu_set_t *bench_allowed(void) {
  static cpu_set_t set;
  static int done;
  if (!done) {
    done = 1;
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
      CPU_ZERO(&set);
      long c = sysconf(_SC_NPROCESSORS_ONLN);
      for (long i = 0; i < (c > 0 ? c : 1) && i < CPU_SETSIZE; i++) CPU_SET(i, &set);
    }
  }
  return &set;
}

static BENCH_UNUSED int bench_ncpu(void) { return CPU_COUNT(bench_allowed()); }

/* Pin the calling thread to the i-th allowed CPU (modulo their number). */
static BENCH_UNUSED void bench_pin(int i) {
  cpu_set_t *allowed = bench_allowed(), one;
  int seen = 0, n = CPU_COUNT(allowed);
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (!CPU_ISSET(c, allowed)) continue;
    if (seen++ == i % n) {
      CPU_ZERO(&one);
      CPU_SET(c, &one);
      pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
      return;
    }
  }
}

/* "yes" / "NO" for a target. */
static BENCH_UNUSED const char *bench_verdict(bool ok) { return ok ? "yes" : "**NO**"; }

static BENCH_UNUSED void bench_header(const char *title) {
  printf("\n## %s\n\n", title);
  printf("(%d CPUs available; %s rounds; medians)\n\n", bench_ncpu(),
         getenv("BENCH_ROUNDS") ? getenv("BENCH_ROUNDS") : "default");
}

#endif /* SPECTATOR_BENCH_H */
