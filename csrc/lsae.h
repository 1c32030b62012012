/*
 * lsae.h: helpers shared by the Lua binding files (l_*.c). Only binding
 * files include lua.h; the kernels they call do not.
 *
 * Error messages follow one form, so users can grep for them:
 *   "<function>: argument #<n> (<name>) expected <what>, got <what>"
 * with both shapes for shape mismatches. They are raised with
 * luaL_error, so pcall catches them. luaL_error formats with
 * lua_pushfstring, which accepts %d %I %f %s %c %p but not %lld: pass 64-bit
 * integers as (lua_Integer) with %I. Never pass user text as the format.
 */
#ifndef SAE_LSAE_H
#define SAE_LSAE_H

#include <lua.h>
#include <lauxlib.h>

#include "tensor.h"

#define SAE_TENSOR_MT "sae.Tensor"

/* Checks that argument `arg` is a sae.Tensor; raises otherwise. */
sae_tensor *l_checktensor(lua_State *L, int arg, const char *fname);
/* Same, but also requires float32 (the dtype most kernels take). */
sae_tensor *l_checkfloat(lua_State *L, int arg, const char *fname);
/* Returns the tensor at `arg`, or NULL when it is not one. */
sae_tensor *l_testtensor(lua_State *L, int arg);

/* Pushes a new tensor with a fresh contiguous storage; raises on bad
 * sizes or out of memory. `zero` requests zero-filled memory. */
sae_tensor *l_newtensor(lua_State *L, sae_dtype dtype, int ndim,
                        const int64_t *size, int zero);
/* Tells the Lua collector that `nbytes` of tensor memory were just taken,
 * so garbage tensors are freed at the pace they are made. l_newtensor calls
 * it; call it after attaching any other large storage. */
void l_account(lua_State *L, size_t nbytes);
/* Pushes a tensor like `like` (dtype and shape), contiguous. */
sae_tensor *l_newlike(lua_State *L, const sae_tensor *like, int zero);
/* Pushes a new view of src's storage (same sizes, strides, offset);
 * the caller may then change the view's geometry. */
sae_tensor *l_pushview(lua_State *L, const sae_tensor *src);
/* Pushes a tensor with no storage yet (storage NULL, 0-d float32) and its
 * metatable set. The caller then attaches a storage it made, so that
 * storage cannot leak when pushing raises. */
sae_tensor *l_pushtensor(lua_State *L);

/* Reads a shape given either as numbers from `arg` up to `last`
 * (`last` = -1 for the stack top) or as one table at `arg`. Sizes must
 * be integers >= 0; with allow_infer, one -1 is allowed and returned as
 * -1. Returns the number of dims. */
int l_checkshape(lua_State *L, int arg, int last, const char *fname,
                 int allow_infer, int64_t *size);
/* Converts the 1-based (negative counts from the end) dim at `arg` to a
 * 0-based dim of a tensor with `ndim` dims (+ `extra` for unsqueeze). */
int l_checkdim(lua_State *L, int arg, int ndim, int extra, const char *fname);
/* Same for an optional dim; returns `def` when absent or nil. */
int l_optdim(lua_State *L, int arg, int ndim, const char *fname, int def);

/* Formats the shape of t into buf. */
const char *l_shapestr(const sae_tensor *t, char *buf, size_t buflen);
/* Raises "<fname>: <what> (shapes [..] and [..])". */
int l_shape_error(lua_State *L, const char *fname, const char *what,
                  const sae_tensor *a, const sae_tensor *b);
/* Raises for a failed sae_status from a kernel. */
int l_status_error(lua_State *L, const char *fname, sae_status status);

/* Adds C functions to the sae.Tensor methods table, the metatable
 * (metamethods such as __add) and the module table at index `module`.
 * Any of the lists may be NULL. */
void l_register(lua_State *L, int module, const luaL_Reg *methods,
                const luaL_Reg *metamethods, const luaL_Reg *functions);

/* Each binding file opens its part of the module; the module table is on
 * the top of the stack when these are called (see l_core.c). */
void l_open_tensor(lua_State *L);
void l_open_ops(lua_State *L);
void l_open_reduce(lua_State *L);
void l_open_random(lua_State *L);
void l_open_linalg(lua_State *L);
void l_open_nn(lua_State *L);
void l_open_io(lua_State *L);
void l_open_toy(lua_State *L);
void l_open_optim(lua_State *L);
void l_open_sae(lua_State *L);

#endif
