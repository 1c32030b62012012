local sae = require "sae"
local helpers = require "helpers"

local flatten, nest = helpers.flatten, helpers.nest
local gen = helpers.generator(2024)

local function rand(shape, lo, hi)
  return helpers.random_table(gen, shape, lo or -2, hi or 2)
end


-- Splits a nested table into the lines along `dim` (1-based; nil means
-- one line of all elements). Returns the lines, each a list of values,
-- and the shape of the result with that dim removed.
local function lines_of(a, dim)
  local flat, shape = flatten(a)
  if dim == nil then return { flat }, {} end
  if dim < 0 then dim = #shape + dim + 1 end
  local outer, inner = 1, 1
  for d = 1, dim - 1 do outer = outer * shape[d] end
  for d = dim + 1, #shape do inner = inner * shape[d] end
  local lines, rest = {}, {}
  for d = 1, #shape do if d ~= dim then rest[#rest + 1] = shape[d] end end
  for o = 0, outer - 1 do
    for i = 0, inner - 1 do
      local line = {}
      for k = 0, shape[dim] - 1 do
        line[k + 1] = flat[(o * shape[dim] + k) * inner + i + 1]
      end
      lines[#lines + 1] = line
    end
  end
  return lines, rest
end


-- Reference reduction: f(line) gives a value (and an optional index).
local function ref_reduce(a, dim, f)
  local lines, shape = lines_of(a, dim)
  local values, indices = {}, {}
  for j, line in ipairs(lines) do values[j], indices[j] = f(line) end
  return nest(values, shape), nest(indices, shape)
end


local function isnan(v) return v ~= v end

local function line_sum(l)
  local s = 0
  for _, v in ipairs(l) do s = s + v end
  return s
end

local function line_mean(l) return line_sum(l) / #l end

local function line_prod(l)
  local p = 1
  for _, v in ipairs(l) do p = p * v end
  return p
end

local function line_extreme(sign)
  return function(l)
    local best, at = l[1], 1
    for k = 2, #l do
      if isnan(best) then break end
      if isnan(l[k]) or sign * (l[k] - best) > 0 then best, at = l[k], k end
    end
    return best, at
  end
end

local function line_norm(p)
  return function(l)
    if p == math.huge then
      local m = 0
      for _, v in ipairs(l) do m = math.max(m, math.abs(v)) end
      return m
    end
    if p == 0 then
      local c = 0
      for _, v in ipairs(l) do if v ~= 0 then c = c + 1 end end
      return c
    end
    local s = 0
    for _, v in ipairs(l) do s = s + math.abs(v) ^ p end
    return s ^ (1 / p)
  end
end

local function line_var(correction)
  return function(l)
    local m, s = line_mean(l), 0
    for _, v in ipairs(l) do s = s + (v - m) ^ 2 end
    return s / (#l - correction)
  end
end


-- Stable sort of a line; returns sorted values and 1-based positions.
local function stable_sort(l, descending)
  local order = {}
  for k = 1, #l do order[k] = k end
  table.sort(order, function(i, j)
    local a, b = l[i], l[j]
    if a ~= b then
      if descending then return a > b end
      return a < b
    end
    return i < j
  end)
  local values = {}
  for k, i in ipairs(order) do values[k] = l[i] end
  return values, order
end


-- Reference for ops that keep the dim: f(line) returns a new line
-- (and a second line of indices); results are put back along dim.
local function ref_lines(a, dim, f)
  local flat, shape = flatten(a)
  if dim < 0 then dim = #shape + dim + 1 end
  local lines = lines_of(a, dim)
  local outer, inner = 1, 1
  for d = 1, dim - 1 do outer = outer * shape[d] end
  for d = dim + 1, #shape do inner = inner * shape[d] end
  local out_shape = {}
  for d = 1, #shape do out_shape[d] = shape[d] end
  local values, indices = {}, {}
  for j, line in ipairs(lines) do
    local v, i = f(line)
    out_shape[dim] = #v
    local o, r = (j - 1) // inner, (j - 1) % inner
    for k = 1, #v do
      local pos = (o * #v + (k - 1)) * inner + r + 1
      values[pos], indices[pos] = v[k], i and i[k]
    end
  end
  return nest(values, out_shape), nest(indices, out_shape)
end


-- Inputs of shape [3, 4, 5]: contiguous, permuted, narrowed, expanded.
local function layouts()
  local a = rand({ 3, 4, 5 })
  local p = sae.tensor(rand({ 5, 3, 4 })):permute(2, 3, 1)
  local n = sae.tensor(rand({ 3, 6, 5 })):narrow(2, 2, 4)
  local e = sae.tensor(rand({ 3, 1, 5 })):expand(3, 4, 5)
  return {
    contiguous = sae.tensor(a), permuted = p, narrowed = n, expanded = e,
  }
end


local simple = {
  sum = line_sum, mean = line_mean, prod = line_prod,
}


describe("sae.Tensor", function()
  for name, f in pairs(simple) do
    describe(name .. "()", function()
      for layout, x in pairs(layouts()) do
        it("reduces a " .. layout .. " input over all and each dim", function()
          local a = x:totable()
          assert.tensor_near(ref_reduce(a, nil, f), x[name](x))
          for dim = -3, 3 do
            if dim ~= 0 then
              assert.tensor_near(ref_reduce(a, dim, f), x[name](x, dim))
            end
          end
        end)
      end

      it("keeps dims with keepdim", function()
        local x = sae.tensor(rand({ 2, 3 }))
        assert.same({ 2, 1 }, x[name](x, 2, true):shape())
        assert.same({ 1, 3 }, sae[name](x, 1, true):shape())
        assert.same({ 1, 1 }, x[name](x, nil, true):shape())
      end)
    end)
  end

  describe("sum()", function()
    it("gives a 0-d tensor whose item is the number", function()
      local s = sae.tensor({ { 1, 2 }, { 3, 4 } }):sum()
      assert.same({}, s:shape())
      assert.equal(10, s:item())
    end)

    it("sums a million elements to 1e-6 relative", function()
      local flat, exact = {}, 0
      for k = 1, 1000000 do
        local v = string.unpack("f", string.pack("f", ((k * 7919) % 1000) / 999 + 0.1))
        flat[k] = v
        exact = exact + v
      end
      local x = sae.tensor(flat)
      local torch = dofile("spec/fixtures/ops.lua").long_sum
      assert.near(torch.float32_sum, x:sum():item(), torch.float32_sum * 1e-5)
      assert.near(torch.float64_sum, x:sum():item(), torch.float64_sum * 1e-7)
      assert.near(torch.float32_mean, x:mean():item(), 1e-5)
      assert.near(torch.float64_var, x:var():item(), torch.float64_var * 1e-6)
      assert.near(exact, x:sum():item(), exact * 1e-6)
      assert.near(exact / 1e6, x:mean():item(), exact / 1e6 * 1e-6)
      local m = x:view(1000, 1000)
      assert.tensor_near(ref_reduce(m:totable(), 1, line_sum), m:sum(1), 1e-6)
      assert.tensor_near(ref_reduce(m:totable(), 2, line_sum), m:sum(2), 1e-6)
    end)

    it("handles 0-d and empty tensors", function()
      assert.equal(5, sae.tensor(5):sum():item())
      assert.equal(5, sae.tensor(5):sum(1):item())
      assert.equal(0, sae.zeros(0):sum():item())
      assert.is_true(isnan(sae.zeros(0):mean():item()))
      local z = sae.zeros(0, 3):sum(1)
      assert.same({ 3 }, z:shape())
      assert.same({ 0, 0, 0 }, z:totable())
      assert.same({ 0 }, sae.zeros(0, 3):sum(2):shape())
    end)
  end)

  for _, name in ipairs({ "max", "min" }) do
    local f = line_extreme(name == "max" and 1 or -1)
    describe(name .. "()", function()
      for layout, x in pairs(layouts()) do
        it("gives values and 1-based indices on a " .. layout .. " input",
          function()
            local a = x:totable()
            assert.tensor_near((ref_reduce(a, nil, f)), x[name](x))
            for _, dim in ipairs({ 1, 2, 3, -1 }) do
              local ev, ei = ref_reduce(a, dim, f)
              local v, i = x[name](x, dim)
              assert.tensor_near(ev, v)
              assert.equal("int64", i:dtype())
              assert.same(ei, i:totable())
            end
          end)
      end

      it("returns the first of equal values and propagates NaN", function()
        local x = sae.tensor({ { 1, 3, 3, 1 }, { 2, 0 / 0, 5, 0 / 0 } })
        local v, i = x[name](x, 2, true)
        assert.same({ 2, 1 }, v:shape())
        assert.same({ { name == "max" and 2 or 1 }, { 2 } }, i:totable())
        assert.is_true(isnan(v:totable()[2][1]))
        assert.is_true(isnan(x[name](x):item()))
      end)

      it("finds the first extreme down columns, with NaN", function()
        local x = sae.tensor({ { 1, 0 / 0, 4 }, { 7, 2, 4 }, { 7, 0 / 0, 0 } })
        local v, i = x[name](x, 1)
        assert.same(name == "max" and { 2, 1, 1 } or { 1, 1, 3 }, i:totable())
        local vals = v:totable()
        assert.equal(name == "max" and 7 or 1, vals[1])
        assert.is_true(isnan(vals[2]))
      end)
    end)
  end

  describe("max() and min() of two tensors", function()
    it("are maximum() and minimum()", function()
      local x, y = sae.tensor({ 1, 5, 3 }), sae.tensor({ { 4 }, { 2 } })
      assert.same(sae.maximum(x, y):totable(), x:max(y):totable())
      assert.same(sae.minimum(x, y):totable(), sae.min(x, y):totable())
      assert.has_error(function() sae.max(5, y) end,
        "max: argument #1 expected sae.Tensor, got number")
    end)
  end)

  describe("argmax() and argmin()", function()
    it("give 1-based int64 positions", function()
      local a = rand({ 4, 6 })
      local x = sae.tensor(a):transpose()
      local _, ei = ref_reduce(x:totable(), 2, line_extreme(1))
      assert.same(ei, x:argmax(2):totable())
      local _, ej = ref_reduce(x:totable(), 1, line_extreme(-1))
      assert.same(ej, x:argmin(1):totable())
      assert.same({ 1, 4 }, x:argmin(1, true):shape())
      local _, flat = ref_reduce(x:totable(), nil, line_extreme(1))
      local arg = x:argmax()
      assert.same({}, arg:shape())
      assert.equal("int64", arg:dtype())
      assert.equal(flat, arg:item())
    end)
  end)

  describe("norm()", function()
    for _, p in ipairs({ 1, 2, 3, 0.5, math.huge, 0 }) do
      it("computes p = " .. tostring(p) .. " over all and over a dim", function()
        local x = sae.tensor(rand({ 3, 5 })):transpose()
        local a = x:totable()
        assert.tensor_near(ref_reduce(a, nil, line_norm(p)), x:norm(p))
        assert.tensor_near(ref_reduce(a, 2, line_norm(p)), x:norm(p, 2))
        assert.same({ 1, 3 }, x:norm(p, 1, true):shape())
      end)
    end

    it("defaults to p = 2", function()
      assert.near(5, sae.tensor({ 3, 4 }):norm():item(), 1e-6)
      assert.near(5, sae.tensor({ 3, 4 }):norm("fro"):item(), 1e-6)
    end)
  end)

  describe("var() and std()", function()
    it("match the reference, unbiased by default", function()
      local x = sae.tensor(rand({ 4, 7 })):transpose()
      local a = x:totable()
      assert.tensor_near(ref_reduce(a, nil, line_var(1)), x:var())
      assert.tensor_near(ref_reduce(a, nil, line_var(0)), x:var(nil, false))
      assert.tensor_near(ref_reduce(a, 1, line_var(1)), x:var(1))
      assert.tensor_near(ref_reduce(a, 2, line_var(0)), x:var(2, false))
      assert.same({ 7, 1 }, x:var(2, true, true):shape())
      local ev = ref_reduce(a, 2, line_var(1))
      for k, v in ipairs(ev) do ev[k] = math.sqrt(v) end
      assert.tensor_near(ev, x:std(2))
    end)

    it("gives NaN for one element unbiased", function()
      assert.is_true(isnan(sae.tensor({ 3 }):var():item()))
      assert.equal(0, sae.tensor({ 3 }):var(nil, false):item())
    end)
  end)

  describe("sort()", function()
    it("sorts stably along the last dim by default", function()
      local a = { { 3, 1, 2, 1 }, { 0, 5, 5, -1 } }
      local v, i = sae.tensor(a):sort()
      assert.same({ { 1, 1, 2, 3 }, { -1, 0, 5, 5 } }, v:totable())
      assert.same({ { 2, 4, 3, 1 }, { 4, 1, 2, 3 } }, i:totable())
      local dv, di = sae.tensor(a):sort(2, true)
      assert.same({ { 3, 2, 1, 1 }, { 5, 5, 0, -1 } }, dv:totable())
      assert.same({ { 1, 3, 2, 4 }, { 2, 3, 1, 4 } }, di:totable())
    end)

    it("matches the reference along every dim of a strided input", function()
      local x = sae.tensor(rand({ 4, 3, 5 })):permute(3, 1, 2)
      local a = x:totable()
      for _, dim in ipairs({ 1, 2, 3 }) do
        for _, desc in ipairs({ false, true }) do
          local ev, ei = ref_lines(a, dim, function(l) return stable_sort(l, desc) end)
          local v, i = x:sort(dim, desc)
          assert.tensor_near(ev, v)
          assert.same(ei, i:totable())
        end
      end
    end)

    it("puts NaN last ascending and first descending", function()
      local x = sae.tensor({ 2, 0 / 0, 1 })
      local v, i = x:sort()
      assert.same({ 3, 1, 2 }, i:totable())
      assert.is_true(isnan(v:totable()[3]))
      local _, di = x:sort(1, true)
      assert.same({ 2, 1, 3 }, di:totable())
    end)
  end)

  describe("topk()", function()
    it("gives the k largest or smallest with 1-based indices", function()
      local x = sae.tensor(rand({ 6, 4 })):transpose()   -- [4, 6]
      local a = x:totable()
      for _, largest in ipairs({ true, false }) do
        local ev, ei = ref_lines(a, 2, function(l)
          local v, i = stable_sort(l, largest)
          return { v[1], v[2], v[3] }, { i[1], i[2], i[3] }
        end)
        local v, i = x:topk(3, 2, largest)
        assert.tensor_near(ev, v)
        assert.same(ei, i:totable())
      end
      local v1 = x:topk(2, 1)
      assert.same({ 2, 6 }, v1:shape())
      assert.same({ 4, 0 }, x:topk(0):shape())
    end)
  end)

  describe("cumsum()", function()
    it("runs along each dim of a strided input", function()
      local x = sae.tensor(rand({ 3, 4, 2 })):permute(2, 3, 1)
      local a = x:totable()
      for _, dim in ipairs({ 1, 2, 3, -1 }) do
        local expected = ref_lines(a, dim, function(l)
          local out, s = {}, 0
          for k, v in ipairs(l) do s = s + v; out[k] = s end
          return out
        end)
        assert.tensor_near(expected, x:cumsum(dim))
      end
    end)
  end)

  describe("int64 reductions", function()
    it("sum, prod, max and min stay int64 and exact", function()
      local big = math.maxinteger - 10
      local x = sae.tensor({ { big, 3, -4 }, { 5, big, 6 } }, "int64")
      assert.equal("int64", x:sum():dtype())
      -- Lua integers wrap around like the int64 kernels
      assert.same({ big - 1, big + 11 }, x:sum(2):totable())
      assert.same({ big + 5, 3 + big, 2 }, x:sum(1):totable())
      local small = sae.tensor({ { 1, 3, -4 }, { 5, 1, 6 } }, "int64")
      assert.same({ -12, 30 }, small:prod(2):totable())
      local t = x:transpose()
      local v, i = t:max(1)
      assert.same({ big, big }, v:totable())
      assert.same({ 1, 2 }, i:totable())
      assert.equal(-4, x:min():item())
      assert.equal(3, x:argmin():item())
      assert.same({ { 3, 1 } }, t:argmin(1, true):totable())
    end)
  end)

  describe("all() and any()", function()
    it("test for nonzero elements", function()
      local x = sae.tensor({ { 1, 0 }, { 2, 3 } })
      assert.equal(0, x:all():item())
      assert.equal(1, x:any():item())
      assert.same({ 0, 1 }, x:all(2):totable())
      assert.same({ 1, 1 }, x:any(1):totable())
    end)
  end)

  describe("large reductions", function()
    it("split lines across threads", function()
      local a = rand({ 300, 200 })
      local x = sae.tensor(a)
      assert.tensor_near(ref_reduce(a, 2, line_sum), x:sum(2))
      assert.tensor_near(ref_reduce(a, 1, line_var(1)), x:var(1))
      local _, ei = ref_reduce(a, 2, line_extreme(1))
      local _, i = x:max(2)
      assert.same(ei, i:totable())
      assert.tensor_near(ref_reduce(a, 1, line_mean), x:mean(1))
      local ev1, ei1 = ref_reduce(a, 1, line_extreme(-1))
      local v1, i1 = x:min(1)
      assert.tensor_near(ev1, v1)
      assert.same(ei1, i1:totable())
      local _, flat = ref_reduce(a, nil, line_extreme(-1))
      assert.equal(flat, x:argmin():item())
      local ev, si = ref_lines(a, 2, function(l) return stable_sort(l, true) end)
      local v, j = x:sort(2, true)
      assert.tensor_near(ev, v)
      assert.same(si, j:totable())
    end)
  end)

  describe("PyTorch fixture", function()
    local fixture = dofile("spec/fixtures/ops.lua").reduce
    local x = sae.tensor(fixture.x)

    it("matches sum, mean, var, std and norm", function()
      assert.near(fixture.sum, x:sum():item(), 1e-5)
      assert.tensor_near(fixture.sum_dim1, x:sum(1))
      assert.tensor_near(fixture.mean_dim2, x:mean(2))
      assert.near(fixture.var, x:var():item(), 1e-5)
      assert.tensor_near(fixture.var_dim1_biased, x:var(1, false))
      assert.tensor_near(fixture.std_dim2, x:std(2))
      assert.near(fixture.norm, x:norm():item(), 1e-5)
      assert.tensor_near(fixture.norm_1_dim2, x:norm(1, 2))
      assert.tensor_near(fixture.norm_3_dim1, x:norm(3, 1))
      assert.near(fixture.norm_inf, x:norm(math.huge):item(), 1e-6)
      assert.tensor_near(fixture.cumsum_dim2, x:cumsum(2))
      assert.tensor_near(fixture.prod_dim2, x:prod(2))
    end)

    it("matches max, argmin, topk and sort indices", function()
      local v, i = x:max(2)
      assert.tensor_near(fixture.max_dim2_values, v)
      assert.same(fixture.max_dim2_indices, i:totable())
      assert.equal(fixture.argmin, x:argmin():item())
      local tv, ti = x:topk(3, 2)
      assert.tensor_near(fixture.topk3_values, tv)
      assert.same(fixture.topk3_indices, ti:totable())
      local sv, si = x:sort(1, true)
      assert.tensor_near(fixture.sort_dim1_desc_values, sv)
      assert.same(fixture.sort_dim1_desc_indices, si:totable())
    end)
  end)

  describe("errors", function()
    it("reject a bad dim", function()
      assert.has_error(function() sae.ones(2, 3):sum(3) end,
        "sum: argument #2 (dim) expected a dim in [1, 2] (or -2 .. -1), got 3")
      assert.has_error(function() sae.ones(2, 3):cumsum() end,
        "cumsum: argument #2 (dim) expected an integer, got no value")
    end)

    it("reject int64 input to float-only reductions", function()
      local i = sae.tensor({ 1, 2 }, "int64")
      assert.has_error(function() i:mean() end,
        "mean: argument #1 (input) expected a float32 tensor, got int64 "
        .. "(int64 tensors support sum, prod, max, min, argmax and argmin)")
      assert.has_error(function() i:norm() end,
        "norm: argument #1 expected a float32 tensor, got int64")
    end)

    it("reject empty input to max and argmax", function()
      assert.has_error(function() sae.zeros(0):max() end,
        "max: argument #1 (input) expected a non-empty tensor, got shape [0]")
      assert.has_error(function() sae.zeros(2, 0):argmax(2) end,
        "argmax: argument #1 (input) expected a non-empty dim 2, got shape [2, 0]")
    end)

    it("reject bad k, p and keepdim", function()
      assert.has_error(function() sae.ones(2, 3):topk(4) end,
        "topk: argument #2 (k) expected a k in [0, 3] for dim 2 of shape [2, 3], got 4")
      assert.has_error(function() sae.ones(3):norm(-1) end,
        "norm: argument #2 (p) expected a number >= 0 or math.huge, got -1.0")
      assert.has_error(function() sae.ones(3):sum(1, 1) end,
        "sum: argument #3 (keepdim) expected a boolean or nil, got number")
    end)
  end)
end)
