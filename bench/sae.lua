-- Benchmarks of SAE training steps against the PyTorch reference in
-- bench/sae_ref.py, and of the large SAE against the sgemm-only bound.
--
-- As a module it returns function(report), which calls
-- report(name, ours_seconds, reference_seconds, note) per workload.
-- Run as a script with --memory, it trains the large SAE for a few steps
-- and prints its memory use. The module runs that in a child process, so
-- other workloads do not raise the numbers.

local sae = require "sae"

local now = sae.train.now

-- One training step as the training loop runs it, on a fixed batch.
local function step(s, h)
  s:normalize_decoder()
  s:zero_grad()
  s:backward(h)
  s:adam_step(1e-3)
end

local function time_steps(s, h, steps, rounds)
  for _ = 1, math.max(2, steps // 10) do step(s, h) end
  local best = math.huge
  for _ = 1, rounds do
    local t0 = now()
    for _ = 1, steps do step(s, h) end
    best = math.min(best, (now() - t0) / steps)
  end
  return best
end

-- A fixed batch [B, I, D] of standard normal values.
local function batch(B, I, D)
  return sae.randn(B, I, D, sae.Generator(99))
end

local function reference(I, D, H, B, steps)
  local cmd = string.format("/usr/bin/python3 bench/sae_ref.py %d %d %d %d %d", I, D, H, B, steps)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return tonumber(out:match("[%d%.e%-]+"))
end

local function vm_kib(field)
  local f = io.open("/proc/self/status")
  local text = f:read("a")
  f:close()
  return tonumber(text:match(field .. ":%s+(%d+)"))
end

-- Trains the large SAE in this process and prints the memory figures.
local function memory_run()
  local I, D, H, B = 1, 512, 4096, 1024
  local h = batch(B, I, D)
  collectgarbage()
  local rss0 = vm_kib("VmRSS")
  local s = sae.SAE { n_instances = I, n_input_ae = D, n_hidden_ae = H, seed = 1 }
  step(s, h)
  local hwm1 = vm_kib("VmHWM")
  for _ = 1, 5 do step(s, h) end
  local hwm2 = vm_kib("VmHWM")
  local nparams = I * (2 * D * H + H + D)
  local counted = 4 * nparams * 4 + s:scratch_bytes()
  -- parameters, gradients, two Adam moments; h, h - b_dec,
  -- h_reconstructed, its gradient; acts and their gradient
  local budget = 4 * nparams * 4 + 4 * (4 * B * I * D + 2 * B * I * H)
  print(string.format("%d %d %d %d %d", rss0, hwm1, hwm2, counted, budget))
end

if arg and arg[0] and arg[0]:match("bench/sae%.lua$") and arg[1] == "--memory" then
  memory_run()
  return
end

return function(report)
  -- toy SAE: 8 instances, 2 -> 5, batch 1024
  do
    local I, D, H, B = 8, 2, 5, 1024
    local s = sae.SAE { n_instances = I, n_input_ae = D, n_hidden_ae = H, seed = 1 }
    local h = batch(B, I, D)
    local ours = time_steps(s, h, 2000, 3)
    report("sae toy step (8 x 2->5, batch 1024)", ours, reference(I, D, H, B, 300),
      "normalise + forward + backward + Adam")
  end

  -- large SAE: 1 instance, 512 -> 4096, batch 1024
  do
    local I, D, H, B = 1, 512, 4096, 1024
    local s = sae.SAE { n_instances = I, n_input_ae = D, n_hidden_ae = H, seed = 1 }
    local h = batch(B, I, D)
    -- Our steps, sgemm-only products and PyTorch runs alternate, and each
    -- keeps its best single step, so all see similar load on a shared
    -- machine.
    step(s, h)
    local ours, gemm, ref = math.huge, math.huge, math.huge
    for _ = 1, 3 do
      for _ = 1, 3 do
        local t0 = now()
        step(s, h)
        ours = math.min(ours, now() - t0)
        gemm = math.min(gemm, sae.core.SAE_bench_products(B, D, H, 1))
      end
      ref = math.min(ref, reference(I, D, H, B, 3) or math.huge)
    end
    local flops = 5 * 2 * B * D * H
    report("sae large step (512->4096, batch 1024)", ours, ref < math.huge and ref or nil,
      string.format("%.1f GFLOP/s, %.0f%% of sgemm alone (%.1f GFLOP/s)",
        flops / ours / 1e9, 100 * gemm / ours, flops / gemm / 1e9))

    local p = io.popen("lua5.4 bench/sae.lua --memory")
    local out = p:read("a")
    p:close()
    local rss0, hwm1, hwm2, counted, budget = out:match("(%d+) (%d+) (%d+) (%d+) (%d+)")
    if rss0 then
      local mib = 1024 * 1024
      report("sae large training memory", nil, nil, string.format(
        "counted %.1f MiB vs budget %.1f MiB (+10%% = %.1f); VmHWM grew %.1f MiB over "
        .. "the first step (includes OpenBLAS buffers) and %.1f MiB over 5 more steps",
        counted / mib, budget / mib, 1.1 * budget / mib, (hwm1 - rss0) / 1024,
        (hwm2 - hwm1) / 1024))
    end
  end
end
