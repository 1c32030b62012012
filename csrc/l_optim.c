/*
 * l_optim.c: Lua bindings (placeholder until the kernels land).
 */
#include "lsae.h"


void l_open_optim(lua_State *L) {
  (void)L;
}
