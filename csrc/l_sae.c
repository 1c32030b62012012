/*
 * l_sae.c: the sae.SAE userdata (sparse autoencoder) over the kernels of
 * sae.c. The parameters, gradients and Adam moments are exposed as
 * sae.Tensor views of the autoencoder's own buffers, kept in the
 * userdata's user value so field reads do not allocate.
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "lsae.h"
#include "sae.h"

#define SAE_SAE_MT "sae.SAE"


static sae_sae *check_sae(lua_State *L, const char *fname) {
  sae_sae *s = luaL_testudata(L, 1, SAE_SAE_MT);
  if (s == NULL)
    luaL_error(L, "%s: expected a sae.SAE as self, got %s", fname,
               luaL_typename(L, 1));
  if (s->params == NULL)
    luaL_error(L, "%s: the autoencoder has been freed", fname);
  return s;
}


/* Pushes a float32 view of `storage` with the given shape at `offset`. */
static void push_buffer_view(lua_State *L, sae_storage *storage,
                             int64_t offset, int ndim, const int64_t *size) {
  sae_tensor *t = l_pushtensor(L);
  t->storage = storage;
  storage_retain(storage);
  t->dtype = SAE_FLOAT32;
  t->ndim = ndim;
  t->offset = offset;
  memcpy(t->size, size, (size_t)ndim * sizeof(int64_t));
  shape_contiguous_strides(ndim, t->size, t->stride);
}


/* Sets fields W_enc, W_dec, b_enc, b_dec of the table on top to views of
 * `storage` laid out like the parameters. */
static void set_param_views(lua_State *L, const sae_sae *s,
                            sae_storage *storage) {
  int64_t I = s->n_instances, D = s->d_in, H = s->d_sae;
  int64_t enc[3] = { I, D, H }, dec[3] = { I, H, D };
  int64_t bh[2] = { I, H }, bd[2] = { I, D };
  push_buffer_view(L, storage, s->off_W_enc, 3, enc);
  lua_setfield(L, -2, "W_enc");
  if (!s->tied) {
    push_buffer_view(L, storage, s->off_W_dec, 3, dec);
    lua_setfield(L, -2, "W_dec");
  }
  push_buffer_view(L, storage, s->off_b_enc, 2, bh);
  lua_setfield(L, -2, "b_enc");
  push_buffer_view(L, storage, s->off_b_dec, 2, bd);
  lua_setfield(L, -2, "b_dec");
}


/* Reads integer field `name` of the config table at index 1. */
static int64_t cfg_int(lua_State *L, const char *name, int has_default,
                       int64_t def, int64_t min) {
  int type = lua_getfield(L, 1, name);
  int64_t v = def;
  if (type == LUA_TNIL) {
    if (!has_default)
      luaL_error(L, "SAE: argument #1 (%s) expected an integer >= %I, got nil",
                 name, (lua_Integer)min);
  } else {
    int isint;
    v = lua_tointegerx(L, -1, &isint);
    if (!isint || v < min) {
      const char *got = lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1)
                                                       : luaL_typename(L, -1);
      luaL_error(L, "SAE: argument #1 (%s) expected an integer >= %I, got %s",
                 name, (lua_Integer)min, got);
    }
  }
  lua_pop(L, 1);
  return v;
}


/* sae.SAE{n_instances, n_input_ae, n_hidden_ae, l1_coeff = 0.5,
 *         tied_weights = false, seed = 0} */
static int l_sae_new(lua_State *L) {
  if (!lua_istable(L, 1))
    return luaL_error(L, "SAE: argument #1 (config) expected a table, got %s",
                      luaL_typename(L, 1));
  int64_t I = cfg_int(L, "n_instances", 0, 0, 1);
  int64_t D = cfg_int(L, "n_input_ae", 0, 0, 1);
  int64_t H = cfg_int(L, "n_hidden_ae", 0, 0, 1);
  int64_t seed = cfg_int(L, "seed", 1, 0, INT64_MIN);
  double l1 = 0.5;
  int type = lua_getfield(L, 1, "l1_coeff");
  if (type != LUA_TNIL) {
    if (type != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0.0) ||
        !isfinite(lua_tonumber(L, -1)))
      return luaL_error(L, "SAE: argument #1 (l1_coeff) expected a finite "
                        "number >= 0, got %s", type == LUA_TNUMBER
                        ? lua_tostring(L, -1) : luaL_typename(L, -1));
    l1 = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  type = lua_getfield(L, 1, "tied_weights");
  if (type != LUA_TNIL && type != LUA_TBOOLEAN)
    return luaL_error(L, "SAE: argument #1 (tied_weights) expected a boolean, "
                      "got %s", luaL_typename(L, -1));
  int tied = lua_toboolean(L, -1);
  lua_pop(L, 1);

  sae_sae *s = lua_newuserdatauv(L, sizeof *s, 1);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, SAE_SAE_MT);
  sae_status st = sae_init(s, I, D, H, (float)l1, tied, (uint64_t)seed);
  if (st == SAE_ERANGE)
    return luaL_error(L, "SAE: sizes %I x %I x %I are too large",
                      (lua_Integer)I, (lua_Integer)D, (lua_Integer)H);
  if (st != SAE_OK) return l_status_error(L, "SAE", st);

  /* user value: views of the parameters, gradients and Adam moments */
  lua_createtable(L, 0, 12);
  set_param_views(L, s, s->params);
  lua_createtable(L, 0, 4);
  set_param_views(L, s, s->grad);
  lua_setfield(L, -2, "grad");
  lua_createtable(L, 0, 4);
  set_param_views(L, s, s->adam_m);
  lua_setfield(L, -2, "adam_m");
  lua_createtable(L, 0, 4);
  set_param_views(L, s, s->adam_v);
  lua_setfield(L, -2, "adam_v");
  lua_pushinteger(L, (lua_Integer)I);
  lua_setfield(L, -2, "n_instances");
  lua_pushinteger(L, (lua_Integer)D);
  lua_setfield(L, -2, "n_input_ae");
  lua_pushinteger(L, (lua_Integer)H);
  lua_setfield(L, -2, "n_hidden_ae");
  lua_pushnumber(L, l1);
  lua_setfield(L, -2, "l1_coeff");
  lua_pushboolean(L, tied);
  lua_setfield(L, -2, "tied_weights");
  lua_setiuservalue(L, -2, 1);
  return 1;
}


/* Checks h [B, I, d_in] float32 at stack index 2 and reserves scratch for
 * B rows; returns the tensor and its strides in hs. */
static sae_tensor *check_h(lua_State *L, sae_sae *s, const char *fname,
                           int64_t *hs) {
  sae_tensor *h = l_testtensor(L, 2);
  if (h == NULL || h->storage == NULL)
    luaL_error(L, "%s: argument #1 (h) expected a float32 sae.Tensor of shape "
               "[batch, %I, %I], got %s", fname, (lua_Integer)s->n_instances,
               (lua_Integer)s->d_in, luaL_typename(L, 2));
  if (h->dtype != SAE_FLOAT32)
    luaL_error(L, "%s: argument #1 (h) expected a float32 tensor, got %s",
               fname, sae_dtype_name(h->dtype));
  if (h->ndim != 3 || h->size[1] != s->n_instances || h->size[2] != s->d_in) {
    char got[160];
    luaL_error(L, "%s: argument #1 (h) expected shape [batch, %I, %I], got %s",
               fname, (lua_Integer)s->n_instances, (lua_Integer)s->d_in,
               l_shapestr(h, got, sizeof got));
  }
  if (h->size[0] < 1)
    luaL_error(L, "%s: argument #1 (h) expected a batch of at least 1 row, "
               "got 0", fname);
  sae_status st = sae_reserve(s, h->size[0]);
  if (st != SAE_OK) l_status_error(L, fname, st);
  for (int d = 0; d < 3; d++) hs[d] = h->stride[d];
  return h;
}


/* Pushes a new tensor holding a copy of `n` floats of scratch. */
static void push_copy(lua_State *L, const float *src, int ndim,
                      const int64_t *size) {
  sae_tensor *t = l_newtensor(L, SAE_FLOAT32, ndim, size, 0);
  memcpy(tensor_f32(t), src, (size_t)tensor_numel(t) * sizeof(float));
}


/* sae:forward(h) -> {l1_loss, l2_loss, loss, acts, h_reconstructed} */
static int l_forward(lua_State *L) {
  sae_sae *s = check_sae(L, "forward");
  int64_t hs[3];
  sae_tensor *h = check_h(L, s, "forward", hs);
  int64_t B = h->size[0], I = s->n_instances;
  double loss = sae_pass(s, tensor_f32(h), hs, B, 0);
  int64_t bi[2] = { B, I }, bih[3] = { B, I, s->d_sae }, bid[3] = { B, I, s->d_in };
  lua_createtable(L, 0, 5);
  push_copy(L, s->l1, 2, bi);
  lua_setfield(L, -2, "l1_loss");
  push_copy(L, s->l2, 2, bi);
  lua_setfield(L, -2, "l2_loss");
  lua_pushnumber(L, loss);
  lua_setfield(L, -2, "loss");
  push_copy(L, s->acts, 3, bih);
  lua_setfield(L, -2, "acts");
  push_copy(L, s->rec, 3, bid);
  lua_setfield(L, -2, "h_reconstructed");
  return 1;
}


/* sae:backward(h) -> loss; accumulates the gradients into sae.grad */
static int l_backward(lua_State *L) {
  sae_sae *s = check_sae(L, "backward");
  int64_t hs[3];
  sae_tensor *h = check_h(L, s, "backward", hs);
  lua_pushnumber(L, sae_pass(s, tensor_f32(h), hs, h->size[0], 1));
  return 1;
}


/* sae:loss_parts() -> l1 and l2 summed over instances and averaged over
 * the batch of the last pass (numbers, for logging without allocation) */
static int l_loss_parts(lua_State *L) {
  sae_sae *s = check_sae(L, "loss_parts");
  double l1 = 0.0, l2 = 0.0;
  int64_t n = s->batch * s->n_instances;
  for (int64_t p = 0; p < n; p++) {
    l1 += s->l1[p];
    l2 += s->l2[p];
  }
  double B = s->batch > 0 ? (double)s->batch : 1.0;
  lua_pushnumber(L, l1 / B);
  lua_pushnumber(L, l2 / B);
  return 2;
}


/* sae:frac_active([out]) -> [I, H] fraction of the last batch where each
 * neuron fired; writes into `out` when given (no allocation). */
static int l_frac_active(lua_State *L) {
  sae_sae *s = check_sae(L, "frac_active");
  int64_t size[2] = { s->n_instances, s->d_sae };
  if (s->frac_active == NULL)
    return luaL_error(L, "frac_active: no forward or backward pass yet");
  if (lua_isnoneornil(L, 2)) {
    push_copy(L, s->frac_active, 2, size);
    return 1;
  }
  sae_tensor *out = l_checkfloat(L, 2, "frac_active");
  if (!shape_equal(out->ndim, out->size, 2, size) || !tensor_is_contiguous(out)) {
    char got[160];
    return luaL_error(L, "frac_active: argument #1 (out) expected a contiguous "
                      "tensor of shape [%I, %I], got %s",
                      (lua_Integer)size[0], (lua_Integer)size[1],
                      l_shapestr(out, got, sizeof got));
  }
  memcpy(tensor_f32(out), s->frac_active,
         (size_t)(size[0] * size[1]) * sizeof(float));
  lua_settop(L, 2);
  return 1;
}


/* sae:mark_active(last, step): last[i, k] = step (int64 [I, H]) for the
 * neurons that fired in the last pass; the training loop finds dead
 * neurons from it without keeping a window of frac_active tensors. */
static int l_mark_active(lua_State *L) {
  sae_sae *s = check_sae(L, "mark_active");
  sae_tensor *last = l_checktensor(L, 2, "mark_active");
  lua_Integer step = luaL_checkinteger(L, 3);
  int64_t size[2] = { s->n_instances, s->d_sae };
  if (last->dtype != SAE_INT64 || !tensor_is_contiguous(last) ||
      !shape_equal(last->ndim, last->size, 2, size)) {
    char got[160];
    return luaL_error(L, "mark_active: argument #1 (last) expected a contiguous "
                      "int64 tensor of shape [%I, %I], got %s %s",
                      (lua_Integer)size[0], (lua_Integer)size[1],
                      sae_dtype_name(last->dtype),
                      l_shapestr(last, got, sizeof got));
  }
  if (s->frac_active == NULL)
    return luaL_error(L, "mark_active: no forward or backward pass yet");
  int64_t *l = tensor_i64(last);
  for (int64_t p = 0; p < size[0] * size[1]; p++)
    if (s->frac_active[p] > 0.0f) l[p] = step;
  return 0;
}


static int l_zero_grad(lua_State *L) {
  sae_zero_grad(check_sae(L, "zero_grad"));
  return 0;
}


static int l_normalize_decoder(lua_State *L) {
  sae_normalize_decoder(check_sae(L, "normalize_decoder"));
  return 0;
}


/* sae:adam_step(lr, beta1, beta2, eps, weight_decay) */
static int l_adam_step(lua_State *L) {
  sae_sae *s = check_sae(L, "adam_step");
  float lr = (float)luaL_checknumber(L, 2);
  float b1 = (float)luaL_optnumber(L, 3, 0.9);
  float b2 = (float)luaL_optnumber(L, 4, 0.999);
  float eps = (float)luaL_optnumber(L, 5, 1e-8);
  float wd = (float)luaL_optnumber(L, 6, 0.0);
  sae_adam_step(s, lr, b1, b2, eps, wd);
  return 0;
}


static int l_adam_reset(lua_State *L) {
  sae_adam_reset(check_sae(L, "adam_reset"));
  return 0;
}


/* sae:adam_steps([t]) -> the step count of the Adam state (sets it when
 * given, for restoring a saved state) */
static int l_adam_steps(lua_State *L) {
  sae_sae *s = check_sae(L, "adam_steps");
  if (!lua_isnoneornil(L, 2)) s->adam_t = luaL_checkinteger(L, 2);
  lua_pushinteger(L, (lua_Integer)s->adam_t);
  return 1;
}


/* sae:set_path("auto" | "loops" | "generic" | "blas"): which kernels run,
 * for specs and benchmarks that compare them. "generic" is the loop path
 * without its compile-time specialisations. */
static int l_set_path(lua_State *L) {
  sae_sae *s = check_sae(L, "set_path");
  static const char *const names[] = { "auto", "loops", "generic", "blas", NULL };
  static const sae_path paths[] = { SAE_PATH_AUTO, SAE_PATH_LOOPS,
                                    SAE_PATH_LOOPS, SAE_PATH_BLAS };
  int option = luaL_checkoption(L, 2, NULL, names);
  s->path = paths[option];
  s->fast_small = option != 2;
  s->cap_batch = 0;   /* reallocate the scratch on the next pass */
  return 0;
}


/* Reads the dead mask from frac_active_window [..., I, H] (argument 3):
 * dead where the sum over the leading dims is below 1e-8. */
static void dead_mask(lua_State *L, const sae_sae *s, unsigned char *dead) {
  const int64_t I = s->n_instances, H = s->d_sae;
  sae_tensor *w = l_checkfloat(L, 3, "resample_neurons");
  if (w->ndim < 2 || w->size[w->ndim - 2] != I || w->size[w->ndim - 1] != H) {
    char got[160];
    luaL_error(L, "resample_neurons: argument #2 (frac_active_window) expected "
               "shape [window, %I, %I], got %s", (lua_Integer)I,
               (lua_Integer)H, l_shapestr(w, got, sizeof got));
  }
  int nlead = w->ndim - 2;
  int64_t nrows = shape_numel(nlead, w->size);
  const float *base = tensor_f32(w);
  int64_t idx[SAE_MAX_DIMS] = { 0 };
  for (int64_t p = 0; p < I * H; p++) dead[p] = 1;
  for (int64_t r = 0; r < nrows; r++) {
    int64_t off = 0;
    for (int d = 0; d < nlead; d++) off += idx[d] * w->stride[d];
    for (int64_t i = 0; i < I; i++)
      for (int64_t k = 0; k < H; k++) {
        float v = base[off + i * w->stride[nlead] + k * w->stride[nlead + 1]];
        if (fabsf(v) >= 1e-8f) dead[i * H + k] = 0;
      }
    for (int d = nlead - 1; d >= 0; d--) {
      if (++idx[d] < w->size[d]) break;
      idx[d] = 0;
    }
  }
}


/* sae:resample_neurons(h, frac_active_window, scale, method) -> dead mask
 * (int64 [I, H], 1 where dead), title */
static int l_resample_neurons(lua_State *L) {
  sae_sae *s = check_sae(L, "resample_neurons");
  int64_t hs[3];
  sae_tensor *h = check_h(L, s, "resample_neurons", hs);
  float scale = (float)luaL_optnumber(L, 4, 0.2);
  const char *name = luaL_optstring(L, 5, "simple");
  int method;
  if (strcmp(name, "simple") == 0) method = SAE_RESAMPLE_SIMPLE;
  else if (strcmp(name, "anthropic") == 0) method = SAE_RESAMPLE_ANTHROPIC;
  else
    return luaL_error(L, "resample_neurons: argument #4 (method) expected "
                      "\"simple\" or \"anthropic\", got %s", name);
  int64_t I = s->n_instances, H = s->d_sae, size[2] = { I, H };

  sae_tensor *mask = l_newtensor(L, SAE_INT64, 2, size, 1);
  unsigned char *dead = lua_newuserdatauv(L, (size_t)(I * H), 0);
  dead_mask(L, s, dead);
  sae_resample(s, dead, (sae_resample_method)method, scale, tensor_f32(h), hs,
               h->size[0]);
  int64_t n_dead = 0;
  for (int64_t p = 0; p < I * H; p++) {
    tensor_i64(mask)[p] = dead[p];
    n_dead += dead[p];
  }
  lua_pop(L, 1);
  lua_pushfstring(L, "resampling %I/%I neurons", (lua_Integer)n_dead,
                  (lua_Integer)(I * H));
  return 2;
}


/* sae:scratch_bytes() -> bytes held by the per-batch scratch */
static int l_scratch_bytes(lua_State *L) {
  sae_sae *s = check_sae(L, "scratch_bytes");
  int64_t I = s->n_instances, D = s->d_in, H = s->d_sae, B = s->cap_batch;
  int64_t n = 3 * B * I * D + B * I * H + 2 * B * I + I * H +
              s->tacc_len * s->nthreads;
  if (s->dpre) n += B * I * H;
  lua_pushinteger(L, (lua_Integer)(s->cap_batch ? n * 4 : 0));
  return 1;
}


static int l_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  sae_sae *s = luaL_checkudata(L, 1, SAE_SAE_MT);
  if (s->params == NULL) return 0;
  lua_getiuservalue(L, 1, 1);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}


static int l_gc(lua_State *L) {
  sae_sae *s = luaL_checkudata(L, 1, SAE_SAE_MT);
  sae_free(s);
  return 0;
}


static int l_tostring(lua_State *L) {
  sae_sae *s = luaL_checkudata(L, 1, SAE_SAE_MT);
  lua_pushfstring(L, "sae.SAE(n_instances=%I, n_input_ae=%I, n_hidden_ae=%I, "
                  "l1_coeff=%f, tied_weights=%s)",
                  (lua_Integer)s->n_instances, (lua_Integer)s->d_in,
                  (lua_Integer)s->d_sae, (lua_Number)s->l1_coeff,
                  s->tied ? "true" : "false");
  return 1;
}


static double wall_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}


/* SAE_bench_products(B, d_in, d_sae, reps) -> best seconds of the five
 * sgemm calls of one step, for the benchmark's throughput ratio */
static int l_bench_products(lua_State *L) {
  lua_Integer B = luaL_checkinteger(L, 1), D = luaL_checkinteger(L, 2);
  lua_Integer H = luaL_checkinteger(L, 3), reps = luaL_optinteger(L, 4, 5);
  if (B < 1 || D < 1 || H < 1 || B > INT32_MAX || D > INT32_MAX ||
      H > INT32_MAX || reps < 1 || reps > 1000000)
    return luaL_error(L, "SAE_bench_products: sizes and reps must be positive");
  double best;
  sae_status st = sae_bench_products(B, D, H, (int)reps, wall_seconds, &best);
  if (st != SAE_OK) return l_status_error(L, "SAE_bench_products", st);
  lua_pushnumber(L, best);
  return 1;
}


static const luaL_Reg sae_methods[] = {
  { "forward", l_forward }, { "backward", l_backward },
  { "loss_parts", l_loss_parts }, { "frac_active", l_frac_active },
  { "zero_grad", l_zero_grad }, { "normalize_decoder", l_normalize_decoder },
  { "adam_step", l_adam_step }, { "adam_reset", l_adam_reset },
  { "adam_steps", l_adam_steps }, { "set_path", l_set_path },
  { "resample_neurons", l_resample_neurons },
  { "scratch_bytes", l_scratch_bytes }, { "mark_active", l_mark_active },
  { NULL, NULL }
};


void l_open_sae(lua_State *L) {
  int module = lua_gettop(L);
  luaL_newmetatable(L, SAE_SAE_MT);
  lua_newtable(L);
  luaL_setfuncs(L, sae_methods, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__methods");
  lua_pushcclosure(L, l_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushstring(L, SAE_SAE_MT);
  lua_setfield(L, -2, "__name");
  lua_setfield(L, module, "SAE_mt");
  lua_pushcfunction(L, l_sae_new);
  lua_setfield(L, module, "SAE_new");
  lua_pushcfunction(L, l_bench_products);
  lua_setfield(L, module, "SAE_bench_products");
}
