/*
 * random.c: counter-based uniform and normal draws (see random.h).
 */
#include "random.h"

#include <math.h>


void generator_init(sae_generator *g, uint64_t seed) {
  g->seed = seed;
  g->counter = 0;
}


uint64_t generator_reserve(sae_generator *g, uint64_t n) {
  uint64_t base = g->counter;
  g->counter += n;
  return base;
}


float rng_normal(uint64_t seed, uint64_t counter) {
  uint64_t bits = rng_bits(seed, counter);
  /* u1 in (0, 1] so the log is finite; u2 in [0, 1) */
  double u1 = ((double)(bits >> 32) + 1.0) * 0x1.0p-32;
  double u2 = (double)(bits & 0xFFFFFFFFu) * 0x1.0p-32;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}


void rng_fill_uniform(float *out, int64_t n, uint64_t seed, uint64_t base,
                      float low, float high) {
  float scale = high - low;
  #pragma omp parallel for if (n > 65536) schedule(static)
  for (int64_t i = 0; i < n; i++)
    out[i] = low + scale * rng_uniform(seed, base + (uint64_t)i);
}


void rng_fill_normal(float *out, int64_t n, uint64_t seed, uint64_t base,
                     float mean, float std) {
  #pragma omp parallel for if (n > 16384) schedule(static)
  for (int64_t i = 0; i < n; i++)
    out[i] = mean + std * rng_normal(seed, base + (uint64_t)i);
}
