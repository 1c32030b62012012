-- Specs for the network helpers: each op against PyTorch values stored in
-- spec/fixtures/nn.lua and against a naive double-precision reference
-- written here in plain Lua, on contiguous and strided inputs.

local sae = require "sae"
local helpers = require "helpers"

local fixture = dofile("spec/fixtures/nn.lua")

local RTOL, ATOL = 1e-5, 1e-6


-- ----------------------------------------------------------------- helpers

local flatten, nest, numel = helpers.flatten, helpers.nest, helpers.numel


local function shape_of(t)
  local shape = {}
  while type(t) == "table" do
    shape[#shape + 1] = #t
    t = t[1]
  end
  return shape
end


local function strides_of(shape)
  local strides, s = {}, 1
  for d = #shape, 1, -1 do
    strides[d] = s
    s = s * shape[d]
  end
  return strides
end


-- Deterministic pseudo-random numbers in [-scale, scale) (a 31-bit LCG),
-- so the naive references need no RNG from the library.
local function random_values(n, seed, scale)
  local state, out = seed, {}
  for i = 1, n do
    state = (state * 1103515245 + 12345) % 2147483648
    out[i] = (state / 2147483648 * 2 - 1) * (scale or 1)
  end
  return out
end


local function random_tensor(shape, seed, scale)
  return sae.tensor(nest(random_values(numel(shape), seed, scale), shape))
end


-- Checks that tensor `actual` has the shape of nested table `expected` and
-- every element within ATOL + RTOL * |expected|.
local function assert_close(expected, actual, rtol, atol)
  rtol, atol = rtol or RTOL, atol or ATOL
  local got = actual:totable()
  assert.same(shape_of(expected), actual:shape())
  local e, a = flatten(expected), flatten(got)
  assert.equal(#e, #a)
  for i = 1, #e do
    local ok = math.abs(a[i] - e[i]) <= atol + rtol * math.abs(e[i])
    if not ok then
      error(string.format("element %d: expected %.9g, got %.9g", i, e[i],
                          a[i]), 2)
    end
  end
end


local function assert_all_finite(t)
  for i, v in ipairs(flatten(t:totable())) do
    if v ~= v or v == math.huge or v == -math.huge then
      error(string.format("element %d is not finite: %s", i, tostring(v)), 2)
    end
  end
end


-- Rounds the numbers of a nested table to float32, as storing them does.
local function as_float32(nested)
  return sae.tensor(nested):totable()
end


local function long(values)
  return sae.tensor(values, "int64")
end


-- Applies fn to every row along 1-based `dim` of a nested table and returns
-- the nested result (fn maps a list of numbers to a list of numbers).
local function map_rows(nested, dim, fn)
  local shape = shape_of(nested)
  local v, strides = flatten(nested), strides_of(shape)
  local n, step, out = shape[dim], strides[dim], {}
  for start = 1, #v do
    if (start - 1) // step % n == 0 then
      local row = {}
      for i = 0, n - 1 do row[i + 1] = v[start + i * step] end
      local mapped = fn(row)
      for i = 0, n - 1 do out[start + i * step] = mapped[i + 1] end
    end
  end
  return nest(out, shape)
end


local function ref_log_softmax_row(row)
  local m = -math.huge
  for _, v in ipairs(row) do m = math.max(m, v) end
  local sum = 0
  for _, v in ipairs(row) do sum = sum + math.exp(v - m) end
  local out = {}
  for i, v in ipairs(row) do out[i] = v - m - math.log(sum) end
  return out
end


local function ref_softmax_row(row)
  local out = ref_log_softmax_row(row)
  for i, v in ipairs(out) do out[i] = math.exp(v) end
  return out
end


-- -------------------------------------------------------------- softmax

describe("softmax()", function()
  it("matches PyTorch on the fixture", function()
    for _, case in ipairs(fixture.softmax) do
      local x = sae.tensor(case.x)
      assert_close(case.softmax, x:softmax(case.dim))
      assert_close(case.log_softmax, x:log_softmax(case.dim))
      assert_close(case.softmax, sae.softmax(x, case.dim))
      assert_close(case.log_softmax, sae.log_softmax(x, case.dim))
    end
  end)

  it("matches the reference on permuted views", function()
    local x = random_tensor({ 4, 3, 5 }, 11, 4):permute(3, 1, 2)
    assert.is_false(x:is_contiguous())
    local xt = x:totable()
    for dim = 1, 3 do
      assert_close(map_rows(xt, dim, ref_softmax_row), x:softmax(dim))
      assert_close(map_rows(xt, dim, ref_log_softmax_row), x:log_softmax(dim))
    end
  end)

  it("defaults to the last dim", function()
    local x = random_tensor({ 3, 4 }, 5, 2)
    local expected = map_rows(x:totable(), 2, ref_softmax_row)
    assert_close(expected, x:softmax())
    assert_close(expected, x:softmax(-1))
    assert_close(map_rows(x:totable(), 1, ref_log_softmax_row),
                 x:log_softmax(-2))
  end)

  it("keeps extreme logits finite", function()
    local x = sae.tensor({ { 1e4, -1e4, 0, 1e4 }, { -1e4, -1e4, -1e4, -1e4 } })
    local p, lp = x:softmax(), x:log_softmax()
    assert_all_finite(p)
    assert_all_finite(lp)
    assert_close({ { 0.5, 0, 0, 0.5 }, { 0.25, 0.25, 0.25, 0.25 } }, p)
    local l2 = math.log(2)
    assert_close({ { -l2, -2e4 - l2, -1e4 - l2, -l2 },
                   { -2 * l2, -2 * l2, -2 * l2, -2 * l2 } }, lp)
  end)

  it("matches the reference on a large transposed input", function()
    -- 64000 elements: enough for the multi-threaded path
    local x = random_tensor({ 160, 400 }, 3, 8):transpose()
    local expected = map_rows(x:totable(), 2, ref_softmax_row)
    assert_close(expected, x:softmax(2))
    assert_close(map_rows(x:totable(), 1, ref_log_softmax_row),
                 x:log_softmax(1))
  end)

  it("matches the reference on a large permuted input", function()
    -- outer dims that do not merge, split across threads mid-dim
    local x = random_tensor({ 30, 45, 50 }, 4, 6):permute(2, 3, 1)   -- [45, 50, 30]
    local xt = x:totable()
    assert_close(map_rows(xt, 2, ref_softmax_row), x:softmax(2))
    assert_close(map_rows(xt, 3, ref_log_softmax_row), x:log_softmax(3))
  end)

  it("keeps log-probabilities near 0 accurate", function()
    -- Transposed rows take the blocked path. One logit of 13 among values
    -- in [-5, 5] has a log-probability near -0.03, so rounding in the sum
    -- of exponentials shows there as relative error.
    local values = random_values(1000 * 64, 12, 5)
    for j = 0, 63 do values[j * 64 + j + 1] = 13 end
    local x = sae.tensor(nest(values, { 1000, 64 })):transpose()   -- [64, 1000]
    assert_close(map_rows(x:totable(), 2, ref_log_softmax_row), x:log_softmax(),
                 2e-5, 1e-7)
  end)

  it("spreads NaN through its row only", function()
    local nan = 0 / 0
    local x = sae.tensor({ { 1, nan, 3 }, { 1, 2, 3 } })
    for _, input in ipairs({ x, x:transpose():contiguous():transpose() }) do
      for _, out in ipairs({ input:softmax():totable(),
                             input:log_softmax():totable() }) do
        for j = 1, 3 do assert.is_true(out[1][j] ~= out[1][j]) end
        for j = 1, 3 do assert.is_true(out[2][j] == out[2][j]) end
      end
    end
    local loss = sae.cross_entropy(x, long({ 1, 1 }), { reduction = "none" })
    local values = loss:totable()
    assert.is_true(values[1] ~= values[1])
    assert.is_true(values[2] == values[2])
  end)

  it("gives 1 and 0 for a 0-d tensor", function()
    assert.equal(1, sae.tensor(3.5):softmax():item())
    assert.equal(0, sae.tensor(3.5):log_softmax():item())
  end)

  it("raises on a bad dim or dtype", function()
    local x = sae.zeros(2, 3)
    assert.has_error(function() x:softmax(3) end,
      "softmax: argument #2 (dim) expected a dim in [1, 2] (or -2 .. -1), got 3")
    assert.has_error(function() x:log_softmax(0) end,
      "log_softmax: argument #2 (dim) expected a dim in [1, 2] (or -2 .. -1), got 0")
    assert.has_error(function() sae.softmax(long({ 1, 2 })) end,
      "softmax: argument #1 expected a float32 tensor, got int64")
    assert.has_error(function() sae.softmax({ 1, 2 }) end,
      "softmax: argument #1 expected sae.Tensor, got table")
  end)
end)


-- -------------------------------------------------------- cross_entropy

-- Naive cross entropy over rows of nested [N, C] logits.
local function ref_cross_entropy(logits, targets, reduction, ignore_index)
  local losses, sum, count = {}, 0, 0
  for i, row in ipairs(logits) do
    local t = targets[i]
    if t == ignore_index then
      losses[i] = 0
    else
      losses[i] = -ref_log_softmax_row(row)[t]
      sum = sum + losses[i]
      count = count + 1
    end
  end
  if reduction == "none" then return losses end
  if reduction == "sum" then return { sum } end
  return { sum / count }
end


describe("cross_entropy()", function()
  it("matches PyTorch on the fixture", function()
    for i, case in ipairs(fixture.cross_entropy) do
      local logits = sae.tensor(fixture.cross_entropy_logits[case.logits])
      local opts = { reduction = case.reduction,
                     ignore_index = case.ignore_index,
                     label_smoothing = case.label_smoothing,
                     weight = case.weight and sae.tensor(case.weight) }
      local out = sae.cross_entropy(logits, long(case.targets), opts)
      if type(case.out) == "number" then
        assert.equal(0, out:dim(), "case " .. i)
        assert.near(case.out, out:item(), RTOL * math.abs(case.out))
      else
        assert_close(case.out, out)
      end
    end
  end)

  it("matches the reference on transposed logits", function()
    local logits = random_tensor({ 7, 9 }, 21, 5):transpose()   -- [9, 7]
    local targets = { 1, 7, 3, 3, 2, 6, 5, 4, 7 }
    local lt = logits:totable()
    for _, reduction in ipairs({ "none", "sum", "mean" }) do
      local out = sae.cross_entropy(logits, long(targets),
                                    { reduction = reduction })
      local expected = ref_cross_entropy(lt, targets, reduction)
      if reduction == "none" then
        assert_close(expected, out)
      else
        assert_close(expected, out:reshape(1))
      end
    end
  end)

  it("reduces by mean by default", function()
    local logits = random_tensor({ 4, 3 }, 8, 2)
    local targets = { 3, 1, 2, 2 }
    local expected = ref_cross_entropy(logits:totable(), targets, "mean")
    assert_close(expected, sae.cross_entropy(logits, long(targets)):reshape(1))
  end)

  it("skips rows equal to ignore_index", function()
    local logits = random_tensor({ 5, 4 }, 9, 3)
    local targets = { 2, 0, 4, 0, 1 }
    local out = sae.cross_entropy(logits, long(targets),
                                  { ignore_index = 0, reduction = "none" })
    assert_close(ref_cross_entropy(logits:totable(), targets, "none", 0), out)
    local mean = sae.cross_entropy(logits, long(targets), { ignore_index = 0 })
    assert_close(ref_cross_entropy(logits:totable(), targets, "mean", 0),
                 mean:reshape(1))
  end)

  it("weights classes like the reference", function()
    local logits = random_tensor({ 7, 3 }, 10, 2):transpose()    -- [3, 7]
    local weight = random_tensor({ 7 }, 13, 0.5) + 1
    local targets = { 7, 2, 2 }
    local lt, wt = logits:totable(), weight:totable()
    local losses, sum, divisor = {}, 0, 0
    for i, row in ipairs(lt) do
      losses[i] = -wt[targets[i]] * ref_log_softmax_row(row)[targets[i]]
      sum = sum + losses[i]
      divisor = divisor + wt[targets[i]]
    end
    local opts = { weight = weight, reduction = "none" }
    assert_close(losses, sae.cross_entropy(logits, long(targets), opts))
    local mean = sae.cross_entropy(logits, long(targets), { weight = weight })
    assert.near(sum / divisor, mean:item(), 1e-5 * sum / divisor)
  end)

  it("gives NaN when every row is ignored", function()
    local out = sae.cross_entropy(sae.zeros(2, 3), long({ -100, -100 }))
    local v = out:item()
    assert.is_true(v ~= v)
  end)

  it("accepts 1-D logits with a 0-d target", function()
    local logits = sae.tensor({ 1, 2, 3 })
    local out = sae.cross_entropy(logits, sae.tensor(2, "int64"))
    assert.near(-ref_log_softmax_row({ 1, 2, 3 })[2], out:item(), 1e-6)
  end)

  it("flattens [N, T, C] logits against [N, T] targets", function()
    local logits = random_tensor({ 3, 2, 4 }, 17, 2)
    local targets = { { 1, 4 }, { 2, 2 }, { 3, 1 } }
    local rows, flat_targets = {}, {}
    for n = 1, 3 do
      for t = 1, 2 do
        rows[#rows + 1] = logits:totable()[n][t]
        flat_targets[#flat_targets + 1] = targets[n][t]
      end
    end
    local none = sae.cross_entropy(logits, long(targets), { reduction = "none" })
    assert.same({ 3, 2 }, none:shape())
    local expected = ref_cross_entropy(rows, flat_targets, "none")
    assert_close(nest(expected, { 3, 2 }), none)
    assert_close(ref_cross_entropy(rows, flat_targets, "mean"),
                 sae.cross_entropy(logits, long(targets)):reshape(1))
  end)

  it("keeps extreme logits finite", function()
    local logits = sae.tensor({ { 1e4, -1e4 }, { 1e4, -1e4 }, { -1e4, -1e4 } })
    local out = sae.cross_entropy(logits, long({ 1, 2, 1 }),
                                  { reduction = "none" })
    assert_all_finite(out)
    assert_close({ 0, 2e4, math.log(2) }, out)
  end)

  it("raises on targets out of range", function()
    local logits = sae.zeros(2, 5)
    assert.has_error(function()
      sae.cross_entropy(logits, long({ 1, 6 }))
    end, "cross_entropy: argument #2 (targets) expected indices in [1, 5], got 6")
    assert.has_error(function()
      sae.cross_entropy(logits, long({ 0, 1 }))
    end, "cross_entropy: argument #2 (targets) expected indices in [1, 5], got 0")
  end)

  it("raises on bad shapes, dtypes and options", function()
    local logits = sae.zeros(2, 5)
    assert.has_error(function()
      sae.cross_entropy(logits, long({ 1, 2, 3 }))
    end, "cross_entropy: argument #2 (targets) expected the shape of logits "
      .. "without the last (class) dim, got shapes [2, 5] and [3]")
    assert.has_error(function()
      sae.cross_entropy(logits, sae.tensor({ 1, 2 }))
    end, "cross_entropy: argument #2 (targets) expected an int64 tensor, got float32")
    assert.has_error(function()
      sae.cross_entropy(logits, long({ 1, 2 }), { reduction = "avg" })
    end, 'cross_entropy: argument #3 (opts.reduction) expected "none", "sum" '
      .. 'or "mean", got avg')
    assert.has_error(function()
      sae.cross_entropy(logits, long({ 1, 2 }), { pos_weight = logits })
    end, "cross_entropy: argument #3 (opts) expected the keys reduction, "
      .. "ignore_index, label_smoothing and weight, got pos_weight")
    assert.has_error(function()
      sae.cross_entropy(logits, long({ 1, 2 }), { weight = sae.ones(4) })
    end, "cross_entropy: argument #3 (opts.weight) expected one weight per "
      .. "class of the logits, got shapes [2, 5] and [4]")
    assert.has_error(function()
      sae.cross_entropy(logits, long({ 1, 2 }), { weight = long({ 1, 1, 1, 1, 1 }) })
    end, "cross_entropy: argument #3 (opts.weight) expected a float32 "
      .. "sae.Tensor, got int64")
    assert.has_error(function()
      sae.cross_entropy(logits, long({ 1, 2 }), { label_smoothing = 2 })
    end, "cross_entropy: argument #3 (opts.label_smoothing) expected a number "
      .. "in [0, 1], got 2")
    assert.has_error(function()
      sae.cross_entropy(logits, long({ 1, 2 }), "sum")
    end, "cross_entropy: argument #3 (opts) expected a table, got string")
  end)
end)


-- ----------------------------------------------------------- layer_norm

-- Naive layer norm over rows of the flattened trailing block.
local function ref_layer_norm(nested, k, weight, bias, eps)
  local shape = shape_of(nested)
  local v = flatten(nested)
  local w, b = weight and flatten(weight), bias and flatten(bias)
  local n = 1
  for d = #shape - k + 1, #shape do n = n * shape[d] end
  local out = {}
  for start = 1, #v, n do
    local mean, var = 0, 0
    for i = 0, n - 1 do mean = mean + v[start + i] end
    mean = mean / n
    for i = 0, n - 1 do var = var + (v[start + i] - mean) ^ 2 end
    var = var / n
    for i = 0, n - 1 do
      local y = (v[start + i] - mean) / math.sqrt(var + (eps or 1e-5))
      if w then y = y * w[i + 1] end
      if b then y = y + b[i + 1] end
      out[start + i] = y
    end
  end
  return nest(out, shape)
end


describe("layer_norm()", function()
  it("matches PyTorch on the fixture", function()
    for _, case in ipairs(fixture.layer_norm) do
      local w = case.weight and sae.tensor(case.weight)
      local b = case.bias and sae.tensor(case.bias)
      local out = sae.layer_norm(sae.tensor(case.x), case.shape, w, b, case.eps)
      assert_close(case.out, out)
    end
  end)

  it("matches the reference on a transposed input", function()
    local x = random_tensor({ 6, 4 }, 31, 3):transpose()     -- [4, 6]
    local w, b = random_tensor({ 6 }, 32), random_tensor({ 6 }, 33)
    local expected = ref_layer_norm(x:totable(), 1, w:totable(), b:totable())
    assert_close(expected, sae.layer_norm(x, { 6 }, w, b))
    assert_close(expected, x:layer_norm(1, w, b))
    assert_close(ref_layer_norm(x:totable(), 1), sae.layer_norm(x))
  end)

  it("normalises a non-contiguous block of trailing dims", function()
    local x = random_tensor({ 3, 4, 2 }, 41, 2):permute(1, 3, 2)   -- [3, 2, 4]
    local w = random_tensor({ 4, 2 }, 42):transpose()              -- [2, 4]
    local b = random_tensor({ 2, 4 }, 43)
    local expected = ref_layer_norm(x:totable(), 2, w:totable(), b:totable(), 0.01)
    assert_close(expected, sae.layer_norm(x, 2, w, b, 0.01))
    assert_close(expected, sae.layer_norm(x, { 2, 4 }, w, b, 0.01))
  end)

  it("matches the reference on a large input", function()
    local x = random_tensor({ 512, 96 }, 44, 5)
    local w = random_tensor({ 96 }, 45)
    assert_close(ref_layer_norm(x:totable(), 1, w:totable()),
                 sae.layer_norm(x, 1, w), 1e-5, 1e-5)
  end)

  it("stays accurate with a large mean", function()
    local values = random_values(4 * 256, 46, 0.1)
    for i, v in ipairs(values) do values[i] = v + 1000 end
    local x = sae.tensor(nest(values, { 4, 256 }))
    -- the reference reads the float32-rounded input, so only the kernel's
    -- own rounding counts
    assert_close(ref_layer_norm(x:totable(), 1), sae.layer_norm(x), 1e-5, 1e-5)
  end)

  it("gives the bias for a constant row", function()
    local x = sae.tensor({ { 1e4, 1e4, 1e4 }, { -2, -2, -2 } })
    local out = sae.layer_norm(x, 1, nil, sae.tensor({ 1, 2, 3 }))
    assert_all_finite(out)
    assert_close({ { 1, 2, 3 }, { 1, 2, 3 } }, out)
  end)

  it("raises on shapes that do not match", function()
    local x = sae.zeros(2, 3)
    assert.has_error(function() sae.layer_norm(x, { 2 }) end,
      "layer_norm: argument #2 (normalized_shape) expected a non-empty shape "
      .. "equal to the trailing sizes of the input [2, 3], got [2]")
    assert.has_error(function() sae.layer_norm(x, 3) end,
      "layer_norm: argument #2 (normalized_shape) expected a count of trailing "
      .. "dims in [1, 2] (or a shape table such as {3}), got 3")
    assert.has_error(function() sae.layer_norm(x, 1, sae.ones(2)) end,
      "layer_norm: argument #3 (weight) expected the normalized shape [3], got [2]")
    assert.has_error(function() sae.layer_norm(x, 1, nil, long({ 1, 2, 3 })) end,
      "layer_norm: argument #4 (bias) expected a float32 sae.Tensor or nil, got int64")
    assert.has_error(function() sae.layer_norm(x, 1, nil, nil, "small") end,
      "layer_norm: argument #5 (eps) expected a number, got string")
    assert.has_error(function() sae.layer_norm(sae.tensor(1)) end,
      "layer_norm: argument #1 (input) expected a tensor with at least one "
      .. "dim, got a 0-d tensor")
  end)
end)


-- ---------------------------------------------------------- index ops

describe("index_select()", function()
  it("matches PyTorch on the fixture", function()
    for _, case in ipairs(fixture.index_select) do
      local out = sae.tensor(case.x):index_select(case.dim, long(case.index))
      assert.same(as_float32(case.out), out:totable())
    end
  end)

  it("looks up embedding rows", function()
    local W = random_tensor({ 10, 4 }, 51)
    local tokens = { 3, 10, 1, 3 }
    local out = W:index_select(1, long(tokens))
    local wt = W:totable()
    local expected = {}
    for i, t in ipairs(tokens) do expected[i] = wt[t] end
    assert_close(expected, out, 0, 0)
    assert_close(expected, sae.index_select(W, 1, long(tokens)), 0, 0)
  end)

  it("selects along each dim of a permuted view", function()
    local x = random_tensor({ 3, 4, 5 }, 52):permute(2, 3, 1)   -- [4, 5, 3]
    local xt = x:totable()
    local index = { 2, 1, 2 }
    local out = x:index_select(3, long(index))
    for i = 1, 4 do
      for j = 1, 5 do
        for k, idx in ipairs(index) do
          assert.equal(xt[i][j][idx], out:totable()[i][j][k])
        end
      end
    end
    local rows = x:index_select(1, long({ 4, 4 })):totable()
    assert.same({ xt[4], xt[4] }, rows)
    local mid = x:index_select(2, long({ 5, 1 })):totable()
    for i = 1, 4 do assert.same({ xt[i][5], xt[i][1] }, mid[i]) end
  end)

  it("selects from int64 tensors and with a 0-d index", function()
    local x = long({ { 10, 20 }, { 30, 40 } })
    local out = x:index_select(2, sae.tensor(2, "int64"))
    assert.equal("int64", out:dtype())
    assert.same({ { 20 }, { 40 } }, out:totable())
  end)

  it("copies a large lookup exactly", function()
    local W = random_tensor({ 50, 64 }, 53)
    local tokens = {}
    for i = 1, 1200 do tokens[i] = (i * 7) % 50 + 1 end
    local out = W:index_select(1, long(tokens)):totable()
    local wt = W:totable()
    for i = 1, #tokens, 97 do assert.same(wt[tokens[i]], out[i]) end
    assert.same(wt[tokens[#tokens]], out[#tokens])
  end)

  it("raises on indices out of range", function()
    local W = sae.zeros(3, 2)
    assert.has_error(function() W:index_select(1, long({ 1, 4 })) end,
      "index_select: argument #3 (index) expected indices in [1, 3], got 4")
    assert.has_error(function() W:index_select(2, long({ 0 })) end,
      "index_select: argument #3 (index) expected indices in [1, 2], got 0")
    assert.has_error(function() W:index_select(1, long({ -1 })) end,
      "index_select: argument #3 (index) expected indices in [1, 3], got -1")
  end)

  it("raises on a bad index tensor or dim", function()
    local W = sae.zeros(3, 2)
    assert.has_error(function() W:index_select(1, sae.tensor({ 1 })) end,
      "index_select: argument #3 (index) expected an int64 tensor, got float32")
    assert.has_error(function() W:index_select(1, long({ { 1 } })) end,
      "index_select: argument #3 (index) expected a 1-D or 0-d tensor, got shape [1, 1]")
    assert.has_error(function() W:index_select(3, long({ 1 })) end,
      "index_select: argument #2 (dim) expected a dim in [1, 2] (or -2 .. -1), got 3")
    assert.has_error(function() W:index_select(1, { 1 }) end,
      "index_select: argument #3 (index) expected an int64 sae.Tensor, got table")
  end)
end)


describe("embedding()", function()
  it("looks up rows for tokens of any shape", function()
    local W = random_tensor({ 6, 3 }, 54)
    local tokens = { { 1, 6 }, { 2, 2 } }
    local out = sae.embedding(long(tokens), W)
    assert.same({ 2, 2, 3 }, out:shape())
    local wt = W:totable()
    assert.same({ { wt[1], wt[6] }, { wt[2], wt[2] } }, out:totable())
  end)

  it("raises on tokens out of range", function()
    assert.has_error(function() sae.embedding(long({ 7 }), sae.zeros(6, 3)) end,
      "embedding: argument #1 (input) expected indices in [1, 6], got 7")
  end)
end)


describe("gather()", function()
  it("matches PyTorch on the fixture", function()
    for _, case in ipairs(fixture.gather) do
      local out = sae.tensor(case.x):gather(case.dim, long(case.index))
      assert.same(as_float32(case.out), out:totable())
    end
  end)

  it("matches the reference on transposed input and index", function()
    local x = random_tensor({ 5, 4 }, 61):transpose()              -- [4, 5]
    local index = long({ { 1, 3, 2, 4 }, { 4, 4, 1, 2 }, { 2, 1, 1, 1 } })
      :transpose()                                                  -- [4, 3]
    local xt, it_ = x:totable(), index:totable()
    local out = x:gather(2, index):totable()
    for i = 1, 4 do
      for j = 1, 3 do assert.equal(xt[i][it_[i][j]], out[i][j]) end
    end
    local index1 = long({ { 4, 1, 2, 3, 3 }, { 1, 1, 4, 4, 2 } })
    local out1 = sae.gather(x, 1, index1):totable()
    for i = 1, 2 do
      for j = 1, 5 do
        assert.equal(xt[index1:totable()[i][j]][j], out1[i][j])
      end
    end
  end)

  it("gathers target log-probabilities", function()
    local lp = random_tensor({ 3, 4 }, 62):log_softmax()
    local targets = long({ { 2 }, { 4 }, { 1 } })
    local picked = lp:gather(2, targets):totable()
    local t = lp:totable()
    assert.same({ { t[1][2] }, { t[2][4] }, { t[3][1] } }, picked)
  end)

  it("raises on indices out of range and bad shapes", function()
    local x = sae.zeros(3, 4)
    assert.has_error(function() x:gather(2, long({ { 1 }, { 5 } })) end,
      "gather: argument #3 (index) expected indices in [1, 4], got 5")
    assert.has_error(function() x:gather(2, long({ 1, 2 })) end,
      "gather: argument #3 (index) expected as many dims as the input and no "
      .. "larger sizes outside dim, got shapes [3, 4] and [2]")
    assert.has_error(function() x:gather(2, long({ { 1 }, { 1 }, { 1 }, { 1 } })) end,
      "gather: argument #3 (index) expected as many dims as the input and no "
      .. "larger sizes outside dim, got shapes [3, 4] and [4, 1]")
  end)
end)


describe("scatter_add()", function()
  it("matches PyTorch on the fixture", function()
    for _, case in ipairs(fixture.scatter_add) do
      local x = sae.tensor(case.x)
      local out = x:scatter_add(case.dim, long(case.index), sae.tensor(case.src))
      assert_close(case.out, out)
      assert.same(as_float32(case.x), x:totable())
      x:scatter_add_(case.dim, long(case.index), sae.tensor(case.src))
      assert_close(case.out, x)
    end
  end)

  it("matches the reference in place on a transposed tensor", function()
    local base = sae.zeros(5, 3)
    local x = base:transpose()                                      -- [3, 5]
    local index = { { 1, 5, 5, 2 }, { 3, 3, 3, 3 }, { 4, 1, 5, 1 } }
    local src = random_tensor({ 3, 4 }, 71)
    local st = src:totable()
    local expected = { { 0, 0, 0, 0, 0 }, { 0, 0, 0, 0, 0 }, { 0, 0, 0, 0, 0 } }
    for i = 1, 3 do
      for j = 1, 4 do
        expected[i][index[i][j]] = expected[i][index[i][j]] + st[i][j]
      end
    end
    local returned = x:scatter_add_(2, long(index), src)
    assert.equal(x, returned)
    assert_close(expected, x)
    assert_close(expected, base:transpose())
  end)

  it("uses only the part of src that index covers", function()
    local src = sae.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
    local out = sae.scatter_add(sae.zeros(1, 3), 1, long({ { 1, 1 } }), src)
    assert.same({ { 1, 2, 0 } }, out:totable())
  end)

  it("counts into int64 tensors", function()
    local counts = sae.zeros(4, "int64")
    counts:scatter_add_(1, long({ 2, 4, 2, 2 }), long({ 1, 1, 1, 1 }))
    assert.same({ 0, 3, 0, 1 }, counts:totable())
  end)

  it("adds a view of the input into itself", function()
    local x = sae.tensor({ 1, 2, 3 })
    x:scatter_add_(1, long({ 3, 3, 1 }), x)
    assert.same({ 4, 2, 6 }, x:totable())
  end)

  it("accumulates a large scatter in index order", function()
    local rows, cols = 40, 1000
    local index, src_values = {}, random_values(rows * cols, 72)
    for i = 1, rows do
      index[i] = {}
      for j = 1, cols do index[i][j] = (i * 31 + j * 17) % 8 + 1 end
    end
    local src = sae.tensor(nest(src_values, { rows, cols }))
    local out = sae.zeros(rows, 8):scatter_add(2, long(index), src)
    local expected = {}
    for i = 1, rows do
      expected[i] = { 0, 0, 0, 0, 0, 0, 0, 0 }
      for j = 1, cols do
        local k = index[i][j]
        -- float32 accumulation, as the kernel does
        expected[i][k] = expected[i][k] + src_values[(i - 1) * cols + j]
      end
    end
    assert_close(expected, out, 1e-4, 1e-4)
  end)

  it("leaves the input unchanged on a bad index", function()
    local x = sae.zeros(2, 3)
    assert.has_error(function()
      x:scatter_add_(2, long({ { 1, 4 }, { 1, 1 } }), sae.ones(2, 2))
    end, "scatter_add_: argument #3 (index) expected indices in [1, 3], got 4")
    assert.same({ { 0, 0, 0 }, { 0, 0, 0 } }, x:totable())
    assert.has_error(function()
      x:scatter_add(1, long({ { 0, 1 } }), sae.ones(1, 2))
    end, "scatter_add: argument #3 (index) expected indices in [1, 2], got 0")
  end)

  it("raises on bad shapes and dtypes", function()
    local x = sae.zeros(2, 3)
    assert.has_error(function()
      x:scatter_add(2, long({ { 1, 2 } }), sae.ones(1, 1))
    end, "scatter_add: argument #4 (src) expected as many dims as index and no "
      .. "smaller sizes, got shapes [1, 1] and [1, 2]")
    assert.has_error(function()
      x:scatter_add(2, long({ { 1, 2 } }), long({ { 1, 1 } }))
    end, "scatter_add: argument #4 (src) expected the input's dtype float32, got int64")
    assert.has_error(function()
      x:scatter_add(2, long({ 1, 2 }), sae.ones(2))
    end, "scatter_add: argument #3 (index) expected as many dims as the input "
      .. "and no larger sizes outside dim, got shapes [2, 3] and [2]")
    assert.has_error(function()
      sae.zeros(3):expand(2, 3):scatter_add_(2, long({ { 1 } }), sae.ones(1, 1))
    end, "scatter_add_: expected an input without expanded dims (several "
      .. "elements share memory); call :contiguous() first, got shape [2, 3]")
  end)
end)


describe("one_hot()", function()
  it("encodes 1-based classes as int64 rows", function()
    local out = sae.one_hot(long({ 2, 1, 3 }), 4)
    assert.equal("int64", out:dtype())
    assert.same({ { 0, 1, 0, 0 }, { 1, 0, 0, 0 }, { 0, 0, 1, 0 } }, out:totable())
  end)

  it("defaults to the largest index", function()
    local out = sae.one_hot(long({ { 2 }, { 3 } }))
    assert.same({ { { 0, 1, 0 } }, { { 0, 0, 1 } } }, out:totable())
  end)

  it("raises on indices out of range", function()
    assert.has_error(function() sae.one_hot(long({ 1, 5 }), 4) end,
      "one_hot: argument #1 (indices) expected indices in [1, 4], got 5")
    assert.has_error(function() sae.one_hot(long({ 0 })) end,
      "one_hot: argument #1 (indices) expected indices in [1, 1], got 0")
    assert.has_error(function() sae.one_hot(long({ 1 }), 0) end,
      "one_hot: argument #2 (num_classes) expected an integer >= 1, got 0")
  end)
end)


-- ----------------------------------------------------- cosine_similarity

describe("cosine_similarity()", function()
  it("matches PyTorch on the fixture", function()
    for _, case in ipairs(fixture.cosine_similarity) do
      local out = sae.cosine_similarity(sae.tensor(case.a), sae.tensor(case.b),
                                        case.dim, case.eps)
      assert_close(case.out, out)
    end
  end)

  it("matches the reference when broadcasting", function()
    local a = random_tensor({ 5, 3 }, 81):transpose():unsqueeze(2)  -- [3, 1, 5]
    local b = random_tensor({ 4, 5 }, 82)
    local out = sae.cosine_similarity(a, b)
    assert.same({ 3, 4 }, out:shape())
    local at, bt = a:totable(), b:totable()
    local expected = {}
    for i = 1, 3 do
      expected[i] = {}
      for j = 1, 4 do
        local dot, na, nb = 0, 0, 0
        for k = 1, 5 do
          local u, v = at[i][1][k], bt[j][k]
          dot, na, nb = dot + u * v, na + u * u, nb + v * v
        end
        expected[i][j] = dot / (math.max(math.sqrt(na), 1e-8)
                                * math.max(math.sqrt(nb), 1e-8))
      end
    end
    assert_close(expected, out)
  end)

  it("gives 0 for a zero vector", function()
    local a = sae.tensor({ { 1, 0 }, { 0, 0 } })
    local b = sae.tensor({ { 2, 1 }, { 0, 1 } })
    assert_close({ 1, 0 }, sae.cosine_similarity(a, b, 1))
    assert_close({ 1, 0 }, sae.cosine_similarity(a:transpose(), b:transpose(), 2))
  end)

  it("raises on shapes that do not broadcast", function()
    assert.has_error(function()
      sae.cosine_similarity(sae.zeros(2, 3), sae.zeros(4))
    end, "cosine_similarity: arguments #1 and #2 expected shapes that "
      .. "broadcast, got shapes [2, 3] and [4]")
    assert.has_error(function()
      sae.cosine_similarity(sae.zeros(2, 3), sae.zeros(3), 3)
    end, "cosine_similarity: argument #3 (dim) expected a dim in [1, 2] (or -2 .. -1), got 3")
  end)
end)


describe("empty tensors", function()
  it("give empty results without reading memory", function()
    assert.same({ 0, 3 }, sae.zeros(0, 3):softmax():shape())
    assert.same({ 2, 0 }, sae.zeros(2, 0):log_softmax(1):shape())
    assert.same({ 0, 4 }, sae.layer_norm(sae.zeros(0, 4)):shape())
    assert.same({ 0 }, sae.cosine_similarity(sae.zeros(0, 4), sae.zeros(4)):shape())
    assert.same({ 0, 3 }, sae.zeros(5, 3):index_select(1, long({})):shape())
    assert.same({ 2, 0 }, sae.zeros(2, 3):gather(2, sae.zeros(2, 0, "int64")):shape())
    local none = sae.cross_entropy(sae.zeros(0, 3), sae.zeros(0, "int64"),
                                   { reduction = "none" })
    assert.same({ 0 }, none:shape())
    local x = sae.ones(2, 2)
    x:scatter_add_(1, sae.zeros(0, 2, "int64"), sae.zeros(0, 2))
    assert.same({ { 1, 1 }, { 1, 1 } }, x:totable())
  end)

  it("give 0 similarity for vectors of length 0", function()
    assert.same({ 0, 0 }, sae.cosine_similarity(sae.zeros(2, 0), sae.zeros(2, 0)):totable())
  end)

  it("raise on an index into an empty dim", function()
    assert.has_error(function() sae.cross_entropy(sae.zeros(1, 0), long({ 1 })) end,
      "cross_entropy: argument #2 (targets) expected no index into an empty dim, got 1")
  end)
end)
