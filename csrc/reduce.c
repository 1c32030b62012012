/*
 * reduce.c: reductions, cumsum and sort (see reduce.h).
 *
 * A reduction over dim d treats x as lines: one line per element of the
 * output, running along d. Lines are split across OpenMP threads when
 * there are several; a single long line (a full reduction) is cut into
 * blocks that the threads share.
 */
#include "reduce.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>


/* Reductions over fewer elements than this stay on one thread. */
#define REDUCE_PARALLEL_MIN 32768
/* A line is cut into blocks of this size (more for lines longer than
 * REDUCE_MAX_BLOCKS blocks). */
#define REDUCE_BLOCK 65536
#define REDUCE_MAX_BLOCKS 1024

/* What one pass over a line computes. */
typedef enum {
  LINE_SUM,       /* sum of x */
  LINE_ABSPOW,    /* sum of |x|^param */
  LINE_SQDEV,     /* sum of (x - param)^2 */
  LINE_PROD,      /* product */
  LINE_NONZERO,   /* count of x != 0 */
  LINE_MAX, LINE_MIN, LINE_ABSMAX, LINE_ABSMIN  /* extreme with position */
} line_kind;

typedef struct {
  double v;
  int64_t i;      /* 0-based position of an extreme in the line */
} line_value;


/* ------------------------------------------------------------ line passes */

/* Elements summed in float32 before their sum goes into the double
 * accumulator of line_sum. */
#define SUM_CHUNK 256


static double line_sum(const float *p, int64_t n, int64_t s) {
  double acc = 0;
  if (s == 1) {
    int64_t i = 0;
    for (; i + SUM_CHUNK <= n; i += SUM_CHUNK) {
      float chunk = 0;
      #pragma omp simd reduction(+:chunk)
      for (int64_t j = 0; j < SUM_CHUNK; j++) chunk += p[i + j];
      acc += chunk;
    }
    for (; i < n; i++) acc += p[i];
  } else {
    for (int64_t i = 0; i < n; i++) acc += p[i * s];
  }
  return acc;
}


static double line_abspow(const float *p, int64_t n, int64_t s, double pw) {
  double acc = 0;
  if (pw == 2 && s == 1) {
    #pragma omp simd reduction(+:acc)
    for (int64_t i = 0; i < n; i++) acc += (double)p[i] * p[i];
  } else if (pw == 1 && s == 1) {
    #pragma omp simd reduction(+:acc)
    for (int64_t i = 0; i < n; i++) acc += fabsf(p[i]);
  } else if (pw == 2) {
    for (int64_t i = 0; i < n; i++) {
      double v = p[i * s];
      acc += v * v;
    }
  } else if (pw == 1) {
    for (int64_t i = 0; i < n; i++) acc += fabs((double)p[i * s]);
  } else {
    for (int64_t i = 0; i < n; i++) acc += pow(fabs((double)p[i * s]), pw);
  }
  return acc;
}


static double line_sqdev(const float *p, int64_t n, int64_t s, double mean) {
  double acc = 0;
  if (s == 1) {
    #pragma omp simd reduction(+:acc)
    for (int64_t i = 0; i < n; i++) {
      double d = p[i] - mean;
      acc += d * d;
    }
  } else {
    for (int64_t i = 0; i < n; i++) {
      double d = p[i * s] - mean;
      acc += d * d;
    }
  }
  return acc;
}


/* line_extreme for a contiguous line in two passes: a vectorized pass
 * for the extreme value (and whether there is a NaN), then a search for
 * its first position. */
static line_value line_extreme_contiguous(const float *p, int64_t n,
                                          int sign) {
  line_value r;
  float best = p[0];
  int nan = 0;
  if (sign > 0) {
    #pragma omp simd reduction(max:best) reduction(|:nan)
    for (int64_t i = 0; i < n; i++) {
      best = p[i] > best ? p[i] : best;
      nan |= p[i] != p[i];
    }
  } else {
    #pragma omp simd reduction(min:best) reduction(|:nan)
    for (int64_t i = 0; i < n; i++) {
      best = p[i] < best ? p[i] : best;
      nan |= p[i] != p[i];
    }
  }
  int64_t at = 0;
  if (nan) {
    while (p[at] == p[at]) at++;
    best = p[at];
  } else {
    while (p[at] != best) at++;
  }
  r.v = best;
  r.i = at;
  return r;
}


/* Position of the first largest (sign 1) or smallest (sign -1) value,
 * of |x| when `absolute`; the first NaN wins over any number. */
static line_value line_extreme(const float *p, int64_t n, int64_t s, int sign,
                               int absolute) {
  line_value r = { 0, 0 };
  if (n == 0) return r;
  if (s == 1 && !absolute) return line_extreme_contiguous(p, n, sign);
  float best = absolute ? fabsf(p[0]) : p[0];
  int64_t at = 0;
  for (int64_t i = 1; i < n && best == best; i++) {
    float v = absolute ? fabsf(p[i * s]) : p[i * s];
    if (v != v || (sign > 0 ? v > best : v < best)) {
      best = v;
      at = i;
    }
  }
  r.v = best;
  r.i = at;
  return r;
}


static line_value line_pass(line_kind kind, const float *p, int64_t n,
                            int64_t s, double param) {
  line_value r = { 0, 0 };
  switch (kind) {
  case LINE_SUM: r.v = line_sum(p, n, s); break;
  case LINE_ABSPOW: r.v = line_abspow(p, n, s, param); break;
  case LINE_SQDEV: r.v = line_sqdev(p, n, s, param); break;
  case LINE_PROD:
    r.v = 1;
    for (int64_t i = 0; i < n; i++) r.v *= p[i * s];
    break;
  case LINE_NONZERO:
    for (int64_t i = 0; i < n; i++) r.v += p[i * s] != 0.0f;
    break;
  case LINE_MAX: return line_extreme(p, n, s, 1, 0);
  case LINE_MIN: return line_extreme(p, n, s, -1, 0);
  case LINE_ABSMAX: return line_extreme(p, n, s, 1, 1);
  case LINE_ABSMIN: return line_extreme(p, n, s, -1, 1);
  }
  return r;
}


/* Folds the result of a later block `b` into `a`. */
static line_value line_combine(line_kind kind, line_value a, line_value b) {
  switch (kind) {
  case LINE_PROD: a.v *= b.v; return a;
  case LINE_MAX: case LINE_ABSMAX:
    if (a.v != a.v || !(b.v != b.v || b.v > a.v)) return a;
    return b;
  case LINE_MIN: case LINE_ABSMIN:
    if (a.v != a.v || !(b.v != b.v || b.v < a.v)) return a;
    return b;
  default: a.v += b.v; return a;
  }
}


static line_value block_pass(line_kind kind, const float *p, int64_t n,
                             int64_t s, double param, int64_t block,
                             int64_t b) {
  int64_t lo = b * block, len = n - lo < block ? n - lo : block;
  line_value r = line_pass(kind, p + lo * s, len, s, param);
  r.i += lo;
  return r;
}


/* Makes one pass over a whole line in fixed blocks, so that the rounding
 * does not depend on the thread count. Blocks go to threads when
 * `parallel`. */
static line_value line_blocked(line_kind kind, const float *p, int64_t n,
                               int64_t s, double param, int parallel) {
  int64_t block = REDUCE_BLOCK;
  if (n > block * REDUCE_MAX_BLOCKS)
    block = (n + REDUCE_MAX_BLOCKS - 1) / REDUCE_MAX_BLOCKS;
  int64_t nblocks = (n + block - 1) / block;
  if (nblocks <= 1) return line_pass(kind, p, n, s, param);
  line_value part[REDUCE_MAX_BLOCKS];
  /* a nested parallel region costs time even when it runs one thread,
   * so the serial case gets its own loop */
  if (parallel) {
    #pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < nblocks; b++)
      part[b] = block_pass(kind, p, n, s, param, block, b);
  } else {
    for (int64_t b = 0; b < nblocks; b++)
      part[b] = block_pass(kind, p, n, s, param, block, b);
  }
  line_value r = part[0];
  for (int64_t b = 1; b < nblocks; b++) r = line_combine(kind, r, part[b]);
  return r;
}


/* The final value of op on one line of n elements. */
static line_value line_reduce(reduce_op op, double param, const float *p,
                              int64_t n, int64_t s, int parallel) {
  line_value r;
  switch (op) {
  case REDUCE_SUM:
    return line_blocked(LINE_SUM, p, n, s, 0, parallel);
  case REDUCE_MEAN:
    r = line_blocked(LINE_SUM, p, n, s, 0, parallel);
    r.v = n > 0 ? r.v / (double)n : NAN;
    return r;
  case REDUCE_PROD:
    return line_blocked(LINE_PROD, p, n, s, 0, parallel);
  case REDUCE_NORM:
    if (isinf(param)) {
      if (n == 0) { r.v = 0; r.i = 0; return r; }
      return line_blocked(param > 0 ? LINE_ABSMAX : LINE_ABSMIN, p, n, s, 0,
                          parallel);
    }
    if (param == 0) return line_blocked(LINE_NONZERO, p, n, s, 0, parallel);
    r = line_blocked(LINE_ABSPOW, p, n, s, param, parallel);
    if (param == 2) r.v = sqrt(r.v);
    else if (param != 1) r.v = pow(r.v, 1 / param);
    return r;
  case REDUCE_VAR:
  case REDUCE_STD: {
    /* two passes (mean, then squared deviations) for accuracy */
    double mean = line_blocked(LINE_SUM, p, n, s, 0, parallel).v / (double)n;
    r = line_blocked(LINE_SQDEV, p, n, s, mean, parallel);
    double dof = (double)n - param;
    r.v = n > 0 && dof > 0 ? r.v / dof : NAN;
    if (op == REDUCE_STD) r.v = sqrt(r.v);
    return r;
  }
  case REDUCE_MAX:
    return line_blocked(LINE_MAX, p, n, s, 0, parallel);
  case REDUCE_MIN:
    return line_blocked(LINE_MIN, p, n, s, 0, parallel);
  case REDUCE_ALL:
    r = line_blocked(LINE_NONZERO, p, n, s, 0, parallel);
    r.v = r.v == (double)n;
    return r;
  case REDUCE_ANY:
    r = line_blocked(LINE_NONZERO, p, n, s, 0, parallel);
    r.v = r.v > 0;
    return r;
  }
  r.v = NAN;
  r.i = 0;
  return r;
}


/* -------------------------------------------------------- line geometry */

/* The dims of a tensor other than the reduced one, in order. */
typedef struct {
  int ndim;
  int64_t size[SAE_MAX_DIMS];
  int64_t stride[SAE_MAX_DIMS];
} outer_dims;


static void outer_init(outer_dims *o, const sae_tensor *t, int dim) {
  o->ndim = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (d == dim) continue;
    o->size[o->ndim] = t->size[d];
    o->stride[o->ndim] = t->stride[d];
    o->ndim++;
  }
}


/* Element offset of line j (lines numbered in row-major order). */
static int64_t outer_offset(const outer_dims *o, int64_t j) {
  int64_t off = 0;
  for (int d = o->ndim - 1; d >= 0; d--) {
    off += (j % o->size[d]) * o->stride[d];
    j /= o->size[d];
  }
  return off;
}


/* Line count, length and stride of x along dim (all of x when dim < 0,
 * which needs a contiguous x). */
static void line_geometry(const sae_tensor *x, int dim, outer_dims *o,
                          int64_t *nlines, int64_t *n, int64_t *s) {
  if (dim < 0 || x->ndim == 0) {
    o->ndim = 0;
    *nlines = 1;
    *n = tensor_numel(x);
    *s = 1;
    return;
  }
  outer_init(o, x, dim);
  *nlines = shape_numel(o->ndim, o->size);
  *n = x->size[dim];
  *s = x->stride[dim];
}


/* ----------------------------------------------------- column reductions */

/* Lines reduced together in the column layout. */
#define COLUMN_GROUP 64


/* Whether the lines are strided while neighbouring lines (along the last
 * outer dim) are adjacent in memory, as when summing a row-major matrix
 * over its rows. Reading one line at a time would then touch a cache line
 * per element, so reduce_columns reduces up to COLUMN_GROUP lines at once,
 * reading rows of x contiguously. */
static int column_layout(const outer_dims *o, int64_t n, int64_t s) {
  return o->ndim > 0 && o->stride[o->ndim - 1] == 1
         && o->size[o->ndim - 1] > 1 && s != 1 && n > 1;
}


/* REDUCE_SUM, REDUCE_MEAN, REDUCE_MAX and REDUCE_MIN in the column
 * layout, with the same results as line by line. */
static void reduce_columns(reduce_op op, float *po, int64_t *pi,
                           const float *px, const outer_dims *o,
                           int64_t nlines, int64_t n, int64_t s,
                           int parallel) {
  int64_t width = o->size[o->ndim - 1];
  int64_t per_row = (width + COLUMN_GROUP - 1) / COLUMN_GROUP;
  int64_t tasks = nlines / width * per_row;
  float sign = op == REDUCE_MIN ? -1.0f : 1.0f;
  #pragma omp parallel for schedule(static) if (parallel)
  for (int64_t t = 0; t < tasks; t++) {
    int64_t first = t % per_row * COLUMN_GROUP;
    int64_t j0 = t / per_row * width + first;
    int64_t len = width - first < COLUMN_GROUP ? width - first : COLUMN_GROUP;
    const float *q = px + outer_offset(o, j0);
    if (op == REDUCE_SUM || op == REDUCE_MEAN) {
      double acc[COLUMN_GROUP] = { 0 };
      for (int64_t k = 0; k < n; k++) {
        const float *row = q + k * s;
        #pragma omp simd
        for (int64_t g = 0; g < len; g++) acc[g] += row[g];
      }
      for (int64_t g = 0; g < len; g++)
        po[j0 + g] = (float)(op == REDUCE_MEAN ? acc[g] / (double)n : acc[g]);
    } else {
      /* compare sign * x so that one loop serves max and min */
      float best[COLUMN_GROUP];
      int64_t at[COLUMN_GROUP];
      for (int64_t g = 0; g < len; g++) {
        best[g] = sign * q[g];
        at[g] = 0;
      }
      for (int64_t k = 1; k < n; k++) {
        const float *row = q + k * s;
        #pragma omp simd
        for (int64_t g = 0; g < len; g++) {
          float v = sign * row[g];
          int take = best[g] == best[g] && (v != v || v > best[g]);
          best[g] = take ? v : best[g];
          at[g] = take ? k : at[g];
        }
      }
      for (int64_t g = 0; g < len; g++) {
        po[j0 + g] = sign * best[g];
        if (pi != NULL) pi[j0 + g] = at[g] + 1;
      }
    }
  }
}


/* -------------------------------------------------------------- reduce */

void reduce(reduce_op op, double param, sae_tensor *out, sae_tensor *indices,
            const sae_tensor *x, int dim) {
  outer_dims o;
  int64_t nlines, n, s;
  line_geometry(x, dim, &o, &nlines, &n, &s);
  const float *px = tensor_f32(x);
  float *po = tensor_f32(out);
  int64_t *pi = indices != NULL ? tensor_i64(indices) : NULL;
  int big = nlines * n >= REDUCE_PARALLEL_MIN && !omp_in_parallel();

  if (nlines == 1) {
    line_value r = line_reduce(op, param, px, n, s, big);
    po[0] = (float)r.v;
    if (pi != NULL) pi[0] = r.i + 1;
    return;
  }
  if (column_layout(&o, n, s) && (op == REDUCE_SUM || op == REDUCE_MEAN
                                   || op == REDUCE_MAX || op == REDUCE_MIN)) {
    reduce_columns(op, po, pi, px, &o, nlines, n, s, big);
    return;
  }
  #pragma omp parallel for schedule(static) if (big)
  for (int64_t j = 0; j < nlines; j++) {
    line_value r = line_reduce(op, param, px + outer_offset(&o, j), n, s, 0);
    po[j] = (float)r.v;
    if (pi != NULL) pi[j] = r.i + 1;
  }
}


void reduce_i64(reduce_op op, sae_tensor *out, sae_tensor *indices,
                const sae_tensor *x, int dim) {
  outer_dims o;
  int64_t nlines, n, s;
  line_geometry(x, dim, &o, &nlines, &n, &s);
  const int64_t *px = tensor_i64(x);
  int64_t *po = tensor_i64(out);
  int64_t *pi = indices != NULL ? tensor_i64(indices) : NULL;
  int big = nlines * n >= REDUCE_PARALLEL_MIN && nlines > 1
            && !omp_in_parallel();
  #pragma omp parallel for schedule(static) if (big)
  for (int64_t j = 0; j < nlines; j++) {
    const int64_t *p = px + outer_offset(&o, j);
    int64_t at = 0;
    /* sums and products wrap around through uint64_t, as int64 ops do */
    uint64_t acc = op == REDUCE_PROD ? 1 : 0;
    if (op == REDUCE_SUM) {
      for (int64_t i = 0; i < n; i++) acc += (uint64_t)p[i * s];
    } else if (op == REDUCE_PROD) {
      for (int64_t i = 0; i < n; i++) acc *= (uint64_t)p[i * s];
    } else {
      int64_t best = n > 0 ? p[0] : 0;
      for (int64_t i = 1; i < n; i++) {
        int64_t v = p[i * s];
        if (op == REDUCE_MAX ? v > best : v < best) {
          best = v;
          at = i;
        }
      }
      acc = (uint64_t)best;
    }
    po[j] = (int64_t)acc;
    if (pi != NULL) pi[j] = at + 1;
  }
}


void reduce_cumsum(sae_tensor *out, const sae_tensor *x, int dim) {
  outer_dims ox, oo;
  int64_t nlines, n, s;
  line_geometry(x, dim, &ox, &nlines, &n, &s);
  outer_init(&oo, out, dim);
  int64_t so = out->ndim > 0 ? out->stride[dim] : 1;
  const float *px = tensor_f32(x);
  float *po = tensor_f32(out);
  int big = nlines * n >= REDUCE_PARALLEL_MIN && nlines > 1
            && !omp_in_parallel();
  #pragma omp parallel for schedule(static) if (big)
  for (int64_t j = 0; j < nlines; j++) {
    const float *p = px + outer_offset(&ox, j);
    float *q = po + outer_offset(&oo, j);
    double acc = 0;
    for (int64_t i = 0; i < n; i++) {
      acc += p[i * s];
      q[i * so] = (float)acc;
    }
  }
}


/* ------------------------------------------------------------------ sort */

typedef struct {
  float v;
  int64_t i;
} sort_item;


/* NaN is larger than any number; equal values keep their order. */
static int cmp_ascending(const void *pa, const void *pb) {
  const sort_item *a = pa, *b = pb;
  int an = a->v != a->v, bn = b->v != b->v;
  if (an != bn) return an - bn;
  if (!an && a->v != b->v) return a->v < b->v ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}


static int cmp_descending(const void *pa, const void *pb) {
  const sort_item *a = pa, *b = pb;
  int an = a->v != a->v, bn = b->v != b->v;
  if (an != bn) return bn - an;
  if (!an && a->v != b->v) return a->v > b->v ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}


sae_status reduce_sort(sae_tensor *values, sae_tensor *indices,
                       const sae_tensor *x, int dim, int descending,
                       int64_t k) {
  outer_dims ox, ov, oi;
  int64_t nlines, n, s;
  line_geometry(x, dim, &ox, &nlines, &n, &s);
  outer_init(&ov, values, dim);
  outer_init(&oi, indices, dim);
  int64_t sv = values->ndim > 0 ? values->stride[dim] : 1;
  int64_t si = indices->ndim > 0 ? indices->stride[dim] : 1;
  const float *px = tensor_f32(x);
  float *pv = tensor_f32(values);
  int64_t *pi = tensor_i64(indices);
  int big = nlines * n >= REDUCE_PARALLEL_MIN && nlines > 1
            && !omp_in_parallel();
  int failed = 0;
  if (nlines == 0 || n == 0) return SAE_OK;

  #pragma omp parallel if (big) reduction(|:failed)
  {
    sort_item *buf = malloc((size_t)n * sizeof *buf);
    if (buf == NULL) failed = 1;
    #pragma omp for schedule(static)
    for (int64_t j = 0; j < nlines; j++) {
      if (buf == NULL) continue;
      const float *p = px + outer_offset(&ox, j);
      for (int64_t i = 0; i < n; i++) {
        buf[i].v = p[i * s];
        buf[i].i = i;
      }
      qsort(buf, (size_t)n, sizeof *buf,
            descending ? cmp_descending : cmp_ascending);
      float *qv = pv + outer_offset(&ov, j);
      int64_t *qi = pi + outer_offset(&oi, j);
      for (int64_t i = 0; i < k; i++) {
        qv[i * sv] = buf[i].v;
        qi[i * si] = buf[i].i + 1;
      }
    }
    free(buf);
  }
  return failed ? SAE_ENOMEM : SAE_OK;
}
