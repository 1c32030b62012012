/*
 * l_ops.c: Lua bindings of the elementwise ops: arithmetic metamethods,
 * math functions, comparisons, where and their in-place forms.
 *
 * Operands are tensors or numbers and broadcast as in NumPy. int64
 * operands stay int64 for the ops that have int64 kernels (add, sub, mul,
 * neg, abs, maximum, minimum, comparisons). A float32 tensor or a float
 * number among the operands promotes the op to float32.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lsae.h"
#include "ops.h"


/* ---------------------------------------------------------------- operands */

/* One operand of an op: a tensor, or a number seen as a 0-d tensor whose
 * storage lives in this struct (so it must not be moved once used). */
typedef struct {
  sae_tensor *t;
  int arg;
  const char *name;
  int is_number, is_int;
  lua_Number number;
  lua_Integer integer;
  sae_tensor scalar;
  sae_storage storage;
  union { float f; int64_t i; } value;
} operand;


static void operand_get(lua_State *L, int arg, const char *fname,
                        const char *name, operand *o) {
  memset(o, 0, sizeof *o);
  o->arg = arg;
  o->name = name;
  if (l_testtensor(L, arg) != NULL) {
    o->t = l_checktensor(L, arg, fname);
    o->is_int = o->t->dtype == SAE_INT64;
    return;
  }
  if (lua_type(L, arg) != LUA_TNUMBER)
    luaL_error(L, "%s: argument #%d (%s) expected a sae.Tensor or a number, "
               "got %s", fname, arg, name, luaL_typename(L, arg));
  o->is_number = 1;
  o->is_int = lua_isinteger(L, arg);
  o->number = lua_tonumber(L, arg);
  o->integer = o->is_int ? lua_tointeger(L, arg) : 0;
}


/* Makes o->t a tensor of `dtype`: a number becomes a 0-d tensor and an
 * int64 tensor in a float32 op is converted into a temporary on the Lua
 * stack. */
static void operand_as(lua_State *L, operand *o, sae_dtype dtype) {
  if (o->is_number) {
    if (dtype == SAE_INT64) o->value.i = (int64_t)o->integer;
    else o->value.f = o->is_int ? (float)o->integer : (float)o->number;
    o->storage.data = &o->value;
    o->storage.nbytes = sizeof o->value;
    o->storage.refcount = 1;
    o->scalar.storage = &o->storage;
    o->scalar.dtype = dtype;
    o->scalar.ndim = 0;
    o->scalar.offset = 0;
    o->t = &o->scalar;
  } else if (o->t->dtype != dtype) {
    sae_tensor *c = l_newtensor(L, dtype, o->t->ndim, o->t->size, 0);
    tensor_copy(c, o->t);
    o->t = c;
  }
}


static int views_overlap(const sae_tensor *a, const sae_tensor *b) {
  if (a->storage != b->storage) return 0;
  if (tensor_numel(a) == 0 || tensor_numel(b) == 0) return 0;
  int64_t alo = a->offset, ahi = a->offset, blo = b->offset, bhi = b->offset;
  for (int d = 0; d < a->ndim; d++) ahi += (a->size[d] - 1) * a->stride[d];
  for (int d = 0; d < b->ndim; d++) bhi += (b->size[d] - 1) * b->stride[d];
  return !(ahi < blo || bhi < alo);
}


/* Whether operand x, broadcast to out's shape, reads each element exactly
 * where out writes it, so an elementwise kernel may run in place. */
static int same_geometry(const sae_tensor *out, const sae_tensor *x) {
  int64_t stride[SAE_MAX_DIMS];
  if (x->offset != out->offset || x->dtype != out->dtype) return 0;
  tensor_broadcast_strides(x, out->ndim, out->size, stride);
  for (int d = 0; d < out->ndim; d++)
    if (out->size[d] > 1 && stride[d] != out->stride[d]) return 0;
  return 1;
}


/* Copies an operand that overlaps `out` in memory, unless it is read in
 * place element by element. */
static void operand_unalias(lua_State *L, const sae_tensor *out, operand *o) {
  if (o->is_number || !views_overlap(out, o->t) || same_geometry(out, o->t))
    return;
  sae_tensor *c = l_newlike(L, o->t, 0);
  tensor_copy(c, o->t);
  o->t = c;
}


/* Raises unless self can be written in place: several elements sharing
 * one memory location (an expanded view) would give undefined results. */
static void check_writable(lua_State *L, const sae_tensor *self,
                           const char *fname) {
  for (int d = 0; d < self->ndim; d++)
    if (self->size[d] > 1 && self->stride[d] == 0) {
      char buf[160];
      luaL_error(L, "%s: argument #1 (self) expected a tensor without "
                 "expanded dims to write in place, got an expanded view of "
                 "shape %s", fname, l_shapestr(self, buf, sizeof buf));
    }
}


static void broadcast_or_raise(lua_State *L, const char *fname,
                               const operand *a, const operand *b, int *ndim,
                               int64_t *size) {
  if (shape_broadcast(a->t->ndim, a->t->size, b->t->ndim, b->t->size, ndim,
                      size) == SAE_OK)
    return;
  char what[120];
  snprintf(what, sizeof what, "argument #%d (%s) expected a shape that "
           "broadcasts with argument #%d (%s)", b->arg, b->name, a->arg,
           a->name);
  l_shape_error(L, fname, what, a->t, b->t);
}


/* Raises unless an op with result `size` can write into self. */
static void check_inplace_shape(lua_State *L, const char *fname,
                                const sae_tensor *self, const operand *other,
                                int ndim, const int64_t *size) {
  if (shape_equal(ndim, size, self->ndim, self->size)) return;
  char what[120];
  snprintf(what, sizeof what, "argument #%d (%s) expected a shape that "
           "broadcasts to the shape of self", other->arg, other->name);
  l_shape_error(L, fname, what, self, other->t);
}


static int dtype_error(lua_State *L, const char *fname, int arg,
                       const char *name) {
  return luaL_error(L, "%s: argument #%d (%s) expected a float32 tensor, got "
                    "int64 (int64 tensors support add, sub, mul, neg, abs, "
                    "maximum, minimum and comparisons)", fname, arg, name);
}


/* ------------------------------------------------------------------ binary */

/* Applies a binary op to arguments 1 and 2 (alpha at 3 for add and sub);
 * in place into argument 1 when `inplace`. */
static int binary(lua_State *L, ops_binary_op op, const char *fname,
                  int inplace) {
  operand a, b;
  sae_tensor *self = NULL;
  if (inplace) self = l_checktensor(L, 1, fname);
  operand_get(L, 1, fname, inplace ? "self" : "input", &a);
  operand_get(L, 2, fname, "other", &b);
  lua_Number alpha = 1;
  int alpha_int = 1;
  if ((op == OPS_ADD || op == OPS_SUB) && !lua_isnoneornil(L, 3)) {
    if (lua_type(L, 3) != LUA_TNUMBER)
      return luaL_error(L, "%s: argument #3 (alpha) expected a number, got %s",
                        fname, luaL_typename(L, 3));
    alpha = lua_tonumber(L, 3);
    alpha_int = lua_isinteger(L, 3);
  }
  if (a.is_number && b.is_number)
    return luaL_error(L, "%s: argument #1 (input) expected a sae.Tensor when "
                      "argument #2 is a number, got number", fname);

  /* int64 only when every operand is an integer and the op has it */
  sae_dtype dtype = SAE_FLOAT32;
  if (a.is_int && b.is_int && alpha_int && ops_binary_has_i64(op))
    dtype = SAE_INT64;
  if (dtype == SAE_FLOAT32 && !ops_binary_has_i64(op)
      && (a.is_number || a.is_int) && (b.is_number || b.is_int)) {
    const operand *bad = a.is_number ? &b : &a;
    return dtype_error(L, fname, bad->arg, bad->name);
  }
  sae_dtype out_dtype = ops_binary_is_compare(op) ? SAE_FLOAT32 : dtype;
  if (inplace && self->dtype != out_dtype)
    return luaL_error(L, "%s: argument #1 (self) expected a %s tensor to hold "
                      "the %s result, got %s", fname,
                      sae_dtype_name(out_dtype), sae_dtype_name(out_dtype),
                      sae_dtype_name(self->dtype));
  operand_as(L, &a, dtype);
  operand_as(L, &b, dtype);

  int ndim;
  int64_t size[SAE_MAX_DIMS];
  broadcast_or_raise(L, fname, &a, &b, &ndim, size);
  sae_tensor *out;
  if (inplace) {
    check_inplace_shape(L, fname, self, &b, ndim, size);
    check_writable(L, self, fname);
    operand_unalias(L, self, &b);
    out = self;
  } else {
    out = l_newtensor(L, out_dtype, ndim, size, 0);
  }

  /* x ^ 2 and x ^ 0.5 as x * x and sqrt(x), as PyTorch computes them */
  if (op == OPS_POW && dtype == SAE_FLOAT32 && b.is_number
      && (b.value.f == 2.0f || b.value.f == 0.5f)) {
    if (b.value.f == 2.0f) ops_binary(OPS_MUL, out, a.t, a.t, 1);
    else ops_unary(OPS_SQRT, out, a.t, 0, 0);
  } else {
    ops_binary(op, out, a.t, b.t, alpha);
  }
  if (inplace) lua_pushvalue(L, 1);
  return 1;
}


#define BINARY_FUNCTIONS(NAME, OP)                                            \
  static int l_##NAME(lua_State *L) { return binary(L, OP, #NAME, 0); }       \
  static int l_##NAME##_(lua_State *L) { return binary(L, OP, #NAME "_", 1); }

BINARY_FUNCTIONS(add, OPS_ADD)
BINARY_FUNCTIONS(sub, OPS_SUB)
BINARY_FUNCTIONS(mul, OPS_MUL)
BINARY_FUNCTIONS(div, OPS_DIV)
BINARY_FUNCTIONS(pow, OPS_POW)
BINARY_FUNCTIONS(maximum, OPS_MAXIMUM)
BINARY_FUNCTIONS(minimum, OPS_MINIMUM)
BINARY_FUNCTIONS(gt, OPS_GT)
BINARY_FUNCTIONS(ge, OPS_GE)
BINARY_FUNCTIONS(lt, OPS_LT)
BINARY_FUNCTIONS(le, OPS_LE)
BINARY_FUNCTIONS(eq, OPS_EQ)
BINARY_FUNCTIONS(ne, OPS_NE)


/* ------------------------------------------------------------------- unary */

static int unary(lua_State *L, ops_unary_op op, const char *fname,
                 int inplace, double lo, double hi) {
  sae_tensor *x = l_checktensor(L, 1, fname);
  if (x->dtype == SAE_INT64 && !ops_unary_has_i64(op))
    return dtype_error(L, fname, 1, inplace ? "self" : "input");
  sae_tensor *out;
  if (inplace) {
    check_writable(L, x, fname);
    out = x;
  } else {
    out = l_newlike(L, x, 0);
  }
  ops_unary(op, out, x, lo, hi);
  if (inplace) lua_pushvalue(L, 1);
  return 1;
}


#define UNARY_FUNCTIONS(NAME, OP)                                             \
  static int l_##NAME(lua_State *L) {                                         \
    return unary(L, OP, #NAME, 0, 0, 0);                                      \
  }                                                                           \
  static int l_##NAME##_(lua_State *L) {                                      \
    return unary(L, OP, #NAME "_", 1, 0, 0);                                  \
  }

UNARY_FUNCTIONS(neg, OPS_NEG)
UNARY_FUNCTIONS(abs, OPS_ABS)
UNARY_FUNCTIONS(exp, OPS_EXP)
UNARY_FUNCTIONS(log, OPS_LOG)
UNARY_FUNCTIONS(sqrt, OPS_SQRT)
UNARY_FUNCTIONS(relu, OPS_RELU)
UNARY_FUNCTIONS(sigmoid, OPS_SIGMOID)
UNARY_FUNCTIONS(tanh, OPS_TANH)


/* __unm receives the operand twice; only the first counts. */
static int l_unm(lua_State *L) {
  lua_settop(L, 1);
  return unary(L, OPS_NEG, "unm", 0, 0, 0);
}


/* gelu(x [, approximate]): approximate is nil or "none" for the exact erf
 * form, "tanh" for the tanh approximation. */
static int gelu(lua_State *L, const char *fname, int inplace) {
  ops_unary_op op = OPS_GELU;
  if (!lua_isnoneornil(L, 2)) {
    const char *s = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    if (s != NULL && strcmp(s, "tanh") == 0) op = OPS_GELU_TANH;
    else if (s == NULL || strcmp(s, "none") != 0)
      return luaL_error(L, "%s: argument #2 (approximate) expected \"none\" "
                        "or \"tanh\", got %s", fname,
                        s != NULL ? s : luaL_typename(L, 2));
  }
  return unary(L, op, fname, inplace, 0, 0);
}


static int l_gelu(lua_State *L) { return gelu(L, "gelu", 0); }
static int l_gelu_(lua_State *L) { return gelu(L, "gelu_", 1); }


static double opt_bound(lua_State *L, int arg, const char *fname,
                        const char *name, double def) {
  if (lua_isnoneornil(L, arg)) return def;
  if (lua_type(L, arg) != LUA_TNUMBER)
    return luaL_error(L, "%s: argument #%d (%s) expected a number or nil, got "
                      "%s", fname, arg, name, luaL_typename(L, arg));
  return lua_tonumber(L, arg);
}


/* clamp(x, min, max): either bound may be nil, not both. */
static int clamp(lua_State *L, const char *fname, int inplace) {
  l_checktensor(L, 1, fname);
  double lo = opt_bound(L, 2, fname, "min", -INFINITY);
  double hi = opt_bound(L, 3, fname, "max", INFINITY);
  if (lua_isnoneornil(L, 2) && lua_isnoneornil(L, 3))
    return luaL_error(L, "%s: argument #2 (min) and argument #3 (max) expected"
                      " at least one number, got nil and nil", fname);
  return unary(L, OPS_CLAMP, fname, inplace, lo, hi);
}


static int l_clamp(lua_State *L) { return clamp(L, "clamp", 0); }
static int l_clamp_(lua_State *L) { return clamp(L, "clamp_", 1); }


/* ------------------------------------------------------------------- where */

/* Converts a mask to float32 (nonzero means true). */
static sae_tensor *check_mask(lua_State *L, int arg, const char *fname) {
  sae_tensor *m = l_checktensor(L, arg, fname);
  if (m->dtype != SAE_FLOAT32) {
    sae_tensor *c = l_newtensor(L, SAE_FLOAT32, m->ndim, m->size, 0);
    tensor_copy(c, m);
    m = c;
  }
  return m;
}


/* sae.where(mask, a, b): a where mask is nonzero, else b. a and b are
 * tensors or numbers, and the three broadcast together. The result is
 * int64 when a and b are both int64 tensors or integers, as in PyTorch. */
static int l_where(lua_State *L) {
  operand m, a, b;
  sae_tensor *mask = check_mask(L, 1, "where");
  operand_get(L, 1, "where", "condition", &m);
  m.t = mask;
  operand_get(L, 2, "where", "input", &a);
  operand_get(L, 3, "where", "other", &b);
  sae_dtype dtype = a.is_int && b.is_int ? SAE_INT64 : SAE_FLOAT32;
  operand_as(L, &a, dtype);
  operand_as(L, &b, dtype);

  int n1, n2;
  int64_t s1[SAE_MAX_DIMS], s2[SAE_MAX_DIMS];
  broadcast_or_raise(L, "where", &m, &a, &n1, s1);
  if (shape_broadcast(n1, s1, b.t->ndim, b.t->size, &n2, s2) != SAE_OK) {
    sae_tensor shape = { .ndim = n1 };
    memcpy(shape.size, s1, sizeof s1);
    return l_shape_error(L, "where", "argument #3 (other) expected a shape "
                         "that broadcasts with arguments #1 and #2", &shape,
                         b.t);
  }
  sae_tensor *out = l_newtensor(L, dtype, n2, s2, 0);
  ops_where(out, m.t, a.t, b.t);
  return 1;
}


/* masked_fill(self, mask, value) and its in-place form: value where mask
 * is nonzero; the mask broadcasts to self's shape. */
static int masked_fill(lua_State *L, const char *fname, int inplace) {
  operand self, m, v;
  operand_get(L, 1, fname, "self", &self);
  if (self.is_number) l_checktensor(L, 1, fname);
  sae_tensor *mask = check_mask(L, 2, fname);
  operand_get(L, 2, fname, "mask", &m);
  m.t = mask;
  if (lua_type(L, 3) != LUA_TNUMBER)
    return luaL_error(L, "%s: argument #3 (value) expected a number, got %s",
                      fname, luaL_typename(L, 3));
  operand_get(L, 3, fname, "value", &v);
  if (self.t->dtype == SAE_INT64 && !v.is_int)
    return luaL_error(L, "%s: argument #3 (value) expected an integer for an "
                      "int64 tensor, got %f", fname, v.number);
  operand_as(L, &v, self.t->dtype);

  int ndim;
  int64_t size[SAE_MAX_DIMS];
  broadcast_or_raise(L, fname, &self, &m, &ndim, size);
  check_inplace_shape(L, fname, self.t, &m, ndim, size);
  sae_tensor *out;
  if (inplace) {
    check_writable(L, self.t, fname);
    operand_unalias(L, self.t, &m);
    out = self.t;
  } else {
    out = l_newlike(L, self.t, 0);
  }
  ops_where(out, m.t, v.t, self.t);
  if (inplace) lua_pushvalue(L, 1);
  return 1;
}


static int l_masked_fill(lua_State *L) {
  return masked_fill(L, "masked_fill", 0);
}


static int l_masked_fill_(lua_State *L) {
  return masked_fill(L, "masked_fill_", 1);
}


/* ------------------------------------------------------------ registration */

static const luaL_Reg ops_methods[] = {
  { "add", l_add }, { "sub", l_sub }, { "mul", l_mul }, { "div", l_div },
  { "pow", l_pow }, { "maximum", l_maximum }, { "minimum", l_minimum },
  { "gt", l_gt }, { "ge", l_ge }, { "lt", l_lt }, { "le", l_le },
  { "eq", l_eq }, { "ne", l_ne },
  { "add_", l_add_ }, { "sub_", l_sub_ }, { "mul_", l_mul_ },
  { "div_", l_div_ }, { "pow_", l_pow_ }, { "maximum_", l_maximum_ },
  { "minimum_", l_minimum_ },
  { "gt_", l_gt_ }, { "ge_", l_ge_ }, { "lt_", l_lt_ }, { "le_", l_le_ },
  { "eq_", l_eq_ }, { "ne_", l_ne_ },
  { "neg", l_neg }, { "abs", l_abs }, { "exp", l_exp }, { "log", l_log },
  { "sqrt", l_sqrt }, { "relu", l_relu }, { "gelu", l_gelu },
  { "sigmoid", l_sigmoid }, { "tanh", l_tanh }, { "clamp", l_clamp },
  { "neg_", l_neg_ }, { "abs_", l_abs_ }, { "exp_", l_exp_ },
  { "log_", l_log_ }, { "sqrt_", l_sqrt_ }, { "relu_", l_relu_ },
  { "gelu_", l_gelu_ }, { "sigmoid_", l_sigmoid_ }, { "tanh_", l_tanh_ },
  { "clamp_", l_clamp_ },
  { "masked_fill", l_masked_fill }, { "masked_fill_", l_masked_fill_ },
  { NULL, NULL }
};


static const luaL_Reg ops_metamethods[] = {
  { "__add", l_add }, { "__sub", l_sub }, { "__mul", l_mul },
  { "__div", l_div }, { "__pow", l_pow }, { "__unm", l_unm },
  { NULL, NULL }
};


static const luaL_Reg ops_functions[] = {
  { "add", l_add }, { "sub", l_sub }, { "mul", l_mul }, { "div", l_div },
  { "pow", l_pow }, { "maximum", l_maximum }, { "minimum", l_minimum },
  { "gt", l_gt }, { "ge", l_ge }, { "lt", l_lt }, { "le", l_le },
  { "eq", l_eq }, { "ne", l_ne },
  { "neg", l_neg }, { "abs", l_abs }, { "exp", l_exp }, { "log", l_log },
  { "sqrt", l_sqrt }, { "relu", l_relu }, { "gelu", l_gelu },
  { "sigmoid", l_sigmoid }, { "tanh", l_tanh }, { "clamp", l_clamp },
  { "where", l_where }, { "masked_fill", l_masked_fill },
  { NULL, NULL }
};


void l_open_ops(lua_State *L) {
  l_register(L, -1, ops_methods, ops_metamethods, ops_functions);
}
