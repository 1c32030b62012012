/*
 * l_nn.c: Lua bindings (placeholder until the kernels land).
 */
#include "lsae.h"


void l_open_nn(lua_State *L) {
  (void)L;
}
