/*
 * l_toy.c: the sae.ToyModel userdata (toy models of superposition), in
 * the table sae.core._toy. lua/sae/toy.lua builds sae.toy on top of it.
 *
 * The userdata contains a toy_model. Its parameters, gradients,
 * feature_probability and importance are sae.Tensor views of the model's
 * storages. They are created once and cached in the userdata's user value,
 * so model.W is the same tensor object on every access and stays valid (it
 * retains the storage) after the model is collected.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsae.h"
#include "toy.h"

#define TOY_MT "sae.ToyModel"

typedef struct l_toy {
  toy_model m;
  int ready;             /* toy_init succeeded */
  double *inst_loss;     /* [I], the per-instance losses of the last pass */
} l_toy;

static const char *const kind_names[] = { "linear", "neuron", "computation",
                                          NULL };


static l_toy *check_toy(lua_State *L, int arg, const char *fname) {
  l_toy *t = luaL_testudata(L, arg, TOY_MT);
  if (t == NULL)
    luaL_error(L, "%s: argument #%d (self) expected sae.ToyModel, got %s",
               fname, arg, luaL_typename(L, arg));
  if (!t->ready)
    luaL_error(L, "%s: argument #%d (self) is an uninitialised model", fname,
               arg);
  return t;
}


static int toy_gc(lua_State *L) {
  l_toy *t = luaL_checkudata(L, 1, TOY_MT);
  toy_free(&t->m);
  free(t->inst_loss);
  t->inst_loss = NULL;
  t->ready = 0;
  return 0;
}


/* ------------------------------------------------------------ creation */

/* Reads integer field `name` of the config table at index 1. */
static int64_t cfg_integer(lua_State *L, const char *name, int required,
                           int64_t def, int64_t min) {
  int type = lua_getfield(L, 1, name);
  int64_t v = def;
  if (type == LUA_TNIL) {
    if (required)
      luaL_error(L, "Model: argument #1 (%s) expected an integer >= %I, got "
                 "nil", name, (lua_Integer)min);
  } else {
    int isint;
    lua_Integer x = lua_tointegerx(L, -1, &isint);
    if (!isint)
      luaL_error(L, "Model: argument #1 (%s) expected an integer >= %I, got %s",
                 name, (lua_Integer)min, type == LUA_TNUMBER
                 ? lua_tostring(L, -1) : luaL_typename(L, -1));
    if (x < min)
      luaL_error(L, "Model: argument #1 (%s) expected an integer >= %I, got %I",
                 name, (lua_Integer)min, x);
    v = (int64_t)x;
  }
  lua_pop(L, 1);
  return v;
}


/* Fills dst [I,F] from field `name` of the config (a number or a tensor
 * broadcastable to [I,F]); leaves dst alone when the field is nil. */
static void cfg_broadcast(lua_State *L, const char *name, toy_model *m,
                          float *dst) {
  int64_t I = m->n_instances, F = m->n_features;
  int type = lua_getfield(L, 1, name);
  if (type == LUA_TNUMBER) {
    float v = (float)lua_tonumber(L, -1);
    for (int64_t k = 0; k < I * F; k++) dst[k] = v;
  } else if (type != LUA_TNIL) {
    sae_tensor *src = l_testtensor(L, -1);
    if (src == NULL || src->storage == NULL)
      luaL_error(L, "Model: argument #1 (%s) expected a number or a tensor "
                 "broadcastable to [%I, %I], got %s", name, (lua_Integer)I,
                 (lua_Integer)F, luaL_typename(L, -1));
    int64_t want[2] = { I, F }, size[SAE_MAX_DIMS];
    int ndim;
    if (shape_broadcast(src->ndim, src->size, 2, want, &ndim, size) != SAE_OK
        || !shape_equal(ndim, size, 2, want)) {
      char buf[160];
      luaL_error(L, "Model: argument #1 (%s) expected a shape broadcastable to "
                 "[%I, %I], got %s", name, (lua_Integer)I, (lua_Integer)F,
                 l_shapestr(src, buf, sizeof buf));
    }
    sae_tensor view = *src, out;
    view.ndim = 2;
    view.size[0] = I;
    view.size[1] = F;
    tensor_broadcast_strides(src, 2, want, view.stride);
    memset(&out, 0, sizeof out);
    out.storage = m->buffers;
    out.dtype = SAE_FLOAT32;
    out.ndim = 2;
    out.offset = dst - (float *)m->buffers->data;
    out.size[0] = I;
    out.size[1] = F;
    out.stride[0] = F;
    out.stride[1] = 1;
    tensor_copy(&out, &view);
  }
  lua_pop(L, 1);
}


/* Raises unless every feature probability is in [0, 1], and those of
 * anticorrelated pairs in [0, 0.5]. */
static void check_probabilities(lua_State *L, const toy_model *m) {
  int64_t I = m->n_instances, F = m->n_features;
  int64_t anti0 = 2 * m->n_correlated_pairs;
  int64_t anti1 = anti0 + 2 * m->n_anticorrelated_pairs;
  for (int64_t i = 0; i < I; i++)
    for (int64_t f = 0; f < F; f++) {
      float p = m->feature_probability[i * F + f];
      char value[32];
      snprintf(value, sizeof value, "%.7g", (double)p);
      if (!(p >= 0.0f && p <= 1.0f))
        luaL_error(L, "Model: argument #1 (feature_probability) expected "
                   "values in [0, 1], got %s at instance %I, feature %I",
                   value, (lua_Integer)(i + 1), (lua_Integer)(f + 1));
      if (f >= anti0 && f < anti1 && p > 0.5f)
        luaL_error(L, "Model: argument #1 (feature_probability) expected "
                   "values <= 0.5 for anticorrelated pairs (one of the pair "
                   "is present with probability 2p), got %s at instance %I, "
                   "feature %I", value, (lua_Integer)(i + 1),
                   (lua_Integer)(f + 1));
    }
  for (int64_t k = 0; k < I * F; k++)
    if (!isfinite(m->importance[k]))
      luaL_error(L, "Model: argument #1 (importance) expected finite values, "
                 "got %s", m->importance[k] != m->importance[k] ? "nan" : "inf");
}


/* Model{ n_instances =, n_features =, n_hidden =, kind = "linear",
 * n_correlated_pairs = 0, n_anticorrelated_pairs = 0,
 * feature_probability = 1, importance = 1, seed = 0 } */
static int l_model_new(lua_State *L) {
  if (!lua_istable(L, 1))
    return luaL_error(L, "Model: argument #1 (config) expected a table, got %s",
                      luaL_typename(L, 1));
  int type = lua_getfield(L, 1, "kind");
  int kind = 0;
  if (type != LUA_TNIL) {
    const char *s = lua_tostring(L, -1);
    for (kind = 0; kind_names[kind] != NULL; kind++)
      if (type == LUA_TSTRING && strcmp(s, kind_names[kind]) == 0) break;
    if (kind_names[kind] == NULL)
      return luaL_error(L, "Model: argument #1 (kind) expected \"linear\", "
                        "\"neuron\" or \"computation\", got %s",
                        type == LUA_TSTRING ? s : luaL_typename(L, -1));
  }
  lua_pop(L, 1);

  int64_t I = cfg_integer(L, "n_instances", 1, 0, 1);
  int64_t F = cfg_integer(L, "n_features", 1, 0, 1);
  int64_t H = cfg_integer(L, "n_hidden", 1, 0, 1);
  int64_t nc = cfg_integer(L, "n_correlated_pairs", 0, 0, 0);
  int64_t na = cfg_integer(L, "n_anticorrelated_pairs", 0, 0, 0);
  if (2 * (nc + na) > F)
    return luaL_error(L, "Model: argument #1 (n_correlated_pairs) expected "
                      "2 * (n_correlated_pairs + n_anticorrelated_pairs) <= "
                      "n_features, got 2 * (%I + %I) > %I", (lua_Integer)nc,
                      (lua_Integer)na, (lua_Integer)F);
  if (I > (1 << 20) || F > (1 << 20) || H > (1 << 20) || I * F > (1 << 26)
      || I * H * F > (1 << 28))
    return luaL_error(L, "Model: argument #1 (config) expected at most 2^28 "
                      "weights, got n_instances %I, n_features %I, n_hidden %I",
                      (lua_Integer)I, (lua_Integer)F, (lua_Integer)H);
  type = lua_getfield(L, 1, "seed");
  int isint = 1;
  lua_Integer seed = type == LUA_TNIL ? 0 : lua_tointegerx(L, -1, &isint);
  if (!isint)
    return luaL_error(L, "Model: argument #1 (seed) expected an integer, got %s",
                      luaL_typename(L, -1));
  lua_pop(L, 1);

  l_toy *t = lua_newuserdatauv(L, sizeof *t, 1);
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, TOY_MT);
  if (toy_init(&t->m, (toy_kind)kind, I, F, H, (uint64_t)seed) != SAE_OK)
    return luaL_error(L, "Model: out of memory");
  t->inst_loss = calloc((size_t)I, sizeof(double));
  if (t->inst_loss == NULL) return luaL_error(L, "Model: out of memory");
  t->ready = 1;
  t->m.n_correlated_pairs = nc;
  t->m.n_anticorrelated_pairs = na;
  cfg_broadcast(L, "feature_probability", &t->m, t->m.feature_probability);
  cfg_broadcast(L, "importance", &t->m, t->m.importance);
  check_probabilities(L, &t->m);
  toy_reset_parameters(&t->m);

  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  return 1;
}


/* ------------------------------------------------------------- views */

/* Pushes a contiguous view of `storage` at element `offset`. */
static void push_view(lua_State *L, sae_storage *storage, int64_t offset,
                      int ndim, int64_t d0, int64_t d1, int64_t d2) {
  sae_tensor v;
  memset(&v, 0, sizeof v);
  v.storage = storage;
  v.dtype = SAE_FLOAT32;
  v.ndim = ndim;
  v.offset = offset;
  v.size[0] = d0;
  v.size[1] = d1;
  v.size[2] = d2;
  shape_contiguous_strides(ndim, v.size, v.stride);
  l_pushview(L, &v);
}


/* Fills the user-value table at `cache` with the parameter views. */
static void build_views(lua_State *L, l_toy *t, int cache) {
  toy_model *m = &t->m;
  int64_t I = m->n_instances, F = m->n_features, H = m->n_hidden;
  int64_t nw = I * H * F, b_off = m->n_params - I * F;
  int comp = m->kind == TOY_COMPUTATION;

  lua_newtable(L);                               /* grad */
  for (int g = 0; g < 2; g++) {
    sae_storage *s = g == 0 ? m->params : m->grads;
    int dst = g == 0 ? cache : lua_gettop(L);
    if (g == 1) dst = lua_absindex(L, -1);
    push_view(L, s, 0, 3, I, H, F);
    lua_setfield(L, dst, comp ? "W1" : "W");
    if (comp) {
      push_view(L, s, nw, 3, I, F, H);
      lua_setfield(L, dst, "W2");
    }
    push_view(L, s, b_off, 2, I, F, 0);
    lua_setfield(L, dst, "b_final");
  }
  lua_setfield(L, cache, "grad");
  push_view(L, m->buffers, 0, 2, I, F, 0);
  lua_setfield(L, cache, "feature_probability");
  push_view(L, m->buffers, I * F, 2, I, F, 0);
  lua_setfield(L, cache, "importance");
  lua_pushboolean(L, 1);
  lua_setfield(L, cache, "__views");
}


/* Pushes the cache table of the model at index 1, building it on first
 * use. */
static int push_cache(lua_State *L, l_toy *t) {
  lua_getiuservalue(L, 1, 1);
  int cache = lua_gettop(L);
  if (lua_getfield(L, cache, "__views") == LUA_TNIL) {
    lua_pop(L, 1);
    build_views(L, t, cache);
  } else {
    lua_pop(L, 1);
  }
  return cache;
}


static int toy_index(lua_State *L) {
  l_toy *t = check_toy(L, 1, "ToyModel.__index");
  const char *key = lua_tostring(L, 2);
  /* methods first (set by l_open_toy and by lua/sae/toy.lua) */
  lua_getfield(L, lua_upvalueindex(1), key ? key : "");
  if (!lua_isnil(L, -1) || key == NULL) return 1;
  lua_pop(L, 1);
  toy_model *m = &t->m;
  if (strcmp(key, "kind") == 0) lua_pushstring(L, kind_names[m->kind]);
  else if (strcmp(key, "n_instances") == 0) lua_pushinteger(L, m->n_instances);
  else if (strcmp(key, "n_features") == 0) lua_pushinteger(L, m->n_features);
  else if (strcmp(key, "n_hidden") == 0) lua_pushinteger(L, m->n_hidden);
  else if (strcmp(key, "n_correlated_pairs") == 0)
    lua_pushinteger(L, m->n_correlated_pairs);
  else if (strcmp(key, "n_anticorrelated_pairs") == 0)
    lua_pushinteger(L, m->n_anticorrelated_pairs);
  else if (strcmp(key, "seed") == 0)
    lua_pushinteger(L, (lua_Integer)m->generator.seed);
  else {
    int cache = push_cache(L, t);
    lua_getfield(L, cache, key);
  }
  return 1;
}


static int toy_newindex(lua_State *L) {
  l_toy *t = check_toy(L, 1, "ToyModel.__newindex");
  static const char *const fixed[] = {
    "W", "W1", "W2", "b_final", "grad", "feature_probability", "importance",
    "kind", "n_instances", "n_features", "n_hidden", "n_correlated_pairs",
    "n_anticorrelated_pairs", "seed", "__views", NULL
  };
  const char *key = luaL_checkstring(L, 2);
  for (int k = 0; fixed[k] != NULL; k++)
    if (strcmp(key, fixed[k]) == 0)
      return luaL_error(L, "ToyModel: field %s is read-only (copy values into "
                        "a tensor with model.%s:copy_(t))", key, key);
  int cache = push_cache(L, t);
  lua_pushvalue(L, 3);
  lua_setfield(L, cache, key);
  return 0;
}


/* ------------------------------------------------------------- passes */

/* Returns contiguous data of x checked to be [B, I, F] float32; pushes a
 * contiguous copy when x is strided (so the caller's stack grows). */
static const float *check_batch(lua_State *L, int arg, const char *fname,
                                const toy_model *m, int64_t last_dim,
                                int64_t *batch) {
  sae_tensor *x = l_checkfloat(L, arg, fname);
  if (x->ndim != 3 || x->size[1] != m->n_instances || x->size[2] != last_dim) {
    char buf[160];
    luaL_error(L, "%s: argument #%d expected shape [batch, %I, %I], got %s",
               fname, arg, (lua_Integer)m->n_instances, (lua_Integer)last_dim,
               l_shapestr(x, buf, sizeof buf));
  }
  *batch = x->size[0];
  if (tensor_is_contiguous(x)) return tensor_f32(x);
  sae_tensor *c = l_newlike(L, x, 0);
  tensor_copy(c, x);
  return tensor_f32(c);
}


static int64_t check_batch_size(lua_State *L, int arg, const char *fname) {
  int isint;
  lua_Integer b = lua_tointegerx(L, arg, &isint);
  if (!isint || b < 1 || b > ((lua_Integer)1 << 31))
    return luaL_error(L, "%s: argument #%d (batch_size) expected an integer in "
                      "[1, 2^31], got %s", fname, arg, isint
                      ? lua_tostring(L, arg) : luaL_typename(L, arg));
  return (int64_t)b;
}


static int l_generate_batch(lua_State *L) {
  l_toy *t = check_toy(L, 1, "generate_batch");
  int64_t batch = check_batch_size(L, 2, "generate_batch");
  int64_t size[3] = { batch, t->m.n_instances, t->m.n_features };
  sae_tensor *out = l_newtensor(L, SAE_FLOAT32, 3, size, 0);
  toy_generate_batch(&t->m, tensor_f32(out), batch);
  return 1;
}


static int l_hidden(lua_State *L) {
  l_toy *t = check_toy(L, 1, "hidden");
  int64_t batch;
  const float *x = check_batch(L, 2, "hidden", &t->m, t->m.n_features, &batch);
  int64_t size[3] = { batch, t->m.n_instances, t->m.n_hidden };
  sae_tensor *h = l_newtensor(L, SAE_FLOAT32, 3, size, 0);
  toy_forward(&t->m, x, batch, tensor_f32(h), NULL);
  return 1;
}


static int l_forward(lua_State *L) {
  l_toy *t = check_toy(L, 1, "forward");
  int64_t batch;
  const float *x = check_batch(L, 2, "forward", &t->m, t->m.n_features, &batch);
  int64_t size[3] = { batch, t->m.n_instances, t->m.n_features };
  sae_tensor *out = l_newtensor(L, SAE_FLOAT32, 3, size, 0);
  toy_forward(&t->m, x, batch, NULL, tensor_f32(out));
  return 1;
}


/* Pushes the per-instance losses of the last pass as a tensor [I]. */
static void push_inst_loss(lua_State *L, l_toy *t) {
  int64_t size[1] = { t->m.n_instances };
  sae_tensor *v = l_newtensor(L, SAE_FLOAT32, 1, size, 0);
  float *p = tensor_f32(v);
  for (int64_t i = 0; i < size[0]; i++) p[i] = (float)t->inst_loss[i];
}


/* loss(out, x) -> total, per-instance losses [I] */
static int l_loss(lua_State *L) {
  l_toy *t = check_toy(L, 1, "loss");
  int64_t b_out, b_x;
  const float *out = check_batch(L, 2, "loss", &t->m, t->m.n_features, &b_out);
  const float *x = check_batch(L, 3, "loss", &t->m, t->m.n_features, &b_x);
  if (b_out != b_x)
    return l_shape_error(L, "loss", "arguments #2 (out) and #3 (x) expected "
                         "the same shape", l_checktensor(L, 2, "loss"),
                         l_checktensor(L, 3, "loss"));
  double total = toy_loss(&t->m, out, x, b_x, t->inst_loss);
  lua_pushnumber(L, total);
  push_inst_loss(L, t);
  return 2;
}


static int l_zero_grad(lua_State *L) {
  l_toy *t = check_toy(L, 1, "zero_grad");
  memset(t->m.grads->data, 0, (size_t)t->m.n_params * sizeof(float));
  return 0;
}


static double run_backward(lua_State *L, l_toy *t, const float *x,
                           int64_t batch, const char *fname) {
  double loss = toy_backward(&t->m, x, batch, t->inst_loss);
  if (loss < 0.0) luaL_error(L, "%s: out of memory", fname);
  return loss;
}


/* backward(x) -> loss: forward, loss and gradients (added to model.grad). */
static int l_backward(lua_State *L) {
  l_toy *t = check_toy(L, 1, "backward");
  int64_t batch;
  const float *x = check_batch(L, 2, "backward", &t->m, t->m.n_features,
                               &batch);
  if (batch == 0)
    return l_shape_error(L, "backward", "argument #2 expected a non-empty "
                         "batch", l_checktensor(L, 2, "backward"), NULL);
  lua_pushnumber(L, run_backward(L, t, x, batch, "backward"));
  return 1;
}


/* train_step(batch_size) -> loss: zero_grad, then backward on a fresh
 * batch from the model's generator, drawn inside the pass (the batch
 * generate_batch would have returned). The optimizer step is left to
 * the caller. */
static int l_train_step(lua_State *L) {
  l_toy *t = check_toy(L, 1, "train_step");
  int64_t batch = check_batch_size(L, 2, "train_step");
  memset(t->m.grads->data, 0, (size_t)t->m.n_params * sizeof(float));
  double loss = toy_train_backward(&t->m, batch, t->inst_loss);
  if (loss < 0.0) return luaL_error(L, "train_step: out of memory");
  lua_pushnumber(L, loss);
  return 1;
}


/* instance_losses() -> [I] per-instance losses of the last loss,
 * backward or train_step. */
static int l_instance_losses(lua_State *L) {
  push_inst_loss(L, check_toy(L, 1, "instance_losses"));
  return 1;
}


/* parameters() -> { { name =, param =, grad = }, ... } */
static int l_parameters(lua_State *L) {
  l_toy *t = check_toy(L, 1, "parameters");
  int cache = push_cache(L, t);
  const char *linear[] = { "W", "b_final", NULL };
  const char *comp[] = { "W1", "W2", "b_final", NULL };
  const char *const *names = t->m.kind == TOY_COMPUTATION ? comp : linear;
  lua_getfield(L, cache, "grad");
  int grad = lua_gettop(L);
  lua_newtable(L);
  for (int k = 0; names[k] != NULL; k++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, names[k]);
    lua_setfield(L, -2, "name");
    lua_getfield(L, cache, names[k]);
    lua_setfield(L, -2, "param");
    lua_getfield(L, grad, names[k]);
    lua_setfield(L, -2, "grad");
    lua_seti(L, -2, k + 1);
  }
  return 1;
}


/* reset_parameters([seed]): new Xavier-normal weights and zero b_final;
 * with a seed, the model's generator restarts from it first. */
static int l_reset_parameters(lua_State *L) {
  l_toy *t = check_toy(L, 1, "reset_parameters");
  if (!lua_isnoneornil(L, 2))
    generator_init(&t->m.generator, (uint64_t)luaL_checkinteger(L, 2));
  toy_reset_parameters(&t->m);
  return 0;
}


/* manual_seed(seed): restarts the model's batch generator. */
static int l_manual_seed(lua_State *L) {
  l_toy *t = check_toy(L, 1, "manual_seed");
  int isint;
  lua_Integer seed = lua_tointegerx(L, 2, &isint);
  if (!isint)
    return luaL_error(L, "manual_seed: argument #2 (seed) expected an integer, "
                      "got %s", luaL_typename(L, 2));
  generator_init(&t->m.generator, (uint64_t)seed);
  return 0;
}


static int toy_tostring(lua_State *L) {
  l_toy *t = check_toy(L, 1, "tostring");
  lua_pushfstring(L, "sae.toy.Model(%s, n_instances=%I, n_features=%I, "
                  "n_hidden=%I)", kind_names[t->m.kind],
                  (lua_Integer)t->m.n_instances, (lua_Integer)t->m.n_features,
                  (lua_Integer)t->m.n_hidden);
  return 1;
}


/* dimensionality(W [I,H,F]) -> dims [I,F], dims_per_feature [I], computed
 * in double over any strides. */
static int l_dimensionality(lua_State *L) {
  sae_tensor *w = l_checkfloat(L, 1, "dimensionality");
  if (w->ndim != 3) {
    char buf[160];
    return luaL_error(L, "dimensionality: argument #1 (W) expected a tensor of "
                      "shape [instances, hidden, features], got shape %s",
                      l_shapestr(w, buf, sizeof buf));
  }
  int64_t I = w->size[0], H = w->size[1], F = w->size[2];
  int64_t si = w->stride[0], sh = w->stride[1], sf = w->stride[2];
  const float *W = tensor_f32(w);

  int64_t dsize[2] = { I, F }, psize[1] = { I };
  float *dims = tensor_f32(l_newtensor(L, SAE_FLOAT32, 2, dsize, 0));
  float *per = tensor_f32(l_newtensor(L, SAE_FLOAT32, 1, psize, 0));
  double *norm2 = malloc((size_t)(F > 0 ? F : 1) * sizeof(double));
  if (norm2 == NULL) return luaL_error(L, "dimensionality: out of memory");

  for (int64_t i = 0; i < I; i++) {
    const float *Wi = W + i * si;
    double frob = 0.0;
    for (int64_t f = 0; f < F; f++) {
      double s = 0.0;
      for (int64_t k = 0; k < H; k++) {
        double v = Wi[k * sh + f * sf];
        s += v * v;
      }
      norm2[f] = s;
      frob += s;
    }

    for (int64_t f = 0; f < F; f++) {
      double denom = 0.0;
      if (norm2[f] > 0.0) {
        for (int64_t j = 0; j < F; j++) {
          double dot = 0.0;
          for (int64_t k = 0; k < H; k++)
            dot += (double)Wi[k * sh + f * sf] * (double)Wi[k * sh + j * sf];
          denom += dot * dot / norm2[f];
        }
      }
      dims[i * F + f] = denom > 0.0 ? (float)(norm2[f] / denom) : 0.0f;
    }
    per[i] = frob > 0.0 ? (float)((double)H / frob) : (float)INFINITY;
  }
  free(norm2);
  return 2;
}


void l_open_toy(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"generate_batch", l_generate_batch},
    {"hidden", l_hidden},
    {"forward", l_forward},
    {"loss", l_loss},
    {"zero_grad", l_zero_grad},
    {"backward", l_backward},
    {"train_step", l_train_step},
    {"instance_losses", l_instance_losses},
    {"parameters", l_parameters},
    {"reset_parameters", l_reset_parameters},
    {"manual_seed", l_manual_seed},
    {NULL, NULL}
  };
  lua_newtable(L);                     /* sae.core._toy */
  lua_pushcfunction(L, l_model_new);
  lua_setfield(L, -2, "Model");
  lua_pushcfunction(L, l_dimensionality);
  lua_setfield(L, -2, "dimensionality");
  luaL_newlib(L, methods);
  int methods_table = lua_gettop(L);

  luaL_newmetatable(L, TOY_MT);
  lua_pushvalue(L, methods_table);
  lua_pushcclosure(L, toy_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, toy_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, toy_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, toy_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "sae.ToyModel");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);

  lua_setfield(L, -2, "methods");      /* _toy.methods, for toy.lua */
  lua_setfield(L, -2, "_toy");
}
