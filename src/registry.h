/*
 * Private: registries (registry.c), where ids become meters; and the list of
 * live registries that fork handlers and exit walk.
 */
#ifndef SPECTATOR_REGISTRY_H
#define SPECTATOR_REGISTRY_H

#include <pthread.h>

#include "log.h"
#include "meter.h"
#include "records.h"
#include "smr.h"
#include "stripes.h"

/* The lookup index. A slot is 0 (empty), SPECTATOR__SLOT_TOMBSTONE (a meter
 * that expired was there: probes go on past it), or holds the meter's
 * position in the chunk array plus one (bits 0-24) and 7 bits of its id's
 * hash (bits 25-31), so a probe skips most other meters without touching
 * them; 4 bytes a slot. */
typedef struct spectator__table {
  size_t mask; /* capacity - 1 (power of two) */
  _Atomic uint32_t slots[];
} spectator__table_t;
#define SPECTATOR__SLOT_INDEX_BITS 25
#define SPECTATOR__SLOT_INDEX_MASK ((UINT32_C(1) << SPECTATOR__SLOT_INDEX_BITS) - 1)
#define SPECTATOR__SLOT_TOMBSTONE SPECTATOR__SLOT_INDEX_MASK

/* Pinned meters are carved from blocks that live as long as the registry: no
 * per-meter allocator header, and every meter starts on its own cache line.
 * Transient meters are allocated one by one, so that they can be freed. */
typedef struct spectator__slab {
  struct spectator__slab *next;
  size_t used, cap; /* bytes of data */
  _Alignas(SPECTATOR__CACHELINE) unsigned char data[];
} spectator__slab_t;

/* Something removed from the index that a lookup may still be reading: a
 * transient meter that expired, or an index that was replaced. Freed after
 * a grace period (smr.h); an expired meter only once a complete snapshot has
 * also measured it after that (a one-shot call that found it before it
 * expired may have recorded into it). */
typedef struct spectator__retired {
  struct spectator__retired *next;
  uint64_t epoch;            /* retire epoch */
  spectator__meter_t *meter; /* NULL: table */
  spectator__table_t *table;
  size_t pos;          /* the meter's position */
  uint64_t grace_pass; /* the first snapshot that began after the grace period; 0: none yet */
} spectator__retired_t;

#define SPECTATOR__CHUNK 1024
/* Largest cap on meters: 16 M meters, a 256 KiB chunk directory (positions
 * are twice the cap: expired meters keep theirs until they are freed). */
#define SPECTATOR__MAX_METERS_LIMIT ((size_t)1 << 24)
/* Meters of the library's own (self-metrics: spectator.measurements,
 * http.req.complete, spectator.registrySize) are not counted against
 * max_meters, so that what the library counts about a full registry (and
 * about publishing) is never refused by it. They are still bounded: at most
 * this many. */
#define SPECTATOR__SELF_METERS_MAX ((size_t)1024)
/* The aggregator rejects a datapoint with more user tags than this: the
 * name and every key outside nf.* and atlas.*. */
#define SPECTATOR__MAX_USER_TAGS 20

struct spectator__publisher; /* publisher.c */
struct spectator__pollers;   /* poller.c */
struct spectator__output;    /* output.c */
struct spectator__samples;   /* samples.h */

struct spectator_registry {
  /* The configuration; its strings and common tags are owned copies (the
   * common tags merged from the environment and the config). */
  spectator_config_t cfg;

  pthread_mutex_t lock;      /* the index, positions and meter memory; under snap_lock when both */
  pthread_mutex_t snap_lock; /* one snapshot at a time; snapshot-owned meter fields; expiry */
  _Atomic(spectator__table_t *) table;
  size_t table_used;                      /* slots not empty: live meters and tombstones (lock) */
  _Atomic(spectator__meter_t *) **chunks; /* directory of SPECTATOR__CHUNK-sized arrays */
  size_t nchunks;
  size_t max_positions;
  _Atomic size_t end;   /* positions used so far: a snapshot looks at [0, end) */
  _Atomic size_t count; /* live meters (expired ones are not) */
  size_t self_count;    /* of count, the library's own, outside the cap (lock) */
  /* The common tags' keys that count as user tags (not nf.*, atlas.* or
   * name), sorted and unique: what every measurement carries unless its id
   * has the key. */
  const char **common_user_keys;
  size_t ncommon_user_keys;
  size_t *free_pos; /* positions of freed meters, for reuse (lock) */
  size_t nfree, free_cap;
  spectator__slab_t *slab;       /* where new pinned meters go; older blocks follow `next` */
  spectator__retired_t *retired; /* waiting to be freed (snap_lock and lock) */
  uint64_t pass_seq;             /* snapshots begun (snap_lock) */
  /* Snapshots whose records are still in use: raised with snap_lock held,
   * lowered without it (a snapshot always ends, even one that can no longer
   * get the lock). */
  _Atomic unsigned passes;

  /* spectator.measurements{id=dropped,error=registry-full}, made at the first
   * lookup the cap refuses. */
  _Atomic(spectator_counter_t *) full_counter;
  spectator__stripe_src_t stripes; /* for contended counters and timers */
  /* The Unix epoch time, in ns, at which the registry's clock reads 0:
   * measured at creation, and again at each snapshot when the clock is the
   * default one (an injected clock keeps the relation it had at creation). */
  _Atomic int64_t wall_offset_ns;

  struct spectator__publisher *pub;   /* publisher.c; NULL until publisher_init */
  struct spectator__pollers *pollers; /* poller.c; NULL until pollers_init */
  /* Where measurements go (location.h: spectator__out_kind_t), parsed from
   * cfg.output_location when the registry is made. */
  uint8_t output_kind;
  /* The output that writes spectatord's line protocol (output.c), and its
   * sample rings, which new timers and summaries record into (NULL for the
   * aggregator and none). Made before any meter. */
  struct spectator__output *output;
  struct spectator__samples *samples;
  /* Called before expired meters are freed, with snap_lock and lock held:
   * takes every sample still in the rings (they point at meters). NULL
   * without sample rings. Must not take snap_lock or lock. */
  void (*fence)(struct spectator_registry *reg);
  bool is_global;
  struct spectator_registry *next_all; /* list of live registries (fork, exit) */
};

/* A registry with a copy of cfg (validated by the caller) and no meters, not
 * yet in the live list. NULL when memory runs out (logged). */
spectator_registry_t *spectator__registry_create(const spectator_config_t *cfg);
/* Free a registry that is out of the live list and has no publisher running:
 * its meters, ids and tables. */
void spectator__registry_destroy(spectator_registry_t *reg);

/* The registry's clock (cfg.clock, else CLOCK_MONOTONIC), in nanoseconds. */
int64_t spectator__registry_now_ns(const spectator_registry_t *reg);

/* Find or create the meter of this type for (name, tags) or id (borrowed);
 * never NULL: bad input, a type conflict or a full registry give the type's
 * no-op meter and a rate-limited log line (each lookup a full registry
 * refuses is counted in spectator.measurements{id=dropped,
 * error=registry-full}). The meter is pinned: it lives as long as the
 * registry. A hit takes no lock and allocates nothing. p NULL: no
 * parameters. */
void *spectator__registry_lookup(spectator_registry_t *reg, spectator__type_t type,
                                 const char *name, const spectator_id_t *id,
                                 const char *const *tags, const spectator__meter_params_t *p);
/* The same for the library's own meters (self-metrics): not counted against
 * max_meters (see SPECTATOR__SELF_METERS_MAX). */
void *spectator__registry_lookup_self(spectator_registry_t *reg, spectator__type_t type,
                                      const char *name, const char *const *tags);
/* Add n to spectator.measurements: {id=sent} when error is NULL, else
 * {id=dropped,error=<error>}. One of the library's meters, so a full registry
 * still counts. n 0: nothing, not even the meter's creation. Any thread; not
 * on a recording path (a lookup). */
void spectator__registry_count_measurements(spectator_registry_t *reg, const char *error,
                                            uint64_t n);
/* Record value on the meter of this type for (name, tags), created as a
 * transient meter when there is none (freed after meter_ttl_s idle), without
 * handing out a pointer. Bad input and type conflicts: nothing recorded and a
 * rate-limited log line; a full registry: nothing recorded, a line and a
 * count, as for a lookup. A hit takes no lock and allocates nothing. */
void spectator__registry_record(spectator_registry_t *reg, spectator__type_t type, const char *name,
                                const char *const *tags, double value);
/* A lookup by id given a NULL id: the type's no-op meter and a log line. */
void *spectator__registry_null_id(spectator_registry_t *reg, spectator__type_t type);

/* Where a snapshot stands. Zeroed memory is the start of one. */
typedef struct {
  size_t next, end; /* the next position; the positions used when it began */
  bool started;
  uint64_t seq; /* its number among the registry's snapshots */
  /* Set by the caller: give up waiting for the registry's locks at this
   * CLOCK_MONOTONIC time (0: wait as long as it takes). Set by the call when
   * it could not have snap_lock by then: the snapshot ends there, and the
   * meters not measured keep their values. */
  int64_t deadline_ns;
  bool locked_out;
} spectator__cursor_t;
/* Snapshot the registry, or part of it: the meters that existed when the
 * first part was taken, from the cursor on, until rs holds at least `want`
 * records (SIZE_MAX: all at once). Meters created in the meantime wait for the
 * next snapshot. The first part calls the registry's pollers first, before
 * any lock is taken. snap_lock is held only during the call, so a publish can
 * send between parts. Idle transient meters expire here (with a deadline, only
 * when the insert lock is free by then; else at a later snapshot). Returns
 * true when no meter is left, or when snap_lock could not be had by the
 * cursor's deadline. Every snapshot begun must be ended with
 * spectator__registry_collect_end once its records are no longer read: until
 * then the meters they borrow ids from are not freed. */
bool spectator__registry_collect(spectator_registry_t *reg, spectator__cursor_t *cur,
                                 spectator__records_t *rs, size_t want);
void spectator__registry_collect_end(spectator_registry_t *reg, spectator__cursor_t *cur);
/* At exit: how many meters, other than the publisher's own, recorded values
 * since the last snapshot. Resets them (nothing is sent any more), allocates
 * nothing, reads no clock (the application's may be gone) and takes no lock
 * that is not free: 0 when a snapshot is in progress. */
size_t spectator__registry_take_unsent(spectator_registry_t *reg);

/* The live registries, for exit and the fork hooks: add, remove, and walk the
 * list with its lock held. */
void spectator__registries_link(spectator_registry_t *reg);
void spectator__registries_unlink(spectator_registry_t *reg);
void spectator__registries_lock(void);
/* The same, giving up at deadline_ns (CLOCK_MONOTONIC): 0, or ETIMEDOUT. */
int spectator__registries_lock_until(int64_t deadline_ns);
void spectator__registries_unlock(void);
spectator_registry_t *spectator__registries_head(void);

/* Fork hooks (fork.c calls them in order). prefork takes the list lock, then
 * each registry's snapshot and insert locks, and keeps them until
 * postfork_parent or postfork_child; between the two, other modules' hooks
 * walk the list without locking it. postfork_child re-initializes the locks
 * and resets every meter's interval state (meter descriptors). */
void spectator__registries_prefork(void);
void spectator__registries_postfork_parent(void);
void spectator__registries_postfork_child(void);

#endif
