-- 05: sparse autoencoders on toy models.
--
-- We train the 5-features-in-2-D toy model at feature probability 0.01,
-- so the hidden space contains five known feature directions in a pentagon.
-- SAEs with five hidden units then learn to reconstruct the hidden
-- states, and we check whether their decoder rows find the true features.
-- Without resampling some neurons die and their features stay unmatched,
-- so the SAEs are trained again with simple and with Anthropic resampling.
--
--   lua5.4 notebooks-lua/05_sae_toy_models.lua [--quick] [--out DIR] [--format svg]
--
-- --quick is a smoke run with short training (under 30 s). Figures go
-- under out/05_* (or DIR/05_*).

local sae = require "sae"

local nb = dofile((arg and arg[0] and arg[0]:match("^(.*/)") or "./") .. "common.lua")
nb.setup("Notebook 05: sparse autoencoders on the 5-in-2 toy model")
local quick = nb.quick
local progress = not quick

local function section(title)
  print()
  print(title)
  print(string.rep("-", #title))
end

-- Plots come from sae.plot; a missing gnuplot or plot module only skips
-- the figure.
local function try_plot(name, ...)
  local plot = sae.plot
  if plot == nil or plot[name] == nil then
    print(string.format("  (skipped %s: sae.plot.%s is not available)", name, name))
    return
  end
  local ok, err = pcall(plot[name], ...)
  if not ok then print(string.format("  (skipped %s: %s)", name, tostring(err))) end
end


-- 1. The toy model -----------------------------------------------------------

section("Toy model: 5 features in 2 dimensions, feature probability 0.01")

local I, F, Hd = 8, 5, 2
local model = sae.toy.Model {
  n_instances = I, n_features = F, n_hidden = Hd, feature_probability = 0.01, seed = 0,
}
model:train { steps = quick and 3000 or 10000, progress = progress, seed = 1 }
print(string.format("trained the toy model (%d instances)", I))
try_plot("features_in_2d", model.W, {
  title = "Superposition: 5 features represented in 2D space",
  file = nb.figure("05_toy_features"),
})
try_plot("features_in_2d", model.W, {
  title = "Hidden states of a random batch (gray) under the feature directions",
  hidden = model:hidden(model:generate_batch(250)),
  file = nb.figure("05_toy_hidden"),
})


-- 2. Matching SAE decoder rows to the true features ----------------------------

-- Compares feature f's direction (column f of W[i], in the hidden space)
-- with every decoder row by cosine similarity. Returns the best row per
-- feature, and the one-to-one assignment of features to rows that
-- maximises the smallest cosine. F and d_sae are small, so the search
-- tries every assignment.
local function match(W, W_dec, i)
  local w, d = W[i], W_dec[i]
  local nf, nk = #w[1], #d
  local cos = {}
  for f = 1, nf do
    cos[f] = {}
    local nw = 0
    for j = 1, #w do nw = nw + w[j][f] ^ 2 end
    for k = 1, nk do
      local dot, nd = 0, 0
      for j = 1, #w do
        dot = dot + w[j][f] * d[k][j]
        nd = nd + d[k][j] ^ 2
      end
      cos[f][k] = dot / math.sqrt(nw * nd + 1e-30)
    end
  end
  local best = {}
  for f = 1, nf do
    local bk = 1
    for k = 2, nk do if cos[f][k] > cos[f][bk] then bk = k end end
    best[f] = { k = bk, cos = cos[f][bk] }
  end
  local used, assign, best_min, best_assign = {}, {}, -math.huge, nil
  local function search(f, cur_min)
    if cur_min <= best_min then return end
    if f > nf then
      best_min, best_assign = cur_min, table.move(assign, 1, nf, 1, {})
      return
    end
    for k = 1, nk do
      if not used[k] then
        used[k], assign[f] = true, k
        search(f + 1, math.min(cur_min, cos[f][k]))
        used[k] = false
      end
    end
  end
  search(1, math.huge)
  return best, best_assign, best_min, cos
end

local function report(name, autoencoder)
  local W, W_dec = model.W:totable(), autoencoder.W_dec:totable()
  local passed, results = 0, {}
  for i = 1, I do
    local best, assign, min_cos = match(W, W_dec, i)
    results[i] = { best = best, assign = assign, min_cos = min_cos }
    if min_cos >= 0.95 then passed = passed + 1 end
  end
  print(string.format("%s: %d of %d instances match all five features one to one "
    .. "at cosine >= 0.95", name, passed, I))
  return results, passed
end

local function print_instance_table(results)
  for i, r in ipairs(results) do
    local cells = {}
    for f, b in ipairs(r.best) do
      cells[f] = string.format("f%d->n%d %.3f", f, b.k, b.cos)
    end
    print(string.format("  instance %d: %s | one-to-one min %.3f", i,
      table.concat(cells, "  "), r.min_cos))
  end
end

local function hidden_batch(B)
  return model:hidden(model:generate_batch(B))
end

local sae_steps = quick and 2000 or 20000
local resample_window = quick and 500 or 2500
local dead_window = quick and 100 or 400

local function train_sae(title, l1_coeff, opts)
  section(title)
  local autoencoder = sae.SAE {
    n_instances = I, n_input_ae = Hd, n_hidden_ae = F, l1_coeff = l1_coeff, seed = 2,
  }
  local t0 = sae.train.now()
  local log = autoencoder:train {
    data = hidden_batch,
    steps = opts.steps,
    batch_size = 1024,
    lr = 1e-3,
    log_every = opts.log_every or 200,
    neuron_resample_window = opts.resample_window,
    dead_neuron_window = opts.dead_window,
    neuron_resample_scale = opts.scale,
    resample_method = opts.method,
    progress = progress,
  }
  print(string.format("trained %d steps in %.1f s", opts.steps, sae.train.now() - t0))
  local last = log.frac_active[#log.frac_active]:totable()
  local dead = 0
  for _, inst in ipairs(last) do
    for _, v in ipairs(inst) do if v == 0 then dead = dead + 1 end end
  end
  print(string.format("neurons silent on the last batch: %d of %d", dead, I * F))
  return autoencoder, log
end

-- One animation frame per logged step: encoder columns in the top row,
-- decoder rows (transposed to [I, 2, d_sae]) below, resampled neurons red.
local function plots(tag, log, autoencoder)
  local frames = {}
  for n = 1, #log.steps do
    frames[n] = {
      rows = { log.W_enc[n], log.W_dec[n]:transpose(2, 3) },
      colors = log.colors[n],
      title = log.titles[n],
    }
  end
  try_plot("animate_features_in_2d", frames, {
    row_titles = { "Encoder weights", "Decoder weights" },
    file = nb.out .. "/05_" .. tag .. "_features.gif",
  })
  local frac = sae.zeros(#log.frac_active, I, F)
  for n, f in ipairs(log.frac_active) do frac[n]:copy_(f) end
  try_plot("frac_active_line", frac, {
    x = log.steps, feature_probability = 0.01,
    title = "Fraction of the batch on which each SAE neuron fires (" .. tag .. ")",
    file = nb.figure("05_" .. tag .. "_frac_active"),
  })
  local h = hidden_batch(250)
  try_plot("reconstruction", h, autoencoder:forward(h).h_reconstructed, {
    title = "Hidden states and their SAE reconstructions (" .. tag .. ")",
    file = nb.figure("05_" .. tag .. "_reconstruction"),
  })
end


-- 3. SAE without resampling ---------------------------------------------------

local ae_none, log_none = train_sae("SAE without resampling (l1_coeff 0.5)", 0.5,
  { steps = quick and 2000 or 10000 })
local res_none, pass_none = report("no resampling", ae_none)
print_instance_table(res_none)
plots("no_resampling", log_none, ae_none)


-- 4. SAE with simple resampling -----------------------------------------------

local ae_simple, log_simple = train_sae("SAE with simple resampling (l1_coeff 0.25)", 0.25,
  { steps = sae_steps, resample_window = resample_window, dead_window = dead_window,
    scale = 0.5, method = "simple" })
local res_simple, pass_simple = report("simple resampling", ae_simple)
print_instance_table(res_simple)
plots("simple", log_simple, ae_simple)


-- 5. SAE with Anthropic resampling --------------------------------------------

local ae_anth, log_anth = train_sae("SAE with Anthropic resampling (l1_coeff 0.25)", 0.25,
  { steps = sae_steps, resample_window = resample_window, dead_window = dead_window,
    scale = 0.5, method = "anthropic" })
local res_anth, pass_anth = report("Anthropic resampling", ae_anth)
print_instance_table(res_anth)
plots("anthropic", log_anth, ae_anth)


-- 6. Side by side ---------------------------------------------------------------

section("Best-matching decoder row per true feature: no resampling | Anthropic")
for i = 1, I do
  local cells = {}
  for f = 1, F do
    cells[f] = string.format("%.3f|%.3f", res_none[i].best[f].cos, res_anth[i].best[f].cos)
  end
  print(string.format("  instance %d: %s", i, table.concat(cells, "  ")))
end
print()
print(string.format("instances with all five features matched one to one at cosine >= 0.95: "
  .. "none %d/%d, simple %d/%d, Anthropic %d/%d", pass_none, I, pass_simple, I, pass_anth, I))
if not quick and pass_anth < 7 then
  print("NOTE: Anthropic resampling matched fewer than 7 of 8 instances in this run")
end
