local sae = require "sae"


-- Naive references in Lua doubles ------------------------------------------

local function relu(v) return v > 0 and v or 0 end


-- Forward of one model given its parameters as nested tables:
-- p.W (or p.W1, p.W2) and p.b_final. Returns hidden [B][I][H] and out
-- [B][I][F].
local function naive_forward(kind, p, x)
  local hidden, out = {}, {}
  for b = 1, #x do
    hidden[b], out[b] = {}, {}
    for i = 1, #x[b] do
      local W1 = kind == "computation" and p.W1[i] or p.W[i]
      local H, F = #W1, #W1[1]
      local h, o = {}, {}
      for k = 1, H do
        local s = 0
        for f = 1, F do s = s + W1[k][f] * x[b][i][f] end
        h[k] = kind == "linear" and s or relu(s)
      end
      for f = 1, F do
        local s = p.b_final[i][f]
        for k = 1, H do
          local w = kind == "computation" and p.W2[i][f][k] or W1[k][f]
          s = s + w * h[k]
        end
        o[f] = relu(s)
      end
      hidden[b][i], out[b][i] = h, o
    end
  end
  return hidden, out
end


-- Sum over instances of the mean over batch and features of
-- importance * (out - target)^2; also returns the per-instance list.
local function naive_loss(kind, importance, out, x)
  local B, I, F = #x, #x[1], #x[1][1]
  local per, total = {}, 0
  for i = 1, I do
    local s = 0
    for b = 1, B do
      for f = 1, F do
        local target = kind == "computation" and math.abs(x[b][i][f]) or x[b][i][f]
        s = s + importance[i][f] * (out[b][i][f] - target) ^ 2
      end
    end
    per[i] = s / (B * F)
    total = total + per[i]
  end
  return total, per
end


local function params_of(model)
  local p = { b_final = model.b_final:totable() }
  if model.kind == "computation" then
    p.W1, p.W2 = model.W1:totable(), model.W2:totable()
  else
    p.W = model.W:totable()
  end
  return p
end


-- Seeded uniform numbers in [low, high), independent of the library.
local function filler(seed)
  local state = seed
  return function(low, high)
    state = (state * 1103515245 + 12345) % 2147483648
    return low + (high - low) * state / 2147483648
  end
end


local function random_table(shape, rand, low, high, zero_prob)
  local function build(d)
    local t = {}
    for k = 1, shape[d] do
      if d == #shape then
        t[k] = rand(0, 1) < (zero_prob or 0) and 0 or rand(low, high)
      else
        t[k] = build(d + 1)
      end
    end
    return t
  end
  return build(1)
end


local function assert_near_table(expected, actual, tol, label)
  local function walk(e, a, path)
    if type(e) == "table" then
      assert.equal(#e, #a, "length at " .. path)
      for k = 1, #e do walk(e[k], a[k], path .. "[" .. k .. "]") end
    else
      local scale = math.max(1, math.abs(e))
      if not (math.abs(e - a) <= tol * scale) then
        error(string.format("%s%s: expected %.9g, got %.9g", label or "",
          path, e, a), 3)
      end
    end
  end
  walk(expected, actual, "")
end


local kinds = { "linear", "neuron", "computation" }


-- A model with random parameters (including b_final) and its inputs.
local function random_case(kind, seed, B, I, F, H, probability)
  local rand = filler(seed)
  local model = sae.toy.Model{ kind = kind, n_instances = I, n_features = F,
    n_hidden = H, seed = seed, feature_probability = probability,
    importance = sae.tensor(random_table({ I, F }, rand, 0.1, 1)) }
  for _, entry in ipairs(model:parameters()) do
    local t = random_table(entry.param:shape(), rand, -0.6, 0.6)
    entry.param:copy_(sae.tensor(t))
  end
  local low = kind == "computation" and -1 or 0
  local x = random_table({ B, I, F }, rand, low, 1, 0.3)
  return model, x
end


-- Returns a function computing the naive total loss from the current
-- values in the parameter tables p, which finite differences edit.
local function naive_loss_at(kind, p, importance, x)
  return function()
    local _, out = naive_forward(kind, p, x)
    return (naive_loss(kind, importance, out, x))
  end
end


-- Compares entry.grad with central finite differences (step 1e-6) of
-- loss_at(), which reads the nested table `values` of that parameter.
-- Checks every `stride`-th element, starting at the first, and returns
-- how many it checked.
local function check_gradient(entry, values, loss_at, stride)
  local eps = 1e-6
  local grad = entry.grad:reshape(-1):totable()
  local flat_index, checked = 0, 0
  local function visit(t)
    for k = 1, #t do
      if type(t[k]) == "table" then visit(t[k]) else
        flat_index = flat_index + 1
        if (flat_index - 1) % stride == 0 then
          checked = checked + 1
          local v = t[k]
          t[k] = v + eps
          local up = loss_at()
          t[k] = v - eps
          local down = loss_at()
          t[k] = v
          local fd = (up - down) / (2 * eps)
          if math.abs(fd - grad[flat_index]) > 1e-4 + 1e-3 * math.abs(fd) then
            error(string.format("%s[%d]: finite difference %.9g, "
              .. "backward %.9g", entry.name, flat_index, fd,
              grad[flat_index]))
          end
        end
      end
    end
  end
  visit(values)
  return checked
end


describe("sae.toy", function()
  describe("Model()", function()
    it("exposes configuration and parameter views", function()
      local m = sae.toy.Model{ n_instances = 3, n_features = 5, n_hidden = 2 }
      assert.equal("linear", m.kind)
      assert.equal(3, m.n_instances)
      assert.same({ 3, 2, 5 }, m.W:shape())
      assert.same({ 3, 5 }, m.b_final:shape())
      assert.same({ 3, 2, 5 }, m.grad.W:shape())
      assert.same({ 3, 5 }, m.feature_probability:shape())
      assert.same({ 3, 5 }, m.importance:shape())
      assert.equal(m.W, m.W)                       -- cached view
      local params = m:parameters()
      assert.equal(2, #params)
      assert.equal("W", params[1].name)
      assert.equal(m.W, params[1].param)
      assert.equal(m.grad.b_final, params[2].grad)
    end)

    it("gives the computation model W1 and W2", function()
      local m = sae.toy.Model{ kind = "computation", n_instances = 2,
        n_features = 6, n_hidden = 3 }
      assert.same({ 2, 3, 6 }, m.W1:shape())
      assert.same({ 2, 6, 3 }, m.W2:shape())
      assert.is_nil(m.W)
      local names = {}
      for k, e in ipairs(m:parameters()) do names[k] = e.name end
      assert.same({ "W1", "W2", "b_final" }, names)
    end)

    it("broadcasts importance and feature_probability", function()
      local m = sae.toy.Model{ n_instances = 2, n_features = 3, n_hidden = 2,
        importance = sae.tensor({ { 1, 0.5, 0.25 } }),
        feature_probability = sae.tensor({ { 0.1 }, { 0.2 } }) }
      assert_near_table({ { 1, 0.5, 0.25 }, { 1, 0.5, 0.25 } },
        m.importance:totable(), 0)
      assert_near_table({ { 0.1, 0.1, 0.1 }, { 0.2, 0.2, 0.2 } },
        m.feature_probability:totable(), 1e-7)
      local n = sae.toy.Model{ n_instances = 2, n_features = 3, n_hidden = 2,
        importance = 0.5 }
      assert.same({ { 0.5, 0.5, 0.5 }, { 0.5, 0.5, 0.5 } }, n.importance:totable())
    end)

    it("initialises W as xavier_normal_ on [I, H, F] and b_final at 0", function()
      local I, H, F = 4, 10, 50
      local m = sae.toy.Model{ n_instances = I, n_features = F, n_hidden = H,
        seed = 3 }
      local sum, sum2, n = 0, 0, 0
      for _, inst in ipairs(m.W:totable()) do
        for _, row in ipairs(inst) do
          for _, v in ipairs(row) do sum, sum2, n = sum + v, sum2 + v * v, n + 1 end
        end
      end
      local std = math.sqrt(sum2 / n - (sum / n) ^ 2)
      local expected = math.sqrt(2 / (H * F + I * F))
      assert.near(expected, std, 0.05 * expected)
      assert.near(0, sum / n, 4 * expected / math.sqrt(n))
      for _, row in ipairs(m.b_final:totable()) do
        for _, v in ipairs(row) do assert.equal(0, v) end
      end
      local same = sae.toy.Model{ n_instances = I, n_features = F, n_hidden = H,
        seed = 3 }
      assert.same(m.W:totable(), same.W:totable())
    end)

    it("keeps views valid after the model is collected", function()
      local W
      do
        local m = sae.toy.Model{ n_instances = 1, n_features = 2, n_hidden = 1 }
        m.W:fill_(2)
        W = m.W
      end
      collectgarbage()
      collectgarbage()
      assert.same({ { { 2, 2 } } }, W:totable())
    end)

    it("rejects bad configurations", function()
      local function new(cfg)
        local base = { n_instances = 2, n_features = 4, n_hidden = 2 }
        for k, v in pairs(cfg) do base[k] = v end
        return function() sae.toy.Model(base) end
      end
      assert.has_error(new{ n_features = 0 },
        "Model: argument #1 (n_features) expected an integer >= 1, got 0")
      assert.has_error(new{ n_instances = -3 },
        "Model: argument #1 (n_instances) expected an integer >= 1, got -3")
      assert.has_error(new{ n_hidden = 1.5 },
        "Model: argument #1 (n_hidden) expected an integer >= 1, got 1.5")
      assert.has_error(new{ n_correlated_pairs = -1 },
        "Model: argument #1 (n_correlated_pairs) expected an integer >= 0, got -1")
      assert.has_error(new{ n_correlated_pairs = 2, n_anticorrelated_pairs = 1 },
        "Model: argument #1 (n_correlated_pairs) expected 2 * "
        .. "(n_correlated_pairs + n_anticorrelated_pairs) <= n_features, "
        .. "got 2 * (2 + 1) > 4")
      assert.has_error(new{ feature_probability = 1.5 },
        "Model: argument #1 (feature_probability) expected values in [0, 1], "
        .. "got 1.5 at instance 1, feature 1")
      assert.has_error(new{ feature_probability = sae.tensor({ { 0.5 }, { -0.1 } }) })
      assert.has_error(new{ n_anticorrelated_pairs = 1, feature_probability = 0.6 },
        "Model: argument #1 (feature_probability) expected values <= 0.5 for "
        .. "anticorrelated pairs (one of the pair is present with probability "
        .. "2p), got 0.6 at instance 1, feature 1")
      assert.has_error(new{ importance = sae.zeros(3, 4) },
        "Model: argument #1 (importance) expected a shape broadcastable to "
        .. "[2, 4], got [3, 4]")
      assert.has_error(new{ importance = "high" },
        "Model: argument #1 (importance) expected a number or a tensor "
        .. "broadcastable to [2, 4], got string")
      assert.has_error(new{ kind = "relu" },
        "Model: argument #1 (kind) expected \"linear\", \"neuron\" or "
        .. "\"computation\", got relu")
      assert.has_error(function() sae.toy.Model() end,
        "Model: argument #1 (config) expected a table, got no value")
    end)

    it("rejects writes to parameter fields", function()
      local m = sae.toy.Model{ n_instances = 1, n_features = 2, n_hidden = 1 }
      assert.has_error(function() m.W = sae.zeros(1, 1, 2) end,
        "ToyModel: field W is read-only (copy values into a tensor with "
        .. "model.W:copy_(t))")
    end)
  end)

  describe("forward()", function()
    for _, kind in ipairs(kinds) do
      it("matches the naive reference (" .. kind .. ")", function()
        local model, x = random_case(kind, 11, 37, 3, 7, 4)
        local eh, eo = naive_forward(kind, params_of(model), x)
        local xt = sae.tensor(x)
        assert_near_table(eo, model:forward(xt):totable(), 1e-5)
        assert_near_table(eh, model:hidden(xt):totable(), 1e-5)
      end)

      it("accepts a strided batch (" .. kind .. ")", function()
        local model, x = random_case(kind, 12, 5, 3, 4, 2)
        -- Store x as [I, B, F] and view it as [B, I, F].
        local stored = {}
        for i = 1, 3 do
          stored[i] = {}
          for b = 1, 5 do stored[i][b] = x[b][i] end
        end
        local xs = sae.tensor(stored):transpose(1, 2)
        assert.is_false(xs:is_contiguous())
        local _, eo = naive_forward(kind, params_of(model), x)
        assert_near_table(eo, model:forward(xs):totable(), 1e-5)
      end)
    end

    it("rejects a batch of the wrong shape", function()
      local m = sae.toy.Model{ n_instances = 2, n_features = 3, n_hidden = 2 }
      assert.has_error(function() m:forward(sae.zeros(4, 3, 3)) end,
        "forward: argument #2 expected shape [batch, 2, 3], got [4, 3, 3]")
      assert.has_error(function() m:hidden(sae.zeros(2, 3)) end,
        "hidden: argument #2 expected shape [batch, 2, 3], got [2, 3]")
    end)
  end)

  describe("loss()", function()
    for _, kind in ipairs(kinds) do
      it("matches the reference with random importances (" .. kind .. ")", function()
        local model, x = random_case(kind, 21, 9, 3, 5, 2)
        local xt = sae.tensor(x)
        local out = model:forward(xt)
        local total, per = model:loss(out, xt)
        local et, ep = naive_loss(kind, model.importance:totable(),
          out:totable(), x)
        assert.near(et, total, 1e-6 * math.max(1, et))
        assert_near_table(ep, per:totable(), 1e-6)
      end)
    end

    it("with importance 1 is the plain mean squared error", function()
      local m = sae.toy.Model{ n_instances = 2, n_features = 2, n_hidden = 1 }
      local x = sae.tensor({ { { 1, 0 }, { 0, 0 } } })
      local out = sae.tensor({ { { 0, 0 }, { 0.5, 0.5 } } })
      local total, per = m:loss(out, x)
      assert.near(0.5 + 0.25, total, 1e-7)
      assert_near_table({ 0.5, 0.25 }, per:totable(), 1e-7)
      assert.equal(0, (m:loss(x, x)))
    end)

    it("rejects batches of different sizes", function()
      local m = sae.toy.Model{ n_instances = 1, n_features = 2, n_hidden = 1 }
      assert.has_error(function() m:loss(sae.zeros(2, 1, 2), sae.zeros(3, 1, 2)) end,
        "loss: arguments #2 (out) and #3 (x) expected the same shape, got "
        .. "shapes [2, 1, 2] and [3, 1, 2]")
    end)
  end)

  describe("backward()", function()
    for _, kind in ipairs(kinds) do
      it("matches finite differences in doubles (" .. kind .. ")", function()
        local model, x = random_case(kind, 31, 6, 2, 5, 3)
        local p = params_of(model)
        local imp = model.importance:totable()
        local loss_at = naive_loss_at(kind, p, imp, x)
        model:zero_grad()
        local loss = model:backward(sae.tensor(x))
        assert.near(loss_at(), loss, 1e-5)
        for _, entry in ipairs(model:parameters()) do
          check_gradient(entry, p[entry.name], loss_at, 1)
        end
      end)
    end

    local wide_cases = {
      -- dense instances go through tiles of samples, leaving out the
      -- samples with no feature present when those are common
      { "linear", 1 }, { "neuron", 1 }, { "computation", 1 },
      { "neuron", 0.03 },
      -- 20 hidden units end halfway through a vector of 16
      { "linear", 1, 20 },
      -- sparse computation instances keep the output side in the tiles
      -- and take the input side sample by sample
      { "computation", 0.1 }, { "computation", 0.03 },
      { "computation", 0.1, 20 }, { "computation", 0.005 },
      -- sparse linear instances go through the Gram matrix W^T W
      { "linear", 0.1 },
      -- very sparse ones sample by sample, skipping absent features
      { "neuron", 0.005 },
    }
    for _, case in ipairs(wide_cases) do
      local kind, probability, hidden = case[1], case[2], case[3] or 9
      it("matches finite differences on a wide model (" .. kind
        .. ", feature probability " .. probability .. ", " .. hidden
        .. " hidden)", function()
        -- Wide models take the dense tiles, the Gram path or the
        -- per-sample pass, by feature probability.
        local model, x = random_case(kind, 33, 5, 2, 40, hidden, probability)
        for f = 1, 40 do              -- samples with no feature present
          x[2][1][f] = 0
          x[4][2][f] = 0
        end
        local b_final = model.b_final:totable()
        b_final[1][3] = 0.25          -- so empty samples have an output
        model.b_final:copy_(sae.tensor(b_final))
        local p = params_of(model)
        local imp = model.importance:totable()
        local loss_at = naive_loss_at(kind, p, imp, x)
        model:zero_grad()
        local xt = sae.tensor(x)
        assert.near(loss_at(), model:backward(xt), 1e-5)
        local _, out = naive_forward(kind, p, x)
        local _, per = naive_loss(kind, imp, out, x)
        assert_near_table(per, model:instance_losses():totable(), 1e-5)
        for _, entry in ipairs(model:parameters()) do
          local checked = check_gradient(entry, p[entry.name], loss_at, 7)
          assert.is_true(checked > 10)
        end
      end)
    end

    for _, shape in ipairs({ { 5, 2 }, { 40, 9 } }) do
      it("train_step() equals backward() on generate_batch() ("
        .. shape[1] .. " features)", function()
        for _, kind in ipairs(kinds) do
          local cfg = { kind = kind, n_instances = 3, n_features = shape[1],
            n_hidden = shape[2], n_correlated_pairs = 1,
            n_anticorrelated_pairs = 1, seed = 8,
            feature_probability = sae.tensor({ { 0.5 }, { 0.2 }, { 0.05 } }) }
          local a, b = sae.toy.Model(cfg), sae.toy.Model(cfg)
          local loss_a = a:train_step(70)
          b:zero_grad()
          local loss_b = b:backward(b:generate_batch(70))
          assert.near(loss_b, loss_a, 1e-6 * math.max(1, loss_b))
          for k, entry in ipairs(a:parameters()) do
            assert_near_table(b:parameters()[k].grad:totable(),
              entry.grad:totable(), 1e-6, kind .. " " .. entry.name)
          end
          -- both generators moved past the same counters
          assert.same(a:generate_batch(2):totable(), b:generate_batch(2):totable())
        end
      end)
    end

    it("accumulates until zero_grad()", function()
      local model, x = random_case("neuron", 41, 4, 2, 3, 2)
      local xt = sae.tensor(x)
      model:zero_grad()
      model:backward(xt)
      local once = model.grad.W:totable()
      model:backward(xt)
      local twice = model.grad.W:totable()
      for i = 1, 2 do
        for k = 1, 2 do
          for f = 1, 3 do assert.near(2 * once[i][k][f], twice[i][k][f], 1e-6) end
        end
      end
      model:zero_grad()
      assert.same(0, model.grad.W:totable()[1][1][1])
    end)

    it("rejects an empty batch", function()
      local m = sae.toy.Model{ n_instances = 2, n_features = 3, n_hidden = 2 }
      assert.has_error(function() m:backward(sae.zeros(0, 2, 3)) end,
        "backward: argument #2 expected a non-empty batch, got shape [0, 2, 3]")
    end)

    it("reports per-instance losses", function()
      local model, x = random_case("linear", 42, 8, 3, 4, 2)
      local xt = sae.tensor(x)
      local total = model:backward(xt)
      local per = model:instance_losses():totable()
      local _, ep = naive_loss("linear", model.importance:totable(),
        model:forward(xt):totable(), x)
      assert_near_table(ep, per, 1e-6)
      assert.near(ep[1] + ep[2] + ep[3], total, 1e-6)
    end)
  end)

  describe("generate_batch()", function()
    it("has the shape and range of each kind", function()
      for _, kind in ipairs(kinds) do
        local m = sae.toy.Model{ kind = kind, n_instances = 3, n_features = 4,
          n_hidden = 2, feature_probability = 0.7 }
        local x = m:generate_batch(50)
        assert.same({ 50, 3, 4 }, x:shape())
        local low = kind == "computation" and -1 or 0
        local negative = false
        for _, row in ipairs(x:totable()) do
          for _, inst in ipairs(row) do
            for _, v in ipairs(inst) do
              assert.is_true(v >= low and v < 1)
              negative = negative or v < 0
            end
          end
        end
        assert.equal(kind == "computation", negative)
      end
    end)

    it("activates features with each instance's probability", function()
      local probs = { 0.05, 0.3, 0.9 }
      local m = sae.toy.Model{ n_instances = 3, n_features = 10, n_hidden = 2,
        feature_probability = sae.tensor({ { probs[1] }, { probs[2] }, { probs[3] } }) }
      local B = 4000
      local x = m:generate_batch(B):totable()
      for i = 1, 3 do
        local count = 0
        for b = 1, B do
          for f = 1, 10 do if x[b][i][f] ~= 0 then count = count + 1 end end
        end
        local n, p = B * 10, probs[i]
        assert.near(p, count / n, 4 * math.sqrt(p * (1 - p) / n))
      end
    end)

    it("draws uniform magnitudes whatever the probability", function()
      -- magnitudes of present features at a high and a low probability;
      -- neighbouring features share a 64-bit draw, so check that they
      -- are uncorrelated too
      for _, case in ipairs({ { "linear", 1.0 }, { "linear", 0.01 },
                              { "computation", 1.0 },
                              { "computation", 0.01 } }) do
        local kind, p = case[1], case[2]
        local m = sae.toy.Model{ kind = kind, n_instances = 1,
          n_features = 7, n_hidden = 2, feature_probability = p, seed = 21 }
        local B = math.floor(5000 / (7 * p))
        local x = m:generate_batch(B):totable()
        local low = kind == "computation" and -1 or 0
        local n, sum, below, present = 0, 0, 0, 0
        local sxy, sx, sy, sxx, syy, pairs = 0, 0, 0, 0, 0, 0
        for b = 1, B do
          local v = x[b][1]
          for f = 1, 7 do
            if v[f] ~= 0 then
              local u = (v[f] - low) / (1 - low)   -- back to [0, 1)
              n, sum = n + 1, sum + u
              if u < 0.25 then below = below + 1 end
            end
          end
          present = present + (v[1] ~= 0 and 1 or 0)
          if p == 1.0 then
            for f = 1, 5, 2 do
              local a, c = v[f], v[f + 1]
              sxy, sx, sy = sxy + a * c, sx + a, sy + c
              sxx, syy, pairs = sxx + a * a, syy + c * c, pairs + 1
            end
          end
        end
        assert.near(0.5, sum / n, 4 * math.sqrt(1 / 12 / n))
        assert.near(0.25, below / n, 4 * math.sqrt(0.25 * 0.75 / n))
        if p == 1.0 then
          assert.equal(B, present)
          local cov = sxy / pairs - (sx / pairs) * (sy / pairs)
          local var_x = sxx / pairs - (sx / pairs) ^ 2
          local var_y = syy / pairs - (sy / pairs) ^ 2
          assert.near(0, cov / math.sqrt(var_x * var_y), 4 / math.sqrt(pairs))
        end
      end
    end)

    it("is reproducible from the seed", function()
      local cfg = { n_instances = 2, n_features = 3, n_hidden = 2,
        feature_probability = 0.5, seed = 99 }
      local a = sae.toy.Model(cfg)
      local b = sae.toy.Model(cfg)
      assert.same(a:generate_batch(20):totable(), b:generate_batch(20):totable())
      assert.are_not.same(a:generate_batch(20):totable(),
        a:generate_batch(20):totable())
      a:manual_seed(5)
      b:manual_seed(5)
      assert.same(a:generate_batch(7):totable(), b:generate_batch(7):totable())
    end)

    it("keeps correlated pairs together and anticorrelated pairs apart", function()
      local p = 0.2
      local m = sae.toy.Model{ n_instances = 2, n_features = 9, n_hidden = 2,
        n_correlated_pairs = 2, n_anticorrelated_pairs = 2,
        feature_probability = p }
      local B = 5000
      local x = m:generate_batch(B):totable()
      local present = {}
      for f = 1, 9 do present[f] = 0 end
      for b = 1, B do
        for i = 1, 2 do
          local v = x[b][i]
          for k = 0, 1 do   -- correlated pairs: features 1-2 and 3-4
            assert.equal(v[2 * k + 1] ~= 0, v[2 * k + 2] ~= 0)
          end
          for k = 2, 3 do   -- anticorrelated pairs: features 5-6 and 7-8
            assert.is_false(v[2 * k + 1] ~= 0 and v[2 * k + 2] ~= 0)
          end
          for f = 1, 9 do
            if v[f] ~= 0 then present[f] = present[f] + 1 end
          end
        end
      end
      local n = 2 * B
      for f = 1, 9 do
        assert.near(p, present[f] / n, 4 * math.sqrt(p * (1 - p) / n))
      end
    end)

    it("rejects a bad batch size", function()
      local m = sae.toy.Model{ n_instances = 1, n_features = 2, n_hidden = 1 }
      assert.has_error(function() m:generate_batch(0) end,
        "generate_batch: argument #2 (batch_size) expected an integer in "
        .. "[1, 2^31], got 0")
    end)
  end)

  describe("dimensionality()", function()
    it("matches the definition", function()
      local rand = filler(77)
      local W = random_table({ 2, 3, 5 }, rand, -1, 1)
      W[2][1][4], W[2][2][4], W[2][3][4] = 0, 0, 0     -- a zero feature
      local dims, per = sae.toy.dimensionality(sae.tensor(W))
      local dt, pt = dims:totable(), per:totable()
      for i = 1, 2 do
        local frob = 0
        for f = 1, 5 do
          local n2 = 0
          for k = 1, 3 do n2 = n2 + W[i][k][f] ^ 2 end
          frob = frob + n2
          local denom = 0
          for j = 1, 5 do
            local dot = 0
            for k = 1, 3 do dot = dot + W[i][k][f] * W[i][k][j] end
            denom = denom + (n2 > 0 and dot ^ 2 / n2 or 0)
          end
          local expected = denom > 0 and n2 / denom or 0
          assert.near(expected, dt[i][f], 1e-6)
        end
        assert.near(3 / frob, pt[i], 1e-6)
      end
    end)

    it("gives 1 for orthogonal and 1/2 for antipodal features", function()
      local W = sae.tensor({ { { 1, 0, -1 }, { 0, 2, 0 } } })
      local dims, per = sae.toy.dimensionality(W)
      assert_near_table({ { 0.5, 1, 0.5 } }, dims:totable(), 1e-7)
      assert.near(2 / 6, per:totable()[1], 1e-7)
    end)

    it("accepts a transposed view and rejects other shapes", function()
      local W = sae.tensor({ { { 1, 0 }, { 0, 1 }, { 1, 1 } } })   -- [1, 3, 2]
      local dims = sae.toy.dimensionality(W:transpose(2, 3))       -- [1, 2, 3]
      assert.same({ 1, 3 }, dims:shape())
      assert.has_error(function() sae.toy.dimensionality(sae.zeros(2, 3)) end,
        "dimensionality: argument #1 (W) expected a tensor of shape "
        .. "[instances, hidden, features], got shape [2, 3]")
    end)
  end)

  describe("train()", function()
    it("lowers the loss and returns the logged history", function()
      local m = sae.toy.Model{ n_instances = 2, n_features = 5, n_hidden = 2,
        feature_probability = 0.1, seed = 1 }
      local logged = 0
      local history = m:train{ steps = 300, batch_size = 256, lr = 1e-2,
        log_every = 100, progress = false, seed = 2,
        on_log = function(record)
          logged = logged + 1
          assert.same({ 2 }, record.instance_losses:shape())
        end }
      assert.equal(4, #history)
      assert.equal(4, logged)
      assert.same({ 1, 101, 201, 300 }, { history[1].step, history[2].step,
        history[3].step, history[4].step })
      assert.is_true(history[4].loss < 0.5 * history[1].loss)
      local per = history[4].instance_losses:totable()
      assert.near(history[4].loss, per[1] + per[2], 1e-6)
    end)
  end)

  describe("train() across thread counts", function()
    it("gives the same parameters bit for bit", function()
      local script = os.tmpname()
      local f = io.open(script, "w")
      f:write([[
local sae = require "sae"
local out = {}
for _, cfg in ipairs({ { n_features = 5, n_hidden = 2 },
                       { n_features = 40, n_hidden = 9, kind = "computation" } }) do
  cfg.n_instances = 3
  cfg.feature_probability = 0.3
  cfg.seed = 4
  local m = sae.toy.Model(cfg)
  m:train{ steps = 20, batch_size = 100, progress = false }
  for _, e in ipairs(m:parameters()) do
    for _, v in ipairs(e.param:reshape(-1):totable()) do
      out[#out + 1] = string.format("%a", v)
    end
  end
end
io.write(table.concat(out, ","))
]])
      f:close()
      local function run(threads)
        local pipe = io.popen("OMP_NUM_THREADS=" .. threads .. " lua5.4 " .. script)
        local text = pipe:read("a")
        pipe:close()
        return text
      end
      local one, two = run(1), run(2)
      os.remove(script)
      assert.is_true(#one > 100, "child run printed: " .. one)
      assert.equal(one, two)
    end)
  end)

  describe("5->2 model after training", function()
    local imp = {}
    for f = 1, 5 do imp[f] = 0.9 ^ (f - 1) end
    local m = sae.toy.Model{ n_instances = 2, n_features = 5, n_hidden = 2,
      feature_probability = sae.tensor({ { 1.0 }, { 0.02 } }),
      importance = sae.tensor({ imp }), seed = 3 }
    m:train{ steps = 5000, batch_size = 512, lr = 5e-3, progress = false }
    local W = m.W:totable()

    local function column(i, f) return W[i][1][f], W[i][2][f] end

    it("places sparse features in a pentagon", function()
      local angles = {}
      for f = 1, 5 do
        local a, b = column(2, f)
        local norm = math.sqrt(a * a + b * b)
        assert.is_true(norm > 0.9 and norm < 1.35, "norm " .. norm)
        angles[f] = math.deg(math.atan(b, a))
      end
      table.sort(angles)
      for f = 1, 5 do
        local gap = (f == 5 and angles[1] + 360 or angles[f + 1]) - angles[f]
        assert.near(72, gap, 10)
      end
    end)

    it("represents exactly the two most important dense features", function()
      local a1, b1 = column(1, 1)
      local a2, b2 = column(1, 2)
      assert.near(1, math.sqrt(a1 * a1 + b1 * b1), 0.1)
      assert.near(1, math.sqrt(a2 * a2 + b2 * b2), 0.1)
      assert.near(0, a1 * a2 + b1 * b2, 0.1)          -- orthogonal
      for f = 3, 5 do
        local a, b = column(1, f)
        assert.is_true(math.sqrt(a * a + b * b) < 0.2)
      end
    end)
  end)

  describe("PyTorch fixtures", function()
    local fixture = dofile("spec/fixtures/toy_models.lua")

    for _, kind in ipairs(kinds) do
      it("match forward, loss and gradients (" .. kind .. ")", function()
        local case = fixture[kind]
        local I, F = #case.importance, #case.importance[1]
        local H = kind == "computation" and #case.W1[1] or #case.W[1]
        local m = sae.toy.Model{ kind = kind, n_instances = I, n_features = F,
          n_hidden = H, importance = sae.tensor(case.importance) }
        for _, entry in ipairs(m:parameters()) do
          entry.param:copy_(sae.tensor(case[entry.name]))
        end
        local x = sae.tensor(case.x)
        assert_near_table(case.hidden, m:hidden(x):totable(), 1e-6)
        local out = m:forward(x)
        assert_near_table(case.out, out:totable(), 1e-6)
        local total, per = m:loss(out, x)
        assert.near(case.loss, total, 1e-6)
        assert_near_table(case.instance_losses, per:totable(), 1e-6)
        m:zero_grad()
        assert.near(case.loss, m:backward(x), 1e-6)
        for _, entry in ipairs(m:parameters()) do
          assert_near_table(case["grad_" .. entry.name], entry.grad:totable(),
            1e-6, entry.name)
        end
      end)
    end

    it("match the exercises' dimensionality", function()
      local case = fixture.dimensionality
      local dims, per = sae.toy.dimensionality(sae.tensor(case.W))
      assert_near_table(case.dims, dims:totable(), 1e-5)
      assert_near_table(case.dims_per_feature, per:totable(), 1e-5)
    end)
  end)

  describe("save() and load()", function()
    it("round-trips a model through safetensors", function()
      local m = sae.toy.Model{ kind = "computation", n_instances = 2,
        n_features = 4, n_hidden = 3, n_correlated_pairs = 1,
        feature_probability = 0.25, importance = sae.tensor({ { 1, 0.5, 0.25, 0.125 } }),
        seed = 17 }
      m.b_final:fill_(0.5)
      local path = os.tmpname()
      m:save(path)
      local n = sae.toy.load(path)
      os.remove(path)
      assert.equal("computation", n.kind)
      assert.equal(1, n.n_correlated_pairs)
      assert.equal(17, n.seed)
      assert.same(m.W1:totable(), n.W1:totable())
      assert.same(m.W2:totable(), n.W2:totable())
      assert.same(m.b_final:totable(), n.b_final:totable())
      assert.same(m.importance:totable(), n.importance:totable())
      assert.same(m.feature_probability:totable(), n.feature_probability:totable())
    end)

    it("rejects a file that holds no toy model", function()
      local path = os.tmpname()
      sae.save(path, { W = sae.zeros(1, 1, 2) }, { format = "other" })
      assert.has_error(function() sae.toy.load(path) end,
        "load: " .. path .. " is not a saved sae.toy.Model (metadata format "
        .. "is other)")
      os.remove(path)
    end)
  end)
end)
