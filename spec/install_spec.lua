-- Installs the library into a temporary prefix with `make install` and
-- loads it from there in a clean environment, as a user of the rock would.

describe("make install", function()
  it("installs every Lua module and core.so", function()
    local core_path = package.searchpath("sae.core", package.cpath)
    assert.is_not_nil(core_path)
    local build = core_path:match("^(.*)/sae/core%.so$")
    local prefix = os.tmpname()
    os.remove(prefix)

    local ok = os.execute(string.format(
      "make -s install PREFIX=%q BUILD=%q >/dev/null 2>&1", prefix, build))
    assert.is_true(ok)

    local preload = os.getenv("LD_PRELOAD")
    local command = string.format(
      "env -i PATH=/usr/bin:/bin %s LUA_PATH='%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua' "
        .. "LUA_CPATH='%s/lib/lua/5.4/?.so' lua5.4 -e %q 2>&1",
      preload and string.format("LD_PRELOAD=%q", preload) or "", prefix, prefix, prefix,
      'local sae = require "sae"; assert(sae.plot.features_in_2d and sae.toy.Model and sae.SAE); '
        .. 'print(package.searchpath("sae.plot.gnuplot", package.path) ~= nil)')
    local pipe = io.popen(command)
    local output = pipe:read("a")
    pipe:close()
    os.execute(string.format("rm -rf %q", prefix))
    assert.equal("true\n", output)
  end)
end)
