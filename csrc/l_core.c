/*
 * l_core.c: luaopen_sae_core, the only exported symbol of sae/core.so.
 * Each binding file adds its part of the module.
 */
#include "lsae.h"


int luaopen_sae_core(lua_State *L) {
  lua_newtable(L);
  l_open_tensor(L);   /* first: creates the sae.Tensor metatable */
  l_open_ops(L);
  l_open_reduce(L);
  l_open_random(L);
  l_open_linalg(L);
  l_open_nn(L);
  l_open_io(L);
  l_open_toy(L);
  l_open_optim(L);
  l_open_sae(L);
  return 1;
}
