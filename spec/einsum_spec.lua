local sae = require "sae"
local helpers = require "helpers"

local flat, from_flat = helpers.flat_values, helpers.from_flat
local each_index = helpers.each_index
local random_tensor = helpers.random_tensor


local function flat_offset(index, shape)
  local offset = 0
  for d = 1, #shape do offset = offset * shape[d] + index[d] - 1 end
  return offset + 1
end


-- Naive einsum: loops over every combination of axis values. `inputs` is
-- a list of axis-name lists, one per operand; size-1 axes broadcast.
local function reference(inputs, output, operands)
  local size, names = {}, {}
  local data = {}
  for i, axes in ipairs(inputs) do
    local values, shape = flat(operands[i])
    data[i] = { values = values, shape = shape }
    for d, axis in ipairs(axes) do
      if size[axis] == nil then names[#names + 1] = axis end
      size[axis] = math.max(size[axis] or 1, shape[d])
    end
  end
  local out_shape = {}
  for d, axis in ipairs(output) do out_shape[d] = size[axis] end
  local out_numel = 1
  for _, n in ipairs(out_shape) do out_numel = out_numel * n end
  local out = {}
  for i = 1, out_numel do out[i] = 0 end

  local all_shape = {}
  for d, axis in ipairs(names) do all_shape[d] = size[axis] end
  each_index(all_shape, function(index)
    local value = {}
    for d, axis in ipairs(names) do value[axis] = index[d] end
    local term = 1
    for i, axes in ipairs(inputs) do
      local at = {}
      for d, axis in ipairs(axes) do
        at[d] = data[i].shape[d] == 1 and 1 or value[axis]
      end
      term = term * data[i].values[flat_offset(at, data[i].shape)]
    end
    local at = {}
    for d, axis in ipairs(output) do at[d] = value[axis] end
    local o = flat_offset(at, out_shape)
    out[o] = out[o] + term
  end)
  return out, out_shape
end


local function assert_close(expected, expected_shape, actual)
  helpers.assert_values_near(expected, expected_shape, actual, 1e-4)
end


-- Checks einsum(spec, ...) against the reference written with explicit
-- axis lists.
local function check(spec, inputs, output, operands)
  local expected, shape = reference(inputs, output, operands)
  assert_close(expected, shape, sae.einsum(spec, table.unpack(operands)))
end


describe("sae.einsum()", function()
  lazy_setup(function() math.randomseed(20261204) end)

  describe("with one operand", function()
    it("permutes axes", function()
      local x = random_tensor({ 2, 3, 4 })
      check("ijk->kij", { { "i", "j", "k" } }, { "k", "i", "j" }, { x })
    end)

    it("sums axes absent from the output", function()
      local x = random_tensor({ 2, 3, 4 })
      check("ijk->j", { { "i", "j", "k" } }, { "j" }, { x })
      check("ijk->", { { "i", "j", "k" } }, {}, { x })
      check("ijk->ki", { { "i", "j", "k" } }, { "k", "i" }, { x })
    end)

    it("takes traces and diagonals", function()
      local x = random_tensor({ 3, 3 })
      check("ii->", { { "i", "i" } }, {}, { x })
      check("ii->i", { { "i", "i" } }, { "i" }, { x })
      local y = random_tensor({ 2, 4, 2, 3 })
      check("ijik->jik", { { "i", "j", "i", "k" } }, { "j", "i", "k" }, { y })
    end)

    it("returns a 0-d tensor for a full reduction", function()
      local x = random_tensor({ 4 })
      local result = sae.einsum("i->", x)
      assert.equal(0, result:dim())
    end)
  end)

  describe("with two operands", function()
    it("multiplies matrices", function()
      local a, b = random_tensor({ 3, 4 }), random_tensor({ 4, 5 })
      check("ij,jk->ik", { { "i", "j" }, { "j", "k" } }, { "i", "k" }, { a, b })
      check("ij,jk->ki", { { "i", "j" }, { "j", "k" } }, { "k", "i" }, { a, b })
    end)

    it("keeps batch axes and contracts shared ones", function()
      local a, b = random_tensor({ 2, 3, 4 }), random_tensor({ 3, 5, 4 })
      check("bif,ihf->bih", { { "b", "i", "f" }, { "i", "h", "f" } },
            { "b", "i", "h" }, { a, b })
    end)

    it("reads spaced axis names", function()
      local a, b = random_tensor({ 2, 3, 4 }), random_tensor({ 3, 5, 4 })
      check("batch inst feat, inst hidden feat -> batch inst hidden",
            { { "b", "i", "f" }, { "i", "h", "f" } }, { "b", "i", "h" }, { a, b })
      check("batch inst feat,inst hidden feat->inst hidden batch",
            { { "b", "i", "f" }, { "i", "h", "f" } }, { "i", "h", "b" }, { a, b })
    end)

    it("reads one-name terms as names", function()
      local a, b = random_tensor({ 4 }), random_tensor({ 4 })
      check("feat, feat ->", { { "f" }, { "f" } }, {}, { a, b })
      check("feat,feat->feat", { { "f" }, { "f" } }, { "f" }, { a, b })
      check("d_model,d_model->", { { "f" }, { "f" } }, {}, { a, b })
    end)

    it("forms outer products", function()
      local a, b = random_tensor({ 3 }), random_tensor({ 2, 4 })
      check("i,jk->jik", { { "i" }, { "j", "k" } }, { "j", "i", "k" }, { a, b })
    end)

    it("sums axes of only one operand first", function()
      local a, b = random_tensor({ 2, 3, 5 }), random_tensor({ 3, 4, 6 })
      check("ijx,jky->ik", { { "i", "j", "x" }, { "j", "k", "y" } },
            { "i", "k" }, { a, b })
      check("ij,ij->", { { "i", "j" }, { "i", "j" } }, {},
            { random_tensor({ 3, 4 }), random_tensor({ 3, 4 }) })
    end)

    it("broadcasts axes of size 1", function()
      local a, b = random_tensor({ 1, 3, 4 }), random_tensor({ 5, 4, 2 })
      check("bij,bjk->bik", { { "b", "i", "j" }, { "b", "j", "k" } },
            { "b", "i", "k" }, { a, b })
      local c, d = random_tensor({ 3, 1 }), random_tensor({ 4, 2 })
      check("ij,jk->ik", { { "i", "j" }, { "j", "k" } }, { "i", "k" }, { c, d })
    end)

    it("takes diagonals before contracting", function()
      local a, b = random_tensor({ 3, 3, 2 }), random_tensor({ 3, 4 })
      check("iij,ik->jk", { { "i", "i", "j" }, { "i", "k" } }, { "j", "k" },
            { a, b })
    end)

    it("accepts strided operands", function()
      local a = random_tensor({ 4, 3 }):transpose(1, 2)
      local b = random_tensor({ 6, 5 }):narrow(1, 2, 4)
      check("ij,jk->ik", { { "i", "j" }, { "j", "k" } }, { "i", "k" }, { a, b })
      local c = random_tensor({ 1, 4 }):expand(3, 4)
      check("ij,jk->ik", { { "i", "j" }, { "j", "k" } }, { "i", "k" }, { c, b })
    end)

    it("takes the operands as a table", function()
      local a, b = random_tensor({ 3, 4 }), random_tensor({ 4, 5 })
      local expected, shape = reference({ { "i", "j" }, { "j", "k" } },
                                        { "i", "k" }, { a, b })
      assert_close(expected, shape, sae.einsum("ij,jk->ik", { a, b }))
    end)
  end)

  describe("with a spec used before", function()
    it("checks dims and sizes again", function()
      local a = random_tensor({ 2, 3 })
      check("ij->j", { { "i", "j" } }, { "j" }, { a })
      local b = random_tensor({ 4, 5 })
      check("ij->j", { { "i", "j" } }, { "j" }, { b })
      assert.has_error(function() sae.einsum("ij->j", sae.zeros(2, 3, 4)) end,
        "einsum: argument #2 (operand 1) expected 2 dims for term \"ij\" of "
        .. "\"ij->j\", got shape [2, 3, 4]")
      check("...j->j", { { "j" } }, { "j" }, { random_tensor({ 3 }) })
      check("...j->j", { { "x", "j" } }, { "j" }, { random_tensor({ 2, 3 }) })
    end)

    it("gives new results for new operands", function()
      for _ = 1, 3 do
        local a, b = random_tensor({ 3, 3, 2 }), random_tensor({ 3, 4 })
        check("iij,ik->jk", { { "i", "i", "j" }, { "i", "k" } }, { "j", "k" },
              { a, b })
      end
    end)

    it("handles one tensor passed twice", function()
      local a, b = random_tensor({ 3, 3 }), random_tensor({ 3, 3 })
      check("ij,jk->ik", { { "i", "j" }, { "j", "k" } }, { "i", "k" }, { a, a })
      check("ij,jk->ik", { { "i", "j" }, { "j", "k" } }, { "i", "k" }, { a, b })
      check("ij,jk->ik", { { "i", "j" }, { "j", "k" } }, { "i", "k" }, { b, a })
    end)
  end)

  describe("with three operands", function()
    it("contracts pairwise from the left", function()
      local a, b = random_tensor({ 2, 3 }), random_tensor({ 3, 4 })
      local c = random_tensor({ 4, 2 })
      check("ij,jk,kl->il", { { "i", "j" }, { "j", "k" }, { "k", "l" } },
            { "i", "l" }, { a, b, c })
      check("ij,jk,ki->j", { { "i", "j" }, { "j", "k" }, { "k", "i" } },
            { "j" }, { a, b, random_tensor({ 4, 2 }) })
    end)
  end)

  describe("with an ellipsis", function()
    it("broadcasts leading dims", function()
      local a, b = random_tensor({ 2, 3, 4 }), random_tensor({ 4, 5 })
      check("...ij,jk->...ik", { { "e", "i", "j" }, { "j", "k" } },
            { "e", "i", "k" }, { a, b })
      check("... i j, ... j k -> ... i k",
            { { "e", "i", "j" }, { "j", "k" } }, { "e", "i", "k" }, { a, b })
    end)

    it("broadcasts ellipsis dims of size 1", function()
      local a, b = random_tensor({ 2, 1, 3, 4 }), random_tensor({ 5, 4, 2 })
      check("...ij,...jk->...ik", { { "p", "q", "i", "j" }, { "q", "j", "k" } },
            { "p", "q", "i", "k" }, { a, b })
    end)

    it("sums ellipsis dims absent from the output", function()
      local a = random_tensor({ 2, 3, 4 })
      check("...j->j", { { "x", "y", "j" } }, { "j" }, { a })
    end)
  end)

  describe("without an output", function()
    it("keeps axes used once, sorted", function()
      local a, b = random_tensor({ 3, 4 }), random_tensor({ 4, 5 })
      check("ba,ac", { { "b", "a" }, { "a", "c" } }, { "b", "c" }, { a, b })
      check("ji", { { "j", "i" } }, { "i", "j" }, { a })
    end)
  end)

  describe("against PyTorch", function()
    local cases = dofile("spec/fixtures/einsum.lua")

    for _, case in ipairs(cases) do
      local specs = { case.spec, case.names }
      for _, spec in ipairs(specs) do
        it("matches torch.einsum for " .. spec, function()
          local operands = {}
          for i, operand in ipairs(case.operands) do
            operands[i] = from_flat(operand.values, operand.shape)
          end
          assert_close(case.result.values, case.result.shape,
                       sae.einsum(spec, table.unpack(operands)))
        end)
      end
    end
  end)

  describe("on bad input", function()
    it("rejects an unknown output axis", function()
      assert.has_error(function() sae.einsum("ij->k", sae.zeros(2, 3)) end,
        "einsum: argument #1 (spec) expected output axes that appear in an "
        .. "input, got 'k' in \"ij->k\"")
      assert.has_error(function()
        sae.einsum("batch feat -> batch hidden", sae.zeros(2, 3))
      end, "einsum: argument #1 (spec) expected output axes that appear in an "
        .. "input, got 'hidden' in \"batch feat -> batch hidden\"")
    end)

    it("rejects mismatched axis sizes", function()
      assert.has_error(function()
        sae.einsum("inst feat, inst hidden -> feat hidden", sae.zeros(3, 4),
                   sae.zeros(5, 2))
      end, "einsum: argument #3 (operand 2) expected size 3 for axis 'inst' "
        .. "as in operand 1 of shape [3, 4], got size 5 in shape [5, 2] for "
        .. "\"inst feat, inst hidden -> feat hidden\"")
    end)

    it("rejects unequal sizes of a repeated axis", function()
      assert.has_error(function() sae.einsum("ii->i", sae.zeros(2, 3)) end,
        "einsum: argument #2 (operand 1) expected equal sizes for the "
        .. "repeated axis 'i' of \"ii->i\", got 2 and 3 in shape [2, 3]")
    end)

    it("rejects a wrong number of operands", function()
      assert.has_error(function()
        sae.einsum("ij,jk->ik", sae.zeros(2, 3))
      end, "einsum: argument #1 (spec) expected 1 term for 1 operand, got 2 "
        .. "in \"ij,jk->ik\"")
      assert.has_error(function()
        sae.einsum("ij->ji", sae.zeros(2, 3), sae.zeros(3))
      end, "einsum: argument #1 (spec) expected 2 terms for 2 operands, got 1 "
        .. "in \"ij->ji\"")
      assert.has_error(function() sae.einsum("ij->ji") end,
        "einsum: argument #2 (operand 1) expected a sae.Tensor, got no value")
    end)

    it("rejects an operand that is not a tensor", function()
      assert.has_error(function() sae.einsum("i,i->", sae.zeros(2), 3) end,
        "einsum: argument #3 (operand 2) expected a sae.Tensor, got number")
    end)

    it("rejects a term of the wrong length", function()
      assert.has_error(function() sae.einsum("ijk->i", sae.zeros(2, 3)) end,
        "einsum: argument #2 (operand 1) expected 3 dims for term \"ijk\" of "
        .. "\"ijk->i\", got shape [2, 3]")
      assert.has_error(function()
        sae.einsum("b i f, i f -> b", sae.zeros(2, 3, 4), sae.zeros(3, 4, 5))
      end, "einsum: argument #3 (operand 2) expected 2 dims for term \"i f\" "
        .. "of \"b i f, i f -> b\", got shape [3, 4, 5]")
      assert.has_error(function()
        sae.einsum("...ijk->i", sae.zeros(2, 3))
      end, "einsum: argument #2 (operand 1) expected at least 3 dims for term "
        .. "\"...ijk\" of \"...ijk->i\", got shape [2, 3]")
    end)

    it("rejects malformed specs", function()
      assert.has_error(function() sae.einsum("i$->i", sae.zeros(2, 3)) end,
        "einsum: argument #1 (spec) expected letters, \"...\", \",\" and "
        .. "\"->\", got '$' in \"i$->i\"")
      assert.has_error(function() sae.einsum("i->j->i", sae.zeros(2)) end,
        "einsum: argument #1 (spec) expected one \"->\", got more in "
        .. "\"i->j->i\"")
      assert.has_error(function() sae.einsum("a 1b -> a", sae.zeros(2, 3)) end,
        "einsum: argument #1 (spec) expected axis names made of letters, "
        .. "digits and '_', got '1b' in \"a 1b -> a\"")
      assert.has_error(function() sae.einsum("ij->ii", sae.zeros(2, 2)) end,
        "einsum: argument #1 (spec) expected each output axis once, got 'i' "
        .. "twice in \"ij->ii\"")
      assert.has_error(function() sae.einsum("éj->j", sae.zeros(2, 3)) end,
        "einsum: argument #1 (spec) expected letters, \"...\", \",\" and "
        .. "\"->\", got 'é' in \"éj->j\"")
      assert.has_error(function() sae.einsum("ij->...", sae.zeros(2, 3)) end,
        "einsum: argument #1 (spec) expected \"...\" in the output only when "
        .. "an input has it, got it in the output only in \"ij->...\"")
      assert.has_error(function() sae.einsum("......->", sae.zeros(2, 3)) end,
        "einsum: argument #1 (spec) expected at most one \"...\" per term, "
        .. "got two in \"......->\"")
      assert.has_error(function() sae.einsum(3, sae.zeros(2)) end,
        "einsum: argument #1 (spec) expected a string, got number")
    end)
  end)
end)
