local sae = require "sae"
local helpers = require "helpers"

local flatten = helpers.flatten

-- Plain Lua reference for a 2-D product of nested tables.
local function naive_mm(a, b)
  local m, k, n = #a, #b, #b[1]
  local out = {}
  for i = 1, m do
    out[i] = {}
    for j = 1, n do
      local sum = 0
      for p = 1, k do sum = sum + a[i][p] * b[p][j] end
      out[i][j] = sum
    end
  end
  return out
end

-- Checks that tensor `actual` has shape `shape` and values near the
-- nested table `expected`.
local function assert_tensor_near(expected, actual, shape)
  assert.same(shape, actual:shape())
  local e, a = flatten(expected), flatten(actual:totable())
  assert.equal(#e, #a)
  for i = 1, #e do
    assert.near(e[i], a[i], 1e-5 * (1 + math.abs(e[i])))
  end
end

local function column(t)
  local out = {}
  for i, v in ipairs(t) do out[i] = { v } end
  return out
end

describe("matmul()", function()
  local g

  before_each(function()
    g = sae.Generator(2024)
  end)

  it("multiplies contiguous matrices", function()
    local a, b = sae.randn(5, 7, g), sae.randn(7, 3, g)
    assert_tensor_near(naive_mm(a:totable(), b:totable()), a:matmul(b), { 5, 3 })
    assert_tensor_near(naive_mm(a:totable(), b:totable()), sae.matmul(a, b),
      { 5, 3 })
  end)

  it("handles all four transpose combinations", function()
    local a, b = sae.randn(6, 4, g), sae.randn(4, 5, g)
    local at, bt = sae.randn(4, 6, g):t(), sae.randn(5, 4, g):t()
    for _, case in ipairs({ { a, b }, { at, b }, { a, bt }, { at, bt } }) do
      local x, y = case[1], case[2]
      assert_tensor_near(naive_mm(x:totable(), y:totable()), x:matmul(y),
        { 6, 5 })
    end
  end)

  it("handles narrowed operands with a larger leading dim", function()
    local a = sae.randn(6, 10, g):narrow(2, 2, 7)     -- row stride 10
    local b = sae.randn(9, 12, g):narrow(1, 2, 7):narrow(2, 3, 4)
    assert_tensor_near(naive_mm(a:totable(), b:totable()), a:matmul(b), { 6, 4 })
    local at = sae.randn(9, 8, g):narrow(1, 1, 7):t()  -- column stride 8
    assert_tensor_near(naive_mm(at:totable(), b:totable()), at:matmul(b),
      { 8, 4 })
  end)

  it("copies operands that fit no BLAS layout", function()
    local a = sae.randn(4, 6, 2, g):select(3, 1)      -- strides 12 and 2
    local b = sae.randn(1, 3, g):expand(6, 3)         -- row stride 0
    assert.same({ 12, 2 }, a:stride())
    assert_tensor_near(naive_mm(a:totable(), b:totable()), a:matmul(b), { 4, 3 })
    local c = sae.randn(4, 1, g):expand(4, 5)         -- column stride 0
    local d = sae.randn(3, 4, g)
    assert_tensor_near(naive_mm(d:totable(), c:totable()), d:matmul(c), { 3, 5 })
  end)

  it("copies each batch entry that fits no BLAS layout", function()
    local a = sae.randn(3, 4, 6, 2, g):select(4, 2)   -- strides 48, 12, 2
    local b = sae.randn(3, 6, 2, g)
    local c = a:matmul(b)
    assert.same({ 3, 4, 2 }, c:shape())
    for i = 1, 3 do
      assert_tensor_near(naive_mm(a[i]:totable(), b[i]:totable()), c[i], { 4, 2 })
    end
  end)

  it("treats 1-D operands as vectors", function()
    local v, w = sae.randn(4, g), sae.randn(4, g)
    local m = sae.randn(3, 4, g)
    local dot = v:matmul(w)
    assert.same({}, dot:shape())
    local expected = 0
    for i = 1, 4 do expected = expected + v[i] * w[i] end
    assert.near(expected, dot:item(), 1e-5)
    assert.near(expected, sae.dot(v, w):item(), 1e-5)

    local mv = naive_mm(m:totable(), column(v:totable()))
    assert_tensor_near(flatten(mv), m:matmul(v), { 3 })
    assert_tensor_near(flatten(mv), sae.mv(m, v), { 3 })

    local n = sae.randn(4, 5, g)
    local vm = naive_mm({ v:totable() }, n:totable())
    assert_tensor_near(vm[1], v:matmul(n), { 5 })
  end)

  it("accepts strided and expanded vectors", function()
    local m = sae.randn(4, 3, g)
    local v = sae.randn(3, 4, g):select(2, 2)          -- stride 4
    local e = sae.tensor({ 2 }):expand(3)               -- stride 0
    assert_tensor_near(flatten(naive_mm(m:totable(), column(v:totable()))),
      m:matmul(v), { 4 })
    assert_tensor_near(flatten(naive_mm(m:totable(), column(e:totable()))),
      m:matmul(e), { 4 })
    assert_tensor_near(naive_mm({ v:totable() }, m:t():totable())[1],
      v:matmul(m:t()), { 4 })
  end)

  it("broadcasts batch dimensions", function()
    local a, b = sae.randn(2, 1, 3, 4, g), sae.randn(5, 4, 6, g)
    local c = a:matmul(b)
    assert.same({ 2, 5, 3, 6 }, c:shape())
    for i = 1, 2 do
      for j = 1, 5 do
        assert_tensor_near(naive_mm(a[i][1]:totable(), b[j]:totable()),
          c[i][j], { 3, 6 })
      end
    end
  end)

  it("multiplies a batch by one matrix", function()
    local b = sae.randn(4, 5, g)
    local contiguous = sae.randn(3, 2, 4, g)
    local permuted = sae.randn(2, 3, 4, g):permute(2, 1, 3)  -- rows do not chain
    for _, a in ipairs({ contiguous, permuted }) do
      local c = a:matmul(b)
      assert.same({ 3, 2, 5 }, c:shape())
      for i = 1, 3 do
        assert_tensor_near(naive_mm(a[i]:totable(), b:totable()), c[i], { 2, 5 })
      end
    end
  end)

  it("multiplies expanded and transposed batches", function()
    local a = sae.randn(1, 3, 4, g):expand(6, 3, 4)
    local b = sae.randn(6, 2, 4, g):transpose(2, 3)
    local c = a:matmul(b)
    assert.same({ 6, 3, 2 }, c:shape())
    for i = 1, 6 do
      assert_tensor_near(naive_mm(a[i]:totable(), b[i]:totable()), c[i], { 3, 2 })
    end
    local bmm = sae.bmm(sae.randn(6, 3, 4, g), b)
    assert.same({ 6, 3, 2 }, bmm:shape())
  end)

  it("mixes 1-D operands with batches", function()
    local v = sae.randn(4, g)
    local b = sae.randn(2, 4, 5, g)
    local left = v:matmul(b)
    assert.same({ 2, 5 }, left:shape())
    for i = 1, 2 do
      assert_tensor_near(naive_mm({ v:totable() }, b[i]:totable())[1], left[i],
        { 5 })
    end
    local a = sae.randn(2, 3, 4, g)
    local right = a:matmul(v)
    assert.same({ 2, 3 }, right:shape())
    for i = 1, 2 do
      assert_tensor_near(flatten(naive_mm(a[i]:totable(), column(v:totable()))),
        right[i], { 3 })
    end
  end)

  it("agrees with the plain C loop on larger strided inputs", function()
    local a = sae.randn(3, 40, 70, g):narrow(3, 5, 33):transpose(2, 3)
    local b = sae.randn(3, 50, 29, g):narrow(2, 1, 40)
    local fast, slow = a:matmul(b), sae.core._matmul_naive(a, b)
    assert_tensor_near(slow:totable(), fast, { 3, 33, 29 })
  end)

  it("gives zeros for an empty inner dim and empty shapes", function()
    assert.same({ { 0, 0 }, { 0, 0 } },
      sae.zeros(2, 0):matmul(sae.zeros(0, 2)):totable())
    assert.same({ 0, 3 }, sae.zeros(0, 2):matmul(sae.zeros(2, 3)):shape())
    assert.same({ 4, 0, 2, 5 },
      sae.zeros(4, 0, 2, 3):matmul(sae.zeros(3, 5)):shape())
  end)

  it("writes into an out tensor", function()
    local a, b = sae.randn(2, 3, 4, g), sae.randn(4, 5, g)
    local out = sae.zeros(2, 3, 5)
    assert.equal(out, a:matmul(b, out))
    assert_tensor_near(a:matmul(b):totable(), out, { 2, 3, 5 })
    assert.equal(out, sae.matmul(a, b, out))
    assert.has_error(function() a:matmul(b, sae.zeros(2, 5, 3)) end,
      "matmul: argument #3 (out) expected a contiguous tensor of shape [2, 3, 5], got contiguous shape [2, 5, 3]")
    assert.has_error(function() a:matmul(b, sae.zeros(2, 5, 3):transpose(2, 3)) end,
      "matmul: argument #3 (out) expected a contiguous tensor of shape [2, 3, 5], got non-contiguous shape [2, 3, 5]")
    local square = sae.randn(3, 3, g)
    assert.has_error(function() square:matmul(square, square) end,
      "matmul: argument #3 (out) expected a tensor that shares no storage with the operands, got one that does")
  end)

  it("computes outer products", function()
    local a, b = sae.randn(3, g), sae.randn(4, 2, g):select(2, 2)
    assert_tensor_near(naive_mm(column(a:totable()), { b:totable() }),
      sae.outer(a, b), { 3, 4 })
  end)

  it("rejects mismatched shapes and bad operands", function()
    assert.has_error(function() sae.zeros(2, 3):matmul(sae.zeros(2, 3)) end,
      "matmul: arguments #1 and #2 expected matching inner dims (3 vs 2), got shapes [2, 3] and [2, 3]")
    assert.has_error(function() sae.matmul(sae.zeros(2, 3, 4), sae.zeros(3, 4, 5)) end,
      "matmul: arguments #1 and #2 expected batch dims that broadcast, got shapes [2, 3, 4] and [3, 4, 5]")
    assert.has_error(function() sae.matmul(sae.tensor(1), sae.zeros(2)) end,
      "matmul: arguments #1 and #2 expected tensors with at least 1 dim, got shapes [] and [2]")
    assert.has_error(function() sae.matmul(sae.zeros(2, 2), sae.zeros(2, 2, "int64")) end,
      "matmul: argument #2 expected a float32 tensor, got int64")
    assert.has_error(function() sae.matmul(sae.zeros(2, 2), { 1, 2 }) end,
      "matmul: argument #2 expected sae.Tensor, got table")
  end)

  it("checks the dims of mm, mv, dot, bmm and outer", function()
    assert.has_error(function() sae.mm(sae.zeros(2), sae.zeros(2, 2)) end,
      "mm: argument #1 expected a 2-D tensor, got shape [2]")
    assert.has_error(function() sae.mv(sae.zeros(2, 2), sae.zeros(2, 1)) end,
      "mv: argument #2 expected a 1-D tensor, got shape [2, 1]")
    assert.has_error(function() sae.dot(sae.zeros(2), sae.zeros(3)) end,
      "dot: arguments #1 and #2 expected matching inner dims (2 vs 3), got shapes [2] and [3]")
    assert.has_error(function() sae.bmm(sae.zeros(2, 1, 1), sae.zeros(1, 1, 1)) end,
      "bmm: arguments #1 and #2 expected equal batch sizes, got shapes [2, 1, 1] and [1, 1, 1]")
    assert.has_error(function() sae.outer(sae.zeros(2, 1), sae.zeros(1)) end,
      "outer: argument #1 expected a 1-D tensor, got shape [2, 1]")
  end)
end)

describe("t()", function()
  it("transposes a 2-D tensor as a view", function()
    local x = sae.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
    local t = x:t()
    assert.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, t:totable())
    t[1][2] = 9
    assert.equal(9, x[2][1])
    assert.same({ 1, 2 }, sae.tensor({ 1, 2 }):t():totable())
  end)

  it("rejects more than 2 dims", function()
    assert.has_error(function() sae.zeros(1, 2, 3):t() end,
      "t: argument #1 expected a tensor with at most 2 dims, got shape [1, 2, 3]")
  end)
end)
