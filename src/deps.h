/*
 * Internal: calling libcurl, zlib and cJSON (deps.c loads them).
 *
 * Code that calls one of them writes CURL_FN(easy_init)(), ZLIB_FN(deflate)(...)
 * or CJSON_FN(Delete)(...), after spectator__dep_load() of that library
 * returned true. With SPECTATOR_DLOPEN_DEPS the macros read the function
 * pointers deps.c filled in; without it they name the real functions, so the
 * calling code is the same in both builds (and, linked, libcurl's
 * type-checking curl_easy_setopt macro applies).
 *
 * The headers are still included in both builds, for the types and constants.
 * Only the modules that call them (http.c, sink.c, encoder.c) include this file.
 */
#ifndef SPECTATOR_DEPS_H
#define SPECTATOR_DEPS_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <zlib.h>

#include "common.h"

/* The shared libraries the library calls. With SPECTATOR_DLOPEN_DEPS (the
 * default build) none of them is linked: each is dlopen()ed the first time it
 * is needed (deps.c explains why and when). */
typedef enum {
  SPECTATOR__DEP_CURL,
  SPECTATOR__DEP_ZLIB,
  SPECTATOR__DEP_CJSON,
  SPECTATOR__DEP_COUNT
} spectator__dep_t;

/* True when the library loads them at run time (built with
 * SPECTATOR_DLOPEN_DEPS), false when it is linked to them. */
extern const bool spectator__deps_dlopen;
/* The file each one is loaded from: "libcurl.so.4", "libz.so.1",
 * "libcjson.so.1". Only tests change an entry (before anything loads that
 * library), to see what a missing library does. Unused when they are linked. */
extern const char *spectator__dep_file[SPECTATOR__DEP_COUNT];

/* Load one library, once per process: 0 when it can be used, else
 * SPECTATOR_ENOLIB. A failure is logged once (the file, the loader's reason
 * and the package to install) and every later call fails at once. Always 0
 * when the library is linked. Takes no library lock; what the caller holds
 * meanwhile matters, since the first call waits for the load (deps.c lists
 * the callers). */
int spectator__dep_load(spectator__dep_t dep);
/* All three, each tried even when another is missing (so the log names every
 * missing one): 0 when all of them can be used, else SPECTATOR_ENOLIB. */
int spectator__deps_load_all(void);

#ifndef SPECTATOR_DLOPEN_DEPS
#define SPECTATOR_DLOPEN_DEPS 0
#endif

/* Every function the library calls, by library, named as exported. (zlib's
 * deflateInit2 is a macro over deflateInit2_, which is what is looked up.) */
#define SPECTATOR__CURL_FUNCTIONS(X) \
  X(curl_global_init)                \
  X(curl_easy_init)                  \
  X(curl_easy_duphandle)             \
  X(curl_easy_setopt)                \
  X(curl_easy_getinfo)               \
  X(curl_easy_cleanup)               \
  X(curl_easy_strerror)              \
  X(curl_multi_init)                 \
  X(curl_multi_add_handle)           \
  X(curl_multi_remove_handle)        \
  X(curl_multi_perform)              \
  X(curl_multi_poll)                 \
  X(curl_multi_info_read)            \
  X(curl_multi_cleanup)              \
  X(curl_slist_append)               \
  X(curl_slist_free_all)
#define SPECTATOR__ZLIB_FUNCTIONS(X) \
  X(deflateInit2_)                   \
  X(deflate)                         \
  X(deflateReset)                    \
  X(deflateEnd)
#define SPECTATOR__CJSON_FUNCTIONS(X) \
  X(cJSON_ParseWithLength)            \
  X(cJSON_GetObjectItemCaseSensitive) \
  X(cJSON_IsObject)                   \
  X(cJSON_IsNumber)                   \
  X(cJSON_IsArray)                    \
  X(cJSON_IsString)                   \
  X(cJSON_Delete)

#if SPECTATOR_DLOPEN_DEPS
/* One pointer per function, with the exact type its header declares. Inside
 * __typeof__ the name is neither called nor needed at link time (and a
 * function-like macro of the same name, such as curl_easy_setopt's type
 * check, is not expanded, since no parenthesis follows). */
#define SPECTATOR__DEP_FIELD(f) __typeof__(f) *f;
typedef struct {
  SPECTATOR__CURL_FUNCTIONS(SPECTATOR__DEP_FIELD)
} spectator__curl_api_t;
typedef struct {
  SPECTATOR__ZLIB_FUNCTIONS(SPECTATOR__DEP_FIELD)
} spectator__zlib_api_t;
typedef struct {
  SPECTATOR__CJSON_FUNCTIONS(SPECTATOR__DEP_FIELD)
} spectator__cjson_api_t;
#undef SPECTATOR__DEP_FIELD
/* Filled by the first successful spectator__dep_load of each library, then
 * only read. */
extern spectator__curl_api_t spectator__curl_api;
extern spectator__zlib_api_t spectator__zlib_api;
extern spectator__cjson_api_t spectator__cjson_api;
/* The parentheses keep a macro of the same name from applying to the call. */
#define CURL_FN(f) (spectator__curl_api.curl_##f)
#define ZLIB_FN(f) (spectator__zlib_api.f)
#define CJSON_FN(f) (spectator__cjson_api.cJSON_##f)
#else
#define CURL_FN(f) curl_##f
#define ZLIB_FN(f) f
#define CJSON_FN(f) cJSON_##f
#endif

#endif
