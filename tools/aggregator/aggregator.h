/*
 * aggregator.h: a local Atlas aggregator for spectator-c's tests, its demo
 * and users (the spectator-aggregator program).
 *
 * An independent implementation of the Atlas aggregator's `POST /api/v4/update`: it
 * never includes or links the spectator library. It listens on 127.0.0.1,
 * decodes gzip or plain bodies, checks that each body is strict RFC 8259 JSON,
 * sanitizes, validates each datapoint as the Atlas aggregator does, answers
 * 200 / 202 / 400 like Atlas and keeps exact aggregates per id. Failures can
 * be injected for the next requests.
 *
 * Thread-safety: every function may be called from any thread while the
 * server runs, except agg_stop(), which must not run concurrently with any
 * other call on the same aggregator (and the aggregator is gone after it).
 * NULL aggregator pointers are accepted everywhere and do nothing (getters
 * then report "not found" / zero).
 *
 * Strings: every `const char *` argument is only read during the call.
 * Lookups (agg_get, agg_wait_value, agg_get_series) sanitize nothing: pass the
 * sanitized strings. Tags are a NULL-terminated array of alternating key,
 * value strings that includes `statistic`; the name is passed separately;
 * NULL means no tags; a repeated key keeps the last value.
 *
 * HTTP endpoints served by agg_start():
 *   POST /api/v4/update   the Atlas publish endpoint (see "Answers" below)
 *   GET  /api/v1/stats    agg_stats_t as a JSON object
 *   GET  /api/v1/series   JSON array of {"name", "tags":{...}, "op", "value",
 *                         "count", "last"} (value = total since start/reset)
 *   GET  /api/v1/history  {"step": seconds, "interval": the current one,
 *                         "max_points", "series_without_history", "series":
 *                         [{...as /api/v1/series..., "points": [[interval,
 *                         aggregate within it], ...]}]}: the last
 *                         AGG_HISTORY_POINTS intervals with data of each of
 *                         the first AGG_HISTORY_MAX_SERIES series (later ones
 *                         have no points and are counted)
 *   GET  <path>           the files given to agg_serve_files(), if any
 *   POST /api/v1/fail?count=k&kind=status|delay|drop|huge|garbage&status=S&delay_ms=D
 *                         same as agg_fail_next(); 400 on bad parameters
 *   POST /api/v1/reset    same as agg_reset()
 *
 * Answers of /api/v4/update (Content-Type application/json):
 *   200 `{}`                                          every datapoint accepted
 *   202 `{"type":"partial","errorCount":n,"message":[...]}`  some dropped
 *   400 `{"type":"error","errorCount":n,"message":[...]}`    all dropped
 *   400 `{"type":"error","message":"..."}`   the body is not strict JSON or is
 *       not a well-formed payload (as Atlas's diagnostic message: no
 *       errorCount, `message` is a string); nothing of it is aggregated
 *   413 `{"type":"error","message":"..."}`   body (or decompressed body) larger
 *       than the limit (agg_set_max_body_size, default 64 MiB)
 *   415 unsupported Content-Encoding (anything but gzip / identity / none)
 * Each dropped datapoint gets one message, in Atlas's words, e.g.
 * `key too long: [kkk...] (61 > 60) (tags={"name":"x","kkk...":"v"})`.
 */
#ifndef SPECTATOR_TEST_AGGREGATOR_H
#define SPECTATOR_TEST_AGGREGATOR_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agg agg_t;

/* Default limit on a request body, compressed and decompressed. */
#define AGG_DEFAULT_MAX_BODY_SIZE ((size_t)64 * 1024 * 1024)
/* Size of the body sent by AGG_FAIL_HUGE_BODY. */
#define AGG_HUGE_BODY_SIZE ((size_t)10 * 1024 * 1024)
/* History kept for GET /api/v1/history: intervals per series, and series
 * (memory: about 2 KB per series with history). */
#define AGG_HISTORY_POINTS 120
#define AGG_HISTORY_MAX_SERIES 2000
/* Injected delays are capped to this (agg_stop still wakes them at once). */
#define AGG_MAX_DELAY_MS 60000

/* Starts a server on 127.0.0.1:port (0 = an ephemeral port). NULL on failure
 * (port in use, out of memory). Free with agg_stop(). */
agg_t *agg_start(int port);
/* The same server over https, for TLS tests: libmicrohttpd's TLS (GnuTLS, so
 * the server never shares TLS library state with a client that uses OpenSSL)
 * with this PEM private key and certificate (copied). agg_url() is then
 * "https://127.0.0.1:PORT/api/v4/update". NULL also when libmicrohttpd has no
 * TLS support or a key or certificate is NULL or unusable. */
agg_t *agg_start_tls(int port, const char *key_pem, const char *cert_pem);
/* The port actually bound; 0 for NULL. */
int agg_port(const agg_t *agg);
/* "http://127.0.0.1:PORT/api/v4/update" ("https://..." for agg_start_tls),
 * owned by agg, valid until agg_stop. */
const char *agg_url(const agg_t *agg);
/* Wakes delayed requests, stops the server, prints the last interval summary
 * when verbose, frees everything. NULL is a no-op. Returns promptly even
 * while a delayed request is in progress. */
void agg_stop(agg_t *agg);

/* Aggregate of an id since start (or the last agg_reset): the sum of its
 * values for op 0 (add), the max for op 10 (max). 0 found, -1 not found. */
int agg_get(agg_t *agg, const char *name, const char *const *tags, double *out_value);
/* Number of distinct ids accepted since start / reset. */
size_t agg_series_count(agg_t *agg);

/* Everything about one series. */
typedef struct {
  int op;                 /* op of its last datapoint: 0 add, 10 max */
  double value;           /* total since start / reset (as agg_get) */
  double last;            /* value of its most recent datapoint, unaggregated */
  size_t count;           /* accepted datapoints for it */
  double interval_value;  /* aggregate within interval `interval` */
  unsigned long interval; /* number of the interval of its last datapoint */
} agg_series_info_t;
/* 0 and *out filled when found, -1 when not. */
int agg_get_series(agg_t *agg, const char *name, const char *const *tags, agg_series_info_t *out);

/* Counters since start / reset. "requests" are POSTs to /api/v4/update that
 * were fully received (counted once answered, dropped or given up). Status
 * counters tally the status actually sent, injected or not. Body counters
 * cover every request, injected failures included; "every body was
 * gzip-compressed strict JSON" is gzip_bodies == requests && strict_json_bodies
 * == requests. Measurement counters cover only requests that were processed
 * (not injected non-2xx, not malformed). */
typedef struct {
  size_t requests, ok_200, partial_202, bad_400, other_status, gzip_bodies, plain_bodies,
      invalid_json_bodies, measurements_received, measurements_accepted, measurements_dropped;
  /* Extensions. */
  size_t dropped_connections;      /* AGG_FAIL_DROP (or stop during a delay) */
  size_t injected_failures;        /* requests that consumed an agg_fail_next rule */
  size_t gzip_errors;              /* Content-Encoding gzip that did not inflate */
  size_t too_large_bodies;         /* answered 413 */
  size_t malformed_payloads;       /* strict JSON but not a valid payload: 400 */
  size_t unsorted_string_tables;   /* string table not strictly ascending (strcmp) */
  size_t max_request_measurements; /* largest number of measurements in one body */
  size_t op_conflicts;             /* datapoints whose op differed from the series' */
  size_t strict_json_bodies;       /* bodies that decoded to strict RFC 8259 JSON */
  size_t body_bytes;               /* bytes of the bodies received, as sent (compressed) */
  size_t last_body_bytes;          /* bytes of the last one */
} agg_stats_t;
/* Copies the counters; zeroes *out for a NULL agg. */
void agg_stats(agg_t *agg, agg_stats_t *out);

/* Waits until stats.requests >= n. 0 when reached, -1 on timeout (or stop).
 * CLOCK_MONOTONIC condition variable, signalled on every request. */
int agg_wait_requests(agg_t *agg, size_t n, double timeout_s);
/* Waits until agg_get() finds the id with exactly `expected`. 0 / -1. */
int agg_wait_value(agg_t *agg, const char *name, const char *const *tags, double expected,
                   double timeout_s);

typedef enum {
  AGG_FAIL_STATUS,      /* answer `status` with an empty body */
  AGG_FAIL_DELAY,       /* wait delay_ms, then answer normally, or `status` if != 0 */
  AGG_FAIL_DROP,        /* read the body, then close the connection without answer */
  AGG_FAIL_HUGE_BODY,   /* answer `status` (0 = 200) with AGG_HUGE_BODY_SIZE bytes */
  AGG_FAIL_GARBAGE_BODY /* answer `status` (0 = 200) with a non-JSON body */
} agg_fail_kind_t;
/* The next k POSTs to /api/v4/update fail as described. Rules queue up: a
 * second call applies after the first one's k requests. A request whose
 * answered status is 2xx is processed and aggregated as usual (only its answer
 * changes); any other failed request is not aggregated. `status` outside
 * 100..599 means the default (503 for STATUS). k = 0 does nothing. */
void agg_fail_next(agg_t *agg, size_t k, agg_fail_kind_t kind, int status, int delay_ms);
/* Drops every pending failure rule. */
void agg_fail_clear(agg_t *agg);
/* Requests still to be failed by pending rules (a request takes its rule when
 * its headers arrive, before its body is read). */
size_t agg_fail_pending(agg_t *agg);

/* Clears aggregates, stats, pending failure rules and the last headers. */
void agg_reset(agg_t *agg);
/* Prints each request, each datapoint and each interval summary to out
 * (NULL = quiet), flushed after each request. out must outlive the server. */
void agg_set_verbose(agg_t *agg, FILE *out);
/* Length of an "interval" for printing and agg_series_info_t (default 5 s).
 * Interval n covers [(n-1)*step, n*step) since start. */
void agg_set_interval_step(agg_t *agg, double seconds);
/* Limit on request bodies, compressed and decompressed (413 above it). */
void agg_set_max_body_size(agg_t *agg, size_t bytes);
/* Nonzero: every answer to /api/v4/update says "Connection: close" and the
 * server closes the connection after it, as a proxy that closes idle
 * connections would (default 0: connections are kept alive). */
void agg_set_close_connections(agg_t *agg, int on);
/* At most n messages in a 202/400 answer (0 = one per dropped datapoint, the
 * default; the real aggregator samples 5). errorCount is always exact. */
void agg_set_max_messages(agg_t *agg, size_t n);

/* Calls fn for every series sorted by name then tags, with tags as a sorted
 * "k=v,k=v" string (statistic included, name excluded), the op and the total.
 * fn runs without the lock held, on a copy: it may call agg_* functions. */
void agg_foreach(agg_t *agg,
                 void (*fn)(const char *name, const char *tags, int op, double value, void *ctx),
                 void *ctx);

/* Headers of the last POST /api/v4/update ("" when absent), truncated to the
 * buffer sizes; a NULL buffer or zero length is skipped. */
void agg_last_headers(agg_t *agg, char *content_type, size_t ct_len, char *content_encoding,
                      size_t ce_len, char *user_agent, size_t ua_len);

/* A file served on GET: path "/" is also served as "/index.html". */
typedef struct {
  const char *path;         /* e.g. "/app.js"; NULL ends a table */
  const char *content_type; /* e.g. "text/javascript; charset=utf-8" */
  const unsigned char *data;
  size_t size;
} agg_file_t;
/* Serves the files of a table that ends with a NULL path (NULL: none). The
 * table must outlive the server. */
void agg_serve_files(agg_t *agg, const agg_file_t *files);
/* The aggregator's web page (web/, embedded at build time by embed.cmake into
 * the spectator-aggregator program only). */
extern const agg_file_t agg_web_files[];

/* 1 when text[0..len) is exactly one strict RFC 8259 JSON text: no NaN or
 * Infinity, no leading zeros or bare dots, no BOM, only space/tab/CR/LF as
 * whitespace, no raw control characters in strings, valid UTF-8, no unpaired
 * surrogate escapes, nesting at most 1000. 0 otherwise. */
int agg_json_is_strict(const char *text, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* SPECTATOR_TEST_AGGREGATOR_H */
