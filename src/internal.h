/*
 * Private declarations shared between the library's source files. Nothing here
 * is installed or exported: internal names start with `spectator__`.
 */
#ifndef SPECTATOR_INTERNAL_H
#define SPECTATOR_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "percentile_buckets.h"
#include "spectator.h"

#define SPECTATOR__CACHELINE 64
#define SPECTATOR__ALIGNED __attribute__((aligned(SPECTATOR__CACHELINE)))
#define SPECTATOR__LIKELY(x) __builtin_expect(!!(x), 1)
#define SPECTATOR__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define SPECTATOR__PRINTF(f, a) __attribute__((format(printf, f, a)))

#define SPECTATOR__NS_PER_S 1000000000LL

/* ------------------------------------------------------------------------ */
/* log.c                                                                     */
/* ------------------------------------------------------------------------ */

/* Emit a message on a logger when level is enabled. User-supplied strings are
 * passed as arguments (never as the format) and should be shortened with
 * SPECTATOR__LOG_STR so a huge or binary string cannot flood the log. */
void spectator__log(spectator_log_level_t level, const char *logger, const char *fmt, ...)
    SPECTATOR__PRINTF(3, 4);
bool spectator__log_enabled(spectator_log_level_t level);
/* "%.*s" arguments for a user string: at most 120 bytes, "(null)" for NULL. */
#define SPECTATOR__LOG_MAX_STR 120
#define SPECTATOR__LOG_STR(s) (int)((s) ? spectator__strnlen_log(s) : 6), ((s) ? (s) : "(null)")
int spectator__strnlen_log(const char *s);

/* A rate limiter for one kind of log line: lets the 1st, 2nd, 4th, 8th...
 * occurrence through. Returns the occurrence number when the line should be
 * logged, 0 otherwise. No clock, so it is deterministic in tests. */
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

/* ------------------------------------------------------------------------ */
/* deps.c: libcurl, zlib and cJSON, loaded at first use                      */
/* ------------------------------------------------------------------------ */

/* The shared libraries the library calls. With SPECTATOR_DLOPEN_DEPS (the
 * default build) none of them is linked: each is dlopen()ed the first time it
 * is needed (deps.c explains why and when). src/deps.h holds the function
 * tables and the macros that call through them. */
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

/* Load one library, once per process, and tell whether it can be used. A
 * failure is logged once (the file, the loader's reason and the package to
 * install) and every later call returns false at once. Always true when the
 * library is linked. Takes no library lock; what the caller holds meanwhile
 * matters, since the first call waits for the load (deps.c lists the callers). */
bool spectator__dep_load(spectator__dep_t dep);
/* All three, each tried even when another is missing (so the log names every
 * missing one); true when all of them can be used. */
bool spectator__deps_load_all(void);
/* Returned by an internal function that needs a library that cannot be
 * loaded (spectator__encode and spectator__gzip, for zlib). Not one of the
 * public SPECTATOR_E* codes: no public function returns it. */
#define SPECTATOR__ENOLIB (-1000)

/* ------------------------------------------------------------------------ */
/* id.c                                                                      */
/* ------------------------------------------------------------------------ */

struct spectator_id {
  _Atomic uint32_t refs;
  uint32_t ntags;
  uint64_t hash;
  const char *name;
  /* 2 * ntags pointers: key0, value0, key1, value1... sorted by key, unique
   * keys; the strings follow the array in the same allocation. */
  const char *tags[];
};

/* A canonical view of (name, tags) built without allocation for up to
 * SPECTATOR__CANON_INLINE pairs: used by lookups so a hit allocates nothing. */
#define SPECTATOR__CANON_INLINE 16
typedef struct {
  const char *name;
  size_t ntags;
  const char **kv; /* 2 * ntags, sorted by key, unique */
  uint64_t hash;
  const char *inline_kv[2 * SPECTATOR__CANON_INLINE];
  const char **heap_kv; /* used when there are more pairs; freed by canon_free */
} spectator__canon_t;

typedef enum {
  SPECTATOR__CANON_OK = 0,
  SPECTATOR__CANON_BAD_NAME, /* NULL or empty name */
  SPECTATOR__CANON_BAD_TAGS, /* NULL/empty key or value, odd count */
  SPECTATOR__CANON_NOMEM
} spectator__canon_status_t;

/* Canonicalize name + (optional) base id tags + extra tags (later wins). */
spectator__canon_status_t spectator__canon_init(spectator__canon_t *c, const char *name,
                                                const spectator_id_t *base,
                                                const char *const *tags);
void spectator__canon_free(spectator__canon_t *c);
/* 1 when the canonical view and the id denote the same id. */
bool spectator__canon_equals_id(const spectator__canon_t *c, const spectator_id_t *id);
/* Build an id from a canonical view; NULL when memory runs out. */
spectator_id_t *spectator__id_from_canon(const spectator__canon_t *c);
/* Hash of a name and sorted unique pairs, as stored in ids. */
uint64_t spectator__hash_canon(const char *name, const char *const *kv, size_t ntags);
/* Log a canon failure on spectator.Registry (rate limited). */
void spectator__canon_log_error(spectator__canon_status_t st, const char *what, const char *name);

/* ------------------------------------------------------------------------ */
/* Meters                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum {
  SPECTATOR__COUNTER = 0,
  SPECTATOR__TIMER,
  SPECTATOR__DIST_SUMMARY,
  SPECTATOR__GAUGE,
  SPECTATOR__MAX_GAUGE,
  SPECTATOR__MONOTONIC_COUNTER,
  SPECTATOR__PERCENTILE_TIMER,
  SPECTATOR__PERCENTILE_DIST_SUMMARY,
  SPECTATOR__METER_TYPES
} spectator__type_t;

const char *spectator__type_name(spectator__type_t t);

/* Common header of every meter. Fields after `type` belong to the snapshot
 * (only touched with the registry's snapshot lock held). */
typedef struct spectator__meter {
  spectator_id_t *id;
  uint8_t type;
  uint8_t has_statistic; /* the id carries its own statistic tag */
  _Atomic uint8_t conflict_logged;
  int64_t last_active_ns; /* last snapshot that saw activity */
} spectator__meter_t;

/* A double accumulator that keeps small whole amounts exact: amounts that are
 * integers below 2^32 are added to `ints` with one fetch_add, anything else to
 * `dbits` (a double) with a CAS loop. The interval value is ints + dbits. */
typedef struct {
  _Atomic uint64_t ints;
  _Atomic uint64_t dbits;
} spectator__dsum_t;

/* An exact 128-bit accumulator for sums of squares of integers below 2^64:
 * lo and hi are added with fetch_add and the carry is propagated by the writer
 * that wraps lo, so lo + 2^64 * hi is exact however writes interleave with a
 * snapshot. Non-integer squares go to dbits. */
typedef struct {
  _Atomic uint64_t lo;
  _Atomic uint64_t hi;
  _Atomic uint64_t dbits;
} spectator__sqsum_t;

/* ---- Stripes: LongAdder-style spreading of contended meters (counter.c) ----
 *
 * A counter or timer starts with one cell of accumulators inside the meter,
 * updated with a compare-and-swap. The first CAS that fails shows that another
 * thread wrote in between: the meter is contended and switches to stripes,
 * an array of cache-line-sized cells indexed by a per-thread probe, each
 * updated with its own atomics, so threads stop sharing one cache line. The
 * recording thread never allocates: stripe blocks are preallocated by the
 * registry (lookup-miss and snapshot paths) in a pool and claimed with one
 * atomic index bump. When the pool is empty the meter keeps using its own
 * cell (fetch_add) and flags the registry, which refills the pool at the next
 * snapshot or lookup miss, and the snapshot hands the meter its stripes.
 * Snapshots exchange every cell with zero, so nothing is lost or counted
 * twice; meters that never see contention stay small. */

/* Timer accumulators: integer nanoseconds so sums are exact. */
typedef struct {
  _Atomic uint64_t count;
  _Atomic uint64_t total_ns;
  spectator__sqsum_t sq_ns; /* ns^2 */
  _Atomic int64_t max_ns;
} spectator__timer_cell_t;

/* One stripe: a cache line holding a counter's or a timer's accumulators. */
typedef union {
  spectator__dsum_t sum;
  spectator__timer_cell_t timer;
  unsigned char line[SPECTATOR__CACHELINE];
} spectator__cell_t SPECTATOR__ALIGNED;

/* A meter's stripes word: 0 while uncontended; SPECTATOR__STRIPES_PENDING once
 * contended while no stripes are available yet; else the address of its cells
 * (64-byte aligned) with log2(number of cells) in the low 6 bits. */
#define SPECTATOR__STRIPES_PENDING ((uintptr_t)1)
#define SPECTATOR__STRIPES_SHIFT_MASK ((uintptr_t)(SPECTATOR__CACHELINE - 1))

/* Preallocated stripe blocks (1 << shift cells each), chained for freeing. */
typedef struct spectator__stripe_pool {
  struct spectator__stripe_pool *prev;
  _Atomic size_t next; /* blocks claimed so far (may run past nblocks) */
  size_t nblocks;
  spectator__cell_t *cells; /* nblocks << shift cells */
} spectator__stripe_pool_t;

/* A registry's source of stripes. Zeroed memory is a valid empty source. */
typedef struct spectator__stripe_src {
  _Atomic(spectator__stripe_pool_t *) pool;
  _Atomic unsigned shift;  /* log2(cells per block); set before the first pool is published */
  _Atomic uint32_t wanted; /* a meter found the pool empty: refill */
} spectator__stripe_src_t;

/* Per-thread probe choosing a cell; 0 until the thread first needs one. */
extern _Thread_local uint32_t spectator__probe __attribute__((tls_model("initial-exec")));
uint32_t spectator__probe_init(void);
/* The calling thread collided with another in a cell: move it elsewhere. */
void spectator__probe_collide(void);

/* Slow path, called once by the thread whose CAS found a meter contended (and
 * by snapshots for meters still pending): give the meter a stripe block from
 * the pool without allocating. Returns the new stripes word (PENDING when the
 * pool is empty; the registry refills it later). src NULL (no-op meters):
 * the meter stays PENDING for good. */
uintptr_t spectator__stripes_claim(spectator__stripe_src_t *src, _Atomic uintptr_t *word);
/* Make sure the pool has blocks left: allocates a new pool when there is none
 * yet, when force is set and the current one is used up, or when a meter
 * asked (wanted). Lookup-miss and snapshot paths only; 0 or SPECTATOR_ENOMEM. */
int spectator__stripes_refill(spectator__stripe_src_t *src, bool force);
void spectator__stripes_free(spectator__stripe_src_t *src);

static inline size_t spectator__stripes_count(uintptr_t w) {
  return w > SPECTATOR__STRIPES_PENDING ? (size_t)1 << (w & SPECTATOR__STRIPES_SHIFT_MASK) : 0;
}
static inline spectator__cell_t *spectator__stripes_cells(uintptr_t w) {
  return (spectator__cell_t *)(w & ~SPECTATOR__STRIPES_SHIFT_MASK);
}
/* The calling thread's cell, or NULL while the meter is pending. */
static inline spectator__cell_t *spectator__stripe_pick(uintptr_t w) {
  if (w == SPECTATOR__STRIPES_PENDING) return NULL;
  uint32_t p = spectator__probe;
  if (SPECTATOR__UNLIKELY(!p)) p = spectator__probe_init();
  return spectator__stripes_cells(w) +
         (p & (((uintptr_t)1 << (w & SPECTATOR__STRIPES_SHIFT_MASK)) - 1));
}

/* 56 bytes: the header, the uncontended cell, the stripes word and the source
 * of stripes; one cache line. */
struct spectator_counter {
  spectator__meter_t hdr;
  spectator__dsum_t sum;        /* the uncontended cell */
  _Atomic uintptr_t stripes;    /* see SPECTATOR__STRIPES_PENDING */
  spectator__stripe_src_t *src; /* the registry's; NULL for the no-op counter */
} SPECTATOR__ALIGNED;

/* Timer state; also the first part of a percentile timer. */
typedef struct {
  spectator__timer_cell_t base; /* the uncontended cell */
  _Atomic uintptr_t stripes;
  spectator__stripe_src_t *src;
} spectator__timer_state_t;

struct spectator_timer {
  spectator__meter_t hdr;
  spectator__timer_state_t st;
} SPECTATOR__ALIGNED;

typedef struct {
  _Atomic uint64_t count;
  spectator__dsum_t total;
  spectator__sqsum_t sq;
  _Atomic uint64_t max_bits; /* bits of a non-negative double (monotonic as integers) */
} spectator__summary_state_t;

struct spectator_dist_summary {
  spectator__meter_t hdr;
  spectator__summary_state_t st;
} SPECTATOR__ALIGNED;

struct spectator_gauge {
  spectator__meter_t hdr;
  _Atomic uint64_t bits;   /* last value; NaN = nothing to report */
  _Atomic uint8_t updated; /* set by writers, cleared by the snapshot */
  int64_t ttl_ns;
  int64_t last_set_ns; /* snapshot-owned */
} SPECTATOR__ALIGNED;

struct spectator_max_gauge {
  spectator__meter_t hdr;
  _Atomic uint64_t key; /* order-preserving encoding of the max; 0 = none */
} SPECTATOR__ALIGNED;

struct spectator_monotonic_counter {
  spectator__meter_t hdr;
  _Atomic uint64_t bits; /* last value set; NaN = never set */
  _Atomic uint8_t updated;
  double prev; /* snapshot-owned; NaN = no previous sample */
} SPECTATOR__ALIGNED;

struct spectator_percentile_timer {
  spectator__meter_t hdr;
  spectator__timer_state_t st;
  int64_t min_ns, max_ns;
  _Atomic uint64_t buckets[SPECTATOR__PCT_LENGTH];
} SPECTATOR__ALIGNED;

struct spectator_percentile_dist_summary {
  spectator__meter_t hdr;
  spectator__summary_state_t st;
  int64_t min, max;
  _Atomic uint64_t buckets[SPECTATOR__PCT_LENGTH];
} SPECTATOR__ALIGNED;

/* Accumulator helpers (inline: they are the hot path). */
static inline uint64_t spectator__d2b(double d) {
  union {
    double d;
    uint64_t u;
  } x;
  x.d = d;
  return x.u;
}
static inline double spectator__b2d(uint64_t u) {
  union {
    double d;
    uint64_t u;
  } x;
  x.u = u;
  return x.d;
}

static inline void spectator__atomic_add_double(_Atomic uint64_t *bits, double v) {
  uint64_t cur = atomic_load_explicit(bits, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(bits, &cur, spectator__d2b(spectator__b2d(cur) + v),
                                                memory_order_relaxed, memory_order_relaxed)) {
  }
}

#define SPECTATOR__TWO_POW_32 4294967296.0

/* v must be finite and > 0 (or >= 0). */
static inline void spectator__dsum_add(spectator__dsum_t *s, double v) {
  if (v < SPECTATOR__TWO_POW_32 && v == (double)(uint32_t)v)
    atomic_fetch_add_explicit(&s->ints, (uint64_t)(uint32_t)v, memory_order_relaxed);
  else
    spectator__atomic_add_double(&s->dbits, v);
}

static inline void spectator__sqsum_add_u64(spectator__sqsum_t *s, uint64_t x) {
  unsigned __int128 sq = (unsigned __int128)x * x;
  uint64_t lo = (uint64_t)sq, hi = (uint64_t)(sq >> 64);
  uint64_t old = atomic_fetch_add_explicit(&s->lo, lo, memory_order_relaxed);
  if ((uint64_t)(old + lo) < old) hi++;
  if (hi) atomic_fetch_add_explicit(&s->hi, hi, memory_order_relaxed);
}

/* Read-and-reset helpers, used by snapshots. */
double spectator__dsum_take(spectator__dsum_t *s);
double spectator__dsum_peek(const spectator__dsum_t *s);
double spectator__sqsum_take(spectator__sqsum_t *s);

void spectator__timer_state_record(spectator__timer_state_t *st, int64_t nanos);
uint64_t spectator__timer_state_count(const spectator__timer_state_t *st);
uint64_t spectator__timer_state_total_ns(const spectator__timer_state_t *st);
void spectator__summary_state_init(spectator__summary_state_t *st);
void spectator__summary_state_record(spectator__summary_state_t *st, double amount);
/* Seconds to nanoseconds for a timer: -1 when the value must be ignored
 * (negative, NaN, infinite), saturating at INT64_MAX. */
int64_t spectator__seconds_to_ns(double seconds);

/* No-op meters: recording on them is harmless and they are never reported. */
extern struct spectator_counter spectator__noop_counter;
extern struct spectator_timer spectator__noop_timer;
extern struct spectator_dist_summary spectator__noop_dist_summary;
extern struct spectator_gauge spectator__noop_gauge;
extern struct spectator_max_gauge spectator__noop_max_gauge;
extern struct spectator_monotonic_counter spectator__noop_monotonic_counter;
extern struct spectator_percentile_timer spectator__noop_percentile_timer;
extern struct spectator_percentile_dist_summary spectator__noop_percentile_dist_summary;
void *spectator__noop_meter(spectator__type_t t);
bool spectator__is_noop(const void *meter);

/* ------------------------------------------------------------------------ */
/* Snapshot records (snapshot.c)                                             */
/* ------------------------------------------------------------------------ */

/* The statistic a record adds to its id's tags (SPECTATOR__STAT_NONE: the
 * id's own tags are used as they are). Names in spectator__stat_names. */
typedef enum {
  SPECTATOR__STAT_NONE,
  SPECTATOR__STAT_COUNT,
  SPECTATOR__STAT_TOTAL_TIME,
  SPECTATOR__STAT_TOTAL_OF_SQUARES,
  SPECTATOR__STAT_MAX,
  SPECTATOR__STAT_TOTAL_AMOUNT,
  SPECTATOR__STAT_PERCENTILE,
  SPECTATOR__STAT_GAUGE,
  SPECTATOR__STAT_COUNT_OF_NAMES
} spectator__stat_t;
extern const char *const spectator__stat_names[SPECTATOR__STAT_COUNT_OF_NAMES]; /* [NONE] = NULL */

/* Percentile tag of a record: 0 for none, else the bucket index + 1, with
 * SPECTATOR__PCT_SUMMARY set for distribution summaries ("D00A2" instead of
 * "T00A2"). */
#define SPECTATOR__PCT_SUMMARY 0x8000u

/* One measurement in the compact form the snapshot produces (24 bytes): the
 * meter's id, the statistic and percentile tags to set on it, op and value.
 * The id is borrowed: meters and their ids live as long as their registry,
 * so records must not outlive the registry they were collected from. The
 * public API and the encoder turn records into full tag sets. */
typedef struct {
  const spectator_id_t *id;
  double value;
  uint16_t pct;
  uint8_t stat; /* spectator__stat_t */
  uint8_t op;
} spectator__record_t;

/* Records come in fixed-size chunks (no doubling, no copy on growth), so a
 * reader can free what it has consumed while it goes. */
#define SPECTATOR__RECORD_CHUNK 1024
typedef struct spectator__record_chunk {
  struct spectator__record_chunk *next;
  size_t len;
  spectator__record_t items[SPECTATOR__RECORD_CHUNK];
} spectator__record_chunk_t;

typedef struct {
  spectator__record_chunk_t *head, *tail;
  size_t len;  /* records over all chunks */
  size_t lost; /* records dropped because memory ran out: the snapshot is incomplete */
} spectator__records_t;

/* Every record, in order: for (...) { use r }. */
#define SPECTATOR__RECORDS_FOREACH(rs, r)                                                         \
  for (spectator__record_chunk_t *r##_chunk = (rs)->head; r##_chunk; r##_chunk = r##_chunk->next) \
    for (spectator__record_t *r = r##_chunk->items; r < r##_chunk->items + r##_chunk->len; r++)

void spectator__records_init(spectator__records_t *rs);
void spectator__records_free(spectator__records_t *rs);
/* Free the first chunk (a reader is done with it); rs->len drops by its count. */
void spectator__records_pop_chunk(spectator__records_t *rs);
/* Append a record (id borrowed, see above). Non-finite values are dropped
 * (logged at debug). On allocation failure the record is counted in
 * rs->lost. pct as above. */
void spectator__records_add(spectator__records_t *rs, const spectator_id_t *id,
                            spectator__stat_t stat, unsigned pct, int op, double value);
/* The percentile tag value of a record ("T00A2"); false when it has none. */
bool spectator__record_pct_tag(const spectator__record_t *r, char buf[6]);

/* Each meter type reports its interval values into rs and resets them; returns
 * true when the meter saw activity this interval. now_ns is the snapshot time. */
typedef struct {
  spectator__records_t *out;
  int64_t now_ns;
} spectator__snap_ctx_t;

bool spectator__counter_measure(struct spectator_counter *c, spectator__snap_ctx_t *ctx);
bool spectator__timer_measure(struct spectator_timer *t, spectator__snap_ctx_t *ctx);
bool spectator__dist_summary_measure(struct spectator_dist_summary *d, spectator__snap_ctx_t *ctx);
bool spectator__gauge_measure(struct spectator_gauge *g, spectator__snap_ctx_t *ctx);
bool spectator__max_gauge_measure(struct spectator_max_gauge *g, spectator__snap_ctx_t *ctx);
bool spectator__monotonic_counter_measure(struct spectator_monotonic_counter *m,
                                          spectator__snap_ctx_t *ctx);
bool spectator__percentile_timer_measure(struct spectator_percentile_timer *t,
                                         spectator__snap_ctx_t *ctx);
bool spectator__percentile_dist_summary_measure(struct spectator_percentile_dist_summary *d,
                                                spectator__snap_ctx_t *ctx);
/* Reported by timers and summaries. */
void spectator__timer_state_measure(spectator__timer_state_t *st, spectator__meter_t *hdr,
                                    spectator__snap_ctx_t *ctx, bool *active);
void spectator__summary_state_measure(spectator__summary_state_t *st, spectator__meter_t *hdr,
                                      spectator__snap_ctx_t *ctx, bool *active);

/* Drop interval state without reporting it (fork child). */
void spectator__meter_discard(spectator__meter_t *m);

/* ------------------------------------------------------------------------ */
/* Registry (registry.c)                                                     */
/* ------------------------------------------------------------------------ */

/* The lookup index. A slot is 0 (empty) or holds the meter's position in the
 * chunk array plus one (bits 0-24) and 7 bits of its id's hash (bits 25-31),
 * so a probe skips most other meters without touching them; 4 bytes a slot. */
typedef struct spectator__table {
  size_t mask;                   /* capacity - 1 (power of two) */
  struct spectator__table *prev; /* retired tables, freed with the registry */
  _Atomic uint32_t slots[];
} spectator__table_t;
#define SPECTATOR__SLOT_INDEX_BITS 25
#define SPECTATOR__SLOT_INDEX_MASK ((UINT32_C(1) << SPECTATOR__SLOT_INDEX_BITS) - 1)

/* Meters are carved from blocks that live as long as the registry: no
 * per-meter allocator header, and every meter starts on its own cache line. */
typedef struct spectator__slab {
  struct spectator__slab *next;
  size_t used, cap; /* bytes of data */
  _Alignas(SPECTATOR__CACHELINE) unsigned char data[];
} spectator__slab_t;

#define SPECTATOR__CHUNK 1024
/* Largest cap on meters: 16 M meters, a 128 KiB chunk directory. */
#define SPECTATOR__MAX_METERS_LIMIT ((size_t)1 << 24)

struct spectator__publisher; /* publisher.c */

struct spectator_registry {
  /* configuration, owned copies */
  spectator_config_t cfg;
  char *uri;
  const char **common_tags; /* NULL-terminated alternating; merged config + env */
  char *ca_info;
  int64_t meter_ttl_ns;

  pthread_mutex_t lock;      /* inserts: table, chunks, count */
  pthread_mutex_t snap_lock; /* one snapshot at a time; snapshot-owned meter fields */
  _Atomic(spectator__table_t *) table;
  spectator__meter_t ***chunks; /* directory of SPECTATOR__CHUNK-sized arrays */
  size_t nchunks;
  spectator__slab_t *slab; /* where new meters go; older blocks follow `next` */
  _Atomic size_t count;

  spectator__ratelimit_t rl_full, rl_conflict;
  spectator__stripe_src_t stripes; /* for contended counters and timers */

  struct spectator__publisher *pub;
  bool is_global;
  struct spectator_registry *next_all; /* list of live registries (fork, exit) */
};

int64_t spectator__now_ns(const spectator_registry_t *reg);
int64_t spectator__monotonic_ns(void);
/* Snapshot into records (caller owns rs); holds snap_lock for the duration. */
void spectator__registry_collect(spectator_registry_t *reg, spectator__records_t *rs);
/* Every live registry, for fork handlers and exit. */
void spectator__registries_lock(void);
void spectator__registries_unlock(void);
spectator_registry_t *spectator__registries_head(void);

/* ------------------------------------------------------------------------ */
/* config.c                                                                  */
/* ------------------------------------------------------------------------ */

/* Parse a boolean flag as SPECTATOR_DISABLE_AUTO_START does: 1/true/yes
 * (case-insensitive, trimmed) is true, 0/false/no/empty is false; anything else
 * is false and logged. */
bool spectator__parse_flag(const char *name, const char *value);
/* Common tags from the environment: SPECTATOR_COMMON_TAGS then the Netflix
 * variables (first non-empty, trimmed). Returns a NULL-terminated alternating
 * array allocated as one block (free() it), or NULL when memory runs out. */
char **spectator__env_common_tags(void);
/* Validate a config; logs on spectator.init; 0 or SPECTATOR_EINVAL. */
int spectator__config_validate(const spectator_config_t *cfg);
/* Bytes of spectator_config_t in release 0.1.0 (up to clock_ctx), which its
 * entry points spectator_config_init/_from_env and spectator_registry_new
 * write and read. */
#define SPECTATOR__CONFIG_SIZE_0_1 (offsetof(spectator_config_t, clock_ctx) + sizeof(void *))
/* A full config from the caller's first `size` bytes of in (the caller's
 * sizeof(spectator_config_t)), defaults for the rest; in NULL gives the
 * defaults. Returns 0. */
int spectator__config_load(spectator_config_t *out, const spectator_config_t *in, size_t size);

/* Re-initialize the live-registry list lock in a forked child. */
void spectator__registries_child_reinit(void);

/* ------------------------------------------------------------------------ */
/* fork.c and the pieces it calls                                            */
/* ------------------------------------------------------------------------ */

/* Install the pthread_atfork handlers (once per process). */
void spectator__fork_init(void);
void spectator__log_fork_lock(void);
void spectator__log_fork_unlock(void);
void spectator__log_fork_child(void);
void spectator__publisher_fork_lock(spectator_registry_t *reg);
void spectator__publisher_fork_unlock(spectator_registry_t *reg);
/* Reset the publisher in a forked child and restart it if it was running. */
void spectator__publisher_fork_child(spectator_registry_t *reg);

/* ------------------------------------------------------------------------ */
/* publisher.c                                                               */
/* ------------------------------------------------------------------------ */

int spectator__publisher_init(spectator_registry_t *reg);
int spectator__publisher_start(spectator_registry_t *reg);
void spectator__publisher_stop(spectator_registry_t *reg);
void spectator__publisher_free(spectator_registry_t *reg);

#endif /* SPECTATOR_INTERNAL_H */
