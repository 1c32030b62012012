local sae = require "sae"

local train = sae.train


describe("sae.train", function()
  describe("schedule()", function()
    it("gives the exercises' constant, linear and cosine factors", function()
      local constant = train.schedule("constant")
      local linear = train.schedule("linear")
      local cosine = train.schedule("cosine")
      assert.equal(1, constant(0, 10))
      assert.equal(1, constant(9, 10))
      assert.equal(1, linear(0, 10))
      assert.near(0.1, linear(9, 10), 1e-12)
      assert.equal(1, cosine(0, 10))
      assert.near(math.cos(0.25 * math.pi), cosine(4.5, 10), 1e-12)
      assert.near(0, cosine(9, 10), 1e-12)
    end)

    it("passes a function through and defaults to constant", function()
      local f = function(step, steps) return step / steps end
      assert.equal(f, train.schedule(f))
      assert.equal(1, train.schedule(nil)(3, 4))
    end)

    it("rejects an unknown name", function()
      assert.has_error(function() train.schedule("step") end,
        "lr_schedule: expected \"constant\", \"linear\", \"cosine\" or a "
        .. "function(step, steps), got step")
    end)
  end)

  describe("run()", function()
    it("logs every log_every steps and at the last step", function()
      local seen_lr = {}
      local history = train.run{
        steps = 10, lr = 2, lr_schedule = "linear", log_every = 4,
        progress = false,
        step = function(step, lr)
          seen_lr[step] = lr
          return step * 10, { extra = -step }
        end,
      }
      assert.same({ 1, 5, 9, 10 }, { history[1].step, history[2].step,
        history[3].step, history[4].step })
      assert.equal(4, #history)
      assert.equal(90, history[3].loss)
      assert.equal(-9, history[3].extra)
      assert.near(2 * (1 - 4 / 10), history[2].lr, 1e-12)
      assert.near(2, seen_lr[1], 1e-12)
      assert.near(2 * 0.1, seen_lr[10], 1e-12)
    end)

    it("sets the optimizer's rate each step and calls on_log", function()
      local p = sae.zeros(1)
      local opt = sae.optim.SGD({ { param = p, grad = sae.ones(1) } }, { lr = 1 })
      local logged = 0
      train.run{
        steps = 3, lr = 0.5, optimizer = opt, log_every = 1, progress = false,
        step = function() opt:step(); return 0 end,
        on_log = function(record) logged = logged + 1; assert.equal(0.5, record.lr) end,
      }
      assert.equal(3, logged)
      assert.near(-1.5, p:totable()[1], 1e-6)
    end)

    it("rejects bad steps and log_every", function()
      local step = function() return 0 end
      assert.has_error(function() train.run{ steps = 0, step = step } end,
        "train: option steps expected an integer >= 1, got 0")
      assert.has_error(function()
        train.run{ steps = 2, log_every = 1.5, step = step }
      end, "train: option log_every expected an integer >= 1, got 1.5")
      assert.has_error(function() train.run{ steps = 2 } end,
        "train: option step expected a function(step, lr), got nil")
    end)
  end)

  describe("progress()", function()
    it("renders step, bar, fields and rate", function()
      local bar = train.progress(200, { enabled = false })
      local text = bar:render(50, { { "loss", 0.00125 }, { "lr", 0.5 } }, 2)
      assert.equal(" 50/200 [======                  ]  25%  loss 1.250e-03  "
        .. "lr 0.5000  25 it/s", text)
    end)

    it("writes to a file only when forced", function()
      local path = os.tmpname()
      local f = io.open(path, "w")
      local bar = train.progress(2, { out = f, enabled = true })
      if not train.isatty() then
        bar:update(2, { { "loss", 1 } })
        bar:close()
      end
      local forced = train.progress(2, { out = f, force = true, width = 4 })
      forced:update(2, { { "loss", 1 } })
      forced:close()
      f:close()
      local text = io.open(path):read("a")
      os.remove(path)
      assert.truthy(text:find("2/2 [====] 100%  loss 1.0000", 1, true))
      assert.equal(1, select(2, text:gsub("\r", "")))
    end)
  end)
end)

describe("option tables", function()
  local sae = require "sae"

  it("reject a misspelt model option", function()
    assert.has_error(function()
      sae.toy.Model{ n_instances = 1, n_features = 5, n_hiden = 2 }
    end, 'Model: argument #1 has an unknown option "n_hiden" (did you mean "n_hidden"?)')
  end)

  it("reject a misspelt SAE option", function()
    assert.has_error(function()
      sae.SAE{ n_instances = 1, n_input_ae = 2, n_hidden_ae = 5, l1coeff = 9 }
    end, 'SAE: argument #1 has an unknown option "l1coeff" (did you mean "l1_coeff"?)')
  end)

  it("reject an unknown training option", function()
    local model = sae.toy.Model{ n_instances = 1, n_features = 5, n_hidden = 2 }
    assert.has_error(function() model:train{ step = 10 } end,
      'train: argument #1 has an unknown option "step" (did you mean "steps"?)')
    assert.has_error(function() model:train{ mode = "quadratic" } end,
      'train: argument #1 has an unknown option "mode"')
  end)

  it("reject an unknown optimizer option", function()
    local model = sae.toy.Model{ n_instances = 1, n_features = 5, n_hidden = 2 }
    assert.has_error(function() sae.optim.Adam(model, { learning_rate = 1 }) end,
      'Adam: argument #1 has an unknown option "learning_rate"')
  end)
end)
