/*
 * optim.c: Adam and SGD update loops (see optim.h). Each loop is a plain
 * elementwise pass that the compiler vectorises; large buffers are split
 * across threads.
 */
#include "optim.h"

#include <math.h>
#include <stddef.h>

#define OPTIM_PARALLEL_MIN (1 << 20)


void adam_update(float *param, const float *grad, float *exp_avg,
                 float *exp_avg_sq, int64_t n, const adam_hparams *h,
                 int64_t step) {
  /* The scalar factors are computed in double and rounded once to float,
   * as torch does when it passes Python floats to float32 kernels. */
  double bias_correction1 = 1.0 - pow(h->beta1, (double)step);
  double bias_correction2 = 1.0 - pow(h->beta2, (double)step);
  const float beta1 = (float)h->beta1, one_minus_beta1 = (float)(1.0 - h->beta1);
  const float beta2 = (float)h->beta2, one_minus_beta2 = (float)(1.0 - h->beta2);
  const float neg_step_size = (float)(-h->lr / bias_correction1);
  const float bias_correction2_sqrt = (float)sqrt(bias_correction2);
  const float eps = (float)h->eps, weight_decay = (float)h->weight_decay;

  #pragma omp parallel for simd if (n >= OPTIM_PARALLEL_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float g = grad[i];
    if (weight_decay != 0.0f) g += weight_decay * param[i];
    float m = beta1 * exp_avg[i] + one_minus_beta1 * g;
    float v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    float denom = sqrtf(v) / bias_correction2_sqrt + eps;
    param[i] += neg_step_size * (m / denom);
  }
}


void sgd_update(float *param, const float *grad, float *buf, int64_t n,
                double lr, double momentum, double weight_decay,
                int first_step) {
  const float neg_lr = (float)(-lr), mu = (float)momentum;
  const float weight_decay_f = (float)weight_decay;

  if (buf == NULL || momentum == 0.0) {
    #pragma omp parallel for simd if (n >= OPTIM_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++)
      param[i] += neg_lr * (grad[i] + weight_decay_f * param[i]);
    return;
  }
  #pragma omp parallel for simd if (n >= OPTIM_PARALLEL_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float g = grad[i] + weight_decay_f * param[i];
    float b = first_step ? g : mu * buf[i] + g;
    buf[i] = b;
    param[i] += neg_lr * b;
  }
}
