/*
 * Epoch-based reclamation for lock-free lookups (smr.h has the design).
 */
#include <pthread.h>
#include <stdlib.h>

#include "smr.h"

_Atomic uint64_t spectator__smr_epoch = 1;
_Thread_local spectator__smr_slot_t *spectator__smr_self __attribute__((tls_model("initial-exec")));

/* Every slot ever made, newest first; only ever pushed. */
static _Atomic(spectator__smr_slot_t *) slots;
static pthread_key_t release_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

/* A thread's exit gives its slot back for the next thread. */
static void release(void *p) {
  spectator__smr_slot_t *s = p;
  atomic_store_explicit(&s->epoch, 0, memory_order_release);
  s->depth = 0;
  atomic_store_explicit(&s->in_use, false, memory_order_release);
}

static void make_key(void) { pthread_key_create(&release_key, release); }

spectator__smr_slot_t *spectator__smr_slot_acquire(void) {
  pthread_once(&key_once, make_key);
  spectator__smr_slot_t *s = atomic_load_explicit(&slots, memory_order_acquire);
  for (; s; s = s->next) {
    bool free_slot = false;
    if (atomic_compare_exchange_strong(&s->in_use, &free_slot, true)) break;
  }
  if (!s) {
    void *mem = NULL;
    if (posix_memalign(&mem, SPECTATOR__CACHELINE, sizeof(*s)) != 0) return NULL;
    s = mem;
    atomic_init(&s->epoch, 0);
    atomic_init(&s->in_use, true);
    s->depth = 0;
    s->next = atomic_load_explicit(&slots, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&slots, &s->next, s, memory_order_release,
                                                  memory_order_relaxed)) {
    }
  }
  pthread_setspecific(release_key, s);
  spectator__smr_self = s;
  return s;
}

uint64_t spectator__smr_retire_epoch(void) {
  atomic_thread_fence(memory_order_seq_cst);
  return atomic_fetch_add_explicit(&spectator__smr_epoch, 1, memory_order_seq_cst);
}

uint64_t spectator__smr_oldest(void) {
  atomic_thread_fence(memory_order_seq_cst);
  uint64_t oldest = UINT64_MAX;
  for (spectator__smr_slot_t *s = atomic_load_explicit(&slots, memory_order_acquire); s;
       s = s->next) {
    uint64_t e = atomic_load_explicit(&s->epoch, memory_order_acquire);
    if (e && e < oldest) oldest = e;
  }
  return oldest;
}

void spectator__smr_postfork_child(void) {
  for (spectator__smr_slot_t *s = atomic_load_explicit(&slots, memory_order_relaxed); s;
       s = s->next) {
    if (s == spectator__smr_self) continue;
    atomic_store_explicit(&s->epoch, 0, memory_order_relaxed);
    s->depth = 0;
    atomic_store_explicit(&s->in_use, false, memory_order_relaxed);
  }
}
