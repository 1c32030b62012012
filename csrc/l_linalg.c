/*
 * l_linalg.c: Lua bindings (placeholder until the kernels land).
 */
#include "lsae.h"


void l_open_linalg(lua_State *L) {
  (void)L;
}
