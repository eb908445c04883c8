/*
 * spectator-c: a metrics client for Atlas (the C port of Netflix's spectator-py).
 *
 * Copyright 2026 the spectator-c authors. Licensed under the Apache License,
 * Version 2.0; see LICENSE.
 *
 * THREAD SAFETY
 *   Every function in this header may be called from any thread at any time,
 *   unless its comment says otherwise. Meter pointers, id pointers and registry
 *   pointers may be shared between threads freely. Recording on a meter pointer
 *   (spectator_counter_increment() and friends) takes no lock, allocates
 *   nothing, reads no clock, makes no system call and never logs: it is one or a
 *   few atomic instructions. Three recording calls read the registry's clock,
 *   and say so: spectator_age_gauge_set_now(), spectator_long_task_timer_start()
 *   and spectator_long_task_timer_stop(). Looking a meter up by name takes no
 *   lock when the meter exists; creating one takes the registry's lock. Polled
 *   meters call the application's functions at each snapshot, on the thread
 *   that takes it, with no library lock held (see "Polled meters").
 *
 * OWNERSHIP
 *   - Meter pointers belong to their registry: never free them. They stay valid
 *     until spectator_registry_free() (for the global registry: until exit).
 *   - spectator_id_t values are immutable and reference counted. Every function
 *     that returns a `spectator_id_t *` gives the caller one reference, which the
 *     caller releases with spectator_id_free(). Functions that take an id borrow
 *     it; a registry keeps its own reference when it needs one.
 *   - Strings passed in (names, tag keys and values, config strings) are copied;
 *     the caller keeps ownership. Strings returned by getters are owned by the
 *     object they came from and live as long as it does.
 *   - Snapshots (spectator_measurements_t) are owned by the caller and released
 *     with spectator_measurements_free().
 *
 * BAD INPUT
 *   Nothing here crashes or invokes undefined behaviour on bad input. Meter
 *   lookups never return NULL: a NULL or empty name, a malformed tag array, a
 *   type conflict or a full registry gives a no-op meter and a warning on the
 *   `spectator.Registry` logger that names the meter and says what is wrong
 *   (repeats of one mistake are rate limited, a different one is always
 *   logged); a lookup a full registry refuses is also counted in
 *   spectator.measurements{id=dropped,error=registry-full}. Recording functions
 *   accept NULL meter pointers (no-op) and ignore values the meter type cannot
 *   accept (for example negative or NaN amounts on a counter). Functions that
 *   can fail for other reasons return 0 or a negative SPECTATOR_E* code.
 */
#ifndef SPECTATOR_H
#define SPECTATOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#include <initializer_list> /* SPECTATOR_TAGS; outside extern "C" */
#endif

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define SPECTATOR_EXTERN
#elif defined(__GNUC__) && __GNUC__ >= 4
#define SPECTATOR_EXTERN __attribute__((visibility("default")))
#else
#define SPECTATOR_EXTERN
#endif

#define SPECTATOR_VERSION_MAJOR 0
#define SPECTATOR_VERSION_MINOR 1
#define SPECTATOR_VERSION_PATCH 0
#define SPECTATOR_VERSION_STRING "0.1.0"
/* Monotonic number for compile-time checks: 0xMMmmpp. */
#define SPECTATOR_VERSION_HEX \
  ((SPECTATOR_VERSION_MAJOR << 16) | (SPECTATOR_VERSION_MINOR << 8) | SPECTATOR_VERSION_PATCH)

/* The version of the library actually linked, e.g. "0.1.0". Static string. */
SPECTATOR_EXTERN const char *spectator_version(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/* Error codes: 0 is success, failures are negative. Codes are only ever
 * appended to this list, never renumbered or removed. */
#define SPECTATOR_ERRNO_MAP(XX)                                \
  XX(EINVAL, -1, "invalid argument")                           \
  XX(ENOMEM, -2, "out of memory")                              \
  XX(ETHREAD, -3, "could not start the publishing thread")     \
  XX(ENOURI, -4, "no publish URI configured")                  \
  XX(EHTTP, -5, "HTTP client error")                           \
  XX(ESTATE, -6, "operation not allowed in the current state") \
  XX(ENOLIB, -7, "a shared library it needs (libcurl, zlib, cJSON) cannot be loaded")

typedef enum {
  SPECTATOR_OK = 0,
#define SPECTATOR__ERR_ENUM(name, value, text) SPECTATOR_##name = (value),
  SPECTATOR_ERRNO_MAP(SPECTATOR__ERR_ENUM)
#undef SPECTATOR__ERR_ENUM
} spectator_errno_t;

/* A static, human readable description of an error code; never NULL
 * ("unknown error" for codes not in the list). */
SPECTATOR_EXTERN const char *spectator_strerror(int err);
/* The code's name, e.g. "SPECTATOR_EINVAL"; never NULL. */
SPECTATOR_EXTERN const char *spectator_err_name(int err);

/* ------------------------------------------------------------------------ */
/* Logging                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum {
  SPECTATOR_LOG_DEBUG = 0,
  SPECTATOR_LOG_INFO = 1,
  SPECTATOR_LOG_WARN = 2,
  SPECTATOR_LOG_ERROR = 3,
  SPECTATOR_LOG_OFF = 4
} spectator_log_level_t;

/* The loggers, as in spectator-py. */
#define SPECTATOR_LOGGER_INIT "spectator.init"
#define SPECTATOR_LOGGER_HTTP "spectator.HttpClient"
#define SPECTATOR_LOGGER_REGISTRY "spectator.Registry"

/* A log handler receives the level, the logger name and the formatted message
 * (no trailing newline). The strings are only valid during the call. It may be
 * called from any thread, including the publishing thread, but never from a
 * recording call. It must not call back into spectator (it may be called with
 * no library lock held, but it must not block for long either). */
typedef void (*spectator_log_fn)(spectator_log_level_t level, const char *logger,
                                 const char *message, void *ctx);

/* Install a handler (NULL restores the default, which writes one line per
 * message to stderr). Thread-safe; takes effect for subsequent messages. */
SPECTATOR_EXTERN void spectator_log_set_handler(spectator_log_fn fn, void *ctx);
/* Set the minimum level that is emitted. The default comes from
 * SPECTATOR_LOG_LEVEL (debug, info, warn, error, off), else warn. Values
 * outside the enum are ignored. */
SPECTATOR_EXTERN void spectator_log_set_level(spectator_log_level_t level);
SPECTATOR_EXTERN spectator_log_level_t spectator_log_get_level(void);
/* Parse "debug", "info", "warn"/"warning", "error", "off" (case-insensitive).
 * Returns 0 and sets *out, or SPECTATOR_EINVAL for anything else. */
SPECTATOR_EXTERN int spectator_log_level_parse(const char *s, spectator_log_level_t *out);

/* ------------------------------------------------------------------------ */
/* Ids                                                                       */
/* ------------------------------------------------------------------------ */

/* Tags: NULL-terminated array of alternating key, value strings; NULL means no
 * tags. In C the array is a compound literal, which lives until the end of the
 * enclosing block. C++ has no compound literals: there it is the array behind a
 * std::initializer_list temporary, which lives until the end of the full
 * expression, so pass SPECTATOR_TAGS(...) directly to a call and never keep
 * the pointer. (spectator.hpp takes tags as an initializer list.) */
#ifdef __cplusplus
#define SPECTATOR_TAGS(...) (std::initializer_list<const char *>{__VA_ARGS__, nullptr}.begin())
#else
#define SPECTATOR_TAGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#endif

/* An immutable metric identity: a name and a set of tags in canonical form
 * (sorted by key, a repeated key keeps its last value). Reference counted. */
typedef struct spectator_id spectator_id_t;

/* Create an id. Returns NULL (and logs on spectator.Registry, naming the id
 * and what is wrong) when name is NULL or empty, when the tag array has an
 * empty key, a NULL or empty value or an odd number of entries, or when memory
 * runs out. Caller owns the result. */
SPECTATOR_EXTERN spectator_id_t *spectator_id_new(const char *name, const char *const *tags);
/* A new id with one more tag (replacing an existing value for that key).
 * Returns NULL on bad input as spectator_id_new(). `id` is not changed. */
SPECTATOR_EXTERN spectator_id_t *spectator_id_with_tag(const spectator_id_t *id, const char *key,
                                                       const char *value);
/* A new id with the tags added (later entries win). NULL tags copies `id`. */
SPECTATOR_EXTERN spectator_id_t *spectator_id_with_tags(const spectator_id_t *id,
                                                        const char *const *tags);
/* One more reference to the same id (cheap: no copy). NULL gives NULL. */
SPECTATOR_EXTERN spectator_id_t *spectator_id_ref(const spectator_id_t *id);
/* Release one reference; the id is freed with the last one. NULL is a no-op. */
SPECTATOR_EXTERN void spectator_id_free(spectator_id_t *id);

/* Accessors. NULL ids give "" / 0 / NULL. Returned strings live as long as id. */
SPECTATOR_EXTERN const char *spectator_id_name(const spectator_id_t *id);
SPECTATOR_EXTERN size_t spectator_id_tag_count(const spectator_id_t *id);
/* Key and value of the i-th tag in canonical (key-sorted) order; NULL when i is
 * out of range. */
SPECTATOR_EXTERN const char *spectator_id_tag_key(const spectator_id_t *id, size_t i);
SPECTATOR_EXTERN const char *spectator_id_tag_value(const spectator_id_t *id, size_t i);
/* The value for key, or NULL. */
SPECTATOR_EXTERN const char *spectator_id_tag(const spectator_id_t *id, const char *key);
/* 1 when both ids have the same name and the same canonical tags (two NULLs are
 * equal), else 0. */
SPECTATOR_EXTERN int spectator_id_equals(const spectator_id_t *a, const spectator_id_t *b);
/* A hash of the canonical form: equal ids hash equally. NULL hashes to 0. The
 * hash is seeded per process (from the OS): do not store it or send it to
 * another process. */
SPECTATOR_EXTERN uint64_t spectator_id_hash(const spectator_id_t *id);
/* Write "name{k1=v1,k2=v2}" into buf (always NUL-terminated when size > 0).
 * Returns the length the full text needs, like snprintf. */
SPECTATOR_EXTERN size_t spectator_id_format(const spectator_id_t *id, char *buf, size_t size);

/* ------------------------------------------------------------------------ */
/* Configuration and registries                                              */
/* ------------------------------------------------------------------------ */

/* A clock returning nanoseconds from an arbitrary fixed origin (monotonic).
 * Used for TTLs and publish scheduling, never on the recording path. */
typedef int64_t (*spectator_clock_fn)(void *ctx);

/* Configuration of a registry. Initialize with spectator_config_init() (or
 * spectator_config_from_env()) and then change fields. Strings and the tag
 * array are borrowed: they must stay valid until spectator_registry_new()
 * returns, which copies them.
 *
 * The struct is allocated by the caller and grows at its end in later
 * versions. spectator_config_init(), spectator_config_from_env() and
 * spectator_registry_new() are macros that pass sizeof(spectator_config_t) as
 * this header defines it: the library writes and reads only that many bytes,
 * and gives the fields it has beyond them their defaults. So a program built
 * against this header keeps working with a later library whose struct is
 * larger, and a program built against release 0.1.0 (which called the plain
 * functions) keeps working too. New members are only ever appended, each
 * with a default that keeps the behaviour of the versions without it. */
typedef struct spectator_config {
  const char *uri;                /* aggregator endpoint; NULL: collect, do not publish */
  double frequency_s;             /* publish interval, seconds (> 0); default 5 */
  size_t batch_size;              /* measurements per request (> 0); default 10000 */
  double timeout_s;               /* HTTP request timeout, seconds; default 1 */
  double connect_timeout_s;       /* HTTP connect timeout, seconds; default 1 */
  const char *const *common_tags; /* added to every measurement sent; NULL = none.
                                     These win over the environment's common tags */
  int env_common_tags;            /* nonzero (default): also add SPECTATOR_COMMON_TAGS
                                     and the Netflix variables (nf.app, nf.region...;
                                     not nf.ami), without the keys listed in
                                     ATLAS_SKIP_COMMON_TAGS */
  size_t max_meters;              /* cap on meters alive (pinned and transient);
                                     default 100000; values above 2^24 ("no cap")
                                     mean 2^24. The library's own meters are not
                                     counted */
  double meter_ttl_s;             /* meters idle this long are not reported, and
                                     transient ones (used only by spectator_record)
                                     are removed; a gauge reports its last value
                                     this long after its last set unless it has its
                                     own TTL; default 900 */
  int auto_start;                 /* nonzero: start publishing when created (explicit
                                     registries) or on first use (global); default 1 */
  int flush_at_exit;              /* nonzero: a started registry is stopped and
                                     flushed at normal process exit (exit() or a
                                     return from main, not _exit()), within the
                                     timeout plus 1 s; default 1 */
  const char *ca_info;            /* PEM CA bundle for https; NULL = system default */
  int tls_verify;                 /* nonzero (default): verify peer and host */
  spectator_clock_fn clock;       /* NULL = CLOCK_MONOTONIC */
  void *clock_ctx;
  /* Members added after 0.1.0 go here, at the end, only. */
  int process_metrics;            /* nonzero: report the process's CPU time, resident
                                     memory, file descriptors and threads, and the
                                     library's own publishing cost (docs/meters.md);
                                     default 0, SPECTATOR_PROCESS_METRICS=1 */
  const char *output_location;    /* where measurements go (docs/outputs.md): NULL
                                     (default) = the Atlas aggregator at uri;
                                     "none", "memory", "stdout", "stderr",
                                     "file:///path", "udp" (udp://127.0.0.1:1234),
                                     "udp://host:port", "unix" (unix:///run/
                                     spectatord/spectatord.unix), "unix:///path"
                                     write spectatord's line protocol. A string not
                                     in this list is logged and the aggregator is
                                     used; SPECTATOR_OUTPUT_LOCATION */
} spectator_config_t;

/* Fill the first `size` bytes of cfg with the defaults above (uri NULL):
 * size is the caller's sizeof(spectator_config_t); bytes beyond the
 * library's own struct are zeroed. NULL is a no-op. Prefer the
 * spectator_config_init() macro, which passes the size. */
SPECTATOR_EXTERN void spectator_config_init_size(spectator_config_t *cfg, size_t size);
/* Fill cfg with the defaults, then apply the SPECTATOR_* environment variables
 * (SPECTATOR_URI, SPECTATOR_FREQUENCY, SPECTATOR_BATCH_SIZE, SPECTATOR_TIMEOUT,
 * SPECTATOR_DISABLE_AUTO_START, SPECTATOR_MAX_METERS, SPECTATOR_PROCESS_METRICS,
 * SPECTATOR_OUTPUT_LOCATION). Bad values are logged on spectator.init and the
 * default is kept. Common tags from the environment (SPECTATOR_COMMON_TAGS and
 * the Netflix variables) are read by the registry itself when
 * cfg->env_common_tags is set. cfg->uri and cfg->output_location point into
 * the environment: use cfg before the environment changes. Writes `size`
 * bytes as spectator_config_init_size(). NULL is a no-op. */
SPECTATOR_EXTERN void spectator_config_from_env_size(spectator_config_t *cfg, size_t size);

/* A registry owns meters and, once started, a publishing thread. */
typedef struct spectator_registry spectator_registry_t;

/* Create a registry. cfg NULL means spectator_config_init() defaults. Reads
 * only the first `size` bytes of cfg (the caller's sizeof(spectator_config_t))
 * and uses the defaults for the fields beyond. Returns NULL when cfg is invalid
 * (logged on spectator.init) or memory runs out. If cfg->auto_start is set
 * and cfg->uri or an output_location that writes lines is, publishing starts
 * at once. Prefer the spectator_registry_new() macro, which passes the size. */
SPECTATOR_EXTERN spectator_registry_t *spectator_registry_new_size(const spectator_config_t *cfg,
                                                                   size_t size);

/* The entry points of release 0.1.0, kept for programs built against it:
 * they write and read exactly the members that 0.1.0's spectator_config_t
 * had. Through this header the names are the macros below (taking the
 * address of one still gives the 0.1.0 function). */
SPECTATOR_EXTERN void spectator_config_init(spectator_config_t *cfg);
SPECTATOR_EXTERN void spectator_config_from_env(spectator_config_t *cfg);
SPECTATOR_EXTERN spectator_registry_t *spectator_registry_new(const spectator_config_t *cfg);
#define spectator_config_init(cfg) spectator_config_init_size((cfg), sizeof(spectator_config_t))
#define spectator_config_from_env(cfg)                                                         \
  spectator_config_from_env_size((cfg), sizeof(spectator_config_t))
#define spectator_registry_new(cfg) spectator_registry_new_size((cfg), sizeof(spectator_config_t))

/* Stop publishing (with a final flush, bounded by the timeout) and free the
 * registry and all its meters and pollers. Meter and poller pointers from it
 * become invalid. NULL is a no-op; so is the global registry, which lives
 * until exit (logged). Must not be called while other threads still use its
 * meters; from a poller's function it is refused (logged). */
SPECTATOR_EXTERN void spectator_registry_free(spectator_registry_t *reg);
/* The global registry behind spectator_counter() and friends, created on first
 * use from the environment. Never NULL except when memory runs out. */
SPECTATOR_EXTERN spectator_registry_t *spectator_global_registry(void);

/* Start the registry's publishing thread. Idempotent (0 when already started).
 * The first start in a process that publishes to the aggregator loads libcurl,
 * zlib and cJSON (libcurl.so.4, libz.so.1, libcjson.so.1, unless the library
 * was built with SPECTATOR_DLOPEN_DEPS=OFF), which takes a few milliseconds
 * once; an output_location that writes lines needs none of them. With the
 * output "none" it starts nothing and returns 0. Returns SPECTATOR_ENOURI
 * when neither a URI nor an output location is configured (logged once;
 * meters keep recording), SPECTATOR_EHTTP when one of those libraries cannot
 * be loaded or libcurl cannot be set up (logged; meters keep recording),
 * SPECTATOR_ETHREAD when the thread cannot start, EINVAL for NULL. */
SPECTATOR_EXTERN int spectator_registry_start(spectator_registry_t *reg);
/* Stop the publishing thread: wakes it at once, publishes what is pending
 * (bounded by the timeout) and joins: a poller's function that the publishing
 * thread is running is waited for. Idempotent; NULL is a no-op. Must not be
 * called from a log handler; from a poller's function it is refused (logged). */
SPECTATOR_EXTERN void spectator_registry_stop(spectator_registry_t *reg);
/* Number of meters in the registry, the library's own (spectator.measurements,
 * http.req.complete) included; no-op meters are not counted. */
SPECTATOR_EXTERN size_t spectator_registry_size(spectator_registry_t *reg);

/* ------------------------------------------------------------------------ */
/* Meters                                                                    */
/* ------------------------------------------------------------------------ */

/* Meters come in two kinds. A lookup (spectator_counter() and the rest) hands
 * out a pointer and pins its meter: it is never freed before its registry,
 * so keep the pointer (an idle pinned meter reports nothing, and reports
 * again when recorded on). A meter used only through the one-shot calls
 * (spectator_record) is transient: once it has been idle for meter_ttl_s it
 * is removed and its memory reclaimed; the next call creates it anew. A
 * lookup that finds a transient meter pins it. Rule of thumb: keep a pointer
 * for the ids you know at compile time; use the one-shot call for ids built
 * from data (per customer, per endpoint, per peer). */

typedef struct spectator_counter spectator_counter_t;
typedef struct spectator_timer spectator_timer_t;
typedef struct spectator_dist_summary spectator_dist_summary_t;
typedef struct spectator_gauge spectator_gauge_t;
typedef struct spectator_max_gauge spectator_max_gauge_t;
typedef struct spectator_monotonic_counter spectator_monotonic_counter_t;
typedef struct spectator_percentile_timer spectator_percentile_timer_t;
typedef struct spectator_percentile_dist_summary spectator_percentile_dist_summary_t;
typedef struct spectator_age_gauge spectator_age_gauge_t;
typedef struct spectator_monotonic_counter_u64 spectator_monotonic_counter_u64_t;
typedef struct spectator_long_task_timer spectator_long_task_timer_t;

/* Meters of the global registry. The pointer returned stays valid until
 * process exit; asking again with an equal id returns the same meter. Never
 * returns NULL: bad input, a type conflict or a full registry gives a no-op
 * meter and one log line. The first call starts the global publisher unless
 * SPECTATOR_DISABLE_AUTO_START is set. */
SPECTATOR_EXTERN spectator_counter_t *spectator_counter(const char *name, const char *const *tags);
SPECTATOR_EXTERN spectator_timer_t *spectator_timer(const char *name, const char *const *tags);
SPECTATOR_EXTERN spectator_dist_summary_t *spectator_dist_summary(const char *name,
                                                                  const char *const *tags);
SPECTATOR_EXTERN spectator_gauge_t *spectator_gauge(const char *name, const char *const *tags);
SPECTATOR_EXTERN spectator_max_gauge_t *spectator_max_gauge(const char *name,
                                                            const char *const *tags);
SPECTATOR_EXTERN spectator_monotonic_counter_t *spectator_monotonic_counter(
    const char *name, const char *const *tags);
/* Percentile meters: every value, a negative one too, is clamped to [min, max]
 * before bucketing (the timer's range is in seconds), so the buckets always
 * sum to the count. min/max that are not finite, negative or with min > max
 * give the defaults (10 ms .. 60 s for timers, 0 .. INT64_MAX for summaries)
 * and a log line. The range of an existing meter is kept. */
SPECTATOR_EXTERN spectator_percentile_timer_t *spectator_percentile_timer(const char *name,
                                                                          const char *const *tags,
                                                                          double min_seconds,
                                                                          double max_seconds);
SPECTATOR_EXTERN spectator_percentile_dist_summary_t *spectator_percentile_dist_summary(
    const char *name, const char *const *tags, double min, double max);
/* Age gauge: the seconds since the last set (see spectator_age_gauge_set). */
SPECTATOR_EXTERN spectator_age_gauge_t *spectator_age_gauge(const char *name,
                                                            const char *const *tags);
/* Monotonic counter of an unsigned 64-bit count, exact (see _u64_set). */
SPECTATOR_EXTERN spectator_monotonic_counter_u64_t *spectator_monotonic_counter_u64(
    const char *name, const char *const *tags);
/* Long task timer: tasks reported while they run (see _start and _stop). */
SPECTATOR_EXTERN spectator_long_task_timer_t *spectator_long_task_timer(const char *name,
                                                                        const char *const *tags);

/* The same lookups on an explicit registry. reg NULL gives a no-op meter. */
SPECTATOR_EXTERN spectator_counter_t *spectator_registry_counter(spectator_registry_t *reg,
                                                                 const char *name,
                                                                 const char *const *tags);
SPECTATOR_EXTERN spectator_timer_t *spectator_registry_timer(spectator_registry_t *reg,
                                                             const char *name,
                                                             const char *const *tags);
SPECTATOR_EXTERN spectator_dist_summary_t *spectator_registry_dist_summary(
    spectator_registry_t *reg, const char *name, const char *const *tags);
SPECTATOR_EXTERN spectator_gauge_t *spectator_registry_gauge(spectator_registry_t *reg,
                                                             const char *name,
                                                             const char *const *tags);
/* A gauge whose TTL is ttl_s seconds instead of the registry default (a
 * non-finite or non-positive ttl_s keeps the default). An existing gauge keeps
 * its TTL. */
SPECTATOR_EXTERN spectator_gauge_t *spectator_registry_gauge_with_ttl(spectator_registry_t *reg,
                                                                      const char *name,
                                                                      const char *const *tags,
                                                                      double ttl_s);
SPECTATOR_EXTERN spectator_max_gauge_t *spectator_registry_max_gauge(spectator_registry_t *reg,
                                                                     const char *name,
                                                                     const char *const *tags);
SPECTATOR_EXTERN spectator_monotonic_counter_t *spectator_registry_monotonic_counter(
    spectator_registry_t *reg, const char *name, const char *const *tags);
SPECTATOR_EXTERN spectator_percentile_timer_t *spectator_registry_percentile_timer(
    spectator_registry_t *reg, const char *name, const char *const *tags, double min_seconds,
    double max_seconds);
SPECTATOR_EXTERN spectator_percentile_dist_summary_t *spectator_registry_percentile_dist_summary(
    spectator_registry_t *reg, const char *name, const char *const *tags, double min, double max);
SPECTATOR_EXTERN spectator_age_gauge_t *spectator_registry_age_gauge(spectator_registry_t *reg,
                                                                     const char *name,
                                                                     const char *const *tags);
SPECTATOR_EXTERN spectator_monotonic_counter_u64_t *spectator_registry_monotonic_counter_u64(
    spectator_registry_t *reg, const char *name, const char *const *tags);
SPECTATOR_EXTERN spectator_long_task_timer_t *spectator_registry_long_task_timer(
    spectator_registry_t *reg, const char *name, const char *const *tags);

/* Lookups by id (the id is borrowed). A NULL id gives a no-op meter. */
SPECTATOR_EXTERN spectator_counter_t *spectator_registry_counter_id(spectator_registry_t *reg,
                                                                    const spectator_id_t *id);
SPECTATOR_EXTERN spectator_timer_t *spectator_registry_timer_id(spectator_registry_t *reg,
                                                                const spectator_id_t *id);
SPECTATOR_EXTERN spectator_dist_summary_t *spectator_registry_dist_summary_id(
    spectator_registry_t *reg, const spectator_id_t *id);
SPECTATOR_EXTERN spectator_gauge_t *spectator_registry_gauge_id(spectator_registry_t *reg,
                                                                const spectator_id_t *id);
SPECTATOR_EXTERN spectator_gauge_t *spectator_registry_gauge_with_ttl_id(spectator_registry_t *reg,
                                                                         const spectator_id_t *id,
                                                                         double ttl_s);
SPECTATOR_EXTERN spectator_max_gauge_t *spectator_registry_max_gauge_id(spectator_registry_t *reg,
                                                                        const spectator_id_t *id);
SPECTATOR_EXTERN spectator_monotonic_counter_t *spectator_registry_monotonic_counter_id(
    spectator_registry_t *reg, const spectator_id_t *id);
SPECTATOR_EXTERN spectator_percentile_timer_t *spectator_registry_percentile_timer_id(
    spectator_registry_t *reg, const spectator_id_t *id, double min_seconds, double max_seconds);
SPECTATOR_EXTERN spectator_percentile_dist_summary_t *spectator_registry_percentile_dist_summary_id(
    spectator_registry_t *reg, const spectator_id_t *id, double min, double max);
SPECTATOR_EXTERN spectator_age_gauge_t *spectator_registry_age_gauge_id(spectator_registry_t *reg,
                                                                        const spectator_id_t *id);
SPECTATOR_EXTERN spectator_monotonic_counter_u64_t *spectator_registry_monotonic_counter_u64_id(
    spectator_registry_t *reg, const spectator_id_t *id);
SPECTATOR_EXTERN spectator_long_task_timer_t *spectator_registry_long_task_timer_id(
    spectator_registry_t *reg, const spectator_id_t *id);

/* The meter types, for the one-shot calls below. Only ever appended to. */
typedef enum {
  SPECTATOR_METER_COUNTER = 0,
  SPECTATOR_METER_TIMER,
  SPECTATOR_METER_DIST_SUMMARY,
  SPECTATOR_METER_GAUGE,
  SPECTATOR_METER_MAX_GAUGE,
  SPECTATOR_METER_MONOTONIC_COUNTER,
  SPECTATOR_METER_PERCENTILE_TIMER,
  SPECTATOR_METER_PERCENTILE_DIST_SUMMARY,
  SPECTATOR_METER_AGE_GAUGE,             /* value: Unix seconds, 0 for now */
  SPECTATOR_METER_MONOTONIC_COUNTER_U64, /* value: the count (exact up to 2^53 here) */
  SPECTATOR_METER_LONG_TASK_TIMER        /* no one-shot form: refused and logged */
} spectator_meter_type_t;

/* Look up (creating when needed) and record value in one call, without
 * handing out a pointer: counter add, timer seconds, summary amount, gauge
 * set, max gauge set, monotonic counter set, percentile timer seconds (range
 * 10 ms to 60 s), percentile summary amount (range 0 to 2^63), age gauge set
 * (Unix seconds; 0 is now and reads the clock), uint64 monotonic counter set
 * (values outside [0, 2^64) ignored). A long task timer has no one-shot form
 * (the call is refused with a log line). A meter made by
 * these calls is transient (see above). The value follows the recording
 * function's rules (an amount <= 0 on a counter is ignored...). Thread-safe;
 * a call on an existing meter takes no lock and allocates nothing. Bad input
 * (NULL registry, name or tags as for lookups, a type not in the enum) or a
 * type conflict: nothing is recorded and a rate-limited log line says why.
 * spectator_record uses the global registry. */
SPECTATOR_EXTERN void spectator_record(spectator_meter_type_t type, const char *name,
                                       const char *const *tags, double value);
SPECTATOR_EXTERN void spectator_registry_record(spectator_registry_t *reg,
                                                spectator_meter_type_t type, const char *name,
                                                const char *const *tags, double value);

/* Recording. NULL meters are a no-op. Lock-free, allocation-free, no clock, no
 * system call, no logging. An interval value beyond the doubles (a sum that
 * overflowed) is reported as DBL_MAX. */
/* Counters: add 1, or `amount`; amounts <= 0, NaN or infinite are ignored. */
SPECTATOR_EXTERN void spectator_counter_increment(spectator_counter_t *c);
SPECTATOR_EXTERN void spectator_counter_add(spectator_counter_t *c, double amount);
/* Timers: a negative duration is counted and adds nothing else (as Spectator
 * Java; with spectatord's lines it is not sent); NaN and infinite durations
 * are ignored. */
SPECTATOR_EXTERN void spectator_timer_record(spectator_timer_t *t, double seconds);
SPECTATOR_EXTERN void spectator_timer_record_ns(spectator_timer_t *t, int64_t nanos);
/* Distribution summaries: a negative amount is counted and adds nothing else;
 * NaN and infinite amounts are ignored. */
SPECTATOR_EXTERN void spectator_dist_summary_record(spectator_dist_summary_t *d, double amount);
/* Gauges: the last value set is reported each interval until the TTL runs out
 * without a new set; NaN stops reporting. Infinite values are ignored. */
SPECTATOR_EXTERN void spectator_gauge_set(spectator_gauge_t *g, double value);
/* Max gauges: the largest value set during the interval. NaN/inf ignored. */
SPECTATOR_EXTERN void spectator_max_gauge_set(spectator_max_gauge_t *g, double value);
/* Monotonic counters: set the current value of an external monotonic count;
 * the increase between snapshots is reported. NaN/inf ignored. */
SPECTATOR_EXTERN void spectator_monotonic_counter_set(spectator_monotonic_counter_t *m,
                                                      double value);
/* Percentile meters: as timers and summaries; a negative value is counted in
 * the first bucket of the range. */
SPECTATOR_EXTERN void spectator_percentile_timer_record(spectator_percentile_timer_t *t,
                                                        double seconds);
SPECTATOR_EXTERN void spectator_percentile_timer_record_ns(spectator_percentile_timer_t *t,
                                                           int64_t nanos);
SPECTATOR_EXTERN void spectator_percentile_dist_summary_record(
    spectator_percentile_dist_summary_t *d, double amount);

/* Age gauges report, as statistic=gauge (op max), the seconds from the last
 * set to each snapshot, on the registry's clock, every interval (never
 * idle). Never set, they report the seconds since the Unix epoch, as
 * spectatord does, so an alert on the time since the last success fires
 * until the first one. set_now records the registry's clock now: it is a
 * recording call that reads the clock (cfg.clock, else CLOCK_MONOTONIC). */
SPECTATOR_EXTERN void spectator_age_gauge_set_now(spectator_age_gauge_t *g);
/* Record a moment given as Unix time in seconds (fractions allowed; 0 means
 * now, as spectatord's `A` line, and reads the clock). The registry relates
 * its clock to the wall clock: with the default clock the relation is
 * measured again at each snapshot; with cfg.clock it is the one measured
 * when the registry was created, so ages follow the injected clock. Reads no
 * clock (but for 0). NaN, infinite, negative and values past 2262 are
 * ignored. */
SPECTATOR_EXTERN void spectator_age_gauge_set(spectator_age_gauge_t *g, double epoch_seconds);

/* uint64 monotonic counters: set the current value of an external 64-bit
 * count; each snapshot reports the increase since the previous snapshot
 * (statistic=count, op add), computed on integers, so exact for any values.
 * A value below the previous one is a wrap-around, as spectatord computes it:
 * the increase is value - previous modulo 2^64. The first snapshot after the
 * first set reports nothing; an increase of 0 reports nothing. */
SPECTATOR_EXTERN void spectator_monotonic_counter_u64_set(spectator_monotonic_counter_u64_t *m,
                                                          uint64_t value);

/* Long task timers report statistic=activeTasks (tasks running) and
 * statistic=duration (seconds all running tasks have run so far), both op
 * max, computed at each snapshot from the registry's clock; 0 and 0 when idle.
 * start returns the task's id (>= 0) to pass to stop; it reads the registry's
 * clock, takes no lock and allocates nothing. A timer tracks 256 tasks at
 * once: a start beyond them still returns an id whose stop gives its time,
 * but the task is missing from activeTasks and duration, and the next
 * snapshot logs how many such starts there were. NULL or no-op timer: -1. */
SPECTATOR_EXTERN int64_t spectator_long_task_timer_start(spectator_long_task_timer_t *t);
/* Stop a task: returns the seconds it ran (>= 0), reading the registry's
 * clock. A task id that is not running (stopped already, made up, negative,
 * from before a fork), a NULL or no-op timer: nothing happens, returns -1. */
SPECTATOR_EXTERN double spectator_long_task_timer_stop(spectator_long_task_timer_t *t,
                                                       int64_t task);

/* Getters: the values accumulated in the current interval (since the last
 * snapshot or publish), except gauges which return their last value. NULL or
 * no-op meters give 0 (NaN for gauges). */
SPECTATOR_EXTERN double spectator_counter_count(const spectator_counter_t *c);
SPECTATOR_EXTERN uint64_t spectator_timer_count(const spectator_timer_t *t);
SPECTATOR_EXTERN double spectator_timer_total_seconds(const spectator_timer_t *t);
SPECTATOR_EXTERN uint64_t spectator_dist_summary_count(const spectator_dist_summary_t *d);
SPECTATOR_EXTERN double spectator_dist_summary_total(const spectator_dist_summary_t *d);
SPECTATOR_EXTERN double spectator_gauge_get(const spectator_gauge_t *g);
SPECTATOR_EXTERN double spectator_max_gauge_get(const spectator_max_gauge_t *g); /* NaN if unset */
SPECTATOR_EXTERN double spectator_monotonic_counter_get(const spectator_monotonic_counter_t *m);
SPECTATOR_EXTERN uint64_t spectator_percentile_timer_count(const spectator_percentile_timer_t *t);
SPECTATOR_EXTERN double spectator_percentile_timer_total_seconds(
    const spectator_percentile_timer_t *t);
/* Estimate of the pct-th percentile (0..100) in seconds (timers) or base units
 * (summaries) from the current interval's buckets; 0 when nothing recorded. */
SPECTATOR_EXTERN double spectator_percentile_timer_percentile(const spectator_percentile_timer_t *t,
                                                              double pct);
SPECTATOR_EXTERN uint64_t
spectator_percentile_dist_summary_count(const spectator_percentile_dist_summary_t *d);
SPECTATOR_EXTERN double spectator_percentile_dist_summary_total(
    const spectator_percentile_dist_summary_t *d);
SPECTATOR_EXTERN double spectator_percentile_dist_summary_percentile(
    const spectator_percentile_dist_summary_t *d, double pct);
/* Seconds since the last set (since the Unix epoch when never set), now:
 * reads the registry's clock. NaN for NULL or no-op meters. */
SPECTATOR_EXTERN double spectator_age_gauge_age(const spectator_age_gauge_t *g);
/* The last value set (0 when never set, NULL or no-op). */
SPECTATOR_EXTERN uint64_t
spectator_monotonic_counter_u64_get(const spectator_monotonic_counter_u64_t *m);
/* Tasks running now, and the seconds they have run so far (reads the
 * registry's clock). 0 for NULL or no-op timers. */
SPECTATOR_EXTERN int spectator_long_task_timer_active_tasks(const spectator_long_task_timer_t *t);
SPECTATOR_EXTERN double spectator_long_task_timer_duration(const spectator_long_task_timer_t *t);

/* Percentile buckets (Spectator's PercentileBuckets): 276 buckets. */
#define SPECTATOR_PERCENTILE_BUCKETS 276
/* Index of the bucket that holds v (0 for v <= 0). */
SPECTATOR_EXTERN size_t spectator_percentile_buckets_index_of(int64_t v);
/* Upper bound of bucket i; INT64_MAX when i is out of range. */
SPECTATOR_EXTERN int64_t spectator_percentile_buckets_get(size_t i);

/* ------------------------------------------------------------------------ */
/* Polled meters                                                             */
/* ------------------------------------------------------------------------ */

/* A poller's function: returns the current value of what it watches (a queue
 * length, a pool size, a count kept elsewhere); NaN means nothing this
 * interval. Called with the ctx given at creation.
 *
 * When: at the start of every snapshot of its registry (each publish, and
 * each spectator_registry_snapshot(), also on a registry that does not
 * publish), on the thread taking the snapshot (the publishing thread for a
 * publish), with no library lock held, never from a recording call, and not
 * at process exit (the exit flush sends the last call's values). Two
 * snapshots at once do not call it twice: the second uses the first's call,
 * so a function never runs concurrently with itself.
 *
 * What it may do: look meters up and record on them, create and remove
 * pollers (its own included), take a snapshot (of its own registry: the
 * pollers are not called again for it). A slow function delays only the
 * snapshot that called it, never recording or lookups. What it must not do:
 * stop or free a registry (refused with a log line), or wait for a thread that
 * may be removing this very poller, or a poller whose function waits for this
 * one: a removal waits for the function to return. */
typedef double (*spectator_poll_fn)(void *ctx);
typedef struct spectator_poller spectator_poller_t;

/* Poll gauge (Java PolledMeter.monitorValue): each snapshot sets gauge
 * name{tags} (statistic=gauge, op max) to fn(ctx). Pollers of one id add up,
 * as in Java (NaN ones are left out; all NaN: nothing reported). Returns the
 * poller, owned by the registry until spectator_poller_remove() or
 * spectator_registry_free() (which frees it). NULL registry, name or fn, bad
 * tags, an id that is another meter type or a full registry: NULL and a
 * rate-limited log line. fn is first called at the next snapshot. */
SPECTATOR_EXTERN spectator_poller_t *spectator_registry_poll_gauge(spectator_registry_t *reg,
                                                                   const char *name,
                                                                   const char *const *tags,
                                                                   spectator_poll_fn fn, void *ctx);
/* Poll monotonic counter (Java PolledMeter.monitorMonotonicCounter): fn(ctx)
 * returns a count that only grows; each snapshot adds its increase since the
 * previous reading to counter name{tags} (statistic=count, op add). The first
 * reading only sets the base; a decrease (the source restarted) adds nothing
 * and becomes the new base, as in Java; NaN and infinite readings are
 * skipped. Pollers of one id add up. Ownership and bad input as poll_gauge. */
SPECTATOR_EXTERN spectator_poller_t *spectator_registry_poll_monotonic_counter(
    spectator_registry_t *reg, const char *name, const char *const *tags, spectator_poll_fn fn,
    void *ctx);
/* The same on the global registry. */
SPECTATOR_EXTERN spectator_poller_t *spectator_poll_gauge(const char *name, const char *const *tags,
                                                          spectator_poll_fn fn, void *ctx);
SPECTATOR_EXTERN spectator_poller_t *spectator_poll_monotonic_counter(const char *name,
                                                                      const char *const *tags,
                                                                      spectator_poll_fn fn,
                                                                      void *ctx);
/* Remove a poller and free it. When it returns, fn is not running and will
 * not be called again, so ctx may be freed; it waits for a call in progress
 * on another thread. Called from inside fn itself (or from another poller's
 * function of the same registry), it returns at once: fn is then its caller,
 * and is not called again. A poll gauge with no poller left stops reporting
 * at once. Any thread; once per poller (p is invalid afterwards). NULL:
 * no-op. */
SPECTATOR_EXTERN void spectator_poller_remove(spectator_poller_t *p);

/* ------------------------------------------------------------------------ */
/* Stopwatch                                                                 */
/* ------------------------------------------------------------------------ */

/* A stopwatch is a value (no allocation): the start time on CLOCK_MONOTONIC.
 * Starting and recording read the clock, so keep them off paths where one
 * clock read matters. */
typedef struct spectator_stopwatch {
  int64_t start_ns;
} spectator_stopwatch_t;

SPECTATOR_EXTERN spectator_stopwatch_t spectator_stopwatch_start(void);
/* Nanoseconds since start. */
SPECTATOR_EXTERN int64_t spectator_stopwatch_elapsed_ns(spectator_stopwatch_t sw);
/* Record the elapsed time on t (NULL t: no-op). Returns the elapsed ns. */
SPECTATOR_EXTERN int64_t spectator_stopwatch_record(spectator_stopwatch_t sw, spectator_timer_t *t);
SPECTATOR_EXTERN int64_t spectator_stopwatch_record_percentile(spectator_stopwatch_t sw,
                                                               spectator_percentile_timer_t *t);

/* ------------------------------------------------------------------------ */
/* Snapshots                                                                 */
/* ------------------------------------------------------------------------ */

#define SPECTATOR_OP_ADD 0
#define SPECTATOR_OP_MAX 10

/* One measurement as a publish sends it (before common tags and character
 * sanitization are applied): the id carries the `statistic` tag, and op
 * follows it (add for count, totalAmount, totalTime, totalOfSquares and
 * percentile, max for any other). */
typedef struct spectator_measurement {
  const spectator_id_t *id; /* owned by the snapshot */
  int op;                   /* SPECTATOR_OP_ADD or SPECTATOR_OP_MAX */
  double value;             /* always finite */
} spectator_measurement_t;

typedef struct spectator_measurements spectator_measurements_t;

/* Take a snapshot of every meter, exactly as a publish does: each meter reports
 * its interval values and resets them. A registry that is publishing will not
 * send what this snapshot took. Returns NULL when reg is NULL or memory runs
 * out before anything was reset; when memory runs out while the snapshot is
 * built, the measurements that did not fit are lost and an error is logged on
 * spectator.Registry. Caller frees the result. */
SPECTATOR_EXTERN spectator_measurements_t *spectator_registry_snapshot(spectator_registry_t *reg);
SPECTATOR_EXTERN size_t spectator_measurements_count(const spectator_measurements_t *ms);
/* The i-th measurement (sorted by name, then tags); NULL when out of range. */
SPECTATOR_EXTERN const spectator_measurement_t *spectator_measurements_get(
    const spectator_measurements_t *ms, size_t i);
/* Find the measurement with this name and exactly these tags (including
 * statistic, in any order). Returns it, or NULL. */
SPECTATOR_EXTERN const spectator_measurement_t *spectator_measurements_find(
    const spectator_measurements_t *ms, const char *name, const char *const *tags);
/* NULL is a no-op. */
SPECTATOR_EXTERN void spectator_measurements_free(spectator_measurements_t *ms);

/* ------------------------------------------------------------------------ */
/* The memory output                                                         */
/* ------------------------------------------------------------------------ */

/* Lines of spectatord's protocol kept by a registry whose output_location is
 * "memory" (docs/outputs.md), for tests of an application's instrumentation:
 * what would be sent to spectatord, one string per line, oldest first. */
typedef struct spectator_lines spectator_lines_t;

/* Publish what is pending into the memory output, as the end of an interval
 * does (counters and gauges report and reset, buffered samples of timers and
 * summaries are written), then return a copy of every line kept since the
 * registry was made or last cleared. Caller frees it with
 * spectator_lines_free(). NULL when reg is NULL or its output is not memory
 * (logged, rate-limited) or memory runs out. Thread-safe. */
SPECTATOR_EXTERN spectator_lines_t *spectator_registry_lines(spectator_registry_t *reg);
/* Forget the lines the memory output kept. No-op (logged) when reg is NULL or
 * its output is not memory. Thread-safe. */
SPECTATOR_EXTERN void spectator_registry_lines_clear(spectator_registry_t *reg);
/* The number of lines; 0 for NULL. */
SPECTATOR_EXTERN size_t spectator_lines_count(const spectator_lines_t *lines);
/* The i-th line, without its newline, e.g. "c:server.numRequests,id=ok:3";
 * NULL when out of range. Lives as long as lines. */
SPECTATOR_EXTERN const char *spectator_lines_get(const spectator_lines_t *lines, size_t i);
/* NULL is a no-op. */
SPECTATOR_EXTERN void spectator_lines_free(spectator_lines_t *lines);

/* ------------------------------------------------------------------------ */
/* Global publisher                                                          */
/* ------------------------------------------------------------------------ */

/* Start the global registry's publisher; idempotent; 0 on success, else a
 * negative SPECTATOR_E* code (for example SPECTATOR_ENOURI without
 * SPECTATOR_URI). */
SPECTATOR_EXTERN int spectator_start(void);
/* Stop it and publish what is pending (final flush); idempotent. */
SPECTATOR_EXTERN void spectator_stop(void);

#ifdef __cplusplus
}
#endif

#endif /* SPECTATOR_H */
