/*
 * Which sanitizer a test program is built with, as 0/1 constants usable in
 * both #if and ordinary expressions (gcc defines __SANITIZE_*__, clang
 * answers __has_feature):
 *
 * - TU_UNDER_TSAN, TU_UNDER_ASAN, TU_UNDER_SANITIZER (either of them).
 * - TU_ASAN_SMALL_QUARANTINE(): under ASan, a 4 MiB quarantine, so freed
 *   memory is reused soon and RSS measures what the library keeps rather than
 *   what ASan holds back. ASAN_OPTIONS from the environment still apply on
 *   top. Use once, at file scope, in a test that bounds RSS.
 */
#ifndef SPECTATOR_TEST_SANITIZERS_H
#define SPECTATOR_TEST_SANITIZERS_H

#if defined(__SANITIZE_THREAD__)
#define TU_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TU_UNDER_TSAN 1
#endif
#endif
#ifndef TU_UNDER_TSAN
#define TU_UNDER_TSAN 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#define TU_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_UNDER_ASAN 1
#endif
#endif
#ifndef TU_UNDER_ASAN
#define TU_UNDER_ASAN 0
#endif

#define TU_UNDER_SANITIZER (TU_UNDER_TSAN || TU_UNDER_ASAN)

#if TU_UNDER_ASAN
#define TU_ASAN_SMALL_QUARANTINE()          \
  const char *__asan_default_options(void); \
  const char *__asan_default_options(void) { return "quarantine_size_mb=4"; }
#else
#define TU_ASAN_SMALL_QUARANTINE()
#endif

#endif
