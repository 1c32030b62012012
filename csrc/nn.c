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
#ifdef _OPENMP
#include <omp.h>
#endif

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


/* Position of one thread in its block of outer rows: the row's index in
 * each merged outer dim and its element offset in each operand. */
typedef struct {
  int64_t index[SAE_MAX_DIMS];
  int64_t off[SAE_ITER_MAX_OPS];
} outer_cursor;


/* Splits rows 0 .. rows-1 evenly over the threads of the current team
 * (one thread outside a parallel region), gives this thread its range
 * [*first, *end) and seeks the cursor to *first. */
static void cursor_start(const sae_iter *it, int64_t rows, outer_cursor *c,
                         int64_t *first, int64_t *end) {
  int64_t nthreads = 1, thread = 0;
#ifdef _OPENMP
  nthreads = omp_get_num_threads();
  thread = omp_get_thread_num();
#endif
  *first = rows * thread / nthreads;
  *end = rows * (thread + 1) / nthreads;
  int64_t row = *first;
  for (int k = 0; k < it->nops; k++) c->off[k] = 0;
  for (int d = it->ndim - 1; d >= 0; d--) {
    c->index[d] = row % it->size[d];
    row /= it->size[d];
    for (int k = 0; k < it->nops; k++) c->off[k] += c->index[d] * it->stride[k][d];
  }
}


/* Steps the cursor to the next row, odometer style. */
static inline void cursor_next(const sae_iter *it, outer_cursor *c) {
  for (int d = it->ndim - 1; d >= 0; d--) {
    if (++c->index[d] < it->size[d]) {
      for (int k = 0; k < it->nops; k++) c->off[k] += it->stride[k][d];
      return;
    }
    c->index[d] = 0;
    for (int k = 0; k < it->nops; k++)
      c->off[k] -= it->stride[k][d] * (it->size[d] - 1);
  }
}


/* Rows per block in the blocked loops below. A block is a run of rows
 * that are neighbours along the innermost outer dim, so when that dim has
 * stride 1 the block's elements at one row position are adjacent. */
#define NN_BLOCK 64


/* Returns how many rows from the cursor's row on stay in its innermost
 * outer run, capped at `limit`. */
static inline int64_t cursor_block(const sae_iter *it, const outer_cursor *c,
                                   int64_t limit) {
  int last = it->ndim - 1;
  int64_t left = it->size[last] - c->index[last];
  return left < limit ? left : limit;
}


static inline void cursor_skip(const sae_iter *it, outer_cursor *c,
                               int64_t count) {
  for (int64_t i = 0; i < count; i++) cursor_next(it, c);
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

/* exp(x) for x <= 0 (and NaN), written so loops over it vectorise: glibc's
 * expf is a call per element. x = k ln2 + r with |r| <= ln2 / 2, and
 * exp(r) comes from its Taylor series to degree 7 (truncation below 6e-9
 * relative, so the result is within a few float ulps). Results below
 * exp(-87) flush to 0, where expf would give subnormals. */
static inline float exp_nonpositive(float x) {
  const float log2e = 1.44269504f;
  const float ln2_hi = 0.693145751953125f;     /* 16 bits: k * ln2_hi exact */
  const float ln2_lo = 1.42860682e-6f;         /* ln2 - ln2_hi */
  const float round_magic = 12582912.0f;       /* 1.5 * 2^23 */
  float xc = x < -87.0f ? -87.0f : x;
  /* adding 1.5 * 2^23 rounds x / ln2 to an integer k kept in the low
   * mantissa bits, which avoids a float-to-int conversion */
  float kf = xc * log2e + round_magic;
  uint32_t kbits, magic_bits;
  memcpy(&kbits, &kf, sizeof kbits);
  memcpy(&magic_bits, &round_magic, sizeof magic_bits);
  kf -= round_magic;
  float r = xc - kf * ln2_hi - kf * ln2_lo;
  float p = 1.0f + r * (1.0f + r * (1.0f / 2 + r * (1.0f / 6 + r * (1.0f / 24
            + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
  /* 2^k as float bits; unsigned, because a NaN x gives garbage bits here
   * (harmless, as p is NaN too) */
  uint32_t scale_bits = (kbits - magic_bits + 127u) << 23;
  float scale;
  memcpy(&scale, &scale_bits, sizeof scale);
  return x < -87.0f ? 0.0f : p * scale;
}


/* Max of a row. A NaN may be skipped here, but it still turns the whole
 * row into NaN through the sum of exponentials, as in PyTorch. */
static inline float row_max(const float *x, int64_t xs, int64_t n) {
  float m = -INFINITY;
  #pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; i++) m = x[i * xs] > m ? x[i * xs] : m;
  return m;
}


/* Sum of exp(x - m) over a row: float sums over blocks of 256 (which
 * vectorise), added up in double. */
static inline double row_sum_exp(const float *x, int64_t xs, int64_t n,
                                 float m) {
  double sum = 0.0;
  for (int64_t start = 0; start < n; start += 256) {
    int64_t end = n - start < 256 ? n : start + 256;
    float block = 0.0f;
    #pragma omp simd reduction(+ : block)
    for (int64_t i = start; i < end; i++)
      block += exp_nonpositive(x[i * xs] - m);
    sum += block;
  }
  return sum;
}


static inline void softmax_row(float *y, int64_t ys, const float *x,
                               int64_t xs, int64_t n) {
  float m = row_max(x, xs, n);
  float scale = (float)(1.0 / row_sum_exp(x, xs, n, m));
  #pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i * ys] = exp_nonpositive(x[i * xs] - m) * scale;
}


/* log_softmax = (x - max) - log(sum exp(x - max)); subtracting the two
 * terms separately keeps the precision of x - max when |x| is large. */
static inline void log_softmax_row(float *y, int64_t ys, const float *x,
                                   int64_t xs, int64_t n) {
  float m = row_max(x, xs, n);
  float lse = (float)log(row_sum_exp(x, xs, n, m));
  #pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i * ys] = (x[i * xs] - m) - lse;
}


/* Softmax or log-softmax of `block` rows at once, for rows whose own
 * elements are far apart (stride xs) but whose neighbours in the block are
 * adjacent (stride 1), as in a transposed tensor. Every pass then reads
 * memory in order and the inner loops over the block vectorise. */
static void softmax_block(float *y, int64_t ys, int64_t yb, const float *x,
                          int64_t xs, int64_t n, int64_t block, int take_log) {
  float m[NN_BLOCK], part[NN_BLOCK], scale[NN_BLOCK], values[NN_BLOCK];
  double sum[NN_BLOCK];
  for (int64_t b = 0; b < block; b++) {
    m[b] = -INFINITY;
    sum[b] = 0.0;
  }
  for (int64_t i = 0; i < n; i++) {
    const float *row = x + i * xs;
    #pragma omp simd
    for (int64_t b = 0; b < block; b++) m[b] = row[b] > m[b] ? row[b] : m[b];
  }

  /* float partial sums over 16 positions (which vectorise), added up in
   * double; each lane of row_sum_exp's vector also sums about 16 terms */
  for (int64_t start = 0; start < n; start += 16) {
    int64_t stop = n - start < 16 ? n : start + 16;
    for (int64_t b = 0; b < block; b++) part[b] = 0.0f;
    for (int64_t i = start; i < stop; i++) {
      const float *row = x + i * xs;
      #pragma omp simd
      for (int64_t b = 0; b < block; b++) part[b] += exp_nonpositive(row[b] - m[b]);
    }
    for (int64_t b = 0; b < block; b++) sum[b] += part[b];
  }
  for (int64_t b = 0; b < block; b++)
    scale[b] = take_log ? (float)-log(sum[b]) : (float)(1.0 / sum[b]);

  /* each position goes through `values`, so the arithmetic vectorises
   * even though the stores to y are strided */
  for (int64_t i = 0; i < n; i++) {
    const float *row = x + i * xs;
    if (take_log) {
      #pragma omp simd
      for (int64_t b = 0; b < block; b++) values[b] = (row[b] - m[b]) + scale[b];
    } else {
      #pragma omp simd
      for (int64_t b = 0; b < block; b++)
        values[b] = exp_nonpositive(row[b] - m[b]) * scale[b];
    }
    float *out = y + i * ys;
    for (int64_t b = 0; b < block; b++) out[b * yb] = values[b];
  }
}


void nn_softmax(sae_tensor *out, const sae_tensor *x, int dim,
                int take_log) {
  /* x, out: [..., n at dim, ...] */
  int64_t numel = tensor_numel(x);
  if (numel == 0) return;
  const int64_t *strides[2] = { x->stride, out->stride };
  sae_iter it;
  outer_init(&it, x->ndim, x->size, dim, dim + 1, 2, strides);
  int64_t rows = outer_rows(&it), n = x->size[dim];
  int64_t xs = x->stride[dim], ys = out->stride[dim];
  int64_t xb = it.stride[0][it.ndim - 1], yb = it.stride[1][it.ndim - 1];
  int blocked = xs != 1 && xb == 1;
  const float *xp = tensor_f32(x);
  float *yp = tensor_f32(out);

  #pragma omp parallel if (numel >= NN_PARALLEL_MIN)
  {
    outer_cursor c;
    int64_t r, end;
    cursor_start(&it, rows, &c, &r, &end);
    while (r < end) {
      float *y = yp + c.off[1];
      const float *row = xp + c.off[0];
      int64_t block = 1;
      if (blocked) {
        block = cursor_block(&it, &c, end - r < NN_BLOCK ? end - r : NN_BLOCK);
        softmax_block(y, ys, yb, row, xs, n, block, take_log);
      } else if (xs == 1 && ys == 1) {
        /* the unit-stride calls get their own vectorised copies */
        if (take_log) log_softmax_row(y, 1, row, 1, n);
        else softmax_row(y, 1, row, 1, n);
      } else {
        if (take_log) log_softmax_row(y, ys, row, xs, n);
        else softmax_row(y, ys, row, xs, n);
      }
      r += block;
      cursor_skip(&it, &c, block);
    }
  }
}


/* --------------------------------------------------------- cross entropy */

void nn_cross_entropy(float *loss, const sae_tensor *logits,
                      const int64_t *target, const float *weight,
                      int64_t ignore_index, double label_smoothing) {
  /* logits: [..., C]; target, loss: one entry per row */
  int last = logits->ndim - 1;
  int64_t numel = tensor_numel(logits);
  const int64_t *strides[1] = { logits->stride };
  sae_iter it;
  outer_init(&it, logits->ndim, logits->size, last, last + 1, 1, strides);
  int64_t rows = outer_rows(&it), classes = logits->size[last];
  int64_t xs = logits->stride[last];
  const float *xp = tensor_f32(logits);

  #pragma omp parallel if (numel >= NN_PARALLEL_MIN)
  {
    outer_cursor c;
    int64_t r, end;
    cursor_start(&it, rows, &c, &r, &end);
    for (; r < end; r++, cursor_next(&it, &c)) {
      if (target[r] == ignore_index) {
        loss[r] = 0.0f;
        continue;
      }
      const float *x = xp + c.off[0];
      float m = row_max(x, xs, classes);
      double lse = log(xs == 1 ? row_sum_exp(x, 1, classes, m)
                               : row_sum_exp(x, xs, classes, m));
      int64_t t = target[r] - 1;
      double nll = lse - (double)(x[t * xs] - m);
      if (weight != NULL) nll *= weight[t];
      if (label_smoothing > 0.0) {
        /* sum over classes of -w_c log p_c = lse * sum(w) - sum(w_c (x_c - m)) */
        double total = 0.0, wsum = 0.0;
        for (int64_t i = 0; i < classes; i++) {
          double wi = weight != NULL ? weight[i] : 1.0;
          total += wi * (x[i * xs] - m);
          wsum += wi;
        }
        double smooth = (lse * wsum - total) / (double)classes;
        nll = (1.0 - label_smoothing) * nll + label_smoothing * smooth;
      }
      loss[r] = (float)nll;
    }
  }
}


/* ------------------------------------------------------------ layer norm */

/* One row of layer norm with the mean and the biased variance taken in
 * double, two passes (the one-pass formula loses digits when the mean is
 * large). */
static inline void layer_norm_row(float *y, const float *x, int64_t xs,
                                  int64_t n, const float *weight,
                                  const float *bias, double eps) {
  double sum = 0.0, sq = 0.0;
  #pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; i++) sum += x[i * xs];
  double mean = sum / (double)n;
  #pragma omp simd reduction(+ : sq)
  for (int64_t i = 0; i < n; i++) {
    double dv = x[i * xs] - mean;
    sq += dv * dv;
  }
  /* x - mean in double: with a mean far from 0 (say 1000 with a spread
   * of 0.1) the float difference would lose several digits */
  double rstd = 1.0 / sqrt(sq / (double)n + eps);
  if (weight != NULL && bias != NULL) {
    #pragma omp simd
    for (int64_t i = 0; i < n; i++)
      y[i] = (float)((x[i * xs] - mean) * rstd) * weight[i] + bias[i];
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    float v = (float)((x[i * xs] - mean) * rstd);
    if (weight != NULL) v *= weight[i];
    if (bias != NULL) v += bias[i];
    y[i] = v;
  }
}


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

  #pragma omp parallel if (numel >= NN_PARALLEL_MIN)
  {
    outer_cursor c;
    int64_t r, end;
    cursor_start(&it, rows, &c, &r, &end);
    for (; r < end; r++, cursor_next(&it, &c)) {
      const float *row = xp + c.off[0];
      float *y = yp + c.off[1];   /* out is contiguous: the block has stride 1 */
      if (xs == 1) layer_norm_row(y, row, 1, n, weight, bias, eps);
      else layer_norm_row(y, row, xs, n, weight, bias, eps);
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

  #pragma omp parallel if (rows * n >= NN_PARALLEL_MIN)
  {
    outer_cursor c;
    int64_t r, end;
    cursor_start(&it, rows, &c, &r, &end);
    for (; r < end; r++, cursor_next(&it, &c)) {
      const float *x = ap + c.off[0], *y = bp + c.off[1];
      double dot = 0.0, xx = 0.0, yy = 0.0;
      for (int64_t i = 0; i < n; i++) {
        double u = x[i * as], v = y[i * bs];
        dot += u * v;
        xx += u * u;
        yy += v * v;
      }
      double nx = fmax(sqrt(xx), eps), ny = fmax(sqrt(yy), eps);
      yp[c.off[2]] = (float)(dot / (nx * ny));
    }
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
    #pragma omp parallel if (numel >= NN_PARALLEL_MIN)
    {
      outer_cursor c;
      int64_t r, end;
      cursor_start(&it, rows, &c, &r, &end);
      for (; r < end; r++, cursor_next(&it, &c)) {
        if (x->dtype == SAE_FLOAT32) {
          const float *src = (const float *)xp + c.off[0];
          float *dst = (float *)yp + c.off[1];
          for (int64_t j = 0; j < n; j++) dst[j] = src[(index[j] - 1) * xs];
        } else {
          const int64_t *src = (const int64_t *)xp + c.off[0];
          int64_t *dst = (int64_t *)yp + c.off[1];
          for (int64_t j = 0; j < n; j++) dst[j] = src[(index[j] - 1) * xs];
        }
      }
    }
    return;
  }

  /* Otherwise each (outer row, j) pair copies one block of the inner dims,
   * e.g. one embedding vector: with memcpy when the block is contiguous in
   * x (out always is), else with tensor_copy. */
  outer_init(&it, dim, x->size, dim, dim, 2, strides);
  int64_t rows = outer_rows(&it);
  if (nn_block_stride(x, dim + 1) == 1) {
    size_t bytes = (size_t)shape_numel(x->ndim - dim - 1, x->size + dim + 1)
                   * esize;
    #pragma omp parallel for schedule(static) if (numel >= NN_PARALLEL_MIN)
    for (int64_t p = 0; p < rows * n; p++) {
      int64_t off[2], r = p / n, j = p % n;
      outer_offsets(&it, r, off);
      memcpy(yp + (off[1] + j * out->stride[dim]) * esize,
             xp + (off[0] + (index[j] - 1) * xs) * esize, bytes);
    }
    return;
  }
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
  /* index, out: [..., m at dim, ...]; x: same ndim, any size at dim.
   * Rows go in blocks of neighbours (see NN_BLOCK), so when dim is not
   * the innermost dim the inner loop still walks memory in order. */
  int64_t numel = tensor_numel(index);
  if (numel == 0) return;
  const int64_t *strides[3] = { x->stride, index->stride, out->stride };
  sae_iter it;
  outer_init(&it, index->ndim, index->size, dim, dim + 1, 3, strides);
  int64_t rows = outer_rows(&it), m = index->size[dim];
  int64_t xs = x->stride[dim], is = index->stride[dim];
  int64_t ys = out->stride[dim];
  int last = it.ndim - 1;
  int64_t xb = it.stride[0][last], ib = it.stride[1][last];
  int64_t yb = it.stride[2][last];
  const int64_t *ip = tensor_i64(index);
  int is_float = x->dtype == SAE_FLOAT32;

  #pragma omp parallel if (numel >= NN_PARALLEL_MIN)
  {
    outer_cursor c;
    int64_t r, end;
    cursor_start(&it, rows, &c, &r, &end);
    while (r < end) {
      int64_t block = cursor_block(&it, &c, end - r);
      const int64_t *idx = ip + c.off[1];
      for (int64_t j = 0; j < m; j++) {
        const int64_t *ij = idx + j * is;
        if (is_float) {
          const float *src = tensor_f32(x) + c.off[0];
          float *dst = tensor_f32(out) + c.off[2] + j * ys;
          for (int64_t b = 0; b < block; b++)
            dst[b * yb] = src[b * xb + (ij[b * ib] - 1) * xs];
        } else {
          const int64_t *src = tensor_i64(x) + c.off[0];
          int64_t *dst = tensor_i64(out) + c.off[2] + j * ys;
          for (int64_t b = 0; b < block; b++)
            dst[b * yb] = src[b * xb + (ij[b * ib] - 1) * xs];
        }
      }
      r += block;
      cursor_skip(&it, &c, block);
    }
  }
}


void nn_scatter_add(sae_tensor *x, int dim, const sae_tensor *index,
                    const sae_tensor *src) {
  /* index: [..., m at dim, ...]; src at least index's size in every dim;
   * x at least index's size outside dim.
   * Two outer positions differ in a coordinate other than dim, so they
   * write to distinct elements of x (which has no stride-0 dims) and rows
   * can run on different threads. Each element receives its adds in index
   * order, so the result does not depend on the thread count. Rows go in
   * blocks of neighbours, as in nn_gather. */
  int64_t numel = tensor_numel(index);
  if (numel == 0) return;
  const int64_t *strides[3] = { x->stride, index->stride, src->stride };
  sae_iter it;
  outer_init(&it, index->ndim, index->size, dim, dim + 1, 3, strides);
  int64_t rows = outer_rows(&it), m = index->size[dim];
  int64_t xs = x->stride[dim], is = index->stride[dim];
  int64_t ss = src->stride[dim];
  int last = it.ndim - 1;
  int64_t xb = it.stride[0][last], ib = it.stride[1][last];
  int64_t sb = it.stride[2][last];
  const int64_t *ip = tensor_i64(index);
  int is_float = x->dtype == SAE_FLOAT32;

  #pragma omp parallel if (numel >= NN_PARALLEL_MIN)
  {
    outer_cursor c;
    int64_t r, end;
    cursor_start(&it, rows, &c, &r, &end);
    while (r < end) {
      int64_t block = cursor_block(&it, &c, end - r);
      const int64_t *idx = ip + c.off[1];
      for (int64_t j = 0; j < m; j++) {
        const int64_t *ij = idx + j * is;
        if (is_float) {
          float *dst = tensor_f32(x) + c.off[0];
          const float *src_j = tensor_f32(src) + c.off[2] + j * ss;
          for (int64_t b = 0; b < block; b++)
            dst[b * xb + (ij[b * ib] - 1) * xs] += src_j[b * sb];
        } else {
          int64_t *dst = tensor_i64(x) + c.off[0];
          const int64_t *src_j = tensor_i64(src) + c.off[2] + j * ss;
          for (int64_t b = 0; b < block; b++)
            dst[b * xb + (ij[b * ib] - 1) * xs] += src_j[b * sb];
        }
      }
      r += block;
      cursor_skip(&it, &c, block);
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
