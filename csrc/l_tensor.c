/*
 * l_tensor.c: the sae.Tensor userdata: creation from Lua values, views,
 * indexing and the binding helpers declared in lsae.h.
 *
 * A tensor userdata stores an sae_tensor by value. It is created with
 * storage NULL and its metatable set before any memory is taken, so
 * __gc is always safe to run.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lsae.h"


/* --------------------------------------------------------------- helpers */

sae_tensor *l_testtensor(lua_State *L, int arg) {
  return luaL_testudata(L, arg, SAE_TENSOR_MT);
}


sae_tensor *l_checktensor(lua_State *L, int arg, const char *fname) {
  sae_tensor *t = l_testtensor(L, arg);
  if (t == NULL)
    luaL_error(L, "%s: argument #%d expected sae.Tensor, got %s", fname, arg,
               luaL_typename(L, arg));
  if (t->storage == NULL)
    luaL_error(L, "%s: argument #%d is a closed tensor", fname, arg);
  return t;
}


sae_tensor *l_checkfloat(lua_State *L, int arg, const char *fname) {
  sae_tensor *t = l_checktensor(L, arg, fname);
  if (t->dtype != SAE_FLOAT32)
    luaL_error(L, "%s: argument #%d expected a float32 tensor, got %s", fname,
               arg, sae_dtype_name(t->dtype));
  return t;
}


sae_tensor *l_pushtensor(lua_State *L) {
  sae_tensor *t = lua_newuserdatauv(L, sizeof *t, 0);
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, SAE_TENSOR_MT);
  return t;
}


int l_status_error(lua_State *L, const char *fname, sae_status status) {
  switch (status) {
  case SAE_ENOMEM: return luaL_error(L, "%s: out of memory", fname);
  case SAE_ESHAPE: return luaL_error(L, "%s: shapes do not match", fname);
  case SAE_ERANGE: return luaL_error(L, "%s: size out of range", fname);
  case SAE_EIO: return luaL_error(L, "%s: input/output error", fname);
  case SAE_EFORMAT: return luaL_error(L, "%s: malformed file", fname);
  default: return luaL_error(L, "%s: failed", fname);
  }
}


sae_tensor *l_newtensor(lua_State *L, sae_dtype dtype, int ndim,
                        const int64_t *size, int zero) {
  sae_tensor *t = l_pushtensor(L);
  sae_status st = tensor_alloc(t, dtype, ndim, size, zero);
  if (st != SAE_OK) {
    char buf[160];
    shape_format(ndim, size, buf, sizeof buf);
    if (st == SAE_ENOMEM)
      luaL_error(L, "out of memory allocating a %s tensor of shape %s",
                 sae_dtype_name(dtype), buf);
    luaL_error(L, "invalid tensor shape %s (too many elements)", buf);
  }
  l_account(L, t->storage->nbytes);
  return t;
}


void l_account(lua_State *L, size_t nbytes) {
  /* The collector counts only the small userdata, so without these hints a
   * loop of `z = x + y` on large tensors piles up gigabytes of garbage.
   * The step hint paces ordinary calls. Lua 5.4.4 makes no progress on such
   * steps when they come from inside a metamethod such as __add, so a full
   * collection also runs after every 256 MiB of tensor memory. */
  static size_t since_collect = 0;
  if (nbytes < (size_t)1 << 16) return;
  since_collect += nbytes;
  if (since_collect >= (size_t)256 << 20) {
    since_collect = 0;
    lua_gc(L, LUA_GCCOLLECT);
    return;
  }
  lua_gc(L, LUA_GCSTEP, (int)(nbytes >> 10 < INT32_MAX ? nbytes >> 10
                                                       : INT32_MAX));
}


sae_tensor *l_newlike(lua_State *L, const sae_tensor *like, int zero) {
  return l_newtensor(L, like->dtype, like->ndim, like->size, zero);
}


sae_tensor *l_pushview(lua_State *L, const sae_tensor *src) {
  sae_tensor *t = l_pushtensor(L);
  tensor_view(t, src);
  return t;
}


const char *l_shapestr(const sae_tensor *t, char *buf, size_t buflen) {
  shape_format(t->ndim, t->size, buf, buflen);
  return buf;
}


int l_shape_error(lua_State *L, const char *fname, const char *what,
                  const sae_tensor *a, const sae_tensor *b) {
  char sa[160], sb[160];
  l_shapestr(a, sa, sizeof sa);
  if (b == NULL) return luaL_error(L, "%s: %s, got shape %s", fname, what, sa);
  l_shapestr(b, sb, sizeof sb);
  return luaL_error(L, "%s: %s, got shapes %s and %s", fname, what, sa, sb);
}


static int64_t l_checksize(lua_State *L, int idx, const char *fname,
                           int position, int allow_infer) {
  int isint;
  lua_Integer v = lua_tointegerx(L, idx, &isint);
  if (!isint) {
    if (lua_type(L, idx) == LUA_TNUMBER)
      return luaL_error(L, "%s: size #%d expected an integer, got %s", fname,
                        position, lua_tostring(L, idx));
    return luaL_error(L, "%s: size #%d expected an integer, got %s", fname,
                      position, luaL_typename(L, idx));
  }
  if (v < 0 && !(allow_infer && v == -1))
    return luaL_error(L, "%s: size #%d expected a size >= 0, got %I", fname,
                      position, (lua_Integer)v);
  return (int64_t)v;
}


int l_checkshape(lua_State *L, int arg, int last, const char *fname,
                 int allow_infer, int64_t *size) {
  int ndim = 0, inferred = 0;
  if (last < 0) last = lua_gettop(L);
  if (lua_istable(L, arg)) {
    lua_Integer n = luaL_len(L, arg);
    if (n > SAE_MAX_DIMS)
      luaL_error(L, "%s: shape expected at most %d dims, got %I", fname,
                 SAE_MAX_DIMS, (lua_Integer)n);
    for (int i = 1; i <= n; i++) {
      lua_geti(L, arg, i);
      size[ndim++] = l_checksize(L, -1, fname, i, allow_infer);
      lua_pop(L, 1);
    }
  } else {
    if (last - arg + 1 > SAE_MAX_DIMS)
      luaL_error(L, "%s: shape expected at most %d dims, got %d", fname,
                 SAE_MAX_DIMS, last - arg + 1);
    for (int i = arg; i <= last; i++)
      size[ndim++] = l_checksize(L, i, fname, i - arg + 1, allow_infer);
  }
  for (int d = 0; d < ndim; d++)
    if (size[d] == -1 && inferred++)
      luaL_error(L, "%s: shape expected at most one -1, got two", fname);
  return ndim;
}


int l_checkdim(lua_State *L, int arg, int ndim, int extra, const char *fname) {
  int isint;
  lua_Integer d = lua_tointegerx(L, arg, &isint);
  int n = ndim + extra;
  if (!isint)
    return luaL_error(L, "%s: argument #%d (dim) expected an integer, got %s",
                      fname, arg, luaL_typename(L, arg));
  if (n == 0) n = 1;   /* a 0-d tensor accepts dim 1 or -1 for reductions */
  if (d < -n || d == 0 || d > n)
    return luaL_error(L, "%s: argument #%d (dim) expected a dim in [%d, %d] "
                      "(or -%d .. -1), got %I", fname, arg, 1, n, n,
                      (lua_Integer)d);
  return (int)(d < 0 ? d + n : d - 1);
}


int l_optdim(lua_State *L, int arg, int ndim, const char *fname, int def) {
  if (lua_isnoneornil(L, arg)) return def;
  return l_checkdim(L, arg, ndim, 0, fname);
}


void l_register(lua_State *L, int module, const luaL_Reg *methods,
                const luaL_Reg *metamethods, const luaL_Reg *functions) {
  module = lua_absindex(L, module);
  luaL_getmetatable(L, SAE_TENSOR_MT);
  if (metamethods != NULL) luaL_setfuncs(L, metamethods, 0);
  if (methods != NULL) {
    lua_getfield(L, -1, "__methods");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (functions != NULL) {
    lua_pushvalue(L, module);
    luaL_setfuncs(L, functions, 0);
    lua_pop(L, 1);
  }
}


/* Index i (1-based; negative counts from the end) into a dim of size n;
 * returns the 0-based index or raises. */
static int64_t l_checkindex(lua_State *L, int arg, int64_t n, const char *fname,
                            const char *what) {
  int isint;
  lua_Integer i = lua_tointegerx(L, arg, &isint);
  if (!isint)
    return luaL_error(L, "%s: argument #%d (%s) expected an integer, got %s",
                      fname, arg, what, luaL_typename(L, arg));
  if (i == 0 || i > n || i < -n)
    return luaL_error(L, "%s: argument #%d (%s) expected an index in [1, %I] "
                      "(or negative from the end), got %I", fname, arg, what,
                      (lua_Integer)n, (lua_Integer)i);
  return i < 0 ? i + n : i - 1;
}


static void check_not_0d(lua_State *L, const sae_tensor *t, const char *fname) {
  if (t->ndim == 0)
    luaL_error(L, "%s: argument #1 expected a tensor with at least one dim, "
               "got a 0-d tensor", fname);
}


/* -------------------------------------------------------------- creation */

/* Walks a nested table once to find its shape, checking every level. */
static void table_shape(lua_State *L, int idx, int depth, int *ndim,
                        int64_t *size, const char *fname) {
  lua_Integer n = luaL_len(L, idx);
  if (depth >= SAE_MAX_DIMS)
    luaL_error(L, "%s: nested table expected at most %d levels", fname,
               SAE_MAX_DIMS);
  if (depth == *ndim) {             /* first visit of this depth */
    size[depth] = n;
    (*ndim)++;
    if (n > 0) {
      lua_geti(L, idx, 1);
      if (lua_istable(L, -1)) table_shape(L, lua_gettop(L), depth + 1, ndim,
                                          size, fname);
      lua_pop(L, 1);
    }
  }
}


static void table_fill(lua_State *L, int idx, int depth, int ndim,
                       const int64_t *size, sae_tensor *t, int64_t *pos,
                       const char *fname) {
  lua_Integer n = luaL_len(L, idx);
  if (n != size[depth])
    luaL_error(L, "%s: ragged nested table: expected %I elements at depth %d,"
               " got %I", fname, (lua_Integer)size[depth], depth + 1,
               (lua_Integer)n);
  for (lua_Integer i = 1; i <= n; i++) {
    int type = lua_geti(L, idx, i);
    if (depth + 1 < ndim) {
      if (type != LUA_TTABLE)
        luaL_error(L, "%s: ragged nested table: expected a table at depth %d, "
                   "got %s", fname, depth + 2, lua_typename(L, type));
      table_fill(L, lua_gettop(L), depth + 1, ndim, size, t, pos, fname);
    } else if (type == LUA_TNUMBER || type == LUA_TBOOLEAN) {
      if (t->dtype == SAE_FLOAT32) {
        float v = type == LUA_TBOOLEAN ? (float)lua_toboolean(L, -1)
                                       : (float)lua_tonumber(L, -1);
        tensor_f32(t)[(*pos)++] = v;
      } else {
        int isint;
        lua_Integer v = lua_tointegerx(L, -1, &isint);
        if (type == LUA_TBOOLEAN) v = lua_toboolean(L, -1);
        else if (!isint)
          luaL_error(L, "%s: int64 tensor expected integer values, got %s",
                     fname, lua_tostring(L, -1));
        tensor_i64(t)[(*pos)++] = (int64_t)v;
      }
    } else {
      luaL_error(L, "%s: nested table expected numbers%s, got %s", fname,
                 type == LUA_TTABLE ? " at this depth (ragged table)" : "",
                 lua_typename(L, type));
    }
    lua_pop(L, 1);
  }
}


static sae_dtype l_optdtype(lua_State *L, int arg, const char *fname) {
  static const char *const names[] = { "float32", "int64", "float", "long",
                                       NULL };
  if (lua_isnoneornil(L, arg)) return SAE_FLOAT32;
  const char *s = lua_tostring(L, arg);
  for (int i = 0; names[i] != NULL; i++)
    if (s != NULL && lua_type(L, arg) == LUA_TSTRING && strcmp(s, names[i]) == 0)
      return (i % 2) ? SAE_INT64 : SAE_FLOAT32;
  return luaL_error(L, "%s: argument #%d (dtype) expected \"float32\" or "
                    "\"int64\", got %s", fname, arg,
                    s ? s : luaL_typename(L, arg));
}


/* sae.tensor(values [, dtype]): values is a number, a nested table of
 * numbers, or a tensor (copied). */
static int l_tensor(lua_State *L) {
  sae_dtype dtype = l_optdtype(L, 2, "tensor");
  sae_tensor *src = l_testtensor(L, 1);
  int64_t size[SAE_MAX_DIMS];
  int ndim = 0;
  if (src != NULL) {
    sae_dtype dt = lua_isnoneornil(L, 2) ? src->dtype : dtype;
    sae_tensor *t = l_newtensor(L, dt, src->ndim, src->size, 0);
    tensor_copy(t, src);
    return 1;
  }
  if (lua_type(L, 1) == LUA_TNUMBER || lua_type(L, 1) == LUA_TBOOLEAN) {
    sae_tensor *t = l_newtensor(L, dtype, 0, size, 0);
    if (dtype == SAE_FLOAT32) {
      tensor_f32(t)[0] = lua_isboolean(L, 1) ? (float)lua_toboolean(L, 1)
                                             : (float)lua_tonumber(L, 1);
    } else {
      if (lua_isboolean(L, 1)) tensor_i64(t)[0] = lua_toboolean(L, 1);
      else tensor_i64(t)[0] = luaL_checkinteger(L, 1);
    }
    return 1;
  }
  if (!lua_istable(L, 1))
    return luaL_error(L, "tensor: argument #1 expected a number, a nested table"
                      " or a sae.Tensor, got %s", luaL_typename(L, 1));
  table_shape(L, 1, 0, &ndim, size, "tensor");
  sae_tensor *t = l_newtensor(L, dtype, ndim, size, 0);
  int64_t pos = 0;
  table_fill(L, 1, 0, ndim, size, t, &pos, "tensor");
  return 1;
}


/* Shape arguments followed by an optional dtype string. */
static int l_shape_and_dtype(lua_State *L, const char *fname, int64_t *size,
                             sae_dtype *dtype, int first) {
  int last = lua_gettop(L);
  *dtype = SAE_FLOAT32;
  if (last >= first && lua_type(L, last) == LUA_TSTRING) {
    *dtype = l_optdtype(L, last, fname);
    last--;
  }
  if (last < first) return 0;
  return l_checkshape(L, first, lua_istable(L, first) ? first : last, fname, 0,
                      size);
}


static int l_zeros(lua_State *L) {
  int64_t size[SAE_MAX_DIMS];
  sae_dtype dtype;
  int ndim = l_shape_and_dtype(L, "zeros", size, &dtype, 1);
  l_newtensor(L, dtype, ndim, size, 1);
  return 1;
}


static void tensor_fill(sae_tensor *t, double v) {
  int64_t n = tensor_numel(t);
  if (t->dtype == SAE_FLOAT32) {
    float *p = tensor_f32(t), f = (float)v;
    for (int64_t i = 0; i < n; i++) p[i] = f;
  } else {
    int64_t *p = tensor_i64(t), iv = (int64_t)v;
    for (int64_t i = 0; i < n; i++) p[i] = iv;
  }
}


static int l_ones(lua_State *L) {
  int64_t size[SAE_MAX_DIMS];
  sae_dtype dtype;
  int ndim = l_shape_and_dtype(L, "ones", size, &dtype, 1);
  tensor_fill(l_newtensor(L, dtype, ndim, size, 0), 1.0);
  return 1;
}


static int l_empty(lua_State *L) {
  int64_t size[SAE_MAX_DIMS];
  sae_dtype dtype;
  int ndim = l_shape_and_dtype(L, "empty", size, &dtype, 1);
  l_newtensor(L, dtype, ndim, size, 0);
  return 1;
}


/* sae.full(shape, value [, dtype]) with shape a table, or
 * sae.full(d1, ..., dn, value). */
static int l_full(lua_State *L) {
  int64_t size[SAE_MAX_DIMS];
  int top = lua_gettop(L);
  sae_dtype dtype = SAE_FLOAT32;
  if (top >= 1 && lua_type(L, top) == LUA_TSTRING) {
    dtype = l_optdtype(L, top, "full");
    top--;
  }
  if (top < 1 || lua_type(L, top) != LUA_TNUMBER)
    return luaL_error(L, "full: expected a shape and a fill value, got %s "
                      "as the last argument", top < 1 ? "nothing"
                      : luaL_typename(L, top));
  double v = lua_tonumber(L, top);
  if (dtype == SAE_INT64 && !lua_isinteger(L, top) && v != floor(v))
    return luaL_error(L, "full: int64 tensor expected an integer fill value, "
                      "got %f", v);
  int ndim = top == 1 ? 0 : l_checkshape(L, 1, lua_istable(L, 1) ? 1 : top - 1,
                                         "full", 0, size);
  sae_tensor *t = l_newtensor(L, dtype, ndim, size, 0);
  if (dtype == SAE_INT64 && lua_isinteger(L, top)) {
    int64_t *p = tensor_i64(t), iv = lua_tointeger(L, top);
    for (int64_t i = 0, n = tensor_numel(t); i < n; i++) p[i] = iv;
  } else {
    tensor_fill(t, v);
  }
  return 1;
}


/* ------------------------------------------------------------- inspection */

static int l_dim(lua_State *L) {
  lua_pushinteger(L, l_checktensor(L, 1, "dim")->ndim);
  return 1;
}


static int l_numel(lua_State *L) {
  lua_pushinteger(L, tensor_numel(l_checktensor(L, 1, "numel")));
  return 1;
}


/* Pushes a Lua list of the n values (sizes or strides). */
static void push_dims(lua_State *L, const int64_t *values, int n) {
  lua_createtable(L, n, 0);
  for (int d = 0; d < n; d++) {
    lua_pushinteger(L, values[d]);
    lua_rawseti(L, -2, d + 1);
  }
}


static int l_shape(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "shape");
  push_dims(L, t->size, t->ndim);
  return 1;
}


/* x:size() is the shape table; x:size(d) is one size. */
static int l_size(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "size");
  if (lua_isnoneornil(L, 2)) return l_shape(L);
  check_not_0d(L, t, "size");
  lua_pushinteger(L, t->size[l_checkdim(L, 2, t->ndim, 0, "size")]);
  return 1;
}


static int l_stride(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "stride");
  if (!lua_isnoneornil(L, 2)) {
    check_not_0d(L, t, "stride");
    lua_pushinteger(L, t->stride[l_checkdim(L, 2, t->ndim, 0, "stride")]);
    return 1;
  }
  push_dims(L, t->stride, t->ndim);
  return 1;
}


static int l_dtype(lua_State *L) {
  lua_pushstring(L, sae_dtype_name(l_checktensor(L, 1, "dtype")->dtype));
  return 1;
}


static int l_is_contiguous(lua_State *L) {
  lua_pushboolean(L, tensor_is_contiguous(l_checktensor(L, 1, "is_contiguous")));
  return 1;
}


static void push_element(lua_State *L, const sae_tensor *t, int64_t off) {
  if (t->dtype == SAE_FLOAT32)
    lua_pushnumber(L, ((const float *)t->storage->data)[off]);
  else
    lua_pushinteger(L, ((const int64_t *)t->storage->data)[off]);
}


static int l_item(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "item");
  if (tensor_numel(t) != 1)
    return l_shape_error(L, "item", "expected a tensor with one element", t,
                         NULL);
  push_element(L, t, t->offset);
  return 1;
}


static void totable_rec(lua_State *L, const sae_tensor *t, int d, int64_t off) {
  luaL_checkstack(L, 4, "totable: nesting too deep");
  lua_createtable(L, (int)(t->size[d] < 1 << 24 ? t->size[d] : 0), 0);
  for (int64_t i = 0; i < t->size[d]; i++) {
    if (d == t->ndim - 1) push_element(L, t, off + i * t->stride[d]);
    else totable_rec(L, t, d + 1, off + i * t->stride[d]);
    lua_rawseti(L, -2, i + 1);
  }
}


/* A 0-d tensor gives its number; others give nested tables. */
static int l_totable(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "totable");
  if (t->ndim == 0) push_element(L, t, t->offset);
  else totable_rec(L, t, 0, t->offset);
  return 1;
}


/* ------------------------------------------------------------------ views */

static int l_view(lua_State *L, const char *fname, int copy_if_needed) {
  sae_tensor *t = l_checktensor(L, 1, fname);
  int64_t size[SAE_MAX_DIMS];
  int ndim = l_checkshape(L, 2, -1, fname, 1, size);
  int64_t known = 1, infer = -1, n = tensor_numel(t);

  /* resolve the -1 size, if any, from the element count */
  for (int d = 0; d < ndim; d++) {
    if (size[d] == -1) infer = d;
    else known = (known != 0 && size[d] > INT64_MAX / known) ? -1
                                                             : known * size[d];
  }
  if (infer >= 0) {
    if (known <= 0 || n % known != 0) goto mismatch;
    size[infer] = n / known;
  } else if (known != n) {
    goto mismatch;
  }

  if (!tensor_is_contiguous(t)) {
    if (!copy_if_needed) {
      char sa[160];
      return luaL_error(L, "%s: tensor of shape %s is not contiguous; call "
                        ":contiguous() first or use reshape", fname,
                        l_shapestr(t, sa, sizeof sa));
    }
    sae_tensor *c = l_newlike(L, t, 0);
    tensor_copy(c, t);
    t = c;
  }

  sae_tensor *v = l_pushview(L, t);
  v->ndim = ndim;
  for (int d = 0; d < ndim; d++) v->size[d] = size[d];
  shape_contiguous_strides(ndim, size, v->stride);
  return 1;

mismatch: {
    char sa[160], sb[160];
    shape_format(ndim, size, sb, sizeof sb);
    return luaL_error(L, "%s: argument #2 (shape) expected %I elements to "
                      "match %s, got %s", fname, (lua_Integer)n,
                      l_shapestr(t, sa, sizeof sa), sb);
  }
}


static int l_view_m(lua_State *L) { return l_view(L, "view", 0); }
static int l_reshape(lua_State *L) { return l_view(L, "reshape", 1); }


static int l_transpose(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "transpose");
  int a, b;
  if (lua_isnoneornil(L, 2) && lua_isnoneornil(L, 3)) {
    if (t->ndim != 2)
      return l_shape_error(L, "transpose", "without dims expected a 2-D "
                           "tensor", t, NULL);
    a = 0; b = 1;
  } else {
    a = l_checkdim(L, 2, t->ndim, 0, "transpose");
    b = l_checkdim(L, 3, t->ndim, 0, "transpose");
  }
  if (t->ndim == 0) { l_pushview(L, t); return 1; }
  sae_tensor *v = l_pushview(L, t);
  int64_t s = v->size[a]; v->size[a] = v->size[b]; v->size[b] = s;
  s = v->stride[a]; v->stride[a] = v->stride[b]; v->stride[b] = s;
  return 1;
}


static int l_permute(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "permute");
  int64_t perm[SAE_MAX_DIMS];
  int n = l_checkshape(L, 2, -1, "permute", 1, perm);
  int seen[SAE_MAX_DIMS] = { 0 };
  if (n != t->ndim) {
    char sa[160];
    return luaL_error(L, "permute: argument #2 expected %d dims for a tensor "
                      "of shape %s, got %d", t->ndim,
                      l_shapestr(t, sa, sizeof sa), n);
  }
  for (int i = 0; i < n; i++) {
    int64_t d = perm[i] < 0 ? perm[i] + n : perm[i] - 1;
    if (perm[i] == 0 || d < 0 || d >= n || seen[d]++)
      return luaL_error(L, "permute: argument #2 expected a permutation of "
                        "1..%d, got %I at position %d", n,
                        (lua_Integer)perm[i], i + 1);
    perm[i] = d;
  }
  sae_tensor *v = l_pushview(L, t);
  for (int i = 0; i < n; i++) {
    v->size[i] = t->size[perm[i]];
    v->stride[i] = t->stride[perm[i]];
  }
  return 1;
}


static int l_unsqueeze(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "unsqueeze");
  int d = l_checkdim(L, 2, t->ndim, 1, "unsqueeze");
  if (t->ndim >= SAE_MAX_DIMS)
    return luaL_error(L, "unsqueeze: tensor already has the maximum of %d dims",
                      SAE_MAX_DIMS);
  sae_tensor *v = l_pushview(L, t);
  for (int i = t->ndim; i > d; i--) {
    v->size[i] = v->size[i - 1];
    v->stride[i] = v->stride[i - 1];
  }
  v->size[d] = 1;
  v->stride[d] = d + 1 < t->ndim + 1 ? t->size[d] * t->stride[d] : 1;
  if (v->stride[d] == 0) v->stride[d] = 1;
  v->ndim++;
  return 1;
}


static int l_squeeze(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "squeeze");
  int only = lua_isnoneornil(L, 2) ? -1 : l_checkdim(L, 2, t->ndim, 0,
                                                      "squeeze");
  sae_tensor *v = l_pushview(L, t);
  int n = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (t->size[d] == 1 && (only < 0 || only == d)) continue;
    v->size[n] = t->size[d];
    v->stride[n] = t->stride[d];
    n++;
  }
  v->ndim = n;
  return 1;
}


/* x:narrow(dim, start, length): start is 1-based, negative counts from the
 * end; start may be one past the end when length is 0. */
static int l_narrow(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "narrow");
  check_not_0d(L, t, "narrow");
  int d = l_checkdim(L, 2, t->ndim, 0, "narrow");
  int64_t n = t->size[d];
  lua_Integer start = luaL_checkinteger(L, 3);
  lua_Integer len = luaL_checkinteger(L, 4);
  int64_t first = start < 0 ? start + n : start - 1;
  if (start == 0 || first < 0 || first > n)
    return luaL_error(L, "narrow: argument #3 (start) expected an index in "
                      "[1, %I] (or negative from the end), got %I",
                      (lua_Integer)n, start);
  if (len < 0 || len > n - first) {
    char sa[160];
    return luaL_error(L, "narrow: argument #4 (length) expected a length in "
                      "[0, %I] for start %I in dim %d of shape %s, got %I",
                      (lua_Integer)(n - first), start, d + 1,
                      l_shapestr(t, sa, sizeof sa), len);
  }
  sae_tensor *v = l_pushview(L, t);
  v->offset += first * t->stride[d];
  v->size[d] = len;
  return 1;
}


static void select_into(sae_tensor *v, const sae_tensor *t, int d, int64_t i) {
  v->offset = t->offset + i * t->stride[d];
  for (int k = d; k < t->ndim - 1; k++) {
    v->size[k] = t->size[k + 1];
    v->stride[k] = t->stride[k + 1];
  }
  v->ndim = t->ndim - 1;
}


/* x:select(dim, index): a view with that dim removed. */
static int l_select(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "select");
  check_not_0d(L, t, "select");
  int d = l_checkdim(L, 2, t->ndim, 0, "select");
  int64_t i = l_checkindex(L, 3, t->size[d], "select", "index");
  sae_tensor *v = l_pushview(L, t);
  select_into(v, t, d, i);
  return 1;
}


/* x:expand(sizes): size-1 dims (and new leading dims) repeat with stride
 * 0; -1 keeps a size. */
static int l_expand(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "expand");
  int64_t size[SAE_MAX_DIMS];
  int n;
  sae_tensor *other = l_testtensor(L, 2);
  if (other != NULL) {
    n = other->ndim;
    memcpy(size, other->size, sizeof size);
  } else {
    n = l_checkshape(L, 2, -1, "expand", 1, size);
  }
  if (n < t->ndim) goto bad;
  sae_tensor *v = l_pushview(L, t);
  v->ndim = n;
  for (int i = n - 1; i >= 0; i--) {
    int td = t->ndim - n + i;
    int64_t want = size[i];
    if (td < 0) {
      if (want < 0) goto bad;
      v->size[i] = want;
      v->stride[i] = 0;
    } else if (want == -1 || want == t->size[td]) {
      v->size[i] = t->size[td];
      v->stride[i] = t->stride[td];
    } else if (t->size[td] == 1) {
      v->size[i] = want;
      v->stride[i] = 0;
    } else {
      goto bad;
    }
  }
  return 1;

bad: {
    char sa[160], sb[160];
    for (int i = 0; i < n; i++) if (size[i] < -1) size[i] = -1;
    shape_format(n, size, sb, sizeof sb);
    return luaL_error(L, "expand: argument #2 expected a shape that %s "
                      "broadcasts to, got %s", l_shapestr(t, sa, sizeof sa),
                      sb);
  }
}


static int l_contiguous(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "contiguous");
  if (tensor_is_contiguous(t)) {
    lua_settop(L, 1);
    return 1;
  }
  tensor_copy(l_newlike(L, t, 0), t);
  return 1;
}


static int l_clone(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "clone");
  tensor_copy(l_newlike(L, t, 0), t);
  return 1;
}


static int l_to_dtype(lua_State *L, sae_dtype dtype, const char *fname) {
  sae_tensor *t = l_checktensor(L, 1, fname);
  if (t->dtype == dtype) { lua_settop(L, 1); return 1; }
  sae_tensor *r = l_newtensor(L, dtype, t->ndim, t->size, 0);
  tensor_copy(r, t);
  return 1;
}


static int l_float(lua_State *L) { return l_to_dtype(L, SAE_FLOAT32, "float"); }
static int l_long(lua_State *L) { return l_to_dtype(L, SAE_INT64, "long"); }


/* x:to(dtype) */
static int l_to(lua_State *L) {
  return l_to_dtype(L, l_optdtype(L, 2, "to"), "to");
}


/* ---------------------------------------------------------- fill and copy */

static int l_fill_(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "fill_");
  sae_tensor tmp;
  sae_storage st;
  union { float f; int64_t i; } value;
  if (t->dtype == SAE_FLOAT32) {
    value.f = (float)luaL_checknumber(L, 2);
  } else {
    int isint;
    value.i = lua_tointegerx(L, 2, &isint);
    if (!isint)
      return luaL_error(L, "fill_: argument #2 expected an integer for an "
                        "int64 tensor, got %s", luaL_typename(L, 2));
  }
  /* a 0-d tensor over a stack value, broadcast by tensor_copy */
  st.data = &value; st.nbytes = sizeof value; st.refcount = 1;
  st.release = NULL; st.context = NULL;
  tmp.storage = &st; tmp.dtype = t->dtype; tmp.ndim = 0; tmp.offset = 0;
  tensor_copy(t, &tmp);
  lua_settop(L, 1);
  return 1;
}


static int l_zero_(lua_State *L) {
  l_checktensor(L, 1, "zero_");
  lua_settop(L, 1);
  lua_pushinteger(L, 0);
  return l_fill_(L);
}


/* Two views overlap in memory when they share storage and their element
 * ranges intersect; copy_ then goes through a temporary. */
static int views_may_overlap(const sae_tensor *a, const sae_tensor *b) {
  if (a->storage != b->storage) return 0;
  int64_t alo = a->offset, ahi = a->offset, blo = b->offset, bhi = b->offset;
  for (int d = 0; d < a->ndim; d++) ahi += (a->size[d] - 1) * a->stride[d];
  for (int d = 0; d < b->ndim; d++) bhi += (b->size[d] - 1) * b->stride[d];
  return !(ahi < blo || bhi < alo);
}


/* x:copy_(src): src broadcasts to x's shape; dtypes convert. */
static int l_copy_(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "copy_");
  sae_tensor *src = l_checktensor(L, 2, "copy_");
  int n;
  int64_t out[SAE_MAX_DIMS];
  if (shape_broadcast(t->ndim, t->size, src->ndim, src->size, &n, out) != SAE_OK
      || !shape_equal(n, out, t->ndim, t->size))
    return l_shape_error(L, "copy_", "expected a source that broadcasts to the"
                         " destination", t, src);
  if (views_may_overlap(t, src) && tensor_numel(t) > 0) {
    sae_tensor *tmp = l_newlike(L, src, 0);
    tensor_copy(tmp, src);
    src = tmp;
  }
  tensor_copy(t, src);
  lua_settop(L, 1);
  return 1;
}


/* -------------------------------------------------------- indexing: x[i] */

static int l_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TNUMBER) {
    sae_tensor *t = l_checktensor(L, 1, "index");
    if (t->ndim == 0)
      return luaL_error(L, "index: cannot index a 0-d tensor; use :item()");
    int64_t i = l_checkindex(L, 2, t->size[0], "index", "index");
    if (t->ndim == 1) {
      push_element(L, t, t->offset + i * t->stride[0]);
      return 1;
    }
    sae_tensor *v = l_pushview(L, t);
    select_into(v, t, 0, i);
    return 1;
  }
  if (lua_type(L, 2) != LUA_TSTRING)
    return luaL_error(L, "index: expected an integer index or a method name, "
                      "got %s (use narrow, select or index_select for "
                      "slices)", luaL_typename(L, 2));
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}


/* x[i] = v: v is a number or a tensor broadcasting to x[i]. */
static int l_newindex(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "newindex");
  if (lua_type(L, 2) != LUA_TNUMBER)
    return luaL_error(L, "newindex: expected an integer index, got %s",
                      luaL_typename(L, 2));
  if (t->ndim == 0)
    return luaL_error(L, "newindex: cannot index a 0-d tensor; use :fill_()");
  int64_t i = l_checkindex(L, 2, t->size[0], "newindex", "index");
  sae_tensor *v = l_pushview(L, t);   /* slot 4 */
  select_into(v, t, 0, i);
  lua_replace(L, 1);                  /* view at 1, index at 2, value at 3 */
  lua_remove(L, 2);
  if (l_testtensor(L, 2) != NULL) return l_copy_(L) * 0;
  if (lua_type(L, 2) != LUA_TNUMBER)
    return luaL_error(L, "newindex: expected a number or a sae.Tensor as the "
                      "value, got %s", luaL_typename(L, 2));
  l_fill_(L);
  return 0;
}


static int l_len(lua_State *L) {
  sae_tensor *t = l_checktensor(L, 1, "len");
  lua_pushinteger(L, t->ndim == 0 ? 0 : t->size[0]);
  return 1;
}


static int l_gc(lua_State *L) {
  sae_tensor *t = lua_touserdata(L, 1);
  tensor_free(t);
  return 0;
}


/* ---------------------------------------------------------- registration */

static const luaL_Reg tensor_methods[] = {
  { "dim", l_dim }, { "numel", l_numel }, { "shape", l_shape },
  { "size", l_size }, { "stride", l_stride }, { "dtype", l_dtype },
  { "is_contiguous", l_is_contiguous }, { "item", l_item },
  { "totable", l_totable }, { "view", l_view_m }, { "reshape", l_reshape },
  { "transpose", l_transpose }, { "permute", l_permute },
  { "unsqueeze", l_unsqueeze }, { "squeeze", l_squeeze },
  { "narrow", l_narrow }, { "select", l_select }, { "expand", l_expand },
  { "contiguous", l_contiguous }, { "clone", l_clone }, { "float", l_float },
  { "long", l_long }, { "to", l_to }, { "fill_", l_fill_ },
  { "zero_", l_zero_ }, { "copy_", l_copy_ },
  { NULL, NULL }
};


static const luaL_Reg tensor_functions[] = {
  { "tensor", l_tensor }, { "zeros", l_zeros }, { "ones", l_ones },
  { "empty", l_empty }, { "full", l_full },
  { NULL, NULL }
};


void l_open_tensor(lua_State *L) {
  int module = lua_gettop(L);
  luaL_newmetatable(L, SAE_TENSOR_MT);
  lua_newtable(L);                       /* methods */
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__methods");
  lua_pushcclosure(L, l_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, l_len);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__close");
  lua_pushstring(L, SAE_TENSOR_MT);
  lua_setfield(L, -2, "__name");
  lua_setfield(L, module, "Tensor_mt");  /* for the Lua modules on top */
  l_register(L, module, tensor_methods, NULL, tensor_functions);
}
