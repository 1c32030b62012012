-- sae.optim: Adam and SGD over lists of parameters.
--
-- An optimizer takes a list of entries { name = "W", param = tensor,
-- grad = tensor } (what model:parameters() returns) or an object with a
-- parameters() method. Parameters and gradients must be contiguous
-- float32 tensors. The update of each tensor is one C loop
-- (sae.core._optim); the state tensors and the step count live here.
--
--   local opt = sae.optim.Adam(model, { lr = 1e-3 })
--   opt:zero_grad(); model:backward(x); opt:step()
--
-- State that outlives a step:
--   opt:state(param)             -> { exp_avg =, exp_avg_sq = } (Adam) or
--                                   { momentum_buffer = } (SGD), live views
--   opt:reset_state(param, mask) -> zeroes the state where mask ~= 0; mask
--                                   is a float tensor that broadcasts to
--                                   param's shape (e.g. [I, 1, n] to reset
--                                   whole columns of an [I, d, n] weight)
--   opt:state_dict()             -> { step =, hparams =, tensors = {
--                                     ["W.exp_avg"] = copy, ... } }
--   opt:load_state_dict(sd)      -> copies the tensors, the step count and
--                                   the hyperparameters back in

local core = require "sae.core"
local options = require "sae.options"

local kernels = core._optim
local optim = {}


local function shape_string(t)
  return "[" .. table.concat(t:shape(), ", ") .. "]"
end


local function check_number(fname, name, value, low, high, low_open)
  if type(value) ~= "number" then
    error(string.format("%s: option %s expected a number, got %s", fname, name,
      type(value)), 3)
  end
  local ok = (low_open and value > low or not low_open and value >= low)
    and (high == nil or value < high)
  if not ok then
    local range = (low_open and "> " or ">= ") .. tostring(low)
    if high then range = range .. " and < " .. tostring(high) end
    error(string.format("%s: option %s expected a number %s, got %s", fname,
      name, range, tostring(value)), 3)
  end
  return value
end


-- Returns the list of parameter entries from a list or a model.
local function collect_params(fname, params)
  if type(params) == "table" or type(params) == "userdata" then
    local ok, parameters = pcall(function() return params.parameters end)
    if ok and type(parameters) == "function" then params = params:parameters() end
  end
  if type(params) ~= "table" or #params == 0 then
    error(fname .. ": argument #1 (params) expected a non-empty list of "
      .. "{ name =, param =, grad = } or a model, got " .. type(params), 3)
  end
  local list = {}
  for i, entry in ipairs(params) do
    local p, g = entry.param, entry.grad
    if not (core.Tensor_mt == getmetatable(p) and core.Tensor_mt == getmetatable(g)) then
      error(string.format("%s: params[%d] expected fields param and grad "
        .. "holding tensors", fname, i), 3)
    end
    if p:dtype() ~= "float32" or g:dtype() ~= "float32" then
      error(string.format("%s: params[%d] expected float32 tensors, got %s "
        .. "and %s", fname, i, p:dtype(), g:dtype()), 3)
    end
    if not (p:is_contiguous() and g:is_contiguous()) then
      error(string.format("%s: params[%d] expected contiguous param and "
        .. "grad tensors", fname, i), 3)
    end
    if p:numel() ~= g:numel() then
      error(string.format("%s: params[%d] expected param and grad of one "
        .. "shape, got shapes %s and %s", fname, i, shape_string(p),
        shape_string(g)), 3)
    end
    list[i] = { name = entry.name or tostring(i), param = p, grad = g }
  end
  return list
end


-- Methods shared by both optimizers.
local Optimizer = {}
Optimizer.__index = Optimizer


function Optimizer:zero_grad()
  for _, entry in ipairs(self.params) do entry.grad:zero_() end
end


function Optimizer:set_lr(lr)
  self.lr = check_number(self.kind .. ":set_lr", "lr", lr, 0)
end


function Optimizer:get_lr()
  return self.lr
end


-- Returns the index of `param` (a tensor or a parameter name) in the list.
function Optimizer:find(param, fname)
  for i, entry in ipairs(self.params) do
    if entry.param == param or entry.name == param then return i end
  end
  error(string.format("%s: argument #1 (param) expected one of the "
    .. "optimizer's parameters (a tensor or a name), got %s", fname,
    tostring(param)), 3)
end


function Optimizer:state(param)
  return self.states[self:find(param, self.kind .. ":state")]
end


function Optimizer:reset_state(param, mask)
  local fname = self.kind .. ":reset_state"
  local state = self.states[self:find(param, fname)]
  for _, key in ipairs(self.state_keys) do
    if mask == nil then
      state[key]:zero_()
    else
      kernels.masked_zero(state[key], mask)
    end
  end
end


function Optimizer:state_dict()
  local tensors = {}
  for i, entry in ipairs(self.params) do
    for _, key in ipairs(self.state_keys) do
      tensors[entry.name .. "." .. key] = self.states[i][key]:clone()
    end
  end
  local hparams = {}
  for k, v in pairs(self:hparams()) do hparams[k] = v end
  return { step = self.step_count, hparams = hparams, tensors = tensors }
end


function Optimizer:load_state_dict(sd)
  local fname = self.kind .. ":load_state_dict"
  if type(sd) ~= "table" or math.type(sd.step) ~= "integer"
    or type(sd.tensors) ~= "table" then
    error(fname .. ": argument #1 (state) expected a table with an integer "
      .. "step and a table of tensors, as state_dict() returns", 2)
  end
  for i, entry in ipairs(self.params) do
    for _, key in ipairs(self.state_keys) do
      local name = entry.name .. "." .. key
      local src, dst = sd.tensors[name], self.states[i][key]
      if getmetatable(src) ~= core.Tensor_mt then
        error(string.format("%s: state tensor %s is missing", fname, name), 2)
      end
      if src:numel() ~= dst:numel() then
        error(string.format("%s: state tensor %s expected shape %s, got %s",
          fname, name, shape_string(dst), shape_string(src)), 2)
      end
      dst:copy_(src:reshape(dst:shape()))
    end
  end
  self.step_count = sd.step
  -- Like torch, loading restores the hyperparameters saved with the state.
  for key, value in pairs(sd.hparams or {}) do
    if self[key] ~= nil and type(value) == "number" then self[key] = value end
  end
end


local function new_state(params, keys)
  local states = {}
  for i, entry in ipairs(params) do
    local s = {}
    for _, key in ipairs(keys) do s[key] = core.zeros(entry.param:shape()) end
    states[i] = s
  end
  return states
end


-- Adam ------------------------------------------------------------------

local Adam = setmetatable({}, { __index = Optimizer })
Adam.__index = Adam


-- Adam(params, { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8,
-- weight_decay = 0 }), the defaults of torch.optim.Adam. weight_decay is
-- the L2 form torch.optim.Adam uses (added to the gradient), not AdamW.
function optim.Adam(params, opts)
  opts = opts or {}
  options.check("Adam", opts, { "lr", "betas", "eps", "weight_decay" }, 2)
  local fname = "Adam"
  local self = setmetatable({ kind = "Adam" }, Adam)
  self.params = collect_params(fname, params)
  self.lr = check_number(fname, "lr", opts.lr or 1e-3, 0)
  local betas = opts.betas or { 0.9, 0.999 }
  if type(betas) ~= "table" then
    error("Adam: option betas expected a table of two numbers, got "
      .. type(betas), 2)
  end
  self.beta1 = check_number(fname, "betas[1]", betas[1], 0, 1)
  self.beta2 = check_number(fname, "betas[2]", betas[2], 0, 1)
  self.eps = check_number(fname, "eps", opts.eps or 1e-8, 0)
  self.weight_decay = check_number(fname, "weight_decay",
    opts.weight_decay or 0, 0)
  self.state_keys = { "exp_avg", "exp_avg_sq" }
  self.states = new_state(self.params, self.state_keys)
  self.step_count = 0
  return self
end


function Adam:hparams()
  return { lr = self.lr, beta1 = self.beta1, beta2 = self.beta2,
           eps = self.eps, weight_decay = self.weight_decay }
end


function Adam:step()
  self.step_count = self.step_count + 1
  local update = kernels.adam_update
  for i, entry in ipairs(self.params) do
    local s = self.states[i]
    update(entry.param, entry.grad, s.exp_avg, s.exp_avg_sq, self.lr,
      self.beta1, self.beta2, self.eps, self.weight_decay, self.step_count)
  end
end


-- SGD -------------------------------------------------------------------

local SGD = setmetatable({}, { __index = Optimizer })
SGD.__index = SGD


-- SGD(params, { lr = 1e-2, momentum = 0, weight_decay = 0 }) as
-- torch.optim.SGD with dampening 0 and no Nesterov momentum.
function optim.SGD(params, opts)
  opts = opts or {}
  options.check("SGD", opts, { "lr", "momentum", "weight_decay" }, 2)
  local fname = "SGD"
  local self = setmetatable({ kind = "SGD" }, SGD)
  self.params = collect_params(fname, params)
  self.lr = check_number(fname, "lr", opts.lr or 1e-2, 0)
  self.momentum = check_number(fname, "momentum", opts.momentum or 0, 0)
  self.weight_decay = check_number(fname, "weight_decay",
    opts.weight_decay or 0, 0)
  self.state_keys = self.momentum > 0 and { "momentum_buffer" } or {}
  self.states = new_state(self.params, self.state_keys)
  self.step_count = 0
  return self
end


function SGD:hparams()
  return { lr = self.lr, momentum = self.momentum,
           weight_decay = self.weight_decay }
end


function SGD:step()
  self.step_count = self.step_count + 1
  local first = self.step_count == 1
  for i, entry in ipairs(self.params) do
    kernels.sgd_update(entry.param, entry.grad, self.states[i].momentum_buffer,
      self.lr, self.momentum, self.weight_decay, first)
  end
end


return optim
