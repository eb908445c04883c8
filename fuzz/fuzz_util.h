/*
 * Helpers shared by the libFuzzer harnesses (header only).
 *
 * FUZZ_CHECK(cond) aborts with a message when an invariant does not hold, so
 * libFuzzer records the input as a crash. fuzz_split() cuts the input into
 * NUL-terminated strings at each 0 byte (the strings never contain a NUL, as C
 * strings passed to the library cannot).
 */
#ifndef SPECTATOR_FUZZ_UTIL_H
#define SPECTATOR_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spectator.h"

#define FUZZ_CHECK(cond)                                                           \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                     \
    }                                                                              \
  } while (0)

/* Up to max strings cut from data at each 0 byte; *n is how many. The copy in
 * *buf (free it) holds the strings. */
static inline char **fuzz_split(const uint8_t *data, size_t size, size_t max, size_t *n,
                                char **buf) {
  *buf = malloc(size + 1);
  char **out = calloc(max + 1, sizeof(char *));
  *n = 0;
  if (!*buf || !out) {
    free(*buf);
    free(out);
    *buf = NULL;
    return NULL;
  }
  memcpy(*buf, data, size);
  (*buf)[size] = '\0';
  char *p = *buf, *end = *buf + size;
  while (*n < max && p <= end) {
    out[(*n)++] = p;
    p += strlen(p) + 1;
  }
  return out;
}

/* Logging: keep the fuzzer's output readable, but format every message. */
static inline void fuzz_quiet_log(spectator_log_level_t level, const char *logger,
                                  const char *message, void *ctx) {
  (void)level;
  (void)ctx;
  FUZZ_CHECK(logger && message);
  /* Messages are single lines without control characters. */
  for (const char *p = message; *p; p++) FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
  FUZZ_CHECK(strlen(message) < 1024);
}

static inline void fuzz_init_logging(void) {
  spectator_log_set_handler(fuzz_quiet_log, NULL);
  spectator_log_set_level(SPECTATOR_LOG_DEBUG);
}

#endif
