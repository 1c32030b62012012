-- sae.toy: toy models of superposition.
--
--   local model = sae.toy.Model{ n_instances = 8, n_features = 5,
--     n_hidden = 2, feature_probability = p, importance = imp }
--   local history = model:train{ steps = 10000 }
--
-- The model type and its kernels are C (sae.core._toy, csrc/toy.c); this
-- module adds training, saving and loading, and dimensionality().

local core = require "sae.core"
local optim = require "sae.optim"
local train = require "sae.train"

local methods = core._toy.methods
local toy = {}

local options = require "sae.options"

local MODEL_OPTIONS = {
  "n_instances", "n_features", "n_hidden", "n_correlated_pairs",
  "n_anticorrelated_pairs", "feature_probability", "importance", "seed", "kind",
}

local TRAIN_OPTIONS = {
  "steps", "batch_size", "lr", "lr_schedule", "log_every", "progress", "seed",
  "on_log", "optimizer",
}

function toy.Model(...)
  options.check("Model", (...), MODEL_OPTIONS, 2)
  return core._toy.Model(...)
end


-- model:train{ steps = 10000, batch_size = 1024, lr = 1e-3,
-- lr_schedule = "constant", log_every = 100, progress = true, seed,
-- on_log, optimizer } -> history
--
-- Adam (or the given optimizer) on fresh batches from the model's
-- generator; `seed` restarts that generator first. Returns the list of
-- log records { step =, loss =, lr =, instance_losses = }, where loss is
-- the sum over instances as loss() gives it and instance_losses the
-- tensor [I] of per-instance losses; on_log receives each record.
function methods:train(opts)
  opts = opts or {}
  options.check("train", opts, TRAIN_OPTIONS, 2)
  local batch_size = opts.batch_size or 1024
  if math.type(batch_size) ~= "integer" or batch_size < 1 then
    error("train: option batch_size expected an integer >= 1, got "
      .. tostring(batch_size), 2)
  end
  if opts.seed ~= nil then self:manual_seed(opts.seed) end
  local lr = opts.lr or (opts.optimizer and opts.optimizer:get_lr()) or 1e-3
  local optimizer = opts.optimizer or optim.Adam(self, { lr = lr })
  local model = self
  local steps, log_every = opts.steps or 10000, opts.log_every or 100
  return train.run{
    name = "train",
    steps = steps,
    lr = lr,
    lr_schedule = opts.lr_schedule,
    log_every = log_every,
    progress = opts.progress,
    optimizer = optimizer,
    on_log = opts.on_log,
    step = function(step)
      local loss = model:train_step(batch_size)
      optimizer:step()
      if (step - 1) % log_every == 0 or step == steps then
        return loss, { instance_losses = model:instance_losses() }
      end
      return loss
    end,
  }
end


-- model:config() -> the table Model{} takes, without the tensors.
function methods:config()
  return {
    kind = self.kind,
    n_instances = self.n_instances,
    n_features = self.n_features,
    n_hidden = self.n_hidden,
    n_correlated_pairs = self.n_correlated_pairs,
    n_anticorrelated_pairs = self.n_anticorrelated_pairs,
    seed = self.seed,
  }
end


local config_keys = { "kind", "n_instances", "n_features", "n_hidden",
  "n_correlated_pairs", "n_anticorrelated_pairs", "seed" }


-- model:save(path): a safetensors file with the parameters,
-- feature_probability and importance, and the configuration as metadata
-- strings.
function methods:save(path)
  local sae = require "sae"
  if type(sae.save) ~= "function" then
    error("save: sae.save (the safetensors writer) is not available in this "
      .. "build", 2)
  end
  local tensors = {
    feature_probability = self.feature_probability,
    importance = self.importance,
  }
  for _, entry in ipairs(self:parameters()) do
    tensors[entry.name] = entry.param
  end
  local metadata = { format = "sae.toy.Model" }
  local config = self:config()
  for _, key in ipairs(config_keys) do metadata[key] = tostring(config[key]) end
  return sae.save(path, tensors, metadata)
end


-- sae.toy.load(path) -> model saved by model:save(path).
function toy.load(path)
  local sae = require "sae"
  if type(sae.load) ~= "function" then
    error("load: sae.load (the safetensors reader) is not available in this "
      .. "build", 2)
  end
  local tensors, metadata = sae.load(path)
  if type(metadata) ~= "table" or metadata.format ~= "sae.toy.Model" then
    error("load: " .. tostring(path) .. " is not a saved sae.toy.Model "
      .. "(metadata format is " .. tostring(metadata and metadata.format)
      .. ")", 2)
  end
  local cfg = {}
  for _, key in ipairs(config_keys) do
    local v = metadata[key]
    if v == nil then
      error("load: " .. tostring(path) .. " has no metadata entry " .. key, 2)
    end
    cfg[key] = key == "kind" and v or math.tointeger(tonumber(v))
  end
  cfg.feature_probability = tensors.feature_probability
  cfg.importance = tensors.importance
  local model = toy.Model(cfg)
  for _, entry in ipairs(model:parameters()) do
    local t = tensors[entry.name]
    if t == nil then
      error("load: " .. tostring(path) .. " has no tensor " .. entry.name, 2)
    end
    entry.param:copy_(t)
  end
  return model
end


-- sae.toy.dimensionality(W) -> dims [I, F], dims_per_feature [I]
--
-- For W [I, H, F] (columns W_i are the feature directions), the feature
-- dimensionality ||W_i||^2 / sum_j (W^_i . W_j)^2 with W^_i = W_i /
-- ||W_i||, and the dimensions per feature H / ||W||_F^2 of each instance
-- (Elhage et al., "Toy Models of Superposition", 2022, section "Feature
-- Dimensionality"). A zero column has dimensionality 0, and an all-zero
-- instance infinite dimensions per feature.
toy.dimensionality = core._toy.dimensionality


return toy
