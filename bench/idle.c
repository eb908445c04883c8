/*
 * A program that links spectator-c and never records.
 *
 * Built five times from this file: idle_none (no library), idle_static
 * (libspectator.a), idle_shared (libspectator.so), idle_curl (libcurl alone)
 * and idle_deps (libcurl, zlib and cJSON). The last two are what linking those
 * libraries costs a program: spectator-c avoids it by loading them at its
 * first publisher start, unless it is built with SPECTATOR_DLOPEN_DEPS=OFF,
 * in which case idle_static and idle_shared pay about what idle_deps does on
 * top of their own cost. With IDLE_LINKED (IDLE_CURL, IDLE_DEPS) the program
 * references the libraries (a call behind a condition that is never true, so
 * the linker keeps them) but never calls them.
 *
 *   idle            exits at once (timed by bench_startup)
 *   idle --report   prints: threads in /proc/self/task, heap in use
 *                   (mallinfo2), number of mappings, shared objects loaded
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <link.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#ifdef IDLE_LINKED
#include "spectator.h"
#endif
#if defined(IDLE_CURL) || defined(IDLE_DEPS)
#include <curl/curl.h>
#endif
#ifdef IDLE_DEPS
#include <cjson/cJSON.h>
#include <zlib.h>
#endif

static int count_dir(const char *path) {
  DIR *d = opendir(path);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static int count_lines(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int n = 0, c;
  while ((c = fgetc(f)) != EOF)
    if (c == '\n') n++;
  fclose(f);
  return n;
}

static int count_object(struct dl_phdr_info *info, size_t size, void *data) {
  (void)info;
  (void)size;
  ++*(int *)data;
  return 0;
}

int main(int argc, char **argv) {
#ifdef IDLE_LINKED
  if (argc > 1000) spectator_counter_increment(spectator_counter("never", NULL));
#endif
#if defined(IDLE_CURL) || defined(IDLE_DEPS)
  if (argc > 1000) curl_easy_cleanup(curl_easy_init());
#endif
#ifdef IDLE_DEPS
  if (argc > 1000) printf("%s %s\n", zlibVersion(), cJSON_Version());
#endif
  if (argc > 1 && strcmp(argv[1], "--report") == 0) {
    /* Taken first, before this report allocates anything itself. */
    struct mallinfo2 mi = mallinfo2();
    int threads = count_dir("/proc/self/task");
    int objects = 0;
    dl_iterate_phdr(count_object, &objects);
    int maps = count_lines("/proc/self/maps");
    printf("%d %zu %zu %d %d\n", threads, mi.uordblks, mi.arena + mi.hblkhd, maps, objects);
  }
  return 0;
}
