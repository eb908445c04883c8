/*
 * Loading libcurl, zlib and cJSON at first use.
 *
 * WHY
 * A program that links spectator-c and never publishes should pay nothing at
 * exec for the libraries publishing needs. Linking them would make the dynamic
 * loader map libcurl.so.4 and the thirty or so libraries behind it (TLS,
 * Kerberos, LDAP, HTTP/2...), libz.so.1 and libcjson.so.1 into every such
 * process and run their constructors. With SPECTATOR_DLOPEN_DEPS (the default
 * build) the library links none of them: each is dlopen()ed the first time it
 * is needed, once per process, and the functions the library calls are looked
 * up into a table (src/deps.h). Without SPECTATOR_DLOPEN_DEPS they are linked,
 * every load succeeds at once and deps.h's macros name the real functions.
 *
 * WHEN, AND WHO WAITS
 * - The first publisher start loads all three (spectator__http_new, through
 *   spectator__deps_load_all), so a start fails with SPECTATOR_EHTTP when one
 *   is missing, and the publishing thread, which only runs after a successful
 *   start, never meets a missing library. The caller is
 *   spectator__publisher_start, which holds that registry's publisher mutex
 *   and no other library lock (for the global registry's automatic start,
 *   inside the global registry's pthread_once as well). Holding the mutex
 *   across the load is deliberate: the fork prepare handler takes every
 *   publisher mutex, so a fork cannot happen in the middle of a dlopen() or of
 *   a pthread_once below, and a child never inherits a half-done load. The
 *   price is that a concurrent start, stop or fork of that registry waits for
 *   the load (a few milliseconds), once.
 * - The encoder loads zlib when asked to compress (spectator__encode with a
 *   gzip level, spectator__gzip), and the response parser loads cJSON
 *   (spectator__parse_aggregator_response). In the library they only run on a
 *   publishing thread, after the start loaded everything, holding no lock, so
 *   the call returns at once. Tests, benchmarks and fuzz harnesses call them
 *   directly without a publisher; they hold no library lock either.
 * - Nothing else loads anything: creating registries, recording and snapshots
 *   need none of the three.
 *
 * A library that cannot be loaded, or lacks one of the functions, is logged
 * once on the HTTP logger with the loader's reason and the Debian package to
 * install, and is never tried again in this process. The handles are never
 * closed: libcurl's threads and cached connections may outlive any point at
 * which unloading would be safe.
 */
#include <pthread.h>
#include <string.h>

#include "deps.h"
#include "log.h"

const char *spectator__dep_file[SPECTATOR__DEP_COUNT] = {
    [SPECTATOR__DEP_CURL] = "libcurl.so.4",
    [SPECTATOR__DEP_ZLIB] = "libz.so.1",
    [SPECTATOR__DEP_CJSON] = "libcjson.so.1",
};

#if SPECTATOR_DLOPEN_DEPS
#include <dlfcn.h>

const bool spectator__deps_dlopen = true;

spectator__curl_api_t spectator__curl_api;
spectator__zlib_api_t spectator__zlib_api;
spectator__cjson_api_t spectator__cjson_api;

/* For the messages: what to install, and Debian's runtime package. */
static const struct {
  const char *name;
  const char *package;
} dep_info[SPECTATOR__DEP_COUNT] = {
    [SPECTATOR__DEP_CURL] = {"libcurl", "libcurl4"},
    [SPECTATOR__DEP_ZLIB] = {"zlib", "zlib1g"},
    [SPECTATOR__DEP_CJSON] = {"cJSON", "libcjson1"},
};

/* RTLD_NOW: a library whose own dependencies are incomplete fails here, not
 * at its first call. RTLD_LOCAL: its symbols are not made available to other
 * code of the process, which keeps resolving symbols as if it were absent. */
static void *dep_open(spectator__dep_t dep) {
  const char *file = spectator__dep_file[dep];
  void *lib = dlopen(file, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *why = dlerror();
    spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_HTTP,
                   "cannot load %s (%s): publishing is disabled, meters keep recording; install "
                   "%s (Debian and Ubuntu: the %s package)",
                   file, why ? why : "unknown error", dep_info[dep].name, dep_info[dep].package);
  }
  return lib;
}

static void *dep_sym(void *lib, spectator__dep_t dep, const char *name) {
  dlerror(); /* clear any earlier error */
  void *fn = dlsym(lib, name);
  if (!fn) {
    const char *why = dlerror();
    spectator__log(SPECTATOR_LOG_ERROR, SPECTATOR_LOGGER_HTTP,
                   "%s has no %s (%s): publishing is disabled, meters keep recording; install a "
                   "newer %s (Debian and Ubuntu: the %s package)",
                   spectator__dep_file[dep], name, why ? why : "unknown error", dep_info[dep].name,
                   dep_info[dep].package);
  }
  return fn;
}

/* Fill one library's table; on the first missing function, stop, log it and
 * leave the table empty. */
#define SPECTATOR__DEP_RESOLVE(f) \
  ok = ok && (api->f = (__typeof__(api->f))dep_sym(lib, dep, #f)) != NULL;

#define SPECTATOR__DEP_RESOLVER(lib_name, FUNCTIONS)                   \
  static bool resolve_##lib_name(void *lib, spectator__dep_t dep) {    \
    spectator__##lib_name##_api_t *api = &spectator__##lib_name##_api; \
    bool ok = true;                                                    \
    FUNCTIONS(SPECTATOR__DEP_RESOLVE)                                  \
    if (!ok) memset(api, 0, sizeof(*api));                             \
    return ok;                                                         \
  }
SPECTATOR__DEP_RESOLVER(curl, SPECTATOR__CURL_FUNCTIONS)
SPECTATOR__DEP_RESOLVER(zlib, SPECTATOR__ZLIB_FUNCTIONS)
SPECTATOR__DEP_RESOLVER(cjson, SPECTATOR__CJSON_FUNCTIONS)
#undef SPECTATOR__DEP_RESOLVER
#undef SPECTATOR__DEP_RESOLVE

static bool (*const dep_resolve[SPECTATOR__DEP_COUNT])(void *, spectator__dep_t) = {
    [SPECTATOR__DEP_CURL] = resolve_curl,
    [SPECTATOR__DEP_ZLIB] = resolve_zlib,
    [SPECTATOR__DEP_CJSON] = resolve_cjson,
};

static bool dep_ok[SPECTATOR__DEP_COUNT]; /* written once, inside dep_once */

static void load(spectator__dep_t dep) {
  void *lib = dep_open(dep);
  if (!lib) return;
  if (!dep_resolve[dep](lib, dep)) {
    dlclose(lib);
    return;
  }
  dep_ok[dep] = true;
}

/* pthread_once takes a function without arguments: one per library. */
static void load_curl(void) { load(SPECTATOR__DEP_CURL); }
static void load_zlib(void) { load(SPECTATOR__DEP_ZLIB); }
static void load_cjson(void) { load(SPECTATOR__DEP_CJSON); }

static pthread_once_t dep_once[SPECTATOR__DEP_COUNT] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
                                                        PTHREAD_ONCE_INIT};
static void (*const dep_load_fn[SPECTATOR__DEP_COUNT])(void) = {
    [SPECTATOR__DEP_CURL] = load_curl,
    [SPECTATOR__DEP_ZLIB] = load_zlib,
    [SPECTATOR__DEP_CJSON] = load_cjson,
};

int spectator__dep_load(spectator__dep_t dep) {
  /* pthread_once also orders dep_ok and the table before the caller's reads. */
  pthread_once(&dep_once[dep], dep_load_fn[dep]);
  return dep_ok[dep] ? 0 : SPECTATOR_ENOLIB;
}
#else
const bool spectator__deps_dlopen = false;

int spectator__dep_load(spectator__dep_t dep) {
  (void)dep;
  return 0;
}
#endif

int spectator__deps_load_all(void) {
  int rc = 0;
  for (int d = 0; d < SPECTATOR__DEP_COUNT; d++)
    if (spectator__dep_load((spectator__dep_t)d) != 0) rc = SPECTATOR_ENOLIB;
  return rc;
}
