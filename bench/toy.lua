-- Toy-model training speed against PyTorch (bench/toy_ref.py).
--
-- Returns function(report), which calls report(name, ours_seconds,
-- reference_seconds, note) once per workload. The times are seconds per
-- training step (batch generation, forward, loss, backward and an Adam
-- step) of this library and of the PyTorch reference with 2 threads.

local sae = require "sae"

local STEPS = tonumber(os.getenv("SAE_BENCH_TOY_STEPS") or "") or 200

-- SAE_BENCH_TOY_CPU=1 times both sides in CPU seconds on one thread
-- (os.clock here, time.process_time with one torch thread there), which
-- other load on the machine disturbs less than wall-clock time. It
-- needs OMP_NUM_THREADS=1, because os.clock adds up all threads.
local CPU = os.getenv("SAE_BENCH_TOY_CPU") == "1"


local function linspace_pow(base, n)
  -- base ^ -linspace(0, 1, n) as a column [n, 1]
  local t = {}
  for i = 1, n do
    t[i] = { base ^ (-(n == 1 and 0 or (i - 1) / (n - 1))) }
  end
  return sae.tensor(t)
end


local function workloads()
  local imp5, imp100, imp_comp = {}, {}, {}
  for f = 1, 5 do imp5[f] = 0.9 ^ (f - 1) end
  for f = 1, 100 do imp100[f] = 100 ^ (-(f - 1) / 99) end
  for f = 1, 100 do imp_comp[f] = 0.8 ^ f end
  return {
    { name = "linear 5->2, I=8, B=1024", target = 20,
      model = sae.toy.Model{ n_instances = 8, n_features = 5, n_hidden = 2,
        feature_probability = linspace_pow(50, 8),
        importance = sae.tensor({ imp5 }) } },
    { name = "linear 100->20, I=20, B=1024", target = 10,
      model = sae.toy.Model{ n_instances = 20, n_features = 100, n_hidden = 20,
        feature_probability = linspace_pow(20, 20),
        importance = sae.tensor({ imp100 }) } },
    { name = "computation 100->40, I=7, B=1024", target = 10,
      model = sae.toy.Model{ kind = "computation", n_instances = 7,
        n_features = 100, n_hidden = 40,
        feature_probability = sae.tensor({ { 1.0 }, { 0.3 }, { 0.1 },
          { 0.03 }, { 0.01 }, { 0.003 }, { 0.001 } }),
        importance = sae.tensor({ imp_comp }) } },
  }
end


local function time_steps(model, steps, batch)
  local opt = sae.optim.Adam(model, { lr = 1e-3 })
  for _ = 1, math.max(3, steps // 10) do
    model:train_step(batch)
    opt:step()
  end
  local clock = CPU and os.clock or sae.train.now
  local start = clock()
  for _ = 1, steps do
    model:train_step(batch)
    opt:step()
  end
  return (clock() - start) / steps
end


-- Runs bench/toy_ref.py and returns its {workload = seconds} table, or
-- nil and a message when PyTorch is not available.
local function reference_times(steps)
  local pipe = io.popen("/usr/bin/python3 bench/toy_ref.py " .. steps
    .. (CPU and " --cpu" or "") .. " 2>/dev/null")
  local text = pipe and pipe:read("a") or ""
  if pipe then pipe:close() end
  local times = {}
  for name, value in text:gmatch('"([^"]+)":%s*([%d%.eE%-]+)') do
    times[name] = tonumber(value)
  end
  if next(times) == nil then
    return nil, "bench/toy_ref.py gave no timings (is python3-torch installed?)"
  end
  return times
end


-- Returns the 1-minute load average, which the timings depend on: both
-- libraries run 2 threads on a 2-core machine.
local function load_average()
  local f = io.open("/proc/loadavg")
  if f == nil then return "unknown" end
  local text = f:read("l") or ""
  f:close()
  return text:match("^(%S+)") or "unknown"
end


return function(report)
  if CPU and os.getenv("OMP_NUM_THREADS") ~= "1" then
    error("bench/toy.lua: SAE_BENCH_TOY_CPU=1 needs OMP_NUM_THREADS=1, got "
      .. tostring(os.getenv("OMP_NUM_THREADS")), 0)
  end
  local reference, message = reference_times(STEPS)
  if report.section then
    report.section("toy-model training step with Adam (ratio = PyTorch time / ours)"
      .. (CPU and ", CPU time on one thread" or ""))
  end
  for _, w in ipairs(workloads()) do
    local ours = time_steps(w.model, STEPS, 1024)
    local ref = reference and reference[w.name]
    local note = string.format("target >= %dx; load average %s", w.target,
      load_average())
    if ref == nil then note = note .. "; " .. (message or "no reference") end
    report(w.name, ours, ref, note)
  end
end
