local sae = require "sae"

-- Statistical checks use enough draws that each tolerance sits at about
-- five standard errors, so a correct generator fails them very rarely.

local function values(t)
  local flat = t:reshape(-1):totable()
  return flat
end

local function mean_var(xs)
  local n, sum, sq = #xs, 0, 0
  for i = 1, n do sum = sum + xs[i] end
  local mean = sum / n
  for i = 1, n do sq = sq + (xs[i] - mean) ^ 2 end
  return mean, sq / (n - 1)
end

local function counts(xs, k)
  local c = {}
  for i = 1, k do c[i] = 0 end
  for _, v in ipairs(xs) do c[v] = c[v] + 1 end
  return c
end

-- Runs a Lua chunk in a child process with OMP_NUM_THREADS set and
-- returns its output.
local function run_with_threads(threads, chunk)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(chunk)
  f:close()
  local p = assert(io.popen("OMP_WAIT_POLICY=passive OMP_NUM_THREADS=" .. threads
    .. " lua5.4 " .. path
    .. " 2>&1"))
  local out = p:read("a")
  p:close()
  os.remove(path)
  return out
end

describe("sae.Generator", function()
  it("repeats numbers for the same seed", function()
    local a = sae.rand(100, sae.Generator(7))
    local b = sae.rand(100, sae.Generator(7))
    assert.same(a:totable(), b:totable())
  end)

  it("gives different numbers for different seeds", function()
    local a = values(sae.rand(100, sae.Generator(7)))
    local b = values(sae.rand(100, sae.Generator(8)))
    local equal = 0
    for i = 1, 100 do if a[i] == b[i] then equal = equal + 1 end end
    assert.equal(0, equal)
  end)

  it("advances between draws", function()
    local g = sae.Generator(1)
    local a, b = sae.rand(10, g):totable(), sae.rand(10, g):totable()
    assert.are_not.same(a, b)
  end)

  it("restarts after manual_seed", function()
    local g = sae.Generator(3)
    local a = sae.randn(5, g):totable()
    sae.rand(17, g)
    assert.equal(g, g:manual_seed(3))
    assert.same(a, sae.randn(5, g):totable())
    assert.equal(3, g:seed())
  end)

  it("round-trips its state", function()
    local g = sae.Generator(11)
    sae.rand(5, g)
    local state = g:get_state()
    local a = sae.randn(2, 3, g):totable()
    local other = sae.Generator(99)
    other:set_state(state)
    assert.same(a, sae.randn(2, 3, other):totable())
    assert.equal(11, other:seed())
  end)

  it("seeds the default generator with sae.manual_seed", function()
    sae.manual_seed(123)
    local a = sae.rand(4):totable()
    sae.manual_seed(123)
    assert.same(a, sae.rand(4):totable())
    assert.same(a, sae.rand(4, sae.Generator(123)):totable())
    assert.equal(123, sae.default_generator():seed())
  end)

  it("rejects bad arguments", function()
    local g = sae.Generator(1)
    assert.has_error(function() g:manual_seed(1.5) end,
      "manual_seed: argument #2 (seed) expected an integer, got number")
    assert.has_error(function() g:set_state({ seed = 1 }) end,
      "set_state: argument #2 (state) expected an integer field 'counter', got nil")
    assert.has_error(function() g:set_state("x") end,
      "set_state: argument #2 (state) expected a table from get_state(), got string")
    assert.has_error(function() sae.rand({ 2 }, 3) end,
      "rand: argument #2 expected sae.Generator or nothing after the shape table, got number")
  end)
end)

describe("random draws", function()
  describe("rand()", function()
    it("accepts a shape as numbers or a table", function()
      assert.same({ 2, 3 }, sae.rand(2, 3):shape())
      assert.same({ 2, 3 }, sae.rand({ 2, 3 }, sae.Generator(1)):shape())
      assert.same({}, sae.rand():shape())
    end)

    it("is uniform on [0, 1)", function()
      local xs = values(sae.rand(200000, sae.Generator(5)))
      local lo, hi = 1, 0
      for _, v in ipairs(xs) do
        lo = math.min(lo, v)
        hi = math.max(hi, v)
      end
      assert.is_true(lo >= 0)
      assert.is_true(hi < 1)
      local mean, var = mean_var(xs)
      assert.near(0.5, mean, 0.0035)
      assert.near(1 / 12, var, 0.0015)
      local bins = {}
      for i = 1, 10 do bins[i] = 0 end
      for _, v in ipairs(xs) do
        local b = math.floor(v * 10) + 1
        bins[b] = bins[b] + 1
      end
      for i = 1, 10 do assert.near(0.1, bins[i] / #xs, 0.0035) end
    end)
  end)

  describe("randn()", function()
    it("is standard normal", function()
      local xs = values(sae.randn(200000, sae.Generator(6)))
      local mean, var = mean_var(xs)
      assert.near(0, mean, 0.012)
      assert.near(1, var, 0.016)
      local inside = 0
      for _, v in ipairs(xs) do
        if math.abs(v) < 1 then inside = inside + 1 end
      end
      assert.near(0.682689, inside / #xs, 0.005)
    end)
  end)

  describe("randint()", function()
    it("draws int64 values in [low, high)", function()
      local x = sae.randint(-3, 4, { 70000 }, sae.Generator(2))
      assert.equal("int64", x:dtype())
      local c = {}
      for _, v in ipairs(values(x)) do
        assert.is_true(math.type(v) == "integer" and v >= -3 and v < 4)
        c[v] = (c[v] or 0) + 1
      end
      for v = -3, 3 do assert.near(1 / 7, c[v] / 70000, 0.007) end
    end)

    it("takes the high-only form with a shape table", function()
      local x = sae.randint(5, { 2, 4 })
      assert.same({ 2, 4 }, x:shape())
      for _, v in ipairs(values(x)) do assert.is_true(v >= 0 and v < 5) end
    end)

    it("rejects an empty range", function()
      assert.has_error(function() sae.randint(5, 5, 2) end,
        "randint: argument #2 (high) expected a value greater than low = 5, got 5")
      assert.has_error(function() sae.randint(0.5, 5, 2) end,
        "randint: argument #1 (low) expected an integer, got 0.5")
    end)
  end)

  describe("randperm()", function()
    it("is a permutation of 1 .. n", function()
      local p = values(sae.randperm(50, sae.Generator(4)))
      table.sort(p)
      for i = 1, 50 do assert.equal(i, p[i]) end
      assert.same({}, sae.randperm(0):totable())
    end)

    it("puts every value first equally often", function()
      local g = sae.Generator(9)
      local c = { 0, 0, 0, 0 }
      for _ = 1, 4000 do
        local first = sae.randperm(4, g)[1]
        c[first] = c[first] + 1
      end
      for i = 1, 4 do assert.near(0.25, c[i] / 4000, 0.035) end
    end)
  end)

  describe("multinomial()", function()
    it("samples with replacement in proportion to the weights", function()
      local w = { 0, 1, 0, 3, 4 }
      local x = sae.multinomial(sae.tensor(w), 80000, true, sae.Generator(3))
      assert.equal("int64", x:dtype())
      assert.same({ 80000 }, x:shape())
      local c = counts(values(x), 5)
      assert.equal(0, c[1])
      assert.equal(0, c[3])
      for i = 1, 5 do assert.near(w[i] / 8, c[i] / 80000, 0.008) end
    end)

    it("samples each row of a 2-D tensor", function()
      local p = sae.tensor({ { 1, 0, 0 }, { 0, 0, 2 } })
      local x = sae.multinomial(p, 4, true)
      assert.same({ { 1, 1, 1, 1 }, { 3, 3, 3, 3 } }, x:totable())
    end)

    it("samples without replacement as sequential draws", function()
      -- P(first = i, second = j) = w_i / W * w_j / (W - w_i)
      local w = { 1, 2, 3, 0 }
      local n = 30000
      local x = sae.multinomial(sae.tensor(w):expand(n, 4), 2, false,
        sae.Generator(8)):totable()
      local pairs_seen = {}
      for r = 1, n do
        local i, j = x[r][1], x[r][2]
        assert.are_not.equal(i, j)
        assert.is_true(i ~= 4 and j ~= 4)
        local key = i * 10 + j
        pairs_seen[key] = (pairs_seen[key] or 0) + 1
      end
      for i = 1, 3 do
        for j = 1, 3 do
          if i ~= j then
            local expected = w[i] / 6 * w[j] / (6 - w[i])
            assert.near(expected, (pairs_seen[i * 10 + j] or 0) / n, 0.012)
          end
        end
      end
    end)

    it("returns every positive category once when n equals their count", function()
      local x = values(sae.multinomial(sae.tensor({ 5, 0, 1, 2 }), 3))
      table.sort(x)
      assert.same({ 1, 3, 4 }, x)
    end)

    it("rejects bad weights and sample counts", function()
      assert.has_error(function() sae.multinomial(sae.tensor({ 1, 0, 2 }), 3) end,
        "multinomial: argument #2 (n) expected at most 2 samples without replacement (the fewest positive weights in a row), got 3")
      assert.has_error(function() sae.multinomial(sae.tensor({ 1, -1 }), 1) end,
        "multinomial: argument #1 (probs) expected nonnegative finite weights, got -1.0 in row 1, column 2")
      assert.has_error(function() sae.multinomial(sae.tensor({ { 1 }, { 0 } }), 1, true) end,
        "multinomial: argument #1 (probs) expected a positive finite sum in every row, got 0.0 in row 2")
      assert.has_error(function() sae.multinomial(sae.tensor({ 1 }), 0) end,
        "multinomial: argument #2 (n) expected an integer >= 1, got 0")
      assert.has_error(function() sae.multinomial(sae.zeros(1, 1, 1), 1) end,
        "multinomial: argument #1 (probs) expected a 1-D or 2-D tensor, got shape [1, 1, 1]")
      assert.has_error(function() sae.multinomial(sae.tensor({ 1 }), 1, "yes") end,
        "multinomial: argument #3 (replacement) expected a boolean, got string")
    end)
  end)

  describe("uniform_() and normal_()", function()
    it("fill in place with the requested range and moments", function()
      local x = sae.zeros(100000)
      assert.equal(x, x:uniform_(-2, 6, sae.Generator(1)))
      local xs = values(x)
      local mean, var = mean_var(xs)
      for _, v in ipairs(xs) do assert.is_true(v >= -2 and v < 6) end
      assert.near(2, mean, 0.04)
      assert.near(64 / 12, var, 0.1)
      x:normal_(3, 0.5, sae.Generator(2))
      mean, var = mean_var(values(x))
      assert.near(3, mean, 0.008)
      assert.near(0.25, var, 0.006)
    end)

    it("fill a strided view in row-major order like a contiguous one", function()
      local base = sae.zeros(6, 5)
      local view = base:transpose():narrow(1, 2, 3)   -- [3, 6], strided
      view:normal_(0, 1, sae.Generator(21))
      local dense = sae.zeros(3, 6):normal_(0, 1, sae.Generator(21))
      assert.same(dense:totable(), view:totable())
      assert.same({ 0, 0, 0, 0, 0, 0 }, base:select(2, 1):totable())
    end)

    it("reject bad parameters", function()
      assert.has_error(function() sae.zeros(2):uniform_(1, 0) end,
        "uniform_: arguments #2 and #3 expected finite bounds with a <= b, got 1.0 and 0.0")
      assert.has_error(function() sae.zeros(2):normal_(0, -1) end,
        "normal_: argument #3 (std) expected a finite value >= 0, got -1.0")
      assert.has_error(function() sae.zeros(1):expand(3):uniform_() end,
        "uniform_: argument #1 expected a tensor without expanded (stride 0) dims, got stride 0 in dim 1")
      assert.has_error(function() sae.zeros(2, "int64"):normal_() end,
        "normal_: argument #1 expected a float32 tensor, got int64")
    end)
  end)

  it("gives the same numbers with one thread and with two", function()
    -- large enough that every kernel takes its OpenMP path
    local chunk = [[
      local sae = require "sae"
      local g = sae.Generator(77)
      local parts = {
        sae.rand(70000, g), sae.randn(70000, g),
        sae.randint(0, 1000, 70000, g):float(),
        sae.multinomial(sae.rand(300, 300, g), 200, true, g):float(),
        sae.multinomial(sae.rand(300, 300, g), 50, false, g):float(),
        sae.zeros(70000):uniform_(-1, 1, g), sae.zeros(70000):normal_(0, 1, g),
      }
      for _, t in ipairs(parts) do
        local s, flat = 0, t:reshape(-1):totable()
        for i, v in ipairs(flat) do s = s + v * ((i % 97) + 1) end
        io.write(string.format("%.17g\n", s))
      end
    ]]
    local one = run_with_threads(1, chunk)
    local two = run_with_threads(2, chunk)
    assert.truthy(one:match("^[%d%.e%-+\n]+$"), one)
    assert.equal(one, two)
  end)
end)

describe("ranges", function()
  describe("arange()", function()
    it("excludes the end like PyTorch", function()
      assert.same({ 0, 1, 2, 3 }, sae.arange(4):totable())
      assert.same({ 1, 1.5, 2, 2.5 }, sae.arange(1, 3, 0.5):totable())
      assert.same({ 5, 3, 1 }, sae.arange(5, 0, -2):totable())
      assert.same({}, sae.arange(2, 2):totable())
      assert.equal("float32", sae.arange(3):dtype())
    end)

    it("matches a Lua loop for fractional steps", function()
      local x = sae.arange(-1, 1, 0.1):totable()
      local expected = {}
      for i = 0, 19 do expected[#expected + 1] = -1 + i * 0.1 end
      assert.equal(#expected, #x)
      for i = 1, #x do assert.near(expected[i], x[i], 1e-6) end
    end)

    it("makes int64 ranges on request", function()
      local x = sae.arange(10, 0, -3, "int64")
      assert.equal("int64", x:dtype())
      assert.same({ 10, 7, 4, 1 }, x:totable())
      assert.same({ 0, 1, 2 }, sae.arange(3, "int64"):totable())
    end)

    it("rejects steps that never reach the end", function()
      assert.has_error(function() sae.arange(1, 5, 0) end,
        "arange: argument #3 (step) expected a nonzero step that leads from start = 1.0 to end = 5.0, got 0.0")
      assert.has_error(function() sae.arange(5, 1) end,
        "arange: argument #2 (end) expected a value >= start = 5.0, got 1.0")
      assert.has_error(function() sae.arange(0, 1, 0.5, "int64") end,
        "arange: argument #3 (step) expected an integer, got 0.5")
      assert.has_error(function() sae.arange(1, "int32") end,
        "arange: argument #2 (dtype) expected \"float32\" or \"int64\", got \"int32\"")
    end)
  end)

  describe("linspace()", function()
    it("includes both ends", function()
      assert.same({ 0, 0.25, 0.5, 0.75, 1 }, sae.linspace(0, 1, 5):totable())
      assert.same({ 3 }, sae.linspace(3, 4, 1):totable())
      assert.same({}, sae.linspace(3, 4, 0):totable())
      local x = sae.linspace(-2, 7, 13):totable()
      for i = 1, 13 do assert.near(-2 + (i - 1) * 9 / 12, x[i], 1e-6) end
      assert.equal(7, x[13])
    end)

    it("rejects a negative count", function()
      assert.has_error(function() sae.linspace(0, 1, -1) end,
        "linspace: argument #3 (n) expected an integer >= 0, got -1")
    end)
  end)

  describe("eye()", function()
    it("puts ones on the diagonal", function()
      assert.same({ { 1, 0, 0 }, { 0, 1, 0 } }, sae.eye(2, 3):totable())
      assert.same({ { 1, 0 }, { 0, 1 } }, sae.eye(2):totable())
      assert.equal("int64", sae.eye(2, "int64"):dtype())
      assert.has_error(function() sae.eye(-1) end,
        "eye: arguments #1 and #2 (n, m) expected sizes >= 0, got -1 and -1")
    end)
  end)
end)
