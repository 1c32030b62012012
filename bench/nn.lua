-- Network helper speed (softmax, cross entropy, layer norm, index ops,
-- cosine similarity) against PyTorch (bench/nn_ref.py, 2 threads) on
-- sizes from small transformers: vocabulary 50257, width 768.
-- Every time is the fastest of several repetitions after a warm-up.

local sae = require "sae"

local bench_dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local common = dofile(bench_dir .. "/common.lua")
local fastest = common.fastest


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
  local list = cases()
  for _, case in ipairs(list) do case.ours = fastest(case.run, case.reps) end

  local times, err = common.pytorch_times("nn_ref.py")
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
