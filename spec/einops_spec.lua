local sae = require "sae"
local helpers = require "helpers"

local flat, from_flat = helpers.flat_values, helpers.from_flat
local each_index = helpers.each_index
local random_tensor = helpers.random_tensor


-- Naive reference: loops over every value of every elementary axis. `left`
-- and `right` list the dims as lists of axis names; `size` gives every
-- axis. `op` is nil for rearrange and repeat, or the reduction.
local function reference(x, left, right, size, op)
  local values = flat(x)
  local axes, seen = {}, {}
  for _, side in ipairs({ left, right }) do
    for _, dim in ipairs(side) do
      for _, axis in ipairs(dim) do
        if not seen[axis] then axes[#axes + 1] = axis end
        seen[axis] = true
      end
    end
  end

  local function offset(dims, value)
    local o = 0
    for _, dim in ipairs(dims) do
      for _, axis in ipairs(dim) do o = o * size[axis] + value[axis] - 1 end
    end
    return o + 1
  end

  local out_shape = {}
  for d, dim in ipairs(right) do
    out_shape[d] = 1
    for _, axis in ipairs(dim) do out_shape[d] = out_shape[d] * size[axis] end
  end
  local out, count = {}, {}
  local all_shape = {}
  for d, axis in ipairs(axes) do all_shape[d] = size[axis] end
  each_index(all_shape, function(index)
    local value = {}
    for d, axis in ipairs(axes) do value[axis] = index[d] end
    local v = values[offset(left, value)]
    local o = offset(right, value)
    if op == nil or out[o] == nil then
      out[o] = v
    elseif op == "sum" or op == "mean" then
      out[o] = out[o] + v
    elseif op == "max" then
      out[o] = math.max(out[o], v)
    else
      out[o] = math.min(out[o], v)
    end
    count[o] = (count[o] or 0) + 1
  end)
  if op == "mean" then
    for o = 1, #out do out[o] = out[o] / count[o] end
  end
  return out, out_shape
end


local function assert_close(expected, expected_shape, actual)
  helpers.assert_values_near(expected, expected_shape, actual, 1e-5)
end


describe("einops patterns", function()
  lazy_setup(function() math.randomseed(4121) end)

  describe("sae.rearrange()", function()
    it("splits a dim", function()
      local x = random_tensor({ 2, 6, 3 })
      local expected, shape = reference(x, { { "b" }, { "h", "w" }, { "c" } },
        { { "b" }, { "h" }, { "w" }, { "c" } }, { b = 2, h = 2, w = 3, c = 3 })
      assert_close(expected, shape,
                   sae.rearrange(x, "b (h w) c -> b h w c", { h = 2 }))
    end)

    it("merges and splits batch and sequence", function()
      local x = random_tensor({ 6, 4 })
      local y = sae.rearrange(x, "(batch seq) d -> batch seq d", { batch = 2 })
      local expected, shape = reference(x, { { "b", "s" }, { "d" } },
        { { "b" }, { "s" }, { "d" } }, { b = 2, s = 3, d = 4 })
      assert_close(expected, shape, y)
      assert_close(flat(x), { 6, 4 },
                   sae.rearrange(y, "batch seq d -> (batch seq) d"))
    end)

    it("permutes and merges in a new order", function()
      local x = random_tensor({ 2, 3, 4, 5 })
      local expected, shape = reference(x, { { "b" }, { "h" }, { "w" }, { "c" } },
        { { "b" }, { "w", "h" }, { "c" } }, { b = 2, h = 3, w = 4, c = 5 })
      assert_close(expected, shape, sae.rearrange(x, "b h w c -> b (w h) c"))
      expected, shape = reference(x, { { "b" }, { "h" }, { "w" }, { "c" } },
        { { "c" }, { "b" }, { "w" }, { "h" } }, { b = 2, h = 3, w = 4, c = 5 })
      assert_close(expected, shape, sae.rearrange(x, "b h w c -> c b w h"))
    end)

    it("adds and removes dims of size 1", function()
      local x = random_tensor({ 3, 1, 4 })
      assert.same({ 3, 4 }, sae.rearrange(x, "b 1 c -> b c"):shape())
      assert.same({ 1, 3, 4, 1 },
                  sae.rearrange(x, "b 1 c -> 1 b c ()"):shape())
      local column = x:reshape(12, 1)
      local expected, shape = reference(column, { { "b", "c" }, {} },
        { { "c" }, { "b" } }, { b = 3, c = 4 })
      assert_close(expected, shape,
                   sae.rearrange(column, "(b c) 1 -> c b", { b = 3 }))
    end)

    it("stands \"...\" for the dims not named", function()
      local x = random_tensor({ 2, 3, 4 })
      local expected, shape = reference(x, { { "b" }, { "p" }, { "q" } },
        { { "p" }, { "q" }, { "b" } }, { b = 2, p = 3, q = 4 })
      assert_close(expected, shape, sae.rearrange(x, "b ... -> ... b"))
      expected, shape = reference(x, { { "b" }, { "p" }, { "q" } },
        { { "b" }, { "p", "q" } }, { b = 2, p = 3, q = 4 })
      assert_close(expected, shape, sae.rearrange(x, "b ... -> b (...)"))
    end)

    it("accepts strided input", function()
      local x = random_tensor({ 4, 6 }):transpose(1, 2)
      local expected, shape = reference(x, { { "h", "w" }, { "c" } },
        { { "c" }, { "w" }, { "h" } }, { h = 3, w = 2, c = 4 })
      assert_close(expected, shape, sae.rearrange(x, "(h w) c -> c w h", { w = 2 }))
    end)

    it("checks sizes that the shape also gives", function()
      local x = random_tensor({ 6, 4 })
      assert.same({ 2, 3, 4 },
                  sae.rearrange(x, "(a b) c -> a b c", { a = 2, b = 3, c = 4 }):shape())
    end)
  end)

  describe("sae.reduce()", function()
    for _, op in ipairs({ "sum", "mean", "max", "min" }) do
      it("reduces a dim with " .. op, function()
        local x = random_tensor({ 2, 5, 3 })
        local expected, shape = reference(x, { { "b" }, { "s" }, { "d" } },
          { { "b" }, { "d" } }, { b = 2, s = 5, d = 3 }, op)
        assert_close(expected, shape, sae.reduce(x, "batch seq d -> batch d", op))
      end)
    end

    it("pools groups of axes", function()
      local x = random_tensor({ 2, 4, 6, 3 })
      local expected, shape = reference(x,
        { { "b" }, { "h", "i" }, { "w", "j" }, { "c" } },
        { { "b" }, { "h" }, { "w" }, { "c" } },
        { b = 2, h = 2, i = 2, w = 3, j = 2, c = 3 }, "max")
      assert_close(expected, shape,
                   sae.reduce(x, "b (h 2) (w 2) c -> b h w c", "max"))
    end)

    it("reduces everything to a 0-d tensor", function()
      local x = random_tensor({ 3, 4 })
      local expected = reference(x, { { "a" }, { "b" } }, {}, { a = 3, b = 4 },
                                 "sum")
      local y = sae.reduce(x, "a b ->", "sum")
      assert.equal(0, y:dim())
      assert.near(expected[1], y:item(), 1e-5)
    end)

    it("keeps reduced dims as 1 and permutes", function()
      local x = random_tensor({ 2, 3, 4 })
      local expected, shape = reference(x, { { "a" }, { "b" }, { "c" } },
        { { "c" }, {}, { "a" } }, { a = 2, b = 3, c = 4 }, "mean")
      assert_close(expected, shape, sae.reduce(x, "a b c -> c 1 a", "mean"))
    end)

    it("reduces the dims under \"...\"", function()
      local x = random_tensor({ 2, 3, 4 })
      local expected, shape = reference(x, { { "b" }, { "p" }, { "q" } },
        { { "b" } }, { b = 2, p = 3, q = 4 }, "sum")
      assert_close(expected, shape, sae.reduce(x, "b ... -> b", "sum"))
    end)
  end)

  describe("sae.repeat_()", function()
    it("adds a new axis", function()
      local x = random_tensor({ 2, 3 })
      local expected, shape = reference(x, { { "i" }, { "f" } },
        { { "i" }, { "f" }, { "b" } }, { i = 2, f = 3, b = 3 })
      assert_close(expected, shape, sae.repeat_(x, "i f -> i f b", { b = 3 }))
    end)

    it("repeats elements and whole blocks", function()
      local x = random_tensor({ 2, 3 })
      local expected, shape = reference(x, { { "h" }, { "w" } },
        { { "h", "r" }, { "w" } }, { h = 2, w = 3, r = 2 })
      assert_close(expected, shape, sae.repeat_(x, "h w -> (h 2) w"))
      expected, shape = reference(x, { { "h" }, { "w" } },
        { { "r", "h" }, { "w" } }, { h = 2, w = 3, r = 2 })
      assert_close(expected, shape, sae.repeat_(x, "h w -> (2 h) w"))
      expected, shape = reference(x, { { "h" }, { "w" } },
        { { "w", "c" }, { "h" } }, { h = 2, w = 3, c = 4 })
      assert_close(expected, shape, sae.repeat_(x, "h w -> (w c) h", { c = 4 }))
    end)

    it("is also sae[\"repeat\"]", function()
      assert.equal(sae.repeat_, sae["repeat"])
    end)

    it("returns a tensor that shares no storage", function()
      local x = sae.tensor({ { 1, 2 }, { 3, 4 } })
      local y = sae.repeat_(x, "h w -> h w")
      y:fill_(0)
      assert.same({ { 1, 2 }, { 3, 4 } }, x:totable())
      assert.is_true(sae.repeat_(x, "h w -> h w b", { b = 2 }):is_contiguous())
    end)
  end)

  describe("with a pattern used before", function()
    it("gives new results for new inputs", function()
      for _ = 1, 3 do
        local x = random_tensor({ 2, 6, 3 })
        local expected, shape = reference(x, { { "b" }, { "h", "w" }, { "c" } },
          { { "c" }, { "w" }, { "b", "h" } }, { b = 2, h = 2, w = 3, c = 3 })
        assert_close(expected, shape,
                     sae.rearrange(x, "b (h w) c -> c w (b h)", { h = 2 }))
        expected, shape = reference(x, { { "b" }, { "h", "w" }, { "c" } },
          { { "b" }, { "w" } }, { b = 2, h = 2, w = 3, c = 3 }, "max")
        assert_close(expected, shape,
                     sae.reduce(x, "b (h w) c -> b w", "max", { h = 2 }))
        expected, shape = reference(x, { { "b" }, { "s" }, { "c" } },
          { { "b" }, { "r", "s" }, { "c" } }, { b = 2, s = 6, c = 3, r = 2 })
        assert_close(expected, shape, sae.repeat_(x, "b s c -> b (2 s) c"))
      end
    end)

    it("follows new sizes and shapes", function()
      local x = random_tensor({ 6, 4 })
      assert.same({ 2, 3, 4 },
                  sae.rearrange(x, "(h w) c -> h w c", { h = 2 }):shape())
      assert.same({ 3, 2, 4 },
                  sae.rearrange(x, "(h w) c -> h w c", { h = 3 }):shape())
      assert.same({ 3, 2, 4 },
                  sae.rearrange(x, "(h w) c -> h w c", { w = 2 }):shape())
      assert.same({ 2, 4, 4 },
                  sae.rearrange(random_tensor({ 8, 4 }), "(h w) c -> h w c",
                                { h = 2 }):shape())
      assert.has_error(function()
        sae.rearrange(random_tensor({ 7, 4 }), "(h w) c -> h w c", { h = 2 })
      end, "rearrange: argument #1 (x) expected the size of dim 1 ('(h w)') "
        .. "to be a multiple of 2 (h = 2) for \"(h w) c -> h w c\", got "
        .. "shape [7, 4]")
    end)
  end)

  describe("on bad input", function()
    local x = sae.zeros(2, 12, 3)

    it("rejects an axis on one side only", function()
      assert.has_error(function() sae.rearrange(x, "b h c -> b h") end,
        "rearrange: argument #2 (pattern) expected the same axes on both "
        .. "sides, got 'c' in \"b h c -> b h\"")
      assert.has_error(function() sae.rearrange(x, "b h c -> b h c d") end,
        "rearrange: argument #2 (pattern) expected the same axes on both "
        .. "sides, got 'd' in \"b h c -> b h c d\"")
      assert.has_error(function() sae.reduce(x, "b h c -> b q", "sum") end,
        "reduce: argument #2 (pattern) expected output axes that occur on "
        .. "the left, got 'q' in \"b h c -> b q\"")
      assert.has_error(function() sae.repeat_(x, "b h c -> b c") end,
        "repeat: argument #2 (pattern) expected every left axis on the "
        .. "right, got 'h' in \"b h c -> b c\"")
      assert.has_error(function() sae.repeat_(x, "b h c -> b h c n") end,
        "repeat: argument #3 (sizes) expected a size for the new axis 'n' "
        .. "of \"b h c -> b h c n\", got none")
    end)

    it("rejects sizes that do not divide", function()
      assert.has_error(function()
        sae.rearrange(x, "b (h w) c -> b h w c", { h = 5 })
      end, "rearrange: argument #1 (x) expected the size of dim 2 ('(h w)') to "
        .. "be a multiple of 5 (h = 5) for \"b (h w) c -> b h w c\", got "
        .. "shape [2, 12, 3]")
      assert.has_error(function()
        sae.rearrange(x, "b (h w) c -> b h w c", { h = 2, w = 5 })
      end, "rearrange: argument #1 (x) expected size 10 (h = 2, w = 5) for "
        .. "dim 2 ('(h w)') for \"b (h w) c -> b h w c\", got shape [2, 12, 3]")
      assert.has_error(function() sae.rearrange(x, "1 h c -> h c") end,
        "rearrange: argument #1 (x) expected size 1 for dim 1 ('1') for "
        .. "\"1 h c -> h c\", got shape [2, 12, 3]")
    end)

    it("rejects a group with two unknown sizes", function()
      assert.has_error(function()
        sae.rearrange(x, "b (h w) c -> b h w c")
      end, "rearrange: argument #3 (sizes) expected sizes for all but one "
        .. "axis of '(h w)' in \"b (h w) c -> b h w c\", got none for h and w")
    end)

    it("rejects a mismatched number of dims", function()
      assert.has_error(function() sae.rearrange(x, "b c -> c b") end,
        "rearrange: argument #1 (x) expected 2 dims for \"b c -> c b\", got "
        .. "shape [2, 12, 3]")
      assert.has_error(function() sae.rearrange(x, "a b c d ... -> a") end,
        "rearrange: argument #1 (x) expected at least 4 dims for "
        .. "\"a b c d ... -> a\", got shape [2, 12, 3]")
    end)

    it("rejects duplicate axes", function()
      assert.has_error(function() sae.rearrange(x, "b h h -> b h") end,
        "rearrange: argument #2 (pattern) expected each axis once per side, "
        .. "got 'h' twice in \"b h h -> b h\"")
      assert.has_error(function() sae.rearrange(x, "b h c -> b (h c) c") end,
        "rearrange: argument #2 (pattern) expected each axis once per side, "
        .. "got 'c' twice in \"b h c -> b (h c) c\"")
    end)

    it("rejects malformed patterns", function()
      assert.has_error(function() sae.rearrange(x, "b h c") end,
        "rearrange: argument #2 (pattern) expected \"->\" between input and "
        .. "output, got none in \"b h c\"")
      assert.has_error(function() sae.rearrange(x, "b (h c -> b h c") end,
        "rearrange: argument #2 (pattern) expected ')' to close '(', got "
        .. "the end of the side in \"b (h c -> b h c\"")
      assert.has_error(function() sae.rearrange(x, "b ((h) c) -> b h c") end,
        "rearrange: argument #2 (pattern) expected no nested parentheses, "
        .. "got '(' in \"b ((h) c) -> b h c\"")
      assert.has_error(function() sae.rearrange(x, "b h c) -> b h c") end,
        "rearrange: argument #2 (pattern) expected '(' before ')', got an "
        .. "unmatched ')' in \"b h c) -> b h c\"")
      assert.has_error(function() sae.rearrange(x, "b h c -> b h+c") end,
        "rearrange: argument #2 (pattern) expected axis names, numbers, "
        .. "'(', ')' and \"...\", got '+' in \"b h c -> b h+c\"")
      assert.has_error(function() sae.rearrange(x, "b h 2c -> b h c") end,
        "rearrange: argument #2 (pattern) expected an axis name or a number, "
        .. "got '2c' in \"b h 2c -> b h c\"")
      assert.has_error(function() sae.rearrange(x, "b h c -> b (h 2) c") end,
        "rearrange: argument #2 (pattern) expected only 1 as a number on "
        .. "the right, got '(h 2)' in \"b h c -> b (h 2) c\"")
      assert.has_error(function() sae.rearrange(x, "b h c -> ... b h c") end,
        "rearrange: argument #2 (pattern) expected \"...\" on the left when "
        .. "it is on the right, got it on the right only in "
        .. "\"b h c -> ... b h c\"")
    end)

    it("rejects bad sizes, ops and tensors", function()
      assert.has_error(function()
        sae.rearrange(x, "b h c -> b h c", { q = 2 })
      end, "rearrange: argument #3 (sizes) expected axes of "
        .. "\"b h c -> b h c\", got 'q'")
      assert.has_error(function()
        sae.rearrange(x, "b (h w) c -> b h w c", { h = 2.5 })
      end, "rearrange: argument #3 (sizes) expected a positive integer for "
        .. "'h', got 2.5")
      assert.has_error(function()
        sae.rearrange(x, "b (h w) c -> b h w c", { h = "2" })
      end, "rearrange: argument #3 (sizes) expected a positive integer for "
        .. "'h', got \"2\"")
      assert.has_error(function()
        sae.repeat_(x, "b h c -> b h c n", { n = 0 })
      end, "repeat: argument #3 (sizes) expected a positive integer for "
        .. "'n', got 0")
      assert.has_error(function() sae.reduce(x, "b h c -> b", "avg") end,
        "reduce: argument #3 (op) expected \"sum\", \"mean\", \"max\" or "
        .. "\"min\", got \"avg\"")
      assert.has_error(function() sae.rearrange({}, "b -> b") end,
        "rearrange: argument #1 (x) expected a sae.Tensor, got table")
    end)
  end)
end)
