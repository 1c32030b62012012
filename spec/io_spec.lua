local sae = require "sae"
local helpers = require "helpers"

local expected = dofile("spec/fixtures/io_expected.lua")

-- A fresh path in the system's temporary directory for each file.
local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p " .. tmpdir))
local counter = 0
local function tmppath(suffix)
  counter = counter + 1
  return string.format("%s/f%d%s", tmpdir, counter, suffix or "")
end

local function write_file(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Values of x in C order, whatever its strides.
local function values(x)
  if x:dim() == 0 then return { x:item() } end
  return (helpers.flatten(x:totable()))
end

-- Compares bitwise-meaningful values: NaN equals NaN, and the sign of
-- zero counts.
local function same_value(a, b)
  if a ~= a then return b ~= b end
  if a == 0 and b == 0 then return 1 / a == 1 / b end
  return a == b and math.type(a) == math.type(b)
end

local function assert_matches(want, x, label)
  assert.equal(want.dtype, x:dtype(), label)
  assert.same(want.shape, x:shape(), label)
  local got = values(x)
  assert.equal(#want.values, #got, label)
  for i, v in ipairs(want.values) do
    if want.dtype == "float32" then v = math.tointeger(v) and v * 1.0 or v end
    assert.is_true(same_value(v, got[i]),
      string.format("%s[%d]: expected %s, got %s", label, i, v, got[i]))
  end
end

-- An int64 tensor from Lua integers, exact beyond 2^53.
local function int64s(list)
  local x = sae.zeros(#list):long()
  for i, v in ipairs(list) do x[i] = v end
  return x
end

-- The error raised by fn, which must fail.
local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local function assert_contains(fragment, message)
  assert.is_truthy(message:find(fragment, 1, true),
    string.format("expected %q in the message %q", fragment, message))
end

-- Asserts that load(path) raises an error starting with
-- "<fname>: <path>: " and returns its message.
local function assert_load_error(load, fname, path)
  local message = error_of(load, path)
  assert_contains(fname .. ": " .. path .. ": ", message)
  return message
end

-- Defines one test per case { label, bytes, fragment }: loading the bytes
-- from a file ending in `suffix` must raise an error that names the file
-- and contains the fragment.
local function it_rejects_each(cases, load, fname, suffix)
  for _, case in ipairs(cases) do
    local label, bytes, fragment = case[1], case[2], case[3]
    it("rejects " .. label, function()
      local path = tmppath(suffix)
      write_file(path, bytes)
      assert_contains(fragment, assert_load_error(load, fname, path))
    end)
  end
end

-- Asserts that each prefix of the valid file `source`, cut every `step`
-- bytes, fails to load with an error that names the file.
local function assert_rejects_truncations(source, load, fname, suffix, step)
  local bytes = read_file(source)
  local path = tmppath(suffix)
  for cut = 0, #bytes - 1, step do
    write_file(path, bytes:sub(1, cut))
    assert_load_error(load, fname, path)
  end
end

-- A safetensors file from a header string and a data string.
local function st_bytes(header, data)
  return string.pack("<I8", #header) .. header .. (data or "")
end

local function entry(name, dtype, shape, b, e)
  return string.format('"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}',
    name, dtype, table.concat(shape, ","), b, e)
end

describe("sae.save() and sae.load()", function()
  describe("round trip", function()
    it("keeps float32 and int64 values exactly", function()
      local w = sae.tensor({ { 1.5, -2.25, 3e-8 }, { 1e30, -0.0, 0.1 } })
      local ids = int64s({ 9007199254740993, -4611686018427387904, 7 })
      local path = tmppath(".safetensors")
      assert.is_true(sae.save(path, { w = w, ids = ids }))
      local t, meta = sae.load(path)
      assert.same({}, meta)
      assert.same(w:shape(), t.w:shape())
      assert.equal("float32", t.w:dtype())
      for i, v in ipairs(values(w)) do
        assert.is_true(same_value(v, values(t.w)[i]))
      end
      assert.equal("int64", t.ids:dtype())
      assert.same({ 9007199254740993, -4611686018427387904, 7 }, values(t.ids))
    end)

    it("keeps 0-d and empty tensors", function()
      local path = tmppath(".safetensors")
      sae.save(path, { s = sae.full({}, 4.5), e = sae.zeros(0, 3),
                       ei = sae.zeros(2, 0):long() })
      local t = sae.load(path)
      assert.same({}, t.s:shape())
      assert.equal(4.5, t.s:item())
      assert.same({ 0, 3 }, t.e:shape())
      assert.same({ 2, 0 }, t.ei:shape())
      assert.equal("int64", t.ei:dtype())
    end)

    it("saves non-contiguous tensors in logical order", function()
      local base = sae.tensor({ { 1, 2, 3, 4 }, { 5, 6, 7, 8 }, { 9, 10, 11, 12 } })
      local cases = {
        transposed = base:transpose(1, 2),
        narrowed = base:narrow(2, 2, 2),
        column = base:select(2, 3),
        expanded = sae.tensor({ 1, 2 }):unsqueeze(2):expand(2, 3),
        permuted = base:view(3, 2, 2):permute(3, 1, 2),
      }
      local path = tmppath(".safetensors")
      sae.save(path, cases)
      local t = sae.load(path)
      for name, x in pairs(cases) do
        assert.same(x:shape(), t[name]:shape(), name)
        assert.same(x:totable(), t[name]:totable(), name)
      end
    end)

    it("round-trips metadata strings", function()
      local meta = { epoch = "12", note = "caf\u{e9} \u{2713}", empty = "",
                     quote = 'a "b" \\ c\n\t\1' }
      local path = tmppath(".safetensors")
      sae.save(path, { x = sae.ones(2) }, meta)
      local _, got = sae.load(path)
      assert.same(meta, got)
    end)

    it("saves an empty table of tensors", function()
      local path = tmppath(".safetensors")
      sae.save(path, {})
      local t, meta = sae.load(path)
      assert.same({}, t)
      assert.same({}, meta)
    end)
  end)

  describe("memory", function()
    it("maps float32 and int64 data instead of copying it", function()
      local statm = io.open("/proc/self/statm")
      if not statm then return pending("needs /proc/self/statm (Linux)") end
      statm:close()
      local page_size = tonumber(io.popen("getconf PAGESIZE"):read("a"))
      local function resident_mib()
        local f = io.open("/proc/self/statm")
        local _, resident = f:read("n", "n")
        f:close()
        return resident * page_size / 2^20
      end
      local big = tmppath(".safetensors")
      sae.save(big, { w = sae.zeros(8, 1024, 1024), ids = sae.zeros(2, 1024, 1024):long() })
      collectgarbage()
      collectgarbage()
      local before = resident_mib()
      local t = sae.load(big)
      local grown = resident_mib() - before
      -- 48 MiB of tensors; a copy would add all of it to the resident set
      assert.is_true(grown < 8, string.format("resident set grew by %.1f MiB", grown))
      assert.equal(0, t.w[8][1024][1024])
    end)
  end)

  describe("file layout", function()
    it("writes the header the format specifies", function()
      local path = tmppath(".safetensors")
      sae.save(path, { w = sae.tensor({ 1, 2, 3 }), a = sae.tensor({ 4 }),
                       i = sae.tensor({ 5, 6 }):long() }, { k = "v" })
      local bytes = read_file(path)
      local n = string.unpack("<I8", bytes)
      local header = bytes:sub(9, 8 + n)
      -- int64 first so every tensor stays aligned, then float32 by name
      local want = '{"__metadata__":{"k":"v"},'
        .. '"i":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},'
        .. '"a":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},'
        .. '"w":{"dtype":"F32","shape":[3],"data_offsets":[20,32]}}'
      assert.equal(0, (8 + n) % 8)
      assert.equal(want, header:gsub(" +$", ""))
      assert.equal(8 + n + 32, #bytes)
      assert.equal(string.pack("<i8<i8<f<f<f<f", 5, 6, 4, 1, 2, 3),
        bytes:sub(9 + n))
    end)

    it("writes the same bytes for the same input", function()
      local x = { b = sae.ones(3), a = sae.zeros(2, 2), c = sae.ones(1):long() }
      local p1, p2 = tmppath(), tmppath()
      sae.save(p1, x, { z = "1", y = "2" })
      sae.save(p2, x, { y = "2", z = "1" })
      assert.equal(read_file(p1), read_file(p2))
    end)

    it("creates files with the usual permissions", function()
      local path = tmppath()
      sae.save(path, { x = sae.ones(1) })
      local mode = io.popen("umask; stat -c %a " .. path):read("a")
      local umask, perms = mode:match("(%d+)%s+(%d+)")
      assert.equal(tonumber("666", 8) & ~tonumber(umask, 8), tonumber(perms, 8))
    end)

    it("leaves no temporary file behind", function()
      local dir = tmppath()
      assert(os.execute("mkdir " .. dir))
      sae.save(dir .. "/x.safetensors", { x = sae.ones(2) })
      sae.save(dir .. "/x.safetensors", { x = sae.zeros(3) })
      local listing = io.popen("ls -A " .. dir):read("a")
      assert.equal("x.safetensors\n", listing)
      assert.same({ 0, 0, 0 }, sae.load(dir .. "/x.safetensors").x:totable())
    end)
  end)

  describe("files written by PyTorch", function()
    local path = "spec/fixtures/io_torch.safetensors"

    it("reads every dtype with PyTorch's values", function()
      local t = sae.load(path)
      for name, want in pairs(expected.safetensors) do
        assert.is_not_nil(t[name], name)
        assert_matches(want, t[name], name)
      end
      local count = 0
      for _ in pairs(t) do count = count + 1 end
      assert.equal(11, count)
    end)

    it("reads the metadata", function()
      local _, meta = sae.load(path)
      assert.same(expected.metadata, meta)
    end)

    it("does not change the file when a loaded tensor changes", function()
      local copy = tmppath(".safetensors")
      local before = read_file(path)
      write_file(copy, before)
      local t = sae.load(copy)
      t.weight:fill_(7)
      t.ids64:fill_(-1)
      t.half:fill_(3)
      assert.same({ { 7, 7, 7 }, { 7, 7, 7 } }, t.weight:totable())
      assert.equal(before, read_file(copy))
      local again = sae.load(copy)
      assert_matches(expected.safetensors.weight, again.weight, "weight")
      assert_matches(expected.safetensors.ids64, again.ids64, "ids64")
    end)

    it("keeps tensors valid after the others are collected", function()
      local w = sae.load(path).weight
      collectgarbage()
      collectgarbage()
      assert_matches(expected.safetensors.weight, w, "weight")
    end)
  end)

  describe("expected failures", function()
    it("returns nil and a message for a missing file", function()
      local path = tmpdir .. "/missing.safetensors"
      local t, msg = sae.load(path)
      assert.is_nil(t)
      assert.equal(path .. ": No such file or directory", msg)
    end)

    it("returns nil and a message for a directory", function()
      local t, msg = sae.load(tmpdir)
      assert.is_nil(t)
      assert.equal(tmpdir .. ": not a regular file", msg)
    end)

    it("returns nil and a message when the file cannot be created", function()
      local path = tmpdir .. "/no/such/dir/x.safetensors"
      local ok, msg = sae.save(path, { x = sae.ones(1) })
      assert.is_nil(ok)
      assert_contains(path .. ": cannot create ", msg)
      assert_contains("No such file or directory", msg)
    end)
  end)

  describe("bad arguments", function()
    it("raises on a path that is not a string", function()
      assert.has_error(function() sae.load(3) end,
        "load: argument #1 (path) expected a string, got number")
      assert.has_error(function() sae.save(nil, {}) end,
        "save: argument #1 (path) expected a string, got nil")
    end)

    it("raises on a path with a NUL byte", function()
      assert.has_error(function() sae.load("a\0b") end,
        "load: argument #1 (path) expected a path, got a string with a NUL byte")
    end)

    it("raises on a tensors argument that is not a table", function()
      assert.has_error(function() sae.save(tmppath(), sae.ones(2)) end,
        "save: argument #2 (tensors) expected a table of name = sae.Tensor, got sae.Tensor")
    end)

    it("raises on values that are not tensors", function()
      assert.has_error(function() sae.save(tmppath(), { w = 3 }) end,
        "save: argument #2 (tensors) expected an sae.Tensor for 'w', got number")
    end)

    it("raises on keys that are not strings", function()
      assert.has_error(function() sae.save(tmppath(), { sae.ones(2) }) end,
        "save: argument #2 (tensors) expected string names as keys, got a number key")
    end)

    it("raises on the reserved name __metadata__", function()
      assert.has_error(function()
        sae.save(tmppath(), { __metadata__ = sae.ones(1) })
      end, "save: argument #2 (tensors) expected tensor names, got the reserved name '__metadata__'")
    end)

    it("raises on names that are not UTF-8", function()
      assert.has_error(function() sae.save(tmppath(), { ["\xff"] = sae.ones(1) }) end,
        "save: argument #2 (tensors) expected UTF-8 names, got an invalid name")
    end)

    it("raises on metadata values that are not strings", function()
      assert.has_error(function()
        sae.save(tmppath(), { x = sae.ones(1) }, { epoch = 3 })
      end, "save: argument #3 (metadata) expected a string value for 'epoch', got number")
      assert.has_error(function()
        sae.save(tmppath(), { x = sae.ones(1) }, "epoch")
      end, "save: argument #3 (metadata) expected a table of strings, got string")
      assert.has_error(function()
        sae.save(tmppath(), { x = sae.ones(1) }, { "v" })
      end, "save: argument #3 (metadata) expected string keys, got a number key")
    end)

    it("writes no file after a bad argument", function()
      local path = tmppath()
      pcall(sae.save, path, { x = sae.ones(1) }, { epoch = 3 })
      assert.is_nil(io.open(path))
    end)
  end)

  describe("malformed files", function()
    local f32x2 = string.pack("<ff", 1, 2)

    -- Each case: file bytes and a fragment the error message must contain.
    local cases = {
      { "an empty file", "", "file is 0 bytes, too short for the 8-byte header length" },
      { "a cut header length", "\4\0\0\0", "file is 4 bytes, too short" },
      { "a header length beyond the file", string.pack("<I8", 100) .. "{}",
        "header length 100 exceeds the 2 bytes after the length field" },
      { "an absurd header length", string.pack("<I8", 1 << 40) .. "{}",
        "header length 1099511627776 is larger than the limit of 100000000 bytes" },
      { "a header length of 2^64 - 1", string.pack("<i8", -1) .. "{}",
        "header length 18446744073709551615 is larger than the limit" },
      { "an empty header", st_bytes(""),
        "expected '{' at the start of the header, got the end of the text" },
      { "a truncated header", st_bytes('{"a":{"dtype":"F32"'),
        "invalid JSON at byte 19" },
      { "a header that is an array", st_bytes("[]"),
        "expected '{' at the start of the header" },
      { "text after the header object", st_bytes("{} x"),
        "unexpected text after the value" },
      { "a missing value", st_bytes('{"a":}'), "header: " },
      { "a trailing comma", st_bytes('{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},}'),
        "expected a string" },
      { "a bad escape", st_bytes('{"a\\q":{}}'), "invalid escape in a string" },
      { "a lone surrogate", st_bytes('{"\\ud800":{}}'), "lone high surrogate" },
      { "invalid UTF-8 in a name", st_bytes('{"\xc3\x28":{}}'), "invalid UTF-8 in a string" },
      { "an overlong UTF-8 form", st_bytes('{"\xc0\xaf":{}}'), "invalid UTF-8 in a string" },
      { "a control character in a name", st_bytes('{"a\nb":{}}'),
        "control character in a string" },
      { "a NUL byte in the header", st_bytes('{"a":{"dtype":"F32"\0}}'),
        "expected '}' to close a tensor entry" },
      { "deep nesting in an unknown key",
        st_bytes('{"a":{"x":' .. ("["):rep(100) .. ("]"):rep(100) .. '}}'),
        "nesting too deep" },
      { "a tensor entry that is not an object", st_bytes('{"a":5}'),
        "header: tensor 'a' is not an object" },
      { "a missing dtype", st_bytes('{"a":{"shape":[],"data_offsets":[0,0]}}'),
        "tensor 'a': missing dtype" },
      { "missing data_offsets", st_bytes('{"a":{"dtype":"F32","shape":[1]}}'),
        "tensor 'a': missing data_offsets" },
      { "a duplicate key in an entry",
        st_bytes('{"a":{"dtype":"F32","dtype":"I64","shape":[],"data_offsets":[0,4]}}', "\0\0\0\0"),
        "tensor 'a': duplicate key 'dtype'" },
      { "an unknown dtype", st_bytes("{" .. entry("a", "F99", { 2 }, 0, 8) .. "}", f32x2),
        "tensor 'a': unknown dtype 'F99'" },
      { "an unsupported dtype", st_bytes("{" .. entry("a", "F8_E4M3", { 2 }, 0, 2) .. "}", "\0\0"),
        "tensor 'a': dtype F8_E4M3 is not supported" },
      { "a dtype that is not a string", st_bytes('{"a":{"dtype":4,"shape":[],"data_offsets":[0,4]}}'),
        "tensor 'a': dtype is not a string" },
      { "too many dims", st_bytes("{" .. entry("a", "F32", { 1, 1, 1, 1, 1, 1, 1, 1, 1 }, 0, 4) .. "}", "\0\0\0\0"),
        "tensor 'a': shape has more than 8 dims" },
      { "a negative size", st_bytes("{" .. entry("a", "F32", { -2 }, 0, 8) .. "}", f32x2),
        "tensor 'a': shape[0] expected a non-negative integer, got -2" },
      { "a fractional size", st_bytes("{" .. entry("a", "F32", { 2.5 }, 0, 8) .. "}", f32x2),
        "tensor 'a': shape[0] expected a non-negative integer, got 2.5" },
      { "a size with an exponent", st_bytes("{" .. entry("a", "F32", { "2e0" }, 0, 8) .. "}", f32x2),
        "tensor 'a': shape[0] expected a non-negative integer, got 2e0" },
      { "a size given as a string", st_bytes("{" .. entry("a", "F32", { '"2"' }, 0, 8) .. "}", f32x2),
        "tensor 'a': shape[0] expected a non-negative integer" },
      { "a size beyond int64", st_bytes("{" .. entry("a", "F32", { "99999999999999999999" }, 0, 8) .. "}", f32x2),
        "tensor 'a': shape[0] is too large: 99999999999999999999" },
      { "a negative offset", st_bytes("{" .. entry("a", "F32", { 2 }, -8, 0) .. "}", f32x2),
        "tensor 'a': data_offsets expected a non-negative integer, got -8" },
      { "three data_offsets", st_bytes('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}', f32x2),
        "expected ']' after the two data_offsets" },
      { "a shape product that overflows int64",
        st_bytes("{" .. entry("a", "F32", { 4294967296, 4294967296, 16 }, 0, 8) .. "}", f32x2),
        "tensor 'a': shape [4294967296, 4294967296, 16] has too many elements" },
      { "a byte count that overflows",
        st_bytes("{" .. entry("a", "I64", { 1 << 62 }, 0, 8) .. "}", f32x2),
        "tensor 'a': shape [4611686018427387904] has too many elements" },
      { "a shape that lies about the size",
        st_bytes("{" .. entry("a", "F32", { 2, 3 }, 0, 8) .. "}", f32x2),
        "tensor 'a': shape [2, 3] of F32 needs 24 bytes, but data_offsets [0, 8] span 8" },
      { "an F16 shape that lies",
        st_bytes("{" .. entry("a", "F16", { 3 }, 0, 8) .. "}", f32x2),
        "tensor 'a': shape [3] of F16 needs 6 bytes, but data_offsets [0, 8] span 8" },
      { "reversed offsets", st_bytes("{" .. entry("a", "F32", { 1 }, 8, 4) .. "}", f32x2),
        "tensor 'a': data_offsets [8, 4] end before they begin" },
      { "offsets beyond the data", st_bytes("{" .. entry("a", "F32", { 100 }, 0, 400) .. "}", f32x2),
        "tensor 'a': data_offsets [0, 400] lie outside the data section of 8 bytes" },
      { "truncated data", st_bytes("{" .. entry("a", "F32", { 3 }, 0, 12) .. "}", f32x2),
        "tensor 'a': data_offsets [0, 12] lie outside the data section of 8 bytes" },
      { "huge offsets", st_bytes("{" .. entry("a", "F32", { 0 }, math.maxinteger, math.maxinteger) .. "}"),
        "lie outside the data section of 0 bytes" },
      { "overlapping tensors",
        st_bytes("{" .. entry("a", "F32", { 2 }, 0, 8) .. "," .. entry("b", "F32", { 2 }, 4, 12) .. "}",
                 f32x2 .. "\0\0\0\0"),
        "tensors 'a' and 'b' overlap: data_offsets [0, 8] and [4, 12]" },
      { "two tensors on the same bytes",
        st_bytes("{" .. entry("a", "F32", { 2 }, 0, 8) .. "," .. entry("b", "I32", { 2 }, 0, 8) .. "}", f32x2),
        "tensors 'a' and 'b' overlap" },
      { "a hole between tensors",
        st_bytes("{" .. entry("a", "F32", { 1 }, 0, 4) .. "," .. entry("b", "F32", { 1 }, 8, 12) .. "}",
                 f32x2 .. "\0\0\0\0"),
        "bytes [4, 8) of the data section belong to no tensor" },
      { "bytes after the last tensor",
        st_bytes("{" .. entry("a", "F32", { 1 }, 0, 4) .. "}", f32x2),
        "the data section has 8 bytes but the tensors cover only the first 4" },
      { "a duplicate tensor name",
        st_bytes("{" .. entry("a", "F32", { 1 }, 0, 4) .. "," .. entry("a", "F32", { 1 }, 4, 8) .. "}", f32x2),
        "header: duplicate tensor name 'a'" },
      { "a duplicate __metadata__",
        st_bytes('{"__metadata__":{},"__metadata__":{}}'), "header: duplicate __metadata__" },
      { "a duplicate metadata key",
        st_bytes('{"__metadata__":{"k":"1","k":"2"}}'), "header: duplicate metadata key 'k'" },
      { "a metadata value that is not a string",
        st_bytes('{"__metadata__":{"epoch":3}}'),
        "header: metadata value for key 'epoch' is not a string" },
      { "metadata that is not an object",
        st_bytes('{"__metadata__":["a"]}'), "header: __metadata__ is not an object" },
    }

    it_rejects_each(cases, sae.load, "load", ".safetensors")

    it("copies float32 data that is not 4-byte aligned", function()
      local path = tmppath(".safetensors")
      local header = "{" .. entry("a", "U8", { 3 }, 0, 3) .. ","
        .. entry("b", "F32", { 2 }, 3, 11) .. "," .. entry("c", "I64", { 1 }, 11, 19) .. "}"
      header = header .. (" "):rep(-(8 + #header) % 8)   -- data starts 8-aligned
      write_file(path, st_bytes(header, "\1\2\3" .. f32x2 .. string.pack("<i8", -9)))
      local t = sae.load(path)
      assert.same({ 1, 2, 3 }, t.a:totable())
      assert.same({ 1, 2 }, t.b:totable())
      assert.same({ -9 }, t.c:totable())
    end)

    it("accepts null metadata and unknown keys in entries", function()
      local path = tmppath(".safetensors")
      write_file(path, st_bytes('{"__metadata__":null,"a":{"dtype":"F32","shape":[2],'
        .. '"data_offsets":[0,8],"extra":{"x":[1,2.5e3,true,null,"\\u00e9"]}}}', f32x2))
      local t, meta = sae.load(path)
      assert.same({ 1, 2 }, t.a:totable())
      assert.same({}, meta)
    end)

    it("rejects every truncation of a valid file", function()
      assert_rejects_truncations("spec/fixtures/io_torch.safetensors",
        sae.load, "load", ".safetensors", 7)
    end)
  end)
end)

describe("sae.load_npy() and x:save_npy()", function()
  describe("files written by NumPy", function()
    for name, want in pairs(expected.npy) do
      it("reads " .. name, function()
        local x = sae.load_npy("spec/fixtures/io_" .. name .. ".npy")
        assert_matches(want, x, name)
      end)
    end

    it("reads format versions 2.0 and 3.0", function()
      assert_matches(expected.npy.f4, sae.load_npy("spec/fixtures/io_v2.npy"), "v2")
      assert_matches(expected.npy.f4, sae.load_npy("spec/fixtures/io_v3.npy"), "v3")
    end)

    it("gives Fortran-order arrays column-major strides", function()
      local x = sae.load_npy("spec/fixtures/io_fortran.npy")
      assert.same({ 1, 2, 6 }, x:stride())
    end)

    it("does not change the file when a loaded tensor changes", function()
      local path = tmppath(".npy")
      local before = read_file("spec/fixtures/io_f4.npy")
      write_file(path, before)
      sae.load_npy(path):fill_(-1)
      assert.equal(before, read_file(path))
    end)
  end)

  describe("round trip", function()
    local cases = {
      matrix = sae.tensor({ { 1.5, -2 }, { 3e-8, 1e30 } }),
      ids = int64s({ 9007199254740993, -5 }),
      scalar = sae.full({}, -0.5),
      empty = sae.zeros(0, 4),
      strided = sae.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }):transpose(1, 2),
      row = sae.tensor({ 7 }),
    }
    for name, x in pairs(cases) do
      it("keeps " .. name .. " tensors", function()
        local path = tmppath(".npy")
        assert.is_true(x:save_npy(path))
        local y = sae.load_npy(path)
        assert.equal(x:dtype(), y:dtype())
        assert.same(x:shape(), y:shape())
        assert.same(values(x), values(y))
      end)
    end

    it("writes the header NumPy writes", function()
      local path = tmppath(".npy")
      sae.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }):save_npy(path)
      local bytes = read_file(path)
      local dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
      assert.equal("\x93NUMPY\1\0", bytes:sub(1, 8))
      assert.equal(118, string.unpack("<I2", bytes, 9))
      assert.equal(dict .. (" "):rep(118 - #dict - 1) .. "\n", bytes:sub(11, 128))
      assert.equal(string.pack("<ffffff", 1, 2, 3, 4, 5, 6), bytes:sub(129))
    end)

    it("writes int64 as '<i8' and 1-d shapes as 1-tuples", function()
      local path = tmppath(".npy")
      sae.save_npy(sae.tensor({ 5, 6 }):long(), path)
      local bytes = read_file(path)
      assert_contains("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", bytes)
      assert.equal(string.pack("<i8<i8", 5, 6), bytes:sub(129))
    end)
  end)

  describe("expected failures", function()
    it("returns nil and a message for a missing file", function()
      local path = tmpdir .. "/missing.npy"
      local x, msg = sae.load_npy(path)
      assert.is_nil(x)
      assert.equal(path .. ": No such file or directory", msg)
    end)

    it("returns nil and a message when the file cannot be created", function()
      local ok, msg = sae.ones(2):save_npy(tmpdir .. "/no/dir/x.npy")
      assert.is_nil(ok)
      assert_contains("No such file or directory", msg)
    end)

    it("raises on bad arguments", function()
      assert.has_error(function() sae.load_npy({}) end,
        "load_npy: argument #1 (path) expected a string, got table")
      assert.has_error(function() sae.ones(2):save_npy(5) end,
        "save_npy: argument #2 (path) expected a string, got number")
    end)
  end)

  describe("malformed files", function()
    local function npy(dict, data, major)
      major = major or 1
      local header = dict .. "\n"
      if major == 1 then
        return "\x93NUMPY\1\0" .. string.pack("<I2", #header) .. header .. (data or "")
      end
      return "\x93NUMPY" .. string.char(major, 0) .. string.pack("<I4", #header)
        .. header .. (data or "")
    end
    local function dict(descr, shape, fortran)
      return string.format("{'descr': %s, 'fortran_order': %s, 'shape': %s, }",
        descr, fortran or "False", shape)
    end
    local f32x2 = string.pack("<ff", 1, 2)

    local cases = {
      { "an empty file", "", "not a .npy file" },
      { "a wrong magic", "\x93NUMPZ\1\0\0\0", "not a .npy file" },
      { "an unknown version", "\x93NUMPY\4\0\10\0{}        \n", "unsupported format version 4.0" },
      { "a header length beyond the file", "\x93NUMPY\1\0\255\0{}",
        "header length 255 exceeds the 2 bytes after it" },
      { "a cut version 2.0 length", "\x93NUMPY\2\0\1\0", "file ends inside the header length" },
      { "a huge version 2.0 length", "\x93NUMPY\2\0\255\255\255\255{}",
        "header length 4294967295 exceeds" },
      { "a header without a newline", "\x93NUMPY\1\0\2\0{}", "header does not end with a newline" },
      { "non-ASCII in a 1.0 header", npy(dict("'<f4'", "(2,)") .. "\xc3\xa9", f32x2),
        "non-ASCII byte in a version 1.0 header" },
      { "invalid UTF-8 in a 3.0 header", npy(dict("'<f4'", "(2,)") .. "\xff", f32x2, 3),
        "header is not valid UTF-8" },
      { "a header that is not a dict", npy("[1]"), "invalid header at byte 0: expected '{'" },
      { "a missing key", npy("{'descr': '<f4', 'shape': (2,), }", f32x2),
        "missing key 'fortran_order'" },
      { "an extra key", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", f32x2),
        "unexpected key 'x'" },
      { "a duplicate key", npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", f32x2),
        "duplicate key 'descr'" },
      { "an unsupported descr", npy(dict("'<c8'", "(1,)"), f32x2),
        "unsupported descr '<c8'" },
      { "an object array", npy(dict("'|O'", "(1,)"), f32x2), "unsupported descr '|O'" },
      { "a structured dtype", npy(dict("[('a', '<f4')]", "(2,)"), f32x2),
        "descr expected a type string such as '<f4'" },
      { "a multi-byte type with '|'", npy(dict("'|f4'", "(2,)"), f32x2), "unsupported descr '|f4'" },
      { "a bad fortran_order", npy(dict("'<f4'", "(2,)", "'yes'"), f32x2),
        "fortran_order expected True or False" },
      { "a negative size", npy(dict("'<f4'", "(-2,)"), f32x2),
        "shape expected non-negative integers" },
      { "a fractional size", npy(dict("'<f4'", "(2.0,)"), f32x2), "expected ','" },
      { "a 1-tuple without its comma", npy(dict("'<f4'", "(2)"), f32x2),
        "expected ',' after a 1-tuple size" },
      { "too many dims", npy(dict("'<f4'", "(1, 1, 1, 1, 1, 1, 1, 1, 2)"), f32x2),
        "shape has more than 8 dims" },
      { "a size beyond int64", npy(dict("'<f4'", "(99999999999999999999,)"), f32x2),
        "shape size too large" },
      { "a shape product that overflows",
        npy(dict("'<f4'", "(4294967296, 4294967296, 16)"), f32x2),
        "shape [4294967296, 4294967296, 16] has too many elements" },
      { "truncated data", npy(dict("'<f4'", "(3,)"), f32x2),
        "shape [3] needs 12 bytes of data, the file has 8 (truncated file?)" },
      { "bytes after the data", npy(dict("'<f4'", "(1,)"), f32x2),
        "shape [1] needs 4 bytes of data, the file has 4 more after them" },
      { "an unterminated string", npy("{'descr: '<f4'}"), "invalid header at byte" },
    }

    it_rejects_each(cases, sae.load_npy, "load_npy", ".npy")

    it("accepts a shape without a trailing comma and double quotes", function()
      local path = tmppath(".npy")
      write_file(path, npy('{"descr": "<f4", "fortran_order": False, "shape": (1, 2)}', f32x2))
      assert.same({ { 1, 2 } }, sae.load_npy(path):totable())
    end)

    it("rejects every truncation of a valid file", function()
      assert_rejects_truncations("spec/fixtures/io_f4.npy", sae.load_npy,
        "load_npy", ".npy", 3)
    end)
  end)
end)

teardown(function()
  os.execute("rm -rf " .. tmpdir)
end)
