/*
 * nn.h: network helpers on float32 tensors: softmax, log-softmax, cross
 * entropy, layer norm, cosine similarity, and the index kernels
 * (index_select, gather, scatter_add, one_hot).
 *
 * Dims here are 0-based. Index tensors hold 1-based values, as the Lua API
 * does. The bindings check shapes, dtypes and every index before calling a
 * kernel, so kernels trust their input. Outputs written by a kernel are
 * contiguous tensors of the right shape allocated by the caller. Inputs may
 * be any strided view unless a function states otherwise.
 */
#ifndef SAE_NN_H
#define SAE_NN_H

#include <stdint.h>

#include "tensor.h"

/* Softmax (log_softmax when `take_log` is set) of x along `dim` into out,
 * which has x's shape. Each row subtracts its max before exp, so logits of
 * any finite size give finite results. */
void nn_softmax(sae_tensor *out, const sae_tensor *x, int dim, int take_log);

/* Cross entropy of each row of logits [..., C] (classes on the last dim):
 * loss[r] = w[t] * (logsumexp(logits[r, :]) - logits[r, t]) with
 * t = target[r] - 1 and w the per-class `weight` (all 1 when NULL).
 * `target` is contiguous with one 1-based class per row; rows whose target
 * equals `ignore_index` get loss 0. With label_smoothing s > 0 the loss is
 * (1 - s) * that + s / C * sum over classes c of -w[c] * log_softmax[c],
 * as PyTorch 1.13 defines it. `loss` has one float per row. */
void nn_cross_entropy(float *loss, const sae_tensor *logits,
                      const int64_t *target, const float *weight,
                      int64_t ignore_index, double label_smoothing);

/* Layer norm over the trailing `k` dims of x into out (x's shape), with the
 * biased variance: out = (x - mean) / sqrt(var + eps) * weight + bias.
 * weight and bias are contiguous arrays of the normalised block's size,
 * or NULL. The trailing k dims of x must pass nn_block_stride. */
void nn_layer_norm(sae_tensor *out, const sae_tensor *x, int k,
                   const float *weight, const float *bias, double eps);

/* Returns the single stride that walks dims lo .. ndim-1 of t in row-major
 * order, or -1 when those dims do not collapse into one strided run. */
int64_t nn_block_stride(const sae_tensor *t, int lo);

/* Cosine similarity of a and b along `dim` of their broadcast shape
 * (ndim, size); out has that shape without `dim`. Each norm is clamped
 * below at eps, as PyTorch 1.13 does:
 * dot / (max(|a|, eps) * max(|b|, eps)). */
void nn_cosine_similarity(sae_tensor *out, const sae_tensor *a,
                          const sae_tensor *b, int ndim, const int64_t *size,
                          int dim, double eps);

/* out = x with `dim` replaced by the n entries of `index` (1-based):
 * out[..., j, ...] = x[..., index[j] - 1, ...]. Any dtype; out has x's
 * dtype. */
void nn_index_select(sae_tensor *out, const sae_tensor *x, int dim,
                     const int64_t *index, int64_t n);

/* out[p] = x[p with coordinate dim replaced by index[p] - 1]; out has the
 * shape of index and the dtype of x. */
void nn_gather(sae_tensor *out, const sae_tensor *x, int dim,
               const sae_tensor *index);

/* x[p with coordinate dim replaced by index[p] - 1] += src[p] for every
 * position p of index, in place. x and src share a dtype; x must not have
 * expanded (stride 0) dims, and neither src nor index may overlap x. */
void nn_scatter_add(sae_tensor *x, int dim, const sae_tensor *index,
                    const sae_tensor *src);

/* Sets out (int64, zero-filled, shape [n, classes]) to 1 at
 * (i, index[i] - 1). */
void nn_one_hot(sae_tensor *out, const int64_t *index, int64_t n,
                int64_t classes);

/* Finds the first value of int64 tensor t (in row-major order) outside
 * [lo, hi], skipping values equal to `skip` when has_skip is set. Returns
 * 1 and stores the value in *bad, or returns 0 when all are in range. */
int nn_find_out_of_range(const sae_tensor *t, int64_t lo, int64_t hi,
                         int has_skip, int64_t skip, int64_t *bad);

#endif
