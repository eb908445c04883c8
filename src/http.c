/*
 * HTTP client: one libcurl easy handle per publisher, reused across publish
 * cycles so the connection to the aggregator stays alive (it stays in the
 * cache of the multi handle that runs the transfers).
 *
 * Only the publishing thread uses a handle (libcurl handles must not be shared
 * between threads), CURLOPT_NOSIGNAL keeps libcurl away from signals, and
 * curl_global_init runs once per process before the first handle. Response
 * bodies are read with a size bound. TLS is verified unless the configuration
 * says otherwise.
 *
 * FORK
 * libcurl 7.88 guards curl_global_init, curl_global_init_mem,
 * curl_global_cleanup, curl_global_sslset and curl_easy_init with one global
 * spinlock. Another thread of the parent may be inside one of them at the
 * fork; the child then inherits it taken, forever, and any call that takes it
 * spins there (at full CPU). Besides those five, libcurl takes it in exactly
 * one more place: creating a multi handle (its connection cache makes an easy
 * handle with curl_easy_init), which curl_easy_perform does the first time it
 * runs on a handle. curl_easy_duphandle and transfers through an existing
 * multi handle never take it.
 *
 * So a transfer needs a kit, an easy handle and the multi handle that runs it
 * (curl_multi_perform / curl_multi_poll, as curl_easy_perform does inside),
 * and kits are made ahead: spectator__http_new, called by a start, configures
 * a template handle that never makes a transfer, and makes the kit the
 * publishing thread uses plus SPARE_KITS spare kits that never make one
 * either. In a forked child, spectator__http_fork_child forgets the parent's
 * kit (it holds the parent's connection) and closes the sockets it had open,
 * and a spare, clean and ready, becomes the child's kit: neither the fork
 * child handler nor the child's publisher calls anything that takes that
 * lock. The child keeps the remaining spares for its own children, so
 * publishing resumes by itself down to SPARE_KITS generations below the
 * process that made the kits; further down, a start (spectator__http_prepare)
 * makes new kits, which takes the lock like any first use of libcurl. The
 * sockets are known without asking libcurl: they are opened and closed
 * through CURLOPT_OPENSOCKETFUNCTION / CURLOPT_CLOSESOCKETFUNCTION, which
 * record them in the handle.
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
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
 * Nothing else calls it: in particular not the fork child handler, nor a
 * child's publisher restarted by it (they use a kit made in the parent).
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

/* Sockets libcurl has open for one publisher: a connection, two while a
 * connection is being set up over IPv4 and IPv6 at once. More are possible
 * (more connections in the cache) and then not recorded: a child would only
 * keep that descriptor open, never write to it. */
#define MAX_SOCKETS 8
/* Kits made ahead for forked children (see FORK). */
#define SPARE_KITS 2

typedef struct {
  CURL *easy;
  CURLM *multi;
} kit_t;

struct spectator__http {
  CURL *tmpl;               /* configured, never used for a transfer */
  kit_t kit;                /* the publishing thread's */
  kit_t spares[SPARE_KITS]; /* never used for a transfer; spares[0..nspares) */
  size_t nspares;
  struct curl_slist *headers;
  char *body;
  size_t body_len;
  bool truncated;
  long connect_timeout_ms;
  char errbuf[CURL_ERROR_SIZE];
  _Atomic int sockets[MAX_SOCKETS]; /* open sockets, -1 for a free slot */
};

/* libcurl opens and closes every socket through these two, so a forked child
 * can close the parent's without a call into libcurl. SOCK_CLOEXEC: a program
 * that forks and execs does not hand the aggregator connection over. */
static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
  (void)purpose;
  spectator__http_t *h = ud;
  int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
  if (fd < 0) return CURL_SOCKET_BAD;
  for (int i = 0; i < MAX_SOCKETS; i++) {
    int free_slot = -1;
    if (atomic_compare_exchange_strong(&h->sockets[i], &free_slot, fd)) break;
  }
  return fd;
}

static int close_socket(void *ud, curl_socket_t fd) {
  spectator__http_t *h = ud;
  for (int i = 0; i < MAX_SOCKETS; i++) {
    int mine = fd;
    if (atomic_compare_exchange_strong(&h->sockets[i], &mine, -1)) break;
  }
  return close(fd);
}

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

static void kit_free(kit_t *k) {
  if (k->easy) CURL_FN(easy_cleanup)(k->easy);
  if (k->multi) CURL_FN(multi_cleanup)(k->multi); /* closes its connections */
  k->easy = NULL;
  k->multi = NULL;
}

/* Takes libcurl's global lock (curl_multi_init): never in a fork child
 * handler, and in a forked child only for an explicit start. */
static bool kit_make(spectator__http_t *h, kit_t *k) {
  k->easy = CURL_FN(easy_duphandle)(h->tmpl);
  k->multi = CURL_FN(multi_init)();
  if (k->easy && k->multi) return true;
  kit_free(k);
  return false;
}

int spectator__http_prepare(spectator__http_t *h) {
  if (h->kit.easy) return 0; /* takes no lock: a forked child that has its kit */
  if (!kit_make(h, &h->kit)) return SPECTATOR_EHTTP;
  while (h->nspares < SPARE_KITS && kit_make(h, &h->spares[h->nspares])) h->nspares++;
  return 0;
}

spectator__http_t *spectator__http_new(const char *uri, const spectator_config_t *cfg) {
  pthread_once(&global_once, global_init);
  if (!global_ok) return NULL; /* logged once, by global_init */
  spectator__http_t *h = calloc(1, sizeof(*h));
  if (!h) return NULL;
  for (int i = 0; i < MAX_SOCKETS; i++) atomic_init(&h->sockets[i], -1);
  h->body = malloc(SPECTATOR__HTTP_MAX_BODY + 1);
  h->tmpl = CURL_FN(easy_init)();
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
  if (!h->body || !h->tmpl || !hd) {
    spectator__http_free(h);
    return NULL;
  }
  h->body[0] = '\0';
  h->connect_timeout_ms = (long)(cfg->connect_timeout_s * 1000);
  if (h->connect_timeout_ms < 1) h->connect_timeout_ms = 1;
  /* Every option is set on the template; curl_easy_duphandle copies them all
   * into each kit (strings are copied, the header list and the pointers to h
   * are shared). */
  CURL *c = h->tmpl;
  CURL_FN(easy_setopt)(c, CURLOPT_URL, uri);
  CURL_FN(easy_setopt)(c, CURLOPT_NOSIGNAL, 1L);
  CURL_FN(easy_setopt)(c, CURLOPT_POST, 1L);
  CURL_FN(easy_setopt)(c, CURLOPT_HTTPHEADER, h->headers);
  CURL_FN(easy_setopt)(c, CURLOPT_USERAGENT, "spectator-c/" SPECTATOR_VERSION_STRING);
  CURL_FN(easy_setopt)(c, CURLOPT_WRITEFUNCTION, on_body);
  CURL_FN(easy_setopt)(c, CURLOPT_WRITEDATA, h);
  CURL_FN(easy_setopt)(c, CURLOPT_ERRORBUFFER, h->errbuf);
  CURL_FN(easy_setopt)(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
  CURL_FN(easy_setopt)(c, CURLOPT_OPENSOCKETDATA, h);
  CURL_FN(easy_setopt)(c, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
  CURL_FN(easy_setopt)(c, CURLOPT_CLOSESOCKETDATA, h);
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
  if (spectator__http_prepare(h) != 0) {
    spectator__http_free(h);
    return NULL;
  }
  return h;
}

void spectator__http_free(spectator__http_t *h) {
  if (!h) return;
  /* The kits first: their connections close through close_socket, which
   * needs h. */
  kit_free(&h->kit);
  for (size_t i = 0; i < h->nspares; i++) kit_free(&h->spares[i]);
  if (h->tmpl) CURL_FN(easy_cleanup)(h->tmpl);
  CURL_FN(slist_free_all)(h->headers);
  free(h->body);
  free(h);
}

bool spectator__http_fork_child(spectator__http_t *h) {
  if (!h) return false;
  /* close() only: no libcurl call, no allocation, nothing that waits. A slot
   * the parent's thread was filling or emptying at the fork may be missed:
   * that descriptor then stays open in this process, unused. */
  for (int i = 0; i < MAX_SOCKETS; i++) {
    int fd = atomic_exchange(&h->sockets[i], -1);
    if (fd >= 0) close(fd);
  }
  /* The parent's kit, its TLS state and its connection cache are
   * deliberately leaked: cleaning them up could write to the parent's
   * connection (a TLS close_notify), and the parent's thread may have been
   * in the middle of a transfer on them. A spare takes its place. */
  h->kit = (kit_t){NULL, NULL};
  if (h->nspares) {
    h->kit = h->spares[0];
    for (size_t i = 1; i < h->nspares; i++) h->spares[i - 1] = h->spares[i];
    h->spares[--h->nspares] = (kit_t){NULL, NULL};
  }
  h->body_len = 0;
  h->body[0] = '\0';
  h->truncated = false;
  return h->kit.easy != NULL;
}

/* One transfer on the kit, as curl_easy_perform runs it (which would make a
 * multi handle of its own the first time: see FORK). */
static CURLcode perform(kit_t *k) {
  CURLMcode mc = CURL_FN(multi_add_handle)(k->multi, k->easy);
  CURLcode rc = CURLE_OK;
  bool done = false;
  while (mc == CURLM_OK && !done) {
    int running = 0;
    mc = CURL_FN(multi_perform)(k->multi, &running);
    if (mc == CURLM_OK && running) mc = CURL_FN(multi_poll)(k->multi, NULL, 0, 1000, NULL);
    if (mc == CURLM_OK && !running) {
      int left;
      CURLMsg *m;
      while ((m = CURL_FN(multi_info_read)(k->multi, &left)))
        if (m->msg == CURLMSG_DONE && m->easy_handle == k->easy) {
          rc = m->data.result;
          done = true;
        }
      if (!done) { /* not expected: nothing running and no result */
        rc = CURLE_GOT_NOTHING;
        done = true;
      }
    }
  }
  if (mc != CURLM_OK) rc = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
  CURL_FN(multi_remove_handle)(k->multi, k->easy); /* the connection stays in its cache */
  return rc;
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
  if (!h->kit.easy) { /* not reached: a start makes the kit before the thread runs */
    res->error = "other";
    return SPECTATOR_EHTTP;
  }
  CURL *c = h->kit.easy;
  CURL_FN(easy_setopt)(c, CURLOPT_POSTFIELDS, body);
  CURL_FN(easy_setopt)(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  CURL_FN(easy_setopt)(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  CURL_FN(easy_setopt)
  (c, CURLOPT_CONNECTTIMEOUT_MS,
   h->connect_timeout_ms < timeout_ms ? h->connect_timeout_ms : timeout_ms);
  CURLcode rc = perform(&h->kit);
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
