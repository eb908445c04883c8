/* Internal: Spectator's percentile buckets (bucket layout, index lookup, percentile estimates).
 *
 * Every function here is pure: no lock, no allocation, no syscall, no shared mutable state, so
 * all of them may be called from any thread at any time, including on the recording hot path.
 */
#ifndef SPECTATOR_PERCENTILE_BUCKETS_H
#define SPECTATOR_PERCENTILE_BUCKETS_H

#include <stddef.h>
#include <stdint.h>

/* Number of buckets; indexes run 0..SPECTATOR__PCT_LENGTH-1. */
#define SPECTATOR__PCT_LENGTH 276

/* Index of the bucket that counts v, identical to Spectator's PercentileBuckets.indexOf for
 * every int64: 0 for v <= 0, v for 1 <= v <= 4, otherwise (nearly always) the first bucket whose
 * upper boundary is strictly greater than v, and 275 from 4227378850225105576 up to INT64_MAX.
 * Quirk kept from Java: 15 and the three values just below each power of 4 from 64 up
 * (61..63, 253..255, ...) land one bucket higher than that rule says. */
size_t spectator__pct_index_of(int64_t v);

/* Upper boundary of bucket i (0..275); i out of range returns INT64_MAX. */
int64_t spectator__pct_bucket(size_t i);

/* Estimate percentiles from the 276 bucket counts as Spectator's
 * percentiles(long[] counts, double[] pcts, double[] results) does: find the first bucket whose
 * cumulative share reaches the percentile and interpolate linearly between the previous bucket's
 * boundary (0 for bucket 0) and this bucket's boundary. Writes results[0..n-1]. pcts need not be
 * sorted (each is computed on its own); values outside 0..100 are clamped, a NaN gives NaN.
 * All-zero counts give 0 for every percentile (Java would give NaN). counts, pcts and results
 * must not be NULL unless n is 0; the sum of the counts must fit in a uint64_t. */
void spectator__pct_percentiles(const uint64_t counts[SPECTATOR__PCT_LENGTH], const double *pcts,
                                size_t n, double *results);

/* Convenience: a single percentile, as spectator__pct_percentiles with n = 1. */
double spectator__pct_percentile(const uint64_t counts[SPECTATOR__PCT_LENGTH], double pct);

/* Write the percentile tag value for bucket i: prefix ('T' for timers, 'D' for distribution
 * summaries) then the index as 4 upper-case hex digits and a NUL, e.g. "T002A". buf must hold
 * 6 bytes. Only the low 16 bits of i are written (valid indexes are 0..275). */
void spectator__pct_tag(char prefix, size_t i, char buf[6]);

#endif /* SPECTATOR_PERCENTILE_BUCKETS_H */
