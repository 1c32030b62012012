-- Feature geometry.
--
-- How many hidden dimensions does each feature get? Dimensions per
-- feature, n_hidden / ||W||²_F, is 1 when every represented feature has a
-- dimension to itself and falls as features crowd into superposition.
-- It does not fall smoothly. It sticks at 1/2, where antipodal pairs
-- share a dimension, and then passes 2/5, where pentagons share two
-- dimensions among five. The feature dimensionality
-- ||W_i||² / Σ_j (Ŵ_i·W_j)² shows the same per feature.
--
-- Run: ./run notebook 04_feature_geometry [--quick]

local sae = require "sae"
local nb = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local plot = sae.plot

nb.setup("Notebook 04: feature geometry")

local STEPS = nb.quick and 300 or 10000
local BATCH = nb.quick and 256 or 1024

local N_INSTANCES = 20
local N_FEATURES = nb.quick and 100 or 200
local N_HIDDEN = 20


nb.section(string.format("%d features in %d dimensions across sparsity", N_FEATURES, N_HIDDEN))
-- Equal importance; feature probability from 1 down to 1/20.
local probability = nb.power_sweep(20, 0, 1, N_INSTANCES)
print("  feature probability: " .. nb.fmt_list(probability, "%.3f"))
local model = sae.toy.Model {
  n_instances = N_INSTANCES, n_features = N_FEATURES, n_hidden = N_HIDDEN,
  feature_probability = sae.tensor(nb.column(probability)), seed = 1,
}
nb.train(string.format("%d -> %d (%d instances)", N_FEATURES, N_HIDDEN, N_INSTANCES), model,
  { steps = STEPS, batch_size = BATCH, lr = 1e-3, progress = true })


nb.section("Dimensions per feature")
local dimensionality, dims_per_feature = sae.toy.dimensionality(model.W)
local dpf = dims_per_feature:totable()
nb.wrote(plot.feature_geometry(model.W, {
  file = nb.figure("04_dimensions_per_feature"), feature_probability = probability,
  title = "Dimensions per feature against 1/(1-S)",
}))
for i = 1, N_INSTANCES do
  print(string.format("  1/(1-S) = %6.2f: dimensions per feature %.3f", 1 / probability[i], dpf[i]))
end


nb.section("Feature dimensionality")
-- Each feature's dimensionality, scattered at its instance's sparsity
-- (points are spread sideways a little so that equal values stay visible).
nb.wrote(plot.feature_geometry(model.W, {
  file = nb.figure("04_feature_dimensionality"), feature_probability = probability,
  dimensionality = dimensionality,
  title = "Feature dimensionality (points) and dimensions per feature (line)",
}))

-- Count the features near the fractions that Elhage et al. (2022) single
-- out, over all instances, and the instances whose dimensions per feature
-- sit near 1/2 and 2/5.
local dims = dimensionality:totable()
local fractions = { { 1, "1" }, { 3 / 4, "3/4" }, { 2 / 3, "2/3" }, { 1 / 2, "1/2" },
  { 2 / 5, "2/5" }, { 1 / 3, "1/3" } }
local counts = {}
local total = 0
for i = 1, N_INSTANCES do
  for f = 1, N_FEATURES do
    local d = dims[i][f]
    if d > 0.05 then
      total = total + 1
      for k, fr in ipairs(fractions) do
        if math.abs(d - fr[1]) < 0.02 then counts[k] = (counts[k] or 0) + 1 end
      end
    end
  end
end
print(string.format("  %d represented features (dimensionality > 0.05) over all instances; within 0.02 of:", total))
for k, fr in ipairs(fractions) do
  print(string.format("    %-4s %d", fr[2], counts[k] or 0))
end

local near_half, near_two_fifths = 0, 0
for i = 1, N_INSTANCES do
  if math.abs(dpf[i] - 0.5) < 0.03 then near_half = near_half + 1 end
  if math.abs(dpf[i] - 0.4) < 0.03 then near_two_fifths = near_two_fifths + 1 end
end
nb.check(math.abs(dpf[1] - 1) < 0.1, "the dense instance has about one dimension per feature",
  string.format("%.3f", dpf[1]))
nb.check(near_half >= 2, "dimensions per feature plateaus near 1/2", near_half .. " instances within 0.03")
nb.check(near_two_fifths >= 1, "and later comes within 0.03 of 2/5",
  near_two_fifths .. " instances within 0.03")
nb.check((counts[4] or 0) > 0 and (counts[5] or 0) > 0,
  "features sit at dimensionality 1/2 and 2/5", (counts[4] or 0) .. " and " .. (counts[5] or 0))

nb.finish()
