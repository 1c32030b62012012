-- Tensor core speed: matmul against OpenBLAS's own cblas_sgemm, and
-- elementwise ops against a plain C loop, both measured in this process,
-- then the same cases against PyTorch (bench/tensor_ref.py, 2 threads).
-- Every time is the fastest of several repetitions after a warm-up.
-- Ours and the in-process reference alternate in short rounds (a few
-- calls each), so a burst of load from other processes hurts both sides
-- alike and each side keeps its best round.

local sae = require "sae"
local core = sae.core

local bench_dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local common = dofile(bench_dir .. "/common.lua")
local fastest = common.fastest

local ELEMENTS = 1 << 20


-- Returns the fastest times of ours() and reference(), each a function
-- returning seconds, over `rounds` alternating rounds.
local function alternate(rounds, ours, reference)
  local best_ours, best_reference = math.huge, math.huge
  for _ = 1, rounds do
    best_ours = math.min(best_ours, ours())
    best_reference = math.min(best_reference, reference())
  end
  return best_ours, best_reference
end

-- Cases shared by the OpenBLAS and PyTorch comparisons.
local function matmul_cases()
  local cases = {}
  for _, n in ipairs({ 1024, 2048 }) do
    local a, b = sae.randn(n, n), sae.randn(n, n)
    local out = sae.empty(n, n)
    cases[#cases + 1] = {
      key = "matmul_" .. n, label = string.format("matmul %dx%dx%d", n, n, n),
      m = n, n = n, k = n, rounds = n == 1024 and 12 or 6, reps = 1,
      run = function() return a:matmul(b) end,
    }
    cases[#cases + 1] = {
      label = string.format("matmul %dx%dx%d into out", n, n, n),
      m = n, n = n, k = n, rounds = n == 1024 and 12 or 6, reps = 1,
      run = function() return a:matmul(b, out) end,
    }
  end
  local n = 2048
  local at, b = sae.randn(n, n):t(), sae.randn(n, n)
  cases[#cases + 1] = {
    key = "matmul_2048_at", label = "matmul 2048 with a transposed",
    m = n, n = n, k = n, rounds = 6, reps = 1, trans_a = true,
    run = function() return at:matmul(b) end,
  }
  local ba, bb = sae.randn(64, 128, 128), sae.randn(64, 128, 128)
  local bout = sae.empty(64, 128, 128)
  cases[#cases + 1] = {
    key = "bmm_64x128", label = "matmul [64,128,128] batched",
    m = 128, n = 128, k = 128, batch = 64, rounds = 10, reps = 3,
    run = function() return ba:matmul(bb) end,
  }
  cases[#cases + 1] = {
    label = "matmul [64,128,128] into out",
    m = 128, n = 128, k = 128, batch = 64, rounds = 10, reps = 3,
    run = function() return ba:matmul(bb, bout) end,
  }
  return cases
end

local function elementwise_cases()
  local methods = sae.Tensor
  local x, y = sae.randn(ELEMENTS), sae.randn(ELEMENTS)
  local cases = {
    { key = "add", inputs = 2, method = "add", run = function() return x:add(y) end },
    { key = "mul", inputs = 2, method = "mul", run = function() return x:mul(y) end },
    { key = "relu", inputs = 1, method = "relu", run = function() return x:relu() end },
    { key = "exp", inputs = 1, method = "exp", run = function() return x:exp() end },
  }
  local available = {}
  for _, case in ipairs(cases) do
    if methods[case.method] ~= nil then available[#available + 1] = case end
  end
  return available, #available < #cases
end

return function(report)
  -- PyTorch runs once before and once after our cases, and each case
  -- keeps its faster run, to even out load that changes during the run
  local times, err = common.pytorch_times("tensor_ref.py")

  report.section("matmul vs OpenBLAS cblas_sgemm in this process "
    .. "(ratio = our speed / theirs; target >= 0.90)")
  local cases = matmul_cases()
  for _, case in ipairs(cases) do
    local batch = case.batch or 1
    local reference
    case.ours, reference = alternate(case.rounds,
      function() return fastest(case.run, case.reps) end,
      function()
        return core._bench_sgemm(case.m, case.n, case.k, case.reps,
          case.trans_a, case.trans_b, batch)
      end)
    local flops = 2 * case.m * case.n * case.k * batch
    report(case.label, case.ours, reference, string.format(
      "%.1f vs %.1f GFLOP/s", flops / case.ours / 1e9, flops / reference / 1e9))
  end

  report.section(string.format("elementwise on %d float32 elements vs a "
    .. "plain C loop (ratio = our speed / theirs)", ELEMENTS))
  local ops, missing = elementwise_cases()
  if missing then
    print("  (some of add, mul, relu, exp are missing from sae.Tensor: skipped)")
  end
  for _, case in ipairs(ops) do
    local reference
    case.ours, reference = alternate(10,
      function() return fastest(case.run, 20) end,
      function()
        -- the faster of a serial and a 2-thread OpenMP loop
        return math.min(core._bench_stream(ELEMENTS, 20, case.inputs, false),
          core._bench_stream(ELEMENTS, 20, case.inputs, true))
      end)
    local bytes = 4 * ELEMENTS * (case.inputs + 1)
    report(case.key, case.ours, reference, string.format(
      "%.1f vs %.1f GB/s (C loop: %s)", bytes / case.ours / 1e9,
      bytes / reference / 1e9, case.inputs == 2 and "c = a + b" or "c = a"))
  end

  local later = times and common.pytorch_times("tensor_ref.py")
  for name, seconds in pairs(later or {}) do
    if type(seconds) == "number" and type(times[name]) == "number" then
      times[name] = math.min(times[name], seconds)
    end
  end
  if times == nil then
    report.section("vs PyTorch: skipped")
    print("  " .. err)
    return
  end
  report.section(string.format("vs PyTorch %s with %d threads (ratio = our "
    .. "speed / theirs)", times.version or "?", times.threads or 0))
  for _, case in ipairs(cases) do
    if case.key then report(case.label, case.ours, times[case.key]) end
  end
  for _, case in ipairs(ops) do
    report(case.key, case.ours, times[case.key])
  end
end
