/*
 * line_receiver.h: a local stand-in for spectatord, for spectator-c's tests
 * and its users (the spectator-line-receiver program).
 *
 * An independent implementation of spectatord's input: it never includes or
 * links the spectator library. It receives datagrams on UDP (127.0.0.1) and on
 * a unix datagram socket, splits them into lines at '\n' (empty lines are
 * skipped, as spectatord does), parses each line strictly and keeps exact
 * aggregates per meter, as spectatord's meters would hold them:
 *
 *   <type>[,<ttl>]:<name>[,<key>=<value>]*:<value>
 *
 * - type is one of c t d T D g m C U A; the option (a TTL in whole seconds,
 *   > 0) is only accepted on g;
 * - name, keys and values are one or more of -._A-Za-z0-9~^ (what a client
 *   that sanitizes sends: anything else is an error here);
 * - the value is a decimal number as strtod reads it, without spaces, hex or
 *   infinities; NaN only on g; U takes an unsigned decimal integer; t d T D
 *   take no negative value and c only a positive one;
 * - a repeated key keeps its last value (spectatord's Tags::add).
 *
 * Aggregates (lr_meter_t), by type: c sums; t and T count and add
 * (int64_t)(seconds * 1e9) nanoseconds, as spectatord converts; d counts and
 * adds amounts; D counts and adds (int64_t)(amount); g keeps the last value
 * and TTL; m the max; C, U and A the last value. A line that fails to parse
 * is kept as an error (lr_error) and aggregates nothing. A datagram of 65536
 * bytes or more is an error as a whole (spectatord's buffer).
 *
 * Ids are "name" or "name,k1=v1,k2=v2" with the tags sorted by key: the
 * canonical form of what the line carried.
 *
 * Thread-safety: every function may be called from any thread while the
 * receiver runs, except lr_stop(). NULL receivers are accepted everywhere.
 */
#ifndef SPECTATOR_LINE_RECEIVER_H
#define SPECTATOR_LINE_RECEIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lr lr_t;

/* The largest datagram spectatord takes (its buffer holds 65536 bytes with a
 * NUL). */
#define LR_MAX_DATAGRAM 65535

/* Start receiving on UDP 127.0.0.1:udp_port (0: an ephemeral port; < 0: no
 * UDP) and, when unix_path is not NULL, on a unix datagram socket bound at
 * that path (an existing file there is removed first). NULL on failure
 * (logged to stderr). Free with lr_stop(). */
lr_t *lr_start(int udp_port, const char *unix_path);
/* The UDP port bound; 0 when none. */
int lr_udp_port(const lr_t *lr);
/* Stop, close the sockets (the unix one is unlinked) and free everything. */
void lr_stop(lr_t *lr);
/* Stop reading (paused true): datagrams wait in the kernel's queue, which
 * fills; a sender then finds no room. false reads again. */
void lr_pause(lr_t *lr, bool paused);
/* Forget every line, meter and count. */
void lr_reset(lr_t *lr);
/* Print every line received to out as it comes (NULL: stop printing). */
void lr_echo(lr_t *lr, void *file);

typedef struct {
  uint64_t datagrams;
  uint64_t udp_datagrams, unix_datagrams;
  uint64_t bytes;
  uint64_t max_datagram; /* bytes of the largest */
  uint64_t lines;        /* lines parsed */
  uint64_t errors;       /* lines (or datagrams) that failed */
} lr_stats_t;
void lr_stats(lr_t *lr, lr_stats_t *out);

typedef struct {
  char type;
  uint64_t count;    /* lines received */
  double sum;        /* c: the sum; d: the amounts' sum */
  double last;       /* g, C, A: the last value */
  double max;        /* m: the max; d: the largest amount */
  int64_t total_ns;  /* t, T: the sum of nanoseconds */
  int64_t max_ns;    /* t, T */
  int64_t total_int; /* D: the sum of (int64_t) amounts */
  uint64_t last_u;   /* U: the last value */
  long ttl;          /* g: the TTL of the last line; 0: none */
} lr_meter_t;

/* The aggregate of the meter of this type and id; false when none. */
bool lr_get(lr_t *lr, char type, const char *id, lr_meter_t *out);
/* Meters seen. */
size_t lr_meter_count(lr_t *lr);

/* Wait until at least n lines were parsed (or failed), or timeout_ms passed;
 * true when they were. */
bool lr_wait_lines(lr_t *lr, uint64_t n, int timeout_ms);
/* The i-th line received (parsed or not), copied into buf; false when out of
 * range. At most LR_KEPT_LINES are kept. */
#define LR_KEPT_LINES 1000000
bool lr_line(lr_t *lr, size_t i, char *buf, size_t size);
/* The i-th error: the line and why, copied into buf. */
bool lr_error(lr_t *lr, size_t i, char *buf, size_t size);

/* Parse one line strictly (no receiver needed): 0 when valid, else -1 with
 * *why set (a static string). For the tests of the receiver itself. */
int lr_parse_check(const char *line, const char **why);

#ifdef __cplusplus
}
#endif

#endif
