-- Timing helpers shared by the benchmark parts: the fastest of repeated
-- calls, and the timings that a PyTorch reference script prints. A part
-- loads this file with dofile() from its own directory.

local sae = require "sae"

local clock = sae.core._bench_clock

-- The directory of this file, where the reference scripts also live.
local bench_dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."

local M = {}


-- Returns the fastest of `reps` timed calls of fn, after one warm-up.
function M.fastest(fn, reps)
  fn()
  collectgarbage()
  local best = math.huge
  for _ = 1, reps do
    local start = clock()
    fn()
    best = math.min(best, clock() - start)
    -- Lua's collector does not see the size of tensor storage, so it is
    -- run by hand, outside the timed region. Freeing each result before
    -- the next call lets malloc hand back warm memory, as PyTorch's
    -- reference counting does.
    collectgarbage()
  end
  return best
end


-- Runs bench/<script> with /usr/bin/python3 and returns a table of case
-- name to seconds parsed from the JSON object it prints (plus `version`),
-- or nil and a message when PyTorch cannot run.
function M.pytorch_times(script)
  local pipe = io.popen("/usr/bin/python3 " .. bench_dir .. "/" .. script
                        .. " 2>&1")
  if pipe == nil then return nil, "cannot start /usr/bin/python3" end
  local output = pipe:read("a")
  pipe:close()
  local times = {}
  for name, value in output:gmatch('"([%w_]+)"%s*:%s*([%d%.eE+-]+)') do
    times[name] = tonumber(value)
  end
  if next(times) == nil then
    return nil, "no timings from " .. script .. ": " .. output:sub(1, 200)
  end
  times.version = output:match('"version"%s*:%s*"([^"]+)"')
  return times
end

return M
