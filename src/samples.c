/*
 * Sample rings: creation, the consumer's side and the fork reset (samples.h
 * has the design and the producer's side).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "samples.h"

#define DEFAULT_CAPACITY 8192
#define MIN_RINGS 4
#define MAX_RINGS SPECTATOR__SAMPLES_MAX_RINGS

static size_t pow2_at_least(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

spectator__samples_t *spectator__samples_new(unsigned rings, size_t capacity) {
  if (!rings) {
    long ncpu = sysconf(_SC_NPROCESSORS_CONF);
    size_t want = ncpu > 0 ? 2 * (size_t)ncpu : MIN_RINGS;
    rings = (unsigned)(want < MIN_RINGS ? MIN_RINGS : want > MAX_RINGS ? MAX_RINGS : want);
  }
  size_t nrings = pow2_at_least(rings > MAX_RINGS ? MAX_RINGS : rings);
  size_t cap = pow2_at_least(capacity ? capacity : DEFAULT_CAPACITY);
  spectator__samples_t *s = calloc(1, sizeof(*s));
  void *mem = NULL;
  if (!s || posix_memalign(&mem, SPECTATOR__CACHELINE, nrings * sizeof(*s->rings)) != 0) {
    free(s);
    return NULL;
  }
  memset(mem, 0, nrings * sizeof(*s->rings));
  s->rings = mem;
  s->ring_mask = (uint32_t)(nrings - 1);
  s->slot_mask = cap - 1;
  for (size_t i = 0; i < nrings; i++) {
    /* Zeroed slots are free slots of lap 0; large blocks come as untouched pages. */
    s->rings[i].slots = calloc(cap, sizeof(spectator__sample_t));
    if (!s->rings[i].slots) {
      spectator__samples_free(s);
      return NULL;
    }
  }
  return s;
}

void spectator__samples_free(spectator__samples_t *s) {
  if (!s) return;
  for (size_t i = 0; s->rings && i <= s->ring_mask; i++) free(s->rings[i].slots);
  free(s->rings);
  free(s);
}

size_t spectator__samples_capacity(const spectator__samples_t *s) {
  return (size_t)s->slot_mask + 1;
}

void spectator__samples_record(spectator__samples_t *s, const void *meter, uint64_t value) {
  spectator__samples_push(s, meter, value);
}

void spectator__samples_mark(spectator__samples_t *s, spectator__samples_mark_t *m) {
  for (size_t i = 0; i <= s->ring_mask; i++)
    m->tail[i] = atomic_load_explicit(&s->rings[i].tail, memory_order_relaxed);
}

size_t spectator__samples_drain(spectator__samples_t *s, const spectator__samples_mark_t *until,
                                size_t max, spectator__sample_fn fn, void *ctx, bool *done) {
  const uint64_t mask = s->slot_mask, cap = mask + 1;
  size_t total = 0;
  bool all = true;
  for (size_t i = 0; i <= s->ring_mask; i++) {
    spectator__sample_ring_t *r = &s->rings[i];
    uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);
    /* positions before the mark, at most the budget left */
    while ((int64_t)(until->tail[i] - pos) > 0) {
      if (max && total == max) {
        all = false;
        break;
      }
      spectator__sample_t *slot = &r->slots[pos & mask];
      uint64_t lap = pos & ~mask;
      if (atomic_load_explicit(&slot->seq, memory_order_acquire) != lap + 1) break;
      const void *meter = slot->meter;
      uint64_t value = slot->value;
      /* Free the slot for the next lap before the callback: the ring has room sooner. */
      atomic_store_explicit(&slot->seq, lap + cap, memory_order_release);
      pos++;
      total++;
      fn(ctx, meter, value);
    }
    atomic_store_explicit(&r->head, pos, memory_order_relaxed);
  }
  if (done) *done = all;
  return total;
}

size_t spectator__samples_backlog(const spectator__samples_t *s,
                                  const spectator__samples_mark_t *m) {
  size_t most = 0;
  for (size_t i = 0; i <= s->ring_mask; i++) {
    uint64_t n = m->tail[i] - atomic_load_explicit(&s->rings[i].head, memory_order_relaxed);
    if (n > most) most = (size_t)n;
  }
  return most;
}

uint64_t spectator__samples_unsent(const spectator__samples_t *s) {
  uint64_t n = 0;
  for (size_t i = 0; i <= s->ring_mask; i++) {
    const spectator__sample_ring_t *r = &s->rings[i];
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    /* Read apart, while a drain may move the head: the difference is at most
     * what a ring holds only when nothing moved in between. */
    uint64_t held = tail - head;
    n += (held > s->slot_mask + 1 ? s->slot_mask + 1 : held) +
         atomic_load_explicit(&r->dropped, memory_order_relaxed);
  }
  return n;
}

uint64_t spectator__samples_take_dropped(spectator__samples_t *s) {
  uint64_t n = 0;
  for (size_t i = 0; i <= s->ring_mask; i++)
    n += atomic_exchange_explicit(&s->rings[i].dropped, 0, memory_order_relaxed);
  return n;
}

void spectator__samples_postfork_child(spectator__samples_t *s) {
  const uint64_t mask = s->slot_mask, cap = mask + 1;
  for (size_t i = 0; i <= s->ring_mask; i++) {
    spectator__sample_ring_t *r = &s->rings[i];
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    /* Every claimed position, published or not, becomes a free slot of the
     * next lap, as if it had been consumed. */
    for (uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed); pos != tail; pos++)
      atomic_store_explicit(&r->slots[pos & mask].seq, (pos & ~mask) + cap, memory_order_relaxed);
    atomic_store_explicit(&r->head, tail, memory_order_relaxed);
    atomic_store_explicit(&r->dropped, 0, memory_order_relaxed);
  }
}
