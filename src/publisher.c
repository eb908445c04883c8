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
 *
 * EXIT
 * A normal process exit stops every started registry, flushing those with
 * flush_at_exit, from an exit handler:
 *
 * - It is registered once per process, by the first start that initialized
 *   libcurl, and only after that initialization. libcurl's global init is
 *   what initializes the TLS library, and OpenSSL then registers its own exit
 *   handler (OPENSSL_cleanup). Exit handlers run in the reverse order of their
 *   registration, so ours runs before OpenSSL frees its state and the final
 *   flush can still open a TLS connection (registered before it, ours ran
 *   after OPENSSL_cleanup and the flush crashed in RAND_status). A forked
 *   child inherits the handlers in the same order.
 * - Every wait in it is bounded, so that exit() returns within the timeout
 *   plus one second whatever the other threads were doing, also when exit()
 *   is called from a signal handler that interrupted a library call holding
 *   a library lock: the list lock and each publisher's mutex are taken with a
 *   short deadline, all the threads are told to stop at once and then each is
 *   waited for (the `finished` flag, then a timed join) as long as it can
 *   need: its timeout (a request in flight), the final flush's least time
 *   (FINAL_FLUSH_MIN_NS, or the timeout when shorter) and EXIT_SCHED_NS, less
 *   than one second beyond the timeout. The final flush takes the snapshot
 *   lock with its own
 *   deadline. A thread that does not finish in time (it waits for a lock that
 *   an interrupted thread holds) is abandoned: it starts no further request,
 *   and what was not sent is logged with a count.
 * - The exit flush calls no poller's function (spectator__pollers_exiting):
 *   the data they read may be gone, and no application code is run or waited
 *   for on the exit path. The flush sends the values of the last run.
 * - The library's destructor, which runs after every exit handler (also those
 *   the program registered before its first use of the library), reports in
 *   one warning the meters of registries with a URI that recorded values no
 *   publish will ever send: never started, stopped, or recorded after the
 *   exit flush.
 *
 * FORK
 * In a forked child (the postfork_child hook, which fork.c calls last, once
 * every lock of the library is consistent again), the parent's thread does
 * not exist and its connection is not ours: the state is reset, the parent's
 * transfer handle is forgotten and a spare made in an ancestor takes its
 * place (spectator__http_fork_child: close() only, no call into libcurl, no
 * allocation), and when the parent was publishing (RUNNING, or STOPPING: a
 * child forked before the parent's stop returned counts as forked from a
 * publishing parent) a new thread is started at once. It has to start here:
 * a child that only records through meter pointers from before the fork
 * calls nothing else in the library. Creating it in the handler is safe with
 * glibc: before it runs the child handlers, glibc's fork (2.36: posix/fork.c,
 * sysdeps/nptl/fork.h) resets every lock pthread_create takes, the stack
 * cache lock and the default attribute lock (fork_system_setup_after_fork),
 * the malloc arenas (__malloc_fork_unlock_child) and the dynamic loader's
 * dl_load_lock and dl_load_tls_lock (the new thread's TLS), and reclaim_stacks
 * returns the parent's other stacks to the cache. The new thread publishes
 * with the spare, which takes no libcurl global lock (see http.c, FORK).
 *
 * LINES
 * A registry whose output writes spectatord's line protocol (output.c) has
 * the same thread, loop, start, stop, exit and fork handling, without
 * libcurl: a publish is the output's cycle instead of the HTTP one (the one
 * place where the output is chosen, in publish()), and between publishes the
 * thread also wakes to take the timers' and summaries' samples from their
 * rings (spectator__output_drain). The output's sends wait at most until the
 * stop's deadline once a stop is asked for (spectator__publisher_stopping).
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
#include "output.h"
#include "poller.h"
#include "publisher.h"

#define MAX_ATTEMPTS 3
/* A request is only made with at least this much time left. */
#define MIN_REQUEST_NS (1000 * 1000LL)
#define BACKOFF_BASE_NS (50 * 1000 * 1000LL)
#define FINAL_FLUSH_MIN_NS (500 * 1000 * 1000LL)
/* At exit: how long to wait for a lock held only for a few instructions
 * (longer means an interrupted thread holds it, and it is never released),
 * and the time a thread gets for encoding and scheduling beyond what its
 * requests may take. */
#define EXIT_LOCK_WAIT_NS (100 * 1000 * 1000LL)
#define EXIT_SCHED_NS (200 * 1000 * 1000LL)
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
  bool flush_on_stop;     /* publish what is pending when stopping */
  bool finished;          /* the thread is done with its final flush */
  _Atomic bool abandoned; /* exit stopped waiting for it: no more requests */
  pthread_t thread;
  spectator__http_t *http; /* owned by the thread while it runs */
  /* Failed requests in a row, and their log limit (1st, 2nd, 4th... logged):
   * the publishing thread's; a success starts both over, so every outage is
   * reported from its first failure. */
  uint64_t failures_in_a_row;
  spectator__ratelimit_t rl_fail;
  /* What publishing cost so far, for the process metrics (read lock-free):
   * nanoseconds in publish cycles, bytes of bodies handed to each request. */
  _Atomic uint64_t cost_ns, bytes_sent;
};

static int64_t timeout_ns(const spectator_registry_t *reg) {
  return (int64_t)(reg->cfg.timeout_s * 1e9);
}

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
/* Self-metrics                                                              */
/* ------------------------------------------------------------------------ */

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
      spectator__registry_lookup_self(reg, SPECTATOR__TIMER, "http.req.complete", tags);
  spectator_timer_record_ns(t, elapsed_ns);
}

/* The number of meters, reported with everything else. */
static void report_size(spectator_registry_t *reg) {
  spectator_gauge_t *g =
      spectator__registry_lookup_self(reg, SPECTATOR__GAUGE, "spectator.registrySize", NULL);
  spectator_gauge_set(g, (double)spectator_registry_size(reg));
}

/* ------------------------------------------------------------------------ */
/* A cycle's log                                                             */
/* ------------------------------------------------------------------------ */

/* What one publish cycle did, for its log lines. Validation messages are
 * logged once per cycle however many batches repeat them. */
typedef struct {
  char uri[SPECTATOR__URI_LOG_MAX];
  size_t sent, validation, other, http_error, requests;
  char *msgs[MAX_LOGGED_MESSAGES];
  size_t nmsgs;
  size_t suppressed;
} cycle_t;

static void cycle_message(cycle_t *cy, const char *m) {
  for (size_t i = 0; i < cy->nmsgs; i++)
    if (strcmp(cy->msgs[i], m) == 0) return;
  if (cy->nmsgs == MAX_LOGGED_MESSAGES) {
    cy->suppressed++;
    return;
  }
  size_t len = strnlen(m, 512);
  char *copy = malloc(len + 1);
  if (!copy) return;
  memcpy(copy, m, len);
  copy[len] = '\0';
  cy->msgs[cy->nmsgs++] = copy;
}

static void log_cycle(const cycle_t *cy, int64_t elapsed_ns) {
  size_t dropped = cy->validation + cy->other + cy->http_error;
  for (size_t i = 0; i < cy->nmsgs; i++)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_HTTP,
                   "the aggregator at %s rejected a measurement: %s", cy->uri, cy->msgs[i]);
  if (cy->suppressed)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_HTTP,
                   "%zu more distinct validation messages this cycle not shown", cy->suppressed);
  if (cy->validation)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_HTTP,
                   "%zu measurements dropped by the aggregator's validation at %s", cy->validation,
                   cy->uri);
  spectator__log(SPECTATOR_LOG_DEBUG, SPECTATOR_LOGGER_HTTP,
                 "published to %s: %zu sent, %zu dropped (validation %zu, other %zu, "
                 "http-error %zu) in %zu requests, %.1f ms",
                 cy->uri, cy->sent, dropped, cy->validation, cy->other, cy->http_error,
                 cy->requests, (double)elapsed_ns / 1e6);
}

static void cycle_free(cycle_t *cy) {
  for (size_t i = 0; i < cy->nmsgs; i++) free(cy->msgs[i]);
  cy->nmsgs = 0;
}

/* ------------------------------------------------------------------------ */
/* Sending                                                                   */
/* ------------------------------------------------------------------------ */

static bool retryable(const spectator__http_response_t *res, int rc) {
  if (rc != 0) return !res->permanent; /* connection failures, timeouts; not TLS rejections */
  return res->status == 429 || (res->status >= 500 && res->status <= 599);
}

/* Log a request whose measurements were all dropped (other or http-error). */
static void log_failure(struct spectator__publisher *p, const cycle_t *cy,
                        const spectator__http_response_t *res, int rc, int attempts,
                        const spectator__outcome_t *out) {
  uint64_t streak = ++p->failures_in_a_row;
  if (!spectator__ratelimit(&p->rl_fail)) return;
  size_t n = out->other + out->http_error;
  const char *why = out->other ? "other" : "http-error";
  if (rc != 0)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_HTTP,
                   "could not publish %zu measurements to %s: %s (%s) after %d attempt%s; "
                   "dropped as %s (failure %llu in a row)",
                   n, cy->uri, res->error ? res->error : "timeout",
                   res->reason && res->reason[0] ? res->reason : "no time left for a request",
                   attempts, attempts == 1 ? "" : "s", why, (unsigned long long)streak);
  else
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_HTTP,
                   "could not publish %zu measurements to %s: HTTP %ld%s after %d attempt%s; "
                   "dropped as %s (failure %llu in a row)",
                   n, cy->uri, res->status, out->other ? ", not a validation response" : "",
                   attempts, attempts == 1 ? "" : "s", why, (unsigned long long)streak);
}

/* POST one compressed batch of n measurements with retries, bounded by
 * deadline_ns, and count how it ended. */
static void send_batch(spectator_registry_t *reg, struct spectator__publisher *p,
                       const spectator__batch_t *b, int64_t deadline_ns, cycle_t *cy) {
  const int64_t timeout = timeout_ns(reg);
  spectator__http_response_t res;
  memset(&res, 0, sizeof(res));
  res.error = "timeout";
  res.reason = "";
  int rc = SPECTATOR_EHTTP, attempts = 0;
  for (int attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    if (atomic_load(&p->abandoned)) {
      res.error = "abandoned";
      res.reason = "exit stopped waiting for this thread";
      break;
    }
    int64_t now = spectator__monotonic_ns();
    if (atomic_load(&p->stop) && p->stop_deadline_ns && p->stop_deadline_ns < deadline_ns)
      deadline_ns = p->stop_deadline_ns;
    int64_t budget = deadline_ns - now;
    if (budget > timeout) budget = timeout;
    if (budget < MIN_REQUEST_NS) break;
    attempts = attempt;
    cy->requests++;
    rc = spectator__http_post(p->http, b->data, b->len, (long)(budget / 1000000), &res);
    atomic_fetch_add_explicit(&p->bytes_sent, b->len, memory_order_relaxed);
    time_request(reg, &res, spectator__monotonic_ns() - now);
    if (!retryable(&res, rc) || attempt == MAX_ATTEMPTS) break;
    static spectator__ratelimit_t rl_retry;
    SPECTATOR__LOG_LIMITED(&rl_retry, SPECTATOR_LOG_INFO, SPECTATOR_LOGGER_HTTP,
                           "publish attempt %d of %d to %s failed (%s %ld); retrying", attempt,
                           MAX_ATTEMPTS, cy->uri, res.error ? res.error : "HTTP", res.status);
    int64_t backoff = BACKOFF_BASE_NS << (attempt - 1);
    if (spectator__monotonic_ns() + backoff >= deadline_ns) break;
    pthread_mutex_lock(&p->mu);
    wait_until(p, spectator__monotonic_ns() + backoff); /* a stop ends the backoff early */
    pthread_mutex_unlock(&p->mu);
  }
  spectator__outcome_t out;
  spectator__http_account(attempts ? &res : NULL, rc, b->count, &out);
  for (size_t i = 0; i < out.answer.nmessages; i++) cycle_message(cy, out.answer.messages[i]);
  spectator__aggregator_response_free(&out.answer);
  spectator__registry_count_measurements(reg, NULL, out.sent);
  spectator__registry_count_measurements(reg, "validation", out.validation);
  spectator__registry_count_measurements(reg, "other", out.other);
  spectator__registry_count_measurements(reg, "http-error", out.http_error);
  cy->sent += out.sent;
  cy->validation += out.validation;
  cy->other += out.other;
  cy->http_error += out.http_error;
  if (out.other || out.http_error) {
    log_failure(p, cy, &res, rc, attempts, &out);
  } else {
    uint64_t streak = p->failures_in_a_row;
    if (streak) {
      p->failures_in_a_row = 0;
      atomic_store(&p->rl_fail.count, 0);
      spectator__log(SPECTATOR_LOG_INFO, SPECTATOR_LOGGER_HTTP,
                     "publishing to %s works again after %llu failed requests", cy->uri,
                     (unsigned long long)streak);
    }
  }
}

/* ------------------------------------------------------------------------ */
/* A publish cycle                                                           */
/* ------------------------------------------------------------------------ */

int spectator__publish_stream(spectator_registry_t *reg, int gzip_level, int64_t deadline_ns,
                              spectator__body_fn send, void *ctx, spectator__stream_t *st) {
  memset(st, 0, sizeof(*st));
  const size_t batch = reg->cfg.batch_size;
  spectator__encoder_t *enc;
  int rc = spectator__encoder_new(reg->cfg.common_tags, gzip_level, &enc);
  spectator__records_t rs, rest;
  spectator__records_init(&rs);
  spectator__cursor_t cursor = {0};
  cursor.deadline_ns = deadline_ns;
  bool done = false, late = false;
  while (!done || rs.len) {
    /* The next batch of records: measured from the meters (the snapshot lock
     * is only held while measuring), or left over from the last batch. */
    if (!done && rs.len < batch) done = spectator__registry_collect(reg, &cursor, &rs, batch);
    st->lost += rs.lost;
    rs.lost = 0;
    if (!late &&
        (rc != 0 || (deadline_ns && spectator__monotonic_ns() + MIN_REQUEST_NS > deadline_ns)))
      late = true;
    if (late) { /* what cannot be sent any more is measured, counted and dropped */
      st->late += rs.len;
      spectator__records_free(&rs);
      continue;
    }
    spectator__records_init(&rest);
    spectator__records_split(&rs, batch, &rest);
    spectator__batch_t body;
    size_t n = rs.len;
    if (spectator__encoder_batch(enc, &rs, &body, &st->unencodable) != 0) {
      st->failed += n;
    } else if (body.count) {
      st->measurements += body.count;
      st->batches++;
      st->bytes += body.len;
      bool go_on = send(ctx, &body);
      free(body.data);
      if (!go_on) { /* the meters not measured yet are left for the next cycle */
        st->late += rest.len;
        spectator__records_free(&rest);
        break;
      }
    }
    rs = rest;
  }
  if (cursor.locked_out)
    st->unmeasured = cursor.started ? cursor.end - cursor.next : spectator_registry_size(reg);
  /* Every record of the cycle was encoded or dropped: their ids are free to go. */
  spectator__registry_collect_end(reg, &cursor);
  spectator__encoder_free(enc);
  return rc;
}

typedef struct {
  spectator_registry_t *reg;
  struct spectator__publisher *p;
  int64_t deadline_ns;
  cycle_t *cy;
  bool final; /* the final flush: nothing comes after it */
} sender_t;

/* Send a body; a stop ends the cycle after it, and the final flush sends what
 * was not measured yet. */
static bool send_body(void *ctx, const spectator__batch_t *body) {
  sender_t *s = ctx;
  send_batch(s->reg, s->p, body, s->deadline_ns, s->cy);
  return !atomic_load(&s->p->stop) || s->final;
}

/* One publish: the registry is measured, encoded and sent batch by batch, so
 * memory is bounded by the batch size, not by the registry. */
static void publish(spectator_registry_t *reg, struct spectator__publisher *p, int64_t deadline_ns,
                    bool final) {
  int64_t start = spectator__monotonic_ns();
  if (reg->output) { /* spectatord's line protocol */
    uint64_t bytes = spectator__output_cycle(reg, deadline_ns);
    int64_t elapsed = spectator__monotonic_ns() - start;
    if (elapsed > 0)
      atomic_fetch_add_explicit(&p->cost_ns, (uint64_t)elapsed, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->bytes_sent, bytes, memory_order_relaxed);
    return;
  }
  cycle_t cy;
  memset(&cy, 0, sizeof(cy));
  spectator__redact_uri(reg->cfg.uri, cy.uri, sizeof(cy.uri));
  report_size(reg);
  sender_t s = {reg, p, deadline_ns, &cy, final};
  spectator__stream_t st;
  int rc = spectator__publish_stream(reg, GZIP_LEVEL, deadline_ns, send_body, &s, &st);
  /* Measurements that never reached a request. */
  spectator__registry_count_measurements(reg, "validation", st.unencodable);
  spectator__registry_count_measurements(reg, "other", st.lost + st.failed + st.late);
  if (st.unencodable)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                   "%zu measurements dropped: more tags than a datapoint can carry",
                   st.unencodable);
  if (st.lost || st.failed)
    spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_REGISTRY,
                   "out of memory during a publish: %zu measurements dropped", st.lost + st.failed);
  if (st.unmeasured)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                   "another thread held the snapshot lock past the deadline of %s: the values "
                   "of %zu meter%s %s",
                   final ? "the final flush" : "a publish", st.unmeasured,
                   st.unmeasured == 1 ? "" : "s",
                   final ? "were not sent" : "wait for the next cycle");
  if (st.late && rc != 0)
    spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_REGISTRY,
                   "%zu measurements dropped: cannot encode (%s)", st.late, spectator_strerror(rc));
  else if (st.late)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                   "%zu measurements dropped: the registry produced more than could be sent to "
                   "%s in time",
                   st.late, cy.uri);
  int64_t elapsed = spectator__monotonic_ns() - start;
  log_cycle(&cy, elapsed);
  cycle_free(&cy);
  if (elapsed > 0) atomic_fetch_add_explicit(&p->cost_ns, (uint64_t)elapsed, memory_order_relaxed);
}

bool spectator__publisher_stopping(spectator_registry_t *reg, int64_t *stop_deadline_ns) {
  struct spectator__publisher *p = reg->pub;
  if (!atomic_load(&p->stop)) return false;
  pthread_mutex_lock(&p->mu);
  *stop_deadline_ns = p->stop_deadline_ns;
  pthread_mutex_unlock(&p->mu);
  return true;
}

static void *run(void *arg) {
  spectator_registry_t *reg = arg;
  struct spectator__publisher *p = reg->pub;
  const int64_t period = (int64_t)(reg->cfg.frequency_s * 1e9);
  int64_t next = spectator__monotonic_ns() + period;

  pthread_mutex_lock(&p->mu);
  /* A line output also wakes in between to drain its sample rings. */
  while (!wait_until(p, reg->output ? spectator__output_next_drain(reg, next) : next)) {
    pthread_mutex_unlock(&p->mu);
    if (reg->output && spectator__monotonic_ns() < next) {
      int64_t t0 = spectator__monotonic_ns();
      uint64_t bytes = spectator__output_drain(reg, next);
      int64_t elapsed = spectator__monotonic_ns() - t0;
      if (elapsed > 0)
        atomic_fetch_add_explicit(&p->cost_ns, (uint64_t)elapsed, memory_order_relaxed);
      atomic_fetch_add_explicit(&p->bytes_sent, bytes, memory_order_relaxed);
      pthread_mutex_lock(&p->mu);
      continue;
    }
    publish(reg, p, next + period, false);
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
  bool flush = p->flush_on_stop;
  pthread_mutex_unlock(&p->mu);

  /* Final flush: what was recorded up to the stop. */
  int64_t now = spectator__monotonic_ns();
  if (deadline < now + FINAL_FLUSH_MIN_NS) {
    int64_t t = timeout_ns(reg);
    deadline = now + (t < FINAL_FLUSH_MIN_NS ? t : FINAL_FLUSH_MIN_NS);
  }
  if (flush && !atomic_load(&p->abandoned)) publish(reg, p, deadline, true);

  pthread_mutex_lock(&p->mu);
  p->finished = true;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Exit                                                                      */
/* ------------------------------------------------------------------------ */

/* One registry being stopped at exit. */
typedef struct {
  spectator_registry_t *reg;
  bool wait; /* its thread was running or stopping */
  bool join; /* this exit moved it RUNNING -> STOPPING: it joins */
  pthread_t thread;
  int64_t deadline_ns; /* when exit stops waiting for it */
} exit_stop_t;

static void exit_gave_up(exit_stop_t *s, const char *why) {
  atomic_store(&s->reg->pub->abandoned, true);
  size_t meters = spectator_registry_size(s->reg);
  spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                 "exit: %s; what it had not sent by then is lost (at most the values of %zu "
                 "meter%s)",
                 why, meters, meters == 1 ? "" : "s");
}

/* Tell the thread to stop (with a final flush when the registry asked for
 * one); does not wait for it. */
static void exit_begin(exit_stop_t *s, int64_t start_ns) {
  struct spectator__publisher *p = s->reg->pub;
  /* A request in flight at the stop ends by the timeout; the final flush then
   * still gets its least time (see run). */
  int64_t t = timeout_ns(s->reg);
  s->deadline_ns = start_ns + t + (t < FINAL_FLUSH_MIN_NS ? t : FINAL_FLUSH_MIN_NS) + EXIT_SCHED_NS;
  if (spectator__mutex_lock_until(&p->mu, start_ns + EXIT_LOCK_WAIT_NS) != 0) {
    exit_gave_up(s, "a thread that does not return (interrupted by a signal?) holds a "
                    "publisher's lock");
    return;
  }
  if (p->state == PUB_RUNNING) {
    p->state = PUB_STOPPING;
    p->stop_deadline_ns = start_ns + timeout_ns(s->reg);
    p->flush_on_stop = s->reg->cfg.flush_at_exit != 0;
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv);
    /* exit() called on the publishing thread itself (from a log handler):
     * it cannot wait for itself. */
    s->wait = s->join = !pthread_equal(p->thread, pthread_self());
    s->thread = p->thread;
  } else if (p->state == PUB_STOPPING) {
    s->wait = true; /* a stop in progress, perhaps in the thread exit() interrupted */
  }
  pthread_mutex_unlock(&p->mu);
}

/* Wait for the thread until the deadline. */
static void exit_finish(exit_stop_t *s) {
  if (!s->wait) return;
  struct spectator__publisher *p = s->reg->pub;
  if (spectator__mutex_lock_until(&p->mu, s->deadline_ns) != 0) {
    exit_gave_up(s, "a publisher's lock is held by a thread that does not return");
    return;
  }
  while (!p->finished)
    if (spectator__cond_wait_until(&p->cv, &p->mu, s->deadline_ns) != 0) break;
  bool finished = p->finished;
  pthread_mutex_unlock(&p->mu);
  if (!finished) {
    exit_gave_up(s, "a publishing thread did not finish in time (it waits for a lock that an "
                    "interrupted thread holds, or for the network)");
    return;
  }
  if (!s->join) return; /* the stop in progress joins it */
  if (spectator__join_until(s->thread, s->deadline_ns) != 0) return; /* done, slow to exit */
  if (spectator__mutex_lock_until(&p->mu, s->deadline_ns) != 0) return;
  p->state = PUB_IDLE;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* Registries stopped at exit: the list is copied to the stack (no allocation
 * on the exit path, which a signal handler may have entered from malloc). */
#define EXIT_MAX_REGISTRIES 256

/* Normal process exit: stop every started registry, flushing those that ask
 * for it, all at once and with bounded waits. The list is copied under its
 * lock and the stops run without it. */
static void stop_all_at_exit(void) {
  int64_t start = spectator__monotonic_ns();
  spectator__pollers_exiting(); /* the final flush calls no application code */
  exit_stop_t stops[EXIT_MAX_REGISTRIES];
  size_t n = 0;
  if (spectator__registries_lock_until(start + EXIT_LOCK_WAIT_NS) != 0) {
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY, "%s",
                   "exit: a thread that does not return (interrupted by a signal?) holds the "
                   "list of registries; nothing was flushed");
    return;
  }
  size_t skipped = 0;
  for (spectator_registry_t *r = spectator__registries_head(); r; r = r->next_all) {
    if (n < EXIT_MAX_REGISTRIES)
      stops[n++] = (exit_stop_t){.reg = r};
    else
      skipped++;
  }
  spectator__registries_unlock();
  if (skipped)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                   "exit: %zu registries beyond the first %d were not stopped or flushed", skipped,
                   EXIT_MAX_REGISTRIES);
  for (size_t i = 0; i < n; i++) exit_begin(&stops[i], start);
  for (size_t i = 0; i < n; i++) exit_finish(&stops[i]);
}

static pthread_once_t atexit_once = PTHREAD_ONCE_INIT, atexit_lines_once = PTHREAD_ONCE_INIT;
static void register_atexit(void) { atexit(stop_all_at_exit); }

/* After every exit handler (a destructor runs after them, in the shared and
 * in the static library alike): what was recorded where no publish will ever
 * send it, in one line. Bounded: nothing here waits for a lock. */
__attribute__((destructor)) static void report_unsent_at_exit(void) {
  size_t meters = 0, regs = 0;
  uint64_t samples = 0;
  if (spectator__registries_lock_until(spectator__monotonic_ns()) != 0) return;
  for (spectator_registry_t *r = spectator__registries_head(); r; r = r->next_all) {
    if (!r->cfg.uri && !r->output) continue; /* collect-only: read through snapshots */
    size_t unsent = spectator__registry_take_unsent(r);
    uint64_t unsent_samples = spectator__output_unsent_samples(r);
    meters += unsent;
    samples += unsent_samples;
    regs += unsent || unsent_samples;
  }
  spectator__registries_unlock();
  if (samples)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                   "%zu meter%s and %llu sample%s (timers and distribution summaries) of %zu "
                   "registr%s recorded after the last publish will never be sent: publishing "
                   "was never started or was stopped, or they were recorded after the exit "
                   "flush",
                   meters, meters == 1 ? "" : "s", (unsigned long long)samples,
                   samples == 1 ? "" : "s", regs, regs == 1 ? "y" : "ies");
  else if (meters)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                   "%zu meter%s of %zu registr%s recorded values after the last publish that "
                   "will never be sent: publishing was never started or was stopped, or they "
                   "were recorded after the exit flush",
                   meters, meters == 1 ? "" : "s", regs, regs == 1 ? "y" : "ies");
}

/* Create the thread with every signal blocked, so signals go to the
 * application's threads and never interrupt ours. Called with mu held. */
static int spawn(spectator_registry_t *reg) {
  struct spectator__publisher *p = reg->pub;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  p->finished = false;
  int rc = pthread_create(&p->thread, NULL, run, reg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) return SPECTATOR_ETHREAD;
  p->state = PUB_RUNNING;
  return 0;
}

int spectator__publisher_start(spectator_registry_t *reg) {
  struct spectator__publisher *p = reg->pub;
  /* The registry-size gauge exists before the first publish (made here,
   * without the publisher's lock): a publish then finds it without the insert
   * lock, and sends even when a thread that will never return holds that lock
   * (exit() from a signal handler that interrupted the creation of a meter). */
  spectator__registry_lookup_self(reg, SPECTATOR__GAUGE, "spectator.registrySize", NULL);
  pthread_mutex_lock(&p->mu);
  while (p->state == PUB_STOPPING) pthread_cond_wait(&p->cv, &p->mu);
  int rc = 0;
  if (p->state == PUB_IDLE) {
    if (reg->output)
      ; /* spectatord's lines: no libcurl, nothing to make ahead */
    else if (!p->http)
      p->http = spectator__http_new(reg->cfg.uri, &reg->cfg);
    else /* a forked child that had no spare left makes its handles here */
      rc = spectator__http_prepare(p->http);
    if (!reg->output && (!p->http || rc != 0)) {
      rc = SPECTATOR_EHTTP;
    } else {
      /* Only now: libcurl's global init has set up the TLS library, which
       * registered its own exit handler; ours must come after it (see EXIT).
       * A line output has no TLS library to wait for, and registers the same
       * handler once on its own: a later start for the aggregator still
       * registers after libcurl's init, and that registration runs first (a
       * second run of the handler finds every registry stopped). */
      pthread_once(reg->output ? &atexit_lines_once : &atexit_once, register_atexit);
      atomic_store(&p->stop, false);
      atomic_store(&p->abandoned, false);
      p->stop_deadline_ns = 0;
      rc = spawn(reg);
    }
    char uri[SPECTATOR__URI_LOG_MAX];
    spectator__redact_uri(reg->output ? reg->cfg.output_location : reg->cfg.uri, uri, sizeof(uri));
    if (rc == 0 && reg->output)
      spectator__log(SPECTATOR_LOG_INFO, SPECTATOR_LOGGER_INIT,
                     "publishing to %s every %g s in spectatord's line protocol", uri,
                     reg->cfg.frequency_s);
    else if (rc == 0)
      spectator__log(SPECTATOR_LOG_INFO, SPECTATOR_LOGGER_INIT,
                     "publishing to %s every %g s, at most %zu measurements per request", uri,
                     reg->cfg.frequency_s, reg->cfg.batch_size);
    else
      spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_INIT,
                     "could not start publishing to %s: %s", uri, spectator_strerror(rc));
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
  p->stop_deadline_ns = spectator__monotonic_ns() + timeout_ns(reg);
  p->flush_on_stop = true;
  atomic_store(&p->stop, true);
  pthread_cond_broadcast(&p->cv);
  pthread_t t = p->thread;
  pthread_mutex_unlock(&p->mu);

  pthread_join(t, NULL);
  char uri[SPECTATOR__URI_LOG_MAX];
  spectator__log(SPECTATOR_LOG_INFO, SPECTATOR_LOGGER_INIT, "stopped publishing to %s",
                 spectator__redact_uri(reg->output ? reg->cfg.output_location : reg->cfg.uri, uri,
                                       sizeof(uri)));

  pthread_mutex_lock(&p->mu);
  p->state = PUB_IDLE;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

void spectator__publisher_cost(const spectator_registry_t *reg, uint64_t *ns, uint64_t *bytes) {
  const struct spectator__publisher *p = reg->pub;
  *ns = p ? atomic_load_explicit(&p->cost_ns, memory_order_relaxed) : 0;
  *bytes = p ? atomic_load_explicit(&p->bytes_sent, memory_order_relaxed) : 0;
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

/* Reset one publisher in a forked child and restart it if the parent was
 * publishing (see FORK). */
static void postfork_child(spectator_registry_t *reg) {
  struct spectator__publisher *p = reg->pub;
  if (!p) return;
  pthread_mutex_init(&p->mu, NULL);
  spectator__cond_init_monotonic(&p->cv);
  /* The parent's thread does not exist here and its connection is not ours.
   * A parent inside its stop (STOPPING) was publishing when it forked. */
  bool was_publishing = p->state != PUB_IDLE;
  bool ready = reg->output ? true : spectator__http_fork_child(p->http);
  p->state = PUB_IDLE;
  atomic_store(&p->stop, false);
  atomic_store(&p->abandoned, false);
  p->stop_deadline_ns = 0;
  p->flush_on_stop = false;
  p->finished = false;
  if (!was_publishing) return;
  if (!ready)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT, "%s",
                   "publishing not resumed in this forked process: the libcurl handles made "
                   "ahead for forked children ran out (they last two generations); "
                   "spectator_start() makes new ones");
  else if (spawn(reg) != 0)
    spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_INIT, "%s",
                   "could not restart publishing in a forked child");
}

void spectator__publishers_postfork_child(void) {
  for (spectator_registry_t *r = spectator__registries_head(); r; r = r->next_all)
    postfork_child(r);
}
