/*
 * The per-process seed of the id and string hashes (hash.h).
 *
 * With a seed every process shares, anyone can compute offline which tag
 * values land in one slot of the lookup table and send them (as header
 * values, user names...) to make every lookup walk a long chain. A seed drawn
 * from the operating system at the first hash makes that precomputation
 * useless. It is drawn once: ids keep their hash for life, so the seed never
 * changes afterwards, and a forked child keeps its parent's (its ids and
 * tables come from the parent).
 *
 * No lock: the first hash of each thread that sees 0 draws a seed and tries
 * to install it with a compare-and-swap; the first one installed wins and the
 * others use it. getrandom(2) is asked not to block (GRND_NONBLOCK): a lookup
 * must not wait for the kernel's entropy pool at early boot. When it fails
 * (an old kernel, a seccomp filter, early boot), the seed is mixed from the
 * wall and monotonic clocks, the process id and a few addresses (which ASLR
 * randomizes): weaker, but still not computable offline by a remote sender.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"

_Atomic uint64_t spectator__hash_seed_value;

/* splitmix64's finalizer: every input bit reaches every output bit. */
static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static uint64_t timespec_ns(clockid_t id) {
  struct timespec ts = {0, 0};
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A seed from the OS; 0 and *err set when getrandom(2) cannot give one. */
static uint64_t os_seed(int *err) {
  uint64_t s = 0;
  for (int attempt = 0; attempt < 3; attempt++) {
    ssize_t n = getrandom(&s, sizeof(s), GRND_NONBLOCK);
    if (n == (ssize_t)sizeof(s)) return s;
    *err = n < 0 ? errno : EIO;
    if (n >= 0 || errno != EINTR) break;
  }
  return 0;
}

static uint64_t fallback_seed(void) {
  int local = 0;
  uint64_t s = mix(timespec_ns(CLOCK_REALTIME));
  s = mix(s ^ timespec_ns(CLOCK_MONOTONIC));
  s = mix(s ^ (uint64_t)getpid());
  s = mix(s ^ (uint64_t)(uintptr_t)&local);
  s = mix(s ^ (uint64_t)(uintptr_t)&spectator__hash_seed_value);
  s = mix(s ^ (uint64_t)(uintptr_t)&clock_gettime);
  return s;
}

uint64_t spectator__hash_seed_init(void) {
  int err = 0;
  uint64_t s = os_seed(&err);
  if (!s) s = fallback_seed();
  if (!s) s = SPECTATOR__HASH_FIXED_SEED; /* 0 means "not drawn yet" */
  uint64_t expected = 0;
  if (!atomic_compare_exchange_strong(&spectator__hash_seed_value, &expected, s))
    return expected; /* another thread's seed is the one */
  if (err) {
    char buf[128];
    spectator__log(SPECTATOR_LOG_INFO, SPECTATOR_LOGGER_INIT,
                   "getrandom failed (%s): the id hash is seeded from the clocks, the process id "
                   "and addresses instead",
                   strerror_r(err, buf, sizeof(buf))); /* the GNU strerror_r */
  }
  return s;
}

void spectator__hash_set_seed(uint64_t seed) {
  int err = 0;
  if (!seed) seed = os_seed(&err);
  if (!seed) seed = fallback_seed();
  atomic_store(&spectator__hash_seed_value, seed ? seed : SPECTATOR__HASH_FIXED_SEED);
}
