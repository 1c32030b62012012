/*
 * sae.h: sparse autoencoders with one set of weights per instance, as in
 * the ARENA "Superposition and SAEs" exercises, trained on the hidden
 * states of toy models or of a real model.
 *
 * Shapes (I instances, B batch, D = d_in, H = d_sae):
 *   W_enc [I, D, H]   W_dec [I, H, D] (absent when tied: W_dec = W_encᵀ)
 *   b_enc [I, H]      b_dec [I, D]
 *   h     [B, I, D]   acts  [B, I, H]   h_reconstructed [B, I, D]
 *
 * Parameters live in one buffer (W_enc, W_dec, b_enc, b_dec in this
 * order), their gradients and the Adam moments in buffers of the same
 * layout, so one loop updates everything.
 *
 * This layer does not include lua.h. The binding checks arguments before
 * calling it.
 */
#ifndef SAE_SAE_H
#define SAE_SAE_H

#include <stdint.h>

#include "random.h"
#include "tensor.h"

typedef enum { SAE_PATH_AUTO = 0, SAE_PATH_LOOPS, SAE_PATH_BLAS } sae_path;
typedef enum { SAE_RESAMPLE_SIMPLE = 0, SAE_RESAMPLE_ANTHROPIC } sae_resample_method;

typedef struct sae_sae {
  int64_t n_instances, d_in, d_sae;
  int tied;
  float l1_coeff;
  sae_generator gen;

  /* parameters, gradients and Adam moments m, v: nparams floats each */
  int64_t nparams;
  int64_t off_W_enc, off_W_dec, off_b_enc, off_b_dec;  /* off_W_dec -1 if tied */
  sae_storage *params, *grad, *adam_m, *adam_v;
  int64_t adam_t;

  /* scratch for batches of up to cap_batch rows (see sae_reserve) */
  sae_path path, chosen;
  int fast_small;   /* use compile-time specialisations (default 1) */
  int64_t cap_batch;
  int nthreads;
  float *hc;        /* [B, I, D] h - b_dec */
  float *acts;      /* [B, I, H] */
  float *rec;       /* [B, I, D] h_reconstructed */
  float *dr;        /* [B, I, D] dloss/dh_reconstructed */
  float *dpre;      /* [B, I, H] dloss/d(pre-activation), BLAS path only */
  float *l1, *l2;   /* [B, I] */
  float *frac_active;  /* [I, H] fraction of the batch with acts > 0 */
  float *tacc;      /* per-thread accumulators */
  int64_t tacc_len; /* floats per thread */
  int64_t batch;    /* rows in the last pass */
  double loss;      /* loss of the last pass */
} sae_sae;

/* Allocates the buffers and draws Xavier-normal weights (std from the fan
 * in and fan out that torch.nn.init.xavier_normal_ gives a 3-d tensor),
 * biases zero. */
sae_status sae_init(sae_sae *s, int64_t n_instances, int64_t d_in,
                    int64_t d_sae, float l1_coeff, int tied, uint64_t seed);
void sae_free(sae_sae *s);

/* Makes the scratch hold batches of B rows; allocates only when B grows
 * or the path changes. */
sae_status sae_reserve(sae_sae *s, int64_t batch);

/* Forward pass over h (float32 with element strides hstride[3] for
 * [B, I, D]); fills s->acts, s->rec, s->l1, s->l2, s->frac_active and
 * s->loss. With `grad`, also accumulates the analytic gradients of the
 * loss into the gradient buffer. Call sae_reserve(s, B) first. Returns
 * the loss. */
double sae_pass(sae_sae *s, const float *h, const int64_t *hstride,
                int64_t batch, int grad);

void sae_zero_grad(sae_sae *s);

/* Unit-norm decoder rows W_dec[i, k, :] (encoder columns W_enc[i, :, k]
 * when tied). */
void sae_normalize_decoder(sae_sae *s);

/* One torch.optim.Adam step (L2 weight decay added to the gradient). */
void sae_adam_step(sae_sae *s, float lr, float beta1, float beta2, float eps,
                   float weight_decay);
void sae_adam_reset(sae_sae *s);

/* Resamples the neurons with dead[i * H + k] != 0. For the Anthropic
 * method, h (as in sae_pass, B rows, scratch reserved) provides the
 * inputs; instances whose largest l2 loss is below 1e-6 are skipped.
 * Resets the Adam moments of every parameter entry written. Returns the
 * number of neurons resampled. */
int64_t sae_resample(sae_sae *s, const unsigned char *dead,
                     sae_resample_method method, float scale, const float *h,
                     const int64_t *hstride, int64_t batch);

/* Pointers into the parameter and gradient buffers. */
float *sae_param(const sae_sae *s, int64_t offset);
float *sae_gradp(const sae_sae *s, int64_t offset);

/* Best wall time over `reps` of the five sgemm products of one training
 * step (B rows, d_in D, d_sae H) on private buffers, timed with `clock`
 * (seconds). */
sae_status sae_bench_products(int64_t B, int64_t D, int64_t H, int reps,
                              double (*clock)(void), double *best);

#endif
