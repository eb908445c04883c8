/*
 * Process metrics, opt-in (cfg.process_metrics, SPECTATOR_PROCESS_METRICS=1):
 * the figures every service graph starts with, built on polled meters, named
 * as Atlas suggests (camelCase, base units):
 *
 *   process.cpu.time{id=user|system}  poll monotonic counter: CPU seconds (its
 *                                     rate is the cores in use)
 *   process.memory.resident           poll gauge: resident set size, bytes
 *   process.openFileDescriptors       poll gauge
 *   process.maxFileDescriptors        poll gauge: the soft limit (none when
 *                                     unlimited)
 *   process.threadCount               poll gauge
 *   spectator.publish.time            poll monotonic counter: seconds this
 *                                     registry spent publishing
 *   spectator.publish.bytes           poll monotonic counter: bytes of request
 *                                     bodies it sent, retries included
 *
 * Each reading is one system call, or one read of a /proc/self file into a
 * buffer on the stack: nothing is allocated. They run where every poller
 * runs, on the snapshotting thread at the start of a snapshot, never on a
 * recording path. The publishing cost is read from the publisher's counters
 * without a lock. Where the system cannot tell (no /proc), a reading is NaN
 * and nothing is reported.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

#include "log.h"
#include "poller.h"
#include "process_metrics.h"
#include "publisher.h"

/* ------------------------------------------------------------------------ */
/* Readings                                                                  */
/* ------------------------------------------------------------------------ */

double spectator__process_cpu_seconds(bool system) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return NAN;
  const struct timeval *tv = system ? &ru.ru_stime : &ru.ru_utime;
  return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

/* Read a small file into buf (NUL-terminated); its length, or -1. */
static ssize_t read_small_file(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  while (len < size - 1) {
    ssize_t r = read(fd, buf + len, size - 1 - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      close(fd);
      return -1;
    }
    if (r == 0) break;
    len += (size_t)r;
  }
  close(fd);
  buf[len] = '\0';
  return (ssize_t)len;
}

/* The n-th space-separated decimal field of s (0-based); NaN when absent. */
static double field(const char *s, int n) {
  for (int i = 0; i < n; i++) {
    s = strchr(s, ' ');
    if (!s) return NAN;
    s++;
  }
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  return end == s || errno ? NAN : (double)v;
}

double spectator__process_resident_bytes(void) {
  char buf[256];
  if (read_small_file("/proc/self/statm", buf, sizeof(buf)) <= 0) return NAN;
  long page = sysconf(_SC_PAGESIZE);
  return page > 0 ? field(buf, 1) * (double)page : NAN;
}

double spectator__process_threads(void) {
  char buf[1024];
  if (read_small_file("/proc/self/stat", buf, sizeof(buf)) <= 0) return NAN;
  /* The command name (field 2) is in parentheses and may hold spaces and
   * parentheses: fields are counted from the last ')'. num_threads is field
   * 20, the 18th after it. */
  const char *close_paren = strrchr(buf, ')');
  if (!close_paren || close_paren[1] != ' ') return NAN;
  return field(close_paren + 2, 17);
}

double spectator__process_open_fds(void) {
#ifdef __linux__
  int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return NAN;
  /* getdents64 instead of opendir(), which allocates. */
  _Alignas(8) char buf[4096];
  double n = 0;
  for (;;) {
    long len = syscall(SYS_getdents64, dir, buf, sizeof(buf));
    if (len < 0 && errno == EINTR) continue;
    if (len < 0) {
      n = NAN;
      break;
    }
    if (len == 0) break;
    for (long off = 0; off < len;) {
      /* struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name */
      unsigned short reclen;
      memcpy(&reclen, buf + off + 16, sizeof(reclen));
      const char *name = buf + off + 19;
      off += reclen;
      if (name[0] == '.') continue; /* "." and ".." */
      char *end;
      long fd = strtol(name, &end, 10);
      if (*end == '\0' && fd != dir) n++; /* the descriptor reading them is not counted */
    }
  }
  close(dir);
  return n;
#else
  return NAN;
#endif
}

double spectator__process_max_fds(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return NAN;
  return (double)rl.rlim_cur;
}

/* ------------------------------------------------------------------------ */
/* Pollers                                                                   */
/* ------------------------------------------------------------------------ */

static double poll_user(void *ctx) {
  (void)ctx;
  return spectator__process_cpu_seconds(false);
}
static double poll_system(void *ctx) {
  (void)ctx;
  return spectator__process_cpu_seconds(true);
}
static double poll_resident(void *ctx) {
  (void)ctx;
  return spectator__process_resident_bytes();
}
static double poll_open_fds(void *ctx) {
  (void)ctx;
  return spectator__process_open_fds();
}
static double poll_max_fds(void *ctx) {
  (void)ctx;
  return spectator__process_max_fds();
}
static double poll_threads(void *ctx) {
  (void)ctx;
  return spectator__process_threads();
}
static double poll_publish_time(void *ctx) {
  uint64_t ns, bytes;
  spectator__publisher_cost(ctx, &ns, &bytes);
  return (double)ns / 1e9;
}
static double poll_publish_bytes(void *ctx) {
  uint64_t ns, bytes;
  spectator__publisher_cost(ctx, &ns, &bytes);
  return (double)bytes;
}

void spectator__process_metrics_register(spectator_registry_t *reg) {
  static const struct {
    const char *name;
    const char *id; /* value of the id tag, or NULL */
    bool counter;   /* poll monotonic counter, else poll gauge */
    spectator_poll_fn fn;
    bool with_reg; /* fn reads the registry */
  } list[] = {
      {"process.cpu.time", "user", true, poll_user, false},
      {"process.cpu.time", "system", true, poll_system, false},
      {"process.memory.resident", NULL, false, poll_resident, false},
      {"process.openFileDescriptors", NULL, false, poll_open_fds, false},
      {"process.maxFileDescriptors", NULL, false, poll_max_fds, false},
      {"process.threadCount", NULL, false, poll_threads, false},
      {"spectator.publish.time", NULL, true, poll_publish_time, true},
      {"spectator.publish.bytes", NULL, true, poll_publish_bytes, true},
  };
  for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
    const char *const tags[] = {"id", list[i].id, NULL};
    void *ctx = list[i].with_reg ? reg : NULL;
    spectator_poller_t *p = spectator__poll_self(reg, list[i].counter, list[i].name,
                                                 list[i].id ? tags : NULL, list[i].fn, ctx);
    if (!p)
      spectator__log(SPECTATOR_LOG_WARN, SPECTATOR_LOGGER_INIT,
                     "process metric %s is not reported (see the line above)", list[i].name);
  }
}
