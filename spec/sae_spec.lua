local sae = require "sae"

local fixtures = dofile("spec/fixtures/sae_forward.lua")

-- Plain-Lua reference of the SAE in double precision, on nested tables
-- p = {W_enc[i][j][k], W_dec[i][k][j] (nil when tied), b_enc[i][k],
-- b_dec[i][j]} and h[b][i][j].
local function ref_forward(p, h, l1_coeff)
  local B, I, D, H = #h, #p.b_enc, #p.b_dec[1], #p.b_enc[1]
  local l1, l2, acts, rec, loss = {}, {}, {}, {}, 0
  for b = 1, B do
    l1[b], l2[b], acts[b], rec[b] = {}, {}, {}, {}
    for i = 1, I do
      local a, r, s1, s2 = {}, {}, 0, 0
      for k = 1, H do
        local pre = p.b_enc[i][k]
        for j = 1, D do pre = pre + (h[b][i][j] - p.b_dec[i][j]) * p.W_enc[i][j][k] end
        a[k] = math.max(pre, 0)
        s1 = s1 + math.abs(a[k])
      end
      for j = 1, D do
        local v = p.b_dec[i][j]
        for k = 1, H do
          local w = p.W_dec and p.W_dec[i][k][j] or p.W_enc[i][j][k]
          v = v + a[k] * w
        end
        r[j] = v
        s2 = s2 + (v - h[b][i][j]) ^ 2
      end
      acts[b][i], rec[b][i], l1[b][i], l2[b][i] = a, r, s1, s2 / D
      loss = loss + (l1_coeff * s1 + s2 / D) / B
    end
  end
  return { l1_loss = l1, l2_loss = l2, loss = loss, acts = acts, h_reconstructed = rec }
end

local function params_of(s)
  local p = {}
  for _, e in ipairs(s:parameters()) do p[e.name] = e.param:totable() end
  return p
end

local function set_params(s, src)
  for _, e in ipairs(s:parameters()) do e.param:copy_(sae.tensor(src[e.name])) end
end

local function flat(x, out)
  out = out or {}
  if type(x) == "table" then
    for _, v in ipairs(x) do flat(v, out) end
  else
    out[#out + 1] = x
  end
  return out
end

local function assert_close(expected, actual, tol, what)
  local e, a = flat(expected), flat(actual)
  assert.equal(#e, #a, what)
  for n = 1, #e do
    local scale = math.max(1, math.abs(e[n]))
    if math.abs(e[n] - a[n]) > tol * scale then
      error(string.format("%s: element %d expected %.9g, got %.9g", what or "value",
        n, e[n], a[n]), 2)
    end
  end
end

local function random_table(dims, scale)
  if #dims == 0 then return (math.random() * 2 - 1) * scale end
  local t, rest = {}, { table.unpack(dims, 2) }
  for n = 1, dims[1] do t[n] = random_table(rest, scale) end
  return t
end

local function make(I, D, H, tied, l1_coeff)
  local s = sae.SAE { n_instances = I, n_input_ae = D, n_hidden_ae = H,
    l1_coeff = l1_coeff or 0.25, tied_weights = tied, seed = 7 }
  -- nonzero biases so every term of the gradient is exercised
  s.b_enc:copy_(sae.tensor(random_table({ I, H }, 0.3)))
  s.b_dec:copy_(sae.tensor(random_table({ I, D }, 0.3)))
  return s
end

-- h [B, I, D] as a non-contiguous view of an [I, B, D] tensor
local function strided(h)
  local B, I = #h, #h[1]
  local t = {}
  for i = 1, I do
    t[i] = {}
    for b = 1, B do t[i][b] = h[b][i] end
  end
  return sae.tensor(t):permute(2, 1, 3)
end

describe("sae.SAE", function()
  describe("construction", function()
    it("has the parameter shapes of the exercises", function()
      local s = sae.SAE { n_instances = 3, n_input_ae = 2, n_hidden_ae = 5 }
      assert.same({ 3, 2, 5 }, s.W_enc:shape())
      assert.same({ 3, 5, 2 }, s.W_dec:shape())
      assert.same({ 3, 5 }, s.b_enc:shape())
      assert.same({ 3, 2 }, s.b_dec:shape())
      assert.same({ 3, 5, 2 }, s.grad.W_dec:shape())
      assert.equal(0.5, s.l1_coeff)
      assert.equal(4, #s:parameters())
    end)

    it("has no W_dec when tied", function()
      local s = sae.SAE { n_instances = 1, n_input_ae = 2, n_hidden_ae = 3, tied_weights = true }
      assert.is_nil(s.W_dec)
      assert.equal(3, #s:parameters())
    end)

    it("draws Xavier-normal weights with the spread torch gives", function()
      local s = sae.SAE { n_instances = 4, n_input_ae = 64, n_hidden_ae = 128, seed = 3 }
      local v, sum2 = flat(s.W_enc:totable()), 0
      for _, x in ipairs(v) do sum2 = sum2 + x * x end
      local std = math.sqrt(2 / (64 * 128 + 4 * 128))
      assert.near(std, math.sqrt(sum2 / #v), 0.02 * std)
      assert.same(flat(s.b_enc:totable()), flat(sae.zeros(4, 128):totable()))
    end)

    it("views its parameters: writes through a field change the model", function()
      local s = sae.SAE { n_instances = 1, n_input_ae = 2, n_hidden_ae = 2 }
      s.b_dec:fill_(2)
      assert.same({ { 2, 2 } }, s.b_dec:totable())
      assert.same({ { 2, 2 } }, s:parameters()[4].param:totable())
    end)

    it("rejects bad configurations", function()
      assert.has_error(function() sae.SAE { n_instances = 0, n_input_ae = 2, n_hidden_ae = 5 } end,
        "SAE: argument #1 (n_instances) expected an integer >= 1, got 0")
      assert.has_error(function() sae.SAE { n_instances = 2, n_hidden_ae = 5 } end,
        "SAE: argument #1 (n_input_ae) expected an integer >= 1, got nil")
      assert.has_error(function() sae.SAE { n_instances = 2, n_input_ae = 2, n_hidden_ae = 1.5 } end,
        "SAE: argument #1 (n_hidden_ae) expected an integer >= 1, got 1.5")
      assert.has_error(function()
        sae.SAE { n_instances = 2, n_input_ae = 2, n_hidden_ae = 5, l1_coeff = -1 }
      end, "SAE: argument #1 (l1_coeff) expected a finite number >= 0, got -1")
      assert.has_error(function()
        sae.SAE { n_instances = 2, n_input_ae = 2, n_hidden_ae = 5, tied_weights = "yes" }
      end, "SAE: argument #1 (tied_weights) expected a boolean, got string")
      assert.has_error(function() sae.SAE(3) end,
        "SAE: argument #1 (config) expected a table, got number")
    end)
  end)

  for _, kind in ipairs({ "untied", "tied", "untied_2_to_5", "tied_2_to_5" }) do
    local fx = fixtures[kind]
    describe(kind .. " forward() and backward() against PyTorch", function()
      for _, path in ipairs({ "loops", "generic", "blas" }) do
        it("match the fixture on the " .. path .. " path", function()
          local s = sae.SAE { n_instances = fx.n_instances, n_input_ae = fx.n_input_ae,
            n_hidden_ae = fx.n_hidden_ae, l1_coeff = fx.l1_coeff, tied_weights = fx.tied_weights }
          s:set_path(path)
          set_params(s, fx)
          local out = s:forward(sae.tensor(fx.h))
          assert_close(fx.l1_loss, out.l1_loss:totable(), 1e-5, "l1_loss")
          assert_close(fx.l2_loss, out.l2_loss:totable(), 1e-5, "l2_loss")
          assert_close(fx.acts, out.acts:totable(), 1e-5, "acts")
          assert_close(fx.h_reconstructed, out.h_reconstructed:totable(), 1e-5, "h_reconstructed")
          assert.near(fx.loss, out.loss, 1e-5 * math.abs(fx.loss))

          s:zero_grad()
          assert.near(fx.loss, s:backward(sae.tensor(fx.h)), 1e-5 * math.abs(fx.loss))
          for name, g in pairs(fx.grad) do
            assert_close(g, s.grad[name]:totable(), 1e-5, "grad " .. name)
          end
          s:adam_step(0.01)
          for name, v in pairs(fx.after_adam) do
            assert_close(v, s[name]:totable(), 1e-5, "Adam " .. name)
          end
        end)
      end
    end)

    if kind == "untied" or kind == "tied" then
      describe(kind .. " against the plain-Lua reference", function()
        local tied = fx.tied_weights
        for _, case in ipairs({ { 3, 2, 5, 16 }, { 2, 24, 40, 9 } }) do
          local I, D, H, B = table.unpack(case)
          for _, path in ipairs({ "loops", "blas" }) do
            it(string.format("agree for I=%d, d_in=%d, d_sae=%d on %s with strided h",
              I, D, H, path), function()
              local s = make(I, D, H, tied)
              s:set_path(path)
              local h = random_table({ B, I, D }, 1.5)
              local ref = ref_forward(params_of(s), h, s.l1_coeff)
              for _, x in ipairs({ sae.tensor(h), strided(h) }) do
                local out = s:forward(x)
                for _, name in ipairs({ "l1_loss", "l2_loss", "acts", "h_reconstructed" }) do
                  assert_close(ref[name], out[name]:totable(), 2e-5, name)
                end
                assert.near(ref.loss, out.loss, 2e-5 * math.abs(ref.loss))
              end
            end)
          end
        end
      end)

      describe(kind .. " gradients", function()
        local tied = fx.tied_weights
        for _, case in ipairs({ { 2, 3, 6, 7 }, { 2, 2, 5, 13 } }) do
          local I, D, H, B = table.unpack(case)
          it(string.format("match finite differences for d_in=%d, d_sae=%d", D, H), function()
            local s = make(I, D, H, tied, 0.3)
            local h = random_table({ B, I, D }, 1.5)
            s:zero_grad()
            s:backward(sae.tensor(h))
            local p = params_of(s)
            local eps = 1e-6
            for name, t in pairs(p) do
              local values, grads = flat(t), flat(s.grad[name]:totable())
              -- walk the flat index back into the nested table
              local function cell(n)
                local dims, node, idx = {}, t, n - 1
                while type(node[1]) == "table" do dims[#dims + 1] = #node; node = node[1] end
                dims[#dims + 1] = #node
                local path, node2 = {}, t
                for d = #dims, 1, -1 do path[d] = idx % dims[d] + 1; idx = idx // dims[d] end
                for d = 1, #dims - 1 do node2 = node2[path[d]] end
                return node2, path[#dims]
              end
              for n = 1, #values do
                local node, k = cell(n)
                local v = node[k]
                node[k] = v + eps
                local up = ref_forward(p, h, s.l1_coeff).loss
                node[k] = v - eps
                local down = ref_forward(p, h, s.l1_coeff).loss
                node[k] = v
                local fd = (up - down) / (2 * eps)
                assert.near(fd, grads[n], 1e-4 * math.max(1, math.abs(fd)))
              end
            end
          end)
        end

        it("accumulate over calls until zero_grad()", function()
          local s = make(2, 3, 4, tied)
          local h = sae.tensor(random_table({ 5, 2, 3 }, 1))
          s:zero_grad()
          s:backward(h)
          local once = flat(s.grad.W_enc:totable())
          s:backward(h)
          local twice = flat(s.grad.W_enc:totable())
          for n = 1, #once do assert.near(2 * once[n], twice[n], 1e-6) end
          s:zero_grad()
          assert.same(flat(sae.zeros(2, 3, 4):totable()), flat(s.grad.W_enc:totable()))
        end)
      end)
    end
  end

  describe("the loop and BLAS paths", function()
    for _, tied in ipairs({ false, true }) do
      it("agree for the 2 -> 5 shape " .. (tied and "tied" or "untied") .. " on strided h", function()
        local h = random_table({ 37, 3, 2 }, 1)
        local grads, losses, first = {}, {}, nil
        for _, path in ipairs({ "loops", "generic", "blas" }) do
          local s = make(3, 2, 5, tied)
          if first then set_params(s, first) else first = params_of(s) end
          s:set_path(path)
          s:zero_grad()
          losses[path] = s:backward(strided(h))
          grads[path] = {}
          for _, e in ipairs(s:parameters()) do grads[path][e.name] = e.grad:totable() end
          grads[path].frac_active = s:frac_active():totable()
        end
        for _, path in ipairs({ "generic", "blas" }) do
          assert.near(losses.loops, losses[path], 1e-5 * losses.loops)
          for name, g in pairs(grads.loops) do assert_close(g, grads[path][name], 1e-5, name) end
        end
      end)
    end

    it("give the same gradients for a mid-sized untied SAE", function()
      local h = sae.tensor(random_table({ 33, 2, 20 }, 1))
      local grads, first = {}, nil
      for _, path in ipairs({ "loops", "blas" }) do
        local s = make(2, 20, 50, false)
        if first then set_params(s, first) else first = params_of(s) end
        s:set_path(path)
        s:zero_grad()
        s:backward(h)
        grads[path] = {}
        for _, e in ipairs(s:parameters()) do grads[path][e.name] = e.grad:totable() end
      end
      for name, g in pairs(grads.loops) do assert_close(g, grads.blas[name], 1e-4, name) end
    end)
  end)

  describe("normalize_decoder()", function()
    it("makes every decoder row unit norm and keeps its direction", function()
      local s = sae.SAE { n_instances = 2, n_input_ae = 3, n_hidden_ae = 4, seed = 5 }
      local before = s.W_dec:totable()
      s:normalize_decoder()
      for i, inst in ipairs(s.W_dec:totable()) do
        for k, row in ipairs(inst) do
          local n = math.sqrt(row[1] ^ 2 + row[2] ^ 2 + row[3] ^ 2)
          assert.near(1, n, 1e-6)
          local nb = math.sqrt(before[i][k][1] ^ 2 + before[i][k][2] ^ 2 + before[i][k][3] ^ 2)
          for j = 1, 3 do assert.near(before[i][k][j] / nb, row[j], 1e-6) end
        end
      end
    end)

    it("normalises the encoder columns when tied", function()
      local s = sae.SAE { n_instances = 2, n_input_ae = 3, n_hidden_ae = 4, tied_weights = true }
      s:normalize_decoder()
      for _, inst in ipairs(s.W_enc:totable()) do
        for k = 1, 4 do
          local n2 = 0
          for j = 1, 3 do n2 = n2 + inst[j][k] ^ 2 end
          assert.near(1, math.sqrt(n2), 1e-6)
        end
      end
    end)

    -- 600 columns span several column blocks with a partial last one,
    -- and 2 x 70 x 600 weights are enough to run on all threads.
    it("matches a Lua reference for the tied encoder columns", function()
      local I, D, H = 2, 70, 600
      local s = sae.SAE { n_instances = I, n_input_ae = D, n_hidden_ae = H,
        tied_weights = true, seed = 11 }
      local before = s.W_enc:totable()
      s:normalize_decoder()
      local after = s.W_enc:totable()
      for i = 1, I do
        for k = 1, H do
          local n2 = 0
          for j = 1, D do n2 = n2 + before[i][j][k] ^ 2 end
          local n = math.sqrt(n2)
          for j = 1, D do assert.near(before[i][j][k] / n, after[i][j][k], 1e-6) end
        end
      end
    end)

    it("matches a Lua reference for large decoder rows", function()
      local I, D, H = 2, 70, 600
      local s = sae.SAE { n_instances = I, n_input_ae = D, n_hidden_ae = H, seed = 12 }
      local before = s.W_dec:totable()
      s:normalize_decoder()
      local after = s.W_dec:totable()
      for i = 1, I do
        for k = 1, H do
          local n2 = 0
          for j = 1, D do n2 = n2 + before[i][k][j] ^ 2 end
          local n = math.sqrt(n2)
          for j = 1, D do assert.near(before[i][k][j] / n, after[i][k][j], 1e-6) end
        end
      end
    end)
  end)

  describe("shape checks", function()
    local s = sae.SAE { n_instances = 2, n_input_ae = 3, n_hidden_ae = 4 }
    it("raise with the expected and the given shape", function()
      assert.has_error(function() s:forward(sae.zeros(5, 3, 3)) end,
        "forward: argument #1 (h) expected shape [batch, 2, 3], got [5, 3, 3]")
      assert.has_error(function() s:backward(sae.zeros(5, 6)) end,
        "backward: argument #1 (h) expected shape [batch, 2, 3], got [5, 6]")
      assert.has_error(function() s:forward(sae.zeros(5, 2, 3, "int64")) end,
        "forward: argument #1 (h) expected a float32 tensor, got int64")
      assert.has_error(function() s:forward({}) end,
        "forward: argument #1 (h) expected a float32 sae.Tensor of shape [batch, 2, 3], got table")
      assert.has_error(function() s:forward(sae.zeros(0, 2, 3)) end,
        "forward: argument #1 (h) expected a batch of at least 1 row, got 0")
    end)
  end)

  describe("train()", function()
    it("lowers the loss on data a 2-D SAE can reconstruct", function()
      local s = sae.SAE { n_instances = 2, n_input_ae = 2, n_hidden_ae = 4, l1_coeff = 0.01, seed = 1 }
      local dirs = { { 1, 0 }, { 0, 1 }, { -1, 0 }, { 0, -1 } }
      local function data(B)
        local t = {}
        for b = 1, B do
          local d = dirs[math.random(4)]
          t[b] = { { d[1], d[2] }, { d[1], d[2] } }
        end
        return sae.tensor(t)
      end
      local log = s:train { data = data, steps = 300, batch_size = 64, lr = 0.01, log_every = 100 }
      assert.equal(4, #log.W_enc)
      assert.same({ 0, 100, 200, 299 }, log.steps)
      assert.is_true(log.loss[4] < 0.5 * log.loss[1])
      assert.equal("Step 299/300: no resampling yet", log.titles[4])
      assert.same({ 2, 4 }, log.frac_active[1]:shape())
    end)

    it("resamples on schedule and marks resampled neurons in the log", function()
      local model = sae.toy.Model { n_instances = 2, n_features = 5, n_hidden = 2,
        feature_probability = 0.01, seed = 3 }
      local s = sae.SAE { n_instances = 2, n_input_ae = 2, n_hidden_ae = 5, seed = 4 }
      -- biases far below zero: every neuron is dead from the start
      s.b_enc:fill_(-100)
      local log = s:train { model = model, steps = 60, batch_size = 64, log_every = 10,
        neuron_resample_window = 25, dead_neuron_window = 10, resample_method = "anthropic" }
      assert.equal("Step 20/60: no resampling yet", log.titles[3])
      assert.same({ "black", "black", "black", "black", "black" }, log.colors[3][2])
      assert.equal("Step 30/60: resampling 10/10 neurons", log.titles[4])
      assert.same({ "red", "red", "red", "red", "red" }, log.colors[4][1])
      for _, b in ipairs(s.b_enc:totable()[1]) do assert.is_true(b > -100) end
    end)

    it("gives the same weights with sae.optim.Adam as with the built-in Adam", function()
      local h = sae.tensor(random_table({ 32, 2, 3 }, 1))
      local data = function() return h end
      local a = make(2, 3, 4, false)
      local b = sae.SAE { n_instances = 2, n_input_ae = 3, n_hidden_ae = 4, l1_coeff = a.l1_coeff }
      set_params(b, params_of(a))
      a:train { data = data, steps = 20, batch_size = 32, lr = 0.01 }
      b:train { data = data, steps = 20, batch_size = 32, lr = 0.01,
        optimizer = sae.optim.Adam(b:parameters(), { lr = 0.01 }) }
      for _, e in ipairs(a:parameters()) do
        assert_close(e.param:totable(), b[e.name]:totable(), 1e-5, e.name)
      end
    end)

    it("rejects bad options", function()
      local s = sae.SAE { n_instances = 1, n_input_ae = 2, n_hidden_ae = 2 }
      local data = function(B) return sae.zeros(B, 1, 2) end
      assert.has_error(function() s:train { data = data, steps = 0 } end,
        "train: argument #1 (steps) expected a positive integer, got 0")
      assert.has_error(function()
        s:train { data = data, neuron_resample_window = 10, dead_neuron_window = 20 }
      end, "train: argument #1 (dead_neuron_window) expected an integer below "
        .. "neuron_resample_window (10), got 20")
      assert.has_error(function() s:train { data = data, resample_method = "other" } end,
        "train: argument #1 (resample_method) expected \"simple\" or \"anthropic\", got other")
      assert.has_error(function() s:train {} end,
        "train: argument #1 (model or data) expected a toy model or a function, got nil")
    end)
  end)

  describe("save() and sae.load_sae()", function()
    it("round-trip the parameters and configuration", function()
      if sae.save == nil then
        pending("safetensors support (sae.save / sae.load) is not merged yet")
        return
      end
      local s = make(2, 3, 4, false)
      local path = os.tmpname()
      s:save(path)
      local t = sae.load_sae(path)
      os.remove(path)
      assert.equal(s.l1_coeff, t.l1_coeff)
      for _, e in ipairs(s:parameters()) do
        assert.same(e.param:totable(), t[e.name]:totable())
      end
    end)
  end)
end)
