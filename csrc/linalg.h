/*
 * linalg.h: matrix products on float32 views through OpenBLAS sgemm.
 *
 * Operands are described by their strides, so transposed and narrowed
 * views go to sgemm with a transpose flag and a leading dimension instead
 * of being copied. This layer does not include lua.h.
 */
#ifndef SAE_LINALG_H
#define SAE_LINALG_H

#include "tensor.h"

/* A stack of rows x cols matrices: element (b..., i, j) is at
 * data[sum_d b_d * batch_stride[d] + i * row_stride + j * col_stride],
 * with batch strides already broadcast to the output's batch shape
 * (0 for broadcast dims). Strides are in elements and never negative. */
typedef struct linalg_matrices {
  const float *data;
  int64_t rows, cols;
  int64_t row_stride, col_stride;
  int64_t batch_stride[SAE_MAX_DIMS];
} linalg_matrices;

/* Computes out[b..., m, n] = a[b..., m, k] @ b[b..., k, n] for every
 * index b... of the batch shape (nbatch dims of batch_size), where out is
 * contiguous. Inner dims must match (a->cols == b->rows), checked by the
 * caller. Calls sgemm once per batch entry, or once in all when b does not
 * vary over the batch and a's batch dims fold into its rows. Returns
 * SAE_ERANGE when a size does not fit BLAS's int and SAE_ENOMEM when a
 * scratch copy cannot be allocated. Must not run inside an OpenMP
 * parallel region, because Debian's OpenBLAS uses its own threads. */
sae_status linalg_matmul(float *out, int nbatch, const int64_t *batch_size,
                         const linalg_matrices *a, const linalg_matrices *b);

/* Reference product with the same contract as linalg_matmul, as plain
 * loops with double accumulation, for tests. */
void linalg_matmul_naive(float *out, int nbatch, const int64_t *batch_size,
                         const linalg_matrices *a, const linalg_matrices *b);

/* Benchmark helpers, kept out of the documented API. */

/* Monotonic wall-clock time in seconds. */
double linalg_clock(void);
/* Times cblas_sgemm called directly on contiguous m x k and k x n
 * matrices (a or b stored transposed when trans_a or trans_b is set),
 * `batch` calls in a row over separate matrices. Returns the fastest of
 * `reps` such rounds in seconds, after one warm-up round, or a negative
 * value when out of memory. */
double linalg_bench_sgemm(int m, int n, int k, int batch, int reps,
                          int trans_a, int trans_b);
/* Times a plain C loop over n floats: `inputs` = 1 copies a into c,
 * `inputs` = 2 stores a + b into c. With `threads` set the loop is split
 * by OpenMP. Returns the fastest of `reps` passes in seconds, or a
 * negative value when out of memory. */
double linalg_bench_stream(int64_t n, int reps, int inputs, int threads);

#endif
