-- Mutation fuzzing of sae.load and sae.load_npy: flips, inserts, deletes
-- and overwrites bytes of valid files (the fixtures plus files this
-- script writes) and loads each result under pcall. Any crash or
-- sanitizer report is a bug; errors raised as Lua errors are expected.
--
-- Run against the ASan build, for example:
--   make asan   # builds build-asan/
--   LD_PRELOAD="$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)" \
--   ASAN_OPTIONS=detect_leaks=0 LUA_PATH="lua/?.lua;lua/?/init.lua;;" \
--   LUA_CPATH="build-asan/?.so;;" lua5.4 tools/fuzz_io.lua [iterations] [seed]

local sae = require "sae"

local iterations = tonumber(arg[1]) or 20000
local seed = tonumber(arg[2]) or 1
math.randomseed(seed)

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local path = os.tmpname()

-- Seeds: every fixture, plus a multi-tensor file with metadata.
local seeds = {}
local listing = io.popen("ls spec/fixtures/*.safetensors spec/fixtures/*.npy")
for name in listing:lines() do seeds[#seeds + 1] = read_file(name) end
listing:close()
sae.save(path, { a = sae.ones(2, 3), b = sae.zeros(4):long(), c = sae.full({}, 2) },
         { key = "value", other = "\u{e9}" })
seeds[#seeds + 1] = read_file(path)

-- Bytes that tend to reach new branches of the parsers.
local tokens = { "{", "}", "[", "]", ",", ":", '"', "\\", "\\u", "-", "0",
  "9", "1e5", ".5", "null", "true", "F16", "BF16", "I64", "\0", "\xff",
  "\xc3", "'", "(", ")", "\n", " " }

local function mutate(s)
  for _ = 1, math.random(1, 4) do
    local n = #s
    local at = math.random(1, n + 1)
    local op = math.random(1, 6)
    if op == 1 and n > 0 then       -- flip one bit
      at = math.min(at, n)
      local b = s:byte(at) ~ (1 << math.random(0, 7))
      s = s:sub(1, at - 1) .. string.char(b) .. s:sub(at + 1)
    elseif op == 2 then              -- insert a token
      s = s:sub(1, at - 1) .. tokens[math.random(#tokens)] .. s:sub(at)
    elseif op == 3 then              -- delete a run
      s = s:sub(1, at - 1) .. s:sub(at + math.random(1, 8))
    elseif op == 4 then              -- truncate
      s = s:sub(1, math.random(0, n))
    elseif op == 5 and n > 0 then   -- overwrite with a random byte
      at = math.min(at, n)
      s = s:sub(1, at - 1) .. string.char(math.random(0, 255)) .. s:sub(at + 1)
    else                             -- rewrite a digit
      local i = s:find("%d", at)
      if i then s = s:sub(1, i - 1) .. math.random(0, 9) .. s:sub(i + 1) end
    end
  end
  return s
end

local loaded, rejected = 0, 0
for i = 1, iterations do
  local bytes = mutate(seeds[math.random(#seeds)])
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
  local load = bytes:sub(1, 6) == "\x93NUMPY" and sae.load_npy or sae.load
  local ok, result = pcall(load, path)
  if ok and result then
    loaded = loaded + 1
    -- touch every element so out-of-bounds views would be caught
    if sae.is_tensor(result) then result:totable()
    else for _, t in pairs(result) do t:totable() end end
  else
    rejected = rejected + 1
  end
  if i % 5000 == 0 then collectgarbage() end
end
os.remove(path)
print(string.format("%d files: %d loaded, %d rejected", iterations, loaded, rejected))
