/*
 * Heap bytes per meter, its id (a name and 3 tags) and its
 * share of the registry's index included.
 *
 * For each meter type a fresh registry gets N meters; the growth of the heap
 * (glibc's mallinfo2 in-use bytes, which include the allocator's own headers
 * and padding) divided by N is the cost of one meter. The breakdown shows
 * where the bytes go: the meter (carved from the registry's slabs in whole
 * cache lines), the id (its own allocation), the index (hash table slots, the
 * retired tables kept for lock-free readers, the chunk directory).
 */
#include <malloc.h>

#include "bench.h"
#include "meter.h"
#include "registry.h"

#define N 16000 /* between two table growths: the index share is typical */

typedef enum { COUNTER, TIMER, GAUGE, PCT_TIMER, DIST, MAX_GAUGE, NTYPES } kind_t;
static const char *const kind_names[] = {"counter",          "timer",        "gauge",
                                         "percentile timer", "dist summary", "max gauge"};

static void *make(spectator_registry_t *reg, kind_t k, int i) {
  char ep[32];
  snprintf(ep, sizeof(ep), "/api/v1/r%05d", i);
  const char *const *tags = SPECTATOR_TAGS("endpoint", ep, "method", "GET", "status", "2xx");
  switch (k) {
  case COUNTER: return spectator_registry_counter(reg, "myservice.requests", tags);
  case TIMER: return spectator_registry_timer(reg, "myservice.requests", tags);
  case GAUGE: return spectator_registry_gauge(reg, "myservice.requests", tags);
  case PCT_TIMER:
    return spectator_registry_percentile_timer(reg, "myservice.requests", tags, 0.001, 10);
  case DIST: return spectator_registry_dist_summary(reg, "myservice.requests", tags);
  case MAX_GAUGE: return spectator_registry_max_gauge(reg, "myservice.requests", tags);
  default: return NULL;
  }
}

/* The index, the indexes it replaced that are not freed yet, and the chunks
 * of positions. */
static size_t index_bytes(spectator_registry_t *reg) {
  size_t b = malloc_usable_size(atomic_load(&reg->table)) + 8;
  for (spectator__retired_t *r = reg->retired; r; r = r->next)
    if (r->table) b += malloc_usable_size(r->table) + 8;
  size_t n = atomic_load(&reg->end);
  for (size_t c = 0; c * SPECTATOR__CHUNK < n; c++) b += malloc_usable_size(reg->chunks[c]) + 8;
  return b;
}

static int64_t fake_now(void *ctx) { return *(int64_t *)ctx; }

/* Memory under id churn: rounds of CHURN_IDS ids never seen before, each
 * recorded once through a one-shot call, a snapshot, then 20 minutes of the
 * registry's clock (its meter TTL is 15): the heap in use after round 10 and
 * after the last. Flat means the meters of one round, whatever the rounds. */
#define CHURN_IDS 10000
#define CHURN_ROUNDS 300
static int churn(void) {
  int64_t now = 0;
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  cfg.clock = fake_now;
  cfg.clock_ctx = &now;
  spectator_registry_t *reg = spectator_registry_new(&cfg);
  if (!reg) return 0;
  char name[48];
  size_t at10 = 0, last = 0;
  printf("\n## Memory under id churn\n\n%d rounds of %d new ids each (one-shot counters, "
         "one value each), a snapshot, then 20 minutes of the registry's clock (meter TTL 15 "
         "minutes): %d million distinct ids over %.0f simulated days\n\n",
         CHURN_ROUNDS, CHURN_IDS, CHURN_ROUNDS * CHURN_IDS / 1000000,
         CHURN_ROUNDS * 20.0 / 60 / 24);
  for (int r = 0; r < CHURN_ROUNDS; r++) {
    for (int i = 0; i < CHURN_IDS; i++) {
      snprintf(name, sizeof(name), "churn.r%d.i%d", r, i);
      spectator_registry_record(reg, SPECTATOR_METER_COUNTER, name,
                                SPECTATOR_TAGS("method", "GET", "status", "2xx"), 1);
    }
    spectator_measurements_free(spectator_registry_snapshot(reg));
    now += 20LL * 60 * 1000000000;
    malloc_trim(0);
    if (r == 10) at10 = mallinfo2().uordblks;
    last = mallinfo2().uordblks;
  }
  bool flat = last <= at10 + at10 / 4;
  printf("| after round | heap in use (bytes) | meters alive |\n|---:|---:|---:|\n");
  printf("| 10 | %zu | |\n| %d | %zu | %zu |\n\nflat (within 25%% of round 10): %s\n", at10,
         CHURN_ROUNDS, last, spectator_registry_size(reg), bench_verdict(flat));
  spectator_registry_free(reg);
  return flat;
}

int main(void) {
  spectator_log_set_level(SPECTATOR_LOG_OFF);
  bench_header("Memory per meter");
  printf("%d meters of one type per registry, each with an id of a name and 3 tags (e.g. "
         "myservice.requests endpoint=/api/v1/r00042 method=GET status=2xx); heap growth "
         "(mallinfo2 in-use bytes, allocator headers included) / %d\n\n",
         N, N);
  printf("| meter | bytes/meter | struct (sizeof) | meter (slab) | id alloc | index share | target "
         "| met |\n|---|---:|---:|---:|---:|---:|---|---|\n");
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  cfg.max_meters = 1000000;
  const size_t sizes[] = {
      spectator__counter_type.size,      spectator__timer_type.size,
      spectator__gauge_type.size,        spectator__percentile_timer_type.size,
      spectator__dist_summary_type.size, spectator__max_gauge_type.size};
  int met = 1;
  for (int k = 0; k < NTYPES; k++) {
    spectator_registry_t *reg = spectator_registry_new(&cfg);
    if (!reg) return 1;
    make(reg, (kind_t)k, -1); /* the first table and chunk exist before we start */
    malloc_trim(0);
    struct mallinfo2 a = mallinfo2();
    spectator__meter_t *last = NULL;
    for (int i = 0; i < N; i++) last = make(reg, (kind_t)k, i);
    struct mallinfo2 b = mallinfo2();
    double per = (double)(b.uordblks - a.uordblks) / N;
    /* Meters: whole cache lines of a slab. Ids: glibc adds 8 bytes of header
     * and rounds to 16. */
    size_t meter_alloc =
        (sizes[k] + SPECTATOR__CACHELINE - 1) & ~(size_t)(SPECTATOR__CACHELINE - 1);
    size_t id_alloc = malloc_usable_size(last->id) + 8;
    double idx = (double)index_bytes(reg) / (N + 1);
    bool ok = k != COUNTER || per <= 256;
    if (k == COUNTER) met = ok;
    printf("| %s | %.0f | %zu | %zu | %zu | %.0f | %s | %s |\n", kind_names[k], per, sizes[k],
           meter_alloc, id_alloc, idx, k == COUNTER ? "<= 256" : "",
           k == COUNTER ? bench_verdict(ok) : "");
    spectator_registry_free(reg);
  }
  int flat = churn();
  printf("\ntargets met: %d of 2\n", met + flat);
  return 0;
}
