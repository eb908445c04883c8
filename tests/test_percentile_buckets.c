/* Unit tests for src/percentile_buckets.c: the bucket table, index_of, percentile estimates and
 * the percentile tag values.
 *
 * The test keeps its own copy of the bucket table, regenerated here from the description in
 * Spectator's PercentileBuckets (and from a step-by-step emulation of Java's generator, overflow included), and
 * checks index_of against a plain binary search over that copy.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "percentile_buckets.h"

#define LEN SPECTATOR__PCT_LENGTH

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */

/* Fail with both operands printed when two doubles are not identical. */
#define assert_double_exact(actual, expected)                                                    \
    do {                                                                                         \
        double a_ = (actual), e_ = (expected);                                                   \
        if (!(a_ == e_)) {                                                                       \
            print_error("%s = %.17g, expected exactly %.17g\n", #actual, a_, e_);                \
            fail();                                                                              \
        }                                                                                        \
    } while (0)

/* Fail when |actual - expected| > tol. */
#define assert_double_near(actual, expected, tol)                                                \
    do {                                                                                         \
        double a_ = (actual), e_ = (expected);                                                   \
        if (!(fabs(a_ - e_) <= (tol))) {                                                         \
            print_error("%s = %.17g, expected %.17g +/- %g\n", #actual, a_, e_, (double)(tol));  \
            fail();                                                                              \
        }                                                                                        \
    } while (0)

/* Fail with the input printed when index_of(v) differs from want. */
static void check_index(int64_t v, size_t want)
{
    size_t got = spectator__pct_index_of(v);
    if (got != want) {
        print_error("index_of(%lld) = %zu, expected %zu\n", (long long)v, got, want);
        fail();
    }
}

/* Two's complement reinterpretation without implementation-defined conversions. */
static int64_t as_int64(uint64_t u)
{
    return u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
}

/* Java's signed 64-bit "a < b" on values held as two's complement bit patterns. */
static int java_less(uint64_t a, uint64_t b)
{
    const uint64_t sign = (uint64_t)1 << 63;
    return (a ^ sign) < (b ^ sign);
}

/* splitmix64: a small fixed-seed generator, so every run tests the same values. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* ---------------------------------------------------------------------------------------------
 * Independent reference table and index
 */

static int64_t ref_table[LEN];

/* Spectator's layout: 1, 2, 3; for e = 2, 4, ..., 60 start at 2^e, step 2^e / 3, append while below
 * 4 * 2^e - step; finally 2^63 - 1. Returns the number of entries written (at most max). */
static size_t generate_from_spec(int64_t *out, size_t max)
{
    size_t n = 0;
    for (int64_t v = 1; v <= 3; v++) {
        if (n < max) out[n] = v;
        n++;
    }
    for (int e = 2; e <= 60; e += 2) {
        int64_t start = (int64_t)1 << e;
        int64_t step = start / 3;
        int64_t limit = 4 * start - step; /* 4 * 2^60 < 2^63: no overflow */
        for (int64_t v = start; v < limit; v += step) {
            if (n < max) out[n] = v;
            n++;
        }
    }
    if (n < max) out[n] = INT64_MAX;
    n++;
    return n;
}

/* Java's static initializer replayed with 64-bit wrap-around: exp runs 2, 4, ..., 62 and at 62
 * "(current << 2) - delta" wraps to a negative number, so that run adds nothing. */
static size_t generate_like_java(int64_t *out, size_t max)
{
    size_t n = 0;
    for (int64_t v = 1; v <= 3; v++) {
        if (n < max) out[n] = v;
        n++;
    }
    for (int exp = 2; exp < 64; exp += 2) {
        uint64_t current = (uint64_t)1 << exp;
        uint64_t delta = current / 3; /* current >= 0 as a Java long for exp <= 62 */
        uint64_t next = (current << 2) - delta;
        while (java_less(current, next)) {
            if (n < max) out[n] = as_int64(current);
            n++;
            current += delta;
        }
    }
    if (n < max) out[n] = INT64_MAX;
    n++;
    return n;
}

/* First index whose boundary is strictly greater than v, or LEN - 1 if there is none. */
static size_t first_bucket_above(int64_t v)
{
    size_t lo = 0, hi = LEN; /* answer in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ref_table[mid] > v) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return lo < LEN ? lo : LEN - 1;
}

/* Values where Java's indexOf is one bucket higher than "first boundary > v".
 *
 * indexOf computes offset = (v - base) / delta inside the run of base = 4^k and assumes the run
 * has a boundary at every base + m * delta. The generator stops each run early (while the value
 * is below 4 * base - delta), so the step that would sit at 4 * base - 3 (for base >= 16, i.e.
 * base + 9 * delta) or at 15 (for base 4, i.e. 4 + 11 * 1) does not exist; values from that
 * step up to 4 * base - 1 get offset 9 (or 11) and are sent one bucket past 4 * base. So 15,
 * 61..63, 253..255, ..., 4^k - 3 .. 4^k - 1 are shifted. Java's behaviour wins: index_of must
 * reproduce it. (At 4^31 = 2^62 the shift is absorbed by the clamp to the last bucket.) */
static int java_shifts_up(int64_t v)
{
    if (v == 15) {
        return 1;
    }
    for (int k = 3; k <= 31; k++) {
        int64_t power = (int64_t)1 << (2 * k);
        if (v >= power - 3 && v <= power - 1) {
            return 1;
        }
    }
    return 0;
}

/* The relation Spectator's indexOf satisfies: 0 for v <= 0 (bucket 0, boundary 1, is the first
 * above v), otherwise the first bucket whose boundary is strictly greater than v (the bucket
 * holding v is [boundary(i-1), boundary(i))), plus Java's shift above, clamped to the last
 * bucket. Note: strictly greater, not ">=": indexOf(5) is 5 (boundary 6), not 4 (boundary 5);
 * and 4227378850225105576, itself a boundary, already maps to 275. */
static size_t reference_index_of(int64_t v)
{
    size_t i = first_bucket_above(v) + (size_t)java_shifts_up(v);
    return i < LEN ? i : LEN - 1;
}

static int setup_reference(void **state)
{
    (void)state;
    size_t n = generate_from_spec(ref_table, LEN);
    return n == LEN ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------------
 * Table
 */

static void table_has_276_strictly_increasing_entries(void **state)
{
    (void)state;
    assert_int_equal(LEN, 276);
    assert_true(spectator__pct_bucket(0) == 1);
    assert_true(spectator__pct_bucket(1) == 2);
    assert_true(spectator__pct_bucket(2) == 3);
    assert_true(spectator__pct_bucket(3) == 4);
    for (size_t i = 1; i < LEN; i++) {
        if (!(spectator__pct_bucket(i - 1) < spectator__pct_bucket(i))) {
            print_error("bucket %zu is not above bucket %zu\n", i, i - 1);
            fail();
        }
    }
    assert_true(spectator__pct_bucket(274) == INT64_C(4227378850225105576));
    assert_true(spectator__pct_bucket(275) == INT64_C(9223372036854775807));
}

static void bucket_out_of_range_returns_int64_max(void **state)
{
    (void)state;
    assert_true(spectator__pct_bucket(LEN) == INT64_MAX);
    assert_true(spectator__pct_bucket(LEN + 1000) == INT64_MAX);
    assert_true(spectator__pct_bucket(SIZE_MAX) == INT64_MAX);
}

static void table_equals_one_regenerated_from_spec(void **state)
{
    (void)state;
    int64_t spec[LEN + 8];
    assert_int_equal(generate_from_spec(spec, LEN + 8), LEN);
    for (size_t i = 0; i < LEN; i++) {
        if (spectator__pct_bucket(i) != spec[i]) {
            print_error("bucket %zu = %lld, regenerated %lld\n", i,
                        (long long)spectator__pct_bucket(i), (long long)spec[i]);
            fail();
        }
    }
}

static void table_equals_java_generator_with_its_overflow_at_4_pow_31(void **state)
{
    (void)state;
    int64_t java[LEN + 8];
    assert_int_equal(generate_like_java(java, LEN + 8), LEN);
    for (size_t i = 0; i < LEN; i++) {
        assert_true(spectator__pct_bucket(i) == java[i]);
    }
}

/* ---------------------------------------------------------------------------------------------
 * index_of
 */

static void index_of_zero_is_zero(void **state)
{
    (void)state;
    check_index(0, 0);
}

static void index_of_negative_values_is_zero(void **state)
{
    (void)state;
    check_index(-1, 0);
    check_index(-4, 0);
    check_index(-1000000, 0);
    check_index(INT64_MIN + 1, 0);
    check_index(INT64_MIN, 0);
}

static void index_of_one_to_four_is_the_value_itself(void **state)
{
    (void)state;
    for (int64_t v = 1; v <= 4; v++) {
        check_index(v, (size_t)v);
    }
}

static void index_of_hand_picked_values_matches_java(void **state)
{
    (void)state;
    check_index(5, 5);     /* boundary 6: v goes to the first boundary strictly above it */
    check_index(14, 14);   /* boundary 16 */
    check_index(15, 15);   /* Java quirk: boundary 21, not 16 */
    check_index(16, 15);   /* boundary 21 */
    check_index(56, 23);   /* boundary 64 */
    check_index(60, 23);   /* boundary 64 */
    check_index(61, 24);   /* Java quirk: boundary 85, not 64 */
    check_index(63, 24);   /* Java quirk */
    check_index(64, 24);   /* boundary 85 */
    check_index(87, 25);   /* boundary 106 */
    check_index(252, 32);  /* boundary 256 */
    check_index(253, 33);  /* Java quirk: boundary 341 */
    check_index(INT64_C(4227378850225105575), 274);
    check_index(INT64_C(4227378850225105576), 275);
    check_index(INT64_C(4227378850225105577), 275);
    check_index((INT64_C(1) << 62) - 1, 275);
    check_index(INT64_C(1) << 62, 275);
    check_index(INT64_MAX - 1, 275);
    check_index(INT64_MAX, 275);
}

static void index_of_matches_reference_around_every_boundary(void **state)
{
    (void)state;
    for (size_t i = 0; i < LEN; i++) {
        int64_t b = ref_table[i];
        check_index(b, reference_index_of(b));
        check_index(b - 1, reference_index_of(b - 1)); /* b >= 1 */
        if (b < INT64_MAX) {
            check_index(b + 1, reference_index_of(b + 1));
        }
    }
}

static void index_of_matches_reference_around_every_power_of_two(void **state)
{
    (void)state;
    for (int s = 0; s <= 62; s++) {
        int64_t p = (int64_t)1 << s;
        for (int64_t d = -4; d <= 4; d++) {
            if (d > 0 && p > INT64_MAX - d) {
                break;
            }
            check_index(p + d, reference_index_of(p + d));
        }
    }
}

static void index_of_matches_reference_for_every_value_below_100000(void **state)
{
    (void)state;
    for (int64_t v = -10; v < 100000; v++) {
        check_index(v, reference_index_of(v));
    }
}

static void index_of_matches_reference_for_four_million_random_values(void **state)
{
    (void)state;
    uint64_t seed = UINT64_C(0x5EC7A70C);
    for (int n = 0; n < 4000000; n++) {
        uint64_t bits = rng_next(&seed);
        unsigned shift = (unsigned)(rng_next(&seed) & 63u);
        /* shift 0 keeps the sign bit half the time; larger shifts spread over all magnitudes */
        int64_t v = as_int64(bits >> shift);
        check_index(v, reference_index_of(v));
    }
}

/* ---------------------------------------------------------------------------------------------
 * Percentiles
 */

static void percentiles_of_empty_counts_are_zero(void **state)
{
    (void)state;
    uint64_t counts[LEN] = {0};
    const double pcts[] = {0.0, 50.0, 99.9, 100.0};
    double results[4] = {-1.0, -1.0, -1.0, -1.0};
    spectator__pct_percentiles(counts, pcts, 4, results);
    for (int j = 0; j < 4; j++) {
        assert_double_exact(results[j], 0.0);
    }
}

static void percentiles_of_counts_all_in_bucket_zero_interpolate_from_zero_to_one(void **state)
{
    (void)state;
    uint64_t counts[LEN] = {0};
    counts[0] = 10;
    assert_double_exact(spectator__pct_percentile(counts, 0.0), 0.0);
    assert_double_exact(spectator__pct_percentile(counts, 25.0), 0.25);
    assert_double_exact(spectator__pct_percentile(counts, 50.0), 0.5);
    assert_double_exact(spectator__pct_percentile(counts, 100.0), 1.0);
}

static void percentiles_of_a_single_bucket_interpolate_between_its_two_boundaries(void **state)
{
    (void)state;
    uint64_t counts[LEN] = {0};
    counts[10] = 4; /* boundaries 10 (previous bucket) .. 11 */
    /* p = 0 is reached at bucket 0 with a 0/0 factor, which Java turns into 0 */
    assert_double_exact(spectator__pct_percentile(counts, 0.0), 0.0);
    assert_double_exact(spectator__pct_percentile(counts, 25.0), 10.25);
    assert_double_exact(spectator__pct_percentile(counts, 50.0), 10.5);
    assert_double_exact(spectator__pct_percentile(counts, 75.0), 10.75);
    assert_double_exact(spectator__pct_percentile(counts, 100.0), 11.0);
}

static void percentiles_of_two_buckets_interpolate_inside_the_right_one(void **state)
{
    (void)state;
    uint64_t counts[LEN] = {0};
    counts[3] = 1; /* 25 %: boundaries 3 .. 4 */
    counts[5] = 3; /* 75 %: boundaries 5 .. 6 (bucket 4 is empty) */
    assert_double_exact(spectator__pct_percentile(counts, 12.5), 3.5);
    assert_double_exact(spectator__pct_percentile(counts, 25.0), 4.0);
    assert_double_exact(spectator__pct_percentile(counts, 62.5), 5.5);
    assert_double_exact(spectator__pct_percentile(counts, 100.0), 6.0);
    /* inexact factors: 10 / 25 and 25 / 75 */
    assert_double_near(spectator__pct_percentile(counts, 10.0), 3.4, 1e-12);
    assert_double_near(spectator__pct_percentile(counts, 50.0), 5.0 + 1.0 / 3.0, 1e-12);
}

static void percentiles_in_one_call_match_single_calls_in_any_order(void **state)
{
    (void)state;
    uint64_t counts[LEN] = {0};
    counts[3] = 1;
    counts[5] = 3;
    const double pcts[] = {100.0, 25.0, 62.5, 12.5, 0.0};
    const double want[] = {6.0, 4.0, 5.5, 3.5, 0.0};
    double results[5];
    spectator__pct_percentiles(counts, pcts, 5, results);
    for (int j = 0; j < 5; j++) {
        assert_double_exact(results[j], want[j]);
        assert_double_exact(results[j], spectator__pct_percentile(counts, pcts[j]));
    }
}

static void percentiles_outside_0_to_100_are_clamped(void **state)
{
    (void)state;
    uint64_t counts[LEN] = {0};
    counts[3] = 1;
    counts[5] = 3;
    assert_double_exact(spectator__pct_percentile(counts, -5.0), 0.0);
    assert_double_exact(spectator__pct_percentile(counts, -INFINITY), 0.0);
    assert_double_exact(spectator__pct_percentile(counts, 150.0), 6.0);
    assert_double_exact(spectator__pct_percentile(counts, INFINITY), 6.0);
}

static void percentile_of_nan_is_nan(void **state)
{
    (void)state;
    uint64_t counts[LEN] = {0};
    counts[7] = 2;
    assert_true(isnan(spectator__pct_percentile(counts, NAN)));
}

static void percentiles_in_the_last_bucket_reach_int64_max(void **state)
{
    (void)state;
    uint64_t counts[LEN] = {0};
    counts[LEN - 1] = 2;
    const double lo = 4227378850225105576.0;
    const double hi = 9223372036854775807.0; /* rounds to 2^63 */
    assert_double_exact(spectator__pct_percentile(counts, 100.0), hi);
    double span = (double)(INT64_MAX - INT64_C(4227378850225105576));
    assert_double_exact(spectator__pct_percentile(counts, 50.0), 0.5 * span + lo);
}

static void percentiles_of_uniform_values_are_within_bucket_error(void **state)
{
    (void)state;
    /* Record 1..1,000,000 once each; the estimates interpolate inside buckets whose width is at
     * most a third of their lower boundary, so a 10 % error bound is generous. */
    uint64_t counts[LEN] = {0};
    const int64_t max = 1000000;
    for (int64_t v = 1; v <= max; v++) {
        counts[spectator__pct_index_of(v)]++;
    }
    for (int p = 1; p <= 99; p++) {
        double want = (double)max * p / 100.0;
        double got = spectator__pct_percentile(counts, (double)p);
        assert_double_near(got, want, 0.10 * want);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Tags
 */

static void tag_is_prefix_and_four_upper_case_hex_digits(void **state)
{
    (void)state;
    char buf[6];
    memset(buf, 'x', sizeof buf);
    spectator__pct_tag('T', 0x2A, buf);
    assert_string_equal(buf, "T002A");
    spectator__pct_tag('D', 275, buf);
    assert_string_equal(buf, "D0113");
    spectator__pct_tag('T', 0, buf);
    assert_string_equal(buf, "T0000");
    spectator__pct_tag('D', 0xABCD, buf);
    assert_string_equal(buf, "DABCD");
}

static void tag_matches_printf_for_every_index(void **state)
{
    (void)state;
    char buf[6], want[16];
    for (size_t i = 0; i < LEN; i++) {
        spectator__pct_tag('T', i, buf);
        snprintf(want, sizeof want, "T%04X", (unsigned)i);
        assert_string_equal(buf, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_has_276_strictly_increasing_entries),
        cmocka_unit_test(bucket_out_of_range_returns_int64_max),
        cmocka_unit_test(table_equals_one_regenerated_from_spec),
        cmocka_unit_test(table_equals_java_generator_with_its_overflow_at_4_pow_31),
        cmocka_unit_test(index_of_zero_is_zero),
        cmocka_unit_test(index_of_negative_values_is_zero),
        cmocka_unit_test(index_of_one_to_four_is_the_value_itself),
        cmocka_unit_test(index_of_hand_picked_values_matches_java),
        cmocka_unit_test(index_of_matches_reference_around_every_boundary),
        cmocka_unit_test(index_of_matches_reference_around_every_power_of_two),
        cmocka_unit_test(index_of_matches_reference_for_every_value_below_100000),
        cmocka_unit_test(index_of_matches_reference_for_four_million_random_values),
        cmocka_unit_test(percentiles_of_empty_counts_are_zero),
        cmocka_unit_test(percentiles_of_counts_all_in_bucket_zero_interpolate_from_zero_to_one),
        cmocka_unit_test(percentiles_of_a_single_bucket_interpolate_between_its_two_boundaries),
        cmocka_unit_test(percentiles_of_two_buckets_interpolate_inside_the_right_one),
        cmocka_unit_test(percentiles_in_one_call_match_single_calls_in_any_order),
        cmocka_unit_test(percentiles_outside_0_to_100_are_clamped),
        cmocka_unit_test(percentile_of_nan_is_nan),
        cmocka_unit_test(percentiles_in_the_last_bucket_reach_int64_max),
        cmocka_unit_test(percentiles_of_uniform_values_are_within_bucket_error),
        cmocka_unit_test(tag_is_prefix_and_four_upper_case_hex_digits),
        cmocka_unit_test(tag_matches_printf_for_every_index),
    };
    return cmocka_run_group_tests(tests, setup_reference, NULL);
}
