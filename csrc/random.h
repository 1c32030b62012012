/*
 * random.h: counter-based random numbers.
 *
 * Element i of a draw is a pure function of (seed, counter + i), so the
 * numbers do not depend on how work is split across threads. A generator
 * hands out disjoint counter ranges: take `generator_reserve(g, n)` as the
 * base counter of a draw of n values, then compute value i from
 * (g->seed, base + i) in any order.
 */
#ifndef SAE_RANDOM_H
#define SAE_RANDOM_H

#include <stdint.h>

#include "tensor.h"

typedef struct sae_generator {
  uint64_t seed;
  uint64_t counter;
} sae_generator;

void generator_init(sae_generator *g, uint64_t seed);
/* Returns the first counter of n fresh values and advances past them. */
uint64_t generator_reserve(sae_generator *g, uint64_t n);

/* 64 random bits for (seed, counter): SplitMix64's finaliser applied
 * twice to a Weyl-sequence position, which passes BigCrush as a counter
 * based generator (Steele, Lea and Flood, "Fast splittable pseudorandom
 * number generators", OOPSLA 2014). */
static inline uint64_t rng_bits(uint64_t seed, uint64_t counter) {
  uint64_t z = seed * 0xD1B54A32D192ED03ull + counter * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform float in [0, 1), 24 random bits. */
static inline float rng_uniform(uint64_t seed, uint64_t counter) {
  return (float)(rng_bits(seed, counter) >> 40) * 0x1.0p-24f;
}

/* Uniform double in [0, 1), 53 random bits. */
static inline double rng_uniform_double(uint64_t seed, uint64_t counter) {
  return (double)(rng_bits(seed, counter) >> 11) * 0x1.0p-53;
}

/* Standard normal from one counter (Box-Muller, cosine branch). */
float rng_normal(uint64_t seed, uint64_t counter);

/* Uniform integer in [0, n) for n >= 1 (Lemire's multiply-shift, with a
 * bias below 2^-32 for n < 2^32). */
static inline uint64_t rng_below(uint64_t seed, uint64_t counter, uint64_t n) {
  return (uint64_t)(((unsigned __int128)rng_bits(seed, counter) * n) >> 64);
}

/* Fills `out` with n values drawn from (seed, base .. base + n - 1). */
void rng_fill_uniform(float *out, int64_t n, uint64_t seed, uint64_t base,
                      float low, float high);
void rng_fill_normal(float *out, int64_t n, uint64_t seed, uint64_t base,
                     float mean, float std);

/* Fills `out` with n integers uniform in [low, low + span), span >= 1. */
void rng_fill_randint(int64_t *out, int64_t n, uint64_t seed, uint64_t base,
                      int64_t low, uint64_t span);

/* Writes a random permutation of 0 .. n-1 to `out` (Fisher-Yates; step i
 * uses counter base + i, so it takes n counters). */
void rng_randperm(int64_t *out, int64_t n, uint64_t seed, uint64_t base);

/* Draws n 0-based category indices for each of the `rows` rows of
 * `weights` (rows x k, contiguous, each row nonnegative with a positive
 * finite sum) into `out` (rows x n).
 *
 * With replacement, sample j of row r inverts the row's cumulative sum at
 * a uniform from counter base + r*n + j. Without replacement, category c
 * of row r gets the key -log(U)/w, an exponential variable with rate w,
 * with U from counter base + r*k + c. The n smallest keys win in
 * increasing order. Because the minimum of independent exponentials is
 * category c with probability w_c / sum(w), and the rest stay
 * exponential, this matches drawing one category at a time and removing
 * it. The caller checks that n is at most the count of positive weights.
 * Counters used: rows*n with replacement, rows*k without.
 * Returns SAE_ENOMEM when the work buffer cannot be allocated. */
sae_status rng_multinomial(int64_t *out, const float *weights, int64_t rows,
                           int64_t k, int64_t n, int replacement,
                           uint64_t seed, uint64_t base);

#endif
