local sae = require "sae"
local helpers = require "helpers"

local flatten, nest = helpers.flatten, helpers.nest
local gen = helpers.generator(12345)

local function rand(shape, lo, hi)
  return helpers.random_table(gen, shape, lo or -2, hi or 2)
end

-- Small integers as floats, so comparisons meet equal values.
local function rand_int(shape, lo, hi)
  local flat, s = flatten(rand(shape, lo or -3, (hi or 3) + 1))
  for k = 1, #flat do flat[k] = math.floor(flat[k]) end
  return nest(flat, s)
end


-- Naive reference: f applied to a and b (nested tables or numbers) with
-- NumPy broadcasting; returns a nested table (or a number for 0-d).
local function ref_binary(a, b, f)
  local fa, sa = flatten(a)
  local fb, sb = flatten(b)
  local n = math.max(#sa, #sb)
  local shape = {}
  for d = 1, n do
    local da = sa[#sa - n + d] or 1
    local db = sb[#sb - n + d] or 1
    assert(da == db or da == 1 or db == 1, "reference: shapes do not broadcast")
    shape[d] = da == 1 and db or da
  end
  local total = 1
  for d = 1, n do total = total * shape[d] end
  local out = {}
  for k = 0, total - 1 do
    local rest, ia, ib, mula, mulb = k, 0, 0, 1, 1
    for d = n, 1, -1 do
      local i = rest % shape[d]
      rest = rest // shape[d]
      local da = sa[#sa - n + d] or 1
      local db = sb[#sb - n + d] or 1
      if da > 1 then ia = ia + i * mula end
      if db > 1 then ib = ib + i * mulb end
      mula, mulb = mula * da, mulb * db
    end
    out[k + 1] = f(fa[ia + 1], fb[ib + 1])
  end
  return nest(out, shape)
end


local function ref_unary(a, f)
  local fa, sa = flatten(a)
  local out = {}
  for k = 1, #fa do out[k] = f(fa[k]) end
  return nest(out, sa)
end


-- erf by its Taylor series (|x| < 5), accurate to about 1e-9 there.
local function erf(x)
  if x > 5 then return 1 elseif x < -5 then return -1 end
  local sum, term, n = x, x, 0
  repeat
    n = n + 1
    term = -term * x * x / n
    local add = term / (2 * n + 1)
    sum = sum + add
  until math.abs(add) < 1e-17
  return 2 / math.sqrt(math.pi) * sum
end

-- erfc(w) for w >= 2 by its continued fraction, evaluated from depth 80
-- up; 1 + erf(z) for z < -2 cancels in the series, so gelu uses this.
local function erfc_large(w)
  local f = w
  for k = 80, 1, -1 do f = w + (k / 2) / f end
  return math.exp(-w * w) / (math.sqrt(math.pi) * f)
end

local function gelu_ref(x)
  local z = x / math.sqrt(2)
  if z < -2 then return 0.5 * x * erfc_large(-z) end
  return 0.5 * x * (1 + erf(z))
end

local function b2n(v) return v and 1 or 0 end
local function isnan(v) return v ~= v end

local binary_refs = {
  add = function(x, y) return x + y end,
  sub = function(x, y) return x - y end,
  mul = function(x, y) return x * y end,
  div = function(x, y) return x / y end,
  pow = function(x, y) return x ^ y end,
  maximum = function(x, y) return math.max(x, y) end,
  minimum = function(x, y) return math.min(x, y) end,
  gt = function(x, y) return b2n(x > y) end,
  ge = function(x, y) return b2n(x >= y) end,
  lt = function(x, y) return b2n(x < y) end,
  le = function(x, y) return b2n(x <= y) end,
  eq = function(x, y) return b2n(x == y) end,
  ne = function(x, y) return b2n(x ~= y) end,
}

-- Inputs that keep each op finite: pow gets a positive base, div a
-- divisor away from zero, comparisons small integers (with ties).
local function binary_inputs(name, sa, sb)
  if name == "pow" then return rand(sa, 0.1, 2), rand(sb, -2, 2) end
  if name == "div" then
    local b = rand(sb, 0.5, 2)
    local fb, s = flatten(b)
    for k = 1, #fb do if k % 2 == 0 then fb[k] = -fb[k] end end
    return rand(sa), nest(fb, s)
  end
  local compare = { gt = true, ge = true, lt = true, le = true, eq = true,
    ne = true, maximum = true, minimum = true }
  if compare[name] then
    return rand_int(sa), rand_int(sb)
  end
  return rand(sa), rand(sb)
end

local binary_names = { "add", "sub", "mul", "div", "pow", "maximum",
  "minimum", "gt", "ge", "lt", "le", "eq", "ne" }

local function gelu_tanh(x)
  local c = math.sqrt(2 / math.pi)
  local t = c * (x + 0.044715 * x ^ 3)
  return 0.5 * x * (1 + (math.exp(2 * t) - 1) / (math.exp(2 * t) + 1))
end

local unary_refs = {
  neg = { function(x) return -x end },
  abs = { math.abs },
  exp = { math.exp },
  log = { math.log, 0.1, 4 },
  sqrt = { math.sqrt, 0, 4 },
  relu = { function(x) return math.max(x, 0) end },
  gelu = { gelu_ref, -5, 5 },
  sigmoid = { function(x) return 1 / (1 + math.exp(-x)) end, -10, 10 },
  tanh = { function(x) return (math.exp(2 * x) - 1) / (math.exp(2 * x) + 1) end },
}

local unary_names = { "neg", "abs", "exp", "log", "sqrt", "relu", "gelu",
  "sigmoid", "tanh" }


describe("sae.Tensor", function()
  describe("binary ops", function()
    for _, name in ipairs(binary_names) do
      it(name .. "() matches the reference on same shapes", function()
        local a, b = binary_inputs(name, { 3, 5 }, { 3, 5 })
        local x, y = sae.tensor(a), sae.tensor(b)
        local expected = ref_binary(a, b, binary_refs[name])
        assert.tensor_near(expected, x[name](x, y))
        assert.tensor_near(expected, sae[name](x, y))
      end)

      it(name .. "() broadcasts [3, 1, 4] with [2, 1]", function()
        local a, b = binary_inputs(name, { 3, 1, 4 }, { 2, 1 })
        local z = sae.tensor(a)[name](sae.tensor(a), sae.tensor(b))
        assert.same({ 3, 2, 4 }, z:shape())
        assert.tensor_near(ref_binary(a, b, binary_refs[name]), z)
      end)

      it(name .. "() reads transposed and expanded inputs", function()
        local a, b = binary_inputs(name, { 4, 3 }, { 1, 4 })
        local x = sae.tensor(a):transpose()        -- [3, 4], strided
        local y = sae.tensor(b):expand(3, 4)       -- stride 0 rows
        local z = x[name](x, y)
        assert.tensor_near(ref_binary(x:totable(), y:totable(),
          binary_refs[name]), z)
      end)

      it(name .. "() takes a number on either side", function()
        local a = binary_inputs(name, { 2, 3 }, { 1 })
        local s = name == "div" and 1.5 or (name == "pow" and 1.5 or 1)
        local x = sae.tensor(a)
        assert.tensor_near(ref_binary(a, s, binary_refs[name]), x[name](x, s))
        if name ~= "pow" then
          assert.tensor_near(ref_binary(s, a, binary_refs[name]),
            sae[name](s, x))
        end
      end)
    end

    it("splits large strided tensors across threads", function()
      local a, b = rand({ 300, 200 }), rand({ 200, 1 })
      local x = sae.tensor(a):transpose()          -- [200, 300]
      local y = sae.tensor(b)
      local expected = ref_binary(x:totable(), b, binary_refs.mul)
      assert.tensor_near(expected, x * y)
      local c = rand({ 70000 })
      assert.tensor_near(ref_binary(c, c, binary_refs.add),
        sae.tensor(c) + sae.tensor(c))
    end)

    it("tiles transposed operands with partial tiles", function()
      local a = rand({ 3, 53, 37 })
      local b = rand({ 37, 1 })
      local x = sae.tensor(a):transpose(2, 3)      -- [3, 37, 53]
      local y = sae.tensor(b)
      assert.tensor_near(ref_binary(x:totable(), b, binary_refs.sub), x - y)
      local z = sae.tensor(rand({ 3, 37, 53 }))
      local expected = ref_binary(z:totable(), x:totable(), binary_refs.add)
      z:add_(x)
      assert.tensor_near(expected, z)
    end)

    it("scales the other operand by alpha in add and sub", function()
      local a, b = rand({ 4 }), rand({ 4 })
      local x, y = sae.tensor(a), sae.tensor(b)
      assert.tensor_near(ref_binary(a, b, function(p, q) return p + 3 * q end),
        x:add(y, 3))
      assert.tensor_near(ref_binary(a, b, function(p, q) return p - 0.5 * q end),
        x:sub(y, 0.5))
    end)

    it("propagates NaN in maximum and minimum", function()
      local x = sae.tensor({ 0 / 0, 1, 2 })
      local y = sae.tensor({ 1, 0 / 0, 1 })
      local m = sae.maximum(x, y):totable()
      assert.is_true(isnan(m[1]))
      assert.is_true(isnan(m[2]))
      assert.equal(2, m[3])
      assert.is_true(isnan(sae.minimum(x, y):totable()[1]))
    end)

    it("gives float32 masks of 0 and 1 from comparisons", function()
      local m = sae.tensor({ 1, 2, 3 }):gt(2)
      assert.equal("float32", m:dtype())
      assert.same({ 0, 0, 1 }, m:totable())
    end)
  end)

  describe("metamethods", function()
    it("compute + - * / ^ and unary minus", function()
      local a, b = rand({ 2, 3 }), rand({ 3 }, 0.5, 2)
      local x, y = sae.tensor(a), sae.tensor(b)
      assert.tensor_near(ref_binary(a, b, binary_refs.add), x + y)
      assert.tensor_near(ref_binary(a, b, binary_refs.sub), x - y)
      assert.tensor_near(ref_binary(a, b, binary_refs.mul), x * y)
      assert.tensor_near(ref_binary(a, b, binary_refs.div), x / y)
      assert.tensor_near(ref_binary(a, 2, binary_refs.pow), x ^ 2)
      assert.tensor_near(ref_unary(a, function(v) return -v end), -x)
    end)

    it("accept a number on the left", function()
      local a = rand({ 2, 2 }, 0.5, 2)
      local x = sae.tensor(a)
      assert.tensor_near(ref_binary(1, a, binary_refs.add), 1 + x)
      assert.tensor_near(ref_binary(1, a, binary_refs.sub), 1 - x)
      assert.tensor_near(ref_binary(3, a, binary_refs.mul), 3 * x)
      assert.tensor_near(ref_binary(1, a, binary_refs.div), 1 / x)
    end)
  end)

  describe("unary ops", function()
    for _, name in ipairs(unary_names) do
      local f, lo, hi = table.unpack(unary_refs[name])
      it(name .. "() matches the reference", function()
        local a = rand({ 4, 6 }, lo, hi)
        local x = sae.tensor(a)
        assert.tensor_near(ref_unary(a, f), x[name](x))
        assert.tensor_near(ref_unary(a, f), sae[name](x))
      end)

      it(name .. "() reads a transposed input", function()
        local x = sae.tensor(rand({ 5, 3 }, lo, hi)):transpose()
        assert.tensor_near(ref_unary(x:totable(), f), x[name](x))
      end)

      it(name .. "_() writes in place and returns self", function()
        local a = rand({ 3, 4 }, lo, hi)
        local x = sae.tensor(a)
        local r = x[name .. "_"](x)
        assert.equal(x, r)
        assert.tensor_near(ref_unary(a, f), x)
      end)
    end

    it("keeps exp(), log() and tanh() to 4e-7, gelu() to 1e-6", function()
      local function f32(v) return string.unpack("f", string.pack("f", v)) end
      local function check(name, f, lo, hi, count, tolerance)
        local xs = {}
        for k = 0, count do xs[k + 1] = f32(lo * ((hi / lo) ^ (k / count))) end
        for k = 1, #xs do xs[#xs + 1] = -xs[k] end
        local got = sae.tensor(xs)[name](sae.tensor(xs)):totable()
        for k, x in ipairs(xs) do
          local want = f(x)
          if want == want then
            local err = math.abs(got[k] - want) / math.abs(want)
            assert(err <= (tolerance or 4e-7), string.format("%s(%.9g) = %.9g, expected %.9g",
              name, x, got[k], want))
          end
        end
      end
      check("exp", math.exp, 1e-8, 87, 3000)
      check("log", function(v) return v > 0 and math.log(v) or 0 / 0 end,
        1e-37, 3e38, 3000)
      check("tanh", unary_refs.tanh[1], 1e-6, 20, 3000)
      check("gelu", gelu_ref, 1e-6, 4.5, 3000, 1e-6)
      check("gelu", gelu_ref, 4.5, 9, 300, 1e-6)
      local special = sae.tensor({ 0, 1 / 0, -1 / 0, -1 })
      local l = special:log():totable()
      assert.same({ -1 / 0, 1 / 0 }, { l[1], l[2] })
      assert.is_true(isnan(l[3]) and isnan(l[4]))
      assert.same({ 1, 1 / 0, 0 }, { special:exp():totable()[1],
        special:exp():totable()[2], special:exp():totable()[3] })
      assert.same({ 0, 1, -1 }, { special:tanh():totable()[1],
        special:tanh():totable()[2], special:tanh():totable()[3] })
    end)

    it("gelu() takes the tanh approximation", function()
      local a = rand({ 50 }, -5, 5)
      local x = sae.tensor(a)
      assert.tensor_near(ref_unary(a, gelu_tanh), x:gelu("tanh"))
      assert.tensor_near(x:gelu(), x:gelu("none"))
    end)

    it("relu() and clamp() keep NaN", function()
      local x = sae.tensor({ 0 / 0, -1, 2 })
      local r = x:relu():totable()
      assert.is_true(isnan(r[1]))
      assert.same({ 0, 2 }, { r[2], r[3] })
      assert.is_true(isnan(x:clamp(0, 1):totable()[1]))
    end)

    it("clamp() takes either bound as nil", function()
      local a = rand({ 10 }, -3, 3)
      local x = sae.tensor(a)
      assert.tensor_near(ref_unary(a, function(v) return math.min(math.max(v, -1), 1) end),
        x:clamp(-1, 1))
      assert.tensor_near(ref_unary(a, function(v) return math.max(v, 0.5) end),
        x:clamp(0.5))
      assert.tensor_near(ref_unary(a, function(v) return math.min(v, 0.5) end),
        x:clamp(nil, 0.5))
      x:clamp_(nil, 0)
      assert.tensor_near(ref_unary(a, function(v) return math.min(v, 0) end), x)
    end)

    it("computes pow with exponents 2 and 0.5 and general ones", function()
      local a = rand({ 8 }, 0, 3)
      local x = sae.tensor(a)
      for _, p in ipairs({ 2, 0.5, 3, -1.5 }) do
        assert.tensor_near(ref_binary(a, p, binary_refs.pow), x:pow(p))
      end
    end)
  end)

  describe("PyTorch fixture", function()
    local fixture = dofile("spec/fixtures/ops.lua").unary
    local x = sae.tensor(fixture.x)
    local pos = x:abs() + 0.01

    -- |actual - expected| <= 1e-5 |expected| + 1e-7 at every element
    local function check(expected, actual)
      local got = actual:totable()
      for k, e in ipairs(expected) do
        assert(math.abs(got[k] - e) <= 1e-5 * math.abs(e) + 1e-7,
          string.format("element %d: expected %.9g, got %.9g", k, e, got[k]))
      end
    end

    it("matches exp, log, sqrt and pow", function()
      check(fixture.exp, x:exp())
      check(fixture.log_of_abs, pos:log())
      check(fixture.sqrt_of_abs, pos:sqrt())
      check(fixture.pow_abs_1_7, pos:pow(1.7))
    end)

    it("matches sigmoid, tanh and both gelu forms", function()
      check(fixture.sigmoid, x:sigmoid())
      check(fixture.tanh, x:tanh())
      check(fixture.gelu, x:gelu())
      check(fixture.gelu_tanh, x:gelu("tanh"))
    end)
  end)

  describe("where()", function()
    it("selects with broadcasting between tensors and numbers", function()
      local m = rand_int({ 3, 1 }, 0, 1)
      local a, b = rand({ 1, 4 }), rand({ 3, 4 })
      local z = sae.where(sae.tensor(m), sae.tensor(a), sae.tensor(b))
      local expected = ref_binary(ref_binary(m, a, function(c, v)
        return c ~= 0 and v or 0 / 0 end), b, function(v, w)
        return v == v and v or w end)
      assert.same({ 3, 4 }, z:shape())
      assert.tensor_near(expected, z)
      local n = sae.where(sae.tensor(m), 1, -1)
      assert.tensor_near(ref_unary(m, function(c) return c ~= 0 and 1 or -1 end), n)
    end)

    it("accepts an int64 mask", function()
      local z = sae.where(sae.tensor({ 0, 2, -1 }, "int64"), 1, 0)
      assert.same({ 0, 1, 1 }, z:totable())
    end)

    it("raises on shapes that do not broadcast", function()
      assert.has_error(function()
        sae.where(sae.ones(2, 3), sae.ones(3), sae.ones(4))
      end, "where: argument #3 (other) expected a shape that broadcasts with "
        .. "arguments #1 and #2, got shapes [2, 3] and [4]")
    end)
  end)

  describe("masked_fill_()", function()
    it("fills where the mask is nonzero and returns self", function()
      local a = rand({ 3, 4 })
      local x = sae.tensor(a)
      local mask = x:gt(0)
      local r = x:masked_fill_(mask, -7)
      assert.equal(x, r)
      assert.tensor_near(ref_unary(a, function(v) return v > 0 and -7 or v end), x)
    end)

    it("broadcasts the mask and has an out-of-place form", function()
      local x = sae.zeros(2, 3)
      local y = x:masked_fill(sae.tensor({ 1, 0, 1 }), 5)
      assert.same({ { 5, 0, 5 }, { 5, 0, 5 } }, y:totable())
      assert.same({ { 0, 0, 0 }, { 0, 0, 0 } }, x:totable())
    end)

    it("reads a mask that aliases self", function()
      local x = sae.tensor({ 0, 1, 0, 2 })
      x:masked_fill_(x, 9)
      assert.same({ 0, 9, 0, 9 }, x:totable())
    end)
  end)

  describe("in-place ops", function()
    it("return self and broadcast the other operand", function()
      local a, b = rand({ 2, 3 }), rand({ 3 })
      local x = sae.tensor(a)
      assert.equal(x, x:add_(sae.tensor(b)))
      assert.tensor_near(ref_binary(a, b, binary_refs.add), x)
      x:mul_(2)
      assert.tensor_near(ref_binary(ref_binary(a, b, binary_refs.add), 2,
        binary_refs.mul), x)
    end)

    it("handle x:add_(x)", function()
      local a = rand({ 4, 5 })
      local x = sae.tensor(a)
      x:add_(x)
      assert.tensor_near(ref_binary(a, a, binary_refs.add), x)
    end)

    it("handle an operand that overlaps self differently", function()
      local a = rand({ 40, 40 })
      local x = sae.tensor(a)
      local t = sae.tensor(a):transpose():totable()
      x:add_(x:transpose())
      assert.tensor_near(ref_binary(a, t, binary_refs.add), x)
    end)

    it("write through a strided view", function()
      local x = sae.zeros(3, 4)
      local col = x:select(2, 2)
      col:add_(sae.tensor({ 1, 2, 3 }))
      assert.same({ { 0, 1, 0, 0 }, { 0, 2, 0, 0 }, { 0, 3, 0, 0 } }, x:totable())
    end)

    it("raise when the result shape differs from self", function()
      local x = sae.zeros(3, 1)
      assert.has_error(function() x:add_(sae.zeros(1, 4)) end,
        "add_: argument #2 (other) expected a shape that broadcasts to the "
        .. "shape of self, got shapes [3, 1] and [1, 4]")
    end)

    it("raise on an expanded self", function()
      local x = sae.zeros(1, 3):expand(2, 3)
      assert.has_error(function() x:add_(1) end,
        "add_: argument #1 (self) expected a tensor without expanded dims to "
        .. "write in place, got an expanded view of shape [2, 3]")
    end)

    it("run comparisons in place", function()
      local x = sae.tensor({ 1, 5, 3 })
      x:gt_(2)
      assert.same({ 0, 1, 1 }, x:totable())
    end)
  end)

  describe("int64 tensors", function()
    it("stay int64 in add, sub, mul and neg", function()
      local i = sae.tensor({ 1, -2, 3 }, "int64")
      local j = sae.tensor({ { 10 }, { 20 } }, "int64")
      local z = i + j
      assert.equal("int64", z:dtype())
      assert.same({ { 11, 8, 13 }, { 21, 18, 23 } }, z:totable())
      assert.same({ 0, -3, 2 }, (i - 1):totable())
      assert.same({ 2, -4, 6 }, (2 * i):totable())
      assert.same({ -1, 2, -3 }, (-i):totable())
      assert.same({ 1, 2, 3 }, i:abs():totable())
      assert.equal(math.mininteger, (sae.tensor({ math.maxinteger }, "int64") + 1)[1])
    end)

    it("compare exactly and give float32 masks", function()
      local big = sae.tensor({ math.maxinteger, math.maxinteger - 1 }, "int64")
      local m = big:eq(math.maxinteger)
      assert.equal("float32", m:dtype())
      assert.same({ 1, 0 }, m:totable())
      assert.same({ 0, 1 }, big:lt(math.maxinteger):totable())
    end)

    it("update in place, including masked_fill_", function()
      local i = sae.tensor({ 1, 2, 3 }, "int64")
      assert.equal(i, i:add_(1))
      i:mul_(sae.tensor({ 2, 2, 2 }, "int64"))
      assert.same({ 4, 6, 8 }, i:totable())
      i:masked_fill_(i:gt(5), -1)
      assert.same({ 4, -1, -1 }, i:totable())
      assert.equal("int64", i:dtype())
      assert.has_error(function() i:masked_fill_(i:gt(0), 0.5) end,
        "masked_fill_: argument #3 (value) expected an integer for an int64 "
        .. "tensor, got 0.5")
    end)

    it("promote to float32 with float operands", function()
      local i = sae.tensor({ 1, 2 }, "int64")
      assert.equal("float32", (i + 0.5):dtype())
      assert.same({ 1.5, 2.5 }, (i + 0.5):totable())
      assert.same({ 1.5, 3 }, (i * sae.tensor({ 1.5, 1.5 })):totable())
      assert.same({ 0.5, 1 }, (i / sae.tensor({ 2, 2 })):totable())
    end)

    it("raise a dtype error for float-only ops", function()
      local i = sae.tensor({ 1, 2 }, "int64")
      local hint = " (int64 tensors support add, sub, mul, neg, abs, maximum, "
        .. "minimum and comparisons)"
      assert.has_error(function() i:exp() end,
        "exp: argument #1 (input) expected a float32 tensor, got int64" .. hint)
      assert.has_error(function() i:div(2) end,
        "div: argument #1 (input) expected a float32 tensor, got int64" .. hint)
      assert.has_error(function() i:add_(0.5) end,
        "add_: argument #1 (self) expected a float32 tensor to hold the "
        .. "float32 result, got int64")
    end)
  end)

  describe("edge shapes", function()
    it("computes on 0-d tensors", function()
      local x = sae.tensor(3)
      local z = x * 2 + sae.tensor(1)
      assert.same({}, z:shape())
      assert.equal(7, z:item())
      assert.same({ 1 }, (x + sae.tensor({ -1 })):shape())
    end)

    it("computes on empty tensors", function()
      local x = sae.zeros(0, 3)
      assert.same({ 0, 3 }, (x + sae.ones(3)):shape())
      assert.same({ 0, 3 }, x:exp():shape())
      assert.same({ 2, 0 }, (sae.zeros(2, 1) + sae.zeros(0)):shape())
    end)
  end)

  describe("errors", function()
    it("name both shapes when shapes do not broadcast", function()
      assert.has_error(function() return sae.ones(2, 3) + sae.ones(2) end,
        "add: argument #2 (other) expected a shape that broadcasts with "
        .. "argument #1 (input), got shapes [2, 3] and [2]")
    end)

    it("reject operands that are not tensors or numbers", function()
      assert.has_error(function() return sae.ones(2) + "a" end,
        "add: argument #2 (other) expected a sae.Tensor or a number, got string")
      assert.has_error(function() sae.exp(1) end,
        "exp: argument #1 expected sae.Tensor, got number")
    end)

    it("reject bad clamp and gelu arguments", function()
      assert.has_error(function() sae.ones(2):clamp() end,
        "clamp: argument #2 (min) and argument #3 (max) expected at least one "
        .. "number, got nil and nil")
      assert.has_error(function() sae.ones(2):clamp("a") end,
        "clamp: argument #2 (min) expected a number or nil, got string")
      assert.has_error(function() sae.ones(2):gelu("fast") end,
        "gelu: argument #2 (approximate) expected \"none\" or \"tanh\", got fast")
    end)
  end)
end)
