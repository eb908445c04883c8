/*
 * The lives of meters: one-shot recording (spectator_record), transient meters
 * that expire after meter_ttl_s idle and give their memory and their place
 * back, pinned meters whose pointers never dangle, and all of it racing with
 * real threads. Time is the registry's injected clock: simulated days and
 * months take seconds.
 */
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "meter.h"
#include "meter_test_util.h"
#include "publisher.h"
#include "registry.h"
#include "sanitizers.h"

#define NS 1000000000LL
#define MINUTE (60 * NS)
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)

/* A registry with a 15-minute TTL on a fake clock. */
static spectator_registry_t *new_registry(tu_clock_t *clock, size_t max_meters) {
  return mt_registry_with_ttl(clock, max_meters, 900);
}

/* The sum of the measurements of a snapshot named `name` with
 * statistic=count, and how many there were. */
static double sum_counts(spectator_registry_t *reg, const char *prefix, size_t *n) {
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  double sum = 0;
  size_t k = 0;
  for (size_t i = 0; i < spectator_measurements_count(ms); i++) {
    const spectator_measurement_t *m = spectator_measurements_get(ms, i);
    if (strncmp(spectator_id_name(m->id), prefix, strlen(prefix)) != 0) continue;
    sum += m->value;
    k++;
  }
  spectator_measurements_free(ms);
  if (n) *n = k;
  return sum;
}

static void one_shot_calls_record_every_meter_type_exactly(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = new_registry(&clock, 0);
  const char *const *t = SPECTATOR_TAGS("k", "v");
  spectator_registry_record(reg, SPECTATOR_METER_COUNTER, "os.c", t, 2);
  spectator_registry_record(reg, SPECTATOR_METER_COUNTER, "os.c", t, 3);
  spectator_registry_record(reg, SPECTATOR_METER_TIMER, "os.t", t, 0.5);
  spectator_registry_record(reg, SPECTATOR_METER_DIST_SUMMARY, "os.d", t, 7);
  spectator_registry_record(reg, SPECTATOR_METER_GAUGE, "os.g", t, 42);
  spectator_registry_record(reg, SPECTATOR_METER_MAX_GAUGE, "os.m", t, 5);
  spectator_registry_record(reg, SPECTATOR_METER_MAX_GAUGE, "os.m", t, 9);
  spectator_registry_record(reg, SPECTATOR_METER_MONOTONIC_COUNTER, "os.mc", t, 10);
  /* the default ranges: 10 ms..60 s and 0..2^63 */
  spectator_registry_record(reg, SPECTATOR_METER_PERCENTILE_TIMER, "os.pt", t, 0.001);
  spectator_registry_record(reg, SPECTATOR_METER_PERCENTILE_DIST_SUMMARY, "os.pd", t, 100);
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  tu_assert_measurement(ms, "os.c", SPECTATOR_TAGS("k", "v", "statistic", "count"), 5);
  tu_assert_measurement(ms, "os.t", SPECTATOR_TAGS("k", "v", "statistic", "totalTime"), 0.5);
  tu_assert_measurement(ms, "os.d", SPECTATOR_TAGS("k", "v", "statistic", "totalAmount"), 7);
  tu_assert_measurement(ms, "os.g", SPECTATOR_TAGS("k", "v", "statistic", "gauge"), 42);
  tu_assert_measurement(ms, "os.m", SPECTATOR_TAGS("k", "v", "statistic", "max"), 9);
  char pct[6];
  snprintf(pct, sizeof(pct), "T%04zX",
           spectator_percentile_buckets_index_of(10 * 1000 * 1000)); /* clamped to 10 ms */
  tu_assert_measurement(ms, "os.pt",
                        SPECTATOR_TAGS("k", "v", "statistic", "percentile", "percentile", pct), 1);
  snprintf(pct, sizeof(pct), "D%04zX", spectator_percentile_buckets_index_of(100));
  tu_assert_measurement(ms, "os.pd",
                        SPECTATOR_TAGS("k", "v", "statistic", "percentile", "percentile", pct), 1);
  spectator_measurements_free(ms);
  /* a monotonic counter reports its growth from the second set on */
  spectator_registry_record(reg, SPECTATOR_METER_MONOTONIC_COUNTER, "os.mc", t, 25);
  ms = spectator_registry_snapshot(reg);
  tu_assert_measurement(ms, "os.mc", SPECTATOR_TAGS("k", "v", "statistic", "count"), 15);
  spectator_measurements_free(ms);
  assert_int_equal(spectator_registry_size(reg), 8);
  spectator_registry_free(reg);
}

static void one_shot_calls_refuse_bad_input_with_a_log_line(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = new_registry(&clock, 0);
  tu_log_capture();
  spectator_registry_record(NULL, SPECTATOR_METER_COUNTER, "x", NULL, 1);
  spectator_registry_record(reg, SPECTATOR_METER_COUNTER, NULL, NULL, 1);
  spectator_registry_record(reg, SPECTATOR_METER_COUNTER, "x", SPECTATOR_TAGS("odd"), 1);
  spectator_registry_record(reg, (spectator_meter_type_t)99, "x", NULL, 1);
  spectator_registry_record(reg, (spectator_meter_type_t)-1, "x", NULL, 1);
  spectator_registry_record(reg, SPECTATOR_METER_COUNTER, "dual", NULL, 1);
  spectator_registry_record(reg, SPECTATOR_METER_TIMER, "dual", NULL, 1);
  tu_log_release();
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "NULL registry"), 1);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "meter type 99"), 1);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "meter type -1"), 1);
  assert_int_equal(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "already a counter"), 1);
  assert_true(tu_log_count() >= 6); /* the bad name and tags too */
  assert_int_equal(spectator_registry_size(reg), 1);
  spectator_measurements_t *ms = spectator_registry_snapshot(reg);
  assert_int_equal(spectator_measurements_count(ms), 1); /* dual, the counter */
  spectator_measurements_free(ms);
  spectator_registry_free(reg);
}

static void an_idle_transient_meter_expires_and_comes_back_on_the_next_call(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = new_registry(&clock, 0);
  spectator_registry_record(reg, SPECTATOR_METER_COUNTER, "churn", NULL, 1);
  assert_true(sum_counts(reg, "churn", NULL) == 1);
  assert_int_equal(spectator_registry_size(reg), 1);
  tu_clock_advance(&clock, 15 * MINUTE); /* idle for exactly the TTL: kept */
  assert_true(sum_counts(reg, "churn", NULL) == 0);
  assert_int_equal(spectator_registry_size(reg), 1);
  tu_clock_advance(&clock, 1);
  assert_true(sum_counts(reg, "churn", NULL) == 0);
  assert_int_equal(spectator_registry_size(reg), 0); /* expired */
  spectator_registry_record(reg, SPECTATOR_METER_COUNTER, "churn", NULL, 4);
  assert_int_equal(spectator_registry_size(reg), 1);
  assert_true(sum_counts(reg, "churn", NULL) == 4);
  spectator_registry_free(reg);
}

static void a_pinned_meter_idle_for_two_days_is_reported_when_recorded_again(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = new_registry(&clock, 0);
  spectator_counter_t *errors = spectator_registry_counter(reg, "weekly.errors", NULL);
  spectator_counter_increment(errors);
  assert_true(sum_counts(reg, "weekly", NULL) == 1);
  for (int i = 0; i < 2 * 24 * 4; i++) { /* two days of snapshots every 15 minutes */
    tu_clock_advance(&clock, 15 * MINUTE);
    size_t n;
    assert_true(sum_counts(reg, "weekly", &n) == 0 && n == 0); /* idle: not reported */
  }
  assert_int_equal(spectator_registry_size(reg), 1);
  assert_ptr_equal(spectator_registry_counter(reg, "weekly.errors", NULL), errors);
  spectator_counter_add(errors, 3);
  assert_true(sum_counts(reg, "weekly", NULL) == 3);
  spectator_registry_free(reg);
}

static void a_lookup_pins_a_transient_meter(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = new_registry(&clock, 0);
  spectator_registry_record(reg, SPECTATOR_METER_COUNTER, "pinme", NULL, 1);
  spectator_counter_t *c = spectator_registry_counter(reg, "pinme", NULL);
  assert_true(spectator_counter_count(c) == 1); /* the same meter */
  assert_true(sum_counts(reg, "pinme", NULL) == 1);
  tu_clock_advance(&clock, DAY);
  assert_true(sum_counts(reg, "pinme", NULL) == 0);
  assert_int_equal(spectator_registry_size(reg), 1); /* pinned: not expired */
  spectator_counter_add(c, 2);
  spectator_registry_record(reg, SPECTATOR_METER_COUNTER, "pinme", NULL, 5);
  assert_true(sum_counts(reg, "pinme", NULL) == 7);
  spectator_registry_free(reg);
}

static void the_cap_counts_both_kinds_and_expired_meters_free_their_place(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = new_registry(&clock, 10);
  char name[32];
  for (int i = 0; i < 5; i++) {
    snprintf(name, sizeof(name), "cap.pinned.%d", i);
    spectator_counter_increment(spectator_registry_counter(reg, name, NULL));
    snprintf(name, sizeof(name), "cap.transient.%d", i);
    spectator_registry_record(reg, SPECTATOR_METER_COUNTER, name, NULL, 1);
  }
  assert_int_equal(spectator_registry_size(reg), 10);
  tu_log_capture();
  spectator_registry_record(reg, SPECTATOR_METER_COUNTER, "cap.over", NULL, 1);
  assert_true(spectator__is_noop(spectator_registry_counter(reg, "cap.over", NULL)));
  tu_log_release();
  assert_true(tu_log_count_matching(SPECTATOR_LOGGER_REGISTRY, "registry is full") >= 1);
  /* Both refusals are counted, by a meter of the library's own: it exists at
   * the cap because it is outside it (and it is a meter of the registry). */
  assert_int_equal(spectator_registry_size(reg), 11);
  assert_true(sum_counts(reg, "spectator.measurements", NULL) == 2);
  assert_true(sum_counts(reg, "cap.", NULL) == 0); /* that snapshot took them */
  for (int i = 0; i < 5; i++) {
    snprintf(name, sizeof(name), "cap.pinned.%d", i);
    spectator_counter_increment(spectator_registry_counter(reg, name, NULL));
    snprintf(name, sizeof(name), "cap.transient.%d", i);
    spectator_registry_record(reg, SPECTATOR_METER_COUNTER, name, NULL, 1);
  }
  assert_true(sum_counts(reg, "cap.", NULL) == 10);
  tu_clock_advance(&clock, HOUR);
  sum_counts(reg, "cap.", NULL); /* the transient ones expire */
  assert_int_equal(spectator_registry_size(reg), 5 + 1);
  for (int i = 0; i < 5; i++) {
    snprintf(name, sizeof(name), "cap.new.%d", i);
    spectator_registry_record(reg, SPECTATOR_METER_COUNTER, name, NULL, 2);
  }
  assert_int_equal(spectator_registry_size(reg), 10 + 1);
  assert_true(sum_counts(reg, "cap.new", NULL) == 10);
  spectator_registry_free(reg);
}

/* Heap in use, by the allocator's count. */
static size_t heap_in_use(void) {
  malloc_trim(0);
  return mallinfo2().uordblks;
}

static void churn_for_simulated_months_keeps_memory_flat_and_reports_every_id(void **state) {
  (void)state;
  /* Every 12 simulated hours, IDS ids never seen before get one value each,
   * through one-shot calls; a snapshot then reports them. 200 rounds: 100
   * days and 2 million ids (a tenth of it under the sanitizers). */
  const int rounds = TU_UNDER_SANITIZER ? 40 : 200, ids = TU_UNDER_SANITIZER ? 2000 : 10000;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = new_registry(&clock, 0);
  char name[48];
  size_t heap_warm = 0, heap_max = 0;
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < ids; i++) {
      snprintf(name, sizeof(name), "churn.r%d.i%d", r, i);
      spectator_registry_record(reg, SPECTATOR_METER_COUNTER, name, NULL, 1);
    }
    size_t n;
    double sum = sum_counts(reg, "churn.", &n);
    if (sum != ids || n != (size_t)ids) {
      print_error("round %d: %zu ids reported, sum %.0f\n", r, n, sum);
      fail();
    }
    tu_clock_advance(&clock, 12 * HOUR);
    if (r == 10) heap_warm = heap_in_use();
    if (r > 10) {
      size_t h = heap_in_use();
      if (h > heap_max) heap_max = h;
    }
    /* the previous round's ids have expired: only this round's are alive */
    assert_true(spectator_registry_size(reg) <= (size_t)ids);
  }
  print_message("    %d rounds of %d new ids: heap %zu bytes after round 10, at most %zu after\n",
                rounds, ids, heap_warm, heap_max);
  /* flat: the meters of one round, whatever the number of rounds (the
   * sanitizers' allocators do not count for mallinfo2: 0) */
  if (heap_warm) assert_true(heap_max < heap_warm + heap_warm / 4);
  spectator_registry_free(reg);
}

/* --- racing expiry --------------------------------------------------------- */

#define RACE_IDS 64
#define RACE_THREADS 2

typedef struct {
  spectator_registry_t *reg;
  _Atomic bool *stop;
  uint64_t seed;
  _Atomic uint64_t recorded;
} racer_t;

/* Until the racers have made `n` more calls (they run on their own: this only
 * lets them). */
static void let_run(racer_t *r, int k, uint64_t n) {
  uint64_t start = 0, now;
  for (int i = 0; i < k; i++) start += atomic_load(&r[i].recorded);
  do {
    sched_yield();
    now = 0;
    for (int i = 0; i < k; i++) now += atomic_load(&r[i].recorded);
  } while (now < start + n);
}

static void *race_records(void *arg) {
  racer_t *r = arg;
  char name[32];
  while (!atomic_load_explicit(r->stop, memory_order_relaxed)) {
    /* a few ids at a time, so most ids are idle at most snapshots */
    r->seed ^= r->seed << 13, r->seed ^= r->seed >> 7, r->seed ^= r->seed << 17;
    snprintf(name, sizeof(name), "race.%u", (unsigned)(r->seed % RACE_IDS));
    spectator_registry_record(r->reg, SPECTATOR_METER_COUNTER, name, NULL, 1);
    /* share the two cores with the snapshots */
    if (atomic_fetch_add_explicit(&r->recorded, 1, memory_order_relaxed) % 64 == 63) sched_yield();
  }
  return NULL;
}

static void one_shot_calls_racing_expiry_lose_nothing_and_count_nothing_twice(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = new_registry(&clock, 0);
  _Atomic bool stop = false;
  racer_t racers[RACE_THREADS];
  pthread_t th[RACE_THREADS];
  for (int i = 0; i < RACE_THREADS; i++) {
    racers[i] = (racer_t){reg, &stop, 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1), 0};
    assert_int_equal(pthread_create(&th[i], NULL, race_records, &racers[i]), 0);
  }
  /* Every snapshot comes an hour after the last: every id not recorded on
   * since expires, while the racers record on it. */
  double reported = 0;
  int snapshots = TU_UNDER_SANITIZER ? 200 : 1000;
  for (int s = 0; s < snapshots; s++) {
    let_run(racers, RACE_THREADS, 50);
    tu_clock_advance(&clock, HOUR);
    reported += sum_counts(reg, "race.", NULL);
  }
  atomic_store(&stop, true);
  uint64_t recorded = 0;
  for (int i = 0; i < RACE_THREADS; i++) {
    pthread_join(th[i], NULL);
    recorded += atomic_load(&racers[i].recorded);
  }
  /* What was recorded into meters that were expiring is reported by the
   * snapshots after their grace period. */
  for (int s = 0; s < 3; s++) {
    tu_clock_advance(&clock, HOUR);
    reported += sum_counts(reg, "race.", NULL);
  }
  print_message("    %llu one-shot calls racing %d snapshots that expire their meters\n",
                (unsigned long long)recorded, snapshots);
  assert_true(reported == (double)recorded);
  assert_int_equal(spectator_registry_size(reg), 0);
  spectator_registry_free(reg);
}

/* Lookups and one-shot calls of the same ids from two threads, while a third
 * expires them: every pointer handed out stays valid. */
typedef struct {
  spectator_registry_t *reg;
  _Atomic bool *stop;
  int which;
  _Atomic uint64_t recorded;
} mixer_t;

static void *mix(void *arg) {
  mixer_t *m = arg;
  char name[32];
  for (uint64_t i = 0; !atomic_load_explicit(m->stop, memory_order_relaxed); i++) {
    snprintf(name, sizeof(name), "mix.%u", (unsigned)(i % 16));
    if (m->which == 0) {
      spectator_registry_record(m->reg, SPECTATOR_METER_COUNTER, name, NULL, 1);
    } else {
      spectator_counter_increment(spectator_registry_counter(m->reg, name, NULL));
    }
    if (atomic_fetch_add_explicit(&m->recorded, 1, memory_order_relaxed) % 64 == 63) sched_yield();
  }
  return NULL;
}

/* Until each mixer has made n more calls. */
static void let_mix(mixer_t *m, uint64_t n) {
  uint64_t a = atomic_load(&m[0].recorded) + n, b = atomic_load(&m[1].recorded) + n;
  while (atomic_load(&m[0].recorded) < a || atomic_load(&m[1].recorded) < b) sched_yield();
}

static void lookups_and_one_shot_calls_of_the_same_ids_race_expiry_safely(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = new_registry(&clock, 0);
  _Atomic bool stop = false;
  mixer_t ms[2] = {{reg, &stop, 0, 0}, {reg, &stop, 1, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, mix, &ms[i]), 0);
  double reported = 0;
  for (int s = 0; s < (TU_UNDER_SANITIZER ? 200 : 1000); s++) {
    let_mix(ms, 20);
    tu_clock_advance(&clock, HOUR);
    reported += sum_counts(reg, "mix.", NULL);
  }
  atomic_store(&stop, true);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  for (int s = 0; s < 3; s++) {
    tu_clock_advance(&clock, HOUR);
    reported += sum_counts(reg, "mix.", NULL);
  }
  assert_true(reported == (double)(atomic_load(&ms[0].recorded) + atomic_load(&ms[1].recorded)));
  /* the lookups pinned all 16: none expired since */
  assert_int_equal(spectator_registry_size(reg), 16);
  spectator_registry_free(reg);
}

/* --- a late end of a snapshot ----------------------------------------------- */

/* Holds the registry's snapshot lock from when it is told until 200 ms have
 * passed (a bound, so that a thread waiting for the lock gets it). */
typedef struct {
  spectator_registry_t *reg;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stage; /* 1: take it, 2: holding */
} holder_t;

static void *hold_snapshot_lock(void *arg) {
  holder_t *h = arg;
  pthread_mutex_lock(&h->mu);
  while (h->stage < 1) pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
  pthread_mutex_lock(&h->reg->snap_lock);
  pthread_mutex_lock(&h->mu);
  h->stage = 2;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
  struct timespec nap = {0, 200 * 1000 * 1000};
  nanosleep(&nap, NULL);
  pthread_mutex_unlock(&h->reg->snap_lock);
  return NULL;
}

typedef struct {
  holder_t *h;
  int64_t deadline_ns;
} late_send_t;

/* The send step of the publish: another thread takes the snapshot lock and
 * the publish's deadline passes before this returns. */
static bool send_while_the_lock_is_taken(void *ctx, const spectator__batch_t *body) {
  (void)body;
  late_send_t *l = ctx;
  pthread_mutex_lock(&l->h->mu);
  l->h->stage = 1;
  pthread_cond_broadcast(&l->h->cv);
  while (l->h->stage < 2) pthread_cond_wait(&l->h->cv, &l->h->mu);
  pthread_mutex_unlock(&l->h->mu);
  while (spectator__monotonic_ns() <= l->deadline_ns) sched_yield();
  return true;
}

static void a_publish_that_ends_late_still_lets_expired_meters_be_freed(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = new_registry(&clock, 0);
  spectator_registry_record(reg, SPECTATOR_METER_COUNTER, "late.end", NULL, 1);
  holder_t h = {reg, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, hold_snapshot_lock, &h), 0);
  late_send_t l = {&h, spectator__monotonic_ns() + 50 * 1000 * 1000};
  spectator__stream_t st;
  spectator__publish_stream(reg, SPECTATOR__ENCODE_RAW, l.deadline_ns, send_while_the_lock_is_taken,
                            &l, &st);
  pthread_join(th, NULL);
  /* The publish's snapshot ended: later snapshots free what expires. */
  assert_int_equal(reg->passes, 0);
  tu_clock_advance(&clock, HOUR);
  sum_counts(reg, "late.", NULL); /* expires it */
  sum_counts(reg, "late.", NULL); /* frees it after the grace period */
  assert_int_equal(spectator_registry_size(reg), 0);
  assert_null(reg->retired);
  spectator_registry_free(reg);
}

/* --- fork ------------------------------------------------------------------ */

typedef struct {
  spectator_registry_t *reg;
  tu_clock_t *clock;
} fork_arg_t;

static long child_expires_on_its_own(void *p) {
  fork_arg_t *a = p;
  /* inherited: the parent's transient meter, and the parent's clock value */
  if (spectator_registry_size(a->reg) != 1) return 1;
  spectator_registry_record(a->reg, SPECTATOR_METER_COUNTER, "forked.child", NULL, 1);
  if (sum_counts(a->reg, "forked.", NULL) != 1) return 2; /* the child's only */
  tu_clock_advance(a->clock, HOUR);
  sum_counts(a->reg, "forked.", NULL);
  if (spectator_registry_size(a->reg) != 0) return 3; /* both expired, in the child */
  return 0;
}

static void a_forked_child_inherits_the_meters_and_expires_them_on_its_own(void **state) {
  (void)state;
  tu_clock_t clock = {0};
  spectator_registry_t *reg = new_registry(&clock, 0);
  spectator_registry_record(reg, SPECTATOR_METER_COUNTER, "forked.parent", NULL, 1);
  fork_arg_t a = {reg, &clock};
  assert_int_equal(tu_in_child(child_expires_on_its_own, &a), 0);
  /* the parent's are the parent's */
  assert_int_equal(spectator_registry_size(reg), 1);
  assert_true(sum_counts(reg, "forked.", NULL) == 1);
  spectator_registry_free(reg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(one_shot_calls_record_every_meter_type_exactly),
      cmocka_unit_test(one_shot_calls_refuse_bad_input_with_a_log_line),
      cmocka_unit_test(an_idle_transient_meter_expires_and_comes_back_on_the_next_call),
      cmocka_unit_test(a_pinned_meter_idle_for_two_days_is_reported_when_recorded_again),
      cmocka_unit_test(a_lookup_pins_a_transient_meter),
      cmocka_unit_test(the_cap_counts_both_kinds_and_expired_meters_free_their_place),
      cmocka_unit_test(churn_for_simulated_months_keeps_memory_flat_and_reports_every_id),
      cmocka_unit_test(one_shot_calls_racing_expiry_lose_nothing_and_count_nothing_twice),
      cmocka_unit_test(lookups_and_one_shot_calls_of_the_same_ids_race_expiry_safely),
      cmocka_unit_test(a_forked_child_inherits_the_meters_and_expires_them_on_its_own),
      cmocka_unit_test(a_publish_that_ends_late_still_lets_expired_meters_be_freed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
