/*
 * l_reduce.c: Lua bindings (placeholder until the kernels land).
 */
#include "lsae.h"


void l_open_reduce(lua_State *L) {
  (void)L;
}
