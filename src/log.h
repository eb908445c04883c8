/*
 * Private: logging (log.c). Three named loggers, a process-wide level, an
 * application handler, and rate limits for lines that bad input could repeat.
 */
#ifndef SPECTATOR_LOG_H
#define SPECTATOR_LOG_H

#include <stdatomic.h>

#include "common.h"

/* Emit a message on a logger when level is enabled. User-supplied strings are
 * passed as arguments (never as the format) and should be shortened with
 * SPECTATOR__LOG_STR so a huge or binary string cannot flood the log. Never
 * called on a recording path. */
void spectator__log(spectator_log_level_t level, const char *logger, const char *fmt, ...)
    SPECTATOR__PRINTF(3, 4);
bool spectator__log_enabled(spectator_log_level_t level);
/* "%.*s" arguments for a user string: at most 120 bytes, "(null)" for NULL. */
#define SPECTATOR__LOG_MAX_STR 120
#define SPECTATOR__LOG_STR(s) (int)((s) ? spectator__strnlen_log(s) : 6), ((s) ? (s) : "(null)")
int spectator__strnlen_log(const char *s);

/* A URI fit for a log line: the credentials (everything between "://" and
 * the last '@' before any '?' or '#', so a password holding '/' too), every
 * query parameter's value and the fragment become "***". Writes at most
 * size - 1 bytes and a NUL into buf (size > 0) and returns buf; NULL gives
 * "(none)". */
#define SPECTATOR__URI_LOG_MAX 256
const char *spectator__redact_uri(const char *uri, char *buf, size_t size);

/* A rate limiter for one kind of log line: lets the 1st, 2nd, 4th, 8th...
 * occurrence through. Returns the occurrence number when the line should be
 * logged, 0 otherwise. No clock, so it is deterministic in tests. Zeroed
 * memory is a fresh limiter. */
typedef struct {
  _Atomic uint64_t count;
} spectator__ratelimit_t;
uint64_t spectator__ratelimit(spectator__ratelimit_t *rl);

#define SPECTATOR__LOG_LIMITED(rl, level, logger, fmt, ...)                \
  do {                                                                     \
    uint64_t spectator__n_ = spectator__ratelimit(rl);                     \
    if (spectator__n_)                                                     \
      spectator__log(level, logger, fmt " (occurrence %llu)", __VA_ARGS__, \
                     (unsigned long long)spectator__n_);                   \
  } while (0)

/* A rate limiter for mistakes that tells them apart: the repeats of one
 * mistake (one key: the caller hashes what makes it that mistake, such as the
 * meter name, the kind of error and the tag key) are let through at their
 * 1st, 2nd, 4th, 8th... occurrence, but the first occurrence of every
 * distinct mistake always is. Returns the occurrence number when the line
 * should be logged, 0 otherwise.
 *
 * Memory is bounded: the counts live in one process-wide table of
 * SPECTATOR__MISTAKES entries. When it is full, a new mistake replaces the
 * entry seen the fewest times (the oldest of those), so mistakes that repeat
 * keep their counts; a forgotten mistake that comes back is reported as new
 * (occurrence 1 again): a line may be repeated sooner than 1, 2, 4, 8
 * would, but no distinct mistake is ever silent. Takes a small lock (held by
 * the fork hooks below across fork(); waited for at most 100 ms, after which
 * the line is let through); never on a recording path. */
#define SPECTATOR__MISTAKES 256
uint64_t spectator__mistake_seen(uint64_t key);
/* How many calls were let through (returning 1, counting nothing) because
 * the table's lock was not had within the 100 ms: under valgrind or a heavily
 * loaded machine, not only after a signal handler. Tests read it. */
uint64_t spectator__mistake_timeouts(void);

#define SPECTATOR__LOG_MISTAKE(key, level, logger, fmt, ...)               \
  do {                                                                     \
    uint64_t spectator__n_ = spectator__mistake_seen(key);                 \
    if (spectator__n_)                                                     \
      spectator__log(level, logger, fmt " (occurrence %llu)", __VA_ARGS__, \
                     (unsigned long long)spectator__n_);                   \
  } while (0)

/* Fork hooks (fork.c calls them in order): the handler lock and the mistake
 * table's lock are held across fork() and re-initialized in the child. */
void spectator__log_prefork(void);
void spectator__log_postfork_parent(void);
void spectator__log_postfork_child(void);

#endif
