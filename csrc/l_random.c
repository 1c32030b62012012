/*
 * l_random.c: the sae.Generator userdata and the random and range
 * creation functions (rand, randn, randint, multinomial, randperm,
 * uniform_, normal_, arange, linspace, eye).
 *
 * Every draw reserves a counter range from a generator and computes value
 * i from (seed, base + i), so results do not depend on the thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "l_random.h"

/* Seed of the default generator when the module loads, so scripts that
 * never call manual_seed still repeat their numbers from run to run. */
#define DEFAULT_SEED 0

static const char DEFAULT_KEY[] = "sae.default_generator";


/* ------------------------------------------------------------- generator */

sae_generator *l_testgenerator(lua_State *L, int arg) {
  return luaL_testudata(L, arg, SAE_GENERATOR_MT);
}


static sae_generator *default_generator(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, DEFAULT_KEY);
  sae_generator *g = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return g;
}


sae_generator *l_optgenerator(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return default_generator(L);
  sae_generator *g = l_testgenerator(L, arg);
  if (g == NULL) {
    /* the calling function's name, as luaL_argerror finds it */
    lua_Debug ar;
    const char *fname = "?";
    if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.name)
      fname = ar.name;
    luaL_error(L, "%s: argument #%d (generator) expected sae.Generator or "
               "nil, got %s", fname, arg, luaL_typename(L, arg));
  }
  return g;
}


static sae_generator *l_checkgenerator(lua_State *L, int arg,
                                       const char *fname) {
  sae_generator *g = l_testgenerator(L, arg);
  if (g == NULL)
    luaL_error(L, "%s: argument #%d expected sae.Generator, got %s", fname,
               arg, luaL_typename(L, arg));
  return g;
}


static sae_generator *push_generator(lua_State *L, uint64_t seed) {
  sae_generator *g = lua_newuserdatauv(L, sizeof *g, 0);
  generator_init(g, seed);
  luaL_setmetatable(L, SAE_GENERATOR_MT);
  return g;
}


/* sae.Generator([seed]) */
static int l_generator_new(lua_State *L) {
  lua_Integer seed = luaL_optinteger(L, 1, DEFAULT_SEED);
  push_generator(L, (uint64_t)seed);
  return 1;
}


/* g:manual_seed(n) resets the seed and the counter; returns g. */
static int l_generator_manual_seed(lua_State *L) {
  sae_generator *g = l_checkgenerator(L, 1, "manual_seed");
  int isint;
  lua_Integer seed = lua_tointegerx(L, 2, &isint);
  if (!isint)
    return luaL_error(L, "manual_seed: argument #2 (seed) expected an "
                      "integer, got %s", luaL_typename(L, 2));
  generator_init(g, (uint64_t)seed);
  lua_settop(L, 1);
  return 1;
}


/* g:seed() returns the seed last set (as a Lua integer; seeds above
 * 2^63 come back negative, with the same bits). */
static int l_generator_seed(lua_State *L) {
  sae_generator *g = l_checkgenerator(L, 1, "seed");
  lua_pushinteger(L, (lua_Integer)g->seed);
  return 1;
}


/* g:get_state() returns { seed = s, counter = c }. */
static int l_generator_get_state(lua_State *L) {
  sae_generator *g = l_checkgenerator(L, 1, "get_state");
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)g->seed);
  lua_setfield(L, -2, "seed");
  lua_pushinteger(L, (lua_Integer)g->counter);
  lua_setfield(L, -2, "counter");
  return 1;
}


static uint64_t state_field(lua_State *L, const char *key) {
  int isint;
  lua_getfield(L, 2, key);
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  if (!isint)
    luaL_error(L, "set_state: argument #2 (state) expected an integer field "
               "'%s', got %s", key, luaL_typename(L, -1));
  lua_pop(L, 1);
  return (uint64_t)v;
}


/* g:set_state(state) restores a table from get_state; returns g. */
static int l_generator_set_state(lua_State *L) {
  sae_generator *g = l_checkgenerator(L, 1, "set_state");
  if (!lua_istable(L, 2))
    return luaL_error(L, "set_state: argument #2 (state) expected a table "
                      "from get_state(), got %s", luaL_typename(L, 2));
  uint64_t seed = state_field(L, "seed");
  uint64_t counter = state_field(L, "counter");
  g->seed = seed;
  g->counter = counter;
  lua_settop(L, 1);
  return 1;
}


static int l_generator_tostring(lua_State *L) {
  sae_generator *g = l_checkgenerator(L, 1, "tostring");
  lua_pushfstring(L, "sae.Generator(seed=%I, counter=%I)",
                  (lua_Integer)g->seed, (lua_Integer)g->counter);
  return 1;
}


/* sae.default_generator() */
static int l_default_generator(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, DEFAULT_KEY);
  return 1;
}


/* sae.manual_seed(n) seeds the default generator; returns it. */
static int l_manual_seed(lua_State *L) {
  lua_settop(L, 1);
  l_default_generator(L);
  lua_insert(L, 1);
  return l_generator_manual_seed(L);
}


/* ---------------------------------------------------------- registration */

static const luaL_Reg generator_methods[] = {
  { "manual_seed", l_generator_manual_seed }, { "seed", l_generator_seed },
  { "get_state", l_generator_get_state },
  { "set_state", l_generator_set_state },
  { NULL, NULL }
};


static const luaL_Reg random_functions[] = {
  { "Generator", l_generator_new },
  { "default_generator", l_default_generator },
  { "manual_seed", l_manual_seed },
  { NULL, NULL }
};


void l_open_random(lua_State *L) {
  int module = lua_gettop(L);
  luaL_newmetatable(L, SAE_GENERATOR_MT);
  luaL_newlib(L, generator_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_generator_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  push_generator(L, DEFAULT_SEED);
  lua_setfield(L, LUA_REGISTRYINDEX, DEFAULT_KEY);
  l_register(L, module, NULL, NULL, random_functions);
}
