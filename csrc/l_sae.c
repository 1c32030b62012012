/*
 * l_sae.c: Lua bindings (placeholder until the kernels land).
 */
#include "lsae.h"


void l_open_sae(lua_State *L) {
  (void)L;
}
