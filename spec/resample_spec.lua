local sae = require "sae"

local I, D, H, B = 3, 4, 6, 32

local function rand_h(batch, scale)
  local t = {}
  for b = 1, batch do
    t[b] = {}
    for i = 1, I do
      t[b][i] = {}
      for j = 1, D do t[b][i][j] = (math.random() * 2 - 1) * (scale or 1) end
    end
  end
  return t
end

local function norm(v)
  local s = 0
  for _, x in ipairs(v) do s = s + x * x end
  return math.sqrt(s)
end

local function enc_col(W_enc, i, k)
  local c = {}
  for j = 1, #W_enc[i] do c[j] = W_enc[i][j][k] end
  return c
end

-- A frac_active window of 3 steps that is 0 exactly where dead[i][k].
local function window_for(dead)
  local w = {}
  for step = 1, 3 do
    w[step] = {}
    for i = 1, I do
      w[step][i] = {}
      for k = 1, H do w[step][i][k] = dead[i][k] and 0 or 0.1 * step end
    end
  end
  return sae.tensor(w)
end

-- Dead neurons: 1 and 4 of instance 1, and all of instance 3.
local function pattern()
  local dead = {}
  for i = 1, I do
    dead[i] = {}
    for k = 1, H do dead[i][k] = (i == 1 and (k == 1 or k == 4)) or i == 3 end
  end
  return dead
end

local function make(seed)
  local s = sae.SAE { n_instances = I, n_input_ae = D, n_hidden_ae = H, seed = seed }
  local b = {}
  for i = 1, I do
    b[i] = {}
    for k = 1, H do b[i][k] = 0.1 * k + i end
  end
  s.b_enc:copy_(sae.tensor(b))
  s.b_dec:copy_(sae.tensor({ { 0.1, -0.2, 0.3, 0 }, { 0, 0, 0, 0 }, { -0.5, 0.5, 0, 0.2 } }))
  -- give the Adam moments nonzero values, to see which are reset
  s:zero_grad()
  s:backward(sae.tensor(rand_h(8)))
  s:adam_step(1e-3)
  return s
end

local function check_common(before, s, dead, mask)
  local W_enc, W_dec, b_enc = s.W_enc:totable(), s.W_dec:totable(), s.b_enc:totable()
  local m_dec, m_b = s.adam_m.W_dec:totable(), s.adam_m.b_enc:totable()
  local mtab = mask:totable()
  for i = 1, I do
    for k = 1, H do
      assert.equal(dead[i][k] and 1 or 0, mtab[i][k])
      if dead[i][k] then
        assert.equal(0, b_enc[i][k])
        assert.near(1, norm(W_dec[i][k]), 1e-5)
        assert.are_not.same(before.W_dec[i][k], W_dec[i][k])
        -- encoder column points the same way as the decoder row
        local c = enc_col(W_enc, i, k)
        local nc = norm(c)
        for j = 1, D do assert.near(W_dec[i][k][j], c[j] / nc, 1e-5) end
        assert.equal(0, m_b[i][k])
        for j = 1, D do assert.equal(0, m_dec[i][k][j]) end
      else
        assert.equal(before.b_enc[i][k], b_enc[i][k])
        assert.same(before.W_dec[i][k], W_dec[i][k])
        assert.same(enc_col(before.W_enc, i, k), enc_col(W_enc, i, k))
        assert.equal(before.m_b[i][k], m_b[i][k])
      end
    end
  end
end

local function snapshot(s)
  return { W_enc = s.W_enc:totable(), W_dec = s.W_dec:totable(), b_enc = s.b_enc:totable(),
    m_b = s.adam_m.b_enc:totable() }
end

describe("resample_neurons()", function()
  for _, method in ipairs({ "simple", "anthropic" }) do
    describe(method, function()
      it("rewrites dead neurons only and resets their optimizer state", function()
        local s = make(11)
        local before = snapshot(s)
        local dead = pattern()
        local mask, title = s:resample_neurons(sae.tensor(rand_h(B)), window_for(dead), 0.5, method)
        assert.equal("resampling 8/18 neurons", title)
        check_common(before, s, dead, mask)
      end)

      it("changes nothing when no neuron is dead", function()
        local s = make(12)
        local before = snapshot(s)
        local w = sae.full({ 4, I, H }, 0.5)
        local mask, title = s:resample_neurons(sae.tensor(rand_h(B)), w, 0.5, method)
        assert.equal("resampling 0/18 neurons", title)
        assert.same(before.W_enc, s.W_enc:totable())
        assert.same(before.W_dec, s.W_dec:totable())
        assert.same(before.b_enc, s.b_enc:totable())
        assert.same(sae.zeros(I, H, "int64"):totable(), mask:totable())
      end)
    end)
  end

  describe("anthropic", function()
    it("scales encoder columns by the mean alive norm times the scale", function()
      local s = make(13)
      local dead = pattern()
      local W = s.W_enc:totable()
      local mean = 0
      for _, k in ipairs({ 2, 3, 5, 6 }) do mean = mean + norm(enc_col(W, 1, k)) / 4 end
      s:resample_neurons(sae.tensor(rand_h(B)), window_for(dead), 0.5, "anthropic")
      W = s.W_enc:totable()
      assert.near(mean * 0.5, norm(enc_col(W, 1, 1)), 1e-5)
      assert.near(mean * 0.5, norm(enc_col(W, 1, 4)), 1e-5)
      -- instance 3 has no alive neuron: the norm is 1 times the scale
      for k = 1, H do assert.near(0.5, norm(enc_col(W, 3, k)), 1e-5) end
    end)

    it("resamples toward an input far larger than the rest", function()
      local s = make(14)
      local dead = pattern()
      local h = rand_h(B, 0.01)
      for i = 1, I do
        for j = 1, D do h[17][i][j] = 50 * ((j % 2 == 0) and 1 or -1) * (j + i) end
      end
      local b_dec = s.b_dec:totable()
      s:resample_neurons(sae.tensor(h), window_for(dead), 0.5, "anthropic")
      local W_dec = s.W_dec:totable()
      for i = 1, I do
        local v = {}
        for j = 1, D do v[j] = h[17][i][j] - b_dec[i][j] end
        local n = norm(v)
        for k = 1, H do
          if dead[i][k] then
            for j = 1, D do assert.near(v[j] / n, W_dec[i][k][j], 1e-5) end
          end
        end
      end
    end)

    it("skips an instance whose loss is all but zero", function()
      local s = sae.SAE { n_instances = 1, n_input_ae = 2, n_hidden_ae = 3 }
      -- no neuron fires and b_dec equals every input: zero loss
      s.W_enc:fill_(0)
      s.b_enc:fill_(-1)
      s.b_dec:copy_(sae.tensor({ { 0.3, -0.7 } }))
      local h = {}
      for b = 1, 8 do h[b] = { { 0.3, -0.7 } } end
      local before = s.W_dec:totable()
      local mask, title = s:resample_neurons(sae.tensor(h), sae.zeros(5, 1, 3), 0.5, "anthropic")
      assert.equal("resampling 3/3 neurons", title)
      assert.same({ { 1, 1, 1 } }, mask:totable())
      assert.same(before, s.W_dec:totable())
      assert.same({ { -1, -1, -1 } }, s.b_enc:totable())
    end)
  end)

  describe("tied weights", function()
    it("writes the encoder column only", function()
      local s = sae.SAE { n_instances = 1, n_input_ae = 3, n_hidden_ae = 2, tied_weights = true }
      local before = s.W_enc:totable()
      s:resample_neurons(sae.tensor({ { { 1, 2, 3 } } }), sae.tensor({ { { 0, 1 } } }), 0.5, "simple")
      local W = s.W_enc:totable()
      assert.near(1, norm(enc_col(W, 1, 1)), 1e-5)
      assert.same(enc_col(before, 1, 2), enc_col(W, 1, 2))
    end)
  end)

  describe("argument checks", function()
    local s = sae.SAE { n_instances = I, n_input_ae = D, n_hidden_ae = H }
    it("raise on a window of the wrong shape", function()
      assert.has_error(function()
        s:resample_neurons(sae.zeros(4, I, D), sae.zeros(3, I, 5), 0.5, "simple")
      end, "resample_neurons: argument #2 (frac_active_window) expected shape "
        .. "[window, 3, 6], got [3, 3, 5]")
    end)

    it("raise on an unknown method", function()
      assert.has_error(function()
        s:resample_neurons(sae.zeros(4, I, D), sae.zeros(3, I, H), 0.5, "other")
      end, 'resample_neurons: argument #4 (method) expected "simple" or "anthropic", got other')
    end)
  end)
end)
