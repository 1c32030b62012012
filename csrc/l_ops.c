/*
 * l_ops.c: Lua bindings (placeholder until the kernels land).
 */
#include "lsae.h"


void l_open_ops(lua_State *L) {
  (void)L;
}
