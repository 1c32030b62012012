local sae = require "sae"

-- Reads element (i, j, ...) through x[i][j]... so specs check views
-- independently of totable().
local function at(x, ...)
  local v = x
  for _, i in ipairs({ ... }) do v = v[i] end
  return v
end

describe("sae.Tensor", function()
  describe("sae.tensor()", function()
    it("builds a 2-D tensor from a nested table", function()
      local x = sae.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
      assert.same({ 2, 3 }, x:shape())
      assert.same({ { 1, 2, 3 }, { 4, 5, 6 } }, x:totable())
      assert.equal("float32", x:dtype())
    end)

    it("builds 0-d, empty and int64 tensors", function()
      local s = sae.tensor(2.5)
      assert.equal(0, s:dim())
      assert.equal(2.5, s:item())
      assert.same({ 0 }, sae.tensor({}):shape())
      local i = sae.tensor({ 1, 2, 2 ^ 53 + 1 }, "int64")
      assert.equal("int64", i:dtype())
      assert.equal(2 ^ 53 + 1, i[3])
      assert.equal(math.type(i[3]), "integer")
    end)

    it("copies a tensor", function()
      local x = sae.tensor({ 1, 2 })
      local y = sae.tensor(x)
      y[1] = 9
      assert.equal(1, x[1])
    end)

    it("rejects a ragged table", function()
      assert.has_error(function() sae.tensor({ { 1, 2 }, { 3 } }) end,
        "tensor: ragged nested table: expected 2 elements at depth 2, got 1")
      assert.has_error(function() sae.tensor({ 1, { 2 } }) end,
        "tensor: nested table expected numbers at this depth (ragged table), got table")
      assert.has_error(function() sae.tensor({ { 1 }, 2 }) end,
        "tensor: ragged nested table: expected a table at depth 2, got number")
    end)

    it("rejects non-numbers and bad dtypes", function()
      assert.has_error(function() sae.tensor({ 1, "a" }) end,
        "tensor: nested table expected numbers, got string")
      assert.has_error(function() sae.tensor({ 1.5 }, "int64") end,
        "tensor: int64 tensor expected integer values, got 1.5")
      assert.has_error(function() sae.tensor({ 1 }, "float64") end,
        'tensor: argument #2 (dtype) expected "float32" or "int64", got float64')
      assert.has_error(function() sae.tensor("x") end,
        "tensor: argument #1 expected a number, a nested table or a sae.Tensor, got string")
    end)
  end)

  describe("zeros(), ones(), full(), empty()", function()
    it("take a shape as numbers or as a table", function()
      assert.same({ { 0, 0 } }, sae.zeros(1, 2):totable())
      assert.same({ { 1 }, { 1 } }, sae.ones({ 2, 1 }):totable())
      assert.same({ 7, 7, 7 }, sae.full({ 3 }, 7):totable())
      assert.same({ 7, 7 }, sae.full(2, 7, "int64"):totable())
      assert.same({ 2, 0, 3 }, sae.empty(2, 0, 3):shape())
      assert.equal("int64", sae.zeros(3, "int64"):dtype())
    end)

    it("reject invalid sizes", function()
      assert.has_error(function() sae.zeros(2, -1) end,
        "zeros: size #2 expected a size >= 0, got -1")
      assert.has_error(function() sae.ones(2.5) end,
        "ones: size #1 expected an integer, got 2.5")
      assert.has_error(function() sae.zeros(1, 2, 3, 4, 5, 6, 7, 8, 9) end,
        "zeros: shape expected at most 8 dims, got 9")
      assert.has_error(function() sae.zeros(2 ^ 40, 2 ^ 40) end,
        "invalid tensor shape [1099511627776, 1099511627776] (too many elements)")
    end)
  end)

  describe("inspection", function()
    it("reports shape, size, stride, dim and numel", function()
      local x = sae.zeros(2, 3, 4)
      assert.same({ 2, 3, 4 }, x:size())
      assert.equal(3, x:size(2))
      assert.equal(4, x:size(-1))
      assert.same({ 12, 4, 1 }, x:stride())
      assert.equal(3, x:dim())
      assert.equal(24, x:numel())
      assert.equal(2, #x)
    end)

    it("raises on a bad dim", function()
      local x = sae.zeros(2, 3)
      assert.has_error(function() x:size(3) end,
        "size: argument #2 (dim) expected a dim in [1, 2] (or -2 .. -1), got 3")
      assert.has_error(function() x:size(0) end,
        "size: argument #2 (dim) expected a dim in [1, 2] (or -2 .. -1), got 0")
    end)

    it("item() needs exactly one element", function()
      assert.equal(3, sae.tensor({ { 3 } }):item())
      assert.has_error(function() sae.zeros(2):item() end,
        "item: expected a tensor with one element, got shape [2]")
    end)
  end)

  describe("indexing", function()
    it("selects along the first dim with 1-based indices", function()
      local x = sae.tensor({ { 1, 2 }, { 3, 4 } })
      assert.same({ 3, 4 }, x[2]:totable())
      assert.equal(4, x[2][2])
      assert.equal(2, x[-2][-1])
    end)

    it("assigns numbers and tensors through views", function()
      local x = sae.zeros(2, 3)
      x[1] = 5
      x[2] = sae.tensor({ 1, 2, 3 })
      x[2][1] = -1
      assert.same({ { 5, 5, 5 }, { -1, 2, 3 } }, x:totable())
    end)

    it("raises on an index out of range or of the wrong type", function()
      local x = sae.zeros(2, 3)
      assert.has_error(function() return x[3] end,
        "index: argument #2 (index) expected an index in [1, 2] (or negative from the end), got 3")
      assert.has_error(function() return x[0] end,
        "index: argument #2 (index) expected an index in [1, 2] (or negative from the end), got 0")
      assert.has_error(function() x[1] = "a" end,
        "newindex: expected a number or a sae.Tensor as the value, got string")
      assert.has_error(function() x[1] = sae.zeros(4) end,
        "copy_: expected a source that broadcasts to the destination, got shapes [3] and [4]")
      assert.is_nil(x.no_such_method)
      assert.has_error(function() return x[{ 1, 2 }] end,
        "index: expected an integer index or a method name, got table (use narrow, select or index_select for slices)")
    end)
  end)

  describe("views", function()
    it("share storage", function()
      local x = sae.zeros(2, 3)
      local t = x:transpose()
      t[3][2] = 7
      assert.equal(7, x[2][3])
      assert.is_false(t:is_contiguous())
    end)

    it("view infers -1 and keeps storage", function()
      local x = sae.zeros(2, 6)
      local v = x:view(3, -1)
      assert.same({ 3, 4 }, v:shape())
      v[3][4] = 1
      assert.equal(1, x[2][6])
      assert.same({ 12 }, x:view({ -1 }):shape())
    end)

    it("view rejects a size mismatch and a non-contiguous tensor", function()
      local x = sae.zeros(2, 3)
      assert.has_error(function() x:view(4, 2) end,
        "view: argument #2 (shape) expected 6 elements to match [2, 3], got [4, 2]")
      assert.has_error(function() x:view(-1, -1) end,
        "view: shape expected at most one -1, got two")
      assert.has_error(function() x:transpose():view(6) end,
        "view: tensor of shape [3, 2] is not contiguous; call :contiguous() first or use reshape")
    end)

    it("reshape copies a non-contiguous tensor", function()
      local x = sae.tensor({ { 1, 2 }, { 3, 4 } }):transpose()
      assert.same({ 1, 3, 2, 4 }, x:reshape(-1):totable())
    end)

    it("permute reorders dims", function()
      local x = sae.tensor({ { { 1, 2, 3 }, { 4, 5, 6 } } })   -- [1, 2, 3]
      local p = x:permute(3, 1, 2)
      assert.same({ 3, 1, 2 }, p:shape())
      for i = 1, 2 do
        for k = 1, 3 do assert.equal(at(x, 1, i, k), at(p, k, 1, i)) end
      end
      assert.same({ 3, 1, 2 }, x:permute({ -1, 1, 2 }):shape())
      assert.has_error(function() x:permute(1, 1, 2) end,
        "permute: argument #2 expected a permutation of 1..3, got 1 at position 2")
      assert.has_error(function() x:permute(1, 2) end,
        "permute: argument #2 expected 3 dims for a tensor of shape [1, 2, 3], got 2")
    end)

    it("unsqueeze and squeeze add and drop size-1 dims", function()
      local x = sae.zeros(2, 3)
      assert.same({ 1, 2, 3 }, x:unsqueeze(1):shape())
      assert.same({ 2, 1, 3 }, x:unsqueeze(2):shape())
      assert.same({ 2, 3, 1 }, x:unsqueeze(-1):shape())
      assert.same({ 2, 3 }, x:unsqueeze(2):unsqueeze(1):squeeze():shape())
      assert.same({ 2, 1, 3 }, x:unsqueeze(1):unsqueeze(3):squeeze(1):shape())
      assert.same({}, sae.zeros(1, 1):squeeze():shape())
    end)

    it("narrow and select take 1-based positions", function()
      local x = sae.tensor({ { 1, 2, 3, 4 }, { 5, 6, 7, 8 } })
      assert.same({ { 2, 3 }, { 6, 7 } }, x:narrow(2, 2, 2):totable())
      assert.same({ { 4 }, { 8 } }, x:narrow(2, -1, 1):totable())
      assert.same({ 2, 0 }, x:narrow(2, 5, 0):shape())
      assert.same({ 3, 7 }, x:select(2, 3):totable())
      assert.has_error(function() x:narrow(2, 3, 3) end,
        "narrow: argument #4 (length) expected a length in [0, 2] for start 3 in dim 2 of shape [2, 4], got 3")
      assert.has_error(function() x:narrow(2, 6, 0) end,
        "narrow: argument #3 (start) expected an index in [1, 4] (or negative from the end), got 6")
      assert.has_error(function() x:select(1, 3) end,
        "select: argument #3 (index) expected an index in [1, 2] (or negative from the end), got 3")
    end)

    it("expand repeats size-1 dims without copying", function()
      local x = sae.tensor({ { 1 }, { 2 } })
      local e = x:expand(3, 2, 4)
      assert.same({ 3, 2, 4 }, e:shape())
      assert.same({ 0, 1, 0 }, e:stride())
      assert.equal(2, at(e, 3, 2, 4))
      x[2][1] = 5
      assert.equal(5, at(e, 1, 2, 1))
      assert.same({ 2, 4 }, x:expand(-1, 4):shape())
      assert.has_error(function() x:expand(3, 4) end,
        "expand: argument #2 expected a shape that [2, 1] broadcasts to, got [3, 4]")
    end)

    it("contiguous and clone copy strided data in order", function()
      local x = sae.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
      local c = x:transpose():contiguous()
      assert.is_true(c:is_contiguous())
      assert.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, c:totable())
      assert.equal(x, x:contiguous())
      local k = x:clone()
      k[1][1] = 0
      assert.equal(1, x[1][1])
    end)

    it("copy_ broadcasts and handles overlapping views", function()
      local x = sae.tensor({ 1, 2, 3, 4 })
      x:narrow(1, 2, 3):copy_(x:narrow(1, 1, 3))
      assert.same({ 1, 1, 2, 3 }, x:totable())
      local y = sae.zeros(2, 3)
      y:copy_(sae.tensor({ 1, 2, 3 }))
      assert.same({ { 1, 2, 3 }, { 1, 2, 3 } }, y:totable())
    end)

    it("converts between float32 and int64", function()
      local x = sae.tensor({ 1.7, -2.7 })
      assert.same({ 1, -2 }, x:long():totable())
      assert.equal("float32", x:long():float():dtype())
      assert.equal("int64", x:to("int64"):dtype())
    end)
  end)

  describe("arguments", function()
    it("must be tensors where tensors are expected", function()
      assert.has_error(function() sae.zeros(2).copy_(sae.zeros(2), 5) end,
        "copy_: argument #2 expected sae.Tensor, got number")
    end)
  end)
end)
