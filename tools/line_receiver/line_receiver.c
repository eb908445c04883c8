/*
 * A local stand-in for spectatord: UDP and unix datagram sockets, a strict
 * parser of its line protocol and exact aggregates (line_receiver.h).
 */
#include "line_receiver.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BUCKETS 4096
#define MAX_TAGS 64
#define RCVBUF (4 * 1024 * 1024)

typedef struct meter {
  struct meter *next;
  char *id;
  lr_meter_t m;
} meter_t;

struct lr {
  int udp_fd, unix_fd, wake[2];
  int udp_port;
  char *unix_path;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* lines arrived; pause changed */
  bool stopping, paused;
  FILE *echo;
  lr_stats_t stats;
  meter_t *buckets[BUCKETS];
  size_t nmeters;
  char **lines;
  size_t nlines, lines_cap;
  char **errors;
  size_t nerrors, errors_cap;
};

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */
/* ------------------------------------------------------------------------ */

static bool valid_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == '^';
}

/* A run of valid characters at p ending at one of the stop characters;
 * returns its length (0: none or a bad character). */
static size_t token(const char *p, const char *stops) {
  size_t n = 0;
  while (p[n] && !strchr(stops, p[n])) {
    if (!valid_char((unsigned char)p[n])) return 0;
    n++;
  }
  return p[n] ? n : 0;
}

typedef struct {
  char type;
  long opt;
  const char *name;
  size_t name_len;
  size_t ntags;
  const char *k[MAX_TAGS], *v[MAX_TAGS];
  size_t kl[MAX_TAGS], vl[MAX_TAGS];
  double d;
  uint64_t u;
} parsed_t;

/* A decimal number as strtod reads it, and nothing else. */
static bool strict_double(const char *s, double *out) {
  if (!*s) return false;
  for (const char *p = s; *p; p++)
    if (!strchr("0123456789.eE+-", *p)) return false;
  if (s[0] == '+' || s[0] == '.' || (s[0] == '-' && (s[1] == '.' || !s[1]))) return false;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (*end || end == s || !isfinite(v)) return false;
  *out = v;
  return true;
}

static int parse(const char *line, parsed_t *out, const char **why) {
  memset(out, 0, sizeof(*out));
  const char *p = line;
  out->type = *p++;
  if (!strchr("ctdTDgmCUA", out->type) || !out->type) {
    *why = "unknown type";
    return -1;
  }
  if (*p == ',') {
    if (out->type != 'g') {
      *why = "an option on a type other than g";
      return -1;
    }
    p++;
    long v = 0;
    const char *start = p;
    while (*p >= '0' && *p <= '9' && v < 100000000000L) v = v * 10 + (*p++ - '0');
    if (p == start || v <= 0) {
      *why = "a TTL that is not a whole number > 0";
      return -1;
    }
    out->opt = v;
  }
  if (*p++ != ':') {
    *why = "no ':' after the type";
    return -1;
  }
  size_t n = token(p, ",:");
  if (!n) {
    *why = "a name that is empty or has a character outside -._A-Za-z0-9~^";
    return -1;
  }
  out->name = p;
  out->name_len = n;
  p += n;
  while (*p == ',') {
    p++;
    size_t kl = token(p, "=,:");
    if (!kl || p[kl] != '=') {
      *why = "a tag key that is empty, has a bad character or no '='";
      return -1;
    }
    size_t vl = token(p + kl + 1, ",:");
    if (!vl) {
      *why = "a tag value that is empty or has a character outside -._A-Za-z0-9~^";
      return -1;
    }
    if (out->ntags == MAX_TAGS) {
      *why = "too many tags for this receiver";
      return -1;
    }
    out->k[out->ntags] = p;
    out->kl[out->ntags] = kl;
    out->v[out->ntags] = p + kl + 1;
    out->vl[out->ntags++] = vl;
    p += kl + 1 + vl;
  }
  if (*p++ != ':') {
    *why = "no ':' before the value";
    return -1;
  }
  if (out->type == 'U') {
    if (!*p) {
      *why = "U needs an unsigned integer";
      return -1;
    }
    uint64_t u = 0;
    for (; *p; p++) {
      if (*p < '0' || *p > '9' || u > (UINT64_MAX - (uint64_t)(*p - '0')) / 10) {
        *why = "U needs an unsigned integer below 2^64";
        return -1;
      }
      u = u * 10 + (uint64_t)(*p - '0');
    }
    out->u = u;
    return 0;
  }
  if (out->type == 'g' && strcmp(p, "NaN") == 0) {
    out->d = NAN;
    return 0;
  }
  if (!strict_double(p, &out->d)) {
    *why = "a value that is not a finite decimal number";
    return -1;
  }
  if (strchr("tdTD", out->type) && out->d < 0) {
    *why = "a negative sample";
    return -1;
  }
  /* spectatord converts these to int64 (nanoseconds, whole amounts) */
  if ((strchr("tT", out->type) && out->d * 1e9 >= 9223372036854775807.0) ||
      (out->type == 'D' && out->d >= 9223372036854775807.0)) {
    *why = "a sample beyond what spectatord converts to int64";
    return -1;
  }
  if (out->type == 'c' && !(out->d > 0)) {
    *why = "a counter increment that is not positive";
    return -1;
  }
  return 0;
}

int lr_parse_check(const char *line, const char **why) {
  parsed_t p;
  return parse(line, &p, why);
}

/* ------------------------------------------------------------------------ */
/* Aggregates (mu held)                                                      */
/* ------------------------------------------------------------------------ */

static uint64_t hash(const char *s, char type) {
  uint64_t h = 1469598103934665603ULL ^ (unsigned char)type;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static int tag_cmp(const parsed_t *p, size_t a, size_t b) {
  size_t n = p->kl[a] < p->kl[b] ? p->kl[a] : p->kl[b];
  int c = memcmp(p->k[a], p->k[b], n);
  return c ? c : (p->kl[a] > p->kl[b]) - (p->kl[a] < p->kl[b]);
}

/* The canonical id: name, then the tags sorted by key, a repeated key
 * keeping its last value. */
static char *canonical_id(const parsed_t *p) {
  size_t order[MAX_TAGS], n = 0, len = p->name_len + 1;
  for (size_t i = 0; i < p->ntags; i++) {
    size_t j = 0;
    while (j < n && tag_cmp(p, order[j], i) != 0) j++;
    if (j < n) {
      order[j] = i; /* later wins */
      continue;
    }
    order[n++] = i;
  }
  for (size_t i = 1; i < n; i++) /* insertion sort by key */
    for (size_t j = i; j > 0 && tag_cmp(p, order[j - 1], order[j]) > 0; j--) {
      size_t t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  for (size_t i = 0; i < n; i++) len += 2 + p->kl[order[i]] + p->vl[order[i]];
  char *id = malloc(len), *q = id;
  if (!id) return NULL;
  memcpy(q, p->name, p->name_len);
  q += p->name_len;
  for (size_t i = 0; i < n; i++) {
    *q++ = ',';
    memcpy(q, p->k[order[i]], p->kl[order[i]]);
    q += p->kl[order[i]];
    *q++ = '=';
    memcpy(q, p->v[order[i]], p->vl[order[i]]);
    q += p->vl[order[i]];
  }
  *q = '\0';
  return id;
}

static meter_t *find(lr_t *lr, char type, const char *id, bool create) {
  uint64_t h = hash(id, type) % BUCKETS;
  for (meter_t *m = lr->buckets[h]; m; m = m->next)
    if (m->m.type == type && strcmp(m->id, id) == 0) return m;
  if (!create) return NULL;
  meter_t *m = calloc(1, sizeof(*m));
  if (!m || !(m->id = strdup(id))) {
    free(m);
    return NULL;
  }
  m->m.type = type;
  m->m.max = -INFINITY;
  m->next = lr->buckets[h];
  lr->buckets[h] = m;
  lr->nmeters++;
  return m;
}

static void aggregate(lr_meter_t *m, const parsed_t *p) {
  m->count++;
  switch (p->type) {
  case 'c': m->sum += p->d; break;
  case 't':
  case 'T': {
    int64_t ns = (int64_t)(p->d * 1e9); /* as spectatord converts */
    m->total_ns += ns;
    if (ns > m->max_ns) m->max_ns = ns;
    break;
  }
  case 'd':
    m->sum += p->d;
    if (p->d > m->max) m->max = p->d;
    break;
  case 'D': m->total_int += (int64_t)p->d; break;
  case 'g':
    m->last = p->d;
    m->ttl = p->opt;
    break;
  case 'm':
    if (p->d > m->max) m->max = p->d;
    break;
  case 'U': m->last_u = p->u; break;
  default: m->last = p->d; break; /* C, A */
  }
}

static void keep(char ***arr, size_t *n, size_t *cap, const char *s, size_t len) {
  if (*n >= LR_KEPT_LINES) return;
  if (*n == *cap) {
    size_t c = *cap ? 2 * *cap : 1024;
    char **a = realloc(*arr, c * sizeof(*a));
    if (!a) return;
    *arr = a;
    *cap = c;
  }
  char *copy = malloc(len + 1);
  if (!copy) return;
  memcpy(copy, s, len);
  copy[len] = '\0';
  (*arr)[(*n)++] = copy;
}

static void error_line(lr_t *lr, const char *line, const char *why) {
  char buf[512];
  int n = snprintf(buf, sizeof(buf), "%.400s: %s", line, why);
  keep(&lr->errors, &lr->nerrors, &lr->errors_cap, buf,
       (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
  lr->stats.errors++;
}

static void take_line(lr_t *lr, const char *line, size_t len) {
  keep(&lr->lines, &lr->nlines, &lr->lines_cap, line, len);
  if (lr->echo) fprintf(lr->echo, "%.*s\n", (int)len, line);
  parsed_t p;
  const char *why;
  char *copy = strndup(line, len);
  if (!copy) return;
  if (parse(copy, &p, &why) != 0) {
    error_line(lr, copy, why);
  } else {
    char *id = canonical_id(&p);
    meter_t *m = id ? find(lr, p.type, id, true) : NULL;
    if (m) aggregate(&m->m, &p);
    free(id);
    lr->stats.lines++;
  }
  free(copy);
}

/* A datagram of len bytes (buf holds the first LR_MAX_DATAGRAM + 1). */
static void take_datagram(lr_t *lr, const char *buf, size_t len, bool udp) {
  pthread_mutex_lock(&lr->mu);
  lr->stats.datagrams++;
  if (udp)
    lr->stats.udp_datagrams++;
  else
    lr->stats.unix_datagrams++;
  lr->stats.bytes += len;
  if (len > lr->stats.max_datagram) lr->stats.max_datagram = len;
  if (len > LR_MAX_DATAGRAM) {
    error_line(lr, "(datagram)", "longer than spectatord's 65535 bytes");
  } else {
    /* Lines at '\n'; empty ones skipped, as spectatord does. */
    const char *p = buf, *end = buf + len;
    while (p < end) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
      if (n) take_line(lr, p, n);
      p += n + 1;
    }
  }
  pthread_cond_broadcast(&lr->cv);
  pthread_mutex_unlock(&lr->mu);
}

/* ------------------------------------------------------------------------ */
/* The receiving thread                                                      */
/* ------------------------------------------------------------------------ */

static void *run(void *arg) {
  lr_t *lr = arg;
  char *buf = malloc(LR_MAX_DATAGRAM + 2);
  if (!buf) return NULL;
  for (;;) {
    pthread_mutex_lock(&lr->mu);
    while (lr->paused && !lr->stopping) pthread_cond_wait(&lr->cv, &lr->mu);
    bool stop = lr->stopping;
    pthread_mutex_unlock(&lr->mu);
    if (stop) break;
    struct pollfd pfd[3] = {
        {lr->wake[0], POLLIN, 0}, {lr->udp_fd, POLLIN, 0}, {lr->unix_fd, POLLIN, 0}};
    if (poll(pfd, 3, 1000) < 0 && errno != EINTR) break;
    if (pfd[0].revents) {
      char c;
      while (read(lr->wake[0], &c, 1) > 0) {
      }
    }
    for (int i = 1; i < 3; i++) {
      if (!(pfd[i].revents & POLLIN)) continue;
      /* MSG_TRUNC: the datagram's real length, even when it was longer. */
      ssize_t n = recv(pfd[i].fd, buf, LR_MAX_DATAGRAM + 1, MSG_DONTWAIT | MSG_TRUNC);
      if (n >= 0) take_datagram(lr, buf, (size_t)n, i == 1);
    }
  }
  free(buf);
  return NULL;
}

static void wake(lr_t *lr) {
  char c = 1;
  if (write(lr->wake[1], &c, 1) < 0) { /* the pipe is full: the thread wakes anyway */
  }
}

lr_t *lr_start(int udp_port, const char *unix_path) {
  lr_t *lr = calloc(1, sizeof(*lr));
  if (!lr) return NULL;
  lr->udp_fd = lr->unix_fd = lr->wake[0] = lr->wake[1] = -1;
  pthread_mutex_init(&lr->mu, NULL);
  pthread_cond_init(&lr->cv, NULL);
  if (pipe2(lr->wake, O_NONBLOCK | O_CLOEXEC) != 0) goto fail;
  if (udp_port >= 0) {
    lr->udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int size = RCVBUF;
    setsockopt(lr->udp_fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)udp_port);
    socklen_t len = sizeof(a);
    if (lr->udp_fd < 0 || bind(lr->udp_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(lr->udp_fd, (struct sockaddr *)&a, &len) != 0) {
      fprintf(stderr, "line receiver: udp port %d: %s\n", udp_port, strerror(errno));
      goto fail;
    }
    lr->udp_port = ntohs(a.sin_port);
  }
  if (unix_path) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    if (strlen(unix_path) >= sizeof(a.sun_path)) {
      fprintf(stderr, "line receiver: unix path too long: %s\n", unix_path);
      goto fail;
    }
    strcpy(a.sun_path, unix_path);
    unlink(unix_path);
    lr->unix_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int size = RCVBUF;
    setsockopt(lr->unix_fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    if (lr->unix_fd < 0 || bind(lr->unix_fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
      fprintf(stderr, "line receiver: unix socket %s: %s\n", unix_path, strerror(errno));
      goto fail;
    }
    lr->unix_path = strdup(unix_path);
  }
  if (pthread_create(&lr->thread, NULL, run, lr) != 0) goto fail;
  return lr;
fail:
  if (lr->udp_fd >= 0) close(lr->udp_fd);
  if (lr->unix_fd >= 0) close(lr->unix_fd);
  if (lr->wake[0] >= 0) close(lr->wake[0]);
  if (lr->wake[1] >= 0) close(lr->wake[1]);
  free(lr->unix_path);
  free(lr);
  return NULL;
}

int lr_udp_port(const lr_t *lr) { return lr ? lr->udp_port : 0; }

static void clear_locked(lr_t *lr) {
  for (size_t b = 0; b < BUCKETS; b++) {
    while (lr->buckets[b]) {
      meter_t *m = lr->buckets[b];
      lr->buckets[b] = m->next;
      free(m->id);
      free(m);
    }
  }
  for (size_t i = 0; i < lr->nlines; i++) free(lr->lines[i]);
  for (size_t i = 0; i < lr->nerrors; i++) free(lr->errors[i]);
  lr->nlines = lr->nerrors = lr->nmeters = 0;
  memset(&lr->stats, 0, sizeof(lr->stats));
}

void lr_stop(lr_t *lr) {
  if (!lr) return;
  pthread_mutex_lock(&lr->mu);
  lr->stopping = true;
  pthread_cond_broadcast(&lr->cv);
  pthread_mutex_unlock(&lr->mu);
  wake(lr);
  pthread_join(lr->thread, NULL);
  if (lr->udp_fd >= 0) close(lr->udp_fd);
  if (lr->unix_fd >= 0) close(lr->unix_fd);
  close(lr->wake[0]);
  close(lr->wake[1]);
  if (lr->unix_path) unlink(lr->unix_path);
  clear_locked(lr);
  free(lr->lines);
  free(lr->errors);
  free(lr->unix_path);
  pthread_mutex_destroy(&lr->mu);
  pthread_cond_destroy(&lr->cv);
  free(lr);
}

void lr_pause(lr_t *lr, bool paused) {
  if (!lr) return;
  pthread_mutex_lock(&lr->mu);
  lr->paused = paused;
  pthread_cond_broadcast(&lr->cv);
  pthread_mutex_unlock(&lr->mu);
  wake(lr);
}

void lr_reset(lr_t *lr) {
  if (!lr) return;
  pthread_mutex_lock(&lr->mu);
  clear_locked(lr);
  pthread_mutex_unlock(&lr->mu);
}

void lr_echo(lr_t *lr, void *file) {
  if (!lr) return;
  pthread_mutex_lock(&lr->mu);
  lr->echo = file;
  pthread_mutex_unlock(&lr->mu);
}

void lr_stats(lr_t *lr, lr_stats_t *out) {
  memset(out, 0, sizeof(*out));
  if (!lr) return;
  pthread_mutex_lock(&lr->mu);
  *out = lr->stats;
  pthread_mutex_unlock(&lr->mu);
}

bool lr_get(lr_t *lr, char type, const char *id, lr_meter_t *out) {
  if (!lr || !id) return false;
  pthread_mutex_lock(&lr->mu);
  meter_t *m = find(lr, type, id, false);
  if (m) *out = m->m;
  pthread_mutex_unlock(&lr->mu);
  return m != NULL;
}

size_t lr_meter_count(lr_t *lr) {
  if (!lr) return 0;
  pthread_mutex_lock(&lr->mu);
  size_t n = lr->nmeters;
  pthread_mutex_unlock(&lr->mu);
  return n;
}

bool lr_wait_lines(lr_t *lr, uint64_t n, int timeout_ms) {
  if (!lr) return false;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&lr->mu);
  while (lr->stats.lines + lr->stats.errors < n)
    if (pthread_cond_timedwait(&lr->cv, &lr->mu, &until) != 0) break;
  bool ok = lr->stats.lines + lr->stats.errors >= n;
  pthread_mutex_unlock(&lr->mu);
  return ok;
}

static bool copy_kept(char **arr, size_t n, size_t i, char *buf, size_t size) {
  if (i >= n) return false;
  snprintf(buf, size, "%s", arr[i]);
  return true;
}

bool lr_line(lr_t *lr, size_t i, char *buf, size_t size) {
  if (!lr) return false;
  pthread_mutex_lock(&lr->mu);
  bool ok = copy_kept(lr->lines, lr->nlines, i, buf, size);
  pthread_mutex_unlock(&lr->mu);
  return ok;
}

bool lr_error(lr_t *lr, size_t i, char *buf, size_t size) {
  if (!lr) return false;
  pthread_mutex_lock(&lr->mu);
  bool ok = copy_kept(lr->errors, lr->nerrors, i, buf, size);
  pthread_mutex_unlock(&lr->mu);
  return ok;
}
