/*
 * HTTP client: one libcurl easy handle, reused across publish cycles so the
 * connection to the aggregator stays alive.
 *
 * Only the publishing thread uses a handle (libcurl handles must not be shared
 * between threads), CURLOPT_NOSIGNAL keeps libcurl away from signals, and
 * curl_global_init runs once per process before the first handle. Response
 * bodies are read with a size bound. TLS is verified unless the configuration
 * says otherwise.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"

struct spectator__http {
  CURL *curl;
  struct curl_slist *headers;
  char *body;
  size_t body_len;
  bool truncated;
  long connect_timeout_ms;
  char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;
static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

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
  if (global_rc != CURLE_OK) {
    spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_HTTP, "curl_global_init failed: %s",
                   curl_easy_strerror(global_rc));
    return NULL;
  }
  spectator__http_t *h = calloc(1, sizeof(*h));
  if (!h) return NULL;
  h->body = malloc(SPECTATOR__HTTP_MAX_BODY + 1);
  h->curl = curl_easy_init();
  struct curl_slist *hd = NULL, *t;
  static const char *const headers[] = {
      "Content-Type: application/json", "Content-Encoding: gzip", "Accept: application/json",
      "Expect:", /* no 100-continue round trip */
  };
  for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
    t = curl_slist_append(hd, headers[i]);
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
  curl_easy_setopt(c, CURLOPT_URL, uri);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "spectator-c/" SPECTATOR_VERSION_STRING);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
  /* A name lookup that outlives the timeout (a DNS server that does not
   * answer: 5 s or more per try) must not block this thread: without this,
   * libcurl waits for its resolver thread when it gives up on the lookup, so
   * one publish, or a stop, could take the resolver's timeouts instead of ours.
   * The abandoned lookup thread finishes (and frees itself) on its own. */
  curl_easy_setopt(c, CURLOPT_QUICK_EXIT, 1L);
#endif
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, cfg->tls_verify ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, cfg->tls_verify ? 2L : 0L);
  if (cfg->ca_info) curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_info);
  return h;
}

void spectator__http_free(spectator__http_t *h) {
  if (!h) return;
  if (h->curl) curl_easy_cleanup(h->curl);
  curl_slist_free_all(h->headers);
  free(h->body);
  free(h);
}

void spectator__http_abandon(spectator__http_t *h) {
  if (!h || !h->curl) return;
  curl_socket_t fd = CURL_SOCKET_BAD;
  if (curl_easy_getinfo(h->curl, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK && fd != CURL_SOCKET_BAD)
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

int spectator__http_post(spectator__http_t *h, const char *body, size_t len, long timeout_ms,
                         spectator__http_response_t *res) {
  memset(res, 0, sizeof(*res));
  if (timeout_ms < 1) timeout_ms = 1;
  h->body_len = 0;
  h->body[0] = '\0';
  h->truncated = false;
  h->errbuf[0] = '\0';
  CURL *c = h->curl;
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   h->connect_timeout_ms < timeout_ms ? h->connect_timeout_ms : timeout_ms);
  CURLcode rc = curl_easy_perform(c);
  res->curl_code = (int)rc;
  res->body = h->body;
  res->body_len = h->body_len;
  res->body_truncated = h->truncated;
  if (rc != CURLE_OK) {
    res->error = error_name(rc);
    spectator__log(SPECTATOR_LOG_DEBUG, SPECTATOR_LOGGER_HTTP, "POST failed: %s (%s)",
                   curl_easy_strerror(rc), h->errbuf);
    return -1;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
  return 0;
}

int spectator__parse_aggregator_response(const char *body, size_t len,
                                         spectator__aggregator_response_t *out) {
  memset(out, 0, sizeof(*out));
  if (!body || !len) return -1;
  cJSON *root = cJSON_ParseWithLength(body, len);
  if (!root) return -1;
  const cJSON *count = cJSON_GetObjectItemCaseSensitive(root, "errorCount");
  if (!cJSON_IsObject(root) || !cJSON_IsNumber(count) || !(count->valuedouble >= 0) ||
      !isfinite(count->valuedouble)) {
    cJSON_Delete(root);
    return -1;
  }
  out->error_count = count->valuedouble >= 1e15 ? (size_t)1e15 : (size_t)count->valuedouble;
  const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "message");
  if (cJSON_IsArray(msgs)) {
    size_t n = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) if (cJSON_IsString(m) && n < SPECTATOR__MAX_MESSAGES) n++;
    out->messages = n ? calloc(n, sizeof(char *)) : NULL;
    cJSON_ArrayForEach(m, msgs) {
      if (!out->messages || out->nmessages == n) break;
      if (!cJSON_IsString(m)) continue;
      size_t l = strlen(m->valuestring);
      char *copy = malloc(l + 1);
      if (!copy) break;
      memcpy(copy, m->valuestring, l + 1);
      out->messages[out->nmessages++] = copy;
    }
  }
  cJSON_Delete(root);
  return 0;
}

void spectator__aggregator_response_free(spectator__aggregator_response_t *r) {
  for (size_t i = 0; i < r->nmessages; i++) free(r->messages[i]);
  free(r->messages);
  memset(r, 0, sizeof(*r));
}
