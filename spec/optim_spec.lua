local sae = require "sae"

local fixture = dofile("spec/fixtures/toy_optim.lua")


-- Asserts that every element of tensor `t` is within tol of the nested
-- table `expected` (relative to max(1, |expected|)).
local function assert_tensor_near(expected, t, tol, label)
  local function walk(e, a, path)
    if type(e) == "table" then
      assert.equal(#e, #a, "length at " .. path)
      for i = 1, #e do walk(e[i], a[i], path .. "[" .. i .. "]") end
    else
      local scale = math.max(1, math.abs(e))
      if math.abs(e - a) > tol * scale then
        error(string.format("%s%s: expected %.9g, got %.9g", label or "",
          path, e, a), 3)
      end
    end
  end
  walk(expected, t:totable(), "")
end


local function make_params(case)
  local p1, p2 = sae.tensor(case.p1), sae.tensor(case.p2)
  return {
    { name = "a", param = p1, grad = sae.zeros(p1:shape()) },
    { name = "b", param = p2, grad = sae.zeros(p2:shape()) },
  }
end


local function run_case(opt, params, case, last)
  for step = 1, last or #case.grads do
    params[1].grad:copy_(sae.tensor(case.grads[step][1]))
    params[2].grad:copy_(sae.tensor(case.grads[step][2]))
    opt:step()
    assert_tensor_near(case.after[step][1], params[1].param, 2e-6,
      "step " .. step .. " a")
    assert_tensor_near(case.after[step][2], params[2].param, 2e-6,
      "step " .. step .. " b")
  end
end


describe("sae.optim", function()
  describe("Adam", function()
    it("matches torch.optim.Adam with default options", function()
      local case = fixture.adam_default
      local params = make_params(case)
      run_case(sae.optim.Adam(params, { lr = 1e-3 }), params, case)
    end)

    it("matches torch.optim.Adam with betas, eps and weight decay", function()
      local case = fixture.adam_custom
      local params = make_params(case)
      local opt = sae.optim.Adam(params, case.opts)
      run_case(opt, params, case)
      assert_tensor_near(case.exp_avg1, opt:state("a").exp_avg, 2e-6)
      assert_tensor_near(case.exp_avg_sq1, opt:state(params[1].param).exp_avg_sq,
        2e-6)
    end)

    it("restores its state from state_dict()", function()
      local case = fixture.adam_custom
      local params = make_params(case)
      local opt = sae.optim.Adam(params, case.opts)
      run_case(opt, params, case, 2)
      local saved = opt:state_dict()
      assert.equal(2, saved.step)
      assert.is_not_nil(saved.tensors["a.exp_avg"])
      assert.is_not_nil(saved.tensors["b.exp_avg_sq"])

      -- A fresh optimizer over the step-2 parameters continues the run.
      local params2 = {
        { name = "a", param = params[1].param:clone(), grad = sae.zeros(2, 3) },
        { name = "b", param = params[2].param:clone(), grad = sae.zeros(4) },
      }
      local opt2 = sae.optim.Adam(params2, { lr = 1 })
      opt2:load_state_dict(saved)
      assert.equal(case.opts.lr, opt2:get_lr())
      for step = 3, #case.grads do
        params2[1].grad:copy_(sae.tensor(case.grads[step][1]))
        params2[2].grad:copy_(sae.tensor(case.grads[step][2]))
        opt2:step()
      end
      assert_tensor_near(case.after[#case.grads][1], params2[1].param, 2e-6)
      assert_tensor_near(case.after[#case.grads][2], params2[2].param, 2e-6)
    end)

    it("zero_grad() clears every gradient", function()
      local params = make_params(fixture.adam_default)
      params[1].grad:fill_(3)
      params[2].grad:fill_(-1)
      sae.optim.Adam(params):zero_grad()
      assert.same({ { 0, 0, 0 }, { 0, 0, 0 } }, params[1].grad:totable())
      assert.same({ 0, 0, 0, 0 }, params[2].grad:totable())
    end)

    it("set_lr() changes the step size", function()
      local params = make_params(fixture.adam_default)
      local opt = sae.optim.Adam(params, { lr = 0.5 })
      local before = params[1].param:totable()
      opt:set_lr(0)
      assert.equal(0, opt:get_lr())
      params[1].grad:fill_(1)
      opt:step()
      assert.same(before, params[1].param:totable())
    end)

    it("reset_state() zeroes the masked entries only", function()
      local p = sae.zeros(2, 3)
      local g = sae.ones(2, 3)
      local opt = sae.optim.Adam({ { name = "w", param = p, grad = g } })
      opt:step()
      local s = opt:state(p)
      local before = s.exp_avg:totable()
      assert.near(0.1, before[1][1], 1e-7)
      -- mask [1, 3] broadcasts over rows: reset column 2 only
      opt:reset_state(p, sae.tensor({ { 0, 1, 0 } }))
      assert.same({ { before[1][1], 0, before[1][3] },
                    { before[2][1], 0, before[2][3] } }, s.exp_avg:totable())
      assert.equal(0, s.exp_avg_sq:totable()[2][2])
      assert.is_true(s.exp_avg_sq:totable()[2][1] > 0)
      -- no mask: everything
      opt:reset_state("w")
      assert.same({ { 0, 0, 0 }, { 0, 0, 0 } }, s.exp_avg_sq:totable())
    end)

    it("raises on a mask that does not broadcast", function()
      local p = sae.zeros(2, 3)
      local opt = sae.optim.Adam({ { name = "w", param = p, grad = sae.zeros(2, 3) } })
      assert.has_error(function() opt:reset_state(p, sae.zeros(3, 2)) end,
        "reset_state: argument #2 (mask) expected a shape that broadcasts to "
        .. "the state's shape, got shapes [3, 2] and [2, 3]")
    end)

    it("rejects invalid options", function()
      local params = make_params(fixture.adam_default)
      assert.has_error(function() sae.optim.Adam(params, { lr = -1 }) end,
        "Adam: option lr expected a number >= 0, got -1")
      assert.has_error(function() sae.optim.Adam(params, { betas = { 0.9, 1 } }) end,
        "Adam: option betas[2] expected a number >= 0 and < 1, got 1")
      assert.has_error(function() sae.optim.Adam({}) end,
        "Adam: argument #1 (params) expected a non-empty list of "
        .. "{ name =, param =, grad = } or a model, got table")
      assert.has_error(function()
        sae.optim.Adam({ { param = sae.zeros(2), grad = sae.zeros(3) } })
      end, "Adam: params[1] expected param and grad of one shape, got shapes "
        .. "[2] and [3]")
      assert.has_error(function()
        sae.optim.Adam({ { param = sae.zeros(2, 2):transpose(), grad = sae.zeros(2, 2) } })
      end, "Adam: params[1] expected contiguous param and grad tensors")
      local opt = sae.optim.Adam(params)
      assert.has_error(function() opt:state(sae.zeros(1)) end)
      assert.has_error(function() opt:load_state_dict({}) end,
        "Adam:load_state_dict: argument #1 (state) expected a table with an "
        .. "integer step and a table of tensors, as state_dict() returns")
    end)
  end)

  describe("SGD", function()
    it("matches torch.optim.SGD with momentum and weight decay", function()
      local case = fixture.sgd_momentum
      local params = make_params(case)
      run_case(sae.optim.SGD(params, case.opts), params, case)
    end)

    it("matches torch.optim.SGD without momentum", function()
      local case = fixture.sgd_plain
      local params = make_params(case)
      run_case(sae.optim.SGD(params, { lr = 0.1 }), params, case)
    end)

    it("round-trips its momentum through state_dict()", function()
      local case = fixture.sgd_momentum
      local params = make_params(case)
      local opt = sae.optim.SGD(params, case.opts)
      run_case(opt, params, case, 1)
      local saved = opt:state_dict()
      local opt2 = sae.optim.SGD(params, case.opts)
      opt2:load_state_dict(saved)
      for step = 2, #case.grads do
        params[1].grad:copy_(sae.tensor(case.grads[step][1]))
        params[2].grad:copy_(sae.tensor(case.grads[step][2]))
        opt2:step()
      end
      assert_tensor_near(case.after[#case.grads][1], params[1].param, 2e-6)
    end)
  end)
end)
