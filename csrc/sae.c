/*
 * sae.c: forward, fused backward, decoder normalisation, Adam and neuron
 * resampling for sparse autoencoders (see sae.h).
 *
 * Definitions follow the ARENA exercises on superposition and SAEs (class
 * AutoEncoder of chapter 1.3.1):
 *   acts  = ReLU((h - b_dec) W_enc + b_enc)
 *   h_rec = acts W_dec + b_dec
 *   l2    = mean over d_in of (h_rec - h)^2,  l1 = sum over d_sae of |acts|
 *   loss  = sum over instances of the batch mean of (l1_coeff * l1 + l2)
 *
 * Two code paths compute the same numbers. The loop path fuses everything
 * per (row, instance) and splits the batch across threads with per-thread
 * gradient accumulators: right for the small toy shapes. The BLAS path
 * runs the five products (two forward, three backward) as cblas_sgemm
 * calls from the serial part and fuses the elementwise work into
 * threaded passes: right for d_in x d_sae in the thousands. The bias of
 * the decoder does not need a sixth product: the batch sum of
 * dloss/d(h - b_dec) is W_enc times the batch sum of dloss/dpre.
 */
#include "sae.h"

#include <cblas.h>
/* OpenBLAS pulls in <complex.h>, whose I would shadow our instance count */
#undef I
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* shapes below this many multiply-adds per batch row use the loop path */
#define SAE_BLAS_MIN_WORK 8192
/* rows x work below which the loop path stays on one thread */
#define SAE_PARALLEL_MIN_WORK 32768
/* a neuron counts as active above this activation (as the exercises do) */
#define SAE_ACTIVE_EPS 1e-8f
/* columns per task when normalising the tied encoder */
#define SAE_NORM_COLS 256


static int max_threads(void) {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}


static int thread_num(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}


float *sae_param(const sae_sae *s, int64_t offset) {
  return (float *)s->params->data + offset;
}


float *sae_gradp(const sae_sae *s, int64_t offset) {
  return (float *)s->grad->data + offset;
}


/* ------------------------------------------------------------ lifecycle */

sae_status sae_init(sae_sae *s, int64_t n_instances, int64_t d_in,
                    int64_t d_sae, float l1_coeff, int tied, uint64_t seed) {
  memset(s, 0, sizeof *s);
  s->n_instances = n_instances;
  s->d_in = d_in;
  s->d_sae = d_sae;
  s->tied = tied;
  s->l1_coeff = l1_coeff;
  generator_init(&s->gen, seed);
  s->fast_small = 1;

  int64_t I = n_instances, D = d_in, H = d_sae;
  if (I <= 0 || D <= 0 || H <= 0 || I > INT32_MAX || D > INT32_MAX ||
      H > INT32_MAX || D > INT64_MAX / H / I / 4)
    return SAE_ERANGE;
  int64_t w = I * D * H;
  s->off_W_enc = 0;
  s->off_W_dec = tied ? -1 : w;
  s->off_b_enc = tied ? w : 2 * w;
  s->off_b_dec = s->off_b_enc + I * H;
  s->nparams = s->off_b_dec + I * D;

  size_t nbytes = (size_t)s->nparams * sizeof(float);
  s->params = storage_new(nbytes, 1);
  s->grad = storage_new(nbytes, 1);
  s->adam_m = storage_new(nbytes, 1);
  s->adam_v = storage_new(nbytes, 1);
  if (!s->params || !s->grad || !s->adam_m || !s->adam_v) {
    sae_free(s);
    return SAE_ENOMEM;
  }

  /* torch.nn.init.xavier_normal_ on [I, a, b]: fan_in = a * b,
   * fan_out = I * b, std = sqrt(2 / (fan_in + fan_out)) */
  float std_enc = (float)sqrt(2.0 / (double)(D * H + I * H));
  rng_fill_normal(sae_param(s, s->off_W_enc), w, s->gen.seed,
                  generator_reserve(&s->gen, (uint64_t)w), 0.0f, std_enc);
  if (!tied) {
    float std_dec = (float)sqrt(2.0 / (double)(H * D + I * D));
    rng_fill_normal(sae_param(s, s->off_W_dec), w, s->gen.seed,
                    generator_reserve(&s->gen, (uint64_t)w), 0.0f, std_dec);
  }
  return SAE_OK;
}


static void free_scratch(sae_sae *s) {
  free(s->hc);
  free(s->acts);
  free(s->rec);
  free(s->dr);
  free(s->dpre);
  free(s->l1);
  free(s->l2);
  free(s->frac_active);
  free(s->tacc);
  s->hc = s->acts = s->rec = s->dr = s->dpre = NULL;
  s->l1 = s->l2 = s->frac_active = s->tacc = NULL;
  s->cap_batch = 0;
}


void sae_free(sae_sae *s) {
  free_scratch(s);
  storage_release(s->params);
  storage_release(s->grad);
  storage_release(s->adam_m);
  storage_release(s->adam_v);
  s->params = s->grad = s->adam_m = s->adam_v = NULL;
}


static sae_path choose_path(const sae_sae *s) {
  if (s->path != SAE_PATH_AUTO) return s->path;
  return s->d_in * s->d_sae >= SAE_BLAS_MIN_WORK ? SAE_PATH_BLAS
                                                 : SAE_PATH_LOOPS;
}


static int64_t loops_tacc_len(const sae_sae *s);


static float *alloc_floats(int64_t n) {
  size_t bytes = ((size_t)(n > 0 ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
  return aligned_alloc(64, bytes);
}


sae_status sae_reserve(sae_sae *s, int64_t batch) {
  sae_path path = choose_path(s);
  int nt = max_threads();
  if (batch <= s->cap_batch && path == s->chosen && nt <= s->nthreads)
    return SAE_OK;

  free_scratch(s);
  int64_t I = s->n_instances, D = s->d_in, H = s->d_sae;
  int64_t B = batch > 0 ? batch : 1;
  if (B > INT32_MAX / I || B * I > INT64_MAX / 8 / (D > H ? D : H))
    return SAE_ERANGE;
  s->chosen = path;
  s->nthreads = nt;
  s->tacc_len = path == SAE_PATH_LOOPS ? loops_tacc_len(s)
                                       : 2 * I * H + I * D;
  s->tacc_len = (s->tacc_len + 15) & ~(int64_t)15;   /* own cache lines */

  s->hc = alloc_floats(B * I * D);
  s->acts = alloc_floats(B * I * H);
  s->rec = alloc_floats(B * I * D);
  s->dr = alloc_floats(B * I * D);
  s->dpre = path == SAE_PATH_BLAS ? alloc_floats(B * I * H) : NULL;
  s->l1 = alloc_floats(B * I);
  s->l2 = alloc_floats(B * I);
  s->frac_active = alloc_floats(I * H);
  s->tacc = alloc_floats(s->tacc_len * nt);
  if (!s->hc || !s->acts || !s->rec || !s->dr || !s->l1 || !s->l2 ||
      !s->frac_active || !s->tacc || (path == SAE_PATH_BLAS && !s->dpre)) {
    free_scratch(s);
    return SAE_ENOMEM;
  }
  s->cap_batch = B;
  return SAE_OK;
}


/* Zeroes the gradients, split in contiguous chunks across the threads
 * once there are enough of them to pay for the fork. */
void sae_zero_grad(sae_sae *s) {
  float *g = sae_gradp(s, 0);
  const int64_t n = s->nparams;
  #pragma omp parallel if (n > 262144)
  {
#ifdef _OPENMP
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
#else
    const int64_t nt = 1, t = 0;
#endif
    int64_t lo = n * t / nt, hi = n * (t + 1) / nt;
    memset(g + lo, 0, (size_t)(hi - lo) * sizeof(float));
  }
}


/* ------------------------------------------------------------ loop path */

/* The loop path works on blocks of SAE_BLOCK rows of one instance in
 * structure-of-arrays form (x[j][row], a[k][row], ...), so the inner
 * loops run over rows and vectorise even when d_in and d_sae are tiny. */
#define SAE_BLOCK 256

/* Per-thread scratch of the loop path: gradient accumulators (nparams),
 * active counts (I * H), then the block arrays x, e (D rows each) and
 * a, dp (H rows each) of SAE_BLOCK floats. */
static int64_t loops_tacc_len(const sae_sae *s) {
  return s->nparams + s->n_instances * s->d_sae +
         2 * (s->d_in + s->d_sae) * SAE_BLOCK;
}


/* One block: rows b0 .. b0 + n - 1 of instance i. */
static void loops_block(sae_sae *s, const float *h, const int64_t *hs,
                        int64_t B, int grad, int64_t i, int64_t b0, int64_t n,
                        float *acc) {
  const int64_t I = s->n_instances, D = s->d_in, H = s->d_sae;
  const float *P = sae_param(s, 0);
  const float *We = P + s->off_W_enc + i * D * H, *be = P + s->off_b_enc + i * H,
              *bd = P + s->off_b_dec + i * D;
  const float *Wd = s->tied ? NULL : P + s->off_W_dec + i * H * D;
  const float scale_dr = 2.0f / ((float)D * (float)B);
  const float cB = s->l1_coeff / (float)B, inv_d = 1.0f / (float)D;
  float *cnt = acc + s->nparams + i * H;
  float *restrict x = acc + s->nparams + I * H;
  float *restrict e = x + D * SAE_BLOCK;
  float *restrict a = e + D * SAE_BLOCK;
  float *restrict dp = a + H * SAE_BLOCK;
  float l1[SAE_BLOCK], l2[SAE_BLOCK];

  /* x = h - b_dec */
  for (int64_t j = 0; j < D; j++) {
    const float *hj = h + b0 * hs[0] + i * hs[1] + j * hs[2];
    float *xj = x + j * SAE_BLOCK;
    for (int64_t r = 0; r < n; r++) xj[r] = hj[r * hs[0]] - bd[j];
  }
  /* a = ReLU(x W_enc + b_enc); l1; active counts */
  for (int64_t r = 0; r < SAE_BLOCK; r++) l1[r] = 0.0f;
  for (int64_t k = 0; k < H; k++) {
    float *restrict ak = a + k * SAE_BLOCK;
    float c = 0.0f;
    #pragma omp simd
    for (int64_t r = 0; r < n; r++) ak[r] = be[k];
    for (int64_t j = 0; j < D; j++) {
      const float w = We[j * H + k], *restrict xj = x + j * SAE_BLOCK;
      #pragma omp simd
      for (int64_t r = 0; r < n; r++) ak[r] += xj[r] * w;
    }
    #pragma omp simd reduction(+:c)
    for (int64_t r = 0; r < n; r++) {
      float v = ak[r] > 0.0f ? ak[r] : 0.0f;
      ak[r] = v;
      l1[r] += v;
      c += v > SAE_ACTIVE_EPS ? 1.0f : 0.0f;
    }
    cnt[k] += c;
  }
  /* e = a W_dec + b_dec (the reconstruction), then its error */
  for (int64_t r = 0; r < SAE_BLOCK; r++) l2[r] = 0.0f;
  for (int64_t j = 0; j < D; j++) {
    float *restrict ej = e + j * SAE_BLOCK;
    #pragma omp simd
    for (int64_t r = 0; r < n; r++) ej[r] = bd[j];
    for (int64_t k = 0; k < H; k++) {
      const float w = Wd ? Wd[k * D + j] : We[j * H + k];
      const float *restrict ak = a + k * SAE_BLOCK;
      #pragma omp simd
      for (int64_t r = 0; r < n; r++) ej[r] += ak[r] * w;
    }
    const float *hj = h + b0 * hs[0] + i * hs[1] + j * hs[2];
    if (!grad) {
      /* forward: keep h - b_dec and the reconstruction for the caller */
      for (int64_t r = 0; r < n; r++) {
        int64_t row = (b0 + r) * I + i;
        s->hc[row * D + j] = x[j * SAE_BLOCK + r];
        s->rec[row * D + j] = ej[r];
      }
    }
    for (int64_t r = 0; r < n; r++) {
      float d = ej[r] - hj[r * hs[0]];
      l2[r] += d * d;
      ej[r] = d * scale_dr;
    }
  }
  for (int64_t r = 0; r < n; r++) {
    s->l1[(b0 + r) * I + i] = l1[r];
    s->l2[(b0 + r) * I + i] = l2[r] * inv_d;
  }
  if (!grad) {
    for (int64_t k = 0; k < H; k++)
      for (int64_t r = 0; r < n; r++)
        s->acts[((b0 + r) * I + i) * H + k] = a[k * SAE_BLOCK + r];
    return;
  }

  /* dp = (e W_decᵀ + l1_coeff / B) where the neuron fired */
  float *gWe = acc + s->off_W_enc + i * D * H, *gbe = acc + s->off_b_enc + i * H,
        *gbd = acc + s->off_b_dec + i * D;
  float *gWd = s->tied ? NULL : acc + s->off_W_dec + i * H * D;
  for (int64_t k = 0; k < H; k++) {
    float *restrict dk = dp + k * SAE_BLOCK;
    const float *restrict ak = a + k * SAE_BLOCK;
    #pragma omp simd
    for (int64_t r = 0; r < n; r++) dk[r] = cB;
    for (int64_t j = 0; j < D; j++) {
      const float w = Wd ? Wd[k * D + j] : We[j * H + k];
      const float *restrict ej = e + j * SAE_BLOCK;
      #pragma omp simd
      for (int64_t r = 0; r < n; r++) dk[r] += ej[r] * w;
    }
    float sum = 0.0f;
    #pragma omp simd reduction(+:sum)
    for (int64_t r = 0; r < n; r++) {
      float v = ak[r] > 0.0f ? dk[r] : 0.0f;
      dk[r] = v;
      sum += v;
    }
    gbe[k] += sum;
  }
  /* dW_enc += xᵀ dp (+ eᵀ a when tied); dW_dec += aᵀ e;
   * db_dec += sum e - W_enc sum dp */
  for (int64_t j = 0; j < D; j++) {
    const float *restrict xj = x + j * SAE_BLOCK, *restrict ej = e + j * SAE_BLOCK;
    float esum = 0.0f, back = 0.0f;
    #pragma omp simd reduction(+:esum)
    for (int64_t r = 0; r < n; r++) esum += ej[r];
    for (int64_t k = 0; k < H; k++) {
      const float *restrict dk = dp + k * SAE_BLOCK, *restrict ak = a + k * SAE_BLOCK;
      float g = 0.0f, dsum = 0.0f, t = 0.0f;
      #pragma omp simd reduction(+:g, dsum, t)
      for (int64_t r = 0; r < n; r++) {
        g += xj[r] * dk[r];
        dsum += dk[r];
        t += ej[r] * ak[r];
      }
      gWe[j * H + k] += g;
      if (gWd) gWd[k * D + j] += t;
      else gWe[j * H + k] += t;
      back += We[j * H + k] * dsum;
    }
    gbd[j] += esum - back;
  }
}


/* Training pass for d_in and d_sae known at compile time (the exercises'
 * 2 -> 5 SAE): eight rows at a time in vector registers, one pass over
 * the rows of a block, gradients summed in registers. Numbers agree with
 * loops_block up to the order of float additions. */
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) void
small_block(sae_sae *s, const float *h, const int64_t *hs, int64_t B,
            int64_t i, int64_t b0, int64_t n, float *acc, const int D,
            const int H) {
  const int64_t I = s->n_instances;
  const float *P = sae_param(s, 0);
  const float *We = P + s->off_W_enc + i * D * H, *be = P + s->off_b_enc + i * H,
              *bd = P + s->off_b_dec + i * D;
  const float scale_dr = 2.0f / ((float)D * (float)B);
  const float cB = s->l1_coeff / (float)B, inv_d = 1.0f / (float)D;
  float Wd[8 * 4];   /* [H][D], W_encᵀ when tied */
  for (int k = 0; k < H; k++)
    for (int j = 0; j < D; j++)
      Wd[k * D + j] = s->tied ? We[j * H + k]
                              : P[s->off_W_dec + (i * H + k) * D + j];
  const v8f zero = { 0 };
  v8f gWe[4 * 8], gWd[8 * 4], gbe[8], gbd[4];
  v8i cnt[8];
  for (int q = 0; q < D * H; q++) gWe[q] = gWd[q] = zero;
  for (int k = 0; k < H; k++) { gbe[k] = zero; cnt[k] = (v8i){ 0 }; }
  for (int j = 0; j < D; j++) gbd[j] = zero;

  for (int64_t r0 = 0; r0 < n; r0 += 8) {
    int m = n - r0 < 8 ? (int)(n - r0) : 8;
    v8f valid, hv[4], x[4], a[8], e[4], dp[8];
    if (m == 8) {
      /* build the vectors from registers: storing lanes to memory and
       * loading them back as a vector stalls store forwarding */
      const float *p0 = h + (b0 + r0) * hs[0] + i * hs[1];
      const int64_t st = hs[0];
      for (int j = 0; j < D; j++) {
        const float *q = p0 + j * hs[2];
        hv[j] = (v8f){ q[0], q[st], q[2 * st], q[3 * st], q[4 * st], q[5 * st],
                       q[6 * st], q[7 * st] };
      }
      valid = zero + 1.0f;
    } else {
      float lanes[4][8] = { { 0 } }, valid_f[8] = { 0 };
      for (int l = 0; l < m; l++) {
        const float *hr = h + (b0 + r0 + l) * hs[0] + i * hs[1];
        for (int j = 0; j < D; j++) lanes[j][l] = hr[j * hs[2]];
        valid_f[l] = 1.0f;
      }
      memcpy(&valid, valid_f, sizeof valid);
      for (int j = 0; j < D; j++) memcpy(&hv[j], lanes[j], sizeof hv[j]);
    }
    for (int j = 0; j < D; j++) x[j] = hv[j] - bd[j];
    v8f l1 = zero, l2 = zero;
    for (int k = 0; k < H; k++) {
      v8f v = zero + be[k];
      for (int j = 0; j < D; j++) v += x[j] * We[j * H + k];
      v = (v8f)((v8i)v & (v > zero)) * valid;
      a[k] = v;
      l1 += v;
      cnt[k] -= v > (zero + SAE_ACTIVE_EPS);
    }
    for (int j = 0; j < D; j++) {
      v8f r = zero + bd[j];
      for (int k = 0; k < H; k++) r += a[k] * Wd[k * D + j];
      v8f d = (r - hv[j]) * valid;
      l2 += d * d;
      e[j] = d * scale_dr;
    }
    float l1s[8], l2s[8];
    memcpy(l1s, &l1, sizeof l1s);
    memcpy(l2s, &l2, sizeof l2s);
    for (int l = 0; l < m; l++) {
      s->l1[(b0 + r0 + l) * I + i] = l1s[l];
      s->l2[(b0 + r0 + l) * I + i] = l2s[l] * inv_d;
    }
    for (int k = 0; k < H; k++) {
      v8f v = zero + cB;
      for (int j = 0; j < D; j++) v += e[j] * Wd[k * D + j];
      dp[k] = (v8f)((v8i)v & (a[k] > zero));
      gbe[k] += dp[k];
      for (int j = 0; j < D; j++) gWd[k * D + j] += a[k] * e[j];
    }
    for (int j = 0; j < D; j++) {
      v8f back = zero;
      for (int k = 0; k < H; k++) {
        gWe[j * H + k] += x[j] * dp[k];
        back += dp[k] * We[j * H + k];
      }
      gbd[j] += e[j] - back;
    }
  }

  /* horizontal sums into the thread's accumulators */
  float *gWe_acc = acc + s->off_W_enc + i * D * H;
  float *gWd_acc = s->tied ? NULL : acc + s->off_W_dec + i * H * D;
  for (int j = 0; j < D; j++)
    for (int k = 0; k < H; k++) {
      float t = 0.0f, u = 0.0f;
      for (int l = 0; l < 8; l++) {
        t += gWe[j * H + k][l];
        u += gWd[k * D + j][l];
      }
      gWe_acc[j * H + k] += t;
      if (gWd_acc) gWd_acc[k * D + j] += u;
      else gWe_acc[j * H + k] += u;
    }
  for (int k = 0; k < H; k++) {
    float t = 0.0f;
    int c = 0;
    for (int l = 0; l < 8; l++) {
      t += gbe[k][l];
      c += cnt[k][l];
    }
    acc[s->off_b_enc + i * H + k] += t;
    acc[s->nparams + i * H + k] += (float)c;
  }
  for (int j = 0; j < D; j++) {
    float t = 0.0f;
    for (int l = 0; l < 8; l++) t += gbd[j][l];
    acc[s->off_b_dec + i * D + j] += t;
  }
}


/* Picks the compile-time specialisation for a training pass, if any. */
static int small_block_dispatch(sae_sae *s, const float *h, const int64_t *hs,
                                int64_t B, int64_t i, int64_t b0, int64_t n,
                                float *acc) {
  if (s->d_in == 2 && s->d_sae == 5) {
    small_block(s, h, hs, B, i, b0, n, acc, 2, 5);
    return 1;
  }
  return 0;
}


static void pass_loops(sae_sae *s, const float *h, const int64_t *hs,
                       int64_t B, int grad) {
  const int64_t I = s->n_instances, D = s->d_in, H = s->d_sae;
  const int64_t len = s->tacc_len, npar = s->nparams;
  const int64_t nblocks = (B + SAE_BLOCK - 1) / SAE_BLOCK;
  const int nt = s->nthreads;
  int parallel = B * I * D * H >= SAE_PARALLEL_MIN_WORK && nt > 1;
  int used = parallel ? nt : 1;

  for (int t = 0; t < used; t++)
    memset(s->tacc + (int64_t)t * len, 0, (size_t)(npar + I * H) * sizeof(float));

  #pragma omp parallel num_threads(nt) if (parallel)
  {
    float *acc = s->tacc + (int64_t)thread_num() * len;
    #pragma omp for schedule(static)
    for (int64_t task = 0; task < I * nblocks; task++) {
      /* instances vary fastest, so a block's rows of h stay in cache */
      int64_t i = task % I, b0 = (task / I) * SAE_BLOCK;
      int64_t n = B - b0 < SAE_BLOCK ? B - b0 : SAE_BLOCK;
      if (!(grad && s->fast_small && small_block_dispatch(s, h, hs, B, i, b0, n, acc)))
        loops_block(s, h, hs, B, grad, i, b0, n, acc);
    }
  }

  /* reduce the per-thread accumulators */
  float *g = sae_gradp(s, 0);
  for (int t = 0; t < used; t++) {
    const float *acc = s->tacc + (int64_t)t * len;
    if (grad)
      for (int64_t p = 0; p < npar; p++) g[p] += acc[p];
  }
  for (int64_t p = 0; p < I * H; p++) {
    float c = 0.0f;
    for (int t = 0; t < used; t++) c += s->tacc[(int64_t)t * len + npar + p];
    s->frac_active[p] = c / (float)B;
  }
}


/* ------------------------------------------------------------ BLAS path */

static void pass_blas(sae_sae *s, const float *h, const int64_t *hs,
                      int64_t B, int grad) {
  const int64_t I = s->n_instances, D = s->d_in, H = s->d_sae;
  const float *P = sae_param(s, 0);
  const float *We = P + s->off_W_enc, *be = P + s->off_b_enc,
              *bd = P + s->off_b_dec;
  const float *Wd = s->tied ? NULL : P + s->off_W_dec;
  float *g = sae_gradp(s, 0);
  const float inv_d = 1.0f / (float)D;
  const float scale_dr = 2.0f / ((float)D * (float)B);
  const float cB = s->l1_coeff / (float)B;
  const int64_t len = s->tacc_len;
  const int nt = s->nthreads;
  const int ldh = (int)(I * H), ldd = (int)(I * D);

  memset(s->tacc, 0, (size_t)(len * nt) * sizeof(float));

  /* hc = h - b_dec */
  #pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < I; i++) {
      const float *hr = h + b * hs[0] + i * hs[1], *bdi = bd + i * D;
      float *restrict x = s->hc + (b * I + i) * D;
      if (hs[2] == 1) {
        #pragma omp simd
        for (int64_t j = 0; j < D; j++) x[j] = hr[j] - bdi[j];
      } else {
        for (int64_t j = 0; j < D; j++) x[j] = hr[j * hs[2]] - bdi[j];
      }
    }

  /* pre = hc W_enc */
  for (int64_t i = 0; i < I; i++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)H,
                (int)D, 1.0f, s->hc + i * D, ldd, We + i * D * H, (int)H,
                0.0f, s->acts + i * H, ldh);

  /* acts = ReLU(pre + b_enc); l1; active counts */
  #pragma omp parallel num_threads(nt)
  {
    float *cnt = s->tacc + (int64_t)thread_num() * len;
    #pragma omp for schedule(static)
    for (int64_t b = 0; b < B; b++)
      for (int64_t i = 0; i < I; i++) {
        float *a = s->acts + (b * I + i) * H;
        const float *bei = be + i * H;
        float *c = cnt + i * H;
        float l1 = 0.0f;
        #pragma omp simd reduction(+:l1)
        for (int64_t k = 0; k < H; k++) {
          float v = a[k] + bei[k];
          v = v > 0.0f ? v : 0.0f;
          a[k] = v;
          l1 += v;
          c[k] += v > SAE_ACTIVE_EPS ? 1.0f : 0.0f;
        }
        s->l1[b * I + i] = l1;
      }
  }

  /* rec = acts W_dec (W_encᵀ when tied) */
  for (int64_t i = 0; i < I; i++) {
    if (Wd)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)D,
                  (int)H, 1.0f, s->acts + i * H, ldh, Wd + i * H * D, (int)D,
                  0.0f, s->rec + i * D, ldd);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)D,
                  (int)H, 1.0f, s->acts + i * H, ldh, We + i * D * H, (int)H,
                  0.0f, s->rec + i * D, ldd);
  }

  /* rec += b_dec; l2; dr = 2 (rec - h) / (D B) and its batch sum */
  #pragma omp parallel num_threads(nt)
  {
    float *drsum = s->tacc + (int64_t)thread_num() * len + I * H;
    #pragma omp for schedule(static)
    for (int64_t b = 0; b < B; b++)
      for (int64_t i = 0; i < I; i++) {
        const float *hr = h + b * hs[0] + i * hs[1], *bdi = bd + i * D;
        const int64_t st = hs[2];
        float *r = s->rec + (b * I + i) * D, *e = s->dr + (b * I + i) * D;
        float *es = drsum + i * D;
        float l2 = 0.0f;
        if (st == 1) {
          #pragma omp simd reduction(+:l2)
          for (int64_t j = 0; j < D; j++) {
            r[j] += bdi[j];
            float d = r[j] - hr[j];
            l2 += d * d;
            e[j] = d * scale_dr;
            es[j] += e[j];
          }
        } else {
          for (int64_t j = 0; j < D; j++) {
            r[j] += bdi[j];
            float d = r[j] - hr[j * st];
            l2 += d * d;
            e[j] = d * scale_dr;
            es[j] += e[j];
          }
        }
        s->l2[b * I + i] = l2 * inv_d;
      }
  }

  if (grad) {
    /* dpre = dr W_decᵀ */
    for (int64_t i = 0; i < I; i++) {
      if (Wd)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)H,
                    (int)D, 1.0f, s->dr + i * D, ldd, Wd + i * H * D, (int)D,
                    0.0f, s->dpre + i * H, ldh);
      else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)H,
                    (int)D, 1.0f, s->dr + i * D, ldd, We + i * D * H, (int)H,
                    0.0f, s->dpre + i * H, ldh);
    }

    /* dpre = (dpre + l1_coeff / B) where the neuron fired, and its sum */
    #pragma omp parallel num_threads(nt)
    {
      float *dsum = s->tacc + (int64_t)thread_num() * len + I * H + I * D;
      #pragma omp for schedule(static)
      for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < I; i++) {
          const float *a = s->acts + (b * I + i) * H;
          float *dp = s->dpre + (b * I + i) * H, *ds = dsum + i * H;
          #pragma omp simd
          for (int64_t k = 0; k < H; k++) {
            float v = a[k] > 0.0f ? dp[k] + cB : 0.0f;
            dp[k] = v;
            ds[k] += v;
          }
        }
    }

    /* dW_dec += actsᵀ dr (into dW_enc as drᵀ acts when tied);
     * dW_enc += hcᵀ dpre */
    for (int64_t i = 0; i < I; i++) {
      float *gWe = g + s->off_W_enc + i * D * H;
      if (Wd)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)H, (int)D,
                    (int)B, 1.0f, s->acts + i * H, ldh, s->dr + i * D, ldd,
                    1.0f, g + s->off_W_dec + i * H * D, (int)D);
      else
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)D, (int)H,
                    (int)B, 1.0f, s->dr + i * D, ldd, s->acts + i * H, ldh,
                    1.0f, gWe, (int)H);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)D, (int)H,
                  (int)B, 1.0f, s->hc + i * D, ldd, s->dpre + i * H, ldh,
                  1.0f, gWe, (int)H);
    }
  }

  /* reduce the per-thread sums: counts, dr sum, dpre sum */
  for (int t = 1; t < nt; t++) {
    const float *src = s->tacc + (int64_t)t * len;
    for (int64_t p = 0; p < 2 * I * H + I * D; p++) s->tacc[p] += src[p];
  }
  for (int64_t p = 0; p < I * H; p++)
    s->frac_active[p] = s->tacc[p] / (float)B;
  if (!grad) return;
  const float *drsum = s->tacc + I * H, *dsum = s->tacc + I * H + I * D;
  float *gbe = g + s->off_b_enc, *gbd = g + s->off_b_dec;
  for (int64_t i = 0; i < I; i++) {
    for (int64_t k = 0; k < H; k++) gbe[i * H + k] += dsum[i * H + k];
    /* d(loss)/d(b_dec) = sum dr - W_enc (sum dpre) */
    for (int64_t j = 0; j < D; j++) gbd[i * D + j] += drsum[i * D + j];
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)D, (int)H, -1.0f,
                We + i * D * H, (int)H, dsum + i * H, 1, 1.0f, gbd + i * D, 1);
  }
}


double sae_pass(sae_sae *s, const float *h, const int64_t *hstride,
                int64_t batch, int grad) {
  if (s->chosen == SAE_PATH_BLAS) pass_blas(s, h, hstride, batch, grad);
  else pass_loops(s, h, hstride, batch, grad);
  double loss = 0.0, c = s->l1_coeff;
  const float *l1 = s->l1, *l2 = s->l2;
  int64_t n = batch * s->n_instances;
  #pragma omp simd reduction(+:loss)
  for (int64_t p = 0; p < n; p++) loss += c * l1[p] + l2[p];
  s->batch = batch;
  s->loss = batch > 0 ? loss / (double)batch : 0.0;
  return s->loss;
}


/* ------------------------------------------------- normalisation, Adam */

void sae_normalize_decoder(sae_sae *s) {
  const int64_t I = s->n_instances, D = s->d_in, H = s->d_sae;
  if (!s->tied) {
    float *Wd = sae_param(s, s->off_W_dec);
    #pragma omp parallel for if (I * H * D > 65536) schedule(static)
    for (int64_t r = 0; r < I * H; r++) {
      float *w = Wd + r * D;
      float n2 = 0.0f;
      #pragma omp simd reduction(+:n2)
      for (int64_t j = 0; j < D; j++) n2 += w[j] * w[j];
      if (n2 > 0.0f) {
        float inv = 1.0f / sqrtf(n2);
        #pragma omp simd
        for (int64_t j = 0; j < D; j++) w[j] *= inv;
      }
    }
    return;
  }
  /* Tied: the columns of W_enc [D, H]. Each task takes a block of
   * SAE_NORM_COLS columns of one instance and walks its rows twice (sum
   * the squares, then scale), so the inner loops run over contiguous k. */
  float *We = sae_param(s, s->off_W_enc);
  const int64_t nblk = (H + SAE_NORM_COLS - 1) / SAE_NORM_COLS;
  #pragma omp parallel for if (I * H * D > 65536) schedule(static)
  for (int64_t task = 0; task < I * nblk; task++) {
    const int64_t i = task / nblk, k0 = task % nblk * SAE_NORM_COLS;
    const int64_t nk = H - k0 < SAE_NORM_COLS ? H - k0 : SAE_NORM_COLS;
    float *w = We + i * D * H + k0;
    float n2[SAE_NORM_COLS];
    for (int64_t k = 0; k < nk; k++) n2[k] = 0.0f;
    for (int64_t j = 0; j < D; j++) {
      const float *wj = w + j * H;
      #pragma omp simd
      for (int64_t k = 0; k < nk; k++) n2[k] += wj[k] * wj[k];
    }
    for (int64_t k = 0; k < nk; k++)
      n2[k] = n2[k] > 0.0f ? 1.0f / sqrtf(n2[k]) : 1.0f;
    for (int64_t j = 0; j < D; j++) {
      float *wj = w + j * H;
      #pragma omp simd
      for (int64_t k = 0; k < nk; k++) wj[k] *= n2[k];
    }
  }
}


/* torch.optim.Adam (Kingma and Ba 2015, with PyTorch's placement of eps
 * after the bias-corrected square root) */
void sae_adam_step(sae_sae *s, float lr, float beta1, float beta2, float eps,
                   float weight_decay) {
  s->adam_t++;
  float *p = sae_param(s, 0), *g = sae_gradp(s, 0);
  float *m = s->adam_m->data, *v = s->adam_v->data;
  double bc1 = 1.0 - pow(beta1, (double)s->adam_t);
  double bc2 = 1.0 - pow(beta2, (double)s->adam_t);
  float step = (float)(lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
  int64_t n = s->nparams;
  /* without the simd directive GCC 12 at -O2 leaves this loop scalar;
   * the if clause names parallel so that it cannot switch simd off */
  #pragma omp parallel for simd if (parallel: n > 65536) schedule(simd: static)
  for (int64_t q = 0; q < n; q++) {
    float gq = g[q] + weight_decay * p[q];
    float mq = beta1 * m[q] + (1.0f - beta1) * gq;
    float vq = beta2 * v[q] + (1.0f - beta2) * gq * gq;
    m[q] = mq;
    v[q] = vq;
    p[q] -= step * mq / (sqrtf(vq) * inv_sqrt_bc2 + eps);
  }
}


void sae_adam_reset(sae_sae *s) {
  memset(s->adam_m->data, 0, (size_t)s->nparams * sizeof(float));
  memset(s->adam_v->data, 0, (size_t)s->nparams * sizeof(float));
  s->adam_t = 0;
}


/* ------------------------------------------------------------ resampling */

static void reset_moment(sae_sae *s, int64_t q) {
  ((float *)s->adam_m->data)[q] = 0.0f;
  ((float *)s->adam_v->data)[q] = 0.0f;
}


/* Writes direction `u` (unit, D floats) as decoder row k of instance i and
 * u * enc_scale as encoder column k; zeroes b_enc[i, k]. */
static void set_neuron(sae_sae *s, int64_t i, int64_t k, const float *u,
                       float enc_scale) {
  const int64_t D = s->d_in, H = s->d_sae;
  int64_t we = s->off_W_enc + i * D * H + k;
  for (int64_t j = 0; j < D; j++) {
    sae_param(s, 0)[we + j * H] = u[j] * enc_scale;
    reset_moment(s, we + j * H);
  }
  if (!s->tied) {
    int64_t wd = s->off_W_dec + (i * H + k) * D;
    for (int64_t j = 0; j < D; j++) {
      sae_param(s, 0)[wd + j] = u[j];
      reset_moment(s, wd + j);
    }
  }
  int64_t q = s->off_b_enc + i * H + k;
  sae_param(s, 0)[q] = 0.0f;
  reset_moment(s, q);
}


static void normalize_eps(float *u, int64_t n) {
  /* the exercises divide by (norm + 1e-8) */
  double n2 = 0.0;
  for (int64_t j = 0; j < n; j++) n2 += (double)u[j] * u[j];
  float inv = (float)(1.0 / (sqrt(n2) + 1e-8));
  for (int64_t j = 0; j < n; j++) u[j] *= inv;
}


int64_t sae_resample(sae_sae *s, const unsigned char *dead,
                     sae_resample_method method, float scale, const float *h,
                     const int64_t *hstride, int64_t batch) {
  const int64_t I = s->n_instances, D = s->d_in, H = s->d_sae;
  int64_t total = 0;
  /* the first row of the rec scratch stores the direction being written */
  float *u = s->rec;

  if (method == SAE_RESAMPLE_ANTHROPIC) sae_pass(s, h, hstride, batch, 0);

  for (int64_t i = 0; i < I; i++) {
    int64_t n_dead = 0;
    for (int64_t k = 0; k < H; k++) n_dead += dead[i * H + k] != 0;
    if (n_dead == 0) continue;

    if (method == SAE_RESAMPLE_SIMPLE) {
      uint64_t base = generator_reserve(&s->gen, (uint64_t)(n_dead * D));
      for (int64_t k = 0, n = 0; k < H; k++) {
        if (!dead[i * H + k]) continue;
        for (int64_t j = 0; j < D; j++)
          u[j] = rng_normal(s->gen.seed, base + (uint64_t)(n * D + j));
        normalize_eps(u, D);
        set_neuron(s, i, k, u, 1.0f);
        n++;
      }
      total += n_dead;
      continue;
    }

    /* Anthropic: inputs drawn with probability proportional to l2^2 */
    double wsum = 0.0, lmax = 0.0;
    for (int64_t b = 0; b < batch; b++) {
      double l = s->l2[b * I + i];
      wsum += l * l;
      if (l > lmax) lmax = l;
    }
    if (lmax < 1e-6 || !(wsum > 0.0)) continue;

    /* mean norm of the encoder columns of alive neurons, 1 if none */
    double norm_sum = 0.0;
    int64_t n_alive = 0;
    const float *We = sae_param(s, s->off_W_enc) + i * D * H;
    for (int64_t k = 0; k < H; k++) {
      if (dead[i * H + k]) continue;
      double n2 = 0.0;
      for (int64_t j = 0; j < D; j++) n2 += (double)We[j * H + k] * We[j * H + k];
      norm_sum += sqrt(n2);
      n_alive++;
    }
    float alive_norm = n_alive > 0 ? (float)(norm_sum / (double)n_alive) : 1.0f;

    /* NOTE: draws are with replacement, so two dead neurons can get the
     * same input. They then have equal weights and zeroed Adam moments,
     * receive equal gradients and stay copies of each other. */
    uint64_t base = generator_reserve(&s->gen, (uint64_t)n_dead);
    for (int64_t k = 0, n = 0; k < H; k++) {
      if (!dead[i * H + k]) continue;
      double target = rng_uniform_double(s->gen.seed, base + (uint64_t)n) * wsum;
      double cum = 0.0;
      int64_t pick = batch - 1;
      for (int64_t b = 0; b < batch; b++) {
        double l = s->l2[b * I + i];
        cum += l * l;
        if (cum > target && l > 0.0) { pick = b; break; }
      }
      while (pick > 0 && s->l2[pick * I + i] <= 0.0f) pick--;
      memcpy(u, s->hc + (pick * I + i) * D, (size_t)D * sizeof(float));
      normalize_eps(u, D);
      set_neuron(s, i, k, u, alive_norm * scale);
      n++;
    }
    total += n_dead;
  }
  return total;
}


/* ------------------------------------------------------------ benchmark */

/* The five products of one BLAS-path step for one instance (B rows,
 * d_in D, d_sae H), on buffers of its own: the sgemm-only lower bound of
 * a training step. Returns SAE_ENOMEM when the buffers do not fit. */
sae_status sae_bench_products(int64_t B, int64_t D, int64_t H, int reps,
                              double (*clock)(void), double *best) {
  float *x = alloc_floats(B * D), *a = alloc_floats(B * H),
        *r = alloc_floats(B * D), *dp = alloc_floats(B * H),
        *we = alloc_floats(D * H), *wd = alloc_floats(H * D),
        *gwe = alloc_floats(D * H), *gwd = alloc_floats(H * D);
  sae_status st = SAE_ENOMEM;
  if (x && a && r && dp && we && wd && gwe && gwd) {
    rng_fill_normal(x, B * D, 1, 0, 0.0f, 1.0f);
    rng_fill_normal(we, D * H, 2, 0, 0.0f, 0.02f);
    rng_fill_normal(wd, D * H, 3, 0, 0.0f, 0.02f);
    memset(gwe, 0, (size_t)(D * H) * sizeof(float));
    memset(gwd, 0, (size_t)(D * H) * sizeof(float));
    const int b = (int)B, d = (int)D, h = (int)H;
    *best = INFINITY;
    for (int rep = 0; rep < reps; rep++) {
      double t0 = clock();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, h, d, 1.0f, x,
                  d, we, h, 0.0f, a, h);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, d, h, 1.0f, a,
                  h, wd, d, 0.0f, r, d);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, h, d, 1.0f, r, d,
                  wd, d, 0.0f, dp, h);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, h, d, b, 1.0f, a, h,
                  r, d, 1.0f, gwd, d);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, h, b, 1.0f, x, d,
                  dp, h, 1.0f, gwe, h);
      double t = clock() - t0;
      if (t < *best) *best = t;
    }
    st = SAE_OK;
  }
  free(x); free(a); free(r); free(dp); free(we); free(wd); free(gwe); free(gwd);
  return st;
}
