/*
 * Logging: three named loggers (spectator.init, spectator.HttpClient,
 * spectator.Registry), a process-wide level and an application handler.
 *
 * The handler and its context are read under a small mutex and called after it
 * is released, so a handler never runs with a library lock held. Nothing on the
 * recording path logs.
 *
 * The mutex is held for two loads. A thread that exit() interrupted from a
 * signal handler may hold it forever (and the exit path logs), so a log line
 * waits for it at most HANDLER_WAIT_NS, then goes to stderr; after that,
 * lines only try the lock until it is free again.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "log.h"

#define HANDLER_WAIT_NS (100 * 1000 * 1000LL)

static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool handler_lock_stuck;
static spectator_log_fn handler;
static void *handler_ctx;

/* -1: not read from the environment yet. */
static _Atomic int log_level = -1;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};

int spectator_log_level_parse(const char *s, spectator_log_level_t *out) {
  static const struct {
    const char *name;
    spectator_log_level_t level;
  } names[] = {{"debug", SPECTATOR_LOG_DEBUG}, {"info", SPECTATOR_LOG_INFO},
               {"warn", SPECTATOR_LOG_WARN},   {"warning", SPECTATOR_LOG_WARN},
               {"error", SPECTATOR_LOG_ERROR}, {"off", SPECTATOR_LOG_OFF},
               {"none", SPECTATOR_LOG_OFF}};
  if (!s || !out) return SPECTATOR_EINVAL;
  while (isspace((unsigned char)*s)) s++;
  size_t len = strlen(s);
  while (len && isspace((unsigned char)s[len - 1])) len--;
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (strlen(names[i].name) == len && strncasecmp(s, names[i].name, len) == 0) {
      *out = names[i].level;
      return 0;
    }
  }
  return SPECTATOR_EINVAL;
}

static int current_level(void) {
  int l = atomic_load_explicit(&log_level, memory_order_relaxed);
  if (SPECTATOR__LIKELY(l >= 0)) return l;
  spectator_log_level_t parsed = SPECTATOR_LOG_WARN;
  const char *env = getenv("SPECTATOR_LOG_LEVEL");
  bool bad = env && *env && spectator_log_level_parse(env, &parsed) != 0;
  int expected = -1;
  atomic_compare_exchange_strong(&log_level, &expected, (int)parsed);
  if (bad)
    spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT,
                   "SPECTATOR_LOG_LEVEL='%.*s' is not one of debug, info, warn, error, off; "
                   "using warn",
                   SPECTATOR__LOG_STR(env));
  return atomic_load_explicit(&log_level, memory_order_relaxed);
}

void spectator_log_set_level(spectator_log_level_t level) {
  if ((int)level < SPECTATOR_LOG_DEBUG || (int)level > SPECTATOR_LOG_OFF) return;
  atomic_store(&log_level, (int)level);
}

spectator_log_level_t spectator_log_get_level(void) {
  return (spectator_log_level_t)current_level();
}

void spectator_log_set_handler(spectator_log_fn fn, void *ctx) {
  pthread_mutex_lock(&handler_lock);
  handler = fn;
  handler_ctx = ctx;
  pthread_mutex_unlock(&handler_lock);
}

/* The distinct-mistake table (log.h). key 0 marks an empty entry. */
static pthread_mutex_t mistakes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  uint64_t key;
  uint64_t count;
  uint64_t since; /* when it entered the table (mistakes_clock) */
} mistakes[SPECTATOR__MISTAKES];
static uint64_t mistakes_clock;
static _Atomic uint64_t mistakes_timeouts;

void spectator__log_prefork(void) {
  pthread_mutex_lock(&handler_lock);
  pthread_mutex_lock(&mistakes_lock);
}
void spectator__log_postfork_parent(void) {
  pthread_mutex_unlock(&mistakes_lock);
  pthread_mutex_unlock(&handler_lock);
}
void spectator__log_postfork_child(void) {
  pthread_mutex_init(&mistakes_lock, NULL);
  pthread_mutex_init(&handler_lock, NULL);
  atomic_store(&handler_lock_stuck, false);
}

bool spectator__log_enabled(spectator_log_level_t level) {
  /* Levels outside DEBUG..ERROR are never emitted (the default handler
   * indexes level_names with them). */
  return (unsigned)level < SPECTATOR_LOG_OFF && (int)level >= current_level();
}

int spectator__strnlen_log(const char *s) {
  size_t n = 0;
  while (n < SPECTATOR__LOG_MAX_STR && s[n]) n++;
  return (int)n;
}

void spectator__log(spectator_log_level_t level, const char *logger, const char *fmt, ...) {
  if (!spectator__log_enabled(level)) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (n < 0) return;
  /* Control characters from user strings must not forge log lines. */
  for (char *p = msg; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';

  spectator_log_fn fn = NULL;
  void *ctx = NULL;
  int64_t wait =
      atomic_load_explicit(&handler_lock_stuck, memory_order_relaxed) ? 0 : HANDLER_WAIT_NS;
  if (spectator__mutex_lock_until(&handler_lock, spectator__monotonic_ns() + wait) == 0) {
    fn = handler;
    ctx = handler_ctx;
    pthread_mutex_unlock(&handler_lock);
    if (wait == 0) atomic_store_explicit(&handler_lock_stuck, false, memory_order_relaxed);
  } else {
    atomic_store_explicit(&handler_lock_stuck, true, memory_order_relaxed);
  }

  if (fn) {
    fn(level, logger, msg, ctx);
  } else {
    /* One fprintf per line: stdio locks the stream, so lines do not interleave. */
    fprintf(stderr, "%s %s: %s\n", level_names[level], logger, msg);
  }
}

/* Append n bytes of s to buf (size), keeping it NUL-terminated. */
static void put(char *buf, size_t size, size_t *o, const char *s, size_t n) {
  size_t room = size - 1 - *o;
  if (n > room) n = room;
  memcpy(buf + *o, s, n);
  *o += n;
  buf[*o] = '\0';
}

const char *spectator__redact_uri(const char *uri, char *buf, size_t size) {
  size_t o = 0;
  buf[0] = '\0';
  if (!uri) {
    put(buf, size, &o, "(none)", 6);
    return buf;
  }
  const char *sep = strstr(uri, "://");
  const char *auth = sep ? sep + 3 : uri;
  size_t head = strcspn(auth, "?#"); /* authority and path */
  const char *at = NULL;
  for (size_t i = 0; i < head; i++)
    if (auth[i] == '@') at = auth + i;
  put(buf, size, &o, uri, (size_t)(auth - uri));
  if (at) put(buf, size, &o, "***", 3);
  const char *rest = at ? at : auth;
  put(buf, size, &o, rest, (size_t)(auth + head - rest));
  const char *p = auth + head;
  if (*p == '?') {
    put(buf, size, &o, "?", 1);
    p++;
    while (*p && *p != '#') {
      size_t len = strcspn(p, "&#");
      const char *eq = memchr(p, '=', len);
      if (eq) put(buf, size, &o, p, (size_t)(eq - p) + 1);
      put(buf, size, &o, "***", 3);
      p += len;
      if (*p == '&') put(buf, size, &o, "&", 1), p++;
    }
  }
  if (*p == '#') put(buf, size, &o, "#***", 4);
  return buf;
}

uint64_t spectator__ratelimit(spectator__ratelimit_t *rl) {
  uint64_t n = atomic_fetch_add_explicit(&rl->count, 1, memory_order_relaxed) + 1;
  return (n & (n - 1)) == 0 ? n : 0;
}

uint64_t spectator__mistake_seen(uint64_t key) {
  if (!key) key = 1; /* 0 marks an empty entry */
  /* Held for a scan of the table and nothing else, but a thread that exit()
   * interrupted from a signal handler may hold it forever: a bounded wait,
   * after which the line is logged (never lost). */
  if (spectator__mutex_lock_until(&mistakes_lock, spectator__monotonic_ns() + HANDLER_WAIT_NS)) {
    atomic_fetch_add_explicit(&mistakes_timeouts, 1, memory_order_relaxed);
    return 1;
  }
  size_t victim = 0;
  uint64_t n = 0;
  for (size_t i = 0; i < SPECTATOR__MISTAKES; i++) {
    if (mistakes[i].key == key) {
      n = ++mistakes[i].count;
      break;
    }
    /* The entry a new mistake replaces: an empty one, else the one seen the
     * fewest times, the oldest of those. */
    if (mistakes[victim].key && (!mistakes[i].key || mistakes[i].count < mistakes[victim].count ||
                                 (mistakes[i].count == mistakes[victim].count &&
                                  mistakes[i].since < mistakes[victim].since)))
      victim = i;
  }
  if (!n) {
    mistakes[victim].key = key;
    mistakes[victim].count = n = 1;
    mistakes[victim].since = ++mistakes_clock;
  }
  pthread_mutex_unlock(&mistakes_lock);
  return (n & (n - 1)) == 0 ? n : 0;
}

uint64_t spectator__mistake_timeouts(void) {
  return atomic_load_explicit(&mistakes_timeouts, memory_order_relaxed);
}

/* Error strings live here too: they are what a log line says. */
const char *spectator_strerror(int err) {
  switch (err) {
  case SPECTATOR_OK: return "success";
#define XX(name, value, text) \
  case SPECTATOR_##name: return text;
    SPECTATOR_ERRNO_MAP(XX)
#undef XX
  default: return "unknown error";
  }
}

const char *spectator_err_name(int err) {
  switch (err) {
  case SPECTATOR_OK: return "SPECTATOR_OK";
#define XX(name, value, text) \
  case SPECTATOR_##name: return "SPECTATOR_" #name;
    SPECTATOR_ERRNO_MAP(XX)
#undef XX
  default: return "SPECTATOR_UNKNOWN";
  }
}

const char *spectator_version(void) { return SPECTATOR_VERSION_STRING; }
