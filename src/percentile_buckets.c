/* Percentile buckets, a C port of Spectator's PercentileBuckets
 * (Netflix/spectator, spectator-api/.../api/histogram/PercentileBuckets.java).
 *
 * DESIGN
 * The int64 range is cut into 276 buckets; each bucket is named by its upper boundary:
 *
 *   [0..2]     1, 2, 3
 *   then, for each power of 4, base = 4^k (k = 1..30), step delta = base / 3 (integer division):
 *              base, base + delta, base + 2*delta, ... while the value is below 4*base - delta
 *              (11 values for 4^1 = 4: 4..14; 9 values for every later power)
 *   [275]      INT64_MAX
 *
 * Java runs the loop up to 4^31 = 2^62 too, but there 4*base overflows to 0, the limit
 * 0 - delta is negative and nothing is added; the table below is written out literally with
 * that result (the last two boundaries are 4227378850225105576 and INT64_MAX). It was produced
 * once by a throwaway program following that description, and the unit test regenerates it.
 *
 * index_of follows Java's indexOf step by step, so the two agree on every int64: find the power
 * of 4 at or below v (leading-zero count, rounded down to an even bit position), look up where
 * that power's buckets start (power_of_4_index), add (v - base) / delta and one more, and clamp
 * at the last bucket. This puts v into the first bucket whose boundary is strictly greater than
 * v, i.e. bucket i counts values in [boundary(i-1), boundary(i)), which is what percentiles()
 * assumes when it interpolates between those two boundaries. Kept quirk: the offset arithmetic
 * behaves as if each power's run had one more step (at 15, and at 4^k - 3 for k >= 3), so 15
 * and the three values just below each power of 4 from 64 on land one bucket higher; at the
 * top everything from 4227378850225105576 on is clamped into bucket 275.
 *
 * percentiles() is Java's percentiles(long[], double[], double[]), including its newer guard
 * that turns a 0/0 interpolation factor into 0, except that each requested percentile is
 * computed on its own (same answer as Java for sorted input, the right one for unsorted
 * input), out-of-range percentiles are clamped, and empty counts give 0 instead of NaN.
 *
 * Everything here is pure and lock-free; the tables are const.
 */
#include "percentile_buckets.h"

#include "spectator.h"

#include <math.h>

/* Keep a*b + c as two roundings, as in Java, where the compiler honours this pragma. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* Upper boundary of each bucket; see the layout above. [n] marks the index of a run's start. */
/* clang-format off */
static const int64_t bucket_values[] = {
    /* [0] below 4 */
    INT64_C(1), INT64_C(2), INT64_C(3),
    /* [3] 4^1, step 1 */
    INT64_C(4), INT64_C(5), INT64_C(6),
    INT64_C(7), INT64_C(8), INT64_C(9),
    INT64_C(10), INT64_C(11), INT64_C(12),
    INT64_C(13), INT64_C(14),
    /* [14] 4^2, step 5 */
    INT64_C(16), INT64_C(21), INT64_C(26),
    INT64_C(31), INT64_C(36), INT64_C(41),
    INT64_C(46), INT64_C(51), INT64_C(56),
    /* [23] 4^3, step 21 */
    INT64_C(64), INT64_C(85), INT64_C(106),
    INT64_C(127), INT64_C(148), INT64_C(169),
    INT64_C(190), INT64_C(211), INT64_C(232),
    /* [32] 4^4, step 85 */
    INT64_C(256), INT64_C(341), INT64_C(426),
    INT64_C(511), INT64_C(596), INT64_C(681),
    INT64_C(766), INT64_C(851), INT64_C(936),
    /* [41] 4^5, step 341 */
    INT64_C(1024), INT64_C(1365), INT64_C(1706),
    INT64_C(2047), INT64_C(2388), INT64_C(2729),
    INT64_C(3070), INT64_C(3411), INT64_C(3752),
    /* [50] 4^6, step 1365 */
    INT64_C(4096), INT64_C(5461), INT64_C(6826),
    INT64_C(8191), INT64_C(9556), INT64_C(10921),
    INT64_C(12286), INT64_C(13651), INT64_C(15016),
    /* [59] 4^7, step 5461 */
    INT64_C(16384), INT64_C(21845), INT64_C(27306),
    INT64_C(32767), INT64_C(38228), INT64_C(43689),
    INT64_C(49150), INT64_C(54611), INT64_C(60072),
    /* [68] 4^8, step 21845 */
    INT64_C(65536), INT64_C(87381), INT64_C(109226),
    INT64_C(131071), INT64_C(152916), INT64_C(174761),
    INT64_C(196606), INT64_C(218451), INT64_C(240296),
    /* [77] 4^9, step 87381 */
    INT64_C(262144), INT64_C(349525), INT64_C(436906),
    INT64_C(524287), INT64_C(611668), INT64_C(699049),
    INT64_C(786430), INT64_C(873811), INT64_C(961192),
    /* [86] 4^10, step 349525 */
    INT64_C(1048576), INT64_C(1398101), INT64_C(1747626),
    INT64_C(2097151), INT64_C(2446676), INT64_C(2796201),
    INT64_C(3145726), INT64_C(3495251), INT64_C(3844776),
    /* [95] 4^11, step 1398101 */
    INT64_C(4194304), INT64_C(5592405), INT64_C(6990506),
    INT64_C(8388607), INT64_C(9786708), INT64_C(11184809),
    INT64_C(12582910), INT64_C(13981011), INT64_C(15379112),
    /* [104] 4^12, step 5592405 */
    INT64_C(16777216), INT64_C(22369621), INT64_C(27962026),
    INT64_C(33554431), INT64_C(39146836), INT64_C(44739241),
    INT64_C(50331646), INT64_C(55924051), INT64_C(61516456),
    /* [113] 4^13, step 22369621 */
    INT64_C(67108864), INT64_C(89478485), INT64_C(111848106),
    INT64_C(134217727), INT64_C(156587348), INT64_C(178956969),
    INT64_C(201326590), INT64_C(223696211), INT64_C(246065832),
    /* [122] 4^14, step 89478485 */
    INT64_C(268435456), INT64_C(357913941), INT64_C(447392426),
    INT64_C(536870911), INT64_C(626349396), INT64_C(715827881),
    INT64_C(805306366), INT64_C(894784851), INT64_C(984263336),
    /* [131] 4^15, step 357913941 */
    INT64_C(1073741824), INT64_C(1431655765), INT64_C(1789569706),
    INT64_C(2147483647), INT64_C(2505397588), INT64_C(2863311529),
    INT64_C(3221225470), INT64_C(3579139411), INT64_C(3937053352),
    /* [140] 4^16, step 1431655765 */
    INT64_C(4294967296), INT64_C(5726623061), INT64_C(7158278826),
    INT64_C(8589934591), INT64_C(10021590356), INT64_C(11453246121),
    INT64_C(12884901886), INT64_C(14316557651), INT64_C(15748213416),
    /* [149] 4^17, step 5726623061 */
    INT64_C(17179869184), INT64_C(22906492245), INT64_C(28633115306),
    INT64_C(34359738367), INT64_C(40086361428), INT64_C(45812984489),
    INT64_C(51539607550), INT64_C(57266230611), INT64_C(62992853672),
    /* [158] 4^18, step 22906492245 */
    INT64_C(68719476736), INT64_C(91625968981), INT64_C(114532461226),
    INT64_C(137438953471), INT64_C(160345445716), INT64_C(183251937961),
    INT64_C(206158430206), INT64_C(229064922451), INT64_C(251971414696),
    /* [167] 4^19, step 91625968981 */
    INT64_C(274877906944), INT64_C(366503875925), INT64_C(458129844906),
    INT64_C(549755813887), INT64_C(641381782868), INT64_C(733007751849),
    INT64_C(824633720830), INT64_C(916259689811), INT64_C(1007885658792),
    /* [176] 4^20, step 366503875925 */
    INT64_C(1099511627776), INT64_C(1466015503701), INT64_C(1832519379626),
    INT64_C(2199023255551), INT64_C(2565527131476), INT64_C(2932031007401),
    INT64_C(3298534883326), INT64_C(3665038759251), INT64_C(4031542635176),
    /* [185] 4^21, step 1466015503701 */
    INT64_C(4398046511104), INT64_C(5864062014805), INT64_C(7330077518506),
    INT64_C(8796093022207), INT64_C(10262108525908), INT64_C(11728124029609),
    INT64_C(13194139533310), INT64_C(14660155037011), INT64_C(16126170540712),
    /* [194] 4^22, step 5864062014805 */
    INT64_C(17592186044416), INT64_C(23456248059221), INT64_C(29320310074026),
    INT64_C(35184372088831), INT64_C(41048434103636), INT64_C(46912496118441),
    INT64_C(52776558133246), INT64_C(58640620148051), INT64_C(64504682162856),
    /* [203] 4^23, step 23456248059221 */
    INT64_C(70368744177664), INT64_C(93824992236885), INT64_C(117281240296106),
    INT64_C(140737488355327), INT64_C(164193736414548), INT64_C(187649984473769),
    INT64_C(211106232532990), INT64_C(234562480592211), INT64_C(258018728651432),
    /* [212] 4^24, step 93824992236885 */
    INT64_C(281474976710656), INT64_C(375299968947541), INT64_C(469124961184426),
    INT64_C(562949953421311), INT64_C(656774945658196), INT64_C(750599937895081),
    INT64_C(844424930131966), INT64_C(938249922368851), INT64_C(1032074914605736),
    /* [221] 4^25, step 375299968947541 */
    INT64_C(1125899906842624), INT64_C(1501199875790165), INT64_C(1876499844737706),
    INT64_C(2251799813685247), INT64_C(2627099782632788), INT64_C(3002399751580329),
    INT64_C(3377699720527870), INT64_C(3752999689475411), INT64_C(4128299658422952),
    /* [230] 4^26, step 1501199875790165 */
    INT64_C(4503599627370496), INT64_C(6004799503160661), INT64_C(7505999378950826),
    INT64_C(9007199254740991), INT64_C(10508399130531156), INT64_C(12009599006321321),
    INT64_C(13510798882111486), INT64_C(15011998757901651), INT64_C(16513198633691816),
    /* [239] 4^27, step 6004799503160661 */
    INT64_C(18014398509481984), INT64_C(24019198012642645), INT64_C(30023997515803306),
    INT64_C(36028797018963967), INT64_C(42033596522124628), INT64_C(48038396025285289),
    INT64_C(54043195528445950), INT64_C(60047995031606611), INT64_C(66052794534767272),
    /* [248] 4^28, step 24019198012642645 */
    INT64_C(72057594037927936), INT64_C(96076792050570581), INT64_C(120095990063213226),
    INT64_C(144115188075855871), INT64_C(168134386088498516), INT64_C(192153584101141161),
    INT64_C(216172782113783806), INT64_C(240191980126426451), INT64_C(264211178139069096),
    /* [257] 4^29, step 96076792050570581 */
    INT64_C(288230376151711744), INT64_C(384307168202282325), INT64_C(480383960252852906),
    INT64_C(576460752303423487), INT64_C(672537544353994068), INT64_C(768614336404564649),
    INT64_C(864691128455135230), INT64_C(960767920505705811), INT64_C(1056844712556276392),
    /* [266] 4^30, step 384307168202282325 */
    INT64_C(1152921504606846976), INT64_C(1537228672809129301), INT64_C(1921535841011411626),
    INT64_C(2305843009213693951), INT64_C(2690150177415976276), INT64_C(3074457345618258601),
    INT64_C(3458764513820540926), INT64_C(3843071682022823251), INT64_C(4227378850225105576),
    /* [275] 4^31 adds nothing (Java overflow); then INT64_MAX */
    INT64_MAX
};
/* clang-format on */

_Static_assert(sizeof bucket_values / sizeof bucket_values[0] == SPECTATOR__PCT_LENGTH,
               "percentile bucket table must have SPECTATOR__PCT_LENGTH entries");

/* power_of_4_index[k]: index in bucket_values of the first bucket of 4^k's run (k = 0..31);
 * 4^31 has an empty run, so its entry is the index of INT64_MAX. */
static const uint16_t power_of_4_index[32] = {
    0,   3,   14,  23,  32,  41,  50,  59,  68,  77,  86,  95,  104, 113, 122, 131,
    140, 149, 158, 167, 176, 185, 194, 203, 212, 221, 230, 239, 248, 257, 266, 275,
};

/* Number of leading zero bits of a nonzero x. */
static inline unsigned leading_zeros(uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
  return (unsigned)__builtin_clzll(x);
#else
  unsigned n = 0;
  for (unsigned step = 32; step > 0; step /= 2) {
    if ((x >> (64 - step)) == 0) {
      n += step;
      x <<= step;
    }
  }
  return n;
#endif
}

size_t spectator__pct_index_of(int64_t v) {
  if (v <= 0) {
    return 0;
  }
  if (v <= 4) {
    return (size_t)v;
  }
  /* v >= 5 from here: unsigned arithmetic, so nothing can overflow. */
  uint64_t u = (uint64_t)v;
  unsigned shift = (63u - leading_zeros(u)) & ~1u; /* bit of the power of 4 at or below v */
  uint64_t base = (uint64_t)1 << shift;
  uint64_t delta = base / 3;
  size_t pos = (size_t)((u - base) / delta) + power_of_4_index[shift / 2];
  return pos >= SPECTATOR__PCT_LENGTH - 1 ? SPECTATOR__PCT_LENGTH - 1 : pos + 1;
}

int64_t spectator__pct_bucket(size_t i) {
  return i < SPECTATOR__PCT_LENGTH ? bucket_values[i] : INT64_MAX;
}

/* Linear interpolation of p between (prev_p, prev_b) and (next_p, next_b). */
static double interpolate(double p, double prev_p, double next_p, int64_t prev_b, int64_t next_b) {
  double f = (p - prev_p) / (next_p - prev_p);
  if (isnan(f)) {
    /* 0/0: p sits exactly on a stretch of empty buckets at the start (p = 0). */
    return 0.0;
  }
  double scaled = f * (double)(next_b - prev_b); /* next_b >= prev_b >= 0: no overflow */
  return scaled + (double)prev_b;
}

/* One percentile, given the (nonzero) sum of the counts. */
static double percentile_of(const uint64_t counts[SPECTATOR__PCT_LENGTH], uint64_t total,
                            double p) {
  if (isnan(p)) {
    return p;
  }
  if (p < 0.0) {
    p = 0.0;
  } else if (p > 100.0) {
    p = 100.0;
  }
  uint64_t prev = 0;
  double prev_p = 0.0;
  int64_t prev_b = 0;
  for (size_t i = 0; i < SPECTATOR__PCT_LENGTH; i++) {
    uint64_t next = prev + counts[i];
    double next_p = 100.0 * (double)next / (double)total;
    int64_t next_b = bucket_values[i];
    if (next_p >= p) {
      return interpolate(p, prev_p, next_p, prev_b, next_b);
    }
    prev = next;
    prev_p = next_p;
    prev_b = next_b;
  }
  /* Only reachable if rounding left the last cumulative share just below 100. */
  return interpolate(p, prev_p, 100.0, prev_b, INT64_MAX);
}

void spectator__pct_percentiles(const uint64_t counts[SPECTATOR__PCT_LENGTH], const double *pcts,
                                size_t n, double *results) {
  if (n == 0) {
    return;
  }
  uint64_t total = 0;
  for (size_t i = 0; i < SPECTATOR__PCT_LENGTH; i++) {
    total += counts[i];
  }
  for (size_t j = 0; j < n; j++) {
    results[j] = total == 0 ? 0.0 : percentile_of(counts, total, pcts[j]);
  }
}

double spectator__pct_percentile(const uint64_t counts[SPECTATOR__PCT_LENGTH], double pct) {
  double result;
  spectator__pct_percentiles(counts, &pct, 1, &result);
  return result;
}

void spectator__pct_tag(char prefix, size_t i, char buf[6]) {
  static const char hex[] = "0123456789ABCDEF";
  buf[0] = prefix;
  buf[1] = hex[(i >> 12) & 0xF];
  buf[2] = hex[(i >> 8) & 0xF];
  buf[3] = hex[(i >> 4) & 0xF];
  buf[4] = hex[i & 0xF];
  buf[5] = '\0';
}

size_t spectator_percentile_buckets_index_of(int64_t v) { return spectator__pct_index_of(v); }

int64_t spectator_percentile_buckets_get(size_t i) { return spectator__pct_bucket(i); }
