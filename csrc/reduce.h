/*
 * reduce.h: reductions of float32 tensors (and a few of int64 tensors)
 * over one dim or over all elements, plus the per-line ops that keep the
 * dim (cumsum, sort, topk).
 *
 * Sums accumulate in double. The one exception is the plain sum of a
 * contiguous line (in sum, mean, var and std), which adds chunks of 256
 * elements in float32 first, so that the loop vectorizes. A chunk's
 * rounding error is at most about 20 float32 ulp of its sum of |x|. A
 * long line is cut into fixed blocks whose partial results are combined
 * in order, so the result does not depend on the number of threads.
 * Indices written to int64 tensors are 1-based.
 */
#ifndef SAE_REDUCE_H
#define SAE_REDUCE_H

#include "tensor.h"

typedef enum {
  REDUCE_SUM, REDUCE_MEAN, REDUCE_PROD,
  REDUCE_NORM,       /* param: p > 0, 0 (count of nonzeros) or INFINITY */
  REDUCE_VAR,        /* param: correction, 1 for the unbiased estimate */
  REDUCE_STD,        /* param: as for REDUCE_VAR */
  REDUCE_MAX, REDUCE_MIN,
  REDUCE_ALL, REDUCE_ANY  /* 1 when all (any) elements are nonzero, else 0 */
} reduce_op;

/* Reduces x along `dim` (0-based), or over all elements when dim < 0,
 * into the contiguous float32 tensor `out`, whose elements follow x's
 * order with `dim` removed. For REDUCE_MAX and REDUCE_MIN, `indices`
 * (contiguous int64, same numel as out, or NULL) gets the 1-based
 * position of the first extreme along the line. NaN propagates to max and
 * min. A 0-d x counts as one line of one element. */
void reduce(reduce_op op, double param, sae_tensor *out, sae_tensor *indices,
            const sae_tensor *x, int dim);

/* The int64 forms of REDUCE_SUM, REDUCE_PROD, REDUCE_MAX and REDUCE_MIN,
 * as reduce() but with x and out int64. Sums and products wrap around on
 * overflow. */
void reduce_i64(reduce_op op, sae_tensor *out, sae_tensor *indices,
                const sae_tensor *x, int dim);

/* out (contiguous, x's shape) = running sums of x along dim. */
void reduce_cumsum(sae_tensor *out, const sae_tensor *x, int dim);

/* Sorts each line of x along dim, stably, with NaN larger than any
 * number. Writes the first k elements of each sorted line into `values`
 * and their 1-based positions into `indices`, both contiguous with x's
 * shape except size k in dim. Fails only when out of memory. */
sae_status reduce_sort(sae_tensor *values, sae_tensor *indices,
                       const sae_tensor *x, int dim, int descending,
                       int64_t k);

#endif
