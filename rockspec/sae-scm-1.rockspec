rockspec_format = "3.0"
package = "sae"
version = "scm-1"
source = {
  url = "git+file:///dev/null",
}
description = {
  summary = "Toy models of superposition and sparse autoencoders, with a C tensor core",
  detailed = [[
    A float32/int64 tensor type backed by OpenBLAS, toy models of
    superposition, sparse autoencoders and their training loops, for
    Lua 5.4 scripts and the REPL.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4",
}
external_dependencies = {
  -- Only the library is checked: Debian installs cblas.h under the
  -- multiarch include directory, which the compiler searches by default
  -- but luarocks 3.8's header check does not.
  OPENBLAS = {
    library = "openblas",
  },
}
build = {
  type = "make",
  -- build-rock/ keeps this build apart from a `make` build in build/.
  build_variables = {
    BUILD = "build-rock",
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    OPENBLAS_INCDIR = "$(OPENBLAS_INCDIR)",
    OPENBLAS_LIBDIR = "$(OPENBLAS_LIBDIR)",
  },
  install_variables = {
    BUILD = "build-rock",
    PREFIX = "$(PREFIX)",
    LUADIR = "$(LUADIR)",
    LIBDIR = "$(LIBDIR)",
  },
}
test = {
  type = "busted",
}
