/*
 * Counting allocator: see alloc_count.h. Thread-safe (relaxed atomics; the
 * peak is a CAS-max), so it can stay in place while threads run.
 */
#include "alloc_count.h"

#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* glibc's own allocator, exported for exactly this use. */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static _Atomic uint64_t calls;
static _Atomic int64_t live, peak;

uint64_t alloc_calls(void) { return atomic_load_explicit(&calls, memory_order_relaxed); }
int64_t alloc_live(void) { return atomic_load_explicit(&live, memory_order_relaxed); }
int64_t alloc_peak(void) { return atomic_load_explicit(&peak, memory_order_relaxed); }
void alloc_peak_reset(void) { atomic_store(&peak, atomic_load(&live)); }

static void *track(void *p) {
  if (!p) return p;
  atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
  int64_t now =
      atomic_fetch_add_explicit(&live, (int64_t)malloc_usable_size(p), memory_order_relaxed) +
      (int64_t)malloc_usable_size(p);
  int64_t cur = atomic_load_explicit(&peak, memory_order_relaxed);
  while (now > cur && !atomic_compare_exchange_weak_explicit(&peak, &cur, now, memory_order_relaxed,
                                                             memory_order_relaxed)) {
  }
  return p;
}

static void untrack(void *p) {
  if (p) atomic_fetch_sub_explicit(&live, (int64_t)malloc_usable_size(p), memory_order_relaxed);
}

void *malloc(size_t n) { return track(__libc_malloc(n)); }

void free(void *p) {
  untrack(p);
  __libc_free(p);
}

void *calloc(size_t n, size_t m) { return track(__libc_calloc(n, m)); }

void *realloc(void *p, size_t n) {
  size_t old = p ? malloc_usable_size(p) : 0;
  void *q = __libc_realloc(p, n);
  if (!q) {
    if (n == 0) atomic_fetch_sub_explicit(&live, (int64_t)old, memory_order_relaxed); /* freed */
    return q;
  }
  atomic_fetch_sub_explicit(&live, (int64_t)old, memory_order_relaxed);
  return track(q);
}

void *memalign(size_t align, size_t n) { return track(__libc_memalign(align, n)); }

void *aligned_alloc(size_t align, size_t n) { return track(__libc_memalign(align, n)); }

int posix_memalign(void **out, size_t align, size_t n) {
  if (align % sizeof(void *) != 0 || (align & (align - 1)) != 0) return EINVAL;
  void *p = __libc_memalign(align, n);
  if (!p) return ENOMEM;
  *out = track(p);
  return 0;
}
