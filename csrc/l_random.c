/*
 * l_random.c: Lua bindings (placeholder until the kernels land).
 */
#include "lsae.h"


void l_open_random(lua_State *L) {
  (void)L;
}
