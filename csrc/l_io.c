/*
 * l_io.c: Lua bindings for files: sae.save and sae.load (safetensors),
 * sae.load_npy and x:save_npy (NumPy .npy).
 *
 * Writers store float32 and int64 as they are. Readers give float32 for
 * F32, F16, BF16, F64 and BOOL data, and int64 for signed integers up to
 * 64 bits and unsigned ones up to 32 bits.
 *
 * Failures to open, create or write a file are expected at run time, so
 * they return nil plus a message as io.open does. A malformed file or a
 * bad argument raises an error naming the function and the file.
 */
#include <string.h>

#include "json.h"
#include "lsae.h"
#include "npy.h"
#include "safetensors.h"

#define IO_READER_MT "sae.io.reader"

/* A file being read, boxed in a userdata so that its mapping and parsed
 * header are released by __gc if a Lua error interrupts loading. */
typedef struct reader_box {
  enum { READER_CLOSED, READER_SAFETENSORS, READER_NPY } state;
  union {
    st_file st;
    npy_file npy;
  } u;
} reader_box;


static void reader_close(reader_box *box) {
  if (box->state == READER_SAFETENSORS) st_close(&box->u.st);
  else if (box->state == READER_NPY) npy_close(&box->u.npy);
  box->state = READER_CLOSED;
}


static int reader_gc(lua_State *L) {
  reader_close(lua_touserdata(L, 1));
  return 0;
}


static reader_box *push_reader(lua_State *L) {
  reader_box *box = lua_newuserdatauv(L, sizeof *box, 0);
  box->state = READER_CLOSED;
  luaL_setmetatable(L, IO_READER_MT);
  return box;
}


/* The type of the value at idx for messages: its __name (sae.Tensor)
 * when it has one. */
static const char *type_name(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  int type = luaL_getmetafield(L, idx, "__name");
  if (type == LUA_TSTRING) {
    const char *name = lua_tostring(L, -1);
    lua_pop(L, 1);    /* the metatable keeps the string alive */
    return name;
  }
  if (type != LUA_TNIL) lua_pop(L, 1);
  return luaL_typename(L, idx);
}


static const char *check_path(lua_State *L, int arg, const char *fname) {
  size_t len;
  if (lua_type(L, arg) != LUA_TSTRING)
    luaL_error(L, "%s: argument #%d (path) expected a string, got %s", fname,
               arg, type_name(L, arg));
  const char *path = lua_tolstring(L, arg, &len);
  if (strlen(path) != len)
    luaL_error(L, "%s: argument #%d (path) expected a path, got a string "
               "with a NUL byte", fname, arg);
  return path;
}


/* Returns nil and "<path>: <message>" for a file that cannot be opened,
 * or raises for anything else that failed. */
static int open_failed(lua_State *L, const char *fname, const char *path,
                       sae_status st, const char *err) {
  if (st == SAE_EIO) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, err);
    return 2;
  }
  if (st == SAE_ENOMEM)
    return luaL_error(L, "%s: %s: out of memory", fname, path);
  return luaL_error(L, "%s: %s: %s", fname, path, err);
}


/* ------------------------------------------------------- safetensors */

static int l_load(lua_State *L) {
  char err[400];
  const char *path = check_path(L, 1, "load");
  reader_box *box = push_reader(L);
  sae_status st = st_open(&box->u.st, path, err, sizeof err);
  if (st != SAE_OK) return open_failed(L, "load", path, st, err);
  box->state = READER_SAFETENSORS;
  st_file *f = &box->u.st;

  lua_createtable(L, 0, f->ntensors);
  for (int i = 0; i < f->ntensors; i++) {
    lua_pushlstring(L, f->tensors[i].name, f->tensors[i].name_len);
    sae_tensor *t = l_pushtensor(L);
    if (st_tensor(f, i, t) != SAE_OK)
      return luaL_error(L, "load: %s: out of memory reading tensor '%s'",
                        path, f->tensors[i].name);
    lua_rawset(L, -3);
  }
  lua_createtable(L, 0, f->nmeta);
  for (int i = 0; i < f->nmeta; i++) {
    lua_pushlstring(L, f->meta[i].key, f->meta[i].key_len);
    lua_pushlstring(L, f->meta[i].value, f->meta[i].value_len);
    lua_rawset(L, -3);
  }
  reader_close(box);
  return 2;
}


/* Collects the name = tensor pairs of the table at `arg` into items. */
static int collect_tensors(lua_State *L, int arg, st_item **items_out) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    n++;
    lua_pop(L, 1);
  }
  st_item *items = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *items,
                                     0);
  int i = 0;
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      return luaL_error(L, "save: argument #%d (tensors) expected string "
                        "names as keys, got a %s key", arg,
                        luaL_typename(L, -2));
    size_t len;
    const char *name = lua_tolstring(L, -2, &len);
    sae_tensor *t = l_testtensor(L, -1);
    if (t == NULL || t->storage == NULL)
      return luaL_error(L, "save: argument #%d (tensors) expected an "
                        "sae.Tensor for '%s', got %s", arg, name,
                        t == NULL ? type_name(L, -1) : "a closed tensor");
    if (!json_utf8_valid(name, len))
      return luaL_error(L, "save: argument #%d (tensors) expected UTF-8 "
                        "names, got an invalid name", arg);
    if (strcmp(name, "__metadata__") == 0)
      return luaL_error(L, "save: argument #%d (tensors) expected tensor "
                        "names, got the reserved name '__metadata__'", arg);
    items[i].name = name;
    items[i].name_len = len;
    items[i].tensor = t;
    i++;
    lua_pop(L, 1);
  }
  *items_out = items;
  return n;
}


/* Collects the key = value strings of the table at `arg` (or none for
 * nil) into pairs. */
static int collect_metadata(lua_State *L, int arg, st_pair **pairs_out) {
  int n = 0;
  if (lua_isnoneornil(L, arg)) {
    *pairs_out = NULL;
    return 0;
  }
  if (!lua_istable(L, arg))
    return luaL_error(L, "save: argument #%d (metadata) expected a table of "
                      "strings, got %s", arg, type_name(L, arg));
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    n++;
    lua_pop(L, 1);
  }
  st_pair *pairs = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *pairs,
                                     0);
  int i = 0;
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      return luaL_error(L, "save: argument #%d (metadata) expected string "
                        "keys, got a %s key", arg, luaL_typename(L, -2));
    const char *key = lua_tolstring(L, -2, &pairs[i].key_len);
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "save: argument #%d (metadata) expected a string "
                        "value for '%s', got %s", arg, key,
                        type_name(L, -1));
    pairs[i].key = key;
    pairs[i].value = lua_tolstring(L, -1, &pairs[i].value_len);
    if (!json_utf8_valid(key, pairs[i].key_len) ||
        !json_utf8_valid(pairs[i].value, pairs[i].value_len))
      return luaL_error(L, "save: argument #%d (metadata) expected UTF-8 "
                        "strings, got invalid UTF-8 in '%s'", arg, key);
    i++;
    lua_pop(L, 1);
  }
  *pairs_out = pairs;
  return n;
}


static int l_save(lua_State *L) {
  char err[400];
  const char *path = check_path(L, 1, "save");
  if (!lua_istable(L, 2))
    return luaL_error(L, "save: argument #2 (tensors) expected a table of "
                      "name = sae.Tensor, got %s", type_name(L, 2));
  lua_settop(L, 3);
  st_item *items = NULL;
  st_pair *meta = NULL;
  int n = collect_tensors(L, 2, &items);
  int nmeta = collect_metadata(L, 3, &meta);
  sae_status st = st_save(path, items, n, meta, nmeta, err, sizeof err);
  if (st != SAE_OK) return open_failed(L, "save", path, st, err);
  lua_pushboolean(L, 1);
  return 1;
}


/* ---------------------------------------------------------------- npy */

static int l_load_npy(lua_State *L) {
  char err[400];
  const char *path = check_path(L, 1, "load_npy");
  reader_box *box = push_reader(L);
  sae_status st = npy_open(&box->u.npy, path, err, sizeof err);
  if (st != SAE_OK) return open_failed(L, "load_npy", path, st, err);
  box->state = READER_NPY;
  sae_tensor *t = l_pushtensor(L);
  if (npy_tensor(&box->u.npy, t) != SAE_OK)
    return luaL_error(L, "load_npy: %s: out of memory", path);
  reader_close(box);
  return 1;
}


static int l_save_npy(lua_State *L) {
  char err[400];
  sae_tensor *t = l_checktensor(L, 1, "save_npy");
  const char *path = check_path(L, 2, "save_npy");
  sae_status st = npy_save(path, t, err, sizeof err);
  if (st != SAE_OK) return open_failed(L, "save_npy", path, st, err);
  lua_pushboolean(L, 1);
  return 1;
}


/* ------------------------------------------------------- registration */

static const luaL_Reg io_methods[] = {
  { "save_npy", l_save_npy },
  { NULL, NULL }
};


static const luaL_Reg io_functions[] = {
  { "save", l_save }, { "load", l_load }, { "load_npy", l_load_npy },
  { "save_npy", l_save_npy },
  { NULL, NULL }
};


void l_open_io(lua_State *L) {
  luaL_newmetatable(L, IO_READER_MT);
  lua_pushcfunction(L, reader_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  l_register(L, -1, io_methods, NULL, io_functions);
}
