/*
 * l_io.c: Lua bindings (placeholder until the kernels land).
 */
#include "lsae.h"


void l_open_io(lua_State *L) {
  (void)L;
}
