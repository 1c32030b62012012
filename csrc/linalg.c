/*
 * linalg.c: batched matrix products through OpenBLAS sgemm (see linalg.h).
 */
#include "linalg.h"

#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* How one matrix goes to row-major sgemm without a copy. */
typedef struct blas_operand {
  CBLAS_TRANSPOSE trans;
  int64_t ld;
} blas_operand;


static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }


/* Finds a transpose flag and leading dim for a rows x cols matrix with
 * the given strides. Returns 0 when neither layout fits, so the matrix
 * must be copied. The stride of a dim of size 1 is never read and may
 * take any value. */
static int blas_layout(int64_t rows, int64_t cols, int64_t row_stride,
                       int64_t col_stride, blas_operand *op) {
  /* row-major: unit column stride, rows at least `cols` apart */
  if ((cols == 1 || col_stride == 1)
      && (rows == 1 || row_stride >= max64(cols, 1))) {
    op->trans = CblasNoTrans;
    op->ld = rows == 1 ? max64(cols, 1) : row_stride;
    return op->ld <= INT_MAX;
  }
  /* column-major, i.e. the transpose of a row-major matrix */
  if ((rows == 1 || row_stride == 1)
      && (cols == 1 || col_stride >= max64(rows, 1))) {
    op->trans = CblasTrans;
    op->ld = cols == 1 ? max64(rows, 1) : col_stride;
    return op->ld <= INT_MAX;
  }
  return 0;
}


/* Copies one strided matrix into a contiguous rows x cols buffer. */
static void copy_matrix(float *dst, const float *src, int64_t rows,
                        int64_t cols, int64_t row_stride, int64_t col_stride) {
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++)
      dst[i * cols + j] = src[i * row_stride + j * col_stride];
}


/* Returns the row stride that lets a's batch dims and rows be read as
 * one dim of batch_numel * rows rows, or -1 when the strides do not
 * chain that way. */
static int64_t folded_row_stride(const linalg_matrices *a, int nbatch,
                                 const int64_t *batch_size) {
  int64_t stride = -1, span = 1;   /* span: rows covered by inner dims */
  int64_t size[SAE_MAX_DIMS + 1], strides[SAE_MAX_DIMS + 1];
  for (int d = 0; d < nbatch; d++) {
    size[d] = batch_size[d];
    strides[d] = a->batch_stride[d];
  }
  size[nbatch] = a->rows;
  strides[nbatch] = a->row_stride;
  for (int d = nbatch; d >= 0; d--) {
    if (size[d] == 1) continue;
    if (stride < 0) stride = strides[d];          /* innermost real dim */
    else if (strides[d] != stride * span) return -1;
    span *= size[d];
  }
  return stride < 0 ? max64(a->cols, 1) : stride;
}


static int varies_over_batch(const linalg_matrices *m, int nbatch,
                             const int64_t *batch_size) {
  for (int d = 0; d < nbatch; d++)
    if (batch_size[d] > 1 && m->batch_stride[d] != 0) return 1;
  return 0;
}


static int64_t batch_offset(const linalg_matrices *m, int nbatch,
                            const int64_t *index) {
  int64_t off = 0;
  for (int d = 0; d < nbatch; d++) off += index[d] * m->batch_stride[d];
  return off;
}


/* Advances a row-major multi-index over the batch shape. */
static void next_index(int64_t *index, int nbatch, const int64_t *batch_size) {
  for (int d = nbatch - 1; d >= 0; d--) {
    if (++index[d] < batch_size[d]) return;
    index[d] = 0;
  }
}


sae_status linalg_matmul(float *out, int nbatch, const int64_t *batch_size,
                         const linalg_matrices *a, const linalg_matrices *b) {
  int64_t m = a->rows, k = a->cols, n = b->cols;
  int64_t batch = shape_numel(nbatch, batch_size);
  if (batch == 0 || m == 0 || n == 0) return SAE_OK;
  if (k == 0) {
    memset(out, 0, (size_t)(batch * m * n) * sizeof *out);
    return SAE_OK;
  }
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX) return SAE_ERANGE;

  /* one sgemm over all rows when b is shared and a's rows chain */
  blas_operand opa, opb;
  if (!varies_over_batch(b, nbatch, batch_size) && batch * m <= INT_MAX
      && blas_layout(k, n, b->row_stride, b->col_stride, &opb)) {
    int64_t stride = folded_row_stride(a, nbatch, batch_size);
    if (stride >= 0 && blas_layout(batch * m, k, stride, a->col_stride, &opa)
        && opa.trans == CblasNoTrans) {
      cblas_sgemm(CblasRowMajor, opa.trans, opb.trans, (int)(batch * m),
                  (int)n, (int)k, 1.0f, a->data, (int)opa.ld, b->data,
                  (int)opb.ld, 0.0f, out, (int)n);
      return SAE_OK;
    }
  }

  /* per batch entry; a matrix that fits no layout goes through scratch */
  int copy_a = !blas_layout(m, k, a->row_stride, a->col_stride, &opa);
  int copy_b = !blas_layout(k, n, b->row_stride, b->col_stride, &opb);
  float *scratch_a = NULL, *scratch_b = NULL;
  if (copy_a) {
    scratch_a = malloc((size_t)(m * k) * sizeof *scratch_a);
    opa.trans = CblasNoTrans;
    opa.ld = k;
  }
  if (copy_b) {
    scratch_b = malloc((size_t)(k * n) * sizeof *scratch_b);
    opb.trans = CblasNoTrans;
    opb.ld = n;
  }
  if ((copy_a && scratch_a == NULL) || (copy_b && scratch_b == NULL)) {
    free(scratch_a);
    free(scratch_b);
    return SAE_ENOMEM;
  }
  int64_t index[SAE_MAX_DIMS] = { 0 };
  const float *copied_a = NULL, *copied_b = NULL;
  for (int64_t e = 0; e < batch; e++) {
    const float *pa = a->data + batch_offset(a, nbatch, index);
    const float *pb = b->data + batch_offset(b, nbatch, index);
    /* a broadcast operand repeats; copy it only when it changes */
    if (copy_a && pa != copied_a) {
      copy_matrix(scratch_a, pa, m, k, a->row_stride, a->col_stride);
      copied_a = pa;
    }
    if (copy_b && pb != copied_b) {
      copy_matrix(scratch_b, pb, k, n, b->row_stride, b->col_stride);
      copied_b = pb;
    }
    cblas_sgemm(CblasRowMajor, opa.trans, opb.trans, (int)m, (int)n, (int)k,
                1.0f, copy_a ? scratch_a : pa, (int)opa.ld,
                copy_b ? scratch_b : pb, (int)opb.ld, 0.0f, out + e * m * n,
                (int)n);
    next_index(index, nbatch, batch_size);
  }
  free(scratch_a);
  free(scratch_b);
  return SAE_OK;
}


void linalg_matmul_naive(float *out, int nbatch, const int64_t *batch_size,
                         const linalg_matrices *a, const linalg_matrices *b) {
  int64_t m = a->rows, k = a->cols, n = b->cols;
  int64_t batch = shape_numel(nbatch, batch_size);
  int64_t index[SAE_MAX_DIMS] = { 0 };
  for (int64_t e = 0; e < batch; e++) {
    const float *pa = a->data + batch_offset(a, nbatch, index);
    const float *pb = b->data + batch_offset(b, nbatch, index);
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double sum = 0.0;
        for (int64_t p = 0; p < k; p++)
          sum += (double)pa[i * a->row_stride + p * a->col_stride]
                 * (double)pb[p * b->row_stride + j * b->col_stride];
        out[(e * m + i) * n + j] = (float)sum;
      }
    next_index(index, nbatch, batch_size);
  }
}


/* ------------------------------------------------------------ benchmarks */

double linalg_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}


double linalg_bench_sgemm(int m, int n, int k, int batch, int reps,
                          int trans_a, int trans_b) {
  size_t size_a = (size_t)m * (size_t)k, size_b = (size_t)k * (size_t)n;
  size_t size_c = (size_t)m * (size_t)n;
  float *a = malloc(size_a * (size_t)batch * sizeof *a);
  float *b = malloc(size_b * (size_t)batch * sizeof *b);
  float *c = malloc(size_c * (size_t)batch * sizeof *c);
  double best = -1.0;
  if (a == NULL || b == NULL || c == NULL) goto done;
  for (size_t i = 0; i < size_a * (size_t)batch; i++)
    a[i] = (float)(i % 13) * 0.01f;
  for (size_t i = 0; i < size_b * (size_t)batch; i++)
    b[i] = (float)(i % 7) * 0.02f;
  memset(c, 0, size_c * (size_t)batch * sizeof *c);
  CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
  CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
  int lda = trans_a ? m : k, ldb = trans_b ? k : n;
  for (int r = 0; r <= reps; r++) {
    double t0 = linalg_clock();
    for (int e = 0; e < batch; e++)
      cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a + size_a * e, lda,
                  b + size_b * e, ldb, 0.0f, c + size_c * e, n);
    double t = linalg_clock() - t0;
    if (r > 0 && (best < 0 || t < best)) best = t;   /* r = 0 warms up */
  }
done:
  free(a);
  free(b);
  free(c);
  return best;
}


/* The loops are marked simd because at -O2 GCC 12 vectorises only loops
 * without a scalar remainder (its "very-cheap" cost model). */
static void stream_pass(float *restrict c, const float *restrict a,
                        const float *restrict b, int64_t n, int inputs,
                        int threads) {
  if (inputs == 1) {
    #pragma omp parallel for simd if (parallel: threads) schedule(static)
    for (int64_t i = 0; i < n; i++) c[i] = a[i];
  } else {
    #pragma omp parallel for simd if (parallel: threads) schedule(static)
    for (int64_t i = 0; i < n; i++) c[i] = a[i] + b[i];
  }
}


double linalg_bench_stream(int64_t n, int reps, int inputs, int threads) {
  float *a = malloc((size_t)n * sizeof *a);
  float *b = malloc((size_t)n * sizeof *b);
  float *c = malloc((size_t)n * sizeof *c);
  double best = -1.0;
  if (a == NULL || b == NULL || c == NULL) goto done;
  for (int64_t i = 0; i < n; i++) {
    a[i] = (float)(i % 11);
    b[i] = (float)(i % 5);
  }
  for (int r = 0; r <= reps; r++) {
    double t0 = linalg_clock();
    stream_pass(c, a, b, n, inputs, threads);
    double t = linalg_clock() - t0;
    if (r > 0 && (best < 0 || t < best)) best = t;
  }
  /* read the output so the compiler cannot drop the stores */
  volatile float sink = c[n / 2];
  (void)sink;
done:
  free(a);
  free(b);
  free(c);
  return best;
}
