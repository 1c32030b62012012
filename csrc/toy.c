/*
 * toy.c: batches, forward pass, loss and fused backward of the toy models
 * (see toy.h).
 *
 * Two backward passes share the work. Narrow models go through tiles of
 * VL samples held as vectors (see "tile passes"). Wider ones choose per
 * instance between dense tiles, the Gram matrix and a sample-by-sample
 * pass that skips zeros (see "per-sample pass"). Threads split the
 * instances or fixed parts of the batch, and batches come from the
 * model's counter-based generator, so results are the same bit for bit
 * whatever the thread count.
 */
#include "toy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef __AVX512F__
#include <immintrin.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#endif


static int max_threads(void) {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}


static int thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}


#define VL 16

/* VL floats as one value, so accumulators stay in registers (one zmm
 * with AVX-512, two ymm with AVX2). Pointers cast to it are 64-byte
 * aligned. */
typedef float vfloat __attribute__((vector_size(VL * sizeof(float))));
typedef int32_t vmask __attribute__((vector_size(VL * sizeof(float))));

/* a where keep > 0, else 0 */
static inline vfloat where_positive(vfloat keep, vfloat a) {
  const vfloat zero = { 0 };
  return (vfloat)((vmask)a & (keep > zero));
}


static inline int64_t pad_vl(int64_t n) { return (n + VL - 1) / VL * VL; }


/* ------------------------------------------------------------ lifecycle */

sae_status toy_init(toy_model *m, toy_kind kind, int64_t n_instances,
                    int64_t n_features, int64_t n_hidden, uint64_t seed) {
  int64_t I = n_instances, F = n_features, H = n_hidden;
  int64_t nw = I * H * F;
  memset(m, 0, sizeof *m);
  m->kind = kind;
  m->n_instances = I;
  m->n_features = F;
  m->n_hidden = H;
  m->n_params = (kind == TOY_COMPUTATION ? 2 * nw : nw) + I * F;
  m->params = storage_new((size_t)m->n_params * sizeof(float), 1);
  m->grads = storage_new((size_t)m->n_params * sizeof(float), 1);
  m->buffers = storage_new((size_t)(2 * I * F) * sizeof(float), 0);
  m->draw_threshold = malloc((size_t)(I * F) * sizeof(uint64_t));
  m->draw_scale = malloc((size_t)(I * F) * sizeof(float));
  if (m->params == NULL || m->grads == NULL || m->buffers == NULL ||
      m->draw_threshold == NULL || m->draw_scale == NULL)
    return SAE_ENOMEM;

  float *p = m->params->data, *g = m->grads->data, *buf = m->buffers->data;
  m->W1 = p;
  m->dW1 = g;
  if (kind == TOY_COMPUTATION) {
    m->W2 = p + nw;
    m->dW2 = g + nw;
  }
  m->b_final = p + m->n_params - I * F;
  m->db_final = g + m->n_params - I * F;
  m->feature_probability = buf;
  m->importance = buf + I * F;
  for (int64_t k = 0; k < 2 * I * F; k++) buf[k] = 1.0f;
  generator_init(&m->generator, seed);
  return SAE_OK;
}


void toy_free(toy_model *m) {
  storage_release(m->params);
  storage_release(m->grads);
  storage_release(m->buffers);
  free(m->scratch);
  free(m->index_scratch);
  free(m->draw_threshold);
  free(m->draw_scale);
  m->draw_threshold = NULL;
  m->draw_scale = NULL;
  m->params = m->grads = m->buffers = NULL;
  m->scratch = NULL;
  m->index_scratch = NULL;
}


/* Fills n values with N(0, std) as xavier_normal_ does for a tensor of
 * shape [a, b, c]: std = sqrt(2 / (b * c + a * c)). */
static void xavier_normal(sae_generator *g, float *w, int64_t a, int64_t b,
                          int64_t c) {
  int64_t n = a * b * c;
  double std = sqrt(2.0 / (double)(b * c + a * c));
  rng_fill_normal(w, n, g->seed, generator_reserve(g, (uint64_t)n), 0.0f,
                  (float)std);
}


void toy_reset_parameters(toy_model *m) {
  int64_t I = m->n_instances, F = m->n_features, H = m->n_hidden;
  xavier_normal(&m->generator, m->W1, I, H, F);
  if (m->kind == TOY_COMPUTATION) xavier_normal(&m->generator, m->W2, I, F, H);
  memset(m->b_final, 0, (size_t)(I * F) * sizeof(float));
}


/* ---------------------------------------------------------------- batch */

/* Row (b, i) of a batch owns the draws base + (b * I + i) * Fh + j,
 * Fh = ceil(F / 2): with F2 = floor(F / 2), draw j gives 64 bits, the low
 * half to feature j and the high half to feature j + F2 (an odd last
 * feature takes the low half of draw F2). Each value is then a pure
 * function of (seed, counter) whatever the thread count or the pass that
 * draws it, and a row is written as two contiguous halves.
 *
 * A feature with probability p is present when its 32 bits r are below
 * p * 2^32. Given that, r / (p * 2^32) is uniform in [0, 1) and gives the
 * magnitude, so one 32-bit draw serves both. The magnitude steps are
 * 2^-32 / p, finer than float precision for p above 2^-8.
 *
 * Each draw is one SplitMix64 output (Steele, Lea and Flood, "Fast
 * splittable pseudorandom number generators", OOPSLA 2014): the
 * finaliser applied once to a Weyl sequence that starts at a key made
 * from the seed. */
static inline uint64_t draw_bits(uint64_t key, uint64_t counter) {
  uint64_t z = key + counter * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}


static inline int64_t draws_per_row(int64_t F) { return (F + 1) / 2; }


/* One batch: the key and first counter, and per feature of [I,F] the
 * presence threshold and the scale from r to [0, 1). */
typedef struct toy_draw {
  uint64_t key, base;
  const uint64_t *threshold;
  const float *scale;
  float mag_scale, mag_offset;   /* [0,1) -> [0,1) or [-1,1) */
} toy_draw;


/* Reserves the counters of a batch of `batch` samples and fills the
 * model's per-feature tables from feature_probability. */
static toy_draw draw_start(toy_model *m, int64_t batch) {
  const int64_t I = m->n_instances, F = m->n_features;
  toy_draw d;
  d.key = m->generator.seed * 0xD1B54A32D192ED03ull;
  d.base = generator_reserve(&m->generator,
                             (uint64_t)(batch * I * draws_per_row(F)));
  for (int64_t e = 0; e < I * F; e++) {
    double p = m->feature_probability[e];
    m->draw_threshold[e] = (uint64_t)(p * 0x1.0p32);
    m->draw_scale[e] = p > 0.0 ? (float)(1.0 / (p * 0x1.0p32)) : 0.0f;
  }
  d.threshold = m->draw_threshold;
  d.scale = m->draw_scale;
  d.mag_scale = m->kind == TOY_COMPUTATION ? 2.0f : 1.0f;
  d.mag_offset = m->kind == TOY_COMPUTATION ? -1.0f : 0.0f;
  return d;
}


/* The value of a feature from its 32 bits r, threshold and scale, with
 * magnitudes u * mag_scale + mag_offset. */
static inline float draw_value(uint64_t r, uint64_t thr, float scale,
                               float mag_scale, float mag_offset) {
  const float below_one = 0x1.fffffep-1f;
  float u = (float)r * scale;
  u = u < below_one ? u : below_one;   /* r * scale can round up to 1 */
  float v = u * mag_scale + mag_offset;
  return r < thr ? v : 0.0f;
}


/* A uniform magnitude in [0, 1) (or [-1, 1)) from the top 24 of 32 bits. */
static inline float draw_magnitude(const toy_draw *d, uint64_t r) {
  return (float)(r >> 8) * 0x1.0p-24f * d->mag_scale + d->mag_offset;
}


/* The 32 bits of feature f of a row whose draws start at c0. */
static inline uint64_t feature_bits(const toy_draw *d, uint64_t c0,
                                    int64_t f, int64_t F) {
  const int64_t F2 = F / 2;
  if (f < F2) return draw_bits(d->key, c0 + (uint64_t)f) & 0xFFFFFFFFu;
  if (f < 2 * F2) return draw_bits(d->key, c0 + (uint64_t)(f - F2)) >> 32;
  return draw_bits(d->key, c0 + (uint64_t)F2) & 0xFFFFFFFFu;
}


/* Redraws the pair features of row (b, i), whose draws start at c0, over
 * the independent values already in `row`. */
static void draw_pairs(const toy_model *m, const toy_draw *d, uint64_t c0,
                       int64_t i, float *row) {
  const int64_t nc = m->n_correlated_pairs, na = m->n_anticorrelated_pairs;
  const float *p = m->feature_probability + i * m->n_features;
  const uint64_t *thr = d->threshold + i * m->n_features;
  const int64_t F = m->n_features;
  /* Correlated pair k: the first feature keeps its independent value,
   * and the second is present with it, with a magnitude from its own
   * bits. */
  for (int64_t k = 0; k < nc; k++) {
    int on = feature_bits(d, c0, 2 * k, F) < thr[2 * k];
    uint64_t hi = feature_bits(d, c0, 2 * k + 1, F);
    row[2 * k + 1] = on ? draw_magnitude(d, hi) : 0.0f;
  }
  /* Anticorrelated pair: the bits of the first feature decide whether one
   * of the two is present, with probability 2p (p of the first feature).
   * The low bit of the second feature's bits then picks which one, so
   * each is present with probability p and never both. */
  for (int64_t k = nc; k < nc + na; k++) {
    uint64_t r = feature_bits(d, c0, 2 * k, F);
    uint64_t hi = feature_bits(d, c0, 2 * k + 1, F);
    int on = (double)r < 2.0 * (double)p[2 * k] * 0x1.0p32;
    int first = (hi & 1u) == 0;
    float v = draw_magnitude(d, hi);
    row[2 * k] = on && first ? v : 0.0f;
    row[2 * k + 1] = on && !first ? v : 0.0f;
  }
}


/* Writes row (b, i) of the batch into row [F]. */
static void draw_row(const toy_model *m, const toy_draw *d, int64_t b,
                     int64_t i, float *restrict row) {
  const int64_t I = m->n_instances, F = m->n_features;
  const int64_t Fh = draws_per_row(F), F2 = F / 2;
  const uint64_t c0 = d->base + (uint64_t)((b * I + i) * Fh);
  const uint64_t *restrict thr = d->threshold + i * F;
  const float *restrict scale = d->scale + i * F;
  const uint64_t key = d->key;
  const float mag_scale = d->mag_scale, mag_offset = d->mag_offset;
  #pragma omp simd
  for (int64_t j = 0; j < F2; j++) {
    uint64_t z = draw_bits(key, c0 + (uint64_t)j);
    row[j] = draw_value(z & 0xFFFFFFFFu, thr[j], scale[j], mag_scale,
                        mag_offset);
    row[j + F2] = draw_value(z >> 32, thr[j + F2], scale[j + F2],
                             mag_scale, mag_offset);
  }
  if (F & 1) {
    uint64_t z = draw_bits(key, c0 + (uint64_t)F2);
    row[F - 1] = draw_value(z & 0xFFFFFFFFu, thr[F - 1], scale[F - 1],
                            mag_scale, mag_offset);
  }
  if (m->n_correlated_pairs + m->n_anticorrelated_pairs > 0)
    draw_pairs(m, d, c0, i, row);
}


void toy_generate_batch(toy_model *m, float *out, int64_t batch) {
  const int64_t I = m->n_instances, F = m->n_features, IF = I * F;
  const toy_draw d = draw_start(m, batch);

  #pragma omp parallel for schedule(static) if (batch * IF > 32768)
  for (int64_t b = 0; b < batch; b++)
    for (int64_t i = 0; i < I; i++) draw_row(m, &d, b, i, out + b * IF + i * F);
}


/* ----------------------------------------------------------- tile passes */

/* Models too narrow for the per-sample pass go through the batch in
 * tiles of VL samples of one instance. A tile stores one vfloat per
 * feature or hidden unit, so every product with the tiny weight
 * matrices is a vector operation over the tile. Gradients are summed
 * lane-wise over all the tiles of an instance and reduced across lanes
 * once at the end. */

static inline float lane_sum(vfloat v) {
  float lanes[VL], s = 0.0f;
  memcpy(lanes, &v, sizeof lanes);
  for (int l = 0; l < VL; l++) s += lanes[l];
  return s;
}


/* Decoder weight D[f][k]: W^T for linear and neuron, W2 for computation. */
static inline float decoder_weight(const toy_model *m, const float *W1,
                                   const float *W2, int64_t f, int64_t k) {
  return m->kind == TOY_COMPUTATION ? W2[f * m->n_hidden + k]
                                    : W1[k * m->n_features + f];
}


/* Loads samples b0 .. b0 + nt - 1 of instance i into xt [F] (lane t is
 * sample b0 + t, padding lanes are 0), from x or drawn from `draw` with
 * the counters toy_generate_batch uses. `row` is scratch for F floats. */
static void tile_load(const toy_model *m, int64_t i, const float *x,
                      const toy_draw *draw, int64_t b0, int64_t nt,
                      vfloat *xt, float *row) {
  const int64_t I = m->n_instances, F = m->n_features;
  if (draw == NULL) {
    for (int64_t f = 0; f < F; f++) {
      vfloat v = { 0 };
      for (int64_t t = 0; t < nt; t++) v[t] = x[((b0 + t) * I + i) * F + f];
      xt[f] = v;
    }
    return;
  }
  /* Features j and j + F2 of the tile are the two halves of one vector
   * of draws whose counters are I * Fh apart. */
  const int64_t Fh = draws_per_row(F);
  const uint64_t stride = (uint64_t)(I * Fh);
  const uint64_t c0 = draw->base + (uint64_t)((b0 * I + i) * Fh);
  const uint64_t *thr = draw->threshold + i * F;
  const float *scale = draw->scale + i * F;
  const uint64_t key = draw->key;
  const float mag_scale = draw->mag_scale;
  const float mag_offset = draw->mag_offset;
  const int64_t F2 = F / 2;
  for (int64_t j = 0; j < Fh; j++) {
    const int64_t f = j < F2 ? j : F - 1, second = j < F2;
    const uint64_t thr0 = thr[f], thr1 = second ? thr[j + F2] : 0;
    const float scale0 = scale[f], scale1 = second ? scale[j + F2] : 0.0f;
    float lo[VL], hi[VL];
    #pragma omp simd
    for (int64_t t = 0; t < VL; t++) {
      uint64_t z = draw_bits(key, c0 + (uint64_t)t * stride + (uint64_t)j);
      /* padding lanes get a zero threshold, so they stay 0 */
      lo[t] = draw_value(z & 0xFFFFFFFFu, t < nt ? thr0 : 0, scale0,
                         mag_scale, mag_offset);
      hi[t] = draw_value(z >> 32, t < nt ? thr1 : 0, scale1, mag_scale,
                         mag_offset);
    }
    memcpy(&xt[f], lo, sizeof lo);
    if (second) memcpy(&xt[j + F2], hi, sizeof hi);
  }
  /* Pairs are redrawn sample by sample, over the independent values, as
   * draw_row does. */
  int64_t np = 2 * (m->n_correlated_pairs + m->n_anticorrelated_pairs);
  for (int64_t t = 0; np > 0 && t < nt; t++) {
    for (int64_t f = 0; f < np; f++) row[f] = xt[f][t];
    draw_pairs(m, draw, c0 + (uint64_t)t * stride, i, row);
    for (int64_t f = 0; f < np; f++) xt[f][t] = row[f];
  }
}


/* Forward of a loaded tile of instance i: h [H] after its ReLU (if any)
 * and the output pre-activation o [F]. */
static void tile_forward(const toy_model *m, int64_t i, const vfloat *xt,
                         vfloat *h, vfloat *o) {
  const int64_t F = m->n_features, H = m->n_hidden;
  const float *W1 = m->W1 + i * H * F;
  const float *W2 = m->kind == TOY_COMPUTATION ? m->W2 + i * F * H : NULL;
  const float *b = m->b_final + i * F;
  const vfloat zero = { 0 };

  for (int64_t k = 0; k < H; k++) {
    vfloat a = zero;
    for (int64_t f = 0; f < F; f++) a += W1[k * F + f] * xt[f];
    h[k] = m->kind == TOY_LINEAR ? a : where_positive(a, a);
  }
  for (int64_t f = 0; f < F; f++) {
    vfloat a = zero + b[f];
    for (int64_t k = 0; k < H; k++) a += decoder_weight(m, W1, W2, f, k) * h[k];
    o[f] = a;
  }
}


/* Vectors one thread needs for tiles: xt, o, d [F], h, dh [H], the
 * lane-wise gradient sums gW1 [H*F], gW2 [F*H], gb [F] and the loss,
 * and F floats of row scratch (rounded up to vectors). */
static int64_t tile_vectors(const toy_model *m) {
  const int64_t F = m->n_features, H = m->n_hidden;
  return 3 * F + 2 * H + 2 * H * F + F + 1 + (F + VL - 1) / VL;
}


void toy_forward(const toy_model *m, const float *x, int64_t batch,
                 float *hidden, float *out) {
  const int64_t I = m->n_instances, F = m->n_features, H = m->n_hidden;
  const int64_t tiles = (batch + VL - 1) / VL;

  #pragma omp parallel if (batch * I * F * H > 65536)
  {
    /* Tile buffers per thread: forward is not a training step, so it may
     * allocate. */
    vfloat *buf = NULL;
    if (posix_memalign((void **)&buf, 64,
                       (size_t)(2 * F + H) * sizeof(vfloat)) == 0) {
      vfloat *xt = buf, *o = buf + F, *h = o + F;
      #pragma omp for schedule(static) collapse(2)
      for (int64_t i = 0; i < I; i++) {
        for (int64_t tile = 0; tile < tiles; tile++) {
          int64_t b0 = tile * VL;
          int64_t nt = batch - b0 < VL ? batch - b0 : VL;
          tile_load(m, i, x, NULL, b0, nt, xt, NULL);
          tile_forward(m, i, xt, h, o);
          for (int64_t t = 0; t < nt; t++) {
            int64_t r = (b0 + t) * I + i;
            if (hidden != NULL)
              for (int64_t k = 0; k < H; k++) hidden[r * H + k] = h[k][t];
            if (out != NULL)
              for (int64_t f = 0; f < F; f++)
                out[r * F + f] = o[f][t] > 0.0f ? o[f][t] : 0.0f;
          }
        }
      }
      free(buf);
    }
  }
}


double toy_loss(const toy_model *m, const float *out, const float *x,
                int64_t batch, double *inst_loss) {
  const int64_t I = m->n_instances, F = m->n_features;
  const int absolute = m->kind == TOY_COMPUTATION;
  double total = 0.0;
  for (int64_t i = 0; i < I; i++) {
    const float *imp = m->importance + i * F;
    double sum = 0.0;
    for (int64_t b = 0; b < batch; b++) {
      const float *xo = out + (b * I + i) * F, *xi = x + (b * I + i) * F;
      for (int64_t f = 0; f < F; f++) {
        double target = absolute ? fabs((double)xi[f]) : (double)xi[f];
        double d = (double)xo[f] - target;
        sum += (double)imp[f] * d * d;
      }
    }
    double mean = batch > 0 && F > 0 ? sum / (double)(batch * F) : 0.0;
    if (inst_loss != NULL) inst_loss[i] = mean;
    total += mean;
  }
  return total;
}


/* Grows the float and index scratch to at least the given counts;
 * returns 0 when out of memory. The sizes depend on the model and the
 * thread count, not on the batch, so only a model's first backward (or
 * one with more threads) allocates. */
static int reserve_scratch(toy_model *m, int64_t floats, int64_t indices) {
  if (m->scratch_floats < floats) {
    void *p = NULL;
    if (posix_memalign(&p, 64, (size_t)floats * sizeof(float)) != 0) return 0;
    free(m->scratch);
    m->scratch = p;
    m->scratch_floats = floats;
  }
  if (m->index_scratch_count < indices) {
    int32_t *p = realloc(m->index_scratch, (size_t)indices * sizeof(int32_t));
    if (p == NULL) return 0;
    m->index_scratch = p;
    m->index_scratch_count = indices;
  }
  return 1;
}


/* Computes tile_instance_backward for F <= 8 features and H <= 3 hidden
 * units known at compile time. Every loop has constant bounds, so the
 * gradient sums, tile values and weights stay in registers instead of
 * the scratch vectors. It sums in the generic kernel's order, so the
 * two agree up to float rounding. */
static inline __attribute__((always_inline)) double
tile_small(toy_model *m, int64_t i, const float *x, const toy_draw *draw,
           int64_t batch, vfloat *scratch, const int F, const int H) {
  const int computation = m->kind == TOY_COMPUTATION;
  const int relu_hidden = m->kind != TOY_LINEAR;
  const float *W1 = m->W1 + i * H * F;
  const float *W2 = computation ? m->W2 + i * F * H : NULL;
  const float *imp = m->importance + i * F;
  const float *bias = m->b_final + i * F;
  const float scale2 = 2.0f / (float)(batch * F);
  const vfloat zero = { 0 };
  vfloat *xt = scratch;
  float *row = (float *)(scratch + 8);
  float w[3][8], dw[8][3], b[8], impf[8], impd[8];
  vfloat gW1[3][8], gW2[8][3], gb[8], loss = zero, lane_index;

  for (int k = 0; k < H; k++)
    for (int f = 0; f < F; f++) {
      w[k][f] = W1[k * F + f];
      dw[f][k] = computation ? W2[f * H + k] : W1[k * F + f];
      gW1[k][f] = zero;
      gW2[f][k] = zero;
    }
  for (int f = 0; f < F; f++) {
    b[f] = bias[f];
    impf[f] = imp[f];
    impd[f] = imp[f] * scale2;
    gb[f] = zero;
  }
  for (int l = 0; l < VL; l++) lane_index[l] = (float)l;

  for (int64_t b0 = 0; b0 < batch; b0 += VL) {
    const int64_t nt = batch - b0 < VL ? batch - b0 : VL;
    const vfloat active = (vfloat)((vmask)(zero + 1.0f) &
                                   (lane_index < (float)nt));
    vfloat xv[8], h[3], d[8], dh[3];
    tile_load(m, i, x, draw, b0, nt, xt, row);
    for (int f = 0; f < F; f++) xv[f] = xt[f];

    for (int k = 0; k < H; k++) {
      vfloat a = zero;
      for (int f = 0; f < F; f++) a += w[k][f] * xv[f];
      h[k] = relu_hidden ? where_positive(a, a) : a;
    }
    for (int f = 0; f < F; f++) {
      vfloat o = zero + b[f];
      for (int k = 0; k < H; k++) o += dw[f][k] * h[k];
      vfloat target = xv[f];
      if (computation) target = (vfloat)((vmask)target & 0x7fffffff);
      vfloat e = (where_positive(o, o) - target) * active;
      loss += impf[f] * e * e;
      d[f] = where_positive(o, impd[f] * e);
      gb[f] += d[f];
    }
    for (int k = 0; k < H; k++) dh[k] = zero;
    for (int f = 0; f < F; f++)
      for (int k = 0; k < H; k++) {
        if (computation) gW2[f][k] += d[f] * h[k];
        else gW1[k][f] += d[f] * h[k];
        dh[k] += dw[f][k] * d[f];
      }
    for (int k = 0; k < H; k++) {
      vfloat g = relu_hidden ? where_positive(h[k], dh[k]) : dh[k];
      for (int f = 0; f < F; f++) gW1[k][f] += g * xv[f];
    }
  }

  float *dW1 = m->dW1 + i * H * F, *db = m->db_final + i * F;
  for (int k = 0; k < H; k++)
    for (int f = 0; f < F; f++) dW1[k * F + f] += lane_sum(gW1[k][f]);
  if (computation) {
    float *dW2 = m->dW2 + i * F * H;
    for (int f = 0; f < F; f++)
      for (int k = 0; k < H; k++) dW2[f * H + k] += lane_sum(gW2[f][k]);
  }
  for (int f = 0; f < F; f++) db[f] += lane_sum(gb[f]);
  return (double)lane_sum(loss);
}


#define TILE_SMALL_CASE(f, h)                                          \
  case (f) * 4 + (h):                                                  \
    *sum = tile_small(m, i, x, draw, batch, scratch, f, h);            \
    return 1;

#define TILE_SMALL_ROW(f)                                              \
  TILE_SMALL_CASE(f, 1) TILE_SMALL_CASE(f, 2) TILE_SMALL_CASE(f, 3)

/* Runs tile_small when an instance of it fits the model and stores the
 * instance's sum of importance * error^2 in *sum; returns 0 otherwise. */
static int tile_small_backward(toy_model *m, int64_t i, const float *x,
                               const toy_draw *draw, int64_t batch,
                               vfloat *scratch, double *sum) {
  if (m->n_features > 8 || m->n_hidden > 3) return 0;
  switch (m->n_features * 4 + m->n_hidden) {
    TILE_SMALL_ROW(1) TILE_SMALL_ROW(2) TILE_SMALL_ROW(3) TILE_SMALL_ROW(4)
    TILE_SMALL_ROW(5) TILE_SMALL_ROW(6) TILE_SMALL_ROW(7) TILE_SMALL_ROW(8)
  default:
    return 0;
  }
}


/* Backward of all tiles of instance i: adds the gradients to the model's
 * and returns the sum of importance * error^2. */
static double tile_instance_backward(toy_model *m, int64_t i, const float *x,
                                     const toy_draw *draw, int64_t batch,
                                     vfloat *scratch) {
  const int64_t F = m->n_features, H = m->n_hidden;
  const int computation = m->kind == TOY_COMPUTATION;
  const float *W1 = m->W1 + i * H * F;
  const float *W2 = computation ? m->W2 + i * F * H : NULL;
  const float *imp = m->importance + i * F;
  const float scale2 = 2.0f / (float)(batch * F);
  const vfloat zero = { 0 };
  vfloat *xt = scratch, *o = xt + F, *d = o + F, *h = d + F, *dh = h + H;
  vfloat *gW1 = dh + H, *gW2 = gW1 + H * F, *gb = gW2 + F * H;
  vfloat *loss = gb + F;
  float *row = (float *)(loss + 1);
  vfloat lane_index;
  double small_sum;
  if (tile_small_backward(m, i, x, draw, batch, scratch, &small_sum))
    return small_sum;
  for (int l = 0; l < VL; l++) lane_index[l] = (float)l;

  for (int64_t k = 0; k < 2 * H * F + F + 1; k++) gW1[k] = zero;
  for (int64_t b0 = 0; b0 < batch; b0 += VL) {
    const int64_t nt = batch - b0 < VL ? batch - b0 : VL;
    const vfloat active = (vfloat)((vmask)(zero + 1.0f) &
                                   (lane_index < (float)nt));
    tile_load(m, i, x, draw, b0, nt, xt, row);
    tile_forward(m, i, xt, h, o);

    /* d = dL/do: 2 / (B F) * importance * (ReLU(o) - target) where o > 0,
     * zero in padding lanes */
    for (int64_t f = 0; f < F; f++) {
      vfloat target = xt[f];
      if (computation) target = (vfloat)((vmask)target & 0x7fffffff);  /* |x| */
      vfloat y = where_positive(o[f], o[f]);
      vfloat e = (y - target) * active;
      *loss += imp[f] * e * e;
      d[f] = where_positive(o[f], (imp[f] * scale2) * e);
      gb[f] += d[f];
    }

    /* decoder gradient and dh = D^T d */
    for (int64_t k = 0; k < H; k++) dh[k] = zero;
    for (int64_t f = 0; f < F; f++)
      for (int64_t k = 0; k < H; k++) {
        const float w = decoder_weight(m, W1, W2, f, k);
        if (computation) gW2[f * H + k] += d[f] * h[k];
        else gW1[k * F + f] += d[f] * h[k];
        dh[k] += w * d[f];
      }

    /* through the hidden ReLU, then the encoder gradient */
    for (int64_t k = 0; k < H; k++) {
      vfloat g = m->kind == TOY_LINEAR ? dh[k] : where_positive(h[k], dh[k]);
      for (int64_t f = 0; f < F; f++) gW1[k * F + f] += g * xt[f];
    }
  }

  float *dW1 = m->dW1 + i * H * F, *db = m->db_final + i * F;
  for (int64_t k = 0; k < H * F; k++) dW1[k] += lane_sum(gW1[k]);
  if (computation) {
    float *dW2 = m->dW2 + i * F * H;
    for (int64_t k = 0; k < F * H; k++) dW2[k] += lane_sum(gW2[k]);
  }
  for (int64_t f = 0; f < F; f++) db[f] += lane_sum(gb[f]);
  return (double)lane_sum(*loss);
}


static double tiled_backward(toy_model *m, const float *x,
                             const toy_draw *draw, int64_t batch,
                             double *inst_loss) {
  const int64_t I = m->n_instances, F = m->n_features;
  const int threads = max_threads();
  const int64_t per_thread = tile_vectors(m);
  if (!reserve_scratch(m, per_thread * threads * VL, 0)) return -1.0;
  double total = 0.0;

  /* Dynamic: a thread that the OS preempts does not hold back the
   * instances it would have been given. */
  #pragma omp parallel for schedule(dynamic, 1) reduction(+:total) \
    num_threads(threads) if (batch * I * F * m->n_hidden > 16384)
  for (int64_t i = 0; i < I; i++) {
    vfloat *scratch = (vfloat *)m->scratch + per_thread * thread_id();
    double sum = tile_instance_backward(m, i, x, draw, batch, scratch);
    double mean = sum / (double)(batch * F);
    if (inst_loss != NULL) inst_loss[i] = mean;
    total += mean;
  }
  return total;
}


/* ------------------------------------------------------ per-sample pass */

/* For wider models the backward goes sample by sample and uses sparsity.
 * The encoder and its gradient touch only the features present in x.
 * The decoder touches only the nonzero hidden units, and the decoder
 * gradient and dh only the outputs whose ReLU is open. Rows are padded
 * to multiples of VL floats so every inner loop is whole vectors.
 *
 * Work is split into units (instance, part of the batch) handed out
 * dynamically, because instances at different feature probabilities
 * cost very different amounts. Each unit accumulates into its own
 * buffers, which are summed into the gradients at the end. */



/* Writes the nonzero entries of v [n] (n a multiple of VL) and their
 * indices to the front of val [n] and idx [n]; returns their count. No
 * branches, because whether an entry is zero is random. */
static inline int compact_nonzero(const float *restrict v, int64_t n,
                                  float *restrict val, int32_t *restrict idx) {
  int count = 0;
#ifdef __AVX512F__
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                         11, 12, 13, 14, 15);
  for (int64_t f = 0; f < n; f += 16) {
    __m512 x = _mm512_loadu_ps(v + f);
    __mmask16 k = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    __m512i at = _mm512_add_epi32(lane, _mm512_set1_epi32((int)f));
    /* Whole-vector stores: entries past the count are overwritten later
     * or never read, and count + 16 <= f + 16 <= n. */
    _mm512_storeu_ps(val + count, _mm512_maskz_compress_ps(k, x));
    _mm512_storeu_si512(idx + count, _mm512_maskz_compress_epi32(k, at));
    count += __builtin_popcount((unsigned)k);
  }
#else
  for (int64_t f = 0; f < n; f++) {
    idx[count] = (int32_t)f;
    val[count] = v[f];
    count += v[f] != 0.0f;
  }
#endif
  return count;
}


/* init + sum_j val[j] * rows[idx[j] * stride + c .. + VL], with four
 * independent accumulators so the FMA latency overlaps. */
static inline vfloat sum_rows(const float *restrict rows, int64_t stride,
                              int64_t c, const int32_t *restrict idx,
                              const float *restrict val, int n, vfloat init) {
  vfloat a0 = init, a1 = { 0 }, a2 = { 0 }, a3 = { 0 };
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    a0 += val[j] * *(const vfloat *)(rows + idx[j] * stride + c);
    a1 += val[j + 1] * *(const vfloat *)(rows + idx[j + 1] * stride + c);
    a2 += val[j + 2] * *(const vfloat *)(rows + idx[j + 2] * stride + c);
    a3 += val[j + 3] * *(const vfloat *)(rows + idx[j + 3] * stride + c);
  }
  for (; j < n; j++)
    a0 += val[j] * *(const vfloat *)(rows + idx[j] * stride + c);
  return (a0 + a1) + (a2 + a3);
}


typedef struct sparse_layout {
  int64_t F, H, Fp, Hp, parts, units;
  int64_t packed;      /* floats of packed weights of one instance */
  int64_t unit;        /* floats of accumulators per unit */
  int64_t thread;      /* floats of temporaries per thread */
  int64_t thread_idx;  /* indices per thread */
  int two_acc;         /* separate encoder and decoder accumulators */
} sparse_layout;


/* Sparse instances of the linear model skip the hidden layer: with the
 * Gram matrix M = W^T W the output is o = b_final + M x, a sum over the
 * present features only, and the gradient is dW = W S with
 * S = C + C^T, C = sum over samples of x d^T, which also needs only the
 * present features. Each present feature then costs two passes over F
 * outputs instead of work on H hidden units plus a dense decoder and
 * its gradient. Against the dense tiles (dense_unit) the break-even was
 * near H present features per sample on a 100->20 model, so denser
 * instances keep the hidden layer. */
static int use_gram(const toy_model *m, int64_t i) {
  if (m->kind != TOY_LINEAR) return 0;
  double expected_present = 0.0;
  for (int64_t f = 0; f < m->n_features; f++)
    expected_present += m->feature_probability[i * m->n_features + f];
  return expected_present <= (double)m->n_hidden;
}


/* Floats of per-thread scratch that dense_unit needs. */
static int64_t dense_thread_floats(int64_t Fp, int64_t Hp);


static sparse_layout sparse_plan(const toy_model *m) {
  sparse_layout s;
  s.F = m->n_features;
  s.H = m->n_hidden;
  s.Fp = pad_vl(s.F);
  s.Hp = pad_vl(s.H);
  /* A fixed split, so the gradients are summed in the same order (and
   * come out bit for bit the same) whatever the thread count. */
  s.parts = 4;
  s.units = m->n_instances * s.parts;
  s.two_acc = m->kind == TOY_COMPUTATION;
  /* enc [F][Hp], drow [F][Hp] (the same as enc unless computation),
   * dec [H][Fp], bias [Fp], imp2 [Fp] */
  s.packed = (s.two_acc ? 2 : 1) * s.F * s.Hp + s.H * s.Fp + 2 * s.Fp;
  /* genc [F][Hp] (and gdec [F][Hp]), gdb [Fp], loss [VL] */
  s.unit = (s.two_acc ? 2 : 1) * s.F * s.Hp + s.Fp + VL;
  /* xpad, o, d [Fp]; xval, dval [F] padded; h, dh, hval [Hp] */
  s.thread = 3 * s.Fp + 2 * s.Fp + 3 * s.Hp;
  s.thread_idx = 2 * s.Fp + s.Hp;
  if (dense_thread_floats(s.Fp, s.Hp) > s.thread)
    s.thread = dense_thread_floats(s.Fp, s.Hp);
  if (m->kind == TOY_LINEAR) {
    /* Gram path: M [F][Fp], bias, imp2 [Fp]; CT [F][Fp], gdb [Fp], loss */
    int64_t gram_packed = s.F * s.Fp + 2 * s.Fp;
    int64_t gram_unit = s.F * s.Fp + s.Fp + VL;
    if (gram_packed > s.packed) s.packed = gram_packed;
    if (gram_unit > s.unit) s.unit = gram_unit;
  }
  return s;
}


/* Packs instance i's weights: enc[f][k] = W1[k][f], drow[f][k] = D[f][k],
 * dec[k][f] = D[f][k], with zero padding, plus b_final and
 * 2 * scale * importance. For linear and neuron models drow is enc. */
static void sparse_pack(const toy_model *m, const sparse_layout *s, int64_t i,
                        float scale, float *packed) {
  const int64_t F = s->F, H = s->H, Fp = s->Fp, Hp = s->Hp;
  float *enc = packed, *drow = s->two_acc ? enc + F * Hp : enc;
  float *dec = drow + F * Hp;
  float *bias = dec + H * Fp, *imp2 = bias + Fp;
  const float *W1 = m->W1 + i * H * F;
  const float *W2 = m->kind == TOY_COMPUTATION ? m->W2 + i * F * H : NULL;
  memset(packed, 0, (size_t)s->packed * sizeof(float));
  for (int64_t k = 0; k < H; k++)
    for (int64_t f = 0; f < F; f++) {
      float w = W1[k * F + f];
      float dw = W2 != NULL ? W2[f * H + k] : w;
      enc[f * Hp + k] = w;
      drow[f * Hp + k] = dw;
      dec[k * Fp + f] = dw;
    }
  for (int64_t f = 0; f < F; f++) {
    bias[f] = m->b_final[i * F + f];
    imp2[f] = 2.0f * scale * m->importance[i * F + f];
  }
}


/* Adds the contribution of `count` samples with no feature present: h is
 * 0, so the output is ReLU(b_final) and only db gets a gradient. Returns
 * their sum of 2 * scale * importance * error^2. */
static double add_empty_samples(int64_t count, int64_t F,
                                const float *restrict bias,
                                const float *restrict imp2,
                                float *restrict gdb) {
  double loss = 0.0;
  if (count == 0) return 0.0;
  for (int64_t f = 0; f < F; f++) {
    float y = bias[f] > 0.0f ? bias[f] : 0.0f;   /* target |0| = 0 */
    loss += (double)(imp2[f] * y * y) * (double)count;
    gdb[f] += (float)count * (imp2[f] * y);
  }
  return loss;
}


/* Runs samples [b0, b1) of instance i, adding to the unit accumulators;
 * returns the sum of 2 * scale * importance * error^2. */
static double sparse_unit(const toy_model *m, const sparse_layout *s,
                          int64_t i, const float *x, const toy_draw *draw,
                          int64_t b0, int64_t b1,
                          const float *packed, float *acc, float *tmp,
                          int32_t *idx) {
  const int64_t I = m->n_instances, F = s->F, H = s->H;
  const int64_t Fp = s->Fp, Hp = s->Hp;
  const int relu_hidden = m->kind != TOY_LINEAR;
  const int absolute = m->kind == TOY_COMPUTATION;
  const float *restrict enc = packed;
  const float *restrict drow = s->two_acc ? enc + F * Hp : enc;
  const float *restrict dec = drow + F * Hp;
  const float *restrict bias = dec + H * Fp, *restrict imp2 = bias + Fp;
  float *restrict genc = acc;
  float *restrict gdec = s->two_acc ? acc + F * Hp : acc;
  float *restrict gdb = acc + (s->two_acc ? 2 : 1) * F * Hp;
  float *restrict xpad = tmp, *restrict o = xpad + Fp, *restrict d = o + Fp;
  float *restrict xval = d + Fp, *restrict dval = xval + Fp;
  float *restrict h = dval + Fp, *restrict dh = h + Hp, *restrict hval = dh + Hp;
  int32_t *restrict xidx = idx, *restrict didx = xidx + Fp;
  int32_t *restrict hidx = didx + Fp;
  double loss = 0.0;
  int64_t empty = 0;

  for (int64_t f = F; f < Fp; f++) xpad[f] = 0.0f;
  for (int64_t b = b0; b < b1; b++) {
    const float *xr = xpad;
    int nx = 0, nd = 0, nh = 0;
    if (draw != NULL) draw_row(m, draw, b, i, xpad);
    else xr = x + (b * I + i) * F;
    if (xr != xpad) memcpy(xpad, xr, (size_t)F * sizeof(float));
    nx = compact_nonzero(xpad, Fp, xval, xidx);
    if (nx == 0) {                /* common at low feature probability */
      empty++;
      continue;
    }

    /* h = W1 x over the present features only */
    for (int64_t c = 0; c < Hp; c += VL) {
      const vfloat zero = { 0 };
      vfloat a = sum_rows(enc, Hp, c, xidx, xval, nx, zero);
      if (relu_hidden) a = where_positive(a, a);
      *(vfloat *)(h + c) = a;
    }
    nh = compact_nonzero(h, Hp, hval, hidx);

    /* o = b_final + D h over the nonzero hidden units */
    for (int64_t c = 0; c < Fp; c += VL) {
      *(vfloat *)(o + c) = sum_rows(dec, Fp, c, hidx, hval, nh,
                                    *(const vfloat *)(bias + c));
    }

    /* loss, d = dL/do (zero where the output ReLU is closed), db */
    float sample_loss = 0.0f;
    #pragma omp simd reduction(+:sample_loss)
    for (int64_t f = 0; f < Fp; f++) {
      float target = absolute ? fabsf(xpad[f]) : xpad[f];
      float y = o[f] > 0.0f ? o[f] : 0.0f;
      float e = y - target;
      float g = o[f] > 0.0f ? imp2[f] * e : 0.0f;
      sample_loss += imp2[f] * e * e;
      d[f] = g;
      gdb[f] += g;
    }
    loss += (double)sample_loss;
    nd = compact_nonzero(d, Fp, dval, didx);

    /* dh = D^T d over the open outputs, through the hidden ReLU */
    for (int64_t c = 0; c < Hp; c += VL) {
      const vfloat zero = { 0 };
      vfloat a = sum_rows(drow, Hp, c, didx, dval, nd, zero);
      if (relu_hidden) a = where_positive(*(const vfloat *)(h + c), a);
      *(vfloat *)(dh + c) = a;
    }

    /* decoder gradient gdec[f][k] += d[f] h[k], encoder gradient
     * genc[f][k] += x[f] dh[k] */
    for (int64_t c = 0; c < Hp; c += VL) {
      const vfloat hc = *(const vfloat *)(h + c);
      const vfloat dhc = *(const vfloat *)(dh + c);
      for (int j = 0; j < nd; j++)
        *(vfloat *)(gdec + didx[j] * Hp + c) += dval[j] * hc;
      for (int j = 0; j < nx; j++)
        *(vfloat *)(genc + xidx[j] * Hp + c) += xval[j] * dhc;
    }
  }
  return loss + add_empty_samples(empty, F, bias, imp2, gdb);
}


/* Packs M = W^T W [F][Fp] of instance i, b_final and
 * 2 * scale * importance, as the Gram path reads them. */
static void gram_pack(const toy_model *m, const sparse_layout *s, int64_t i,
                      float scale, float *packed) {
  const int64_t F = s->F, H = s->H, Fp = s->Fp;
  const float *W = m->W1 + i * H * F;
  float *M = packed, *bias = M + F * Fp, *imp2 = bias + Fp;
  memset(packed, 0, (size_t)(F * Fp + 2 * Fp) * sizeof(float));
  for (int64_t g = 0; g < F; g++) {
    float *row = M + g * Fp;
    for (int64_t k = 0; k < H; k++) {
      const float w = W[k * F + g];
      const float *wk = W + k * F;
      #pragma omp simd
      for (int64_t f = 0; f < F; f++) row[f] += w * wk[f];
    }
  }
  for (int64_t f = 0; f < F; f++) {
    bias[f] = m->b_final[i * F + f];
    imp2[f] = 2.0f * scale * m->importance[i * F + f];
  }
}


/* sparse_unit for the Gram path: adds x d^T (transposed, CT[g][f] +=
 * x[g] d[f]) and db to the unit accumulators; returns the sum of
 * 2 * scale * importance * error^2. */
static double gram_unit(const toy_model *m, const sparse_layout *s,
                        int64_t i, const float *x, const toy_draw *draw,
                        int64_t b0, int64_t b1, const float *packed,
                        float *acc, float *tmp, int32_t *idx) {
  const int64_t I = m->n_instances, F = s->F, Fp = s->Fp;
  const float *restrict M = packed;
  const float *restrict bias = M + F * Fp, *restrict imp2 = bias + Fp;
  float *restrict CT = acc, *restrict gdb = acc + F * Fp;
  float *restrict xpad = tmp, *restrict o = xpad + Fp, *restrict d = o + Fp;
  float *restrict xval = d + Fp;
  int32_t *restrict xidx = idx;
  double loss = 0.0;
  int64_t empty = 0;

  for (int64_t f = F; f < Fp; f++) xpad[f] = 0.0f;
  for (int64_t b = b0; b < b1; b++) {
    const float *xr = xpad;
    if (draw != NULL) draw_row(m, draw, b, i, xpad);
    else xr = x + (b * I + i) * F;
    if (xr != xpad) memcpy(xpad, xr, (size_t)F * sizeof(float));
    int nx = compact_nonzero(xpad, Fp, xval, xidx);
    if (nx == 0) {
      empty++;
      continue;
    }

    /* o = b_final + M x over the present features */
    for (int64_t c = 0; c < Fp; c += VL)
      *(vfloat *)(o + c) = sum_rows(M, Fp, c, xidx, xval, nx,
                                    *(const vfloat *)(bias + c));

    float sample_loss = 0.0f;
    #pragma omp simd reduction(+:sample_loss)
    for (int64_t f = 0; f < Fp; f++) {
      float y = o[f] > 0.0f ? o[f] : 0.0f;
      float e = y - xpad[f];
      float g = o[f] > 0.0f ? imp2[f] * e : 0.0f;
      sample_loss += imp2[f] * e * e;
      d[f] = g;
      gdb[f] += g;
    }
    loss += (double)sample_loss;

    /* CT[g][f] += x[g] d[f] for the present g */
    for (int64_t c = 0; c < Fp; c += VL) {
      const vfloat dc = *(const vfloat *)(d + c);
      for (int j = 0; j < nx; j++)
        *(vfloat *)(CT + xidx[j] * Fp + c) += xval[j] * dc;
    }
  }
  return loss + add_empty_samples(empty, F, bias, imp2, gdb);
}


/* Adds dW = W S with S = C + C^T, C summed over the units of instance i,
 * to the gradient; S goes to `work` [F][Fp]. */
static void gram_reduce(toy_model *m, const sparse_layout *s, int64_t i,
                        const float *units, float *work) {
  const int64_t F = s->F, H = s->H, Fp = s->Fp;
  const float *W = m->W1 + i * H * F;
  float *dW = m->dW1 + i * H * F;
  /* C^T summed over the parts into work, then S = C + C^T in place, each
   * pair of mirrored entries at once. */
  memcpy(work, units, (size_t)(F * Fp) * sizeof(float));
  for (int64_t part = 1; part < s->parts; part++) {
    const float *CT = units + part * s->unit;
    #pragma omp simd
    for (int64_t e = 0; e < F * Fp; e++) work[e] += CT[e];
  }
  for (int64_t g = 0; g < F; g++)
    for (int64_t f = g; f < F; f++) {
      float v = work[g * Fp + f] + work[f * Fp + g];
      work[g * Fp + f] = v;
      work[f * Fp + g] = v;
    }
  for (int64_t k = 0; k < H; k++) {
    float *row = dW + k * F;
    for (int64_t g = 0; g < F; g++) {
      const float w = W[k * F + g];
      const float *sg = work + g * Fp;
      #pragma omp simd
      for (int64_t f = 0; f < F; f++) row[f] += w * sg[f];
    }
  }
}


/* Dense instances go through the batch in tiles of VL samples, one
 * vfloat per feature or hidden unit as in the tile passes. Each product
 * keeps a block of 8 accumulators in registers and streams the weights
 * that sparse_pack laid out, one FMA per weight and tile. The weight
 * gradients put the hidden units in lanes. The tile's h and dh are
 * transposed to rows, then genc[f][k] += x[s][f] dh[s][k] and
 * gdec[f][k] += d[s][f] h[s][k] run with x[s][f] and d[s][f] broadcast.
 * The accumulators have the layout of sparse_unit's, so sparse_backward
 * sums them into the gradients the same way. */

#define DENSE_BLOCK 8



static int64_t dense_thread_floats(int64_t Fp, int64_t Hp) {
  /* Per thread: the vfloats xt, d, gbt [Fp] and h, dh [Hp], the floats
   * hrow, dhrow [VL][Hp] and row [Fp], the indices present [Fp], and
   * xval, xidx [VL][Fp] for the present features of each sample. */
  return VL * (3 * Fp + 2 * Hp) + 2 * VL * Hp + 2 * Fp + 2 * VL * Fp;
}


/* Half a vfloat, for hidden sizes that end halfway through a vector. */
typedef float hfloat __attribute__((vector_size(VL / 2 * sizeof(float))));


/* g[f][c..] += sum over lanes s of xs[f][s] * rows[s][c..] for the n
 * rows f = idx[j] (f = j unless INDEXED), over KV vectors and HALF a
 * vector of hidden units per row of g (stride Hp). Callers pass
 * constants for INDEXED, KV and HALF, so each case compiles to its own
 * loop with the sums in registers. */
static inline __attribute__((always_inline)) void
dense_outer(float *restrict g, const vfloat *restrict xs,
            const float *restrict rows, const int32_t *restrict idx,
            int64_t n, int64_t Hp, const int INDEXED, const int KV,
            const int HALF) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    float *gr[4];
    const float *xr[4];
    vfloat a[4][4] = { { { 0 } } };
    hfloat ah[4] = { { 0 } };
    #pragma GCC unroll 4
    for (int u = 0; u < 4; u++) {
      const int64_t f = INDEXED ? idx[j + u] : j + u;
      gr[u] = g + f * Hp;
      xr[u] = (const float *)&xs[f];
      #pragma GCC unroll 4
      for (int v = 0; v < KV; v++) a[u][v] = *(const vfloat *)(gr[u] + v * VL);
      if (HALF) ah[u] = *(const hfloat *)(gr[u] + KV * VL);
    }
    for (int s = 0; s < VL; s++) {
      const float *r = rows + s * Hp;
      #pragma GCC unroll 4
      for (int u = 0; u < 4; u++) {
        const float xv = xr[u][s];
        #pragma GCC unroll 4
        for (int v = 0; v < KV; v++)
          a[u][v] += xv * *(const vfloat *)(r + v * VL);
        if (HALF) ah[u] += xv * *(const hfloat *)(r + KV * VL);
      }
    }
    #pragma GCC unroll 4
    for (int u = 0; u < 4; u++) {
      #pragma GCC unroll 4
      for (int v = 0; v < KV; v++) *(vfloat *)(gr[u] + v * VL) = a[u][v];
      if (HALF) *(hfloat *)(gr[u] + KV * VL) = ah[u];
    }
  }
  for (; j < n; j++) {
    const int64_t f = INDEXED ? idx[j] : j;
    for (int s = 0; s < VL; s++) {
      const float xv = xs[f][s];
      for (int v = 0; v < KV; v++)
        *(vfloat *)(g + f * Hp + v * VL) +=
            xv * *(const vfloat *)(rows + s * Hp + v * VL);
      if (HALF)
        *(hfloat *)(g + f * Hp + KV * VL) +=
            xv * *(const hfloat *)(rows + s * Hp + KV * VL);
    }
  }
}


#define DENSE_OUTER_CASE(h8, kv, half)                                  \
  case h8:                                                              \
    if (idx != NULL) dense_outer(g, xs, rows, idx, n, Hp, 1, kv, half); \
    else dense_outer(g, xs, rows, NULL, n, Hp, 0, kv, half);            \
    return;

/* Runs dense_outer over the first H8 hidden units (H rounded up to 8;
 * the rest of each row of g is left alone), with idx NULL for all of
 * the first n rows. */
static void dense_outer_any(float *g, const vfloat *xs, const float *rows,
                            const int32_t *idx, int64_t n, int64_t Hp,
                            int64_t H8) {
  switch (H8) {
    DENSE_OUTER_CASE(8, 0, 1)
    DENSE_OUTER_CASE(16, 1, 0)
    DENSE_OUTER_CASE(24, 1, 1)
    DENSE_OUTER_CASE(32, 2, 0)
    DENSE_OUTER_CASE(40, 2, 1)
    DENSE_OUTER_CASE(48, 3, 0)
    DENSE_OUTER_CASE(56, 3, 1)
    DENSE_OUTER_CASE(64, 4, 0)
  default:
    for (int64_t j = 0; j < n; j++) {
      const int64_t f = idx != NULL ? idx[j] : j;
      for (int s = 0; s < VL; s++)
        for (int64_t c = 0; c < Hp; c += VL)
          *(vfloat *)(g + f * Hp + c) +=
              xs[f][s] * *(const vfloat *)(rows + s * Hp + c);
    }
  }
}


/* out[k0 + u] = sum_j w[j * ld + k0 + u] * in[j] over j < n, for the
 * blocks k0 of DENSE_BLOCK rows below `rows` (a multiple of the block),
 * starting from init (NULL for zero). */
static inline void dense_product(const float *restrict w, int64_t ld,
                                 const vfloat *restrict in, int64_t n,
                                 int64_t rows, const float *restrict init,
                                 vfloat *restrict out) {
  for (int64_t k0 = 0; k0 < rows; k0 += DENSE_BLOCK) {
    vfloat a[DENSE_BLOCK];
    #pragma GCC unroll 8
    for (int u = 0; u < DENSE_BLOCK; u++) {
      const vfloat zero = { 0 };
      a[u] = init != NULL ? zero + init[k0 + u] : zero;
    }
    for (int64_t j = 0; j < n; j++) {
      const vfloat v = in[j];
      const float *wj = w + j * ld + k0;
      #pragma GCC unroll 8
      for (int u = 0; u < DENSE_BLOCK; u++) a[u] += wj[u] * v;
    }
    #pragma GCC unroll 8
    for (int u = 0; u < DENSE_BLOCK; u++) out[k0 + u] = a[u];
  }
}


/* dense_product over the n inputs f = idx[j] only, from zero. */
static void dense_product_indexed(const float *restrict w, int64_t ld,
                                  const vfloat *restrict in,
                                  const int32_t *restrict idx, int64_t n,
                                  int64_t rows, vfloat *restrict out) {
  for (int64_t k0 = 0; k0 < rows; k0 += DENSE_BLOCK) {
    vfloat a[DENSE_BLOCK] = { { 0 } };
    for (int64_t j = 0; j < n; j++) {
      const vfloat v = in[idx[j]];
      const float *wf = w + idx[j] * ld + k0;
      #pragma GCC unroll 8
      for (int u = 0; u < DENSE_BLOCK; u++) a[u] += wf[u] * v;
    }
    #pragma GCC unroll 8
    for (int u = 0; u < DENSE_BLOCK; u++) out[k0 + u] = a[u];
  }
}


/* Transposes a 16 x 16 block: out row l (at out + l * out_stride) gets
 * lane l of the 16 rows at in + t * in_stride, as lane t. Four rounds
 * swap the off-diagonal blocks of 8, 4, 2 and 1 lanes. */
static inline void transpose_block(float *restrict out, int64_t out_stride,
                                   const float *restrict in,
                                   int64_t in_stride) {
#if VL == 16
  vfloat r[VL];
  for (int t = 0; t < VL; t++) r[t] = *(const vfloat *)(in + t * in_stride);
  for (int d = VL / 2; d > 0; d /= 2) {
    vmask keep, take;
    for (int l = 0; l < VL; l++) {
      keep[l] = (l & d) == 0 ? l : VL + l - d;
      take[l] = (l & d) == 0 ? l + d : VL + l;
    }
    for (int a = 0; a < VL; a++) {
      if (a & d) continue;
      const vfloat x = r[a], y = r[a + d];
      r[a] = __builtin_shuffle(x, y, keep);
      r[a + d] = __builtin_shuffle(x, y, take);
    }
  }
  for (int l = 0; l < VL; l++) *(vfloat *)(out + l * out_stride) = r[l];
#else
  for (int l = 0; l < VL; l++)
    for (int t = 0; t < VL; t++) out[l * out_stride + t] = in[t * in_stride + l];
#endif
}


/* Writes the features f < F with a nonzero value in some lane of xt to
 * idx and returns their count. */
static int64_t tile_present(const vfloat *xt, int64_t F, int32_t *idx) {
  int64_t n = 0;
  for (int64_t f = 0; f < F; f++) {
#ifdef __AVX512F__
    __m512 v = _mm512_load_ps((const float *)&xt[f]);
    int any = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ) != 0;
#else
    int any = 0;
    for (int t = 0; t < VL; t++) any |= xt[f][t] != 0.0f;
#endif
    idx[n] = (int32_t)f;
    n += any;
  }
  return n;
}


/* sparse_unit for dense instances: runs samples [b0, b1) of instance i
 * tile by tile with the same packed weights and accumulators.
 *
 * With `hybrid` set, the input side goes sample by sample over the
 * present features only, as in sparse_unit: h is the sum of the encoder
 * rows of the present features, and genc gets x[f] dh only in those
 * rows. The output side (o, d, dh and gdec), where outputs and targets
 * are dense, stays in the tiles. Empty samples are always left out. */
static double dense_unit(const toy_model *m, const sparse_layout *s,
                         int64_t i, const float *x, const toy_draw *draw,
                         int64_t b0, int64_t b1, const float *packed,
                         float *acc, float *tmp, const int hybrid) {
  const int64_t F = s->F, H = s->H, Fp = s->Fp, Hp = s->Hp;
  const int relu_hidden = m->kind != TOY_LINEAR;
  const int absolute = m->kind == TOY_COMPUTATION;
  const float *restrict enc = packed;
  const float *restrict drow = s->two_acc ? enc + F * Hp : enc;
  const float *restrict dec = drow + F * Hp;
  const float *restrict bias = dec + H * Fp, *restrict imp2 = bias + Fp;
  float *restrict genc = acc;
  float *restrict gdec = s->two_acc ? acc + F * Hp : acc;
  float *restrict gdb = acc + (s->two_acc ? 2 : 1) * F * Hp;
  vfloat *restrict xt = (vfloat *)tmp, *restrict d = xt + Fp;
  vfloat *restrict gbt = d + Fp, *restrict h = gbt + Fp, *restrict dh = h + Hp;
  float *restrict hrow = (float *)(dh + Hp), *restrict dhrow = hrow + VL * Hp;
  float *restrict row = dhrow + VL * Hp;
  int32_t *restrict present = (int32_t *)(row + Fp);
  float *restrict xval = (float *)(present + Fp);
  int32_t *restrict xidx = (int32_t *)(xval + VL * Fp);
  int nx[VL];
  const vfloat zero = { 0 };
  vfloat lane_index;
  double loss = 0.0;

  /* The products run over H8 hidden units and F8 outputs, H and F
   * rounded up to the block, and the hidden units from H8 to Hp stay 0. */
  const int64_t H8 = (H + DENSE_BLOCK - 1) / DENSE_BLOCK * DENSE_BLOCK;
  const int64_t F8 = (F + DENSE_BLOCK - 1) / DENSE_BLOCK * DENSE_BLOCK;
  for (int l = 0; l < VL; l++) lane_index[l] = (float)l;
  for (int64_t f = 0; f < Fp; f++) xt[f] = d[f] = gbt[f] = zero;
  for (int64_t k = 0; k < Hp; k++) h[k] = dh[k] = zero;

  /* Samples with no feature present only reach b_final. Where they are
   * common, they are counted and left out of the tiles, which are then
   * filled row by row; otherwise tile_load draws whole tiles. */
  double p_empty = 1.0;
  for (int64_t f = 0; f < F; f++)
    p_empty *= 1.0 - (double)m->feature_probability[i * F + f];
  const int skip_empty = p_empty > 0.1;
  int64_t empty = 0;
  for (int64_t f = F; f < Fp; f++) row[f] = 0.0f;
  for (int64_t bt = b0; bt < b1;) {
    int64_t nt = 0;
    if (hybrid) {
      /* each sample's present features, scattered into the tile */
      for (int64_t f = 0; f < F; f++) xt[f] = zero;
      for (; nt < VL && bt < b1; bt++) {
        if (draw != NULL) draw_row(m, draw, bt, i, row);
        else memcpy(row, x + (bt * m->n_instances + i) * F,
                    (size_t)F * sizeof(float));
        float *val = xval + nt * Fp;
        int32_t *at = xidx + nt * Fp;
        const int n = compact_nonzero(row, Fp, val, at);
        if (n == 0) {
          empty++;
          continue;
        }
        for (int j = 0; j < n; j++) xt[at[j]][nt] = val[j];
        nx[nt] = n;
        nt++;
      }
      if (nt == 0) break;
    } else if (!skip_empty) {
      nt = b1 - bt < VL ? b1 - bt : VL;
      tile_load(m, i, x, draw, bt, nt, xt, row);
      bt += nt;
    } else {
      for (; nt < VL && bt < b1; bt++) {
        if (draw != NULL) draw_row(m, draw, bt, i, row);
        else memcpy(row, x + (bt * m->n_instances + i) * F,
                    (size_t)F * sizeof(float));
        int nonzero = 0;
        for (int64_t f = 0; f < F; f++) nonzero += row[f] != 0.0f;
        if (nonzero == 0) {
          empty++;
          continue;
        }
        for (int64_t f = 0; f < F; f++) xt[f][nt] = row[f];
        nt++;
      }
      if (nt == 0) break;
      for (int64_t f = 0; f < F; f++)
        for (int64_t t = nt; t < VL; t++) xt[f][t] = 0.0f;
    }
    const vfloat active = (vfloat)((vmask)(zero + 1.0f) &
                                   (lane_index < (float)nt));

    /* h = W1 x, then o = b_final + D h into d */
    int64_t np = 0;
    if (hybrid) {
      /* sample rows of h over the present features, then to lanes */
      for (int64_t t = 0; t < VL; t++)
        for (int64_t c = 0; c < Hp; c += VL) {
          vfloat a = zero;
          if (t < nt)
            a = sum_rows(enc, Hp, c, xidx + t * Fp, xval + t * Fp, nx[t],
                         zero);
          if (relu_hidden) a = where_positive(a, a);
          *(vfloat *)(hrow + t * Hp + c) = a;
        }
      for (int64_t c = 0; c < Hp; c += VL)
        transpose_block((float *)(h + c), VL, hrow + c, Hp);
    } else {
      /* The input side skips features absent from the whole tile. */
      np = tile_present(xt, F, present);
      if (np < F) dense_product_indexed(enc, Hp, xt, present, np, H8, h);
      else dense_product(enc, Hp, xt, F, H8, NULL, h);
      if (relu_hidden)
        for (int64_t k = 0; k < H8; k++) h[k] = where_positive(h[k], h[k]);
    }
    dense_product(dec, Fp, h, H, F8, bias, d);

    /* loss and d = dL/do, zero where the output ReLU is closed and in
     * padding lanes */
    vfloat tile_loss = zero;
    for (int64_t f = 0; f < F; f++) {
      vfloat target = xt[f];
      if (absolute) target = (vfloat)((vmask)target & 0x7fffffff);
      const vfloat o = d[f];
      vfloat e = (where_positive(o, o) - target) * active;
      tile_loss += imp2[f] * e * e;
      d[f] = where_positive(o, imp2[f] * e);
      gbt[f] += d[f];
    }
    for (int64_t f = F; f < Fp; f++) d[f] = zero;
    loss += (double)lane_sum(tile_loss);

    /* dh = D^T d through the hidden ReLU */
    dense_product(drow, Hp, d, F, H8, NULL, dh);
    if (relu_hidden)
      for (int64_t k = 0; k < H8; k++) dh[k] = where_positive(h[k], dh[k]);

    /* hidden units to rows, then the weight gradients */
    for (int64_t c = 0; c < Hp; c += VL)
      transpose_block(dhrow + c, Hp, (const float *)(dh + c), VL);
    if (hybrid) {
      /* genc[f][k] += x[t][f] dh[t][k] for the present f of sample t */
      for (int64_t t = 0; t < nt; t++) {
        const float *restrict val = xval + t * Fp;
        const int32_t *restrict at = xidx + t * Fp;
        const float *restrict dht = dhrow + t * Hp;
        for (int j = 0; j < nx[t]; j++) {
          float *restrict g = genc + at[j] * Hp;
          const float v = val[j];
          int64_t c = 0;
          for (; c + VL <= H8; c += VL)
            *(vfloat *)(g + c) += v * *(const vfloat *)(dht + c);
          if (c < H8)
            *(hfloat *)(g + c) += v * *(const hfloat *)(dht + c);
        }
      }
    } else {
      for (int64_t c = 0; c < Hp; c += VL)
        transpose_block(hrow + c, Hp, (const float *)(h + c), VL);
      dense_outer_any(genc, xt, dhrow, np < F ? present : NULL, np, Hp,
                      H8);
    }
    dense_outer_any(gdec, d, hrow, NULL, F, Hp, H8);
  }
  for (int64_t f = 0; f < F; f++) gdb[f] += lane_sum(gbt[f]);
  return loss + add_empty_samples(empty, F, bias, imp2, gdb);
}


/* Chooses the dense tiles over sparse_unit for instance i (not on the
 * Gram path) from the expected count of present features. sparse_unit
 * saves little on the output side, where most ReLUs are open early in
 * training, and the dense tiles leave out empty samples and absent
 * features, so they win unless most samples are empty.
 * NOTE: the threshold 0.4 is where the two crossed on 100->20 neuron and
 * 100->40 computation models in their first steps (single thread,
 * AVX-512). */
static int use_dense(const toy_model *m, int64_t i) {
  double expected_present = 0.0;
  for (int64_t f = 0; f < m->n_features; f++)
    expected_present += m->feature_probability[i * m->n_features + f];
  return expected_present >= 0.4;
}


/* Chooses the hybrid tiles (dense_unit with the input side sample by
 * sample) for instance i of a computation model, not on the Gram path.
 * NOTE: measured on 100->40 with one thread (AVX-512), per instance and
 * step of 1024 samples, against the dense tiles or sparse_unit: 545 vs
 * 535 us at p = 0.3 (30 features present), 450 vs 505 at 0.1, 419 vs
 * 432 at 0.03, 302 vs 355 at 0.01, 180 vs 215 at 0.003 and 120 vs 120 at
 * 0.001. Hence the limit of F / 5 expected features present. */
static int use_hybrid(const toy_model *m, int64_t i) {
  if (m->kind != TOY_COMPUTATION) return 0;
  double expected_present = 0.0;
  for (int64_t f = 0; f < m->n_features; f++)
    expected_present += m->feature_probability[i * m->n_features + f];
  return expected_present < 0.2 * (double)m->n_features;
}


static double sparse_backward(toy_model *m, const float *x,
                              const toy_draw *draw, int64_t batch,
                              double *inst_loss) {
  const int64_t I = m->n_instances, F = m->n_features, H = m->n_hidden;
  const int threads = max_threads();
  const sparse_layout s = sparse_plan(m);
  const float scale = 1.0f / (float)(batch * F);
  /* Each thread packs the weights of the instance it works on, so only
   * one instance's copy per thread is live in cache. */
  const int64_t packed_total = threads * s.packed;
  const int64_t acc_total = s.units * s.unit;
  if (!reserve_scratch(m, packed_total + acc_total + threads * s.thread,
                       threads * s.thread_idx))
    return -1.0;
  float *packed = m->scratch, *acc = packed + packed_total;
  float *tmp = acc + acc_total;
  double total = 0.0;

  #pragma omp parallel num_threads(threads)
  {
    const int tid = thread_id();
    float *own = packed + tid * s.packed;
    int64_t packed_instance = -1;

    #pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < s.units; u++) {
      int64_t i = u / s.parts, part = u % s.parts;
      const int gram = use_gram(m, i);
      if (packed_instance != i) {
        if (gram) gram_pack(m, &s, i, scale, own);
        else sparse_pack(m, &s, i, scale, own);
        packed_instance = i;
      }
      int64_t b0 = batch * part / s.parts, b1 = batch * (part + 1) / s.parts;
      float *a = acc + u * s.unit;
      memset(a, 0, (size_t)s.unit * sizeof(float));
      double loss;
      const int hybrid = !gram && use_hybrid(m, i);
      if (hybrid || (!gram && use_dense(m, i)))
        loss = dense_unit(m, &s, i, x, draw, b0, b1, own, a,
                          tmp + tid * s.thread, hybrid);
      else
        loss = (gram ? gram_unit : sparse_unit)(
            m, &s, i, x, draw, b0, b1, own, a, tmp + tid * s.thread,
            m->index_scratch + tid * s.thread_idx);
      memcpy(a + s.unit - VL, &loss, sizeof loss);
    }

    /* Sum the units of each instance into its gradients. */
    #pragma omp for schedule(static) reduction(+:total)
    for (int64_t i = 0; i < I; i++) {
      float *dW1 = m->dW1 + i * H * F;
      float *dW2 = m->dW2 != NULL ? m->dW2 + i * F * H : NULL;
      float *db = m->db_final + i * F;
      double sum = 0.0;
      const int gram = use_gram(m, i);
      if (gram) gram_reduce(m, &s, i, acc + i * s.parts * s.unit, own);
      const float *first = acc + i * s.parts * s.unit;
      for (int64_t part = 0; part < s.parts; part++) {
        const float *a = first + part * s.unit;
        double loss;
        memcpy(&loss, a + s.unit - VL, sizeof loss);
        sum += loss;
        if (gram) {
          const float *gdb = a + F * s.Fp;
          for (int64_t f = 0; f < F; f++) db[f] += gdb[f];
        }
      }
      if (!gram) {
        /* The parts are summed in order into the first one, which is then
         * added to the gradients in one transposing pass. */
        const int64_t n = (s.two_acc ? 2 : 1) * F * s.Hp + s.Fp;
        float *restrict a0 = acc + i * s.parts * s.unit;
        for (int64_t part = 1; part < s.parts; part++) {
          const float *restrict a = a0 + part * s.unit;
          #pragma omp simd
          for (int64_t e = 0; e < n; e++) a0[e] += a[e];
        }
        const float *genc = a0;
        const float *gdec = s.two_acc ? a0 + F * s.Hp : a0;
        const float *gdb = a0 + (s.two_acc ? 2 : 1) * F * s.Hp;
        for (int64_t f = 0; f < F; f++) {
          for (int64_t k = 0; k < H; k++) {
            dW1[k * F + f] += genc[f * s.Hp + k];
            if (dW2 != NULL) dW2[f * H + k] += gdec[f * s.Hp + k];
          }
          db[f] += gdb[f];
        }
      }
      /* The units summed imp2 * e^2 = 2 * scale * importance * e^2. */
      double mean = sum / (2.0 * (double)scale) / (double)(batch * F);
      if (inst_loss != NULL) inst_loss[i] = mean;
      total += mean;
    }
  }
  return total;
}


/* The batch-vectorised tiles win for tiny models. Wider ones go through
 * sparse_backward, which picks a kernel per instance. */
static int use_sparse_pass(const toy_model *m) {
  return m->n_features >= 32 && m->n_hidden >= 8;
}


static double backward(toy_model *m, const float *x, const toy_draw *draw,
                       int64_t batch, double *inst_loss) {
  if (use_sparse_pass(m))
    return sparse_backward(m, x, draw, batch, inst_loss);
  return tiled_backward(m, x, draw, batch, inst_loss);
}


double toy_backward(toy_model *m, const float *x, int64_t batch,
                    double *inst_loss) {
  return backward(m, x, NULL, batch, inst_loss);
}


double toy_train_backward(toy_model *m, int64_t batch, double *inst_loss) {
  const toy_draw draw = draw_start(m, batch);
  return backward(m, NULL, &draw, batch, inst_loss);
}
