/*
 * nn.c: kernels for the network helpers (see nn.h).
 *
 * Every kernel here works on "rows": a tensor is split into the dims that a
 * kernel reduces or indexes along (the row) and the other dims (the outer
 * positions). An sae_iter over the outer dims merges what it can, and row r
 * finds its start in each operand by unravelling r over the merged dims, so
 * OpenMP threads can take any block of rows. Sums accumulate in double.
 */
#include "nn.h"

#include <math.h>
#include <string.h>

/* Below this many elements of work a kernel stays on one thread, because
 * starting the OpenMP team costs more than it saves. */
#define NN_PARALLEL_MIN 32768


/* ------------------------------------------------------------------ rows */

/* Sets up `it` over the dims of (ndim, size) outside [lo, hi), for nops
 * operands whose full strides are strides[k][0 .. ndim-1]. */
static void outer_init(sae_iter *it, int ndim, const int64_t *size, int lo,
                       int hi, int nops, const int64_t *const *strides) {
  int64_t osize[SAE_MAX_DIMS];
  int64_t ostride[SAE_ITER_MAX_OPS][SAE_MAX_DIMS];
  const int64_t *optr[SAE_ITER_MAX_OPS];
  int n = 0;
  for (int d = 0; d < ndim; d++) {
    if (d >= lo && d < hi) continue;
    osize[n] = size[d];
    for (int k = 0; k < nops; k++) ostride[k][n] = strides[k][d];
    n++;
  }
  for (int k = 0; k < nops; k++) optr[k] = ostride[k];
  iter_init(it, n, osize, nops, optr);
}


static int64_t outer_rows(const sae_iter *it) {
  if (it->empty) return 0;
  int64_t n = 1;
  for (int d = 0; d < it->ndim; d++) n *= it->size[d];
  return n;
}


/* Element offsets of outer position `row` in each operand. */
static void outer_offsets(const sae_iter *it, int64_t row, int64_t *off) {
  for (int k = 0; k < it->nops; k++) off[k] = 0;
  for (int d = it->ndim - 1; d >= 0; d--) {
    int64_t i = row % it->size[d];
    row /= it->size[d];
    for (int k = 0; k < it->nops; k++) off[k] += i * it->stride[k][d];
  }
}


int64_t nn_block_stride(const sae_tensor *t, int lo) {
  int64_t step = -1, expect = 0;
  for (int d = t->ndim - 1; d >= lo; d--) {
    if (t->size[d] == 1) continue;
    if (step < 0) {
      step = t->stride[d];
      expect = step * t->size[d];
    } else if (t->stride[d] != expect) {
      return -1;
    } else {
      expect *= t->size[d];
    }
  }
  return step < 0 ? 1 : step;
}


/* --------------------------------------------------------------- softmax */

/* Max of a row; a NaN anywhere makes the max NaN, so it spreads to the
 * whole row as it does in PyTorch. */
static float row_max(const float *x, int64_t xs, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    float v = x[i * xs];
    if (!(v <= m)) m = v;
  }
  return m;
}


static void softmax_row(float *y, int64_t ys, const float *x, int64_t xs,
                        int64_t n) {
  float m = row_max(x, xs, n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) {
    float e = expf(x[i * xs] - m);
    y[i * ys] = e;
    sum += e;
  }
  float scale = (float)(1.0 / sum);
  for (int64_t i = 0; i < n; i++) y[i * ys] *= scale;
}


/* log_softmax = (x - max) - log(sum exp(x - max)); subtracting the two
 * terms separately keeps the precision of x - max when |x| is large. */
static void log_softmax_row(float *y, int64_t ys, const float *x, int64_t xs,
                            int64_t n) {
  float m = row_max(x, xs, n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) sum += expf(x[i * xs] - m);
  float lse = (float)log(sum);
  for (int64_t i = 0; i < n; i++) y[i * ys] = (x[i * xs] - m) - lse;
}


void nn_softmax(sae_tensor *out, const sae_tensor *x, int dim, int log) {
  /* x, out: [..., n at dim, ...] */
  int64_t numel = tensor_numel(x);
  if (numel == 0) return;
  const int64_t *strides[2] = { x->stride, out->stride };
  sae_iter it;
  outer_init(&it, x->ndim, x->size, dim, dim + 1, 2, strides);
  int64_t rows = outer_rows(&it), n = x->size[dim];
  int64_t xs = x->stride[dim], ys = out->stride[dim];
  const float *xp = tensor_f32(x);
  float *yp = tensor_f32(out);

  #pragma omp parallel for schedule(static) if (numel >= NN_PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t off[2];
    outer_offsets(&it, r, off);
    if (log) log_softmax_row(yp + off[1], ys, xp + off[0], xs, n);
    else softmax_row(yp + off[1], ys, xp + off[0], xs, n);
  }
}


/* --------------------------------------------------------- cross entropy */

void nn_cross_entropy(float *loss, const sae_tensor *logits,
                      const int64_t *target, int64_t ignore_index,
                      double label_smoothing) {
  /* logits: [..., C]; target, loss: one entry per row */
  int last = logits->ndim - 1;
  int64_t numel = tensor_numel(logits);
  const int64_t *strides[1] = { logits->stride };
  sae_iter it;
  outer_init(&it, logits->ndim, logits->size, last, last + 1, 1, strides);
  int64_t rows = outer_rows(&it), classes = logits->size[last];
  int64_t xs = logits->stride[last];
  const float *xp = tensor_f32(logits);

  #pragma omp parallel for schedule(static) if (numel >= NN_PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++) {
    if (target[r] == ignore_index) {
      loss[r] = 0.0f;
      continue;
    }
    int64_t off;
    outer_offsets(&it, r, &off);
    const float *x = xp + off;
    float m = row_max(x, xs, classes);
    double sum = 0.0, total = 0.0;
    for (int64_t i = 0; i < classes; i++) {
      sum += expf(x[i * xs] - m);
      total += x[i * xs] - m;
    }
    double lse = log(sum);
    double nll = lse - (double)(x[(target[r] - 1) * xs] - m);
    if (label_smoothing > 0.0) {
      /* mean over classes of -log p_c = lse - mean(x - m) */
      double smooth = lse - total / (double)classes;
      nll = (1.0 - label_smoothing) * nll + label_smoothing * smooth;
    }
    loss[r] = (float)nll;
  }
}


/* ------------------------------------------------------------ layer norm */

void nn_layer_norm(sae_tensor *out, const sae_tensor *x, int k,
                   const float *weight, const float *bias, double eps) {
  /* x, out: [outer..., normalised block of k dims] */
  int64_t numel = tensor_numel(x);
  if (numel == 0) return;
  int lo = x->ndim - k;
  const int64_t *strides[2] = { x->stride, out->stride };
  sae_iter it;
  outer_init(&it, x->ndim, x->size, lo, x->ndim, 2, strides);
  int64_t rows = outer_rows(&it), n = shape_numel(k, x->size + lo);
  int64_t xs = nn_block_stride(x, lo);
  const float *xp = tensor_f32(x);
  float *yp = tensor_f32(out);

  #pragma omp parallel for schedule(static) if (numel >= NN_PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t off[2];
    outer_offsets(&it, r, off);
    const float *row = xp + off[0];
    float *y = yp + off[1];   /* out is contiguous: the block has stride 1 */
    double sum = 0.0, sq = 0.0;
    for (int64_t i = 0; i < n; i++) sum += row[i * xs];
    double mean = sum / (double)n;
    for (int64_t i = 0; i < n; i++) {
      double dv = row[i * xs] - mean;
      sq += dv * dv;
    }
    float rstd = (float)(1.0 / sqrt(sq / (double)n + eps));
    float fmean = (float)mean;
    for (int64_t i = 0; i < n; i++) {
      float v = (row[i * xs] - fmean) * rstd;
      if (weight != NULL) v *= weight[i];
      if (bias != NULL) v += bias[i];
      y[i] = v;
    }
  }
}


/* ----------------------------------------------------- cosine similarity */

void nn_cosine_similarity(sae_tensor *out, const sae_tensor *a,
                          const sae_tensor *b, int ndim, const int64_t *size,
                          int dim, double eps) {
  /* a, b: broadcast to size [..., n at dim, ...]; out: size without dim */
  int64_t sa[SAE_MAX_DIMS], sb[SAE_MAX_DIMS], so[SAE_MAX_DIMS];
  tensor_broadcast_strides(a, ndim, size, sa);
  tensor_broadcast_strides(b, ndim, size, sb);
  for (int d = 0, j = 0; d < ndim; d++)
    so[d] = d == dim ? 0 : out->stride[j++];
  const int64_t *strides[3] = { sa, sb, so };
  sae_iter it;
  outer_init(&it, ndim, size, dim, dim + 1, 3, strides);
  int64_t rows = outer_rows(&it), n = size[dim];
  int64_t as = sa[dim], bs = sb[dim];
  const float *ap = tensor_f32(a), *bp = tensor_f32(b);
  float *yp = tensor_f32(out);

  #pragma omp parallel for schedule(static) if (rows * n >= NN_PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t off[3];
    outer_offsets(&it, r, off);
    const float *x = ap + off[0], *y = bp + off[1];
    double dot = 0.0, xx = 0.0, yy = 0.0;
    for (int64_t i = 0; i < n; i++) {
      double u = x[i * as], v = y[i * bs];
      dot += u * v;
      xx += u * u;
      yy += v * v;
    }
    double nx = fmax(sqrt(xx), eps), ny = fmax(sqrt(yy), eps);
    yp[off[2]] = (float)(dot / (nx * ny));
  }
}


/* ----------------------------------------------------------- index ops */

void nn_index_select(sae_tensor *out, const sae_tensor *x, int dim,
                     const int64_t *index, int64_t n) {
  /* x: [outer..., V at dim, inner...]; out: [outer..., n, inner...] */
  int64_t numel = tensor_numel(out);
  if (numel == 0) return;
  size_t esize = sae_dtype_size(x->dtype);
  const char *xp = (const char *)x->storage->data + x->offset * esize;
  char *yp = (char *)out->storage->data + out->offset * esize;
  int64_t xs = x->stride[dim];
  const int64_t *strides[2] = { x->stride, out->stride };
  sae_iter it;

  if (dim == x->ndim - 1) {
    /* one element per index: a plain loop per outer row */
    outer_init(&it, x->ndim, x->size, dim, dim + 1, 2, strides);
    int64_t rows = outer_rows(&it);
    #pragma omp parallel for schedule(static) if (numel >= NN_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
      int64_t off[2];
      outer_offsets(&it, r, off);
      for (int64_t j = 0; j < n; j++)
        memcpy(yp + (off[1] + j) * esize,
               xp + (off[0] + (index[j] - 1) * xs) * esize, esize);
    }
    return;
  }

  /* Otherwise each (outer row, j) pair copies one block of the inner dims,
   * e.g. one embedding vector; tensor_copy handles strided blocks. */
  outer_init(&it, dim, x->size, dim, dim, 2, strides);
  int64_t rows = outer_rows(&it);
  sae_tensor xblock = *x, yblock = *out;   /* unowned views */
  for (int d = 0; d <= dim; d++) xblock.size[d] = yblock.size[d] = 1;

  #pragma omp parallel for schedule(static) if (numel >= NN_PARALLEL_MIN)
  for (int64_t p = 0; p < rows * n; p++) {
    int64_t off[2], r = p / n, j = p % n;
    outer_offsets(&it, r, off);
    sae_tensor src = xblock, dst = yblock;
    src.offset += off[0] + (index[j] - 1) * xs;
    dst.offset += off[1] + j * out->stride[dim];
    tensor_copy(&dst, &src);
  }
}


void nn_gather(sae_tensor *out, const sae_tensor *x, int dim,
               const sae_tensor *index) {
  /* index, out: [..., m at dim, ...]; x: same ndim, any size at dim */
  int64_t numel = tensor_numel(index);
  if (numel == 0) return;
  const int64_t *strides[3] = { x->stride, index->stride, out->stride };
  sae_iter it;
  outer_init(&it, index->ndim, index->size, dim, dim + 1, 3, strides);
  int64_t rows = outer_rows(&it), m = index->size[dim];
  int64_t xs = x->stride[dim], is = index->stride[dim];
  int64_t ys = out->stride[dim];
  const int64_t *ip = tensor_i64(index);
  int is_float = x->dtype == SAE_FLOAT32;

  #pragma omp parallel for schedule(static) if (numel >= NN_PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t off[3];
    outer_offsets(&it, r, off);
    const int64_t *idx = ip + off[1];
    if (is_float) {
      const float *src = tensor_f32(x) + off[0];
      float *dst = tensor_f32(out) + off[2];
      for (int64_t j = 0; j < m; j++) dst[j * ys] = src[(idx[j * is] - 1) * xs];
    } else {
      const int64_t *src = tensor_i64(x) + off[0];
      int64_t *dst = tensor_i64(out) + off[2];
      for (int64_t j = 0; j < m; j++) dst[j * ys] = src[(idx[j * is] - 1) * xs];
    }
  }
}


void nn_scatter_add(sae_tensor *x, int dim, const sae_tensor *index,
                    const sae_tensor *src) {
  /* index: [..., m at dim, ...]; src at least index's size in every dim;
   * x at least index's size outside dim.
   * Two outer positions differ in a coordinate other than dim, so they
   * write to distinct elements of x (which has no stride-0 dims) and rows
   * can run on different threads. Within a row the adds keep index order,
   * so the result does not depend on the thread count. */
  int64_t numel = tensor_numel(index);
  if (numel == 0) return;
  const int64_t *strides[3] = { x->stride, index->stride, src->stride };
  sae_iter it;
  outer_init(&it, index->ndim, index->size, dim, dim + 1, 3, strides);
  int64_t rows = outer_rows(&it), m = index->size[dim];
  int64_t xs = x->stride[dim], is = index->stride[dim];
  int64_t ss = src->stride[dim];
  const int64_t *ip = tensor_i64(index);
  int is_float = x->dtype == SAE_FLOAT32;

  #pragma omp parallel for schedule(static) if (numel >= NN_PARALLEL_MIN)
  for (int64_t r = 0; r < rows; r++) {
    int64_t off[3];
    outer_offsets(&it, r, off);
    const int64_t *idx = ip + off[1];
    if (is_float) {
      float *dst = tensor_f32(x) + off[0];
      const float *s = tensor_f32(src) + off[2];
      for (int64_t j = 0; j < m; j++) dst[(idx[j * is] - 1) * xs] += s[j * ss];
    } else {
      int64_t *dst = tensor_i64(x) + off[0];
      const int64_t *s = tensor_i64(src) + off[2];
      for (int64_t j = 0; j < m; j++) dst[(idx[j * is] - 1) * xs] += s[j * ss];
    }
  }
}


void nn_one_hot(sae_tensor *out, const int64_t *index, int64_t n,
                int64_t classes) {
  int64_t *y = tensor_i64(out);
  for (int64_t i = 0; i < n; i++) y[i * classes + index[i] - 1] = 1;
}


int nn_find_out_of_range(const sae_tensor *t, int64_t lo, int64_t hi,
                         int has_skip, int64_t skip, int64_t *bad) {
  const int64_t *strides[1] = { t->stride };
  sae_iter it;
  iter_init(&it, t->ndim, t->size, 1, strides);
  if (it.empty) return 0;
  const int64_t *p = tensor_i64(t);
  do {
    const int64_t *run = p + it.ptr[0];
    for (int64_t i = 0; i < it.inner; i++) {
      int64_t v = run[i * it.step[0]];
      if ((v < lo || v > hi) && !(has_skip && v == skip)) {
        *bad = v;
        return 1;
      }
    }
  } while (iter_next(&it));
  return 0;
}
