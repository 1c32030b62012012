/*
 * ops.h: elementwise kernels with NumPy broadcasting.
 *
 * Every kernel writes `out` from operands that broadcast to out's shape
 * (the caller checks shapes, dtypes and overlap). An operand may alias
 * `out` only when it has exactly out's geometry, as in-place ops do. An
 * operand that overlaps `out` in any other way must be copied first. A
 * number is passed as a 0-d tensor. Large tensors are split across OpenMP
 * threads.
 */
#ifndef SAE_OPS_H
#define SAE_OPS_H

#include "tensor.h"

/* Tensors with at least this many elements are split across threads. */
#define OPS_PARALLEL_MIN 32768

typedef enum {
  OPS_ADD, OPS_SUB, OPS_MUL, OPS_DIV, OPS_POW, OPS_MAXIMUM, OPS_MINIMUM,
  OPS_GT, OPS_GE, OPS_LT, OPS_LE, OPS_EQ, OPS_NE,
  OPS_BINARY_COUNT
} ops_binary_op;

typedef enum {
  OPS_NEG, OPS_ABS, OPS_EXP, OPS_LOG, OPS_SQRT, OPS_RELU, OPS_GELU,
  OPS_GELU_TANH, OPS_SIGMOID, OPS_TANH, OPS_CLAMP,
  OPS_UNARY_COUNT
} ops_unary_op;

/* Whether the int64 kernels implement an op. */
int ops_binary_has_i64(ops_binary_op op);
int ops_unary_has_i64(ops_unary_op op);
/* Whether an op gives a float32 0/1 mask (the comparisons). */
int ops_binary_is_compare(ops_binary_op op);

/* out = a op b. For OPS_ADD and OPS_SUB, b is scaled by alpha first.
 * a and b have one dtype (float32 or int64); out is float32 for the
 * comparisons and float32 inputs, else int64. */
void ops_binary(ops_binary_op op, sae_tensor *out, const sae_tensor *a,
                const sae_tensor *b, double alpha);

/* out = op(a), same dtype. OPS_CLAMP clamps to [lo, hi]; pass -INFINITY
 * or INFINITY for a missing bound. NaN stays NaN in clamp and relu, as in
 * PyTorch. */
void ops_unary(ops_unary_op op, sae_tensor *out, const sae_tensor *a,
               double lo, double hi);

/* out = mask != 0 ? a : b, with a float32 mask and a, b and out of one
 * dtype. */
void ops_where(sae_tensor *out, const sae_tensor *mask, const sae_tensor *a,
               const sae_tensor *b);

/* Calls fn(ctx, n, ptr, step) for pieces of the strided runs that cover
 * `size`: ptr[k] points at the piece's first element of operand k (base[k]
 * plus its offset, esize[k] bytes per element) and step[k] is its stride in
 * elements. Pieces go to OpenMP threads when numel >= OPS_PARALLEL_MIN. */
typedef void (*ops_piece_fn)(const void *ctx, int64_t n, char *const *ptr,
                             const int64_t *step);
void ops_foreach(int ndim, const int64_t *size, int nops,
                 const int64_t *const *strides, char *const *base,
                 const size_t *esize, ops_piece_fn fn, const void *ctx);

#endif
