/*
 * HTTP client: one libcurl easy handle, reused across publish cycles so the
 * connection to the aggregator stays alive.
 *
 * Only the publishing thread uses a handle (libcurl handles must not be shared
 * between threads), CURLOPT_NOSIGNAL keeps libcurl away from signals, and
 * curl_global_init runs once per process before the first handle. Response
 * bodies are read with a size bound. TLS is verified unless the configuration
 * says otherwise.
 *
 * LIBRARIES
 * libcurl (and cJSON, for the aggregator's answers) are called through
 * src/deps.h's CURL_FN() and CJSON_FN(). With SPECTATOR_DLOPEN_DEPS (the
 * default build) they are not linked but loaded by the first
 * spectator__http_new, together with zlib, which the publisher needs to
 * compress what it sends: deps.c says why, and which locks the callers hold
 * meanwhile. When one of them cannot be loaded, the reason is logged once and
 * every spectator__http_new returns NULL, which makes the start return
 * SPECTATOR_EHTTP while meters keep recording.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deps.h"
#include "http.h"
#include "log.h"

/*
 * The first spectator__http_new loads the three libraries (when they are not
 * linked) and initializes libcurl, once per process. Who calls it, and with
 * which locks:
 *
 * - spectator__publisher_start, holding that registry's publisher mutex and
 *   no other library lock. For the global registry's automatic start this
 *   also runs inside the global registry's pthread_once, so threads making
 *   their first global lookup wait for the load too. The load (a few
 *   milliseconds) therefore delays, once, a concurrent start, stop or fork.
 *   That mutex is also what keeps a fork out of the middle of the load: the
 *   fork prepare handler takes every publisher mutex, so a child never
 *   inherits a half-done dlopen or pthread_once.
 * - the fork child handler, only for a publisher that was running, so after
 *   the load completed in the parent: nothing is loaded in the child.
 */
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static bool global_ok;
static void global_init(void) {
  if (spectator__deps_load_all() != 0) return; /* each missing library was logged */
  CURLcode rc = CURL_FN(global_init)(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) {
    spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_HTTP, "curl_global_init failed: %s",
                   CURL_FN(easy_strerror)(rc));
    return;
  }
  global_ok = true;
}

struct spectator__http {
  CURL *curl;
  struct curl_slist *headers;
  char *body;
  size_t body_len;
  bool truncated;
  long connect_timeout_ms;
  char errbuf[CURL_ERROR_SIZE];
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  spectator__http_t *h = ud;
  size_t n = size * nmemb;
  size_t room = SPECTATOR__HTTP_MAX_BODY - h->body_len;
  size_t take = n < room ? n : room;
  if (take) {
    memcpy(h->body + h->body_len, ptr, take);
    h->body_len += take;
    h->body[h->body_len] = '\0';
  }
  if (take < n) h->truncated = true;
  return n; /* keep reading (and discarding) so the connection stays usable */
}

spectator__http_t *spectator__http_new(const char *uri, const spectator_config_t *cfg) {
  pthread_once(&global_once, global_init);
  if (!global_ok) return NULL; /* logged once, by global_init */
  spectator__http_t *h = calloc(1, sizeof(*h));
  if (!h) return NULL;
  h->body = malloc(SPECTATOR__HTTP_MAX_BODY + 1);
  h->curl = CURL_FN(easy_init)();
  struct curl_slist *hd = NULL, *t;
  static const char *const headers[] = {
      "Content-Type: application/json", "Content-Encoding: gzip", "Accept: application/json",
      "Expect:", /* no 100-continue round trip */
  };
  for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
    t = CURL_FN(slist_append)(hd, headers[i]);
    if (!t) break;
    hd = t;
  }
  h->headers = hd;
  if (!h->body || !h->curl || !hd) {
    spectator__http_free(h);
    return NULL;
  }
  h->body[0] = '\0';
  h->connect_timeout_ms = (long)(cfg->connect_timeout_s * 1000);
  if (h->connect_timeout_ms < 1) h->connect_timeout_ms = 1;
  CURL *c = h->curl;
  CURL_FN(easy_setopt)(c, CURLOPT_URL, uri);
  CURL_FN(easy_setopt)(c, CURLOPT_NOSIGNAL, 1L);
  CURL_FN(easy_setopt)(c, CURLOPT_POST, 1L);
  CURL_FN(easy_setopt)(c, CURLOPT_HTTPHEADER, h->headers);
  CURL_FN(easy_setopt)(c, CURLOPT_USERAGENT, "spectator-c/" SPECTATOR_VERSION_STRING);
  CURL_FN(easy_setopt)(c, CURLOPT_WRITEFUNCTION, on_body);
  CURL_FN(easy_setopt)(c, CURLOPT_WRITEDATA, h);
  CURL_FN(easy_setopt)(c, CURLOPT_ERRORBUFFER, h->errbuf);
  CURL_FN(easy_setopt)(c, CURLOPT_FOLLOWLOCATION, 0L);
  CURL_FN(easy_setopt)(c, CURLOPT_TCP_KEEPALIVE, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
  /* A name lookup that outlives the timeout (a DNS server that does not
   * answer: 5 s or more per try) must not block this thread: without this,
   * libcurl waits for its resolver thread when it gives up on the lookup, so
   * one publish, or a stop, could take the resolver's timeouts instead of ours.
   * The abandoned lookup thread finishes (and frees itself) on its own. */
  CURL_FN(easy_setopt)(c, CURLOPT_QUICK_EXIT, 1L);
#endif
  /* The libcurl loaded at run time can be older than the curl.h this was
   * compiled with: when it does not know CURLOPT_PROTOCOLS_STR (before 7.85),
   * the older bit mask option still restricts the protocols. */
#if LIBCURL_VERSION_NUM >= 0x075500
  if (CURL_FN(easy_setopt)(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK)
#endif
  {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    CURL_FN(easy_setopt)(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#pragma GCC diagnostic pop
  }
  CURL_FN(easy_setopt)(c, CURLOPT_SSL_VERIFYPEER, cfg->tls_verify ? 1L : 0L);
  CURL_FN(easy_setopt)(c, CURLOPT_SSL_VERIFYHOST, cfg->tls_verify ? 2L : 0L);
  if (cfg->ca_info) CURL_FN(easy_setopt)(c, CURLOPT_CAINFO, cfg->ca_info);
  return h;
}

void spectator__http_free(spectator__http_t *h) {
  if (!h) return;
  if (h->curl) CURL_FN(easy_cleanup)(h->curl);
  CURL_FN(slist_free_all)(h->headers);
  free(h->body);
  free(h);
}

void spectator__http_abandon(spectator__http_t *h) {
  if (!h || !h->curl) return;
  curl_socket_t fd = CURL_SOCKET_BAD;
  if (CURL_FN(easy_getinfo)(h->curl, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK &&
      fd != CURL_SOCKET_BAD)
    close(fd);
  /* The handle, its TLS state and its connection cache are deliberately
   * leaked: cleaning them up could write to the parent's connection. */
}

static const char *error_name(CURLcode rc) {
  switch (rc) {
  case CURLE_OPERATION_TIMEDOUT: return "timeout";
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY: return "unknown_host";
  case CURLE_COULDNT_CONNECT: return "connection_refused";
  case CURLE_GOT_NOTHING:
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_PARTIAL_FILE: return "connection_reset";
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
#if LIBCURL_VERSION_NUM < 0x073e00
  case CURLE_SSL_CACERT:
#endif
  case CURLE_SSL_CACERT_BADFILE: return "ssl_error";
  default: return "other";
  }
}

/* Failures that the next attempt would meet again: retrying them only delays
 * the cycle. A TLS handshake that fails for any other reason (a reset, say)
 * may be transient and is retried. */
static bool error_permanent(CURLcode rc) {
  switch (rc) {
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_URL_MALFORMAT: return true;
  default: return false;
  }
}

int spectator__http_post(spectator__http_t *h, const char *body, size_t len, long timeout_ms,
                         spectator__http_response_t *res) {
  memset(res, 0, sizeof(*res));
  if (timeout_ms < 1) timeout_ms = 1;
  h->body_len = 0;
  h->body[0] = '\0';
  h->truncated = false;
  h->errbuf[0] = '\0';
  CURL *c = h->curl;
  CURL_FN(easy_setopt)(c, CURLOPT_POSTFIELDS, body);
  CURL_FN(easy_setopt)(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  CURL_FN(easy_setopt)(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  CURL_FN(easy_setopt)
  (c, CURLOPT_CONNECTTIMEOUT_MS,
   h->connect_timeout_ms < timeout_ms ? h->connect_timeout_ms : timeout_ms);
  CURLcode rc = CURL_FN(easy_perform)(c);
  res->curl_code = (int)rc;
  res->reason = "";
  res->body = h->body;
  res->body_len = h->body_len;
  res->body_truncated = h->truncated;
  if (rc != CURLE_OK) {
    res->error = error_name(rc);
    res->permanent = error_permanent(rc);
    res->reason = h->errbuf[0] ? h->errbuf : CURL_FN(easy_strerror)(rc);
    spectator__log(SPECTATOR_LOG_DEBUG, SPECTATOR_LOGGER_HTTP, "POST failed: %s (%s)",
                   CURL_FN(easy_strerror)(rc), h->errbuf);
    return SPECTATOR_EHTTP;
  }
  CURL_FN(easy_getinfo)(c, CURLINFO_RESPONSE_CODE, &res->status);
  return 0;
}

int spectator__parse_aggregator_response(const char *body, size_t len,
                                         spectator__aggregator_response_t *out) {
  memset(out, 0, sizeof(*out));
  if (!body || !len) return SPECTATOR_EINVAL;
  /* Loaded by the start already, unless called directly (tests, fuzzing). */
  if (spectator__dep_load(SPECTATOR__DEP_CJSON) != 0) return SPECTATOR_ENOLIB;
  cJSON *root = CJSON_FN(ParseWithLength)(body, len);
  if (!root) return SPECTATOR_EINVAL;
  const cJSON *count = CJSON_FN(GetObjectItemCaseSensitive)(root, "errorCount");
  if (!CJSON_FN(IsObject)(root) || !CJSON_FN(IsNumber)(count) || !(count->valuedouble >= 0) ||
      !isfinite(count->valuedouble)) {
    CJSON_FN(Delete)(root);
    return SPECTATOR_EINVAL;
  }
  out->error_count = count->valuedouble >= 1e15 ? (size_t)1e15 : (size_t)count->valuedouble;
  const cJSON *msgs = CJSON_FN(GetObjectItemCaseSensitive)(root, "message");
  if (CJSON_FN(IsArray)(msgs)) {
    size_t n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) if (CJSON_FN(IsString)(m) && n < SPECTATOR__MAX_MESSAGES) n++;
    out->messages = n ? calloc(n, sizeof(char *)) : NULL;
    cJSON_ArrayForEach(m, msgs) {
      if (!out->messages || out->nmessages == n) break;
      if (!CJSON_FN(IsString)(m)) continue;
      size_t l = strlen(m->valuestring);
      char *copy = malloc(l + 1);
      if (!copy) break;
      memcpy(copy, m->valuestring, l + 1);
      out->messages[out->nmessages++] = copy;
    }
  }
  CJSON_FN(Delete)(root);
  return 0;
}

void spectator__aggregator_response_free(spectator__aggregator_response_t *r) {
  for (size_t i = 0; i < r->nmessages; i++) free(r->messages[i]);
  free(r->messages);
  memset(r, 0, sizeof(*r));
}

void spectator__http_account(const spectator__http_response_t *res, int rc, size_t n,
                             spectator__outcome_t *out) {
  memset(out, 0, sizeof(*out));
  if (!res || rc != 0 || res->status >= 500 || res->status <= 0) {
    out->http_error = n;
  } else if (res->status == 200) {
    out->sent = n;
  } else if (!res->body_truncated &&
             spectator__parse_aggregator_response(res->body, res->body_len, &out->answer) == 0) {
    out->validation = out->answer.error_count < n ? out->answer.error_count : n;
    out->sent = n - out->validation;
  } else {
    out->other = n;
  }
}
