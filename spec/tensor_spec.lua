local sae = require "sae"

describe("sae.Tensor", function()
  describe("sae.tensor()", function()
    it("builds a 2-D tensor from a nested table", function()
      local x = sae.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
      assert.same({ 2, 3 }, x:shape())
      assert.same({ { 1, 2, 3 }, { 4, 5, 6 } }, x:totable())
      assert.equal("float32", x:dtype())
    end)

    it("rejects a ragged table", function()
      assert.has_error(function() sae.tensor({ { 1, 2 }, { 3 } }) end,
        "tensor: ragged nested table: expected 2 elements at depth 2, got 1")
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

    it("raises on an index out of range", function()
      local x = sae.zeros(2, 3)
      assert.has_error(function() return x[3] end,
        "index: argument #2 (index) expected an index in [1, 2] (or negative from the end), got 3")
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

    it("reshape copies a non-contiguous tensor and view refuses it", function()
      local x = sae.tensor({ { 1, 2 }, { 3, 4 } }):transpose()
      assert.same({ 1, 3, 2, 4 }, x:reshape(-1):totable())
      assert.has_error(function() x:view(4) end)
    end)
  end)
end)
