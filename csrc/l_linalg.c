/*
 * l_linalg.c: Lua bindings for matrix products (matmul, mm, bmm, mv,
 * dot, outer), the 2-D transpose t(), and the benchmark entry points
 * (names starting with an underscore, not part of the documented API).
 */
#include <string.h>

#include "linalg.h"
#include "lsae.h"


static int64_t last_size(const sae_tensor *t, int from_end) {
  return t->size[t->ndim - from_end];
}


static int64_t last_stride(const sae_tensor *t, int from_end) {
  return t->stride[t->ndim - from_end];
}


/* Strides of the batch dims of t (all but its last two) broadcast to the
 * batch shape (nbatch, batch_size). */
static void batch_strides(const sae_tensor *t, int nbatch,
                          const int64_t *batch_size, int64_t *strides) {
  sae_tensor batch = *t;
  batch.ndim = t->ndim > 2 ? t->ndim - 2 : 0;
  tensor_broadcast_strides(&batch, nbatch, batch_size, strides);
}


/* Checks the output tensor at `arg` and pushes it. */
static sae_tensor *check_out(lua_State *L, const char *fname, int arg,
                             int ndim, const int64_t *size,
                             const sae_tensor *a, const sae_tensor *b) {
  sae_tensor *out = l_checkfloat(L, arg, fname);
  if (!shape_equal(ndim, size, out->ndim, out->size)
      || !tensor_is_contiguous(out)) {
    char want[160], got[160];
    shape_format(ndim, size, want, sizeof want);
    luaL_error(L, "%s: argument #%d (out) expected a contiguous tensor of "
               "shape %s, got %s shape %s", fname, arg, want,
               tensor_is_contiguous(out) ? "contiguous" : "non-contiguous",
               l_shapestr(out, got, sizeof got));
  }
  if (out->storage == a->storage || out->storage == b->storage)
    luaL_error(L, "%s: argument #%d (out) expected a tensor that shares no "
               "storage with the operands, got one that does", fname, arg);
  lua_pushvalue(L, arg);
  return out;
}


/* Pushes a @ b with torch.matmul's rules: 1-D operands act as a row
 * (left) or a column (right) vector whose dim is removed from the result,
 * and the dims before the last two broadcast as batch dims. With out_arg
 * > 0 the result goes into the tensor at that argument, which must be
 * contiguous, of the result's shape and apart from a and b. */
static int push_matmul(lua_State *L, const char *fname, const sae_tensor *a,
                       const sae_tensor *b, int out_arg, int naive) {
  if (a->ndim == 0 || b->ndim == 0)
    return l_shape_error(L, fname, "arguments #1 and #2 expected tensors with"
                         " at least 1 dim", a, b);
  int64_t k = last_size(a, 1);
  int64_t kb = b->ndim == 1 ? b->size[0] : last_size(b, 2);
  if (k != kb) {
    lua_pushfstring(L, "arguments #1 and #2 expected matching inner dims "
                    "(%I vs %I)", (lua_Integer)k, (lua_Integer)kb);
    return l_shape_error(L, fname, lua_tostring(L, -1), a, b);
  }

  int64_t batch_size[SAE_MAX_DIMS], size[SAE_MAX_DIMS];
  int nbatch;
  if (shape_broadcast(a->ndim > 2 ? a->ndim - 2 : 0, a->size,
                      b->ndim > 2 ? b->ndim - 2 : 0, b->size, &nbatch,
                      batch_size) != SAE_OK)
    return l_shape_error(L, fname, "arguments #1 and #2 expected batch dims "
                         "that broadcast", a, b);

  linalg_matrices ma, mb;
  ma.data = tensor_f32(a);
  ma.rows = a->ndim >= 2 ? last_size(a, 2) : 1;
  ma.cols = k;
  ma.row_stride = a->ndim >= 2 ? last_stride(a, 2) : 0;
  ma.col_stride = last_stride(a, 1);
  batch_strides(a, nbatch, batch_size, ma.batch_stride);
  mb.data = tensor_f32(b);
  mb.rows = k;
  mb.cols = b->ndim >= 2 ? last_size(b, 1) : 1;
  mb.row_stride = b->ndim >= 2 ? last_stride(b, 2) : b->stride[0];
  mb.col_stride = b->ndim >= 2 ? last_stride(b, 1) : 0;
  batch_strides(b, nbatch, batch_size, mb.batch_stride);

  int ndim = nbatch;
  memcpy(size, batch_size, (size_t)nbatch * sizeof *size);
  if (a->ndim >= 2) size[ndim++] = ma.rows;
  if (b->ndim >= 2) size[ndim++] = mb.cols;
  sae_tensor *out = out_arg > 0 ? check_out(L, fname, out_arg, ndim, size,
                                            a, b)
                                : l_newtensor(L, SAE_FLOAT32, ndim, size, 0);
  if (naive) {
    linalg_matmul_naive(tensor_f32(out), nbatch, batch_size, &ma, &mb);
    return 1;
  }
  sae_status st = linalg_matmul(tensor_f32(out), nbatch, batch_size, &ma,
                                &mb);
  if (st != SAE_OK) return l_status_error(L, fname, st);
  return 1;
}


/* a:matmul(b [, out]), sae.matmul(a, b [, out]) */
static int l_matmul(lua_State *L) {
  sae_tensor *a = l_checkfloat(L, 1, "matmul");
  sae_tensor *b = l_checkfloat(L, 2, "matmul");
  return push_matmul(L, "matmul", a, b, lua_isnoneornil(L, 3) ? 0 : 3, 0);
}


/* The same product computed with plain loops, for tests. */
static int l_matmul_naive(lua_State *L) {
  sae_tensor *a = l_checkfloat(L, 1, "_matmul_naive");
  sae_tensor *b = l_checkfloat(L, 2, "_matmul_naive");
  return push_matmul(L, "_matmul_naive", a, b, 0, 1);
}


static void check_ndim(lua_State *L, const char *fname, int arg,
                       const sae_tensor *t, int ndim) {
  if (t->ndim != ndim) {
    char sa[160];
    luaL_error(L, "%s: argument #%d expected a %d-D tensor, got shape %s",
               fname, arg, ndim, l_shapestr(t, sa, sizeof sa));
  }
}


/* Checks that a and b have the given dims, then pushes a @ b. */
static int fixed_rank_product(lua_State *L, const char *fname, int ndim_a,
                              int ndim_b) {
  sae_tensor *a = l_checkfloat(L, 1, fname);
  sae_tensor *b = l_checkfloat(L, 2, fname);
  check_ndim(L, fname, 1, a, ndim_a);
  check_ndim(L, fname, 2, b, ndim_b);
  return push_matmul(L, fname, a, b, 0, 0);
}


/* sae.mm(a, b): 2-D by 2-D. */
static int l_mm(lua_State *L) { return fixed_rank_product(L, "mm", 2, 2); }


/* sae.mv(a, v): 2-D by 1-D. */
static int l_mv(lua_State *L) { return fixed_rank_product(L, "mv", 2, 1); }


/* sae.dot(a, b): 1-D by 1-D, a 0-d result. */
static int l_dot(lua_State *L) { return fixed_rank_product(L, "dot", 1, 1); }


/* sae.bmm(a, b): [B, m, k] by [B, k, n] with equal batch sizes. */
static int l_bmm(lua_State *L) {
  sae_tensor *a = l_checkfloat(L, 1, "bmm");
  sae_tensor *b = l_checkfloat(L, 2, "bmm");
  check_ndim(L, "bmm", 1, a, 3);
  check_ndim(L, "bmm", 2, b, 3);
  if (a->size[0] != b->size[0])
    return l_shape_error(L, "bmm", "arguments #1 and #2 expected equal batch "
                         "sizes", a, b);
  return push_matmul(L, "bmm", a, b, 0, 0);
}


/* sae.outer(a, b): [n] and [m] give the [n, m] matrix a_i * b_j. */
static int l_outer(lua_State *L) {
  sae_tensor *a = l_checkfloat(L, 1, "outer");
  sae_tensor *b = l_checkfloat(L, 2, "outer");
  check_ndim(L, "outer", 1, a, 1);
  check_ndim(L, "outer", 2, b, 1);
  /* a as an [n, 1] column times b as a [1, m] row */
  linalg_matrices ma = { tensor_f32(a), a->size[0], 1, a->stride[0], 0, { 0 } };
  linalg_matrices mb = { tensor_f32(b), 1, b->size[0], 0, b->stride[0], { 0 } };
  int64_t size[2] = { a->size[0], b->size[0] };
  sae_tensor *out = l_newtensor(L, SAE_FLOAT32, 2, size, 0);
  sae_status st = linalg_matmul(tensor_f32(out), 0, NULL, &ma, &mb);
  if (st != SAE_OK) return l_status_error(L, "outer", st);
  return 1;
}


/* x:t(): the transpose of a 2-D tensor (a view); 0-D and 1-D tensors come
 * back as views of themselves, as in PyTorch. */
static int l_t(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "t");
  if (t->ndim > 2)
    return l_shape_error(L, "t", "argument #1 expected a tensor with at most "
                         "2 dims", t, NULL);
  sae_tensor *v = l_pushview(L, t);
  if (t->ndim == 2) {
    v->size[0] = t->size[1];
    v->size[1] = t->size[0];
    v->stride[0] = t->stride[1];
    v->stride[1] = t->stride[0];
  }
  return 1;
}


/* ------------------------------------------------------------ benchmarks */

static int l_bench_clock(lua_State *L) {
  lua_pushnumber(L, linalg_clock());
  return 1;
}


static int check_bench_int(lua_State *L, int arg, lua_Integer max,
                           const char *fname) {
  lua_Integer v = luaL_checkinteger(L, arg);
  if (v < 1 || v > max)
    return luaL_error(L, "%s: argument #%d expected an integer in [1, %I], "
                      "got %I", fname, arg, max, v);
  return (int)v;
}


/* _bench_sgemm(m, n, k, reps [, trans_a, trans_b, batch]): fastest
 * round of `batch` (default 1) cblas_sgemm calls, in seconds. */
static int l_bench_sgemm(lua_State *L) {
  const char *fname = "_bench_sgemm";
  int m = check_bench_int(L, 1, 16384, fname);
  int n = check_bench_int(L, 2, 16384, fname);
  int k = check_bench_int(L, 3, 16384, fname);
  int reps = check_bench_int(L, 4, 1000, fname);
  int batch = lua_isnoneornil(L, 7) ? 1 : check_bench_int(L, 7, 4096, fname);
  double t = linalg_bench_sgemm(m, n, k, batch, reps, lua_toboolean(L, 5),
                                lua_toboolean(L, 6));
  if (t < 0) return luaL_error(L, "_bench_sgemm: out of memory");
  lua_pushnumber(L, t);
  return 1;
}


/* _bench_stream(n, reps, inputs, threads): fastest pass of a plain C
 * loop copying (inputs = 1) or adding (inputs = 2) n floats, in seconds. */
static int l_bench_stream(lua_State *L) {
  const char *fname = "_bench_stream";
  int n = check_bench_int(L, 1, 1 << 28, fname);
  int reps = check_bench_int(L, 2, 10000, fname);
  int inputs = check_bench_int(L, 3, 2, fname);
  double t = linalg_bench_stream(n, reps, inputs, lua_toboolean(L, 4));
  if (t < 0) return luaL_error(L, "_bench_stream: out of memory");
  lua_pushnumber(L, t);
  return 1;
}


/* ---------------------------------------------------------- registration */

static const luaL_Reg linalg_methods[] = {
  { "matmul", l_matmul }, { "mm", l_mm }, { "mv", l_mv }, { "dot", l_dot },
  { "bmm", l_bmm }, { "outer", l_outer }, { "t", l_t },
  { NULL, NULL }
};


static const luaL_Reg linalg_functions[] = {
  { "matmul", l_matmul }, { "mm", l_mm }, { "mv", l_mv }, { "dot", l_dot },
  { "bmm", l_bmm }, { "outer", l_outer }, { "t", l_t },
  { "_matmul_naive", l_matmul_naive }, { "_bench_clock", l_bench_clock },
  { "_bench_sgemm", l_bench_sgemm }, { "_bench_stream", l_bench_stream },
  { NULL, NULL }
};


void l_open_linalg(lua_State *L) {
  l_register(L, -1, linalg_methods, NULL, linalg_functions);
}
