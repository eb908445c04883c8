/*
 * Concurrency tests: T threads record M times each on shared meters while
 * another thread takes snapshots in a loop. Every update must land in exactly
 * one snapshot: the sums over all snapshots (plus a final one after the
 * writers are joined) equal the exact totals, and maxima are exact.
 *
 * Amounts are whole numbers so that every sum is exact in a double: timers
 * record whole seconds (totalTime per snapshot is then a whole number of
 * seconds), summaries record 1..10. A timer's totalOfSquares is ns^2 / 1e18 per
 * snapshot, which a double holds only approximately; worse, the 128-bit ns^2
 * accumulator propagates the carry out of its low word with a second atomic
 * add, so a snapshot that lands between the two moves 2^64 ns^2 (18.45 s^2)
 * into the next interval. The sum over all snapshots is still exact, so it is
 * checked to within 0.5 s^2: each update adds at least 1 s^2, so that proves
 * that no update was lost or counted twice.
 *
 * No sleeps: threads start together on a barrier, and the snapshot thread
 * runs until the writers are done.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"
#include "meter_test_util.h"

#define T 4
#define M 250000
#define NS MT_NS_PER_S

/* Totals summed over every snapshot. */
typedef struct {
  uint64_t snapshots;
  double counter;
  double t_count, t_total, t_max;
  double t_squares;
  double d_count, d_total, d_squares, d_max;
  double p_count, p_total, p_max;
  double p_squares;
  double p_buckets[SPECTATOR_PERCENTILE_BUCKETS];
  double g_max;
  double others;        /* anything unexpected */
  char first_other[256]; /* what the first one was */
} totals_t;

typedef struct {
  spectator_registry_t *reg;
  spectator_counter_t *counter;
  spectator_timer_t *timer;
  spectator_dist_summary_t *dist;
  spectator_percentile_timer_t *ptimer;
  spectator_max_gauge_t *maxg;
  pthread_barrier_t start;
  atomic_int done;
  totals_t totals; /* written by the snapshot thread, then by main after joining it */
} shared_t;

typedef struct {
  shared_t *sh;
  int index;
} writer_arg_t;

static void unexpected(totals_t *tt, const spectator_measurement_t *m, const char *why) {
  if (tt->others++ == 0) {
    char id[160] = "-";
    if (m) spectator_id_format(m->id, id, sizeof(id));
    snprintf(tt->first_other, sizeof(tt->first_other), "%s: %s op=%d value=%.17g", why, id,
             m ? m->op : -1, m ? m->value : 0.0);
  }
}

/* Add one snapshot to the totals. Runs on the snapshot thread: anything wrong
 * is counted in tt->others, which the main thread asserts to be 0. */
static void add_snapshot(totals_t *tt, const spectator_measurements_t *ms) {
  tt->snapshots++;
  for (size_t i = 0; i < spectator_measurements_count(ms); i++) {
    const spectator_measurement_t *m = spectator_measurements_get(ms, i);
    const char *name = spectator_id_name(m->id);
    const char *stat = spectator_id_tag(m->id, "statistic");
    const char *pct = spectator_id_tag(m->id, "percentile");
    double v = m->value;
    bool timer = strcmp(name, "timer") == 0, ptimer = strcmp(name, "ptimer") == 0;
    if (strcmp(name, "counter") == 0 && strcmp(stat, "count") == 0) {
      tt->counter += v;
    } else if ((timer || ptimer) && pct) {
      unsigned idx = 0;
      char tag[8];
      snprintf(tag, sizeof(tag), "T%04X", sscanf(pct, "T%4X", &idx) == 1 ? idx : 0xFFFFu);
      if (!ptimer || strcmp(stat, "percentile") != 0 || strcmp(tag, pct) != 0 ||
          idx >= SPECTATOR_PERCENTILE_BUCKETS)
        unexpected(tt, m, "bad percentile tag");
      else
        tt->p_buckets[idx] += v;
    } else if (timer || ptimer) {
      double *count = timer ? &tt->t_count : &tt->p_count;
      double *total = timer ? &tt->t_total : &tt->p_total;
      double *max = timer ? &tt->t_max : &tt->p_max;
      double *sq = timer ? &tt->t_squares : &tt->p_squares;
      if (strcmp(stat, "count") == 0)
        *count += v;
      else if (strcmp(stat, "totalTime") == 0)
        *total += v;
      else if (strcmp(stat, "totalOfSquares") == 0)
        *sq += v;
      else if (strcmp(stat, "max") == 0 && m->op == SPECTATOR_OP_MAX)
        *max = v > *max ? v : *max;
      else
        unexpected(tt, m, "unknown statistic");
    } else if (strcmp(name, "dist") == 0) {
      if (strcmp(stat, "count") == 0)
        tt->d_count += v;
      else if (strcmp(stat, "totalAmount") == 0)
        tt->d_total += v;
      else if (strcmp(stat, "totalOfSquares") == 0)
        tt->d_squares += v;
      else if (strcmp(stat, "max") == 0 && m->op == SPECTATOR_OP_MAX)
        tt->d_max = v > tt->d_max ? v : tt->d_max;
      else
        unexpected(tt, m, "unknown statistic");
    } else if (strcmp(name, "maxg") == 0 && strcmp(stat, "max") == 0) {
      if (!(v == nearbyint(v) && v >= 0 && v < (double)T * M)) unexpected(tt, m, "bad max");
      tt->g_max = v > tt->g_max ? v : tt->g_max;
    } else {
      unexpected(tt, m, "unknown meter");
    }
  }
}

static void *writer(void *p) {
  writer_arg_t *a = p;
  shared_t *sh = a->sh;
  pthread_barrier_wait(&sh->start);
  for (int i = 0; i < M; i++) {
    if (i & 1)
      spectator_counter_increment(sh->counter);
    else
      spectator_counter_add(sh->counter, 1);
    int64_t ns = (int64_t)(i % 4 + 1) * NS; /* 1..4 s */
    spectator_timer_record_ns(sh->timer, ns);
    spectator_dist_summary_record(sh->dist, (double)(i % 10 + 1));
    spectator_percentile_timer_record_ns(sh->ptimer, ns);
    spectator_max_gauge_set(sh->maxg, (double)a->index * M + i);
  }
  return NULL;
}

static void *snapshotter(void *p) {
  shared_t *sh = p;
  pthread_barrier_wait(&sh->start);
  do {
    spectator_measurements_t *ms = spectator_registry_snapshot(sh->reg);
    if (!ms) unexpected(&sh->totals, NULL, "snapshot failed");
    add_snapshot(&sh->totals, ms);
    spectator_measurements_free(ms);
  } while (!atomic_load(&sh->done));
  return NULL;
}

static void concurrent_updates_during_snapshots_are_each_reported_exactly_once(void **state) {
  (void)state;
  static shared_t sh; /* large: keep it off the stack */
  memset(&sh, 0, sizeof(sh));
  sh.reg = mt_registry(NULL, 0);
  sh.counter = spectator_registry_counter(sh.reg, "counter", NULL);
  sh.timer = spectator_registry_timer(sh.reg, "timer", NULL);
  sh.dist = spectator_registry_dist_summary(sh.reg, "dist", NULL);
  sh.ptimer = spectator_registry_percentile_timer(sh.reg, "ptimer", NULL, 0.01, 60);
  sh.maxg = spectator_registry_max_gauge(sh.reg, "maxg", NULL);
  atomic_init(&sh.done, 0);
  assert_int_equal(pthread_barrier_init(&sh.start, NULL, T + 1), 0);

  pthread_t writers[T], snap;
  writer_arg_t args[T];
  assert_int_equal(pthread_create(&snap, NULL, snapshotter, &sh), 0);
  for (int i = 0; i < T; i++) {
    args[i] = (writer_arg_t){&sh, i};
    assert_int_equal(pthread_create(&writers[i], NULL, writer, &args[i]), 0);
  }
  for (int i = 0; i < T; i++) pthread_join(writers[i], NULL);
  atomic_store(&sh.done, 1);
  pthread_join(snap, NULL);
  spectator_measurements_t *ms = mt_snapshot(sh.reg); /* what the loop had not taken yet */
  add_snapshot(&sh.totals, ms);
  spectator_measurements_free(ms);
  pthread_barrier_destroy(&sh.start);

  const totals_t *tt = &sh.totals;
  const double n = (double)T * M;
  /* Per thread, each of 1..4 s M/4 times: total 10 * M/4 s, squares 30 * M/4 s^2. */
  const double total_s = (double)T * (M / 4) * 10;
  const double squares_s2 = (double)T * (M / 4) * 30;
  /* Per thread, each of 1..10 M/10 times: total 55 * M/10, squares 385 * M/10. */
  const double d_total = (double)T * (M / 10) * 55, d_squares = (double)T * (M / 10) * 385;
  print_message("%llu snapshots\n", (unsigned long long)tt->snapshots);
  assert_true(tt->snapshots >= 2);
  if (tt->others != 0) {
    print_error("%.0f unexpected measurements; the first: %s\n", tt->others, tt->first_other);
    fail();
  }
  assert_true(tt->counter == n);
  assert_true(tt->t_count == n);
  assert_true(tt->t_total == total_s);
  assert_true(fabs(tt->t_squares - squares_s2) < 0.5);
  assert_true(tt->t_max == 4);
  assert_true(tt->d_count == n);
  assert_true(tt->d_total == d_total);
  assert_true(tt->d_squares == d_squares);
  assert_true(tt->d_max == 10);
  assert_true(tt->p_count == n);
  assert_true(tt->p_total == total_s);
  assert_true(fabs(tt->p_squares - squares_s2) < 0.5);
  assert_true(tt->p_max == 4);
  /* One bucket per duration, each recorded T * M / 4 times, none elsewhere. */
  double bucket_sum = 0;
  for (int s = 1; s <= 4; s++)
    assert_true(tt->p_buckets[spectator_percentile_buckets_index_of(s * NS)] == n / 4);
  for (size_t i = 0; i < SPECTATOR_PERCENTILE_BUCKETS; i++) bucket_sum += tt->p_buckets[i];
  assert_true(bucket_sum == n);
  assert_true(tt->g_max == n - 1);
  /* Everything was taken: the next snapshot is empty. */
  mt_expect_empty(sh.reg);
  spectator_registry_free(sh.reg);
}

/* Threads looking up the same ids (every iteration) while incrementing. */
typedef struct {
  spectator_registry_t *reg;
  pthread_barrier_t start;
} lookup_shared_t;

#define LOOKUP_M 51200 /* a multiple of LOOKUP_IDS */
#define LOOKUP_IDS 64

static void *lookup_writer(void *p) {
  lookup_shared_t *sh = p;
  char name[16];
  pthread_barrier_wait(&sh->start);
  for (int i = 0; i < LOOKUP_M; i++) {
    snprintf(name, sizeof(name), "c%d", i % LOOKUP_IDS);
    spectator_counter_increment(spectator_registry_counter(sh->reg, name, SPECTATOR_TAGS("k", "v")));
  }
  return NULL;
}

static void concurrent_lookups_of_the_same_ids_share_meters_and_lose_no_updates(void **state) {
  (void)state;
  lookup_shared_t sh;
  sh.reg = mt_registry(NULL, 0);
  assert_int_equal(pthread_barrier_init(&sh.start, NULL, T), 0);
  pthread_t th[T];
  for (int i = 0; i < T; i++) assert_int_equal(pthread_create(&th[i], NULL, lookup_writer, &sh), 0);
  for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&sh.start);
  assert_int_equal(spectator_registry_size(sh.reg), LOOKUP_IDS);
  spectator_measurements_t *ms = mt_snapshot(sh.reg);
  mt_assert_measurement_count(ms, LOOKUP_IDS);
  for (size_t i = 0; i < LOOKUP_IDS; i++)
    assert_true(spectator_measurements_get(ms, i)->value == (double)T * LOOKUP_M / LOOKUP_IDS);
  spectator_measurements_free(ms);
  spectator_registry_free(sh.reg);
}

/* Threads creating new meters (the index grows, chunks are added, stripes
 * are handed out) while another thread takes snapshots. */
#define CREATE_PER_THREAD 3000

typedef struct {
  spectator_registry_t *reg;
  pthread_barrier_t start;
  atomic_int done;
  double sum;       /* snapshot thread: counts summed over snapshots */
  double unexpected; /* snapshot thread: anything that is not a whole count */
  uint64_t snapshots;
} create_shared_t;

typedef struct {
  create_shared_t *sh;
  int index;
} create_arg_t;

static void *creator(void *p) {
  create_arg_t *a = p;
  char name[32];
  pthread_barrier_wait(&a->sh->start);
  for (int i = 0; i < CREATE_PER_THREAD; i++) {
    snprintf(name, sizeof(name), "new.%d.%d", a->index, i);
    spectator_counter_t *c = spectator_registry_counter(a->sh->reg, name, SPECTATOR_TAGS("k", "v"));
    spectator_counter_increment(c);
    spectator_counter_add(c, 2);
  }
  return NULL;
}

static void add_create_snapshot(create_shared_t *sh, spectator_measurements_t *ms) {
  sh->snapshots++;
  if (!ms) {
    sh->unexpected++;
    return;
  }
  for (size_t i = 0; i < spectator_measurements_count(ms); i++) {
    const spectator_measurement_t *m = spectator_measurements_get(ms, i);
    if (!(m->value >= 1 && m->value <= 3) || strncmp(spectator_id_name(m->id), "new.", 4) != 0)
      sh->unexpected++;
    sh->sum += m->value;
  }
  spectator_measurements_free(ms);
}

static void *create_snapshotter(void *p) {
  create_shared_t *sh = p;
  pthread_barrier_wait(&sh->start);
  do {
    add_create_snapshot(sh, spectator_registry_snapshot(sh->reg));
  } while (!atomic_load(&sh->done));
  return NULL;
}

static void meters_created_during_snapshots_are_each_reported_exactly_once(void **state) {
  (void)state;
  static create_shared_t sh;
  memset(&sh, 0, sizeof(sh));
  sh.reg = mt_registry(NULL, 0);
  atomic_init(&sh.done, 0);
  assert_int_equal(pthread_barrier_init(&sh.start, NULL, T + 1), 0);
  pthread_t th[T], snap;
  create_arg_t args[T];
  assert_int_equal(pthread_create(&snap, NULL, create_snapshotter, &sh), 0);
  for (int i = 0; i < T; i++) {
    args[i] = (create_arg_t){&sh, i};
    assert_int_equal(pthread_create(&th[i], NULL, creator, &args[i]), 0);
  }
  for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
  atomic_store(&sh.done, 1);
  pthread_join(snap, NULL);
  pthread_barrier_destroy(&sh.start);
  add_create_snapshot(&sh, spectator_registry_snapshot(sh.reg));
  print_message("%llu snapshots\n", (unsigned long long)sh.snapshots);
  /* An increment and an add of 2 may land in different snapshots: each
   * measurement is then 1 or 2, not 3. Only the total is exact. */
  assert_true(sh.unexpected == 0);
  assert_true(sh.sum == 3.0 * T * CREATE_PER_THREAD);
  assert_int_equal(spectator_registry_size(sh.reg), T * CREATE_PER_THREAD);
  mt_expect_empty(sh.reg);
  spectator_registry_free(sh.reg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(concurrent_updates_during_snapshots_are_each_reported_exactly_once),
      cmocka_unit_test(concurrent_lookups_of_the_same_ids_share_meters_and_lose_no_updates),
      cmocka_unit_test(meters_created_during_snapshots_are_each_reported_exactly_once),
  };
  return cmocka_run_group_tests(tests, mt_setup_capture, mt_teardown_capture);
}
