/*
 * l_random.c: the sae.Generator userdata and the random and range
 * creation functions (rand, randn, randint, multinomial, randperm,
 * uniform_, normal_, arange, linspace, eye).
 *
 * Every draw reserves a counter range from a generator and computes value
 * i from (seed, base + i), so results do not depend on the thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "l_random.h"

/* Seed of the default generator when the module loads, so scripts that
 * never call manual_seed still repeat their numbers from run to run. */
#define DEFAULT_SEED 0

static const char DEFAULT_KEY[] = "sae.default_generator";


/* ------------------------------------------------------------- generator */

sae_generator *l_testgenerator(lua_State *L, int arg) {
  return luaL_testudata(L, arg, SAE_GENERATOR_MT);
}


static sae_generator *default_generator(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, DEFAULT_KEY);
  sae_generator *g = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return g;
}


sae_generator *l_optgenerator(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return default_generator(L);
  sae_generator *g = l_testgenerator(L, arg);
  if (g == NULL) {
    /* the calling function's name, as luaL_argerror finds it */
    lua_Debug ar;
    const char *fname = "?";
    if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.name)
      fname = ar.name;
    luaL_error(L, "%s: argument #%d (generator) expected sae.Generator or "
               "nil, got %s", fname, arg, luaL_typename(L, arg));
  }
  return g;
}


static sae_generator *l_checkgenerator(lua_State *L, int arg,
                                       const char *fname) {
  sae_generator *g = l_testgenerator(L, arg);
  if (g == NULL)
    luaL_error(L, "%s: argument #%d expected sae.Generator, got %s", fname,
               arg, luaL_typename(L, arg));
  return g;
}


static sae_generator *push_generator(lua_State *L, uint64_t seed) {
  sae_generator *g = lua_newuserdatauv(L, sizeof *g, 0);
  generator_init(g, seed);
  luaL_setmetatable(L, SAE_GENERATOR_MT);
  return g;
}


/* sae.Generator([seed]) */
static int l_generator_new(lua_State *L) {
  lua_Integer seed = luaL_optinteger(L, 1, DEFAULT_SEED);
  push_generator(L, (uint64_t)seed);
  return 1;
}


/* g:manual_seed(n) resets the seed and the counter; returns g. */
static int l_generator_manual_seed(lua_State *L) {
  sae_generator *g = l_checkgenerator(L, 1, "manual_seed");
  int isint;
  lua_Integer seed = lua_tointegerx(L, 2, &isint);
  if (!isint)
    return luaL_error(L, "manual_seed: argument #2 (seed) expected an "
                      "integer, got %s", luaL_typename(L, 2));
  generator_init(g, (uint64_t)seed);
  lua_settop(L, 1);
  return 1;
}


/* g:seed() returns the seed last set (as a Lua integer; seeds above
 * 2^63 come back negative, with the same bits). */
static int l_generator_seed(lua_State *L) {
  sae_generator *g = l_checkgenerator(L, 1, "seed");
  lua_pushinteger(L, (lua_Integer)g->seed);
  return 1;
}


/* g:get_state() returns { seed = s, counter = c }. */
static int l_generator_get_state(lua_State *L) {
  sae_generator *g = l_checkgenerator(L, 1, "get_state");
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)g->seed);
  lua_setfield(L, -2, "seed");
  lua_pushinteger(L, (lua_Integer)g->counter);
  lua_setfield(L, -2, "counter");
  return 1;
}


static uint64_t state_field(lua_State *L, const char *key) {
  int isint;
  lua_getfield(L, 2, key);
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  if (!isint)
    luaL_error(L, "set_state: argument #2 (state) expected an integer field "
               "'%s', got %s", key, luaL_typename(L, -1));
  lua_pop(L, 1);
  return (uint64_t)v;
}


/* g:set_state(state) restores a table from get_state; returns g. */
static int l_generator_set_state(lua_State *L) {
  sae_generator *g = l_checkgenerator(L, 1, "set_state");
  if (!lua_istable(L, 2))
    return luaL_error(L, "set_state: argument #2 (state) expected a table "
                      "from get_state(), got %s", luaL_typename(L, 2));
  uint64_t seed = state_field(L, "seed");
  uint64_t counter = state_field(L, "counter");
  g->seed = seed;
  g->counter = counter;
  lua_settop(L, 1);
  return 1;
}


static int l_generator_tostring(lua_State *L) {
  sae_generator *g = l_checkgenerator(L, 1, "tostring");
  lua_pushfstring(L, "sae.Generator(seed=%I, counter=%I)",
                  (lua_Integer)g->seed, (lua_Integer)g->counter);
  return 1;
}


/* sae.default_generator() */
static int l_default_generator(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, DEFAULT_KEY);
  return 1;
}


/* sae.manual_seed(n) seeds the default generator; returns it. */
static int l_manual_seed(lua_State *L) {
  lua_settop(L, 1);
  l_default_generator(L);
  lua_insert(L, 1);
  return l_generator_manual_seed(L);
}


/* --------------------------------------------------------- random draws */

/* Takes an optional generator (or nil) off the end of the arguments;
 * returns the index of the last argument before it. */
static int pop_generator(lua_State *L, sae_generator **g) {
  int top = lua_gettop(L);
  sae_generator *found = top >= 1 ? l_testgenerator(L, top) : NULL;
  if (found != NULL || (top >= 1 && lua_isnil(L, top))) top--;
  *g = found != NULL ? found : default_generator(L);
  return top;
}


/* Reads a shape from the arguments first .. last (numbers, or one table
 * that must then be the last argument). */
static int random_shape(lua_State *L, int first, int last, const char *fname,
                        int64_t *size) {
  if (lua_istable(L, first) && last > first)
    return luaL_error(L, "%s: argument #%d expected sae.Generator or nothing "
                      "after the shape table, got %s", fname, first + 1,
                      luaL_typename(L, first + 1));
  if (last < first) return 0;
  return l_checkshape(L, first, last, fname, 0, size);
}


/* Pushes a new float32 tensor of the shape in arguments 1.. and fills it
 * with the generator's next draws: standard normal when `normal` is set,
 * else uniform in [0, 1). Serves sae.rand and sae.randn. */
static int push_random(lua_State *L, const char *fname, int normal) {
  sae_generator *g;
  int64_t size[SAE_MAX_DIMS];
  int last = pop_generator(L, &g);
  int ndim = random_shape(L, 1, last, fname, size);
  sae_tensor *t = l_newtensor(L, SAE_FLOAT32, ndim, size, 0);
  int64_t n = tensor_numel(t);
  uint64_t base = generator_reserve(g, (uint64_t)n);
  if (normal)
    rng_fill_normal(tensor_f32(t), n, g->seed, base, 0.0f, 1.0f);
  else
    rng_fill_uniform(tensor_f32(t), n, g->seed, base, 0.0f, 1.0f);
  return 1;
}


/* sae.rand(shape..., gen): uniform in [0, 1). */
static int l_rand(lua_State *L) {
  return push_random(L, "rand", 0);
}


/* sae.randn(shape..., gen): standard normal. */
static int l_randn(lua_State *L) {
  return push_random(L, "randn", 1);
}


static lua_Integer check_integer(lua_State *L, int arg, const char *fname,
                                 const char *name) {
  int isint;
  lua_Integer v = lua_tointegerx(L, arg, &isint);
  if (!isint)
    return luaL_error(L, "%s: argument #%d (%s) expected an integer, got %s",
                      fname, arg, name,
                      lua_type(L, arg) == LUA_TNUMBER ? lua_tostring(L, arg)
                                                      : luaL_typename(L, arg));
  return v;
}


/* sae.randint(low, high, shape..., gen) or sae.randint(high, shape, gen):
 * int64 values uniform in [low, high). */
static int l_randint(lua_State *L) {
  sae_generator *g;
  int64_t size[SAE_MAX_DIMS];
  int last = pop_generator(L, &g);
  lua_Integer low = 0, high;
  int ndim, high_arg = 2;
  if (lua_istable(L, 2)) {
    high_arg = 1;
    high = check_integer(L, 1, "randint", "high");
    ndim = random_shape(L, 2, last, "randint", size);
  } else {
    low = check_integer(L, 1, "randint", "low");
    high = check_integer(L, 2, "randint", "high");
    ndim = random_shape(L, 3, last, "randint", size);
  }
  if (high <= low)
    return luaL_error(L, "randint: argument #%d (high) expected a value "
                      "greater than low = %I, got %I", high_arg, low, high);
  sae_tensor *t = l_newtensor(L, SAE_INT64, ndim, size, 0);
  int64_t n = tensor_numel(t);
  uint64_t span = (uint64_t)high - (uint64_t)low;
  rng_fill_randint(tensor_i64(t), n, g->seed,
                   generator_reserve(g, (uint64_t)n), (int64_t)low, span);
  return 1;
}


/* sae.randperm(n, gen): a random permutation of 1 .. n (int64). */
static int l_randperm(lua_State *L) {
  sae_generator *g;
  pop_generator(L, &g);
  lua_Integer n = check_integer(L, 1, "randperm", "n");
  if (n < 0)
    return luaL_error(L, "randperm: argument #1 (n) expected an integer >= 0,"
                      " got %I", n);
  int64_t size[1] = { (int64_t)n };
  sae_tensor *t = l_newtensor(L, SAE_INT64, 1, size, 0);
  int64_t *out = tensor_i64(t);
  rng_randperm(out, n, g->seed, generator_reserve(g, (uint64_t)n));
  for (int64_t i = 0; i < n; i++) out[i] += 1;
  return 1;
}


/* Checks the weights of multinomial and returns the smallest count of
 * positive weights over the rows. */
static int64_t check_weights(lua_State *L, const float *w, int64_t rows,
                             int64_t k) {
  int64_t min_positive = k;
  for (int64_t r = 0; r < rows; r++) {
    double sum = 0.0;
    int64_t positive = 0;
    for (int64_t c = 0; c < k; c++) {
      float v = w[r * k + c];
      if (!(v >= 0.0f) || isinf(v))
        luaL_error(L, "multinomial: argument #1 (probs) expected nonnegative "
                   "finite weights, got %f in row %I, column %I",
                   (lua_Number)v, (lua_Integer)(r + 1), (lua_Integer)(c + 1));
      sum += v;
      positive += v > 0.0f;
    }
    if (!(sum > 0.0) || isinf(sum))
      luaL_error(L, "multinomial: argument #1 (probs) expected a positive "
                 "finite sum in every row, got %f in row %I", (lua_Number)sum,
                 (lua_Integer)(r + 1));
    if (positive < min_positive) min_positive = positive;
  }
  return min_positive;
}


/* sae.multinomial(probs, n, replacement, gen) samples 1-based int64
 * indices of shape [n] or [rows, n]. probs is 1-D [k] or 2-D [rows, k] of
 * nonnegative weights, which need not sum to 1. */
static int l_multinomial(lua_State *L) {
  sae_generator *g;
  int last = pop_generator(L, &g);
  sae_tensor *p = l_checkfloat(L, 1, "multinomial");
  if (p->ndim != 1 && p->ndim != 2)
    return l_shape_error(L, "multinomial", "argument #1 (probs) expected a "
                         "1-D or 2-D tensor", p, NULL);
  lua_Integer n = check_integer(L, 2, "multinomial", "n");
  if (n < 1)
    return luaL_error(L, "multinomial: argument #2 (n) expected an integer "
                      ">= 1, got %I", n);

  int replacement = 0;
  if (last >= 3 && !lua_isnil(L, 3)) {
    if (!lua_isboolean(L, 3))
      return luaL_error(L, "multinomial: argument #3 (replacement) expected a"
                        " boolean, got %s", luaL_typename(L, 3));
    replacement = lua_toboolean(L, 3);
  }
  if (last > 3)
    return luaL_error(L, "multinomial: argument #4 (generator) expected "
                      "sae.Generator, got %s", luaL_typename(L, 4));

  /* the generator stays on the stack, so the collector keeps it alive */
  int64_t rows = p->ndim == 2 ? p->size[0] : 1;
  int64_t k = p->size[p->ndim - 1];
  if (!tensor_is_contiguous(p)) {
    sae_tensor *c = l_newlike(L, p, 0);
    tensor_copy(c, p);
    p = c;
  }
  const float *w = tensor_f32(p);
  int64_t positive = check_weights(L, w, rows, k);
  if (!replacement && n > positive)
    return luaL_error(L, "multinomial: argument #2 (n) expected at most %I "
                      "samples without replacement (the fewest positive "
                      "weights in a row), got %I", (lua_Integer)positive, n);

  int64_t size[2] = { rows, (int64_t)n };
  int ndim = p->ndim;
  sae_tensor *t = l_newtensor(L, SAE_INT64, ndim, ndim == 2 ? size : size + 1,
                              0);
  uint64_t count = (uint64_t)rows * (uint64_t)(replacement ? n : k);
  sae_status st = rng_multinomial(tensor_i64(t), w, rows, k, n, replacement,
                                  g->seed, generator_reserve(g, count));
  if (st != SAE_OK) return l_status_error(L, "multinomial", st);
  int64_t *out = tensor_i64(t);
  for (int64_t i = 0, total = rows * n; i < total; i++) out[i] += 1;
  return 1;
}


/* Fills the float32 tensor at 1 in place with `fill`, going through a
 * contiguous temporary when the view is strided, so element i in
 * row-major order gets counter base + i either way. */
static void fill_in_place(lua_State *L, const char *fname, sae_generator *g,
                          float a, float b,
                          void (*fill)(float *, int64_t, uint64_t, uint64_t,
                                       float, float)) {
  sae_tensor *t = l_checkfloat(L, 1, fname);
  for (int d = 0; d < t->ndim; d++)
    if (t->stride[d] == 0 && t->size[d] > 1)
      luaL_error(L, "%s: argument #1 expected a tensor without expanded "
                 "(stride 0) dims, got stride 0 in dim %d", fname, d + 1);
  int64_t n = tensor_numel(t);
  uint64_t base = generator_reserve(g, (uint64_t)n);
  if (tensor_is_contiguous(t)) {
    fill(tensor_f32(t), n, g->seed, base, a, b);
  } else {
    sae_tensor *tmp = l_newlike(L, t, 0);
    fill(tensor_f32(tmp), n, g->seed, base, a, b);
    tensor_copy(t, tmp);
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
}


/* x:uniform_(a, b, gen): uniform in [a, b), defaults 0 and 1. */
static int l_uniform_(lua_State *L) {
  sae_generator *g;
  pop_generator(L, &g);
  l_checkfloat(L, 1, "uniform_");
  lua_Number a = luaL_optnumber(L, 2, 0.0), b = luaL_optnumber(L, 3, 1.0);
  if (!(a <= b) || isinf(a) || isinf(b))
    return luaL_error(L, "uniform_: arguments #2 and #3 expected finite "
                      "bounds with a <= b, got %f and %f", a, b);
  fill_in_place(L, "uniform_", g, (float)a, (float)b, rng_fill_uniform);
  return 1;
}


/* x:normal_(mean, std, gen): defaults 0 and 1. */
static int l_normal_(lua_State *L) {
  sae_generator *g;
  pop_generator(L, &g);
  l_checkfloat(L, 1, "normal_");
  lua_Number mean = luaL_optnumber(L, 2, 0.0), std = luaL_optnumber(L, 3, 1.0);
  if (!(std >= 0.0) || isinf(std))
    return luaL_error(L, "normal_: argument #3 (std) expected a finite value "
                      ">= 0, got %f", std);
  fill_in_place(L, "normal_", g, (float)mean, (float)std, rng_fill_normal);
  return 1;
}


/* ----------------------------------------------------------------- ranges */

/* Takes an optional trailing dtype string off the arguments; returns the
 * index of the last argument before it. */
static int pop_dtype(lua_State *L, const char *fname, sae_dtype *dtype) {
  int top = lua_gettop(L);
  *dtype = SAE_FLOAT32;
  if (top < 1 || lua_type(L, top) != LUA_TSTRING) return top;
  const char *s = lua_tostring(L, top);
  if (strcmp(s, "float32") == 0 || strcmp(s, "float") == 0)
    *dtype = SAE_FLOAT32;
  else if (strcmp(s, "int64") == 0 || strcmp(s, "long") == 0)
    *dtype = SAE_INT64;
  else
    luaL_error(L, "%s: argument #%d (dtype) expected \"float32\" or "
               "\"int64\", got \"%s\"", fname, top, s);
  return top - 1;
}


static lua_Number check_finite(lua_State *L, int arg, const char *fname,
                               const char *name) {
  if (lua_type(L, arg) != LUA_TNUMBER)
    luaL_error(L, "%s: argument #%d (%s) expected a number, got %s", fname,
               arg, name, luaL_typename(L, arg));
  lua_Number v = lua_tonumber(L, arg);
  if (isnan(v) || isinf(v))
    luaL_error(L, "%s: argument #%d (%s) expected a finite number, got %f",
               fname, arg, name, v);
  return v;
}


static int arange_step_error(lua_State *L, int nargs, lua_Number start,
                             lua_Number stop, lua_Number step) {
  if (nargs < 3)
    return luaL_error(L, "arange: argument #%d (end) expected a value >= "
                      "start = %f, got %f", nargs, start, stop);
  return luaL_error(L, "arange: argument #3 (step) expected a nonzero step "
                    "that leads from start = %f to end = %f, got %f", start,
                    stop, step);
}


static int arange_int64(lua_State *L, int first, int nargs) {
  lua_Integer start = 0, stop, step = 1;
  if (nargs == 1) {
    stop = check_integer(L, first, "arange", "end");
  } else {
    start = check_integer(L, first, "arange", "start");
    stop = check_integer(L, first + 1, "arange", "end");
    if (nargs == 3) step = check_integer(L, first + 2, "arange", "step");
  }
  if (step == 0 || (step > 0 && stop < start) || (step < 0 && stop > start))
    return arange_step_error(L, nargs, (lua_Number)start, (lua_Number)stop,
                             (lua_Number)step);
  __int128 span = (__int128)stop - start;
  __int128 count = (span + step + (step > 0 ? -1 : 1)) / step;
  if (count > INT64_MAX)
    return luaL_error(L, "arange: expected at most %I elements, got more",
                      (lua_Integer)INT64_MAX);
  int64_t size[1] = { (int64_t)count };
  sae_tensor *t = l_newtensor(L, SAE_INT64, 1, size, 0);
  int64_t *out = tensor_i64(t);
  for (int64_t i = 0; i < size[0]; i++) out[i] = start + i * step;
  return 1;
}


/* sae.arange(end), sae.arange(start, end [, step]) with end excluded and
 * an optional trailing dtype ("float32" by default, or "int64"). */
static int l_arange(lua_State *L) {
  sae_dtype dtype;
  int nargs = pop_dtype(L, "arange", &dtype);
  if (nargs < 1 || nargs > 3)
    return luaL_error(L, "arange: expected (end), (start, end) or (start, "
                      "end, step) and an optional dtype, got %d arguments",
                      nargs);
  if (dtype == SAE_INT64) return arange_int64(L, 1, nargs);
  double start = 0.0, stop, step = 1.0;
  if (nargs == 1) {
    stop = check_finite(L, 1, "arange", "end");
  } else {
    start = check_finite(L, 1, "arange", "start");
    stop = check_finite(L, 2, "arange", "end");
    if (nargs == 3) step = check_finite(L, 3, "arange", "step");
  }
  if (step == 0 || (step > 0 && stop < start) || (step < 0 && stop > start))
    return arange_step_error(L, nargs, start, stop, step);
  double count = ceil((stop - start) / step);
  if (count > 9.0e15)
    return luaL_error(L, "arange: expected at most 9e15 elements, got %f",
                      count);
  int64_t size[1] = { (int64_t)count };
  sae_tensor *t = l_newtensor(L, SAE_FLOAT32, 1, size, 0);
  float *out = tensor_f32(t);
  for (int64_t i = 0; i < size[0]; i++)
    out[i] = (float)(start + (double)i * step);
  return 1;
}


/* sae.linspace(start, stop, n): n evenly spaced float32 values with both
 * ends included. */
static int l_linspace(lua_State *L) {
  double start = check_finite(L, 1, "linspace", "start");
  double stop = check_finite(L, 2, "linspace", "stop");
  lua_Integer n = check_integer(L, 3, "linspace", "n");
  if (n < 0)
    return luaL_error(L, "linspace: argument #3 (n) expected an integer >= 0,"
                      " got %I", n);
  int64_t size[1] = { (int64_t)n };
  sae_tensor *t = l_newtensor(L, SAE_FLOAT32, 1, size, 0);
  float *out = tensor_f32(t);
  double step = n > 1 ? (stop - start) / (double)(n - 1) : 0.0;
  /* the first half counts from start and the second half back from stop,
   * so both ends are exact */
  for (int64_t i = 0; i < n; i++)
    out[i] = (float)(i < n / 2 ? start + (double)i * step
                               : stop - (double)(n - 1 - i) * step);
  if (n == 1) out[0] = (float)start;
  return 1;
}


/* sae.eye(n [, m] [, dtype]): ones on the diagonal of an n x m matrix. */
static int l_eye(lua_State *L) {
  sae_dtype dtype;
  int nargs = pop_dtype(L, "eye", &dtype);
  lua_Integer n = check_integer(L, 1, "eye", "n");
  lua_Integer m = nargs >= 2 ? check_integer(L, 2, "eye", "m") : n;
  if (n < 0 || m < 0)
    return luaL_error(L, "eye: arguments #1 and #2 (n, m) expected sizes >= 0,"
                      " got %I and %I", n, m);
  int64_t size[2] = { (int64_t)n, (int64_t)m };
  sae_tensor *t = l_newtensor(L, dtype, 2, size, 1);
  int64_t diag = n < m ? n : m;
  for (int64_t i = 0; i < diag; i++) {
    if (dtype == SAE_FLOAT32) tensor_f32(t)[i * m + i] = 1.0f;
    else tensor_i64(t)[i * m + i] = 1;
  }
  return 1;
}


/* ---------------------------------------------------------- registration */

static const luaL_Reg generator_methods[] = {
  { "manual_seed", l_generator_manual_seed }, { "seed", l_generator_seed },
  { "get_state", l_generator_get_state },
  { "set_state", l_generator_set_state },
  { NULL, NULL }
};


static const luaL_Reg random_methods[] = {
  { "uniform_", l_uniform_ }, { "normal_", l_normal_ },
  { NULL, NULL }
};


static const luaL_Reg random_functions[] = {
  { "rand", l_rand }, { "randn", l_randn }, { "randint", l_randint },
  { "randperm", l_randperm }, { "multinomial", l_multinomial },
  { "arange", l_arange }, { "linspace", l_linspace }, { "eye", l_eye },
  { "Generator", l_generator_new },
  { "default_generator", l_default_generator },
  { "manual_seed", l_manual_seed },
  { NULL, NULL }
};


void l_open_random(lua_State *L) {
  int module = lua_gettop(L);
  luaL_newmetatable(L, SAE_GENERATOR_MT);
  luaL_newlib(L, generator_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_generator_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  push_generator(L, DEFAULT_SEED);
  lua_setfield(L, LUA_REGISTRYINDEX, DEFAULT_KEY);
  l_register(L, module, random_methods, NULL, random_functions);
}
