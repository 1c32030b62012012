/*
 * l_toy.c: Lua bindings (placeholder until the kernels land).
 */
#include "lsae.h"


void l_open_toy(lua_State *L) {
  (void)L;
}
