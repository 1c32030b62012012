-- Lua side of sae.SAE: the constructor, parameters(), the training loop
-- with dead-neuron resampling and its data log, save and load.
--
-- The training recipe follows the ARENA exercises on superposition and
-- SAEs (AutoEncoder.optimize): normalise the decoder, resample dead
-- neurons every `neuron_resample_window` steps using the last
-- `dead_neuron_window` steps of activity, one Adam step per batch.

return function(sae, core)
  local methods = core.SAE_mt.__methods

  local options = require "sae.options"

  local SAE_OPTIONS = {
    "n_instances", "n_input_ae", "n_hidden_ae", "l1_coeff", "tied_weights", "seed",
  }

  local TRAIN_OPTIONS = {
    "model", "data", "steps", "batch_size", "lr", "lr_schedule", "log_every",
    "neuron_resample_window", "dead_neuron_window", "neuron_resample_scale",
    "resample_method", "progress", "on_log", "optimizer", "betas", "eps",
    "weight_decay",
  }

  function sae.SAE(...)
    options.check("SAE", (...), SAE_OPTIONS, 2)
    return core.SAE_new(...)
  end

  function sae.is_sae(x)
    return getmetatable(x) == core.SAE_mt
  end

  function methods.parameters(self)
    local names = { "W_enc", "W_dec", "b_enc", "b_dec" }
    local list = {}
    for _, name in ipairs(names) do
      if self[name] ~= nil then
        list[#list + 1] = { name = name, param = self[name], grad = self.grad[name] }
      end
    end
    return list
  end

  local function check_count(opts, name, default, allow_nil)
    local v = opts[name]
    if v == nil then
      if default ~= nil or allow_nil then return default end
      error(string.format("train: argument #1 (%s) expected a positive integer, got nil",
        name), 3)
    end
    if math.type(v) ~= "integer" or v < 1 then
      error(string.format("train: argument #1 (%s) expected a positive integer, got %s",
        name, tostring(v)), 3)
    end
    return v
  end

  -- Marks resampled neurons red and the others black, per instance.
  local function colors_from(mask)
    local rows = mask:totable()
    local colors = {}
    for i, row in ipairs(rows) do
      colors[i] = {}
      for k, dead in ipairs(row) do colors[i][k] = dead ~= 0 and "red" or "black" end
    end
    return colors
  end

  -- Returns [1, I, H] with 1 where a neuron fired in the last `window`
  -- steps before `step` (0-based), 0 where it did not.
  local function window_activity(last, step, window)
    local rows = last:totable()
    for _, row in ipairs(rows) do
      for k, s in ipairs(row) do row[k] = (s >= step - window) and 1 or 0 end
    end
    return sae.tensor({ rows })
  end

  --- Trains the autoencoder on hidden states from `model`
  -- (model:hidden(model:generate_batch(B))) or from `data(B)`, with the
  -- built-in Adam (options betas, eps, weight_decay) or with `optimizer`,
  -- an optimizer over self:parameters() such as sae.optim.Adam. A neuron
  -- is dead when it did not fire in the last `dead_neuron_window` steps.
  -- Returns the data log {W_enc, W_dec, colors, titles, frac_active,
  -- steps, loss} with one entry per logged step.
  function methods.train(self, opts)
    if type(opts) ~= "table" then
      error("train: argument #1 (options) expected a table, got " .. type(opts), 2)
    end
    options.check("train", opts, TRAIN_OPTIONS, 2)
    local data = opts.data
    if data == nil then
      local model = opts.model
      if model == nil then
        error("train: argument #1 (model or data) expected a toy model or a function, got nil", 2)
      end
      data = function(batch_size) return model:hidden(model:generate_batch(batch_size)) end
    elseif type(data) ~= "function" then
      error("train: argument #1 (data) expected a function, got " .. type(data), 2)
    end
    local steps = check_count(opts, "steps", 10000)
    local batch_size = check_count(opts, "batch_size", 1024)
    local log_every = check_count(opts, "log_every", 100)
    local resample_window = check_count(opts, "neuron_resample_window", nil, true)
    local dead_window = check_count(opts, "dead_neuron_window", nil, true)
    if resample_window ~= nil and (dead_window == nil or dead_window >= resample_window) then
      error(string.format("train: argument #1 (dead_neuron_window) expected an integer "
        .. "below neuron_resample_window (%d), got %s", resample_window, tostring(dead_window)), 2)
    end
    local lr = opts.lr or 1e-3
    if type(lr) ~= "number" or not (lr > 0) then
      error("train: argument #1 (lr) expected a positive number, got " .. tostring(lr), 2)
    end
    local ok, lr_scale = pcall(sae.train.schedule, opts.lr_schedule)
    if not ok then
      error(string.format("train: argument #1 (lr_schedule) expected \"constant\", "
        .. "\"linear\", \"cosine\" or a function, got %s", tostring(opts.lr_schedule)), 2)
    end
    local scale = opts.neuron_resample_scale or 0.2
    local method = opts.resample_method or "simple"
    if method ~= "simple" and method ~= "anthropic" then
      error(string.format("train: argument #1 (resample_method) expected \"simple\" or "
        .. "\"anthropic\", got %s", tostring(method)), 2)
    end
    local betas = opts.betas or { 0.9, 0.999 }
    local eps = opts.eps or 1e-8
    local weight_decay = opts.weight_decay or 0.0
    local optimizer = opts.optimizer
    local on_log = opts.on_log
    local bar = sae.train.progress(steps, { enabled = opts.progress == true })

    local I, H = self.n_instances, self.n_hidden_ae
    local last = sae.zeros(I, H, "int64"):fill_(-(1 << 40))
    local log = { W_enc = {}, W_dec = {}, colors = {}, titles = {}, frac_active = {},
      steps = {}, loss = {} }
    local colors, title = colors_from(sae.zeros(I, H, "int64")), "no resampling yet"

    for step = 0, steps - 1 do
      self:normalize_decoder()
      if resample_window ~= nil and (step + 1) % resample_window == 0 then
        local window = window_activity(last, step, dead_window)
        local mask
        mask, title = self:resample_neurons(data(batch_size), window, scale, method)
        colors = colors_from(mask)
        if optimizer ~= nil then
          -- resample_neurons resets the built-in Adam moments itself
          local m = mask:float()
          optimizer:reset_state(self.W_enc, m:view(I, 1, H))
          if self.W_dec ~= nil then optimizer:reset_state(self.W_dec, m:view(I, H, 1)) end
          optimizer:reset_state(self.b_enc, m)
        end
      end

      local step_lr = lr * lr_scale(step, steps)
      local h = data(batch_size)
      self:zero_grad()
      local loss = self:backward(h)
      if optimizer ~= nil then
        optimizer:set_lr(step_lr)
        optimizer:step()
      else
        self:adam_step(step_lr, betas[1], betas[2], eps, weight_decay)
      end
      self:mark_active(last, step)

      if step % log_every == 0 or step + 1 == steps then
        local n = #log.steps + 1
        log.W_enc[n] = self.W_enc:clone()
        log.W_dec[n] = self.tied_weights and self.W_enc:transpose(2, 3):contiguous()
          or self.W_dec:clone()
        log.colors[n] = colors
        log.titles[n] = string.format("Step %d/%d: %s", step, steps, title)
        log.frac_active[n] = self:frac_active()
        log.steps[n] = step
        log.loss[n] = loss
        local l1, l2 = self:loss_parts()
        bar:update(step + 1, { { "l1", self.l1_coeff * l1 }, { "l2", l2 }, { "lr", step_lr } })
        if on_log then on_log(step, loss, self, step_lr) end
      end
    end
    bar:close()
    return log
  end

  -- TODO: save(path) and sae.load_sae(path) wait for the safetensors
  -- reader and writer (sae.save / sae.load).
  function methods.save(self, path)
    if sae.save == nil then error("save: safetensors support is not built in", 2) end
    local tensors = {}
    for _, p in ipairs(self:parameters()) do tensors[p.name] = p.param end
    return sae.save(path, tensors, {
      kind = "sae.SAE",
      n_instances = tostring(self.n_instances),
      n_input_ae = tostring(self.n_input_ae),
      n_hidden_ae = tostring(self.n_hidden_ae),
      l1_coeff = string.format("%.17g", self.l1_coeff),
      tied_weights = tostring(self.tied_weights),
    })
  end

  function sae.load_sae(path)
    if sae.load == nil then error("load_sae: safetensors support is not built in", 2) end
    local tensors, meta = sae.load(path)
    if tensors == nil then return nil, meta end
    if type(meta) ~= "table" or meta.kind ~= "sae.SAE" then
      return nil, "load_sae: " .. tostring(path) .. " holds no sae.SAE"
    end
    local s = sae.SAE {
      n_instances = math.tointeger(tonumber(meta.n_instances)),
      n_input_ae = math.tointeger(tonumber(meta.n_input_ae)),
      n_hidden_ae = math.tointeger(tonumber(meta.n_hidden_ae)),
      l1_coeff = tonumber(meta.l1_coeff),
      tied_weights = meta.tied_weights == "true",
    }
    for _, p in ipairs(s:parameters()) do p.param:copy_(tensors[p.name]) end
    return s
  end
end
