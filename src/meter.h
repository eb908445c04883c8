/*
 * Private: what every meter type has in common, and the one list of meter
 * types.
 *
 * A meter type is one file (counter.c, timer.c, ...) holding its struct, its
 * recording and getter functions, and one descriptor
 * (spectator__<stem>_type) that tells the registry how big a meter is and how
 * to initialize, measure and reset it. The registry, the snapshot and the
 * fork code only ever dispatch through descriptors; nothing outside a meter's
 * file knows its layout. SPECTATOR__METER_TYPE_MAP below lists the types once;
 * the internal type numbers, the descriptor table (registry.c) and the public
 * lookups (lookup.c) are generated from it. docs/internals.md has the
 * checklist for adding a type.
 */
#ifndef SPECTATOR_METER_H
#define SPECTATOR_METER_H

#include <stdatomic.h>

#include "common.h"
#include "records.h"
#include "stripes.h"

/* Every meter type, in the order of the public spectator_meter_type_t:
 * XX(NAME, stem, lookup) where stem names the public type
 * (spectator_<stem>_t), its lookups (spectator_registry_<stem>...) and its
 * descriptor (spectator__<stem>_type), and lookup is the shape of its public
 * lookups: PLAIN (name and tags) or RANGE (name, tags, min and max). */
#define SPECTATOR__METER_TYPE_MAP(XX)                         \
  XX(COUNTER, counter, PLAIN)                                 \
  XX(TIMER, timer, PLAIN)                                     \
  XX(DIST_SUMMARY, dist_summary, PLAIN)                       \
  XX(GAUGE, gauge, PLAIN)                                     \
  XX(MAX_GAUGE, max_gauge, PLAIN)                             \
  XX(MONOTONIC_COUNTER, monotonic_counter, PLAIN)             \
  XX(PERCENTILE_TIMER, percentile_timer, RANGE)               \
  XX(PERCENTILE_DIST_SUMMARY, percentile_dist_summary, RANGE) \
  XX(AGE_GAUGE, age_gauge, PLAIN)                             \
  XX(MONOTONIC_COUNTER_U64, monotonic_counter_u64, PLAIN)     \
  XX(LONG_TASK_TIMER, long_task_timer, PLAIN)

typedef enum {
#define SPECTATOR__TYPE_ENUM(name, stem, lookup) SPECTATOR__##name,
  SPECTATOR__METER_TYPE_MAP(SPECTATOR__TYPE_ENUM)
#undef SPECTATOR__TYPE_ENUM
      SPECTATOR__METER_TYPES
} spectator__type_t;

/* What a meter's life is (registry.c): a lookup handed out a pointer to it
 * (pinned: it lives as long as the registry), or only one-shot calls used it
 * (transient: it expires when idle), or it expired (dead: no lookup finds
 * it, and it is freed after a grace period). */
enum { SPECTATOR__TRANSIENT = 0, SPECTATOR__PINNED = 1, SPECTATOR__DEAD = 2 };

/* The first member of every meter. Fields after `own_alloc` belong to the
 * snapshot (only touched with the registry's snapshot lock held). A no-op
 * meter has a NULL id. */
typedef struct spectator__meter {
  spectator_id_t *id;
  uint8_t type;          /* spectator__type_t */
  uint8_t has_statistic; /* the id carries its own statistic tag */
  _Atomic uint8_t conflict_logged;
  _Atomic uint8_t state;   /* SPECTATOR__TRANSIENT, _PINNED or _DEAD */
  uint8_t own_alloc;       /* allocated on its own (transient), not in a slab */
  _Atomic uint8_t sampled; /* a sample of it left a sample ring since the last snapshot */
  uint8_t self;            /* one of the library's own, outside max_meters */
  int64_t last_active_ns;  /* last snapshot that saw activity */
} spectator__meter_t;

/* True for the shared no-op meters that bad input gets. */
static inline bool spectator__is_noop(const void *meter) {
  return ((const spectator__meter_t *)meter)->id == NULL;
}

/* The statistic a single-statistic meter reports: its id's own when it has
 * one (Spectator's "default stat"), else stat. */
static inline spectator__stat_t spectator__default_stat(const spectator__meter_t *m,
                                                        spectator__stat_t stat) {
  return m->has_statistic ? SPECTATOR__STAT_NONE : stat;
}

/* Parameters of a lookup; a type reads the ones it has. */
typedef struct {
  double ttl_s;    /* gauges: <= 0 or not finite means the registry's TTL */
  double min, max; /* percentile meters: the range, seconds or base units */
} spectator__meter_params_t;

struct spectator__samples; /* samples.h */

/* What a new meter gets from its registry. */
typedef struct {
  spectator__stripe_src_t *stripes; /* for meters that spread when contended */
  int64_t ttl_ns;                   /* the registry's meter TTL */
  int64_t now_ns;                   /* the registry's clock, now */
  /* The registry's clock, for the few recording calls documented to read it
   * (an age gauge's set_now, a long task timer's start and stop):
   * spectator__clock_now(clock, clock_ctx). */
  spectator_clock_fn clock;
  void *clock_ctx;
  /* The Unix epoch time of the registry's clock reading 0, in nanoseconds
   * (wall clock = registry clock + this); the registry keeps it current. */
  const _Atomic int64_t *wall_offset_ns;
  /* The registry's sample rings when it writes spectatord's line protocol
   * (NULL otherwise): meters sent one line per sample record into them
   * instead of their interval state. */
  struct spectator__samples *samples;
} spectator__meter_env_t;

/* How a meter type's values become lines of spectatord's protocol (lines.h):
 * - MEASURED: at each publish its measure reports into records that have
 *   `lines` set, and each record becomes one line (counters: the interval's
 *   sum; gauges: the last value, when set in the interval; max gauges: the
 *   max). A measure that must report something else for a line (a gauge
 *   reports only when it was set) checks rs->lines.
 * - MEASURED_STATS: the same, for a type that reports several statistics of
 *   one id (a long task timer): each line carries its record's statistic
 *   tag, which keeps them apart.
 * - SAMPLED: every recorded value is a line of its own, put in the
 *   registry's sample rings by the recording call (samples.h); its 64 bits
 *   are a double.
 * - SAMPLED_NS: the same, its 64 bits are int64 nanoseconds, written as
 *   seconds.
 * - MEASURED_U64: as MEASURED, but a record's value holds the 64 bits of a
 *   uint64 (spectator__b2d), written as an integer: exact above 2^53. */
typedef enum {
  SPECTATOR__LINES_MEASURED = 0,
  SPECTATOR__LINES_SAMPLED,
  SPECTATOR__LINES_SAMPLED_NS,
  SPECTATOR__LINES_MEASURED_STATS,
  SPECTATOR__LINES_MEASURED_U64
} spectator__lines_kind_t;

/* A meter type. */
typedef struct spectator__meter_type {
  const char *name;      /* for log lines: "counter", "percentile timer"... */
  size_t size;           /* bytes of its struct */
  const char *extra_tag; /* a tag key its measurements add besides statistic, or NULL */
  /* The shared no-op meter of this type: zeroed, id NULL, never reported. */
  spectator__meter_t *noop;
  /* Set up a zeroed meter whose header is filled in (id, type). May log (a
   * bad range, say); never fails. NULL: zeroed memory is the initial state. */
  void (*init)(spectator__meter_t *m, const spectator__meter_params_t *p,
               const spectator__meter_env_t *env);
  /* Report the interval's values into ctx->out (NULL: report nothing) and
   * reset them. True when the meter saw activity in the interval. Called with
   * the registry's snapshot lock held. */
  bool (*measure)(spectator__meter_t *m, spectator__snap_ctx_t *ctx);
  /* In a forked child: forget what the parent had pending so that it is
   * reported once, by the parent. Must not allocate or block. NULL: measure
   * into nothing. */
  void (*postfork_child)(spectator__meter_t *m);
  /* Record one value, as a one-shot call does (spectator_record): a counter
   * adds it, a timer takes seconds, a gauge sets it... NULL: the type has no
   * one-shot form (a long task timer), and such a call is refused. */
  void (*record)(spectator__meter_t *m, double value);
  /* The parameters a one-shot call creates the meter with (percentile
   * ranges); NULL: none. */
  const spectator__meter_params_t *defaults;
  /* spectatord's line protocol: the symbol of this type's lines ('c', 'g',
   * ...; 0: the type sends no lines) and how its values become lines. A type
   * measured at each publish needs only the symbol. */
  char line_type;
  uint8_t line_kind; /* spectator__lines_kind_t */
} spectator__meter_type_t;

/* Define a type's descriptor and its no-op meter in the type's file, e.g.
 * SPECTATOR__METER_TYPE(counter, "counter", .init = init, .measure = measure). */
#define SPECTATOR__METER_TYPE(stem, display, ...)                                                 \
  static spectator_##stem##_t spectator__noop_##stem;                                             \
  const spectator__meter_type_t spectator__##stem##_type = {.name = display,                      \
                                                            .size = sizeof(spectator_##stem##_t), \
                                                            .noop = &spectator__noop_##stem.hdr,  \
                                                            __VA_ARGS__}

#define SPECTATOR__TYPE_EXTERN(name, stem, lookup) \
  extern const spectator__meter_type_t spectator__##stem##_type;
SPECTATOR__METER_TYPE_MAP(SPECTATOR__TYPE_EXTERN)
#undef SPECTATOR__TYPE_EXTERN

/* Every type's descriptor, indexed by spectator__type_t (meter.c). */
extern const spectator__meter_type_t *const spectator__meter_types[SPECTATOR__METER_TYPES];

#endif
