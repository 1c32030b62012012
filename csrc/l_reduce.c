/*
 * l_reduce.c: Lua bindings of the reductions (sum, mean, max, norm, var,
 * ...) and of cumsum, sort and topk.
 *
 * Without a dim, a reduction covers all elements and gives a 0-d tensor
 * (keepdim then keeps every dim with size 1). Dims and returned indices
 * are 1-based.
 */
#include <math.h>
#include <string.h>

#include "lsae.h"
#include "reduce.h"


/* --------------------------------------------------------------- helpers */

static int opt_bool(lua_State *L, int arg, const char *fname,
                    const char *name, int def) {
  if (lua_isnoneornil(L, arg)) return def;
  if (!lua_isboolean(L, arg))
    return luaL_error(L, "%s: argument #%d (%s) expected a boolean or nil, "
                      "got %s", fname, arg, name, luaL_typename(L, arg));
  return lua_toboolean(L, arg);
}


/* Shape of the result of reducing x over dim (all dims when dim < 0). */
static int reduced_shape(const sae_tensor *x, int dim, int keepdim,
                         int64_t *size) {
  int n = 0;
  if (dim < 0) {
    if (keepdim)
      for (n = 0; n < x->ndim; n++) size[n] = 1;
    return n;
  }
  for (int d = 0; d < x->ndim; d++) {
    if (d != dim) size[n++] = x->size[d];
    else if (keepdim) size[n++] = 1;
  }
  return n;
}


static void check_nonempty(lua_State *L, const sae_tensor *x, int dim,
                           const char *fname) {
  char buf[160];
  if (dim < 0 && tensor_numel(x) == 0)
    luaL_error(L, "%s: argument #1 (input) expected a non-empty tensor, got "
               "shape %s", fname, l_shapestr(x, buf, sizeof buf));
  if (dim >= 0 && x->ndim > 0 && x->size[dim] == 0)
    luaL_error(L, "%s: argument #1 (input) expected a non-empty dim %d, got "
               "shape %s", fname, dim + 1, l_shapestr(x, buf, sizeof buf));
}


/* Reduces the tensor at index 1 and pushes the values (float32) and/or
 * the 1-based indices (int64); returns the number pushed. */
static int push_reduce(lua_State *L, reduce_op op, double param, int dim,
                       int keepdim, int want_values, int want_indices) {
  sae_tensor *x = lua_touserdata(L, 1);
  int64_t size[SAE_MAX_DIMS];
  int ndim = reduced_shape(x, dim, keepdim, size);
  if (dim < 0 && !tensor_is_contiguous(x)) {
    sae_tensor *c = l_newlike(L, x, 0);
    tensor_copy(c, x);
    x = c;
  }
  sae_tensor *values = l_newtensor(L, x->dtype, ndim, size, 0);
  sae_tensor *indices = NULL;
  if (want_indices) indices = l_newtensor(L, SAE_INT64, ndim, size, 0);
  if (x->dtype == SAE_INT64) reduce_i64(op, values, indices, x, dim);
  else reduce(op, param, values, indices, x, dim);
  if (!want_values) return 1;             /* indices are on top */
  return want_indices ? 2 : 1;
}


/* Checks argument 1: a float32 tensor, or also int64 for the reductions
 * that have an int64 kernel (sum, prod, max, min, argmax, argmin). */
static sae_tensor *check_input(lua_State *L, reduce_op op, const char *fname) {
  sae_tensor *x = l_checktensor(L, 1, fname);
  int has_i64 = op == REDUCE_SUM || op == REDUCE_PROD || op == REDUCE_MAX
                || op == REDUCE_MIN;
  if (x->dtype == SAE_INT64 && !has_i64)
    luaL_error(L, "%s: argument #1 (input) expected a float32 tensor, got "
               "int64 (int64 tensors support sum, prod, max, min, argmax and "
               "argmin)", fname);
  return x;
}


/* f(x [, dim [, keepdim]]) */
static int simple_reduce(lua_State *L, reduce_op op, const char *fname) {
  sae_tensor *x = check_input(L, op, fname);
  int dim = l_optdim(L, 2, x->ndim, fname, -1);
  int keepdim = opt_bool(L, 3, fname, "keepdim", 0);
  lua_settop(L, 1);
  return push_reduce(L, op, 0, dim, keepdim, 1, 0);
}


static int l_sum(lua_State *L) { return simple_reduce(L, REDUCE_SUM, "sum"); }
static int l_mean(lua_State *L) {
  return simple_reduce(L, REDUCE_MEAN, "mean");
}


static int l_prod(lua_State *L) {
  return simple_reduce(L, REDUCE_PROD, "prod");
}
static int l_all(lua_State *L) { return simple_reduce(L, REDUCE_ALL, "all"); }
static int l_any(lua_State *L) { return simple_reduce(L, REDUCE_ANY, "any"); }


/* max(x) gives a 0-d tensor, and max(x, dim [, keepdim]) gives values and
 * 1-based int64 indices. As in PyTorch, max(x, other) with a tensor
 * `other` is maximum(x, other). */
static int extreme(lua_State *L, reduce_op op, const char *fname) {
  l_checktensor(L, 1, fname);
  if (l_testtensor(L, 2) != NULL) {
    lua_settop(L, 2);
    luaL_getmetafield(L, 1, "__methods");
    lua_getfield(L, -1, op == REDUCE_MAX ? "maximum" : "minimum");
    lua_insert(L, 1);
    lua_pop(L, 1);
    lua_call(L, 2, 1);
    return 1;
  }
  sae_tensor *x = check_input(L, op, fname);
  int dim = l_optdim(L, 2, x->ndim, fname, -1);
  int keepdim = opt_bool(L, 3, fname, "keepdim", 0);
  lua_settop(L, 1);
  check_nonempty(L, x, dim, fname);
  return push_reduce(L, op, 0, dim, keepdim, 1, dim >= 0);
}


static int l_max(lua_State *L) { return extreme(L, REDUCE_MAX, "max"); }
static int l_min(lua_State *L) { return extreme(L, REDUCE_MIN, "min"); }


/* argmax(x [, dim [, keepdim]]): without dim, the 1-based position in
 * the flattened tensor. */
static int arg_extreme(lua_State *L, reduce_op op, const char *fname) {
  sae_tensor *x = check_input(L, op, fname);
  int dim = l_optdim(L, 2, x->ndim, fname, -1);
  int keepdim = opt_bool(L, 3, fname, "keepdim", 0);
  lua_settop(L, 1);
  check_nonempty(L, x, dim, fname);
  return push_reduce(L, op, 0, dim, keepdim, 0, 1);
}


static int l_argmax(lua_State *L) {
  return arg_extreme(L, REDUCE_MAX, "argmax");
}


static int l_argmin(lua_State *L) {
  return arg_extreme(L, REDUCE_MIN, "argmin");
}


/* norm(x [, p [, dim [, keepdim]]]): p is a number >= 0, math.huge,
 * -math.huge or "fro" (= 2); the default is 2. */
static int l_norm(lua_State *L) {
  sae_tensor *x = l_checkfloat(L, 1, "norm");
  double p = 2;
  if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "fro") == 0)
    p = 2;
  else if (lua_type(L, 2) == LUA_TNUMBER)
    p = lua_tonumber(L, 2);
  else if (!lua_isnoneornil(L, 2))
    return luaL_error(L, "norm: argument #2 (p) expected a number or \"fro\", "
                      "got %s", luaL_typename(L, 2));
  if (p != p || (p < 0 && !isinf(p)))
    return luaL_error(L, "norm: argument #2 (p) expected a number >= 0 or "
                      "math.huge, got %f", p);
  int dim = l_optdim(L, 3, x->ndim, "norm", -1);
  int keepdim = opt_bool(L, 4, "norm", "keepdim", 0);
  lua_settop(L, 1);
  if (isinf(p) && p < 0) check_nonempty(L, x, dim, "norm");
  return push_reduce(L, REDUCE_NORM, p, dim, keepdim, 1, 0);
}


/* var(x [, dim [, unbiased [, keepdim]]]): unbiased (default true)
 * divides by n - 1. */
static int variance(lua_State *L, reduce_op op, const char *fname) {
  sae_tensor *x = l_checkfloat(L, 1, fname);
  int dim = l_optdim(L, 2, x->ndim, fname, -1);
  int unbiased = opt_bool(L, 3, fname, "unbiased", 1);
  int keepdim = opt_bool(L, 4, fname, "keepdim", 0);
  lua_settop(L, 1);
  return push_reduce(L, op, unbiased ? 1 : 0, dim, keepdim, 1, 0);
}


static int l_var(lua_State *L) { return variance(L, REDUCE_VAR, "var"); }
static int l_std(lua_State *L) { return variance(L, REDUCE_STD, "std"); }


/* ---------------------------------------------------- cumsum, sort, topk */

static int l_cumsum(lua_State *L) {
  sae_tensor *x = l_checkfloat(L, 1, "cumsum");
  if (lua_isnoneornil(L, 2))
    return luaL_error(L, "cumsum: argument #2 (dim) expected an integer, got "
                      "%s", luaL_typename(L, 2));
  int dim = l_checkdim(L, 2, x->ndim, 0, "cumsum");
  lua_settop(L, 1);
  sae_tensor *out = l_newlike(L, x, 0);
  reduce_cumsum(out, x, x->ndim == 0 ? -1 : dim);
  return 1;
}


/* Pushes values and 1-based indices of the first k of each sorted line. */
static int push_sorted(lua_State *L, const char *fname, int dim,
                       int descending, int64_t k) {
  sae_tensor *x = lua_touserdata(L, 1);
  int64_t size[SAE_MAX_DIMS];
  memcpy(size, x->size, sizeof size);
  if (x->ndim > 0) size[dim] = k;
  sae_tensor *values = l_newtensor(L, SAE_FLOAT32, x->ndim, size, 0);
  sae_tensor *indices = l_newtensor(L, SAE_INT64, x->ndim, size, 0);
  sae_status st = reduce_sort(values, indices, x, x->ndim == 0 ? -1 : dim,
                              descending, k);
  if (st != SAE_OK) return l_status_error(L, fname, st);
  return 2;
}


/* sort(x [, dim [, descending]]): dim defaults to the last. */
static int l_sort(lua_State *L) {
  sae_tensor *x = l_checkfloat(L, 1, "sort");
  int dim = l_optdim(L, 2, x->ndim, "sort", x->ndim > 0 ? x->ndim - 1 : 0);
  int descending = opt_bool(L, 3, "sort", "descending", 0);
  lua_settop(L, 1);
  return push_sorted(L, "sort", dim, descending,
                     x->ndim > 0 ? x->size[dim] : 1);
}


/* topk(x, k [, dim [, largest [, sorted]]]): the k largest (or smallest)
 * along dim (default the last), always in sorted order. */
static int l_topk(lua_State *L) {
  sae_tensor *x = l_checkfloat(L, 1, "topk");
  int isint;
  lua_Integer k = lua_tointegerx(L, 2, &isint);
  int dim = l_optdim(L, 3, x->ndim, "topk", x->ndim > 0 ? x->ndim - 1 : 0);
  int largest = opt_bool(L, 4, "topk", "largest", 1);
  opt_bool(L, 5, "topk", "sorted", 1);
  int64_t n = x->ndim > 0 ? x->size[dim] : 1;
  if (!isint)
    return luaL_error(L, "topk: argument #2 (k) expected an integer, got %s",
                      luaL_typename(L, 2));
  if (k < 0 || k > n) {
    char buf[160];
    return luaL_error(L, "topk: argument #2 (k) expected a k in [0, %I] for "
                      "dim %d of shape %s, got %I", (lua_Integer)n, dim + 1,
                      l_shapestr(x, buf, sizeof buf), k);
  }
  lua_settop(L, 1);
  return push_sorted(L, "topk", dim, largest, (int64_t)k);
}


/* ---------------------------------------------------------- registration */

static const luaL_Reg reduce_functions[] = {
  { "sum", l_sum }, { "mean", l_mean }, { "prod", l_prod }, { "all", l_all },
  { "any", l_any }, { "max", l_max }, { "min", l_min },
  { "argmax", l_argmax }, { "argmin", l_argmin }, { "norm", l_norm },
  { "var", l_var }, { "std", l_std }, { "cumsum", l_cumsum },
  { "sort", l_sort }, { "topk", l_topk },
  { NULL, NULL }
};


void l_open_reduce(lua_State *L) {
  l_register(L, -1, reduce_functions, NULL, reduce_functions);
}
