local sae = require "sae"

local cases = dofile("spec/fixtures/print.lua")


-- Builds the fixture input, either from stored values or from the formula
-- (i * 37 % 101 - 50) * scale over the 0-based flat index i.
local function fixture_tensor(case)
  local numel = 1
  for _, n in ipairs(case.shape) do numel = numel * n end
  if numel == 0 then return sae.zeros(case.shape, case.dtype) end

  local flat = case.values
  if case.formula then
    flat = {}
    for i = 0, numel - 1 do
      flat[i + 1] = (i * 37 % 101 - 50) * case.formula
    end
  end
  if #case.shape == 0 then return sae.tensor(flat[1], case.dtype) end

  local x = sae.tensor(flat, case.dtype):reshape(case.shape)
  if case.transpose then x = x:transpose(1, 2) end
  return x
end


local function shape_text(x)
  return "[" .. table.concat(x:shape(), ", ") .. "]"
end


describe("sae.Tensor", function()
  describe("tostring()", function()
    after_each(function() sae.set_printoptions("default") end)

    for _, case in ipairs(cases) do
      it("matches PyTorch for " .. case.name, function()
        local x = fixture_tensor(case)
        local footer = "[sae.Tensor " .. case.dtype .. " of shape "
                       .. shape_text(x) .. "]"
        assert.equal(case.expected .. "\n" .. footer, tostring(x))
      end)
    end

    it("ends with dtype and shape", function()
      assert.equal("[1., 2.]\n[sae.Tensor float32 of shape [2]]",
                   tostring(sae.tensor({ 1, 2 })))
      assert.equal("[[0]]\n[sae.Tensor int64 of shape [1, 1]]",
                   tostring(sae.zeros(1, 1, "int64")))
    end)

    it("prints a 0-d tensor as one number", function()
      assert.equal("-2.5000\n[sae.Tensor float32 of shape []]",
                   tostring(sae.tensor(-2.5)))
    end)

    it("prints empty tensors as []", function()
      assert.equal("[]\n[sae.Tensor float32 of shape [0]]",
                   tostring(sae.zeros(0)))
      assert.equal("[]\n[sae.Tensor int64 of shape [3, 0, 2]]",
                   tostring(sae.zeros(3, 0, 2, "int64")))
    end)

    it("reads only the shown elements of a huge view", function()
      -- 10^10 elements of stride 0: a Lua table of them would need 160 GB.
      local x = sae.full({ 1, 1 }, 7):expand(100000, 100000)
      local text = tostring(x)
      assert.equal(
        "[[7., 7., 7.,  ..., 7., 7., 7.],\n"
        .. " [7., 7., 7.,  ..., 7., 7., 7.],\n"
        .. " [7., 7., 7.,  ..., 7., 7., 7.],\n"
        .. " ...,\n"
        .. " [7., 7., 7.,  ..., 7., 7., 7.],\n"
        .. " [7., 7., 7.,  ..., 7., 7., 7.],\n"
        .. " [7., 7., 7.,  ..., 7., 7., 7.]]\n"
        .. "[sae.Tensor float32 of shape [100000, 100000]]", text)
    end)

    it("is what print() writes", function()
      local x = sae.tensor({ { 1, 2 }, { 3, 4 } })
      local written = {}
      local saved = _G.print
      _G.print = function(...)
        for i = 1, select("#", ...) do
          written[#written + 1] = tostring((select(i, ...)))
        end
      end
      print(x)
      _G.print = saved
      assert.same({ tostring(x) }, written)
    end)
  end)

  describe("set_printoptions()", function()
    after_each(function() sae.set_printoptions("default") end)

    it("changes precision", function()
      sae.set_printoptions({ precision = 2 })
      assert.equal("[1.50, 2.25]", tostring(sae.tensor({ 1.5, 2.25 })):match("^[^\n]*"))
    end)

    it("changes threshold and edgeitems", function()
      sae.set_printoptions({ threshold = 4, edgeitems = 1 })
      local x = sae.tensor({ 1, 2, 3, 4, 5 })
      assert.equal("[1.,  ..., 5.]", tostring(x):match("^[^\n]*"))
    end)

    it("elides everything with no edge items", function()
      sae.set_printoptions({ threshold = 2, edgeitems = 0 })
      assert.equal("[...]", tostring(sae.zeros(4)):match("^[^\n]*"))
      assert.equal("[...]", tostring(sae.zeros(3, 4)):match("^[^\n]*"))
    end)

    it("forces scientific notation", function()
      sae.set_printoptions({ sci_mode = true })
      assert.equal("[1.0000e+00, 2.0000e+00]",
                   tostring(sae.tensor({ 1, 2 })):match("^[^\n]*"))
    end)

    it("restores the defaults", function()
      sae.set_printoptions({ precision = 1, linewidth = 10 })
      sae.set_printoptions("default")
      assert.same({ precision = 4, threshold = 1000, edgeitems = 3,
                    linewidth = 80 }, sae.get_printoptions())
    end)

    it("rejects unknown and invalid options", function()
      assert.has_error(function() sae.set_printoptions({ digits = 2 }) end,
        "set_printoptions: argument #1 (options) expected one of precision, "
        .. "threshold, edgeitems, linewidth, sci_mode, got digits")
      assert.has_error(function() sae.set_printoptions({ precision = -1 }) end,
        "set_printoptions: argument #1 (options) expected precision to be an "
        .. "integer in [0, 50], got -1")
      assert.has_error(function() sae.set_printoptions({ threshold = 1.5 }) end,
        "set_printoptions: argument #1 (options) expected threshold to be a "
        .. "non-negative integer, got 1.5")
      assert.has_error(function() sae.set_printoptions({ sci_mode = 1 }) end,
        "set_printoptions: argument #1 (options) expected sci_mode to be a "
        .. "boolean, got number")
      assert.has_error(function() sae.set_printoptions(3) end,
        "set_printoptions: argument #1 (options) expected a table or "
        .. "\"default\", got number")
    end)
  end)
end)
