/*
 * Outputs of spectatord's line protocol: memory, stdout, stderr, file:///path,
 * udp://host:port and unix:///path (a unix datagram socket).
 *
 * DESIGN
 * spectatord aggregates what it receives and publishes to Atlas itself, so
 * this output only has to deliver, cheaply, exactly what was recorded:
 *
 * - Counters, gauges, max gauges and monotonic counters are measured at each
 *   publish like for the aggregator (registry.c: a snapshot), into records
 *   marked for lines, and each record becomes one line (lines.h).
 * - Timers and distribution summaries (percentile ones too) are one line per
 *   sample: their recording calls put each value in the registry's sample
 *   rings (samples.h), lock-free and without a system call. The publishing
 *   thread takes the samples every drain period, well within the interval
 *   (at most 100 ms; shorter while rings fill), so that a ring seldom fills;
 *   a full ring drops and counts.
 * - Lines are joined into datagrams (at most SPECTATOR__DATAGRAM_MAX bytes)
 *   and sent by the publishing thread: a datagram a sendto(), non-blocking;
 *   to a file or stdout, write()s that poll() first. A slow or absent
 *   receiver costs at most the wait until the cycle's deadline, never a
 *   recording call: samples wait in the rings, then are dropped and counted.
 *
 * Work is done in steps: a drain takes at most DRAIN_STEP samples at a time,
 * and a publish measures batch_size records at a time, each step's lines
 * sent before the next, so the datagrams waiting stay few. A drain goes no
 * further than the tails it marked when it began (samples.h).
 *
 * Locks: `cycle_mu` lets one step run at a time (the thread's, or one of a
 * read of the memory output from any thread), so that a read of the memory
 * output finds every line recorded before it; `mu` guards the lines being
 * written, the consumer side of the rings and the memory output's lines. The
 * order is cycle_mu -> the registry's snap_lock -> lock -> mu: a step
 * measures the registry under cycle_mu, and the registry's fence (taking the
 * samples before expired meters are freed) runs under snap_lock and lock and
 * takes mu. Neither is held while sending: datagrams are taken out under mu
 * and sent after both are released. fork() holds every cycle_mu (before the
 * registries' locks), so in the child mu is free and every line and sample of
 * the parent is forgotten: a child never sends what its parent buffered.
 *
 * What was sent and dropped is counted in spectator.measurements, as the
 * aggregator's publishes are: id=sent (lines written), id=dropped with
 * error=buffer-full (a full sample ring, or too many datagrams waiting),
 * validation (a line longer than a datagram) or other (a failed send or
 * write). Each kind of drop is logged, rate-limited, by the thread that
 * found it, never on a recording path.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "lines.h"
#include "location.h"
#include "log.h"
#include "output.h"
#include "publisher.h"
#include "samples.h"
#include "sanitize.h"

/* Datagrams waiting to be sent, at most (about 16 MiB). */
#define MAX_READY 256
/* The memory output keeps at most this many bytes of lines. */
#define MEMORY_MAX_BYTES ((size_t)64 * 1024 * 1024)
/* Drain periods: the longest, and the shortest while rings fill up. */
#define DRAIN_MAX_NS (100 * 1000 * 1000LL)
#define DRAIN_MIN_NS (1000 * 1000LL)
/* Samples taken into lines at a time: what they fill is sent before the
 * next step, so a drain holds a bounded number of datagrams. */
#define DRAIN_STEP 16384
/* The final flush gets at least this long (or the timeout, if shorter). */
#define FINAL_FLUSH_MIN_NS (500 * 1000 * 1000LL)
/* A wait for a receiver to take more is cut in slices this long, to notice a
 * stop. */
#define WAIT_SLICE_MS 20
/* Writes to a file descriptor shared with the application (stdout, stderr)
 * are at most this long, so that after poll() says there is room they do not
 * block (a pipe takes PIPE_BUF bytes at once). */
#define SHARED_WRITE_MAX 4096
/* Values of the environment longer than this are not tags anyone meant. */
#define MAX_ENV_VALUE 1024

typedef struct {
  uint64_t buffer_full, too_long, failed, sent;
  uint64_t bytes; /* of the lines sent */
} counts_t;

struct spectator__output {
  spectator_registry_t *reg;
  spectator__location_t loc;
  pthread_mutex_t cycle_mu;
  pthread_mutex_t mu;
  spectator__lines_t lines; /* mu */
  char **common;            /* raw key, key, value triples (sanitized), NULL-terminated */
  counts_t pending;         /* drops found under mu, not yet counted in meters */
  /* The publishing thread's: */
  int fd;         /* -1: not open */
  bool own_fd;    /* not stdout or stderr */
  bool connected; /* unix: connected to the receiver's socket */
  struct sockaddr_storage addr;
  socklen_t addrlen;
  int64_t drain_period_ns;
  int64_t next_drain_ns; /* 0: none yet */
  /* The memory output (mu): lines, each followed by '\n'. */
  char *mem;
  size_t mem_len, mem_cap, mem_lines;
  spectator__ratelimit_t rl_full, rl_long, rl_send, rl_open;
  struct spectator__output *next_all;
};

/* ------------------------------------------------------------------------ */
/* The list of outputs (fork)                                                */
/* ------------------------------------------------------------------------ */

static pthread_mutex_t all_mu = PTHREAD_MUTEX_INITIALIZER;
static spectator__output_t *all_head;

static void link_output(spectator__output_t *o) {
  pthread_mutex_lock(&all_mu);
  o->next_all = all_head;
  all_head = o;
  pthread_mutex_unlock(&all_mu);
}

static void unlink_output(spectator__output_t *o) {
  pthread_mutex_lock(&all_mu);
  for (spectator__output_t **p = &all_head; *p; p = &(*p)->next_all) {
    if (*p == o) {
      *p = o->next_all;
      break;
    }
  }
  pthread_mutex_unlock(&all_mu);
}

/* ------------------------------------------------------------------------ */
/* Creation                                                                  */
/* ------------------------------------------------------------------------ */

/* A trimmed, non-empty environment value (at most MAX_ENV_VALUE bytes) as a
 * new string; NULL when unset or blank, or memory runs out (*ok false). */
static char *env_value(const char *name, bool *ok) {
  const char *v = getenv(name);
  if (!v) return NULL;
  while (isspace((unsigned char)*v)) v++;
  size_t n = strlen(v);
  while (n && isspace((unsigned char)v[n - 1])) n--;
  if (n == 0) return NULL;
  if (n > MAX_ENV_VALUE) {
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT,
                   "%s is longer than %d characters: not sent as a tag", name, MAX_ENV_VALUE);
    return NULL;
  }
  char *s = malloc(n + 1);
  if (!s) {
    *ok = false;
    return NULL;
  }
  memcpy(s, v, n);
  s[n] = '\0';
  return s;
}

static char *sanitized_copy(const char *s) {
  char *d = malloc(strlen(s) + 1);
  if (d) spectator__sanitize(s, d);
  return d;
}

static void free_common(char **c) {
  for (size_t i = 0; c && c[i]; i++) free(c[i]);
  free(c);
}

/* The tags every line carries: only those spectatord cannot know, as every
 * Spectator client that writes to it: nf.container (TITUS_CONTAINER_NAME)
 * and nf.process (NETFLIX_PROCESS_NAME), when env_common_tags is set, then
 * the configured common_tags (which win). spectatord adds the others. */
static char **line_common_tags(const spectator_config_t *cfg, bool *ok) {
  const char *keys[64];
  char *vals_env[2] = {NULL, NULL};
  const char *vals[64];
  size_t n = 0;
  if (cfg->env_common_tags) {
    vals_env[0] = env_value("TITUS_CONTAINER_NAME", ok);
    vals_env[1] = env_value("NETFLIX_PROCESS_NAME", ok);
    if (vals_env[0]) keys[n] = "nf.container", vals[n++] = vals_env[0];
    if (vals_env[1]) keys[n] = "nf.process", vals[n++] = vals_env[1];
  }
  size_t cap = n;
  for (size_t i = 0; cfg->common_tags && cfg->common_tags[i]; i += 2) cap++;
  char **out = calloc(3 * cap + 1, sizeof(*out));
  size_t j = 0;
  for (size_t i = 0; out && i < cap; i++) {
    const char *k, *v;
    if (i < n) {
      k = keys[i];
      v = vals[i];
    } else {
      k = cfg->common_tags[2 * (i - n)];
      v = cfg->common_tags[2 * (i - n) + 1];
    }
    /* A key given again replaces the earlier value. */
    size_t at = j;
    for (size_t e = 0; e < j; e += 3)
      if (strcmp(out[e], k) == 0) at = e;
    if (at < j) {
      free(out[at + 2]);
      out[at + 2] = sanitized_copy(v);
      if (!out[at + 2]) *ok = false;
      continue;
    }
    out[j] = strdup(k);
    out[j + 1] = sanitized_copy(k);
    out[j + 2] = sanitized_copy(v);
    if (!out[j] || !out[j + 1] || !out[j + 2]) *ok = false;
    j += 3;
  }
  free(vals_env[0]);
  free(vals_env[1]);
  if (!out) *ok = false;
  if (!*ok) {
    free_common(out);
    return NULL;
  }
  return out;
}

static void fence(spectator_registry_t *reg);

int spectator__output_init(spectator_registry_t *reg, const spectator_config_t *caller_cfg) {
  spectator__location_t *loc = malloc(sizeof(*loc));
  if (!loc) goto nomem;
  const char *why = NULL;
  if (spectator__location_parse(reg->cfg.output_location, loc, &why) != 0) {
    spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_INIT,
                   "output_location '%.*s' is not valid: %s (expected " SPECTATOR__LOCATION_EXPECTED
                   "); using the Atlas aggregator at the configured uri",
                   SPECTATOR__LOG_STR(reg->cfg.output_location), why);
  }
  reg->output_kind = (uint8_t)loc->kind;
  if (!spectator__location_is_lines(loc->kind)) {
    if (loc->kind == SPECTATOR__OUT_NONE)
      spectator__log(SPECTATOR_LOG_INFO, SPECTATOR_LOGGER_INIT,
                     "output location none: measurements are recorded and sent nowhere");
    free(loc);
    return 0;
  }
  spectator__output_t *o = calloc(1, sizeof(*o));
  bool ok = o != NULL;
  if (o) {
    o->loc = *loc;
    o->reg = reg;
    o->fd = -1;
    o->common = line_common_tags(caller_cfg, &ok);
    reg->samples = ok ? spectator__samples_new(0, 0) : NULL;
  }
  free(loc);
  if (!ok || !reg->samples) {
    if (o) free_common(o->common);
    free(o);
    reg->samples = NULL;
    goto nomem;
  }
  pthread_mutex_init(&o->cycle_mu, NULL);
  pthread_mutex_init(&o->mu, NULL);
  o->lines.common = (const char *const *)o->common;
  o->lines.max_ready = MAX_READY;
  o->lines.ready_tail = &o->lines.ready;
  o->drain_period_ns = DRAIN_MAX_NS;
  reg->output = o;
  reg->fence = fence;
  link_output(o);
  spectator__log(SPECTATOR_LOG_INFO, SPECTATOR_LOGGER_INIT,
                 "measurements go to %s in spectatord's line protocol", o->loc.text);
  return 0;
nomem:
  spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_INIT,
                 "out of memory creating a registry's output");
  return SPECTATOR_ENOMEM;
}

static void close_fd(spectator__output_t *o) {
  if (o->fd >= 0 && o->own_fd) close(o->fd);
  o->fd = -1;
  o->connected = false;
}

void spectator__output_free(spectator_registry_t *reg) {
  spectator__output_t *o = reg->output;
  if (!o) return;
  unlink_output(o);
  reg->fence = NULL;
  reg->output = NULL;
  close_fd(o);
  spectator__lines_free(&o->lines);
  spectator__samples_free(reg->samples);
  reg->samples = NULL;
  free_common(o->common);
  free(o->mem);
  pthread_mutex_destroy(&o->cycle_mu);
  pthread_mutex_destroy(&o->mu);
  free(o);
}

/* ------------------------------------------------------------------------ */
/* Lines (mu held)                                                           */
/* ------------------------------------------------------------------------ */

static void take_sample(void *ctx, const void *meter, uint64_t value) {
  spectator__lines_add_sample(&((spectator__output_t *)ctx)->lines, meter, value);
}

uint64_t spectator__output_unsent_samples(const spectator_registry_t *reg) {
  return reg->samples ? spectator__samples_unsent(reg->samples) : 0;
}

/* Take samples published before the mark into lines, at most max (0: all);
 * true when none before the mark is left. */
static bool drain_locked(spectator__output_t *o, const spectator__samples_mark_t *m, size_t max) {
  bool done;
  spectator__samples_drain(o->reg->samples, m, max, take_sample, o, &done);
  o->pending.buffer_full += spectator__samples_take_dropped(o->reg->samples);
  return done;
}

/* Before the registry frees expired meters (snap_lock and lock held): every
 * sample recorded so far, which includes all those of the meters to free
 * (recorded before their grace period ended). */
static void fence(spectator_registry_t *reg) {
  spectator__output_t *o = reg->output;
  spectator__samples_mark_t m;
  spectator__samples_mark(reg->samples, &m);
  pthread_mutex_lock(&o->mu);
  drain_locked(o, &m, 0);
  pthread_mutex_unlock(&o->mu);
}

/* Move the lines' drop counts into pending. */
static void collect_line_drops(spectator__output_t *o) {
  o->pending.buffer_full += o->lines.no_room;
  o->pending.too_long += o->lines.too_long;
  o->lines.no_room = o->lines.too_long = 0;
}

/* The memory output: keep the datagrams' lines. */
static void memory_keep(spectator__output_t *o, spectator__datagram_t *list) {
  for (spectator__datagram_t *d = list; d; d = d->next) {
    size_t need = o->mem_len + d->len + 1;
    if (need > MEMORY_MAX_BYTES) {
      o->pending.buffer_full += d->nlines;
      continue;
    }
    if (need > o->mem_cap) {
      size_t cap = o->mem_cap ? o->mem_cap : 65536;
      while (cap < need) cap *= 2;
      char *m = realloc(o->mem, cap);
      if (!m) {
        o->pending.buffer_full += d->nlines;
        continue;
      }
      o->mem = m;
      o->mem_cap = cap;
    }
    memcpy(o->mem + o->mem_len, d->data, d->len);
    o->mem_len += d->len;
    o->mem[o->mem_len++] = '\n';
    o->mem_lines += d->nlines;
  }
  spectator__lines_recycle(&o->lines, list);
}

/* ------------------------------------------------------------------------ */
/* Sending (no lock held)                                                    */
/* ------------------------------------------------------------------------ */

/* Wait until fd can take more, or the deadline (0: none; cut to the stop
 * deadline once a stop is asked for); false when the time is up. */
static bool wait_writable(spectator__output_t *o, int64_t deadline_ns) {
  if (deadline_ns == 0) deadline_ns = INT64_MAX;
  for (;;) {
    int64_t stop_deadline;
    if (spectator__publisher_stopping(o->reg, &stop_deadline) && stop_deadline &&
        stop_deadline < deadline_ns)
      deadline_ns = stop_deadline;
    int64_t now = spectator__monotonic_ns();
    if (deadline_ns <= now) return false;
    int64_t left = deadline_ns - now;
    int ms = left > (int64_t)WAIT_SLICE_MS * 1000000 ? WAIT_SLICE_MS : (int)(left / 1000000) + 1;
    struct pollfd pfd = {o->fd, POLLOUT, 0};
    int rc = poll(&pfd, 1, ms);
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

static void log_send_error(spectator__output_t *o, size_t lines, const char *what, int err) {
  SPECTATOR__LOG_LIMITED(&o->rl_send, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                         "could not %s %zu lines to %s: %s; dropped", what, lines, o->loc.text,
                         strerror(err));
}

static void log_open_error(spectator__output_t *o, const char *what, const char *err) {
  SPECTATOR__LOG_LIMITED(&o->rl_open, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                         "could not %s %s: %s; its lines are dropped until it works", what,
                         o->loc.text, err);
}

/* Open the file or socket, or take stdout or stderr; false (logged) when it
 * cannot be had now (a later send tries again). */
static bool open_output(spectator__output_t *o) {
  if (o->fd >= 0) return true;
  switch (o->loc.kind) {
  case SPECTATOR__OUT_STDOUT:
  case SPECTATOR__OUT_STDERR:
    o->fd = o->loc.kind == SPECTATOR__OUT_STDOUT ? STDOUT_FILENO : STDERR_FILENO;
    o->own_fd = false;
    return true;
  case SPECTATOR__OUT_FILE:
    /* Non-blocking: a FIFO without a reader, or a full one, never blocks. */
    o->fd =
        open(o->loc.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0644);
    if (o->fd < 0) {
      log_open_error(o, "open", strerror(errno));
      return false;
    }
    o->own_fd = true;
    return true;
  case SPECTATOR__OUT_UDP: {
    char port[8];
    snprintf(port, sizeof(port), "%d", o->loc.port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(o->loc.host, port, &hints, &ai);
    if (rc != 0 || !ai) {
      log_open_error(o, "resolve the host of", rc ? gai_strerror(rc) : "no address");
      return false;
    }
    o->fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (o->fd >= 0) {
      memcpy(&o->addr, ai->ai_addr, ai->ai_addrlen);
      o->addrlen = (socklen_t)ai->ai_addrlen;
      o->own_fd = true;
    } else {
      log_open_error(o, "make a socket for", strerror(errno));
    }
    freeaddrinfo(ai);
    return o->fd >= 0;
  }
  case SPECTATOR__OUT_UNIX: {
    struct sockaddr_un *un = (struct sockaddr_un *)&o->addr;
    memset(un, 0, sizeof(*un));
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, o->loc.path, strlen(o->loc.path) + 1);
    o->addrlen = (socklen_t)sizeof(*un);
    o->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (o->fd < 0) {
      log_open_error(o, "make a socket for", strerror(errno));
      return false;
    }
    o->own_fd = true;
    return true;
  }
  default: return false;
  }
}

/* A unix datagram socket is connected to its receiver, so that poll() tells
 * when the receiver's queue has room (an unconnected one always looks
 * writable). False (logged) when nobody listens at the path now. */
static bool connect_unix(spectator__output_t *o) {
  if (o->connected) return true;
  if (connect(o->fd, (struct sockaddr *)&o->addr, o->addrlen) == 0) {
    o->connected = true;
    return true;
  }
  log_open_error(o, "connect to", strerror(errno));
  return false;
}

/* Send one datagram; true when it was sent. */
static bool send_datagram(spectator__output_t *o, const spectator__datagram_t *d,
                          int64_t deadline_ns) {
  if (!open_output(o)) return false;
  if (o->loc.kind == SPECTATOR__OUT_UNIX && !connect_unix(o)) return false;
  for (;;) {
    ssize_t n = o->loc.kind == SPECTATOR__OUT_UNIX
                    ? send(o->fd, d->data, d->len, MSG_DONTWAIT | MSG_NOSIGNAL)
                    : sendto(o->fd, d->data, d->len, MSG_DONTWAIT | MSG_NOSIGNAL,
                             (struct sockaddr *)&o->addr, o->addrlen);
    if (n >= 0) return true;
    int err = errno;
    if (err == EINTR) continue;
    if ((err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) && wait_writable(o, deadline_ns))
      continue;
    log_send_error(o, d->nlines, err == EAGAIN || err == EWOULDBLOCK ? "send in time" : "send",
                   err);
    /* The receiver went away (a restarted spectatord has a new socket): connect again. */
    if (o->loc.kind == SPECTATOR__OUT_UNIX &&
        (err == ECONNREFUSED || err == ENOTCONN || err == ENOENT || err == EDESTADDRREQ))
      close_fd(o);
    return false;
  }
}

/* Write bytes to the file or stream, polling before each write. */
static bool write_all(spectator__output_t *o, const char *p, size_t len, int64_t deadline_ns,
                      size_t lines) {
  while (len > 0) {
    size_t chunk = len;
    if (!o->own_fd && chunk > SHARED_WRITE_MAX) {
      /* end the chunk after a line when there is one */
      chunk = SHARED_WRITE_MAX;
      const char *nl = memrchr(p, '\n', chunk);
      if (nl) chunk = (size_t)(nl - p) + 1;
    }
    if (!o->own_fd && !wait_writable(o, deadline_ns)) {
      log_send_error(o, lines, "write in time", ETIMEDOUT);
      return false;
    }
    ssize_t n = write(o->fd, p, chunk);
    if (n > 0) {
      p += n;
      len -= (size_t)n;
      continue;
    }
    int err = n < 0 ? errno : EIO;
    if (err == EINTR) continue;
    if ((err == EAGAIN || err == EWOULDBLOCK) && wait_writable(o, deadline_ns)) continue;
    log_send_error(o, lines, "write", err);
    return false;
  }
  return true;
}

/* Send the datagrams, counting lines sent and failed; gives them back for
 * reuse. */
static void send_all(spectator__output_t *o, spectator__datagram_t *list, int64_t deadline_ns,
                     counts_t *c) {
  for (spectator__datagram_t *d = list; d; d = d->next) {
    bool ok;
    if (o->loc.kind == SPECTATOR__OUT_UDP || o->loc.kind == SPECTATOR__OUT_UNIX) {
      ok = send_datagram(o, d, deadline_ns);
    } else {
      ok = open_output(o);
      if (ok) {
        /* a stream has a '\n' after every line (the datagram has room for it) */
        spectator__datagram_t *w = (spectator__datagram_t *)d;
        w->data[w->len] = '\n';
        ok = write_all(o, w->data, w->len + 1, deadline_ns, d->nlines);
      }
    }
    if (ok) {
      c->sent += d->nlines;
      c->bytes += d->len;
    } else {
      c->failed += d->nlines;
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Counting what was sent and dropped                                        */
/* ------------------------------------------------------------------------ */

/* Count and log (rate-limited) what a cycle or a drain sent and dropped. No
 * lock held. */
static void account(spectator__output_t *o, const counts_t *c) {
  spectator_registry_t *reg = o->reg;
  /* The memory output sends nothing: only its drops are counted. */
  if (o->loc.kind != SPECTATOR__OUT_MEMORY)
    spectator__registry_count_measurements(reg, NULL, c->sent);
  spectator__registry_count_measurements(reg, "buffer-full", c->buffer_full);
  spectator__registry_count_measurements(reg, "validation", c->too_long);
  spectator__registry_count_measurements(reg, "other", c->failed);
  if (c->buffer_full)
    SPECTATOR__LOG_LIMITED(&o->rl_full, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                           "%llu measurements for %s dropped: the buffers were full (samples "
                           "recorded faster than they could be sent)",
                           (unsigned long long)c->buffer_full, o->loc.text);
  if (c->too_long)
    SPECTATOR__LOG_LIMITED(&o->rl_long, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                           "%llu lines for %s dropped: longer than a datagram (%d bytes)",
                           (unsigned long long)c->too_long, o->loc.text, SPECTATOR__DATAGRAM_MAX);
}

/* ------------------------------------------------------------------------ */
/* Cycles and drains                                                         */
/* ------------------------------------------------------------------------ */

/* Under mu, at the end of a cycle or a drain: the datagrams to send (the
 * memory output keeps them at once), and the drops found. */
static spectator__datagram_t *finish_locked(spectator__output_t *o, bool flush, counts_t *c) {
  if (flush) spectator__lines_flush(&o->lines);
  spectator__datagram_t *list = spectator__lines_take(&o->lines);
  if (o->loc.kind == SPECTATOR__OUT_MEMORY) {
    memory_keep(o, list);
    list = NULL;
  }
  collect_line_drops(o);
  *c = o->pending;
  memset(&o->pending, 0, sizeof(o->pending));
  return list;
}

static void send_and_account(spectator__output_t *o, spectator__datagram_t *list,
                             int64_t deadline_ns, counts_t *c) {
  if (list) {
    send_all(o, list, deadline_ns, c);
    pthread_mutex_lock(&o->mu);
    spectator__lines_recycle(&o->lines, list);
    pthread_mutex_unlock(&o->mu);
  }
  account(o, c);
}

/* The samples recorded so far into lines, DRAIN_STEP at a time; what each
 * step fills is sent before the next, with no lock held. flush: the last
 * datagram goes too, even if not full. Returns the largest backlog a ring
 * had (how full the rings got). */
static uint64_t drain_samples(spectator__output_t *o, int64_t deadline_ns, bool flush,
                              size_t *backlog) {
  spectator__samples_mark_t m;
  spectator__samples_mark(o->reg->samples, &m);
  uint64_t bytes = 0;
  for (bool first = true;; first = false) {
    counts_t c;
    pthread_mutex_lock(&o->cycle_mu);
    pthread_mutex_lock(&o->mu);
    if (first && backlog) *backlog = spectator__samples_backlog(o->reg->samples, &m);
    bool done = drain_locked(o, &m, DRAIN_STEP);
    spectator__datagram_t *list = finish_locked(o, done && flush, &c);
    pthread_mutex_unlock(&o->mu);
    pthread_mutex_unlock(&o->cycle_mu);
    send_and_account(o, list, deadline_ns, &c);
    bytes += c.bytes;
    if (done) return bytes;
  }
}

/* A publish (output.h): the samples so far, then the meters measured batch
 * by batch, each batch's lines sent before the next is measured. Returns the
 * bytes of the lines sent. */
static uint64_t cycle(spectator__output_t *o, int64_t deadline_ns) {
  spectator_registry_t *reg = o->reg;
  uint64_t bytes = drain_samples(o, deadline_ns, false, NULL);
  spectator__records_t rs;
  spectator__records_init(&rs);
  spectator__cursor_t cur = {0};
  cur.deadline_ns = deadline_ns;
  /* The first part of a snapshot calls the registry's pollers, which run
   * application code: not under cycle_mu. It measures nothing. */
  bool done = spectator__registry_collect(reg, &cur, &rs, 0);
  for (bool first = true; first || !done; first = false) {
    counts_t c;
    pthread_mutex_lock(&o->cycle_mu);
    rs.lines = true;
    if (!done) done = spectator__registry_collect(reg, &cur, &rs, reg->cfg.batch_size);
    size_t lost = rs.lost;
    pthread_mutex_lock(&o->mu);
    SPECTATOR__RECORDS_FOREACH(&rs, r) spectator__lines_add_record(&o->lines, r);
    spectator__datagram_t *list = finish_locked(o, done, &c);
    pthread_mutex_unlock(&o->mu);
    pthread_mutex_unlock(&o->cycle_mu);
    spectator__records_free(&rs);
    if (lost)
      spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_REGISTRY,
                     "out of memory during a publish: %zu measurements dropped", lost);
    c.failed += lost;
    send_and_account(o, list, deadline_ns, &c);
    bytes += c.bytes;
  }
  /* Every record was written: the ids they borrowed are free to go. */
  spectator__registry_collect_end(reg, &cur);
  return bytes;
}

uint64_t spectator__output_cycle(spectator_registry_t *reg, int64_t deadline_ns) {
  return reg->output ? cycle(reg->output, deadline_ns) : 0;
}

/* The longest drain period: ten drains an interval at least, and at most
 * DRAIN_MAX_NS apart. */
static int64_t longest_drain(const spectator__output_t *o) {
  int64_t p = (int64_t)(o->reg->cfg.frequency_s * 1e8);
  return p > DRAIN_MAX_NS ? DRAIN_MAX_NS : p < DRAIN_MIN_NS ? DRAIN_MIN_NS : p;
}

int64_t spectator__output_next_drain(spectator_registry_t *reg, int64_t next_publish_ns) {
  spectator__output_t *o = reg->output;
  if (!o->next_drain_ns) {
    if (o->drain_period_ns > longest_drain(o)) o->drain_period_ns = longest_drain(o);
    o->next_drain_ns = spectator__monotonic_ns() + o->drain_period_ns;
  }
  return o->next_drain_ns < next_publish_ns ? o->next_drain_ns : next_publish_ns;
}

/* Between publishes: take the samples and send them at once (spectatord
 * counts them in the interval they were recorded in), and set the next drain
 * period from how full the rings got. */
uint64_t spectator__output_drain(spectator_registry_t *reg, int64_t deadline_ns) {
  spectator__output_t *o = reg->output;
  size_t backlog = 0;
  uint64_t bytes = drain_samples(o, deadline_ns, true, &backlog);
  size_t cap = spectator__samples_capacity(reg->samples);
  if (backlog > cap / 4)
    o->drain_period_ns /= 2;
  else if (backlog < cap / 16)
    o->drain_period_ns *= 2;
  if (o->drain_period_ns < DRAIN_MIN_NS) o->drain_period_ns = DRAIN_MIN_NS;
  if (o->drain_period_ns > longest_drain(o)) o->drain_period_ns = longest_drain(o);
  o->next_drain_ns = spectator__monotonic_ns() + o->drain_period_ns;
  return bytes;
}

/* ------------------------------------------------------------------------ */
/* The memory output (public)                                                */
/* ------------------------------------------------------------------------ */

struct spectator_lines {
  size_t n;
  char *text;
  const char **lines;
};

static spectator__output_t *memory_output(spectator_registry_t *reg, const char *what) {
  if (reg && reg->output && reg->output->loc.kind == SPECTATOR__OUT_MEMORY) return reg->output;
  static spectator__ratelimit_t rl;
  SPECTATOR__LOG_LIMITED(&rl, SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_REGISTRY,
                         "%s on a registry %s: it has no memory output", what,
                         reg ? "whose output_location is not \"memory\"" : "that is NULL");
  return NULL;
}

spectator_lines_t *spectator_registry_lines(spectator_registry_t *reg) {
  spectator__output_t *o = memory_output(reg, "spectator_registry_lines");
  if (!o) return NULL;
  cycle(o, 0); /* what is pending becomes lines, as at the end of an interval */
  spectator_lines_t *ls = calloc(1, sizeof(*ls));
  if (!ls) return NULL;
  pthread_mutex_lock(&o->cycle_mu);
  pthread_mutex_lock(&o->mu);
  ls->n = o->mem_lines;
  ls->text = malloc(o->mem_len + 1);
  ls->lines = malloc((ls->n ? ls->n : 1) * sizeof(*ls->lines));
  if (ls->text && ls->lines) memcpy(ls->text, o->mem, o->mem_len);
  size_t len = o->mem_len;
  pthread_mutex_unlock(&o->mu);
  pthread_mutex_unlock(&o->cycle_mu);
  if (!ls->text || !ls->lines) {
    spectator_lines_free(ls);
    return NULL;
  }
  /* Split the copy at its newlines. */
  size_t i = 0;
  char *p = ls->text, *end = ls->text + len;
  while (p < end && i < ls->n) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    *nl = '\0';
    ls->lines[i++] = p;
    p = nl + 1;
  }
  ls->n = i;
  return ls;
}

void spectator_registry_lines_clear(spectator_registry_t *reg) {
  spectator__output_t *o = memory_output(reg, "spectator_registry_lines_clear");
  if (!o) return;
  pthread_mutex_lock(&o->cycle_mu);
  pthread_mutex_lock(&o->mu);
  o->mem_len = 0;
  o->mem_lines = 0;
  pthread_mutex_unlock(&o->mu);
  pthread_mutex_unlock(&o->cycle_mu);
}

size_t spectator_lines_count(const spectator_lines_t *ls) { return ls ? ls->n : 0; }

const char *spectator_lines_get(const spectator_lines_t *ls, size_t i) {
  return ls && i < ls->n ? ls->lines[i] : NULL;
}

void spectator_lines_free(spectator_lines_t *ls) {
  if (!ls) return;
  free(ls->text);
  free((void *)ls->lines);
  free(ls);
}

/* ------------------------------------------------------------------------ */
/* Fork hooks                                                                */
/* ------------------------------------------------------------------------ */

void spectator__outputs_prefork(void) {
  pthread_mutex_lock(&all_mu);
  for (spectator__output_t *o = all_head; o; o = o->next_all) pthread_mutex_lock(&o->cycle_mu);
}

void spectator__outputs_postfork_parent(void) {
  for (spectator__output_t *o = all_head; o; o = o->next_all) pthread_mutex_unlock(&o->cycle_mu);
  pthread_mutex_unlock(&all_mu);
}

/* No cycle or drain was running (prefork held cycle_mu) and no fence (the
 * registries held snap_lock): mu is free and everything is consistent. The
 * parent sends what it buffered; the child forgets it. The file or socket
 * stays open: a datagram socket or a file opened for appending has no state
 * to share. */
void spectator__outputs_postfork_child(void) {
  for (spectator__output_t *o = all_head; o; o = o->next_all) {
    pthread_mutex_init(&o->cycle_mu, NULL);
    pthread_mutex_init(&o->mu, NULL);
    spectator__samples_postfork_child(o->reg->samples);
    spectator__lines_postfork_child(&o->lines);
    memset(&o->pending, 0, sizeof(o->pending));
    o->mem_len = 0;
    o->mem_lines = 0;
  }
  pthread_mutex_init(&all_mu, NULL);
}
