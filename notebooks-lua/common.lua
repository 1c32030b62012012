-- Shared helpers for the notebook scripts: command-line options, the
-- output directory, plain-Lua math on tensors turned into tables, and
-- result checks that are printed and counted.
--
-- Load with `dofile` from the notebook's own directory:
--   local nb = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")

local nb = {}

local USAGE = [[
options:
  --quick        smoke run: few training steps and small batches (under 30 s)
  --out DIR      directory for the figures (default: out)
  --format FMT   figure format, png or svg (default: png)
  --help         print this help]]


-- Parse the notebook's arguments into nb.quick, nb.out and nb.format, and
-- create the output directory.
function nb.setup(description)
  nb.quick, nb.out, nb.format = false, "out", "png"
  local args = arg or {}
  local k = 1
  while k <= #args do
    local a = args[k]
    if a == "--quick" then
      nb.quick = true
    elseif a == "--out" and args[k + 1] then
      nb.out = args[k + 1]
      k = k + 1
    elseif a == "--format" and (args[k + 1] == "png" or args[k + 1] == "svg") then
      nb.format = args[k + 1]
      k = k + 1
    elseif a == "--help" or a == "-h" then
      print(description .. "\n\n" .. USAGE)
      os.exit(0)
    else
      io.stderr:write("invalid argument: ", a, "\n", USAGE, "\n")
      os.exit(2)
    end
    k = k + 1
  end
  local ok = os.execute("mkdir -p '" .. nb.out:gsub("'", "'\\''") .. "'")
  if not ok then
    io.stderr:write("cannot create the output directory ", nb.out, "\n")
    os.exit(1)
  end
  nb.wall = nb.now()
  nb.failed = {}
  print(description)
  print(nb.quick and "(quick run: few steps, so the checks below are not expected to hold)\n" or "")
end


-- Path of a figure under the output directory, in the chosen format.
function nb.figure(name)
  return string.format("%s/%s.%s", nb.out, name, nb.format)
end


-- Print and return the path a plot function wrote.
function nb.wrote(path)
  print("  wrote " .. path)
  return path
end


function nb.section(title)
  print("\n" .. title)
  print(string.rep("-", #title))
end


-- Print a check and remember the failures; `detail` shows the measured value.
function nb.check(ok, what, detail)
  print(string.format("  [%s] %s%s", ok and "ok" or "NOT MET", what,
    detail and " (" .. detail .. ")" or ""))
  if not ok then nb.failed[#nb.failed + 1] = what end
  return ok
end


-- Print the summary and exit: status 1 when a check failed in a full run.
function nb.finish()
  print(string.format("\ndone in %.1f s", nb.now() - nb.wall))
  if #nb.failed > 0 then
    print(string.format("%d check(s) not met: %s", #nb.failed, table.concat(nb.failed, "; ")))
    if not nb.quick then os.exit(1) end
  end
end


-- Values a * b^-t for t in linspace(t0, t1, n), as in the exercises'
-- feature probability sweeps.
function nb.power_sweep(base, t0, t1, n)
  local out = {}
  for i = 1, n do
    local t = n == 1 and t0 or t0 + (t1 - t0) * (i - 1) / (n - 1)
    out[i] = base ^ -t
  end
  return out
end


-- A column [[v1], [v2], ...] for per-instance values, and a row [[v1, v2, ...]]
-- for per-feature values, both as nested tables for sae.tensor.
function nb.column(values)
  local out = {}
  for i, v in ipairs(values) do out[i] = { v } end
  return out
end


function nb.row(values)
  return { values }
end


-- Geometry of one instance's weights W [H][F] (a nested table).

function nb.norms(W)
  local norms = {}
  for f = 1, #W[1] do
    local s = 0
    for h = 1, #W do s = s + W[h][f] ^ 2 end
    norms[f] = math.sqrt(s)
  end
  return norms
end


-- Angle in degrees between features f and g of W [H][F].
function nb.angle(W, f, g)
  local dot, nf, ng = 0, 0, 0
  for h = 1, #W do
    dot = dot + W[h][f] * W[h][g]
    nf = nf + W[h][f] ^ 2
    ng = ng + W[h][g] ^ 2
  end
  local c = dot / math.sqrt(nf * ng + 1e-30)
  return math.deg(math.acos(math.max(-1, math.min(1, c))))
end


-- Angular gaps in degrees between neighbouring directions of the given
-- features of a 2-D W [2][F], sorted by angle around the origin.
function nb.neighbour_gaps(W, features)
  local angles = {}
  for _, f in ipairs(features) do
    angles[#angles + 1] = math.deg(math.atan(W[2][f], W[1][f])) % 360
  end
  table.sort(angles)
  local gaps = {}
  for k = 1, #angles do
    local nxt = angles[k % #angles + 1]
    gaps[k] = (nxt - angles[k]) % 360
  end
  if #angles == 1 then gaps[1] = 360 end
  return gaps
end


function nb.fmt_list(values, fmt)
  local parts = {}
  for k, v in ipairs(values) do parts[k] = string.format(fmt or "%.3f", v) end
  return table.concat(parts, " ")
end


function nb.min_max(values)
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(values) do
    lo, hi = math.min(lo, v), math.max(hi, v)
  end
  return lo, hi
end


-- Print a training run's first and last logged loss.
function nb.report_training(name, history, seconds)
  local first, last = history[1], history[#history]
  local function value(h)
    if type(h) == "table" then return h.loss or h[2] or h[1] end
    return h
  end
  print(string.format("  trained %s in %.1f s: loss %.4g -> %.4g", name, seconds,
    value(first) or 0 / 0, value(last) or 0 / 0))
end


-- Wall-clock seconds with sub-second resolution (os.time counts whole
-- seconds, and os.clock adds up the CPU time of all threads).
function nb.now()
  local pipe = io.popen("date +%s.%N")
  local t = pipe and tonumber(pipe:read("l"))
  if pipe then pipe:close() end
  return t or os.time()
end


-- Train a model and report the time taken.
function nb.train(name, model, options)
  local t0 = nb.now()
  local history = model:train(options)
  nb.report_training(name, history or {}, nb.now() - t0)
  return history
end

return nb
