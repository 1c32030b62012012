-- Network helper speed (softmax, cross entropy, layer norm, index ops,
-- cosine similarity) against PyTorch (bench/nn_ref.py, 2 threads) on
-- sizes from small transformers: vocabulary 50257, width 768.
-- Every time is the fastest of several repetitions after a warm-up.

local sae = require "sae"

local clock = sae.core._bench_clock

-- Returns the fastest of `reps` timed calls of fn, after one warm-up. The
-- collector runs after each call, outside the timed region, so freed
-- results can be reused instead of every call faulting in fresh pages.
local function fastest(fn, reps)
  fn()
  collectgarbage()
  local best = math.huge
  for _ = 1, reps do
    local start = clock()
    fn()
    best = math.min(best, clock() - start)
    collectgarbage()
  end
  return best
end


-- Returns a table of case name to seconds from bench/nn_ref.py, or nil
-- and a message when PyTorch cannot run.
local function pytorch_times(script_dir)
  local pipe = io.popen("/usr/bin/python3 " .. script_dir .. "/nn_ref.py 2>&1")
  if pipe == nil then return nil, "cannot start /usr/bin/python3" end
  local output = pipe:read("a")
  pipe:close()
  local times = {}
  for name, value in output:gmatch('"([%w_]+)"%s*:%s*([%d%.eE+-]+)') do
    times[name] = tonumber(value)
  end
  if next(times) == nil then
    return nil, "no timings from nn_ref.py: " .. output:sub(1, 200)
  end
  times.version = output:match('"version"%s*:%s*"([^"]+)"')
  return times
end


-- The cases; nn_ref.py builds the same shapes under the same keys.
local function cases()
  local list = {}
  local function add(key, label, reps, run)
    list[#list + 1] = { key = key, label = label, reps = reps, run = run }
  end

  local x = sae.randn(2048, 4096)
  add("softmax", "softmax [2048, 4096] dim -1", 10,
      function() return x:softmax() end)
  add("log_softmax", "log_softmax [2048, 4096] dim -1", 10,
      function() return x:log_softmax() end)
  local xt = sae.randn(4096, 2048):transpose()
  add("softmax_t", "softmax transposed [2048, 4096]", 5,
      function() return xt:softmax() end)

  local logits = sae.randn(256, 50257)
  local targets = sae.randint(1, 50258, { 256 })
  add("cross_entropy", "cross_entropy [256, 50257]", 10,
      function() return sae.cross_entropy(logits, targets) end)

  local h = sae.randn(4096, 768)
  local w, b = sae.randn(768), sae.randn(768)
  add("layer_norm", "layer_norm [4096, 768] w, b", 10,
      function() return sae.layer_norm(h, 1, w, b) end)

  local embed = sae.randn(8192, 768)
  local tokens = sae.randint(1, 8193, { 4096 })
  add("index_select", "index_select [8192, 768] 4096 rows", 10,
      function() return embed:index_select(1, tokens) end)

  local lp = sae.randn(4096, 8192)
  local picks = sae.randint(1, 8193, { 4096, 1 })
  add("gather", "gather [4096, 1] of [4096, 8192]", 50,
      function() return lp:gather(2, picks) end)

  local grad = sae.zeros(8192, 768)
  local rows = sae.randint(1, 8193, { 4096, 1 }):expand(4096, 768):contiguous()
  add("scatter_add_", "scatter_add_ [4096, 768] into 8192 rows", 10,
      function() return grad:scatter_add_(1, rows, h) end)

  local direction = sae.randn(768)
  add("cosine_similarity", "cosine_similarity [4096, 768] vs [768]", 10,
      function() return sae.cosine_similarity(h, direction) end)
  return list
end


return function(report)
  local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
  local list = cases()
  for _, case in ipairs(list) do case.ours = fastest(case.run, case.reps) end

  local times, err = pytorch_times(script_dir)
  if times == nil then
    report.section("network helpers (PyTorch skipped)")
    print("  " .. err)
    for _, case in ipairs(list) do report(case.label, case.ours) end
    return
  end
  report.section(string.format("network helpers vs PyTorch %s with %d "
    .. "threads (ratio = our speed / theirs)", times.version or "?",
    times.threads or 0))
  for _, case in ipairs(list) do
    report(case.label, case.ours, times[case.key])
  end
end
