/*
 * l_random.h: the sae.Generator userdata, for binding files that draw
 * random numbers.
 */
#ifndef SAE_L_RANDOM_H
#define SAE_L_RANDOM_H

#include "lsae.h"
#include "random.h"

#define SAE_GENERATOR_MT "sae.Generator"

/* Returns the sae.Generator at `arg`, or the default generator when the
 * argument is absent or nil; raises for any other value. The default
 * generator lives in the registry, so the pointer stays valid. */
sae_generator *l_optgenerator(lua_State *L, int arg);

/* Returns the sae.Generator at `arg`, or NULL when it is not one. */
sae_generator *l_testgenerator(lua_State *L, int arg);

#endif
