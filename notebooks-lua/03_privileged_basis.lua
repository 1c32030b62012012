-- Superposition in a privileged basis.
--
-- A ReLU on the hidden layer makes the hidden dimensions neurons: the
-- basis is privileged, and we can ask whether each neuron represents one
-- feature (monosemantic) or several (polysemantic). This script trains
-- the neuron model (10 features, 5 neurons) and the neuron computation
-- model, which computes |x| of 100 features with 40 neurons.
--
-- Run: ./run notebook 03_privileged_basis [--quick]

local sae = require "sae"
local nb = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
local plot = sae.plot

nb.setup("Notebook 03: superposition in a privileged basis")

local STEPS_NEURON = nb.quick and 400 or 10000
local STEPS_COMPUTATION = nb.quick and 150 or 5000
local BATCH = nb.quick and 256 or 1024


-- Per neuron of W [H][F]: the largest share of the neuron's squared
-- weight that one feature has, and that feature.
local function neuron_shares(W)
  local shares = {}
  for h = 1, #W do
    local total, best, best_f = 0, 0, 0
    for f = 1, #W[h] do
      local v = W[h][f] ^ 2
      total = total + v
      if v > best then best, best_f = v, f end
    end
    shares[h] = { share = total > 0 and best / total or 0, feature = best_f, norm = math.sqrt(total) }
  end
  return shares
end


-- Print, per instance, how many neurons are monosemantic (one feature has
-- at least 90% of the squared weight) and which features they carry.
local function report_neurons(W, probability)
  local mono = {}
  for i = 1, #W do
    local shares = neuron_shares(W[i])
    local count, seen, features = 0, {}, {}
    for _, s in ipairs(shares) do
      if s.share >= 0.9 and s.norm > 0.1 then
        count = count + 1
        if not seen[s.feature] then
          seen[s.feature] = true
          features[#features + 1] = s.feature
        end
      end
    end
    table.sort(features)
    mono[i] = count
    print(string.format("  instance %d (1 - S = %.3f): %d of %d neurons monosemantic%s", i,
      probability[i], count, #shares,
      #features > 0 and " (for features " .. table.concat(features, ", ") .. ")" or ""))
  end
  return mono
end


nb.section("Neuron model: 10 features, 5 neurons")
-- Importance 0.75^i; the feature probability varies over the instances.
-- Dense instances use each neuron for one important feature; sparse
-- instances pack several features into each neuron.
do
  local probability = { 0.75, 0.35, 0.15, 0.1, 0.06, 0.02, 0.01 }
  local importance = {}
  for f = 1, 10 do importance[f] = 0.75 ^ f end
  local model = sae.toy.Model {
    kind = "neuron", n_instances = 7, n_features = 10, n_hidden = 5,
    importance = sae.tensor(nb.row(importance)),
    feature_probability = sae.tensor(nb.column(probability)), seed = 1,
  }
  nb.train("neuron model", model, { steps = STEPS_NEURON, batch_size = BATCH, lr = 1e-3, progress = true })
  local titles = {}
  for i, p in ipairs(probability) do titles[i] = string.format("1 - S = %.2f", p) end
  nb.wrote(plot.features_in_Nd(model.W, {
    file = nb.figure("03_neuron_model"), neuron = true, colors = importance, subplot_titles = titles,
    title = "Neuron model: 10 features, 5 neurons, importance 0.75^i (bright = important)",
  }))
  local mono = report_neurons(model.W:totable(), probability)
  nb.check(mono[1] >= 4, "in the densest instance most neurons are monosemantic", mono[1] .. " of 5")
  nb.check(mono[#mono] < mono[1], "the sparsest instance has fewer monosemantic neurons than the densest",
    mono[#mono] .. " < " .. mono[1])
end


nb.section("Neuron computation model: |x| of 100 features with 40 neurons")
-- Features are uniform in [-1, 1] when present and the target is |x|.
-- Dense instances give the most important features a neuron each (or a
-- pair for the two signs); sparse instances spread many features over
-- each neuron.
do
  local probability = { 1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001 }
  local importance = {}
  for f = 1, 100 do importance[f] = 0.8 ^ f end
  local model = sae.toy.Model {
    kind = "computation", n_instances = 7, n_features = 100, n_hidden = 40,
    importance = sae.tensor(nb.row(importance)),
    feature_probability = sae.tensor(nb.column(probability)), seed = 2,
  }
  nb.train("neuron computation model", model,
    { steps = STEPS_COMPUTATION, batch_size = BATCH, lr = 1e-3, progress = true })
  local titles = {}
  for i, p in ipairs(probability) do titles[i] = string.format("1 - S = %.3f", p) end
  nb.wrote(plot.features_in_Nd(model.W1, {
    file = nb.figure("03_neuron_computation_W1"), neuron = true, colors = importance,
    subplot_titles = titles, columns = 4,
    title = "Neuron computation model W1: 100 features, 40 neurons, importance 0.8^i",
  }))
  local mono = report_neurons(model.W1:totable(), probability)
  nb.check(mono[1] > mono[#mono], "dense instances have more monosemantic neurons than sparse ones",
    mono[1] .. " > " .. mono[#mono])
end

nb.finish()
