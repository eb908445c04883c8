/* Internal: the HTTP client (http.c), one libcurl easy handle per publisher. */
#ifndef SPECTATOR_HTTP_H
#define SPECTATOR_HTTP_H

#include "common.h"

/* Response bodies beyond this are cut (and flagged): the aggregator's answers
 * are small, a huge body is a misbehaving server. */
#define SPECTATOR__HTTP_MAX_BODY (64 * 1024)

typedef struct spectator__http spectator__http_t;

typedef struct {
  long status;        /* HTTP status, 0 when there was no response */
  int curl_code;      /* CURLcode; 0 = OK */
  const char *error;  /* short error name for metrics ("timeout", "connection"...), or NULL */
  const char *reason; /* with error: libcurl's text for it (owned by the handle), else "" */
  bool permanent;     /* the failure cannot go away by retrying the same request: a
                         certificate the configured trust rejects, a bad CA file, a URL
                         libcurl refuses */
  char *body;         /* NUL-terminated response body (owned by the handle) */
  size_t body_len;
  bool body_truncated;
} spectator__http_response_t;

/* A handle for this URI, ready for transfers and with spares for forked
 * children; NULL when libcurl, zlib or cJSON cannot be loaded, or libcurl
 * cannot be set up (the cause is logged). The first call loads the three
 * libraries and initializes libcurl, once per process (http.c says which
 * locks its callers hold meanwhile). */
spectator__http_t *spectator__http_new(const char *uri, const spectator_config_t *cfg);
void spectator__http_free(spectator__http_t *h);
/* In a forked child, from the fork child handler: forget the parent's
 * transfer handle without touching its connection (no TLS close_notify, no
 * write of any kind): the sockets it had open are closed in this process only
 * and its memory is abandoned; a spare kit made in an ancestor takes its
 * place. Calls nothing in libcurl and allocates nothing. False when no spare
 * was left: this process cannot publish until spectator__http_prepare. */
bool spectator__http_fork_child(spectator__http_t *h);
/* When there is no transfer handle (a forked child that had no spare left),
 * make it and the spares for this process's children: 0, or SPECTATOR_EHTTP
 * when libcurl cannot make one. Then it takes libcurl's global lock
 * (curl_multi_init), so only a start calls it; with a handle it does nothing. */
int spectator__http_prepare(spectator__http_t *h);
/* POST a gzip-compressed JSON body; timeout_ms bounds the whole request.
 * Fills res (valid until the next call on h). Returns 0 when a response (any
 * status) arrived, else SPECTATOR_EHTTP (res->error says why). Takes no
 * libcurl global lock (see http.c, FORK). */
int spectator__http_post(spectator__http_t *h, const char *body, size_t len, long timeout_ms,
                         spectator__http_response_t *res);

/* The body of a 202 or 400 answer: {"type":..., "errorCount":n, "message":[...]}. */
typedef struct {
  size_t error_count;
  char **messages; /* at most SPECTATOR__MAX_MESSAGES, each NUL-terminated */
  size_t nmessages;
} spectator__aggregator_response_t;
#define SPECTATOR__MAX_MESSAGES 100

/* Parse an aggregator answer (any bytes, any length; body need not be
 * NUL-terminated). Returns 0 when it is a JSON object with a numeric
 * errorCount >= 0, else SPECTATOR_EINVAL (out is then empty), or
 * SPECTATOR_ENOLIB when cJSON cannot be loaded (the first call loads it,
 * unless a start already did). Thread-safe. */
int spectator__parse_aggregator_response(const char *body, size_t len,
                                         spectator__aggregator_response_t *out);
void spectator__aggregator_response_free(spectator__aggregator_response_t *r);

/* How the n measurements of one request ended, as Spectator's ValidationHelper
 * counts them: 200: all sent. Any other status below 500 whose body is a
 * validation response: errorCount (at most n) dropped for validation, the
 * rest sent. Below 500 and the body is not one (HTML from a proxy, empty,
 * cut at SPECTATOR__HTTP_MAX_BODY): all dropped as other. 500 and above, and
 * no response at all (rc != 0: a refused connection, a timeout, TLS): all
 * dropped as http-error. The four counts add up to n. */
typedef struct {
  size_t sent, validation, other, http_error;
  spectator__aggregator_response_t answer; /* the parsed body, when there was one */
} spectator__outcome_t;
/* res and rc as spectator__http_post left them (res NULL: nothing was
 * attempted, counted as http-error). Free out->answer with
 * spectator__aggregator_response_free. Pure: safe on any input. */
void spectator__http_account(const spectator__http_response_t *res, int rc, size_t n,
                             spectator__outcome_t *out);

#endif
