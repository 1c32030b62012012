/*
 * optim.h: update kernels of the Adam and SGD optimizers over flat float
 * buffers. The Lua module sae.optim keeps the state tensors and the step
 * count and calls these once per parameter tensor.
 */
#ifndef SAE_OPTIM_H
#define SAE_OPTIM_H

#include <stdint.h>

typedef struct adam_hparams {
  double lr, beta1, beta2, eps, weight_decay;
} adam_hparams;

/* One Adam step over n elements, as torch.optim.Adam (amsgrad off,
 * maximize off) computes it for step number `step` (1 for the first):
 *   g = grad + weight_decay * param
 *   m = beta1 * m + (1 - beta1) * g
 *   v = beta2 * v + (1 - beta2) * g * g
 *   param -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
 * (Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
 * Algorithm 1, with eps added after the bias correction as torch does).
 * Updates param, exp_avg and exp_avg_sq in place; grad is read only. */
void adam_update(float *param, const float *grad, float *exp_avg,
                 float *exp_avg_sq, int64_t n, const adam_hparams *h,
                 int64_t step);

/* One SGD step as torch.optim.SGD computes it (dampening 0, no Nesterov):
 *   g = grad + weight_decay * param
 *   buf = g on the first step, else momentum * buf + g   (when momentum > 0)
 *   param -= lr * buf   (or lr * g without momentum)
 * `buf` may be NULL when momentum is 0. */
void sgd_update(float *param, const float *grad, float *buf, int64_t n,
                double lr, double momentum, double weight_decay,
                int first_step);

#endif
