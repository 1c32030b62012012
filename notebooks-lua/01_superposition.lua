-- Superposition in a nonprivileged basis.
--
-- The toy model of "Toy Models of Superposition" (Elhage et al., 2022):
-- h = W x, x' = ReLU(Wᵀ h + b). With fewer hidden dimensions than
-- features, a model trained on sparse inputs stores more features than it
-- has dimensions, as directions that interfere a little. This script
-- trains the 5-features-in-2-D model across sparsities, looks at the
-- hidden states of a batch, and trains the 100-features-in-20-D model.
--
-- Run: ./run notebook 01_superposition [--quick]

local sae = require "sae"
local nb = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local plot = sae.plot

nb.setup("Notebook 01: superposition in a nonprivileged basis")

local STEPS_2D = nb.quick and 400 or 5000
local STEPS_ND = nb.quick and 100 or 10000
local BATCH = nb.quick and 256 or 1024


nb.section("Five random feature directions in 2-D")
-- Before any training: five random unit directions in the plane, and the
-- cosine similarities between them that a model would have to live with.
do
  local W = { {}, {} }
  local state = 12345
  local function uniform()
    state = (state * 1103515245 + 12345) % 2147483648
    return state / 2147483648
  end
  for f = 1, 5 do
    local angle = 2 * math.pi * uniform()
    W[1][f], W[2][f] = math.cos(angle), math.sin(angle)
  end
  local cosines = {}
  for f = 1, 5 do
    cosines[f] = {}
    for g = 1, 5 do cosines[f][g] = W[1][f] * W[1][g] + W[2][f] * W[2][g] end
  end
  nb.wrote(plot.imshow(cosines, {
    file = nb.figure("01_random_cosines"), palette = "rdbu", range = { -1, 1 },
    title = "Cosine similarities of 5 random 2-D feature directions",
    xlabel = "feature", ylabel = "feature",
  }))
  nb.wrote(plot.features_in_2d({ W }, { file = nb.figure("01_random_directions"),
    title = "5 random unit directions" }))
end


nb.section("5 features in 2-D across sparsity")
-- Eight instances train side by side. Importance falls as 0.9^i over the
-- features; the feature probability 1 - S falls from 1 (dense) to 1/400.
local n_instances, n_features = 8, 5
local importance = {}
for f = 1, n_features do importance[f] = 0.9 ^ (f - 1) end
local probability = nb.power_sweep(400, 0, 1, n_instances)
print("  importance:          " .. nb.fmt_list(importance))
print("  feature probability: " .. nb.fmt_list(probability, "%.4f"))

nb.wrote(plot.line(importance, {
  file = nb.figure("01_importance"), title = "Importance of each feature (same over all instances)",
  xlabel = "feature", ylabel = "importance", style = "linespoints",
}))
nb.wrote(plot.line(probability, {
  file = nb.figure("01_feature_probability"), title = "Feature probability (varied over instances)",
  xlabel = "instance", ylabel = "probability", logy = true, style = "linespoints",
}))

local model = sae.toy.Model {
  n_instances = n_instances, n_features = n_features, n_hidden = 2,
  importance = sae.tensor(nb.row(importance)),
  feature_probability = sae.tensor(nb.column(probability)),
  seed = 1,
}
nb.train("5 -> 2 (8 instances)", model, { steps = STEPS_2D, batch_size = BATCH, lr = 1e-3, progress = true })

local titles = {}
for i, p in ipairs(probability) do titles[i] = string.format("1 - S = %.3f", p) end
nb.wrote(plot.features_in_2d(model.W, {
  file = nb.figure("01_features_2d"), colors = importance, subplot_titles = titles,
  title = "Superposition: 5 features represented in 2-D (color: importance, yellow = most important)",
}))

-- The dense instance (every feature present) cannot gain from
-- superposition: it keeps the two most important features, orthogonal,
-- and drops the rest.
local W = model.W:totable()
local dense_norms = nb.norms(W[1])
print("  dense instance, feature norms: " .. nb.fmt_list(dense_norms))
local represented = {}
for f, n in ipairs(dense_norms) do
  if n > 0.5 then represented[#represented + 1] = f end
end
nb.check(#represented == 2, "the dense instance represents exactly two features",
  #represented .. " with norm > 0.5: features " .. table.concat(represented, ", "))
if #represented == 2 then
  nb.check(represented[1] == 1 and represented[2] == 2, "they are the two most important ones")
  local angle = nb.angle(W[1], represented[1], represented[2])
  nb.check(math.abs(angle - 90) < 10, "and they are orthogonal", string.format("%.1f degrees", angle))
end

-- The sparsest instances use all five features.
for i = n_instances - 1, n_instances do
  local norms = nb.norms(W[i])
  local lo = nb.min_max(norms)
  print(string.format("  instance %d (1 - S = %.4f): norms %s", i, probability[i], nb.fmt_list(norms)))
  nb.check(lo > 0.5, string.format("instance %d represents all five features", i),
    string.format("min norm %.3f", lo))
end


nb.section("Hidden states of a batch")
-- Each input is a sparse mix of features, so most hidden states lie on a
-- feature direction (one feature active), some between two (two active),
-- and the dense instance's cloud fills the plane.
do
  local batch = model:generate_batch(200)
  local hidden = model:hidden(batch)
  nb.wrote(plot.features_in_2d(model.W, {
    file = nb.figure("01_hidden_states"), hidden = hidden, colors = importance,
    subplot_titles = titles, title = "Hidden states of a random batch (gray) and the feature directions",
  }))
  local x = batch:totable()
  for _, i in ipairs({ 1, n_instances }) do
    local counts = { [0] = 0, 0, 0 }
    for b = 1, #x do
      local active = 0
      for f = 1, n_features do
        if x[b][i][f] ~= 0 then active = active + 1 end
      end
      active = math.min(active, 2)
      counts[active] = counts[active] + 1
    end
    print(string.format("  instance %d: %d inputs with no feature, %d with one, %d with two or more",
      i, counts[0], counts[1], counts[2]))
  end
end


nb.section("5 features in 2-D at feature probability 0.01")
-- With equal importance and every feature present 1% of the time, each
-- instance should place all five features at norm near 1, 72 degrees apart.
do
  local pentagon = sae.toy.Model {
    n_instances = 8, n_features = 5, n_hidden = 2, feature_probability = 0.01,
    importance = 1, seed = 2,
  }
  nb.train("5 -> 2 at p = 0.01", pentagon, { steps = STEPS_2D, batch_size = BATCH, lr = 1e-3, progress = true })
  nb.wrote(plot.features_in_2d(pentagon.W, {
    file = nb.figure("01_pentagon"), title = "5 features in 2-D at feature probability 0.01",
  }))
  local Wp = pentagon.W:totable()
  local pentagons = 0
  for i = 1, 8 do
    local norms = nb.norms(Wp[i])
    local gaps = nb.neighbour_gaps(Wp[i], { 1, 2, 3, 4, 5 })
    local nlo, nhi = nb.min_max(norms)
    local glo, ghi = nb.min_max(gaps)
    local is_pentagon = nlo > 0.8 and nhi < 1.25 and glo > 60 and ghi < 84
    if is_pentagon then pentagons = pentagons + 1 end
    print(string.format("  instance %d: norms %s | neighbour angles %s%s", i,
      nb.fmt_list(norms, "%.2f"), nb.fmt_list(gaps, "%.0f"), is_pentagon and "  pentagon" or ""))
  end
  nb.check(pentagons >= 6, "most instances form a pentagon (norms 0.8-1.25, neighbours 60-84 degrees)",
    pentagons .. " of 8")
end


nb.section("100 features in 20-D across sparsity")
-- Twenty instances, importance falling from 1 to 1/100 over the features,
-- feature probability from 1 to 1/20 over the instances. The WᵀW heatmaps
-- go from the identity on the first 20 features (dense) to many features
-- in superposition (sparse).
do
  local n, f_count = 20, 100
  local imp = nb.power_sweep(100, 0, 1, f_count)
  local prob = nb.power_sweep(20, 0, 1, n)
  local big = sae.toy.Model {
    n_instances = n, n_features = f_count, n_hidden = 20,
    importance = sae.tensor(nb.row(imp)), feature_probability = sae.tensor(nb.column(prob)),
    seed = 3,
  }
  nb.train("100 -> 20 (20 instances)", big, { steps = STEPS_ND, batch_size = BATCH, lr = 1e-3, progress = true })
  local sub = {}
  for i, p in ipairs(prob) do sub[i] = string.format("1 - S = %.3f", p) end
  nb.wrote(plot.features_in_Nd(big.W, {
    file = nb.figure("01_features_Nd"), subplot_titles = sub,
    title = "100 features in 20-D: WᵀW (top) and feature norms colored by superposition (bottom)",
  }))
  local Wb = big.W:totable()
  for _, i in ipairs({ 1, n // 2, n }) do
    local norms = nb.norms(Wb[i])
    local count = 0
    for _, v in ipairs(norms) do
      if v > 0.5 then count = count + 1 end
    end
    print(string.format("  instance %d (1 - S = %.3f): %d of 100 features with norm > 0.5", i, prob[i], count))
  end
  local dense_count, sparse_count = 0, 0
  for _, v in ipairs(nb.norms(Wb[1])) do
    if v > 0.5 then dense_count = dense_count + 1 end
  end
  for _, v in ipairs(nb.norms(Wb[n])) do
    if v > 0.5 then sparse_count = sparse_count + 1 end
  end
  nb.check(dense_count <= 22, "the dense instance represents about as many features as dimensions",
    dense_count .. " features")
  nb.check(sparse_count > dense_count, "the sparsest instance represents more features than the dense one",
    sparse_count .. " > " .. dense_count)
end

nb.finish()
