/*
 * l_optim.c: the C kernels behind sae.optim and sae.train, in the table
 * sae.core._optim. The optimizer objects themselves live in
 * lua/sae/optim.lua; these functions check their tensors and run one
 * update over a whole parameter tensor.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "lsae.h"
#include "optim.h"


/* Checks that argument `arg` is a contiguous float32 tensor with n
 * elements (n < 0: any count) and returns its data. */
static float *check_flat(lua_State *L, int arg, const char *fname,
                         const char *name, int64_t n) {
  sae_tensor *t = l_checkfloat(L, arg, fname);
  if (!tensor_is_contiguous(t))
    luaL_error(L, "%s: argument #%d (%s) expected a contiguous tensor, got a "
               "strided view", fname, arg, name);
  if (n >= 0 && tensor_numel(t) != n) {
    char buf[160];
    luaL_error(L, "%s: argument #%d (%s) expected %I elements, got shape %s",
               fname, arg, name, (lua_Integer)n, l_shapestr(t, buf, sizeof buf));
  }
  return tensor_f32(t);
}


/* adam_update(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps,
 *             weight_decay, step) */
static int l_adam_update(lua_State *L) {
  const char *fname = "adam_update";
  sae_tensor *p = l_checkfloat(L, 1, fname);
  int64_t n = tensor_numel(p);
  float *param = check_flat(L, 1, fname, "param", n);
  const float *grad = check_flat(L, 2, fname, "grad", n);
  float *exp_avg = check_flat(L, 3, fname, "exp_avg", n);
  float *exp_avg_sq = check_flat(L, 4, fname, "exp_avg_sq", n);
  adam_hparams h;
  h.lr = luaL_checknumber(L, 5);
  h.beta1 = luaL_checknumber(L, 6);
  h.beta2 = luaL_checknumber(L, 7);
  h.eps = luaL_checknumber(L, 8);
  h.weight_decay = luaL_checknumber(L, 9);
  lua_Integer step = luaL_checkinteger(L, 10);
  if (step < 1)
    return luaL_error(L, "%s: argument #10 (step) expected an integer >= 1, "
                      "got %I", fname, step);
  adam_update(param, grad, exp_avg, exp_avg_sq, n, &h, (int64_t)step);
  return 0;
}


/* sgd_update(param, grad, buf_or_nil, lr, momentum, weight_decay,
 *            first_step) */
static int l_sgd_update(lua_State *L) {
  const char *fname = "sgd_update";
  sae_tensor *p = l_checkfloat(L, 1, fname);
  int64_t n = tensor_numel(p);
  float *param = check_flat(L, 1, fname, "param", n);
  const float *grad = check_flat(L, 2, fname, "grad", n);
  float *buf = lua_isnil(L, 3) ? NULL : check_flat(L, 3, fname, "buf", n);
  double lr = luaL_checknumber(L, 4);
  double momentum = luaL_checknumber(L, 5);
  double weight_decay = luaL_checknumber(L, 6);
  int first = lua_toboolean(L, 7);
  sgd_update(param, grad, buf, n, lr, momentum, weight_decay, first);
  return 0;
}


/* masked_zero(t, mask): sets t to 0 wherever the float mask, broadcast
 * to t's shape, is nonzero. */
static int l_masked_zero(lua_State *L) {
  const char *fname = "reset_state";
  sae_tensor *t = l_checkfloat(L, 1, fname);
  sae_tensor *mask = l_checkfloat(L, 2, fname);
  int ndim;
  int64_t size[SAE_MAX_DIMS];
  if (shape_broadcast(t->ndim, t->size, mask->ndim, mask->size, &ndim, size)
        != SAE_OK || !shape_equal(ndim, size, t->ndim, t->size))
    return l_shape_error(L, fname, "argument #2 (mask) expected a shape that "
                         "broadcasts to the state's shape", mask, t);
  int64_t st[SAE_MAX_DIMS], sm[SAE_MAX_DIMS];
  tensor_broadcast_strides(t, ndim, size, st);
  tensor_broadcast_strides(mask, ndim, size, sm);
  const int64_t *strides[2] = { st, sm };
  sae_iter it;
  iter_init(&it, ndim, size, 2, strides);
  if (it.empty) return 0;
  float *dst = tensor_f32(t);
  const float *m = tensor_f32(mask);
  do {
    for (int64_t i = 0; i < it.inner; i++)
      if (m[it.ptr[1] + i * it.step[1]] != 0.0f)
        dst[it.ptr[0] + i * it.step[0]] = 0.0f;
  } while (iter_next(&it));
  return 0;
}


/* isatty() -> true when the process's standard output is a terminal. */
static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty(fileno(stdout)));
  return 1;
}


/* now() -> seconds on a monotonic clock, for rates and timings. */
static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + 1e-9 * (lua_Number)ts.tv_nsec);
  return 1;
}


void l_open_optim(lua_State *L) {
  static const luaL_Reg functions[] = {
    {"adam_update", l_adam_update},
    {"sgd_update", l_sgd_update},
    {"masked_zero", l_masked_zero},
    {"isatty", l_isatty},
    {"now", l_now},
    {NULL, NULL}
  };
  luaL_newlib(L, functions);
  lua_setfield(L, -2, "_optim");
}
