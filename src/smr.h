/*
 * Private: safe memory reclamation for lock-free lookups (smr.c), with
 * epochs.
 *
 * Lookups read a registry's index and meters without a lock. When an idle
 * transient meter is removed, a lookup that started earlier may still be
 * reading it (or an index that still points at it), so its memory can only
 * be reclaimed once every such lookup has finished: after a grace period.
 *
 * A thread inside a lookup announces the global epoch it entered with in a
 * slot of its own; outside, its slot says 0. Whatever is removed is retired
 * with the epoch current at its removal, and the epoch then moves on. A
 * retired object may be freed once no slot holds an epoch at or below its
 * retire epoch: every lookup that could have seen it has ended. A lookup that
 * enters later loads the index after the removal (the announcement and the
 * removal are each followed by a full fence, so one of the two threads sees
 * the other's store), and cannot find it.
 *
 * Slots are per thread, made at a thread's first lookup (one allocation per
 * thread, ever), reused after the thread exits, and never freed: their number
 * is the most threads that ever looked a meter up at once. Entering and
 * leaving is a few instructions and one fence; nothing waits: freeing is
 * only ever deferred, never waited for.
 */
#ifndef SPECTATOR_SMR_H
#define SPECTATOR_SMR_H

#include <stdatomic.h>

#include "common.h"

typedef struct spectator__smr_slot {
  _Atomic uint64_t epoch; /* 0: not in a lookup */
  uint32_t depth;         /* nesting of enter/leave in the owning thread */
  _Atomic bool in_use;    /* owned by a live thread */
  struct spectator__smr_slot *next;
} SPECTATOR__ALIGNED spectator__smr_slot_t;

extern _Atomic uint64_t spectator__smr_epoch;
extern _Thread_local spectator__smr_slot_t *spectator__smr_self
    __attribute__((tls_model("initial-exec")));
spectator__smr_slot_t *spectator__smr_slot_acquire(void);

/* Enter a lookup: from here until spectator__smr_leave, nothing the lookup
 * can reach is freed. Nests. No lock, no system call; the first call of a
 * thread allocates its slot (NULL when that fails: the caller must then not
 * read anything that can be reclaimed). */
static inline spectator__smr_slot_t *spectator__smr_enter(void) {
  spectator__smr_slot_t *s = spectator__smr_self;
  if (SPECTATOR__UNLIKELY(!s)) {
    s = spectator__smr_slot_acquire();
    if (!s) return NULL;
  }
  if (s->depth++ == 0) {
    atomic_store_explicit(&s->epoch,
                          atomic_load_explicit(&spectator__smr_epoch, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
  }
  return s;
}

static inline void spectator__smr_leave(spectator__smr_slot_t *s) {
  if (s && --s->depth == 0) atomic_store_explicit(&s->epoch, 0, memory_order_release);
}

/* Start a grace period for what was just removed: returns its retire epoch
 * (after a full fence, so the removal is visible to every later lookup) and
 * moves the global epoch on. */
uint64_t spectator__smr_retire_epoch(void);
/* The oldest epoch a lookup in progress entered with (UINT64_MAX: none): what
 * was retired at an epoch below it can be freed. */
uint64_t spectator__smr_oldest(void);

/* Fork hooks: in the child, only the forking thread exists, and it is in no
 * lookup: every other slot is released. */
void spectator__smr_postfork_child(void);

#endif
