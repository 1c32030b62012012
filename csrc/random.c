/*
 * random.c: counter-based draws: uniform, normal, integers, permutations
 * and multinomial samples (see random.h).
 */
#include "random.h"

#include <math.h>
#include <stdlib.h>


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


void rng_fill_randint(int64_t *out, int64_t n, uint64_t seed, uint64_t base,
                      int64_t low, uint64_t span) {
  #pragma omp parallel for if (n > 65536) schedule(static)
  for (int64_t i = 0; i < n; i++)
    out[i] = (int64_t)((uint64_t)low + rng_below(seed, base + (uint64_t)i,
                                                 span));
}


void rng_randperm(int64_t *out, int64_t n, uint64_t seed, uint64_t base) {
  for (int64_t i = 0; i < n; i++) out[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)rng_below(seed, base + (uint64_t)i, (uint64_t)i + 1);
    int64_t t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
}


typedef struct { double key; int64_t index; } race_entry;


static int race_entry_compare(const void *pa, const void *pb) {
  const race_entry *a = pa, *b = pb;
  if (a->key < b->key) return -1;
  if (a->key > b->key) return 1;
  return (a->index > b->index) - (a->index < b->index);
}


/* One row with replacement; `cdf` has room for k doubles. */
static void multinomial_row_replace(int64_t *out, const float *w, int64_t k,
                                    int64_t n, uint64_t seed, uint64_t base,
                                    double *cdf) {
  double total = 0.0;
  int64_t last_positive = 0;
  for (int64_t c = 0; c < k; c++) {
    total += w[c];
    cdf[c] = total;
    if (w[c] > 0) last_positive = c;
  }
  for (int64_t j = 0; j < n; j++) {
    double u = rng_uniform_double(seed, base + (uint64_t)j) * total;
    /* first category whose cumulative sum exceeds u: never a zero weight */
    int64_t lo = 0, hi = k;
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2;
      if (cdf[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    /* u rounded up to the total: take the last positive category */
    out[j] = lo < k ? lo : last_positive;
  }
}


/* One row without replacement; `race` has room for k entries. */
static void multinomial_row_race(int64_t *out, const float *w, int64_t k,
                                 int64_t n, uint64_t seed, uint64_t base,
                                 race_entry *race) {
  int64_t m = 0;
  for (int64_t c = 0; c < k; c++) {
    if (!(w[c] > 0)) continue;
    double u = 1.0 - rng_uniform_double(seed, base + (uint64_t)c); /* (0,1] */
    race[m].key = -log(u) / (double)w[c];
    race[m].index = c;
    m++;
  }
  qsort(race, (size_t)m, sizeof *race, race_entry_compare);
  for (int64_t j = 0; j < n; j++) out[j] = race[j].index;
}


sae_status rng_multinomial(int64_t *out, const float *weights, int64_t rows,
                           int64_t k, int64_t n, int replacement,
                           uint64_t seed, uint64_t base) {
  size_t entry = replacement ? sizeof(double) : sizeof(race_entry);
  if (rows > 0 && (uint64_t)k > SIZE_MAX / entry / (uint64_t)rows)
    return SAE_ENOMEM;
  void *work = malloc((size_t)(rows * k) * entry + 1);
  if (work == NULL) return SAE_ENOMEM;
  #pragma omp parallel for if (rows * (n + k) > 65536) schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    if (replacement)
      multinomial_row_replace(out + r * n, weights + r * k, k, n, seed,
                              base + (uint64_t)(r * n), (double *)work + r * k);
    else
      multinomial_row_race(out + r * n, weights + r * k, k, n, seed,
                           base + (uint64_t)(r * k),
                           (race_entry *)work + r * k);
  }
  free(work);
  return SAE_OK;
}
