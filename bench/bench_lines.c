/*
 * spectatord's line protocol (the udp output), in one run:
 *
 * 1. Recording on held meters with the udp output, against the CAS-loop
 *    baseline (bench_hotpath's), and a thin client beside it: a line
 *    formatted and sent with sendto() per update, the way spectator-py 1.x,
 *    spectator-cpp 2.x and spectator-go write to spectatord (the id's text
 *    cached, as spectator-py caches spectatord_id). The registry's publishing
 *    thread runs and drains the sample rings; timer and summary rows record in
 *    chunks below a ring's capacity and wait, untimed, for the thread to
 *    drain them, so every timed call takes the path that stores its sample.
 * 2. A publish of 100,000 lines: 100,000 counters measured into lines and
 *    sent over UDP, beside the aggregator's cycle for the same counters
 *    (measure, encode, gzip: spectator__publish_stream, no network); and a
 *    drain of timer samples into lines, per line.
 *
 * Everything goes to a UDP socket on 127.0.0.1 read by a thread that
 * discards what it receives.
 *
 *   bench_lines                      the tables
 *   bench_lines --list               the operation names of table 1
 *   bench_lines --run <op> <calls>   just <calls> calls of one operation with
 *                                    the udp output and no publishing thread,
 *                                    for callgrind (BENCH_PROG=bench_lines
 *                                    CALLGRIND_CALLS=4000 bench/callgrind.sh:
 *                                    2 x 4000 samples fit one ring)
 */
#include <math.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "bench.h"
#include "output.h"
#include "publisher.h"
#include "registry.h"
#include "samples.h"

/* ------------------------------------------------------------------------ */
/* A receiver that discards                                                  */
/* ------------------------------------------------------------------------ */

static int sink_fd;
static _Atomic bool sink_stop;
static _Atomic uint64_t sink_bytes, sink_datagrams;

static void *sink_run(void *arg) {
  (void)arg;
  char *buf = malloc(65536);
  while (!atomic_load(&sink_stop)) {
    ssize_t n = recv(sink_fd, buf, 65536, 0);
    if (n > 0) {
      atomic_fetch_add(&sink_bytes, (uint64_t)n);
      atomic_fetch_add(&sink_datagrams, 1);
    }
  }
  free(buf);
  return NULL;
}

static int sink_start(pthread_t *th) {
  sink_fd = socket(AF_INET, SOCK_DGRAM, 0);
  int size = 8 << 20;
  setsockopt(sink_fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  struct timeval tv = {0, 100000};
  setsockopt(sink_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  if (bind(sink_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      getsockname(sink_fd, (struct sockaddr *)&a, &len) != 0)
    abort();
  pthread_create(th, NULL, sink_run, NULL);
  return ntohs(a.sin_port);
}

static spectator_registry_t *udp_registry(int port, bool start, size_t max_meters) {
  char loc[64];
  snprintf(loc, sizeof(loc), "udp://127.0.0.1:%d", port);
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.output_location = loc;
  cfg.env_common_tags = 0;
  cfg.auto_start = start;
  cfg.flush_at_exit = 0;
  cfg.max_meters = max_meters;
  spectator_registry_t *r = spectator_registry_new(&cfg);
  if (!r) abort();
  return r;
}

/* Samples waiting in the rings. */
static uint64_t pending(spectator_registry_t *r) {
  uint64_t n = 0;
  for (size_t i = 0; i <= r->samples->ring_mask; i++) {
    spectator__sample_ring_t *ring = &r->samples->rings[i];
    n += atomic_load_explicit(&ring->tail, memory_order_relaxed) -
         __atomic_load_n(&ring->head, __ATOMIC_RELAXED);
  }
  return n;
}

/* ------------------------------------------------------------------------ */
/* Table 1: recording                                                        */
/* ------------------------------------------------------------------------ */

static _Alignas(64) _Atomic uint64_t base_dbl;
static spectator_registry_t *reg;
static spectator_counter_t *counter;
static spectator_timer_t *timer;
static spectator_dist_summary_t *summary;
static spectator_percentile_timer_t *pct_timer;
static double secs[16];
static int64_t nanos[16];
static double amounts[16];

/* The thin client: a socket, the address, and the ids' text. */
static int thin_fd;
static struct sockaddr_in thin_addr;
static const char *thin_counter_id = "server.requestCount,endpoint=api_v1_items,status=2xx";
static const char *thin_timer_id = "server.requestLatency,endpoint=api_v1_items,status=2xx";

BENCH_NOINLINE static void thin_send(const char *type, const char *id, double v) {
  char line[256];
  int n = snprintf(line, sizeof(line), "%s:%s:%.17g", type, id, v);
  sendto(thin_fd, line, (size_t)n, 0, (struct sockaddr *)&thin_addr, sizeof(thin_addr));
}

#define LOOP(body)               \
  for (long i = 0; i < n; i++) { \
    body;                        \
  }

BENCH_NOINLINE static void run_cas_add(long n){LOOP(bench_cas_add(&base_dbl, 1.5))} BENCH_NOINLINE
    static void run_increment(long n){LOOP(spectator_counter_increment(counter))} BENCH_NOINLINE
    static void run_add(long n){LOOP(spectator_counter_add(counter, 1.5))} BENCH_NOINLINE
    static void run_timer(long n){LOOP(spectator_timer_record(timer, secs[i & 15]))} BENCH_NOINLINE
    static void run_timer_ns(long n){
        LOOP(spectator_timer_record_ns(timer, nanos[i & 15]))} BENCH_NOINLINE
    static void run_summary(long n){
        LOOP(spectator_dist_summary_record(summary, amounts[i & 15]))} BENCH_NOINLINE
    static void run_pct_timer(long n){
        LOOP(spectator_percentile_timer_record(pct_timer, secs[i & 15]))} BENCH_NOINLINE
    static void run_thin_counter(long n){LOOP(thin_send("c", thin_counter_id, 1))} BENCH_NOINLINE
    static void run_thin_timer(long n) {
  LOOP(thin_send("t", thin_timer_id, secs[i & 15]))
}

typedef struct {
  const char *name;
  void (*run)(long n);
  bool samples; /* records into the rings: timed in chunks that fit one */
  bool thin;    /* the thin client: fewer calls */
  const char *target;
  double limit; /* max ratio to the CAS baseline, 0 = none */
} op_t;

static const op_t ops[] = {
    {"baseline: CAS-loop double add", run_cas_add, false, false, NULL, 0},
    {"udp: counter increment", run_increment, false, false, "<= 1.5x", 1.5},
    {"udp: counter add (1.5)", run_add, false, false, "<= 1.5x", 1.5},
    {"udp: timer record (s)", run_timer, true, false, "<= 3x", 3.0},
    {"udp: timer record_ns", run_timer_ns, true, false, "<= 3x", 3.0},
    {"udp: dist summary record", run_summary, true, false, NULL, 0},
    {"udp: percentile timer record", run_pct_timer, true, false, NULL, 0},
    {"thin client: counter increment (line + sendto)", run_thin_counter, false, true, NULL, 0},
    {"thin client: timer record (line + sendto)", run_thin_timer, false, true, NULL, 0},
};
#define NOPS (sizeof(ops) / sizeof(ops[0]))
#define CAS_ROW 0
/* A chunk of recorded samples: below a ring's 8192. */
#define CHUNK 4096

static void setup_meters(spectator_registry_t *r) {
  const char *const *tags = SPECTATOR_TAGS("endpoint", "api_v1_items", "status", "2xx");
  counter = spectator_registry_counter(r, "server.requestCount", tags);
  timer = spectator_registry_timer(r, "server.requestLatency", tags);
  summary = spectator_registry_dist_summary(r, "server.responseSize", tags);
  pct_timer = spectator_registry_percentile_timer(r, "server.pctLatency", tags, 0.001, 10);
  for (int i = 0; i < 16; i++) {
    secs[i] = 0.001 * pow(2000.0, i / 15.0);
    nanos[i] = (int64_t)(secs[i] * 1e9);
    amounts[i] = (double)(100 + 97 * i);
  }
}

/* ns per call of n calls; sample rows in chunks, each drained by the
 * publishing thread before the next (untimed). */
static double time_op(const op_t *op, long n) {
  if (!op->samples) {
    int64_t t0 = bench_now_ns();
    op->run(n);
    return (double)(bench_now_ns() - t0) / (double)n;
  }
  int64_t total = 0;
  for (long done = 0; done < n; done += CHUNK) {
    while (pending(reg) > 0) usleep(200);
    int64_t t0 = bench_now_ns();
    op->run(CHUNK);
    total += bench_now_ns() - t0;
  }
  return (double)total / (double)((n + CHUNK - 1) / CHUNK * CHUNK);
}

static void table_recording(void) {
  int rounds = bench_env_int("BENCH_ROUNDS", 11);
  long n = bench_scaled(1000000), n_samples = bench_scaled(100000), n_thin = bench_scaled(20000);
  double *t = calloc(NOPS * (size_t)rounds, sizeof(double));
  uint64_t dropped_before = spectator__samples_take_dropped(reg->samples);
  (void)dropped_before;
  for (size_t i = 0; i < NOPS; i++) time_op(&ops[i], ops[i].thin ? 1000 : CHUNK); /* warm up */
  for (int r = 0; r < rounds; r++)
    for (size_t i = 0; i < NOPS; i++)
      t[i * rounds + r] = time_op(&ops[i], ops[i].thin ? n_thin : ops[i].samples ? n_samples : n);
  bench_header("Recording with the udp output, 1 thread (publishing thread draining)");
  printf("calls per round: %ld (counters, baseline), %ld (samples, in chunks of %d), %ld (thin "
         "client); ratio = median over rounds of row / CAS-loop double add in the same round\n\n",
         n, n_samples, CHUNK, n_thin);
  printf("| operation | ns/call | x CAS add | target | met |\n|---|---:|---:|---|---|\n");
  int missed = 0, targets = 0;
  for (size_t i = 0; i < NOPS; i++) {
    double med = bench_median(&t[i * rounds], rounds);
    double ratio = bench_median_ratio(&t[i * rounds], &t[CAS_ROW * rounds], rounds);
    bool ok = !ops[i].limit || ratio <= ops[i].limit;
    targets += ops[i].limit > 0;
    missed += !ok;
    printf("| %s | %.2f | %.2f | %s | %s |\n", ops[i].name, med, ratio,
           ops[i].target ? ops[i].target : "", ops[i].limit ? bench_verdict(ok) : "");
  }
  double thin_c = bench_median(&t[7 * rounds], rounds),
         ours_c = bench_median(&t[1 * rounds], rounds);
  double thin_t = bench_median(&t[8 * rounds], rounds),
         ours_t = bench_median(&t[4 * rounds], rounds);
  printf("\ntargets met: %d of %d; the thin client costs %.0fx (counter) and %.0fx (timer) what "
         "spectator-c's udp output costs per update\n",
         targets - missed, targets, thin_c / ours_c, thin_t / ours_t);
  spectator__output_cycle(reg, 0);
  uint64_t lost = spectator__samples_take_dropped(reg->samples);
  printf("samples dropped by full rings during the run: %llu\n", (unsigned long long)lost);
  free(t);
}

/* ------------------------------------------------------------------------ */
/* Table 2: publishing                                                       */
/* ------------------------------------------------------------------------ */

static bool no_send(void *ctx, const spectator__batch_t *body) {
  (void)ctx;
  (void)body;
  return true;
}

static void table_publish(int port) {
  enum { N = 100000 };
  int rounds = bench_env_int("BENCH_ROUNDS", 11) / 2 + 1;
  spectator_registry_t *lines = udp_registry(port, false, 2 * N);
  spectator_config_t cfg;
  spectator_config_init(&cfg);
  cfg.env_common_tags = 0;
  cfg.auto_start = 0;
  cfg.max_meters = 2 * N;
  spectator_registry_t *agg = spectator_registry_new(&cfg);
  spectator_counter_t **cl = calloc(N, sizeof(*cl)), **ca = calloc(N, sizeof(*ca));
  char name[64], ep[32];
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof(name), "app.requests.%d", i / 100);
    snprintf(ep, sizeof(ep), "ep%d", i % 100);
    const char *const *tags = SPECTATOR_TAGS("endpoint", ep, "status", "2xx");
    cl[i] = spectator_registry_counter(lines, name, tags);
    ca[i] = spectator_registry_counter(agg, name, tags);
  }
  double *t_lines = calloc((size_t)rounds, sizeof(double));
  double *t_agg = calloc((size_t)rounds, sizeof(double));
  double *t_drain = calloc((size_t)rounds, sizeof(double));
  uint64_t bytes = 0, dgrams = 0;
  spectator_timer_t *tm = spectator_registry_timer(lines, "server.requestLatency",
                                                   SPECTATOR_TAGS("endpoint", "api_v1_items"));
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < N; i++) {
      spectator_counter_add(cl[i], i + 1);
      spectator_counter_add(ca[i], i + 1);
    }
    uint64_t b0 = atomic_load(&sink_bytes), d0 = atomic_load(&sink_datagrams);
    int64_t t0 = bench_now_ns();
    spectator__output_cycle(lines, 0);
    t_lines[r] = (double)(bench_now_ns() - t0);
    /* what arrived: let the receiver catch up */
    usleep(200 * 1000);
    bytes = atomic_load(&sink_bytes) - b0;
    dgrams = atomic_load(&sink_datagrams) - d0;
    spectator__stream_t st;
    t0 = bench_now_ns();
    spectator__publish_stream(agg, 1, 0, no_send, NULL, &st);
    t_agg[r] = (double)(bench_now_ns() - t0);
    /* timer samples: 8000 (one ring) into lines and sent */
    for (int i = 0; i < 8000; i++) spectator_timer_record_ns(tm, nanos[i & 15] + i);
    t0 = bench_now_ns();
    spectator__output_cycle(lines, 0);
    t_drain[r] = (double)(bench_now_ns() - t0) / 8000;
  }
  bench_header("A publish of 100,000 lines");
  printf("100,000 counters (1,000 names x 100 endpoint values, status=2xx); median of %d "
         "rounds\n\n",
         rounds);
  printf("| cycle | ms | ns/measurement |\n|---|---:|---:|\n");
  double ml = bench_median(t_lines, (size_t)rounds), ma = bench_median(t_agg, (size_t)rounds);
  printf("| udp output: measure, write lines, sendto (%llu datagrams, %.1f MB) | %.1f | %.0f |\n",
         (unsigned long long)dgrams, (double)bytes / 1e6, ml / 1e6, ml / N);
  printf("| aggregator: measure, encode, gzip level 1 (no network) | %.1f | %.0f |\n", ma / 1e6,
         ma / N);
  printf("| udp output: 8,000 timer samples from the rings into lines, sent | %.2f | %.0f |\n",
         bench_median(t_drain, (size_t)rounds) * 8000 / 1e6, bench_median(t_drain, (size_t)rounds));
  spectator_registry_free(lines);
  spectator_registry_free(agg);
  free(cl);
  free(ca);
  free(t_lines);
  free(t_agg);
  free(t_drain);
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  pthread_t sink;
  int port = sink_start(&sink);
  thin_fd = socket(AF_INET, SOCK_DGRAM, 0);
  thin_addr = (struct sockaddr_in){.sin_family = AF_INET,
                                   .sin_port = htons((uint16_t)port),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int rc = 0;
  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    for (size_t i = 0; i < NOPS; i++) printf("%s\n", ops[i].name);
  } else if (argc == 4 && strcmp(argv[1], "--run") == 0) {
    reg = udp_registry(port, false, 1000);
    setup_meters(reg);
    rc = BENCH_RUN_NAMED(ops, NOPS, argv[2], atol(argv[3]));
    spectator_registry_free(reg);
  } else if (argc == 1) {
    reg = udp_registry(port, true, 1000); /* its thread is not pinned with this one */
    bench_pin(0);
    setup_meters(reg);
    table_recording();
    spectator_registry_free(reg);
    table_publish(port);
  } else {
    fprintf(stderr, "usage: %s [--list | --run <op> <calls>]\n", argv[0]);
    rc = 2;
  }
  atomic_store(&sink_stop, true);
  pthread_join(sink, NULL);
  close(sink_fd);
  close(thin_fd);
  return rc;
}
