/*
 * Numbers as text: the shortest form of a double that reads back exactly.
 *
 * Integers below 2^53 are written as integers. Other values from 1e-4 to
 * 1e15 take the shortest fixed-point form with at most 17 decimals whose
 * value, read back, is v, never longer than %.15g / %.17g would be: for
 * m / 10^k with m < 2^53 the division is correctly rounded exactly as a
 * correctly rounded parser reads "m e-k", so the check is one division. The
 * rest takes the shortest of %.15g and %.17g that reads back exactly.
 *
 * printf and strtod follow the program's LC_NUMERIC, and a program that
 * called setlocale(LC_ALL, "") in a German locale would get "0,1": a comma
 * inside JSON or a line. Both run with the thread switched to the "C"
 * locale (uselocale is per thread; glibc's "C" locale object is static, so
 * making it allocates nothing).
 */
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numfmt.h"

static const double pow10_tbl[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

const char spectator__digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                         "25262728293031323334353637383940414243444546474849"
                                         "50515253545556575859606162636465666768697071727374"
                                         "75767778798081828384858687888990919293949596979899";

/* The fixed-point form (see above); 0 when v needs the slow path. */
static size_t fmt_fast(char *out, double v) {
  char *p = out;
  double a = v;
  if (a < 0) {
    *p++ = '-';
    a = -a;
  }
  if (a < SPECTATOR__TWO_POW_53 && a == (double)(uint64_t)a)
    return (size_t)(p - out) + spectator__put_u64(p, (uint64_t)a);
  if (!(a >= 1e-4 && a < 1e15)) return 0; /* below 1e-4 the exponent form is shorter */
  for (int k = 1; k <= 17; k++) {
    double s = a * pow10_tbl[k];
    if (s >= SPECTATOR__TWO_POW_53) return 0;
    uint64_t m = (uint64_t)(s + 0.5);
    if ((double)m / pow10_tbl[k] != a) continue;
    char d[20];
    size_t n = spectator__put_u64(d, m), kk = (size_t)k;
    while (kk > 0 && d[n - 1] == '0') { /* only if the guess above was off */
      n--;
      kk--;
    }
    if (n <= kk) {
      *p++ = '0';
      *p++ = '.';
      for (size_t z = n; z < kk; z++) *p++ = '0';
      memcpy(p, d, n);
      p += n;
    } else {
      memcpy(p, d, n - kk);
      p += n - kk;
      if (kk) {
        *p++ = '.';
        memcpy(p, d + n - kk, kk);
        p += kk;
      }
    }
    return (size_t)(p - out);
  }
  return 0;
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

/* Switch this thread to the "C" locale; returns what to give back to
 * leave_c_locale (0 when it could not switch: the program's locale stays). */
static locale_t enter_c_locale(void) {
  pthread_once(&c_locale_once, make_c_locale);
  return c_locale ? uselocale(c_locale) : (locale_t)0;
}

static void leave_c_locale(locale_t previous) {
  if (previous) uselocale(previous);
}

double spectator__strtod(const char *s, char **end) {
  locale_t previous = enter_c_locale();
  double v = strtod(s, end);
  leave_c_locale(previous);
  return v;
}

size_t spectator__put_fraction(char *p, double v) {
  size_t n = v == 0 ? (p[0] = '0', 1) : fmt_fast(p, v); /* -0.0 is 0 */
  if (n) return n;
  char tmp[SPECTATOR__MAX_NUMBER_LEN + 8];
  locale_t previous = enter_c_locale();
  snprintf(tmp, sizeof(tmp), "%.15g", v);
  if (strtod(tmp, NULL) != v) snprintf(tmp, sizeof(tmp), "%.17g", v);
  leave_c_locale(previous);
  n = strlen(tmp);
  memcpy(p, tmp, n);
  return n;
}
