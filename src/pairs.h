/*
 * Private: sorting (key, value) pairs stored flat (k0, v0, k1, v1, ...), as
 * ids (strings) and the encoder (string numbers) both keep tags.
 */
#ifndef SPECTATOR_PAIRS_H
#define SPECTATOR_PAIRS_H

/* Sort the n pairs of kv (elements of type T) by key with a stable insertion
 * sort, fastest for the few tags an id has. CMP(a, b) compares two keys like
 * strcmp. ON_EQUAL runs when an inserted key equals one already placed (a
 * repeated key ends up next to its twin, after it). */
#define SPECTATOR__SORT_PAIRS(kv, n, T, CMP, ON_EQUAL)           \
  do {                                                           \
    for (size_t i_ = 1; i_ < (size_t)(n); i_++) {                \
      T k_ = (kv)[2 * i_];                                       \
      T v_ = (kv)[2 * i_ + 1];                                   \
      size_t j_ = i_;                                            \
      int c_ = 1;                                                \
      while (j_ > 0 && (c_ = CMP((kv)[2 * (j_ - 1)], k_)) > 0) { \
        (kv)[2 * j_] = (kv)[2 * (j_ - 1)];                       \
        (kv)[2 * j_ + 1] = (kv)[2 * (j_ - 1) + 1];               \
        j_--;                                                    \
      }                                                          \
      if (c_ == 0) ON_EQUAL;                                     \
      (kv)[2 * j_] = k_;                                         \
      (kv)[2 * j_ + 1] = v_;                                     \
    }                                                            \
  } while (0)

#endif
