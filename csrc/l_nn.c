/*
 * l_nn.c: Lua bindings for the network helpers: softmax, log_softmax,
 * cross_entropy, layer_norm, cosine_similarity, index_select, gather,
 * scatter_add(_), one_hot and embedding.
 *
 * Dims and index values are 1-based here and 0-based in the kernels
 * (nn.h). Every index is checked against its range before a kernel runs,
 * so a bad index raises without reading or writing out of bounds.
 */
#include <math.h>
#include <string.h>

#include "lsae.h"
#include "nn.h"


/* --------------------------------------------------------------- helpers */

/* Checks that argument `arg` is an int64 tensor. */
static sae_tensor *l_checkint64(lua_State *L, int arg, const char *fname,
                                const char *name) {
  sae_tensor *t = l_testtensor(L, arg);
  if (t == NULL)
    luaL_error(L, "%s: argument #%d (%s) expected an int64 sae.Tensor, got %s",
               fname, arg, name, luaL_typename(L, arg));
  if (t->storage == NULL)
    luaL_error(L, "%s: argument #%d (%s) is a closed tensor", fname, arg, name);
  if (t->dtype != SAE_INT64)
    luaL_error(L, "%s: argument #%d (%s) expected an int64 tensor, got %s",
               fname, arg, name, sae_dtype_name(t->dtype));
  return t;
}


/* Raises unless t has at least one dim. */
static void l_checknotscalar(lua_State *L, const sae_tensor *t, int arg,
                             const char *fname, const char *name) {
  if (t->ndim == 0)
    luaL_error(L, "%s: argument #%d (%s) expected a tensor with at least one "
               "dim, got a 0-d tensor", fname, arg, name);
}


/* Raises when an int64 tensor contains a value outside [1, n]. Values
 * equal to `skip` pass when has_skip is set. */
static void l_checkindices(lua_State *L, const sae_tensor *index, int64_t n,
                           int has_skip, int64_t skip, int arg,
                           const char *fname, const char *name) {
  int64_t bad;
  if (nn_find_out_of_range(index, 1, n, has_skip, skip, &bad)) {
    if (n == 0)
      luaL_error(L, "%s: argument #%d (%s) expected no index into an empty "
                 "dim, got %I", fname, arg, name, (lua_Integer)bad);
    luaL_error(L, "%s: argument #%d (%s) expected indices in [1, %I], got %I",
               fname, arg, name, (lua_Integer)n, (lua_Integer)bad);
  }
}


/* Pushes a contiguous version of t (t itself when already contiguous) and
 * returns it; the pushed value keeps the copy alive. */
static sae_tensor *l_pushcontiguous(lua_State *L, const sae_tensor *t) {
  if (tensor_is_contiguous(t)) return l_pushview(L, t);
  sae_tensor *c = l_newlike(L, t, 0);
  tensor_copy(c, t);
  return c;
}


/* An unowned 1-D alias of a 0-d tensor, so row kernels see one row of
 * length 1. */
static sae_tensor as_1d(const sae_tensor *t) {
  sae_tensor v = *t;
  if (v.ndim == 0) {
    v.ndim = 1;
    v.size[0] = 1;
    v.stride[0] = 1;
  }
  return v;
}


/* An optional number argument that must be a number when present. */
static double l_optnumber(lua_State *L, int arg, double def, const char *fname,
                          const char *name) {
  if (lua_isnoneornil(L, arg)) return def;
  if (lua_type(L, arg) != LUA_TNUMBER)
    luaL_error(L, "%s: argument #%d (%s) expected a number, got %s", fname,
               arg, name, luaL_typename(L, arg));
  return lua_tonumber(L, arg);
}


/* --------------------------------------------------------------- softmax */

static int softmax_common(lua_State *L, const char *fname, int log) {
  sae_tensor *x = l_checkfloat(L, 1, fname);
  int dim = l_optdim(L, 2, x->ndim, fname, x->ndim > 0 ? x->ndim - 1 : 0);
  sae_tensor *out = l_newlike(L, x, 0);
  sae_tensor xv = as_1d(x), ov = as_1d(out);
  nn_softmax(&ov, &xv, dim, log);
  return 1;
}


/* x:softmax([dim]) and sae.softmax(x [, dim]); dim defaults to -1. */
static int l_softmax(lua_State *L) {
  return softmax_common(L, "softmax", 0);
}


static int l_log_softmax(lua_State *L) {
  return softmax_common(L, "log_softmax", 1);
}


/* --------------------------------------------------------- cross entropy */

typedef enum { REDUCE_NONE, REDUCE_SUM, REDUCE_MEAN } reduction;

typedef struct {
  reduction reduce;
  int64_t ignore_index;
  double label_smoothing;
  int has_weight;     /* opts.weight is set; read again after the checks */
} ce_options;


static void ce_checkoptions(lua_State *L, int arg, ce_options *o) {
  o->reduce = REDUCE_MEAN;
  o->ignore_index = -100;   /* PyTorch's default; never a valid class here */
  o->label_smoothing = 0.0;
  o->has_weight = 0;
  if (lua_isnoneornil(L, arg)) return;
  if (!lua_istable(L, arg))
    luaL_error(L, "cross_entropy: argument #%d (opts) expected a table, got "
               "%s", arg, luaL_typename(L, arg));

  lua_pushnil(L);
  while (lua_next(L, arg) != 0) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                     : NULL;
    if (key != NULL && strcmp(key, "reduction") == 0) {
      const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                     : NULL;
      if (v != NULL && strcmp(v, "none") == 0) o->reduce = REDUCE_NONE;
      else if (v != NULL && strcmp(v, "sum") == 0) o->reduce = REDUCE_SUM;
      else if (v != NULL && strcmp(v, "mean") == 0) o->reduce = REDUCE_MEAN;
      else
        luaL_error(L, "cross_entropy: argument #%d (opts.reduction) expected "
                   "\"none\", \"sum\" or \"mean\", got %s", arg,
                   v != NULL ? v : luaL_typename(L, -1));
    } else if (key != NULL && strcmp(key, "ignore_index") == 0) {
      if (!lua_isinteger(L, -1))
        luaL_error(L, "cross_entropy: argument #%d (opts.ignore_index) "
                   "expected an integer, got %s", arg, luaL_typename(L, -1));
      o->ignore_index = (int64_t)lua_tointeger(L, -1);
    } else if (key != NULL && strcmp(key, "label_smoothing") == 0) {
      double s = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1.0;
      if (!(s >= 0.0 && s <= 1.0))
        luaL_error(L, "cross_entropy: argument #%d (opts.label_smoothing) "
                   "expected a number in [0, 1], got %s", arg,
                   lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1)
                                                  : luaL_typename(L, -1));
      o->label_smoothing = s;
    } else if (key != NULL && strcmp(key, "weight") == 0) {
      sae_tensor *w = l_testtensor(L, -1);
      if (w == NULL || w->storage == NULL || w->dtype != SAE_FLOAT32)
        luaL_error(L, "cross_entropy: argument #%d (opts.weight) expected a "
                   "float32 sae.Tensor, got %s", arg, w == NULL
                   ? luaL_typename(L, -1) : w->storage == NULL
                   ? "a closed tensor" : sae_dtype_name(w->dtype));
      o->has_weight = 1;
    } else {
      luaL_error(L, "cross_entropy: argument #%d (opts) expected the keys "
                 "reduction, ignore_index, label_smoothing and weight, got %s",
                 arg, key != NULL ? key : luaL_typename(L, -2));
    }
    lua_pop(L, 1);
  }
}


/* sae.cross_entropy(logits, targets [, opts]): logits [..., C] with the
 * classes on the last dim, targets int64 [...] holding 1-based classes.
 * For 2-D logits this is torch.nn.functional.cross_entropy. For [N, T, C]
 * it is the same on the flattened [N*T, C], whereas PyTorch would want
 * the classes on dim 2. opts: reduction ("mean" by default, "sum",
 * "none"), ignore_index (-100 by default), label_smoothing (0) and weight
 * (float32 [C] class weights). With weights the mean divides by the summed
 * weights of the targets, as PyTorch does. */
static int l_cross_entropy(lua_State *L) {
  const char *fname = "cross_entropy";
  sae_tensor *logits = l_checkfloat(L, 1, fname);
  l_checknotscalar(L, logits, 1, fname, "logits");
  sae_tensor *targets = l_checkint64(L, 2, fname, "targets");
  ce_options o;
  ce_checkoptions(L, 3, &o);
  lua_settop(L, 3);

  int last = logits->ndim - 1;
  if (!shape_equal(targets->ndim, targets->size, last, logits->size))
    return l_shape_error(L, fname, "argument #2 (targets) expected the shape "
                         "of logits without the last (class) dim", logits,
                         targets);
  int64_t classes = logits->size[last];
  l_checkindices(L, targets, classes, 1, o.ignore_index, 2, fname, "targets");

  const float *weight = NULL;
  if (o.has_weight) {
    lua_getfield(L, 3, "weight");                                   /* 4 */
    sae_tensor *w = l_testtensor(L, 4);
    if (w->ndim != 1 || w->size[0] != classes)
      return l_shape_error(L, fname, "argument #3 (opts.weight) expected one "
                           "weight per class of the logits", logits, w);
    weight = tensor_f32(l_pushcontiguous(L, w));                    /* 5 */
  }
  sae_tensor *target = l_pushcontiguous(L, targets);
  sae_tensor *loss = l_newtensor(L, SAE_FLOAT32, targets->ndim,
                                 targets->size, 0);
  int64_t rows = tensor_numel(target);
  const int64_t *tp = tensor_i64(target);
  if (rows > 0)
    nn_cross_entropy(tensor_f32(loss), logits, tp, weight, o.ignore_index,
                     o.label_smoothing);
  if (o.reduce == REDUCE_NONE) return 1;

  /* Summed in row order in double, so the result does not depend on the
   * thread count. The mean divides by the number of rows not ignored (or
   * by their summed target weights) and is NaN when that is 0, as in
   * PyTorch. */
  const float *lp = tensor_f32(loss);
  double sum = 0.0, divisor = 0.0;
  for (int64_t r = 0; r < rows; r++) {
    sum += lp[r];
    if (tp[r] != o.ignore_index)
      divisor += weight != NULL ? weight[tp[r] - 1] : 1.0;
  }
  sae_tensor *result = l_newtensor(L, SAE_FLOAT32, 0, NULL, 0);
  if (o.reduce == REDUCE_SUM) tensor_f32(result)[0] = (float)sum;
  else tensor_f32(result)[0] = (float)(sum / divisor);
  return 1;
}


/* ------------------------------------------------------------ layer norm */

/* Reads argument 2 of layer_norm: nil (the last dim), a count of trailing
 * dims, or a table giving the normalised shape, which must equal the
 * trailing sizes of x. Returns the count. */
static int l_checknormshape(lua_State *L, const sae_tensor *x,
                            const char *fname) {
  if (lua_isnoneornil(L, 2)) return 1;
  if (lua_istable(L, 2)) {
    int64_t size[SAE_MAX_DIMS];
    int k = l_checkshape(L, 2, 2, fname, 0, size);
    if (k == 0 || k > x->ndim
        || !shape_equal(k, size, k, x->size + x->ndim - k)) {
      char sa[160], sb[160];
      shape_format(k, size, sb, sizeof sb);
      return luaL_error(L, "%s: argument #2 (normalized_shape) expected a "
                        "non-empty shape equal to the trailing sizes of the "
                        "input %s, got %s", fname,
                        l_shapestr(x, sa, sizeof sa), sb);
    }
    return k;
  }
  if (!lua_isinteger(L, 2))
    return luaL_error(L, "%s: argument #2 (normalized_shape) expected a shape "
                      "table or a count of trailing dims, got %s", fname,
                      luaL_typename(L, 2));
  lua_Integer k = lua_tointeger(L, 2);
  if (k < 1 || k > x->ndim)
    return luaL_error(L, "%s: argument #2 (normalized_shape) expected a count "
                      "of trailing dims in [1, %d] (or a shape table such as "
                      "{%I}), got %I", fname, x->ndim,
                      (lua_Integer)x->size[x->ndim - 1], (lua_Integer)k);
  return (int)k;
}


/* Checks the optional weight or bias at `arg` against the normalised shape
 * and returns a pointer to contiguous values (NULL when absent). */
static const float *l_optaffine(lua_State *L, int arg, const sae_tensor *x,
                                int k, const char *fname, const char *name) {
  if (lua_isnoneornil(L, arg)) return NULL;
  sae_tensor *w = l_testtensor(L, arg);
  if (w == NULL || w->storage == NULL || w->dtype != SAE_FLOAT32)
    luaL_error(L, "%s: argument #%d (%s) expected a float32 sae.Tensor or "
               "nil, got %s", fname, arg, name,
               w == NULL ? luaL_typename(L, arg)
               : w->storage == NULL ? "a closed tensor"
               : sae_dtype_name(w->dtype));
  if (!shape_equal(w->ndim, w->size, k, x->size + x->ndim - k)) {
    char sa[160], sb[160];
    shape_format(k, x->size + x->ndim - k, sa, sizeof sa);
    luaL_error(L, "%s: argument #%d (%s) expected the normalized shape %s, "
               "got %s", fname, arg, name, sa, l_shapestr(w, sb, sizeof sb));
  }
  sae_tensor *c = l_pushcontiguous(L, w);
  lua_replace(L, arg);   /* keeps the contiguous copy alive */
  return tensor_f32(c);
}


/* sae.layer_norm(x [, normalized_shape] [, weight] [, bias] [, eps]) as in
 * torch.nn.functional.layer_norm (biased variance, eps 1e-5). */
static int l_layer_norm(lua_State *L) {
  const char *fname = "layer_norm";
  sae_tensor *x = l_checkfloat(L, 1, fname);
  l_checknotscalar(L, x, 1, fname, "input");
  lua_settop(L, 5);
  int k = l_checknormshape(L, x, fname);
  const float *weight = l_optaffine(L, 3, x, k, fname, "weight");
  const float *bias = l_optaffine(L, 4, x, k, fname, "bias");
  double eps = l_optnumber(L, 5, 1e-5, fname, "eps");
  if (!(eps >= 0.0))
    return luaL_error(L, "%s: argument #5 (eps) expected a number >= 0, got "
                      "%f", fname, eps);

  if (nn_block_stride(x, x->ndim - k) < 0) {
    x = l_pushcontiguous(L, x);
    lua_replace(L, 1);
  }
  sae_tensor *out = l_newlike(L, x, 0);
  nn_layer_norm(out, x, k, weight, bias, eps);
  return 1;
}


/* ----------------------------------------------------- cosine similarity */

/* sae.cosine_similarity(a, b [, dim] [, eps]): a and b broadcast; dim
 * (default -1) counts in the broadcast shape; eps defaults to 1e-8. */
static int l_cosine_similarity(lua_State *L) {
  const char *fname = "cosine_similarity";
  sae_tensor *a = l_checkfloat(L, 1, fname);
  sae_tensor *b = l_checkfloat(L, 2, fname);
  int ndim;
  int64_t size[SAE_MAX_DIMS], osize[SAE_MAX_DIMS];
  if (shape_broadcast(a->ndim, a->size, b->ndim, b->size, &ndim, size)
      != SAE_OK)
    return l_shape_error(L, fname, "arguments #1 and #2 expected shapes that "
                         "broadcast", a, b);
  if (ndim == 0)
    return luaL_error(L, "%s: arguments #1 and #2 expected tensors with at "
                      "least one dim, got 0-d tensors", fname);
  int dim = l_optdim(L, 3, ndim, fname, ndim - 1);
  double eps = l_optnumber(L, 4, 1e-8, fname, "eps");

  for (int d = 0, j = 0; d < ndim; d++)
    if (d != dim) osize[j++] = size[d];
  sae_tensor *out = l_newtensor(L, SAE_FLOAT32, ndim - 1, osize, 0);
  if (tensor_numel(out) > 0)
    nn_cosine_similarity(out, a, b, ndim, size, dim, eps);
  return 1;
}


/* ----------------------------------------------------------- index ops */

/* x:index_select(dim, index): index is a 1-D (or 0-d) int64 tensor of
 * 1-based positions along dim. W:index_select(1, tokens) looks up rows
 * of an embedding matrix. */
static int l_index_select(lua_State *L) {
  const char *fname = "index_select";
  sae_tensor *x = l_checktensor(L, 1, fname);
  l_checknotscalar(L, x, 1, fname, "input");
  int dim = l_checkdim(L, 2, x->ndim, 0, fname);
  sae_tensor *index = l_checkint64(L, 3, fname, "index");
  if (index->ndim > 1)
    return l_shape_error(L, fname, "argument #3 (index) expected a 1-D or 0-d "
                         "tensor", index, NULL);
  l_checkindices(L, index, x->size[dim], 0, 0, 3, fname, "index");

  lua_settop(L, 3);
  sae_tensor *idx = l_pushcontiguous(L, index);
  int64_t n = tensor_numel(idx), size[SAE_MAX_DIMS];
  memcpy(size, x->size, sizeof size);
  size[dim] = n;
  sae_tensor *out = l_newtensor(L, x->dtype, x->ndim, size, 0);
  nn_index_select(out, x, dim, tensor_i64(idx), n);
  return 1;
}


/* sae.embedding(tokens, weight): weight[tokens] with tokens of any shape;
 * the result has shape tokens.shape .. weight.shape[2..]. */
static int l_embedding(lua_State *L) {
  const char *fname = "embedding";
  sae_tensor *tokens = l_checkint64(L, 1, fname, "input");
  sae_tensor *w = l_checktensor(L, 2, fname);
  l_checknotscalar(L, w, 2, fname, "weight");
  if (tokens->ndim + w->ndim - 1 > SAE_MAX_DIMS)
    return l_shape_error(L, fname, "expected a result of at most 8 dims",
                         tokens, w);
  l_checkindices(L, tokens, w->size[0], 0, 0, 1, fname, "input");

  lua_settop(L, 2);
  sae_tensor *idx = l_pushcontiguous(L, tokens);
  int64_t n = tensor_numel(idx), size[SAE_MAX_DIMS];
  memcpy(size, w->size, sizeof size);
  size[0] = n;
  sae_tensor *out = l_newtensor(L, w->dtype, w->ndim, size, 0);
  nn_index_select(out, w, 0, tensor_i64(idx), n);

  /* reshape [n, rest...] to [tokens..., rest...]; out is contiguous */
  int ndim = 0;
  for (int d = 0; d < tokens->ndim; d++) size[ndim++] = tokens->size[d];
  for (int d = 1; d < w->ndim; d++) size[ndim++] = w->size[d];
  out->ndim = ndim;
  memcpy(out->size, size, sizeof size);
  shape_contiguous_strides(ndim, out->size, out->stride);
  return 1;
}


/* Raises unless index has x's number of dims and, outside dim, sizes no
 * larger than x's (the PyTorch rule for gather and scatter_add). */
static void l_checkindexshape(lua_State *L, const sae_tensor *x,
                              const sae_tensor *index, int dim,
                              const char *fname) {
  int ok = index->ndim == x->ndim;
  for (int d = 0; ok && d < x->ndim; d++)
    if (d != dim && index->size[d] > x->size[d]) ok = 0;
  if (!ok)
    l_shape_error(L, fname, "argument #3 (index) expected as many dims as the "
                  "input and no larger sizes outside dim", x, index);
}


/* x:gather(dim, index): out[p] = x[p with dim replaced by index[p]]. */
static int l_gather(lua_State *L) {
  const char *fname = "gather";
  sae_tensor *x = l_checktensor(L, 1, fname);
  l_checknotscalar(L, x, 1, fname, "input");
  int dim = l_checkdim(L, 2, x->ndim, 0, fname);
  sae_tensor *index = l_checkint64(L, 3, fname, "index");
  l_checkindexshape(L, x, index, dim, fname);
  l_checkindices(L, index, x->size[dim], 0, 0, 3, fname, "index");

  sae_tensor *out = l_newtensor(L, x->dtype, index->ndim, index->size, 0);
  nn_gather(out, x, dim, index);
  return 1;
}


/* Two views overlap when they share storage and their element ranges
 * intersect (a cheap test that may report overlap for interleaved views,
 * which then only costs a copy). */
static int views_overlap(const sae_tensor *a, const sae_tensor *b) {
  if (a->storage != b->storage) return 0;
  int64_t alo = a->offset, ahi = a->offset, blo = b->offset, bhi = b->offset;
  for (int d = 0; d < a->ndim; d++) ahi += (a->size[d] - 1) * a->stride[d];
  for (int d = 0; d < b->ndim; d++) bhi += (b->size[d] - 1) * b->stride[d];
  return !(ahi < blo || bhi < alo);
}


static int scatter_add_common(lua_State *L, const char *fname, int inplace) {
  sae_tensor *x = l_checktensor(L, 1, fname);
  l_checknotscalar(L, x, 1, fname, "input");
  int dim = l_checkdim(L, 2, x->ndim, 0, fname);
  sae_tensor *index = l_checkint64(L, 3, fname, "index");
  sae_tensor *src = l_checktensor(L, 4, fname);
  if (src->dtype != x->dtype)
    return luaL_error(L, "%s: argument #4 (src) expected the input's dtype "
                      "%s, got %s", fname, sae_dtype_name(x->dtype),
                      sae_dtype_name(src->dtype));
  l_checkindexshape(L, x, index, dim, fname);
  int fits = src->ndim == index->ndim;
  for (int d = 0; fits && d < src->ndim; d++)
    if (index->size[d] > src->size[d]) fits = 0;
  if (!fits)
    return l_shape_error(L, fname, "argument #4 (src) expected as many dims as "
                         "index and no smaller sizes", src, index);
  l_checkindices(L, index, x->size[dim], 0, 0, 3, fname, "index");
  lua_settop(L, 4);

  if (inplace) {
    for (int d = 0; d < x->ndim; d++)
      if (x->stride[d] == 0 && x->size[d] > 1)
        return l_shape_error(L, fname, "expected an input without expanded "
                             "dims (several elements share memory); call "
                             ":contiguous() first", x, NULL);
    if (tensor_numel(index) > 0 && views_overlap(x, src)) {
      sae_tensor *c = l_newlike(L, src, 0);
      tensor_copy(c, src);
      src = c;
    }
    if (tensor_numel(index) > 0 && views_overlap(x, index)) {
      sae_tensor *c = l_newlike(L, index, 0);
      tensor_copy(c, index);
      index = c;
    }
    nn_scatter_add(x, dim, index, src);
    lua_settop(L, 1);
    return 1;
  }
  sae_tensor *out = l_newlike(L, x, 0);
  tensor_copy(out, x);
  nn_scatter_add(out, dim, index, src);
  return 1;
}


/* x:scatter_add(dim, index, src) returns a copy of x with
 * out[p with dim replaced by index[p]] += src[p]; scatter_add_ adds into
 * x itself and returns x. */
static int l_scatter_add(lua_State *L) {
  return scatter_add_common(L, "scatter_add", 0);
}


static int l_scatter_add_(lua_State *L) {
  return scatter_add_common(L, "scatter_add_", 1);
}


/* sae.one_hot(indices [, num_classes]): int64 tensor of shape
 * indices.shape .. {num_classes}; num_classes defaults to the largest
 * index. */
static int l_one_hot(lua_State *L) {
  const char *fname = "one_hot";
  sae_tensor *index = l_checkint64(L, 1, fname, "indices");
  if (index->ndim + 1 > SAE_MAX_DIMS)
    return l_shape_error(L, fname, "argument #1 (indices) expected at most 7 "
                         "dims", index, NULL);
  lua_settop(L, 2);
  sae_tensor *idx = l_pushcontiguous(L, index);                    /* 3 */
  int64_t n = tensor_numel(idx), classes;
  const int64_t *ip = tensor_i64(idx);
  if (lua_isnil(L, 2)) {
    if (n == 0)
      return luaL_error(L, "%s: argument #2 (num_classes) expected a count "
                        "when indices is empty, got nil", fname);
    classes = ip[0];
    for (int64_t i = 1; i < n; i++)
      if (ip[i] > classes) classes = ip[i];
    if (classes < 1) classes = 1;   /* lets the range check name the value */
  } else {
    if (!lua_isinteger(L, 2) || lua_tointeger(L, 2) < 1)
      return luaL_error(L, "%s: argument #2 (num_classes) expected an integer "
                        ">= 1, got %s", fname, lua_type(L, 2) == LUA_TNUMBER
                        ? lua_tostring(L, 2) : luaL_typename(L, 2));
    classes = (int64_t)lua_tointeger(L, 2);
  }
  l_checkindices(L, idx, classes, 0, 0, 1, fname, "indices");

  int64_t size[SAE_MAX_DIMS];
  memcpy(size, index->size, sizeof(int64_t) * (size_t)index->ndim);
  size[index->ndim] = classes;
  sae_tensor *out = l_newtensor(L, SAE_INT64, index->ndim + 1, size, 1);
  nn_one_hot(out, ip, n, classes);
  return 1;
}


/* ---------------------------------------------------------- registration */

static const luaL_Reg nn_methods[] = {
  { "softmax", l_softmax }, { "log_softmax", l_log_softmax },
  { "layer_norm", l_layer_norm }, { "index_select", l_index_select },
  { "gather", l_gather }, { "scatter_add", l_scatter_add },
  { "scatter_add_", l_scatter_add_ },
  { NULL, NULL }
};


static const luaL_Reg nn_functions[] = {
  { "softmax", l_softmax }, { "log_softmax", l_log_softmax },
  { "cross_entropy", l_cross_entropy }, { "layer_norm", l_layer_norm },
  { "cosine_similarity", l_cosine_similarity },
  { "index_select", l_index_select }, { "gather", l_gather },
  { "scatter_add", l_scatter_add }, { "one_hot", l_one_hot },
  { "embedding", l_embedding },
  { NULL, NULL }
};


void l_open_nn(lua_State *L) {
  l_register(L, -1, nn_methods, NULL, nn_functions);
}
