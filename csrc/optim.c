/*
 * optim.c: Adam and SGD update loops (see optim.h). Each loop is a plain
 * elementwise pass that the compiler vectorises; large buffers are split
 * across threads.
 */
#include "optim.h"

#include <math.h>
#include <stddef.h>

/* Buffers at least this long are split across threads. The `if` clauses
 * below name the parallel construct: a bare `if` on `parallel for simd`
 * also applies to the simd part and turns vectorisation off when false. */
#define OPTIM_PARALLEL_MIN (1 << 20)


/* The Adam loop with weight decay on or off as a compile-time constant,
 * so that each instantiation is one branch-free vector loop. The pointers
 * are restrict: the four buffers never overlap. */
static inline void adam_loop(float *restrict param,
                             const float *restrict grad,
                             float *restrict exp_avg,
                             float *restrict exp_avg_sq, int64_t n,
                             float beta1, float one_minus_beta1, float beta2,
                             float one_minus_beta2, float neg_step_size,
                             float bias_correction2_sqrt, float eps,
                             float weight_decay, const int decay) {
  #pragma omp parallel for simd if (parallel: n >= OPTIM_PARALLEL_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float g = grad[i];
    if (decay) g += weight_decay * param[i];
    float m = beta1 * exp_avg[i] + one_minus_beta1 * g;
    float v = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    float denom = sqrtf(v) / bias_correction2_sqrt + eps;
    param[i] += neg_step_size * (m / denom);
  }
}


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

  if (weight_decay != 0.0f)
    adam_loop(param, grad, exp_avg, exp_avg_sq, n, beta1, one_minus_beta1,
              beta2, one_minus_beta2, neg_step_size, bias_correction2_sqrt,
              eps, weight_decay, 1);
  else
    adam_loop(param, grad, exp_avg, exp_avg_sq, n, beta1, one_minus_beta1,
              beta2, one_minus_beta2, neg_step_size, bias_correction2_sqrt,
              eps, weight_decay, 0);
}


void sgd_update(float *param, const float *grad, float *buf, int64_t n,
                double lr, double momentum, double weight_decay,
                int first_step) {
  const float neg_lr = (float)(-lr), mu = (float)momentum;
  const float weight_decay_f = (float)weight_decay;

  if (buf == NULL || momentum == 0.0) {
    #pragma omp parallel for simd if (parallel: n >= OPTIM_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++)
      param[i] += neg_lr * (grad[i] + weight_decay_f * param[i]);
    return;
  }
  #pragma omp parallel for simd if (parallel: n >= OPTIM_PARALLEL_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float g = grad[i] + weight_decay_f * param[i];
    float b = first_step ? g : mu * buf[i] + g;
    buf[i] = b;
    param[i] += neg_lr * b;
  }
}
