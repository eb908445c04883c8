/*
 * Private: sample rings (samples.c), where timers and distribution summaries
 * put each recorded value when the registry writes spectatord's line
 * protocol, which has one line per sample.
 *
 * DESIGN
 * A recording call must stay lock-free, allocation-free and free of system
 * calls, so a sample is an entry (the meter, the value) in one of a few
 * preallocated rings, chosen by the per-thread probe the stripes use
 * (stripes.h): threads running at the same time mostly write different
 * rings. Each ring is a bounded multi-producer queue with a sequence number
 * per slot (Vyukov's): a producer claims a position with one compare-and-swap
 * on the ring's tail, writes its entry and publishes it with a release store
 * of the slot's sequence; a full ring refuses the sample and counts it. One
 * consumer at a time (the output, under its lock) drains the published
 * entries in order and frees their slots for the next lap. A producer that
 * claimed a slot but has not published it yet holds the consumer at that slot
 * until the next drain; nothing is skipped or read twice. A drain goes no
 * further than the tails it marked when it began: producers that keep
 * refilling the slots it frees cannot keep it going.
 *
 * A slot's sequence is stored relative to its index, so zeroed memory is an
 * empty ring: the rings come from calloc and their pages are only touched
 * once used.
 *
 * Entries point at meters, so a meter must not be freed while an entry that
 * names it is in a ring: the registry drains the rings before it frees
 * expired meters (registry.h: the fence).
 */
#ifndef SPECTATOR_SAMPLES_H
#define SPECTATOR_SAMPLES_H

#include <stdatomic.h>

#include "common.h"
#include "stripes.h"

typedef struct {
  _Atomic uint64_t seq; /* position - index: lap (free), lap + 1 (published) */
  const void *meter;
  uint64_t value;
} spectator__sample_t;

typedef struct {
  /* Written by producers. */
  _Atomic uint64_t tail;      /* positions claimed so far */
  _Atomic uint64_t dropped;   /* samples refused because the ring was full */
  spectator__sample_t *slots; /* read-only after creation */
  /* Written by the consumer, on a line of its own; atomic only so that
   * spectator__samples_unsent may read it from another thread. */
  _Atomic uint64_t head SPECTATOR__ALIGNED; /* positions consumed so far */
} SPECTATOR__ALIGNED spectator__sample_ring_t;

typedef struct spectator__samples {
  uint32_t ring_mask; /* rings - 1 (a power of two) */
  uint64_t slot_mask; /* slots per ring - 1 (a power of two) */
  spectator__sample_ring_t *rings;
} spectator__samples_t;

/* Rings of `capacity` samples each (rounded up to a power of two; 0: 8192),
 * `rings` of them (rounded up to a power of two; 0: twice the CPUs, 4 to
 * 32). NULL when memory runs out. */
spectator__samples_t *spectator__samples_new(unsigned rings, size_t capacity);
void spectator__samples_free(spectator__samples_t *s);

/* Record a sample: the meter it belongs to and its value (the meter type
 * says what the 64 bits are). A full ring drops it and counts it. Lock-free,
 * no allocation, no system call. */
static inline void spectator__samples_push(spectator__samples_t *s, const void *meter,
                                           uint64_t value) {
  uint32_t p = spectator__probe;
  if (SPECTATOR__UNLIKELY(!p)) p = spectator__probe_init();
  spectator__sample_ring_t *r = &s->rings[p & s->ring_mask];
  spectator__sample_t *slots = r->slots;
  const uint64_t mask = s->slot_mask;
  uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
  for (;;) {
    spectator__sample_t *slot = &slots[pos & mask];
    uint64_t lap = pos & ~mask;
    uint64_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
    if (SPECTATOR__LIKELY(seq == lap)) {
      if (SPECTATOR__LIKELY(atomic_compare_exchange_weak_explicit(
              &r->tail, &pos, pos + 1, memory_order_relaxed, memory_order_relaxed))) {
        slot->meter = meter;
        slot->value = value;
        atomic_store_explicit(&slot->seq, lap + 1, memory_order_release);
        return;
      }
      /* another thread took the position (pos now holds the tail) */
    } else if ((int64_t)(seq - lap) < 0) {
      /* the slot still holds an entry of the previous lap: the ring is full */
      atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
      return;
    } else {
      pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
    }
  }
}

/* spectator__samples_push out of line: what recording calls use, so that
 * their other path keeps its code as it was. */
void spectator__samples_record(spectator__samples_t *s, const void *meter, uint64_t value);

/* Where a drain stops: each ring's tail when it was marked. */
#define SPECTATOR__SAMPLES_MAX_RINGS 32
typedef struct {
  uint64_t tail[SPECTATOR__SAMPLES_MAX_RINGS];
} spectator__samples_mark_t;
void spectator__samples_mark(spectator__samples_t *s, spectator__samples_mark_t *m);

/* Take the samples published before the mark, oldest first in each ring, at
 * most max of them (0: no limit), and hand each to fn. One consumer at a
 * time (the caller serializes). Returns the number taken; *done (may be NULL)
 * is set when nothing before the mark is left (a slot claimed but not yet
 * published counts as left for a later drain, not for this one). */
typedef void (*spectator__sample_fn)(void *ctx, const void *meter, uint64_t value);
size_t spectator__samples_drain(spectator__samples_t *s, const spectator__samples_mark_t *until,
                                size_t max, spectator__sample_fn fn, void *ctx, bool *done);
/* The most samples one ring holds before the mark (how full the rings got);
 * the consumer's call. */
size_t spectator__samples_backlog(const spectator__samples_t *s,
                                  const spectator__samples_mark_t *m);
/* Samples no drain has taken yet, and those full rings refused since the
 * last spectator__samples_take_dropped: what is lost if no drain comes. A
 * reading; any thread, no lock. */
uint64_t spectator__samples_unsent(const spectator__samples_t *s);
/* Samples refused by full rings since the last call (and reset). */
uint64_t spectator__samples_take_dropped(spectator__samples_t *s);
/* Slots of one ring. */
size_t spectator__samples_capacity(const spectator__samples_t *s);

/* In a forked child: forget every entry, published or half-written by a
 * thread of the parent, and the drop counts. No lock, no allocation. */
void spectator__samples_postfork_child(spectator__samples_t *s);

#endif
