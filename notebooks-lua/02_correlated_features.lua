-- Correlated and anticorrelated features.
--
-- Features that tend to appear together (correlated) or never together
-- (anticorrelated) change how the toy model arranges them. Correlated
-- features prefer orthogonal directions, because they would interfere
-- whenever they fire. Anticorrelated features can share a line with
-- opposite signs, because they never fire at once. This script first
-- checks the batches that generate_batch draws, then trains the
-- correlated, anticorrelated and three-correlated-pairs setups.
--
-- Run: ./run notebook 02_correlated_features [--quick]

local sae = require "sae"
local nb = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local plot = sae.plot

nb.setup("Notebook 02: correlated and anticorrelated features")

local STEPS = nb.quick and 400 or 10000
local BATCH = nb.quick and 256 or 1024
local CHECK_BATCH = nb.quick and 20000 or 100000


nb.section("Batch checks")
-- Features 1-2 are a correlated pair, 3-4 an anticorrelated pair, in 30
-- instances with feature probabilities from 10^-0.5 down to 10^-1.
do
  local n_instances = 30
  local probability = nb.power_sweep(10, 0.5, 1, n_instances)
  local model = sae.toy.Model {
    n_instances = n_instances, n_features = 4, n_hidden = 2,
    n_correlated_pairs = 1, n_anticorrelated_pairs = 1,
    feature_probability = sae.tensor(nb.column(probability)), seed = 1,
  }
  -- Count in chunks so that the nested tables stay small.
  local chunk = 10000
  local together_mismatch, anti_both = 0, 0
  local corr_active, anti_active = {}, {}
  for i = 1, n_instances do corr_active[i], anti_active[i] = 0, 0 end
  local drawn = 0
  while drawn < CHECK_BATCH do
    local x = model:generate_batch(chunk):totable()
    for b = 1, #x do
      for i = 1, n_instances do
        local row = x[b][i]
        if (row[1] ~= 0) ~= (row[2] ~= 0) then together_mismatch = together_mismatch + 1 end
        if row[3] ~= 0 and row[4] ~= 0 then anti_both = anti_both + 1 end
        if row[1] ~= 0 then corr_active[i] = corr_active[i] + 1 end
        if row[3] ~= 0 then anti_active[i] = anti_active[i] + 1 end
      end
    end
    drawn = drawn + chunk
  end
  local corr_err, anti_err = 0, 0
  for i = 1, n_instances do
    corr_err = corr_err + math.abs(corr_active[i] / drawn - probability[i]) / n_instances
    anti_err = anti_err + math.abs(anti_active[i] / drawn - probability[i]) / n_instances
  end
  print(string.format("  %d inputs per instance, %d instances", drawn, n_instances))
  nb.check(together_mismatch == 0, "correlated features are always active together",
    together_mismatch .. " mismatches")
  nb.check(corr_err < 0.002, "each correlated feature is active with the feature probability",
    string.format("mean absolute error %.5f", corr_err))
  nb.check(anti_both == 0, "anticorrelated features are never active together", anti_both .. " overlaps")
  nb.check(anti_err < 0.002, "each anticorrelated feature is active with the feature probability",
    string.format("mean absolute error %.5f", anti_err))

  -- One input per instance: the correlated pair lights up together, the
  -- anticorrelated pair at most one at a time.
  local one = model:generate_batch(1):totable()
  local corr, anti = { {} }, { {} }
  for i = 1, n_instances do
    corr[1][i] = { one[1][i][1], one[1][i][2] }
    anti[1][i] = { one[1][i][3], one[1][i][4] }
  end
  nb.wrote(plot.correlated_features(corr, {
    file = nb.figure("02_batch_correlated"), title = "Correlated feature pairs: should always co-occur",
  }))
  nb.wrote(plot.correlated_features(anti, {
    file = nb.figure("02_batch_anticorrelated"), title = "Anticorrelated feature pairs: should never co-occur",
  }))
end


-- Train a 2-D model on paired features and print, per instance, the norms
-- and the angle between the two features of each pair.
local function train_pairs(name, config, colors, title, file)
  local n = config.n_instances
  local probability = config.probability
  config.probability = nil
  config.feature_probability = sae.tensor(nb.column(probability))
  local model = sae.toy.Model(config)
  nb.train(name, model, { steps = STEPS, batch_size = BATCH, lr = 1e-3, progress = true })
  local titles = {}
  for i, p in ipairs(probability) do titles[i] = string.format("1 - S = %.3f", p) end
  nb.wrote(plot.features_in_2d(model.W, {
    file = nb.figure(file), colors = colors, subplot_titles = titles, title = title,
  }))
  local W = model.W:totable()
  local pair_angles = {}
  for i = 1, n do
    local angles = {}
    for k = 1, config.n_features // 2 do
      angles[k] = nb.angle(W[i], 2 * k - 1, 2 * k)
    end
    pair_angles[i] = angles
    print(string.format("  instance %d (1 - S = %.3f): norms %s | angle within each pair %s degrees",
      i, probability[i], nb.fmt_list(nb.norms(W[i]), "%.2f"), nb.fmt_list(angles, "%.0f")))
  end
  return model, pair_angles, W
end


nb.section("Two correlated pairs")
-- Correlated features fire together, so sharing a direction would cost
-- them every time: each pair takes orthogonal directions.
do
  local _, angles = train_pairs("2 correlated pairs", {
    n_instances = 5, n_features = 4, n_hidden = 2, n_correlated_pairs = 2,
    probability = nb.power_sweep(400, 0.5, 1, 5), seed = 2,
  }, { "blue", "blue", "limegreen", "limegreen" },
    "Correlated feature sets are represented in local orthogonal bases", "02_correlated")
  local orthogonal = 0
  for i = 1, #angles do
    for _, a in ipairs(angles[i]) do
      if math.abs(a - 90) < 15 then orthogonal = orthogonal + 1 end
    end
  end
  nb.check(orthogonal >= 8, "most correlated pairs are orthogonal (90 +- 15 degrees)", orthogonal .. " of 10")
end


nb.section("Two anticorrelated pairs")
-- Anticorrelated features never fire together, so they can share a line
-- with opposite signs (antipodal) at little cost.
do
  local _, angles = train_pairs("2 anticorrelated pairs", {
    n_instances = 5, n_features = 4, n_hidden = 2, n_anticorrelated_pairs = 2,
    probability = nb.power_sweep(10, 0.5, 1, 5), seed = 3,
  }, { "red", "red", "orange", "orange" },
    "Anticorrelated feature sets are frequently represented as antipodal pairs", "02_anticorrelated")
  local antipodal = 0
  for i = 1, #angles do
    for _, a in ipairs(angles[i]) do
      if a > 160 then antipodal = antipodal + 1 end
    end
  end
  nb.check(antipodal >= 5, "anticorrelated pairs are often antipodal (angle > 160 degrees)",
    antipodal .. " of 10")
end


nb.section("Three correlated pairs")
-- Three pairs do not fit orthogonally into 2-D: each pair stays side by
-- side, and some pairs collapse onto one direction.
do
  local _, angles = train_pairs("3 correlated pairs", {
    n_instances = 5, n_features = 6, n_hidden = 2, n_correlated_pairs = 3,
    probability = nb.power_sweep(100, 0.5, 1, 5), seed = 4,
  }, { "blue", "blue", "limegreen", "limegreen", "purple", "purple" },
    "Correlated feature sets sit side by side when they cannot be orthogonal (some collapse)",
    "02_three_correlated")
  local side_by_side, collapsed = 0, 0
  for i = 1, #angles do
    for _, a in ipairs(angles[i]) do
      if a < 10 then
        collapsed = collapsed + 1
      elseif a < 85 then
        side_by_side = side_by_side + 1
      end
    end
  end
  print(string.format("  %d pairs side by side (10-85 degrees), %d collapsed onto one direction (< 10 degrees)",
    side_by_side, collapsed))
  nb.check(side_by_side + collapsed == 3 * #angles, "no correlated pair is orthogonal or opposed",
    (side_by_side + collapsed) .. " of " .. 3 * #angles .. " pairs under 85 degrees")
end

nb.finish()
