/*
 * Allocation accounting for the bench programs, without LD_PRELOAD.
 *
 * alloc_count.c defines malloc, free, calloc, realloc and the aligned
 * variants in the executable itself. ELF symbol interposition makes every
 * allocation of the process go through them - the library's, zlib's, cJSON's
 * and libc's own - and they forward to glibc's __libc_* entry points after
 * counting calls and live bytes (malloc_usable_size, so the figures include
 * the allocator's rounding). Programs that link it must not be built with a
 * sanitizer (the sanitizers replace malloc themselves).
 */
#ifndef SPECTATOR_BENCH_ALLOC_COUNT_H
#define SPECTATOR_BENCH_ALLOC_COUNT_H

#include <stddef.h>
#include <stdint.h>

/* Number of allocating calls (malloc, calloc, realloc, aligned) so far. */
uint64_t alloc_calls(void);
/* Bytes currently allocated (usable sizes). */
int64_t alloc_live(void);
/* Highest alloc_live() since the last alloc_peak_reset(). */
int64_t alloc_peak(void);
void alloc_peak_reset(void);

#endif
