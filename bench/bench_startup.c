/*
 * What a process pays for linking spectator-c when it never
 * records. Runs idle_none (not linked), idle_static and idle_shared (linked,
 * never called; see idle.c), idle_curl (linked to libcurl alone) and idle_deps
 * (linked to libcurl, zlib and cJSON) alternately, R times each, and reports
 * the median wall time of fork + exec + exit + wait, and what each program
 * sees at main(): threads, heap in use, mappings, shared objects.
 *
 * idle_deps is the price of loading the three libraries at exec: roughly what
 * idle_static and idle_shared pay on top of their own cost when the library
 * is built with SPECTATOR_DLOPEN_DEPS=OFF; idle_curl shows how much of it is
 * libcurl's. With the default build they load none of them (the first
 * publisher start does): idle_static should then match idle_none in shared
 * objects, and idle_shared have one more (libspectator.so itself).
 *
 *   bench_startup <dir holding the idle_* programs>
 */
#include <spawn.h>
#include <sys/wait.h>

#include "bench.h"

extern char **environ;

static const char *const progs[] = {"idle_none", "idle_static", "idle_shared", "idle_curl",
                                    "idle_deps"};
#define NPROGS 5

static double run_once(const char *path) {
  char *argv[] = {(char *)path, NULL};
  int64_t t0 = bench_now_ns();
  pid_t pid;
  if (posix_spawn(&pid, path, NULL, NULL, argv, environ) != 0) {
    perror(path);
    exit(1);
  }
  int st;
  waitpid(pid, &st, 0);
  return (double)(bench_now_ns() - t0) / 1e3;
}

static void report(const char *path, char *out, size_t size) {
  char cmd[4200 * NPROGS];
  snprintf(cmd, sizeof(cmd), "'%s' --report", path);
  FILE *p = popen(cmd, "r");
  if (!p || !fgets(out, (int)size, p)) snprintf(out, size, "? ? ? ? ?");
  if (p) pclose(p);
  out[strcspn(out, "\n")] = '\0';
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr,
            "usage: %s <dir with idle_none, idle_static, idle_shared, idle_curl, idle_deps>\n",
            argv[0]);
    return 2;
  }
  int rounds = bench_env_int("BENCH_ROUNDS", 9) * 25;
  char path[NPROGS][4096];
  for (int i = 0; i < NPROGS; i++) snprintf(path[i], sizeof(path[i]), "%s/%s", argv[1], progs[i]);
  double *t = calloc((size_t)NPROGS * (size_t)rounds, sizeof(double));
  if (!t) return 1;
  for (int i = 0; i < NPROGS; i++) run_once(path[i]); /* warm the page cache */
  for (int r = 0; r < rounds; r++) {
    /* Untimed: a spawn right after one of the heavy programs (idle_curl,
     * idle_deps: 180 mappings to tear down) takes some 50 us longer, which
     * would inflate the baseline, idle_none, every round. */
    run_once(path[0]);
    for (int i = 0; i < NPROGS; i++) t[i * rounds + r] = run_once(path[i]);
  }

  bench_header("Cost when linked but unused");
  printf("%d runs of each, alternating, each round after an untimed idle_none; time = "
         "posix_spawn to waitpid; the program references spectator-c but never calls it\n\n",
         rounds);
  printf("| program | start+exit (us) | x not linked | threads | heap in use at main (B) | "
         "heap arena (B) | mappings | shared objects |\n");
  printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
  int thr[NPROGS], objs[NPROGS];
  size_t heap[NPROGS];
  for (int i = 0; i < NPROGS; i++) {
    char line[256];
    report(path[i], line, sizeof(line));
    int maps = -1;
    size_t arena = 0;
    thr[i] = objs[i] = -1;
    heap[i] = 0;
    sscanf(line, "%d %zu %zu %d %d", &thr[i], &heap[i], &arena, &maps, &objs[i]);
    printf("| %s | %.0f | %.2f | %d | %zu | %zu | %d | %d |\n", progs[i],
           bench_median(&t[i * rounds], rounds), bench_median_ratio(&t[i * rounds], &t[0], rounds),
           thr[i], heap[i], arena, maps, objs[i]);
  }
  bool no_thread = thr[1] == 1 && thr[2] == 1;
  bool no_alloc_static = heap[1] == heap[0];
  bool no_alloc_shared = heap[2] == heap[0];
  /* Linking may add spectator-c itself (libspectator.so), nothing else. */
  bool no_obj_static = objs[1] == objs[0];
  bool no_obj_shared = objs[2] == objs[0] + 1;
  double d_static = bench_median(&t[1 * rounds], rounds) - bench_median(&t[0], rounds);
  double d_shared = bench_median(&t[2 * rounds], rounds) - bench_median(&t[0], rounds);
  double d_curl = bench_median(&t[3 * rounds], rounds) - bench_median(&t[0], rounds);
  double d_deps = bench_median(&t[4 * rounds], rounds) - bench_median(&t[0], rounds);
  printf("\nno thread: %s; no allocation: static %s, shared %s; no shared object but "
         "spectator-c's: static %s, shared %s; start-up cost over not linked: static %+.0f us, "
         "shared %+.0f us (libcurl alone: %+.0f us, %zu B of heap; libcurl, zlib and cJSON: "
         "%+.0f us, %zu B of heap)\n",
         bench_verdict(no_thread), bench_verdict(no_alloc_static), bench_verdict(no_alloc_shared),
         bench_verdict(no_obj_static), bench_verdict(no_obj_shared), d_static, d_shared, d_curl,
         heap[3], d_deps, heap[4]);
  free(t);
  return 0;
}
