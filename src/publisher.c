/*
 * Publisher: one background thread per started registry that sends a snapshot
 * to the Atlas aggregator every interval.
 *
 * DESIGN
 * State lives in `struct spectator__publisher`, guarded by `mu`, which is only
 * ever held for a few instructions: to change state (IDLE -> RUNNING ->
 * STOPPING -> IDLE) and to wait on `cv` for the next interval, a retry backoff
 * or a stop. It is never held across a snapshot, encoding or network I/O, so
 * start/stop from any thread, a fork, or the recording threads never wait on
 * the network. The thread owns its libcurl handle outright.
 *
 * A cycle: snapshot (registry snap_lock only) -> encode into batches ->
 * gzip -> POST each batch with retries. Retries cover 429, 5xx and failed
 * connections, at most 3 attempts, with exponential backoff, all bounded by a
 * deadline at the start of the next interval, so a cycle never overruns. The
 * outcome of each batch is counted in spectator.measurements (sent, or dropped
 * with error=validation|http-error|other) and each attempt is timed in
 * http.req.complete; both are ordinary meters of the registry, so they are
 * reported with everything else in the next cycle.
 *
 * Stop sets `stop`, signals `cv` (which interrupts a wait or a backoff at
 * once), lets a request in flight finish (it is bounded by the timeout), then
 * the thread publishes what is pending with a deadline of stop time + timeout
 * (at least FINAL_FLUSH_MIN_NS more) and exits; the stopping thread joins it
 * without holding any lock. Only the thread that moved RUNNING -> STOPPING
 * joins; concurrent stops wait for IDLE.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "encoder.h"
#include "http.h"
#include "publisher.h"

#define MAX_ATTEMPTS 3
#define BACKOFF_BASE_NS (50 * 1000 * 1000LL)
#define FINAL_FLUSH_MIN_NS (500 * 1000 * 1000LL)
#define MAX_LOGGED_MESSAGES 16
/* zlib level: see docs/performance.md for the measurements behind it. */
#define GZIP_LEVEL 1

typedef enum { PUB_IDLE, PUB_RUNNING, PUB_STOPPING } pub_state_t;

struct spectator__publisher {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pub_state_t state;
  _Atomic bool stop;
  int64_t stop_deadline_ns;
  pthread_t thread;
  spectator__http_t *http; /* owned by the thread while it runs */
};

int spectator__publisher_init(spectator_registry_t *reg) {
  struct spectator__publisher *p = calloc(1, sizeof(*p));
  if (!p) return SPECTATOR_ENOMEM;
  spectator__cond_init_monotonic(&p->cv);
  pthread_mutex_init(&p->mu, NULL);
  p->state = PUB_IDLE;
  reg->pub = p;
  return 0;
}

void spectator__publisher_free(spectator_registry_t *reg) {
  struct spectator__publisher *p = reg->pub;
  if (!p) return;
  spectator__http_free(p->http);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p);
  reg->pub = NULL;
}

/* Wait on cv until `until_ns` or a stop; returns true when stopping. Called
 * with mu held. */
static bool wait_until(struct spectator__publisher *p, int64_t until_ns) {
  while (!atomic_load(&p->stop) && spectator__monotonic_ns() < until_ns)
    if (spectator__cond_wait_until(&p->cv, &p->mu, until_ns) != 0) break;
  return atomic_load(&p->stop);
}

/* ------------------------------------------------------------------------ */
/* Self-metrics and response handling                                        */
/* ------------------------------------------------------------------------ */

static void count_measurements(spectator_registry_t *reg, const char *error, size_t n) {
  if (!n) return;
  const char *const dropped[] = {"id", "dropped", "error", error, NULL};
  const char *const sent[] = {"id", "sent", NULL};
  spectator_counter_t *c = spectator__registry_lookup(
      reg, SPECTATOR__COUNTER, "spectator.measurements", NULL, error ? dropped : sent, NULL);
  spectator_counter_add(c, (double)n);
}

static void time_request(spectator_registry_t *reg, const spectator__http_response_t *res,
                         int64_t elapsed_ns) {
  char code[24], status[24];
  const char *status_tag, *code_tag;
  if (res->error) {
    status_tag = code_tag = res->error;
  } else {
    snprintf(code, sizeof(code), "%ld", res->status);
    snprintf(status, sizeof(status), "%ldxx", res->status / 100);
    status_tag = status;
    code_tag = code;
  }
  const char *const tags[] = {"client",     "spectator-c", "method", "POST",
                              "mode",       "http-client", "status", status_tag,
                              "statusCode", code_tag,      NULL};
  spectator_timer_t *t =
      spectator__registry_lookup(reg, SPECTATOR__TIMER, "http.req.complete", NULL, tags, NULL);
  spectator_timer_record_ns(t, elapsed_ns);
}

typedef struct {
  char *msgs[MAX_LOGGED_MESSAGES];
  size_t n;
  size_t suppressed;
} msglog_t;

static void msglog_add(msglog_t *ml, const char *m) {
  for (size_t i = 0; i < ml->n; i++)
    if (strcmp(ml->msgs[i], m) == 0) return;
  if (ml->n == MAX_LOGGED_MESSAGES) {
    ml->suppressed++;
    return;
  }
  size_t len = strnlen(m, 512);
  char *copy = malloc(len + 1);
  if (!copy) return;
  memcpy(copy, m, len);
  copy[len] = '\0';
  ml->msgs[ml->n++] = copy;
}

static void msglog_flush(msglog_t *ml) {
  for (size_t i = 0; i < ml->n; i++) {
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_HTTP, "aggregator rejected data: %s",
                   ml->msgs[i]);
    free(ml->msgs[i]);
  }
  if (ml->suppressed)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_HTTP,
                   "%zu more distinct validation messages this cycle not shown", ml->suppressed);
  ml->n = ml->suppressed = 0;
}

static void account(spectator_registry_t *reg, const spectator__http_response_t *res, size_t n,
                    msglog_t *ml) {
  if (res->error) {
    count_measurements(reg, "other", n);
    return;
  }
  long st = res->status;
  if (st == 200) {
    count_measurements(reg, NULL, n);
    return;
  }
  if (st == 202 || st == 400) {
    spectator__aggregator_response_t ar;
    if (spectator__parse_aggregator_response(res->body, res->body_len, &ar) == 0) {
      size_t errors = st == 400 ? n : (ar.error_count > n ? n : ar.error_count);
      for (size_t i = 0; i < ar.nmessages; i++) msglog_add(ml, ar.messages[i]);
      spectator__aggregator_response_free(&ar);
      count_measurements(reg, NULL, n - errors);
      count_measurements(reg, "validation", errors);
      return;
    }
    if (st == 202) { /* accepted, but we cannot tell how much: count as sent */
      count_measurements(reg, NULL, n);
      return;
    }
  }
  count_measurements(reg, "http-error", n);
}

static bool retryable(const spectator__http_response_t *res, int rc) {
  if (rc != 0) return !res->permanent; /* connection failures, timeouts; not TLS rejections */
  return res->status == 429 || (res->status >= 500 && res->status <= 599);
}

/* POST one compressed batch with retries, bounded by deadline_ns. */
static void send_batch(spectator_registry_t *reg, struct spectator__publisher *p, const char *gz,
                       size_t gz_len, size_t n, int64_t deadline_ns, msglog_t *ml) {
  const int64_t timeout_ns = (int64_t)(reg->cfg.timeout_s * 1e9);
  spectator__http_response_t res;
  memset(&res, 0, sizeof(res));
  res.error = "timeout";
  for (int attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    int64_t now = spectator__monotonic_ns();
    if (atomic_load(&p->stop) && p->stop_deadline_ns && p->stop_deadline_ns < deadline_ns)
      deadline_ns = p->stop_deadline_ns;
    int64_t budget = deadline_ns - now;
    if (budget > timeout_ns) budget = timeout_ns;
    if (budget < 1000000) break; /* less than 1 ms left: give up */
    int rc = spectator__http_post(p->http, gz, gz_len, (long)(budget / 1000000), &res);
    time_request(reg, &res, spectator__monotonic_ns() - now);
    if (!retryable(&res, rc) || attempt == MAX_ATTEMPTS) break;
    static spectator__ratelimit_t rl_retry;
    SPECTATOR__LOG_LIMITED(&rl_retry, SPECTATOR_LOG_INFO, SPECTATOR_LOGGER_HTTP,
                           "publish attempt %d of %d failed (%s %ld); retrying", attempt,
                           MAX_ATTEMPTS, res.error ? res.error : "status", res.status);
    int64_t backoff = BACKOFF_BASE_NS << (attempt - 1);
    if (spectator__monotonic_ns() + backoff >= deadline_ns) break;
    pthread_mutex_lock(&p->mu);
    wait_until(p, spectator__monotonic_ns() + backoff); /* a stop ends the backoff early */
    pthread_mutex_unlock(&p->mu);
  }
  if (res.error || res.status != 200) {
    static spectator__ratelimit_t rl_fail;
    if (res.error || retryable(&res, 0) || (res.status != 202 && res.status != 400))
      SPECTATOR__LOG_LIMITED(&rl_fail, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_HTTP,
                             "could not publish %zu measurements: %s %ld", n,
                             res.error ? res.error : "HTTP status", res.status);
  }
  account(reg, &res, n, ml);
}

/* One publish: snapshot, encode and compress, send. */
static void publish(spectator_registry_t *reg, struct spectator__publisher *p,
                    int64_t deadline_ns) {
  spectator__records_t rs;
  spectator__records_init(&rs);
  spectator__registry_collect(reg, &rs);
  if (spectator__log_enabled(SPECTATOR_LOG_DEBUG)) {
    SPECTATOR__RECORDS_FOREACH(&rs, r) {
      char id[256], pct[6];
      spectator_id_format(r->id, id, sizeof(id));
      bool has_pct = spectator__record_pct_tag(r, pct);
      spectator__log(SPECTATOR_LOG_DEBUG, SPECTATOR_LOGGER_REGISTRY,
                     "measurement %s statistic=%s%s%s op=%d value=%.17g", id,
                     spectator__stat_names[r->stat] ? spectator__stat_names[r->stat] : "-",
                     has_pct ? " percentile=" : "", pct, r->op, r->value);
    }
  }
  /* What could be collected is sent; records lost to a failed allocation are
   * counted as dropped. The encoder frees the records as it reads them. */
  if (rs.lost) {
    spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_REGISTRY,
                   "out of memory during a snapshot: %zu measurements dropped", rs.lost);
    count_measurements(reg, "other", rs.lost);
  }
  size_t collected = rs.len;
  spectator__payload_t pl;
  int rc = spectator__encode(&rs, reg->cfg.common_tags, reg->cfg.batch_size, GZIP_LEVEL, &pl);
  if (rc != 0) {
    /* A missing zlib cannot get here (the start that made this thread loaded
     * it), but it would be reported as what it is, not as a lack of memory. */
    if (rc == SPECTATOR_ENOLIB)
      spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_REGISTRY,
                     "zlib is not loaded, cannot compress %zu measurements: dropped", collected);
    else
      spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_REGISTRY,
                     "out of memory encoding %zu measurements: dropped", collected);
    count_measurements(reg, "other", collected);
    return;
  }
  count_measurements(reg, "validation", pl.dropped);
  msglog_t ml = {{0}, 0, 0};
  for (size_t b = 0; b < pl.len; b++) {
    spectator__batch_t *batch = &pl.batches[b];
    send_batch(reg, p, batch->data, batch->len, batch->count, deadline_ns, &ml);
    free(batch->data); /* sent: not needed while the next batches go */
    batch->data = NULL;
  }
  msglog_flush(&ml);
  spectator__payload_free(&pl);
}

static void *run(void *arg) {
  spectator_registry_t *reg = arg;
  struct spectator__publisher *p = reg->pub;
  const int64_t period = (int64_t)(reg->cfg.frequency_s * 1e9);
  int64_t next = spectator__monotonic_ns() + period;

  pthread_mutex_lock(&p->mu);
  while (!wait_until(p, next)) {
    pthread_mutex_unlock(&p->mu);
    publish(reg, p, next + period);
    int64_t now = spectator__monotonic_ns();
    next += period;
    if (next <= now) {
      static spectator__ratelimit_t rl_late;
      SPECTATOR__LOG_LIMITED(&rl_late, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY, "%s",
                             "a publish cycle ran past its interval; skipping ahead");
      next = now + period;
    }
    pthread_mutex_lock(&p->mu);
  }
  int64_t deadline = p->stop_deadline_ns;
  pthread_mutex_unlock(&p->mu);

  /* Final flush: what was recorded up to the stop. */
  int64_t now = spectator__monotonic_ns();
  if (deadline < now + FINAL_FLUSH_MIN_NS) {
    int64_t t = (int64_t)(reg->cfg.timeout_s * 1e9);
    deadline = now + (t < FINAL_FLUSH_MIN_NS ? t : FINAL_FLUSH_MIN_NS);
  }
  publish(reg, p, deadline);
  return NULL;
}

static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;

/* Normal process exit: stop and flush every started registry that asked for
 * it. The list is copied under its lock and the stops run without it. */
static void stop_all_at_exit(void) {
  spectator_registry_t *regs[64];
  size_t n = 0;
  spectator__registries_lock();
  for (spectator_registry_t *r = spectator__registries_head(); r && n < 64; r = r->next_all)
    if (r->cfg.flush_at_exit) regs[n++] = r;
  spectator__registries_unlock();
  for (size_t i = 0; i < n; i++) spectator__publisher_stop(regs[i]);
}

static void register_atexit(void) { atexit(stop_all_at_exit); }

/* Create the thread with every signal blocked, so signals go to the
 * application's threads and never interrupt ours. Called with mu held. */
static int spawn(spectator_registry_t *reg) {
  struct spectator__publisher *p = reg->pub;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&p->thread, NULL, run, reg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) return SPECTATOR_ETHREAD;
  p->state = PUB_RUNNING;
  return 0;
}

int spectator__publisher_start(spectator_registry_t *reg) {
  struct spectator__publisher *p = reg->pub;
  pthread_once(&atexit_once, register_atexit);
  pthread_mutex_lock(&p->mu);
  while (p->state == PUB_STOPPING) pthread_cond_wait(&p->cv, &p->mu);
  int rc = 0;
  if (p->state == PUB_IDLE) {
    if (!p->http) p->http = spectator__http_new(reg->cfg.uri, &reg->cfg);
    if (!p->http) {
      rc = SPECTATOR_EHTTP;
    } else {
      atomic_store(&p->stop, false);
      p->stop_deadline_ns = 0;
      rc = spawn(reg);
    }
    if (rc == 0)
      spectator__log(SPECTATOR_LOG_INFO, SPECTATOR_LOGGER_INIT,
                     "publishing every %g s, at most %zu measurements per request",
                     reg->cfg.frequency_s, reg->cfg.batch_size);
    else
      spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_INIT, "could not start publishing: %s",
                     spectator_strerror(rc));
  }
  pthread_mutex_unlock(&p->mu);
  return rc;
}

void spectator__publisher_stop(spectator_registry_t *reg) {
  struct spectator__publisher *p = reg->pub;
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  if (p->state == PUB_STOPPING) {
    while (p->state == PUB_STOPPING) pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    return;
  }
  if (p->state != PUB_RUNNING) {
    pthread_mutex_unlock(&p->mu);
    return;
  }
  p->state = PUB_STOPPING;
  p->stop_deadline_ns = spectator__monotonic_ns() + (int64_t)(reg->cfg.timeout_s * 1e9);
  atomic_store(&p->stop, true);
  pthread_cond_broadcast(&p->cv);
  pthread_t t = p->thread;
  pthread_mutex_unlock(&p->mu);

  pthread_join(t, NULL);

  pthread_mutex_lock(&p->mu);
  p->state = PUB_IDLE;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* Fork hooks (see fork.c). */

void spectator__publishers_prefork(void) {
  for (spectator_registry_t *r = spectator__registries_head(); r; r = r->next_all)
    if (r->pub) pthread_mutex_lock(&r->pub->mu);
}

void spectator__publishers_postfork_parent(void) {
  for (spectator_registry_t *r = spectator__registries_head(); r; r = r->next_all)
    if (r->pub) pthread_mutex_unlock(&r->pub->mu);
}

/* Reset one publisher in a forked child and restart it if it was running. */
static void postfork_child(spectator_registry_t *reg) {
  struct spectator__publisher *p = reg->pub;
  if (!p) return;
  pthread_mutex_init(&p->mu, NULL);
  spectator__cond_init_monotonic(&p->cv);
  /* The parent's thread does not exist here and its connection is not ours. */
  spectator__http_abandon(p->http);
  p->http = NULL;
  bool was_running = p->state == PUB_RUNNING;
  p->state = PUB_IDLE;
  atomic_store(&p->stop, false);
  p->stop_deadline_ns = 0;
  if (was_running) {
    p->http = spectator__http_new(reg->cfg.uri, &reg->cfg);
    if (!p->http || spawn(reg) != 0)
      spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_INIT,
                     "could not restart publishing in a forked child");
  }
}

void spectator__publishers_postfork_child(void) {
  for (spectator_registry_t *r = spectator__registries_head(); r; r = r->next_all)
    postfork_child(r);
}
