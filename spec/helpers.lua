-- Shared spec helpers: the assertion assert.tensor_near(expected, actual,
-- tolerance) and deterministic pseudo-random inputs.
--
-- tensor_near passes when `actual` (a sae.Tensor) has the shape of
-- `expected` (a sae.Tensor, a nested table or a number for a 0-d tensor)
-- and every element satisfies |e - a| <= tolerance * max(1, |e|).
-- NaN matches NaN and infinities match themselves. The default tolerance
-- is 1e-5.

local luassert = require "luassert"
local say = require "say"
local sae = require "sae"

local helpers = {}


-- Returns the flat values and the shape of a nested table or number.
local function flatten(value)
  local flat, shape = {}, {}
  if type(value) == "number" then return { value }, shape end
  local level = value
  while type(level) == "table" do
    shape[#shape + 1] = #level
    level = level[1]
  end
  local function walk(t, depth)
    if depth > #shape then
      flat[#flat + 1] = t
      return
    end
    for i = 1, #t do walk(t[i], depth + 1) end
  end
  walk(value, 1)
  return flat, shape
end
helpers.flatten = flatten


-- Returns the nested table of a row-major flat list with the given shape.
function helpers.nest(flat, shape)
  if #shape == 0 then return flat[1] end
  local pos = 0
  local function build(depth)
    local t = {}
    for i = 1, shape[depth] do
      if depth == #shape then
        pos = pos + 1
        t[i] = flat[pos]
      else
        t[i] = build(depth + 1)
      end
    end
    return t
  end
  return build(1)
end


local function is_tensor(x)
  local mt = getmetatable(x)
  return type(mt) == "table" and mt.__name == "sae.Tensor"
end


local function shape_string(shape)
  return "[" .. table.concat(shape, ", ") .. "]"
end


-- Position k (1-based, row-major) as "[i, j, ...]".
local function index_string(k, shape)
  local index, rest = {}, k - 1
  for d = #shape, 1, -1 do
    index[d] = rest % shape[d] + 1
    rest = rest // shape[d]
  end
  return shape_string(index)
end


local function close(e, a, tolerance)
  if e ~= e then return a ~= a end
  if e == math.huge or e == -math.huge then return a == e end
  return math.abs(e - a) <= tolerance * math.max(1, math.abs(e))
end


local function tensor_near(state, arguments)
  local expected, actual = arguments[1], arguments[2]
  local tolerance = arguments[3] or 1e-5
  if not is_tensor(actual) then
    state.failure_message = "expected a sae.Tensor as the actual value, got "
      .. type(actual)
    return false
  end
  if is_tensor(expected) then expected = expected:totable() end
  local e, eshape = flatten(expected)
  local a, ashape = flatten(actual:totable())
  ashape = actual:shape()
  if shape_string(eshape) ~= shape_string(ashape) then
    state.failure_message = "shapes differ: expected " .. shape_string(eshape)
      .. ", got " .. shape_string(ashape)
    return false
  end
  for k = 1, #e do
    if not close(e[k], a[k], tolerance) then
      state.failure_message = string.format(
        "tensors differ at %s: expected %.9g, got %.9g (tolerance %g)",
        index_string(k, eshape), e[k], a[k], tolerance)
      return false
    end
  end
  return true
end

say:set("assertion.tensor_near.positive", "Expected tensors to be near")
say:set("assertion.tensor_near.negative",
  "Expected tensors not to be near")
luassert:register("assertion", "tensor_near", tensor_near,
  "assertion.tensor_near.positive", "assertion.tensor_near.negative")


-- A deterministic generator (an LCG), so specs do not depend on
-- math.random's state. Returns a function giving floats in [lo, hi).
function helpers.generator(seed)
  local state = seed
  return function(lo, hi)
    state = (state * 6364136223846793005 + 1442695040888963407)
    local u = ((state >> 11) & ((1 << 53) - 1)) / (1 << 53)
    return (lo or 0) + ((hi or 1) - (lo or 0)) * u
  end
end


-- A nested table of the given shape with values from gen(lo, hi),
-- rounded to float32 so that Lua references see the stored values.
function helpers.random_table(gen, shape, lo, hi)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  local flat = {}
  for k = 1, n do flat[k] = string.unpack("f", string.pack("f", gen(lo, hi))) end
  return helpers.nest(flat, shape)
end


-- Helpers for specs that compare a tensor with a naive reference computed
-- on flat row-major lists of values.

function helpers.numel(shape)
  local n = 1
  for _, size in ipairs(shape) do n = n * size end
  return n
end


-- Values of x in row-major order, and its shape.
function helpers.flat_values(x)
  local shape = x:shape()
  if #shape == 0 then return { x:item() }, shape end
  return x:reshape(-1):totable(), shape
end


-- Builds a float32 tensor of the given shape from row-major values.
function helpers.from_flat(values, shape)
  if #shape == 0 then return sae.tensor(values[1]) end
  if helpers.numel(shape) == 0 then return sae.zeros(shape) end
  return sae.tensor(values):reshape(shape)
end


-- Calls fn(index) for every multi-index (1-based) of `shape`, in row-major
-- order.
function helpers.each_index(shape, fn)
  local index = {}
  for d = 1, #shape do
    if shape[d] == 0 then return end
    index[d] = 1
  end
  while true do
    fn(index)
    local d = #shape
    while d >= 1 do
      index[d] = index[d] + 1
      if index[d] <= shape[d] then break end
      index[d] = 1
      d = d - 1
    end
    if d < 1 then return end
  end
end


-- A tensor of the given shape with values uniform in [-1, 1) from
-- math.random, so a spec that seeds math.random gets the same inputs.
function helpers.random_tensor(shape)
  local values = {}
  for i = 1, helpers.numel(shape) do values[i] = math.random() * 2 - 1 end
  return helpers.from_flat(values, shape)
end


-- Asserts that tensor `actual` has shape `expected_shape` and that each
-- value is within rtol * (1 + |e|) of the row-major list `expected`.
function helpers.assert_values_near(expected, expected_shape, actual, rtol)
  luassert.same(expected_shape, actual:shape())
  local values = helpers.flat_values(actual)
  luassert.equal(#expected, #values)
  for i = 1, #expected do
    luassert.near(expected[i], values[i], rtol * (1 + math.abs(expected[i])))
  end
end


return helpers
