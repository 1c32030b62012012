/*
 * toy.c: batches, forward pass, loss and fused backward of the toy models
 * (see toy.h).
 *
 * Every pass walks the batch in tiles of TILE samples of one instance,
 * stored transposed ([feature][sample]) so the products with the tiny
 * weight matrices become loops over the tile that the compiler
 * vectorises. Threads split the instances, so each thread owns the
 * gradients of its instances and no reduction is needed.
 */
#include "toy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define TILE 32


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
  if (m->params == NULL || m->grads == NULL || m->buffers == NULL)
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
  m->params = m->grads = m->buffers = NULL;
  m->scratch = NULL;
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

/* Element (b, i, f) uses the 64 random bits at counter base + its flat
 * index: the low 32 bits decide presence and the high 24 bits give the
 * magnitude, so the batch is the same whatever the thread count. */
static inline float magnitude(uint64_t bits, int symmetric) {
  float u = (float)(bits >> 40) * 0x1.0p-24f;
  return symmetric ? 2.0f * u - 1.0f : u;
}


static inline float presence(uint64_t bits) {
  return (float)(bits & 0xFFFFFFFFu) * 0x1.0p-32f;
}


void toy_generate_batch(toy_model *m, float *out, int64_t batch) {
  const int64_t I = m->n_instances, F = m->n_features;
  const int64_t nc = m->n_correlated_pairs, na = m->n_anticorrelated_pairs;
  const int64_t first_free = 2 * (nc + na);
  const int symmetric = m->kind == TOY_COMPUTATION;
  const uint64_t seed = m->generator.seed;
  const uint64_t base = generator_reserve(&m->generator,
                                          (uint64_t)(batch * I * F));
  const float *prob = m->feature_probability;

  #pragma omp parallel for schedule(static) if (batch * I * F > 16384)
  for (int64_t row = 0; row < batch * I; row++) {
    const int64_t i = row % I;
    const uint64_t c0 = base + (uint64_t)(row * F);
    float *o = out + row * F;
    const float *p = prob + i * F;

    /* Independent features: the bulk of the work, one hash each. */
    #pragma omp simd
    for (int64_t f = first_free; f < F; f++) {
      uint64_t bits = rng_bits(seed, c0 + (uint64_t)f);
      o[f] = presence(bits) < p[f] ? magnitude(bits, symmetric) : 0.0f;
    }
    /* Correlated pair: both present when the first feature's draw is
     * below its probability. */
    for (int64_t k = 0; k < nc; k++) {
      int64_t f = 2 * k;
      uint64_t b0 = rng_bits(seed, c0 + (uint64_t)f);
      uint64_t b1 = rng_bits(seed, c0 + (uint64_t)f + 1);
      int on = presence(b0) < p[f];
      o[f] = on ? magnitude(b0, symmetric) : 0.0f;
      o[f + 1] = on ? magnitude(b1, symmetric) : 0.0f;
    }
    /* Anticorrelated pair: one of the two is present with probability
     * 2p (p of the first feature), each half of the time, so each is
     * present with probability p and never both. */
    for (int64_t k = 0; k < na; k++) {
      int64_t f = 2 * (nc + k);
      uint64_t b0 = rng_bits(seed, c0 + (uint64_t)f);
      uint64_t b1 = rng_bits(seed, c0 + (uint64_t)f + 1);
      int on = presence(b0) < 2.0f * p[f];
      int first = presence(b1) < 0.5f;
      o[f] = on && first ? magnitude(b0, symmetric) : 0.0f;
      o[f + 1] = on && !first ? magnitude(b1, symmetric) : 0.0f;
    }
  }
}


/* ----------------------------------------------------------- tile passes */

/* Scratch floats one thread needs for a tile. */
static int64_t tile_floats(const toy_model *m) {
  return (3 * m->n_features + 2 * m->n_hidden) * TILE;
}


/* Decoder weight D[f][k]: W^T for linear and neuron, W2 for computation. */
static inline float decoder_weight(const toy_model *m, const float *W1,
                                   const float *W2, int64_t f, int64_t k) {
  return m->kind == TOY_COMPUTATION ? W2[f * m->n_hidden + k]
                                    : W1[k * m->n_features + f];
}


/* Forward of samples b0 .. b0 + nt - 1 of instance i. Leaves the tile
 * input in xt [F][TILE], the hidden activations in h [H][TILE] and the
 * pre-activation output in o [F][TILE]. */
static void tile_forward(const toy_model *m, int64_t i, const float *x,
                         int64_t b0, int64_t nt, float *xt, float *h,
                         float *o) {
  const int64_t I = m->n_instances, F = m->n_features, H = m->n_hidden;
  const float *W1 = m->W1 + i * H * F;
  const float *W2 = m->kind == TOY_COMPUTATION ? m->W2 + i * F * H : NULL;
  const float *b = m->b_final + i * F;

  for (int64_t t = 0; t < nt; t++) {
    const float *row = x + ((b0 + t) * I + i) * F;
    for (int64_t f = 0; f < F; f++) xt[f * TILE + t] = row[f];
  }
  for (int64_t t = nt; t < TILE; t++)
    for (int64_t f = 0; f < F; f++) xt[f * TILE + t] = 0.0f;

  /* h[k] = sum_f W1[k][f] x[f], then ReLU unless linear */
  for (int64_t k = 0; k < H; k++) {
    float *hk = h + k * TILE;
    for (int64_t t = 0; t < TILE; t++) hk[t] = 0.0f;
    for (int64_t f = 0; f < F; f++) {
      const float w = W1[k * F + f];
      const float *xf = xt + f * TILE;
      #pragma omp simd
      for (int64_t t = 0; t < TILE; t++) hk[t] += w * xf[t];
    }
    if (m->kind != TOY_LINEAR)
      for (int64_t t = 0; t < TILE; t++) hk[t] = hk[t] > 0.0f ? hk[t] : 0.0f;
  }

  /* o[f] = b[f] + sum_k D[f][k] h[k] */
  for (int64_t f = 0; f < F; f++) {
    float *of = o + f * TILE;
    for (int64_t t = 0; t < TILE; t++) of[t] = b[f];
    for (int64_t k = 0; k < H; k++) {
      const float w = decoder_weight(m, W1, W2, f, k);
      const float *hk = h + k * TILE;
      #pragma omp simd
      for (int64_t t = 0; t < TILE; t++) of[t] += w * hk[t];
    }
  }
}


void toy_forward(const toy_model *m, const float *x, int64_t batch,
                 float *hidden, float *out) {
  const int64_t I = m->n_instances, F = m->n_features, H = m->n_hidden;
  const int64_t tiles = (batch + TILE - 1) / TILE;

  #pragma omp parallel if (batch * I * F * H > 65536)
  {
    /* A small stack of tile buffers per thread: forward is not a
     * training step, so this allocation is allowed. */
    float *buf = malloc((size_t)((2 * F + H) * TILE) * sizeof(float));
    if (buf != NULL) {
      float *xt = buf, *h = buf + F * TILE, *o = h + H * TILE;
      #pragma omp for schedule(static) collapse(2)
      for (int64_t i = 0; i < I; i++) {
        for (int64_t tile = 0; tile < tiles; tile++) {
          int64_t b0 = tile * TILE;
          int64_t nt = batch - b0 < TILE ? batch - b0 : TILE;
          tile_forward(m, i, x, b0, nt, xt, h, o);
          for (int64_t t = 0; t < nt; t++) {
            int64_t row = (b0 + t) * I + i;
            if (hidden != NULL)
              for (int64_t k = 0; k < H; k++)
                hidden[row * H + k] = h[k * TILE + t];
            if (out != NULL)
              for (int64_t f = 0; f < F; f++) {
                float v = o[f * TILE + t];
                out[row * F + f] = v > 0.0f ? v : 0.0f;
              }
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


/* Backward of one tile of instance i, adding to the instance's grads and
 * returning the tile's sum of importance * error^2. */
static double tile_backward(toy_model *m, int64_t i, const float *x,
                            int64_t b0, int64_t nt, float scale,
                            float *scratch) {
  const int64_t F = m->n_features, H = m->n_hidden;
  const int computation = m->kind == TOY_COMPUTATION;
  const float *W1 = m->W1 + i * H * F;
  const float *W2 = computation ? m->W2 + i * F * H : NULL;
  const float *imp = m->importance + i * F;
  float *dW1 = m->dW1 + i * H * F;
  float *dW2 = computation ? m->dW2 + i * F * H : NULL;
  float *db = m->db_final + i * F;
  float *xt = scratch, *o = xt + F * TILE, *d = o + F * TILE;
  float *h = d + F * TILE, *dh = h + H * TILE;
  unsigned char active[TILE];
  double loss = 0.0;

  tile_forward(m, i, x, b0, nt, xt, h, o);
  for (int64_t t = 0; t < TILE; t++) active[t] = t < nt;

  /* d[f] = dL/do[f] = 2 * scale * importance * (ReLU(o) - target) where
   * o > 0, else 0; padding samples give 0. */
  for (int64_t f = 0; f < F; f++) {
    const float w = 2.0f * scale * imp[f];
    float *of = o + f * TILE, *df = d + f * TILE;
    const float *xf = xt + f * TILE;
    float acc = 0.0f, gb = 0.0f;
    #pragma omp simd reduction(+:acc, gb)
    for (int64_t t = 0; t < TILE; t++) {
      float target = computation ? fabsf(xf[t]) : xf[t];
      float y = of[t] > 0.0f ? of[t] : 0.0f;
      float e = active[t] ? y - target : 0.0f;
      float g = of[t] > 0.0f ? w * e : 0.0f;
      acc += e * e;
      df[t] = g;
      gb += g;
    }
    loss += (double)imp[f] * (double)acc;
    db[f] += gb;
  }

  /* Decoder gradient dD[f][k] += sum_t d[f][t] h[k][t], and
   * dh[k] = sum_f D[f][k] d[f]. */
  for (int64_t k = 0; k < H; k++)
    for (int64_t t = 0; t < TILE; t++) dh[k * TILE + t] = 0.0f;
  for (int64_t f = 0; f < F; f++) {
    const float *df = d + f * TILE;
    int any = 0;
    for (int64_t t = 0; t < TILE; t++) any |= df[t] != 0.0f;
    if (!any) continue;            /* feature off in the whole tile */
    for (int64_t k = 0; k < H; k++) {
      const float *hk = h + k * TILE;
      float *dhk = dh + k * TILE;
      const float w = decoder_weight(m, W1, W2, f, k);
      float s = 0.0f;
      #pragma omp simd reduction(+:s)
      for (int64_t t = 0; t < TILE; t++) {
        s += df[t] * hk[t];
        dhk[t] += w * df[t];
      }
      if (computation) dW2[f * H + k] += s;
      else dW1[k * F + f] += s;
    }
  }

  /* Through the hidden ReLU, then the encoder gradient
   * dW1[k][f] += sum_t dh[k][t] x[f][t]. */
  for (int64_t k = 0; k < H; k++) {
    float *dhk = dh + k * TILE;
    const float *hk = h + k * TILE;
    if (m->kind != TOY_LINEAR)
      for (int64_t t = 0; t < TILE; t++) dhk[t] = hk[t] > 0.0f ? dhk[t] : 0.0f;
    for (int64_t f = 0; f < F; f++) {
      const float *xf = xt + f * TILE;
      float s = 0.0f;
      #pragma omp simd reduction(+:s)
      for (int64_t t = 0; t < TILE; t++) s += dhk[t] * xf[t];
      dW1[k * F + f] += s;
    }
  }
  return loss;
}


double toy_backward(toy_model *m, const float *x, int64_t batch,
                    double *inst_loss) {
  const int64_t I = m->n_instances, F = m->n_features;
  const int64_t tiles = (batch + TILE - 1) / TILE;
  const int threads = max_threads();
  const int64_t per_thread = tile_floats(m);
  if (m->scratch_floats < per_thread * threads) {
    float *s = realloc(m->scratch, (size_t)(per_thread * threads) * sizeof(float));
    if (s == NULL) return -1.0;
    m->scratch = s;
    m->scratch_floats = per_thread * threads;
  }
  const float scale = 1.0f / (float)(batch * F);
  double total = 0.0;

  #pragma omp parallel for schedule(static) reduction(+:total) \
    num_threads(threads) if (batch * I * F * m->n_hidden > 16384)
  for (int64_t i = 0; i < I; i++) {
    float *scratch = m->scratch + per_thread * thread_id();
    double sum = 0.0;
    for (int64_t tile = 0; tile < tiles; tile++) {
      int64_t b0 = tile * TILE;
      int64_t nt = batch - b0 < TILE ? batch - b0 : TILE;
      sum += tile_backward(m, i, x, b0, nt, scale, scratch);
    }
    double mean = sum / (double)(batch * F);
    if (inst_loss != NULL) inst_loss[i] = mean;
    total += mean;
  }
  return total;
}
