-- einops-style reshaping with patterns: rearrange, reduce and repeat.
--
-- A pattern "left -> right" names the dims of the input on the left and of
-- the result on the right. Parentheses group axes into one dim, so
-- "b (h w) c -> b h w c" splits the second dim and "(b s) d" merges two.
-- "1" is a dim of size 1, another number on the right of repeat is a new
-- axis of that size, and "..." stands for the dims not named. Sizes the
-- shape does not determine come from a table, e.g. { h = 2 }.
--
-- Each operation reshapes the input into its elementary axes (a view when
-- the strides allow it), reduces, permutes or expands them, and reshapes
-- to the right side. `repeat` is a Lua keyword, so the function is
-- sae.repeat_ (also reachable as sae["repeat"]).

local core = require "sae.core"
local pattern_util = require "sae.pattern"

local M = {}

local shape_string = pattern_util.shape_string
local index_of = pattern_util.index_of


-- Splits one side of a pattern into dims. Each dim is a list of tokens (a
-- name, "...", or an integer for an anonymous axis), and `grouped` records
-- whether it was written in parentheses.
local function parse_side(text, fail)
  local dims, group = {}, nil
  local position = 1
  while position <= #text do
    local c = text:sub(position, position)
    if c:match("%s") then
      position = position + 1
    elseif c == "(" then
      if group then fail("expected no nested parentheses, got '('") end
      group = { grouped = true }
      position = position + 1
    elseif c == ")" then
      if not group then fail("expected '(' before ')', got an unmatched ')'") end
      dims[#dims + 1] = group
      group = nil
      position = position + 1
    else
      local token = text:match("^%.%.%.", position)
                    or text:match("^[%w_]+", position)
      if not token then fail("expected axis names, numbers, '(', ')' and "
                             .. "\"...\", got '" .. c .. "'") end
      position = position + #token
      local value = token
      if token:match("^%d") then
        value = math.tointeger(tonumber(token))
        if not token:match("^%d+$") or not value then
          fail("expected an axis name or a number, got '" .. token .. "'")
        end
      end
      if group then
        group[#group + 1] = value
      else
        dims[#dims + 1] = { value }
      end
    end
  end
  if group then fail("expected ')' to close '(', got the end of the side") end
  return dims
end


-- Parses "left -> right" into two lists of dims and checks that no name
-- and no "..." occurs twice on one side.
local function parse(pattern, fname)
  local function fail(message)
    error(string.format("%s: argument #2 (pattern) %s in \"%s\"", fname,
                        message, pattern), 0)
  end
  if type(pattern) ~= "string" then
    error(string.format("%s: argument #2 (pattern) expected a string, got %s",
                        fname, type(pattern)), 0)
  end
  local arrow = pattern:find("->", 1, true)
  if not arrow then fail("expected \"->\" between input and output, got none") end
  local left_text, right_text = pattern:sub(1, arrow - 1), pattern:sub(arrow + 2)
  if right_text:find("->", 1, true) then fail("expected one \"->\", got more") end

  local sides = { parse_side(left_text, fail), parse_side(right_text, fail) }
  for s, dims in ipairs(sides) do
    local seen = {}
    for _, dim in ipairs(dims) do
      for _, token in ipairs(dim) do
        if type(token) == "string" then
          if seen[token] then
            fail(string.format("expected each axis once per side, got '%s' "
                               .. "twice", token))
          end
          seen[token] = true
          if token == "..." and dim.grouped and s == 1 then
            fail("expected \"...\" outside parentheses on the left, got "
                 .. "\"(...)\"")
          end
        elseif token == 0 then
          fail("expected anonymous axes of size 1 or more, got 0")
        end
      end
    end
  end
  return sides[1], sides[2]
end


-- Replaces "..." by the names "...1" to "...k", one per dim it covers.
local function expand_ellipsis(dims, count)
  local result = {}
  for _, dim in ipairs(dims) do
    if dim[1] == "..." and not dim.grouped then
      for k = 1, count do result[#result + 1] = { "..." .. k } end
    else
      local copy = { grouped = dim.grouped }
      for _, token in ipairs(dim) do
        if token == "..." then
          for k = 1, count do copy[#copy + 1] = "..." .. k end
        else
          copy[#copy + 1] = token
        end
      end
      result[#result + 1] = copy
    end
  end
  return result
end


local function has_ellipsis(dims)
  for _, dim in ipairs(dims) do
    for _, token in ipairs(dim) do
      if token == "..." then return true end
    end
  end
  return false
end


local function group_string(dim)
  local parts = {}
  for i, token in ipairs(dim) do parts[i] = tostring(token) end
  local text = table.concat(parts, " ")
  if dim.grouped or #dim ~= 1 then text = "(" .. text .. ")" end
  return "'" .. text .. "'"
end


-- Turns the dims of one side into elementary axes: names stay, "1" is
-- dropped, and each other number becomes a new anonymous axis of that
-- size. Returns the dims as lists of axis names.
local function elementary(dims, size, counter)
  local result = {}
  for d, dim in ipairs(dims) do
    local axes = { text = group_string(dim) }
    for _, token in ipairs(dim) do
      if type(token) == "string" then
        axes[#axes + 1] = token
      elseif token > 1 then
        counter.n = counter.n + 1
        local name = "#" .. counter.n
        size[name] = token
        axes[#axes + 1] = name
        axes.anonymous = true
      end
    end
    result[d] = axes
  end
  return result
end


-- Prepares the transformation: parses the pattern, checks it against the
-- shape of x and the given sizes, and returns the left dims, right dims
-- (as lists of elementary axis names) and the size of every axis.
-- NOTE: the core caps tensors at 8 dims, so a pattern with more than 8
-- elementary axes on a side fails inside reshape().
local function plan(fname, x, pattern, sizes)
  if getmetatable(x) ~= core.Tensor_mt then
    error(string.format("%s: argument #1 (x) expected a sae.Tensor, got %s",
                        fname, type(x)), 0)
  end
  local left, right = parse(pattern, fname)
  if sizes ~= nil and type(sizes) ~= "table" then
    error(string.format("%s: argument #3 (sizes) expected a table of axis "
                        .. "sizes, got %s", fname, type(sizes)), 0)
  end
  sizes = sizes or {}

  local function fail_shape(message)
    error(string.format("%s: argument #1 (x) %s for \"%s\", got shape %s",
                        fname, message, pattern, shape_string(x)), 0)
  end

  -- "..." covers the dims the left side does not name.
  local ellipsis_count = 0
  if has_ellipsis(left) then
    ellipsis_count = x:dim() - (#left - 1)
    if ellipsis_count < 0 then
      fail_shape(string.format("expected at least %d dims", #left - 1))
    end
  elseif has_ellipsis(right) then
    error(string.format("%s: argument #2 (pattern) expected \"...\" on the "
                        .. "left when it is on the right, got it on the right "
                        .. "only in \"%s\"", fname, pattern), 0)
  end
  left = expand_ellipsis(left, ellipsis_count)
  right = expand_ellipsis(right, ellipsis_count)
  if #left ~= x:dim() then
    fail_shape(string.format("expected %d dims", #left))
  end

  local size, counter = {}, { n = 0 }
  left = elementary(left, size, counter)
  right = elementary(right, size, counter)

  -- Given sizes must name axes of the pattern and be positive integers.
  local named = {}
  for _, side in ipairs({ left, right }) do
    for _, axes in ipairs(side) do
      for _, axis in ipairs(axes) do named[axis] = true end
    end
  end
  for axis, value in pairs(sizes) do
    if not named[axis] then
      error(string.format("%s: argument #3 (sizes) expected axes of \"%s\", "
                          .. "got '%s'", fname, pattern, tostring(axis)), 0)
    end
    local n = type(value) == "number" and math.tointeger(value) or nil
    if not n or n < 1 then
      local shown = type(value) == "string" and string.format("%q", value)
                    or tostring(value)
      error(string.format("%s: argument #3 (sizes) expected a positive "
                          .. "integer for '%s', got %s", fname, axis, shown), 0)
    end
    size[axis] = n
  end

  -- Each left dim gives the size of at most one unknown axis in its group.
  for d, axes in ipairs(left) do
    local n = x:size(d)
    local known, unknown, parts = 1, {}, {}
    for _, axis in ipairs(axes) do
      if size[axis] then
        known = known * size[axis]
        if axis:sub(1, 1) ~= "#" then
          parts[#parts + 1] = axis .. " = " .. size[axis]
        end
      else
        unknown[#unknown + 1] = axis
      end
    end
    local detail = #parts > 0 and " (" .. table.concat(parts, ", ") .. ")" or ""
    if #unknown == 0 then
      if known ~= n then
        fail_shape(string.format("expected size %d%s for dim %d (%s)", known,
                                 detail, d, axes.text))
      end
    elseif #unknown == 1 then
      if n % known ~= 0 then
        fail_shape(string.format("expected the size of dim %d (%s) to be a "
                                 .. "multiple of %d%s", d, axes.text, known,
                                 detail))
      end
      size[unknown[1]] = n // known
    else
      error(string.format("%s: argument #3 (sizes) expected sizes for all "
                          .. "but one axis of %s in \"%s\", got none for %s",
                          fname, axes.text, pattern,
                          table.concat(unknown, " and ")), 0)
    end
  end
  return left, right, size
end


local function flatten(dims)
  local list = {}
  for _, axes in ipairs(dims) do
    for _, axis in ipairs(axes) do list[#list + 1] = axis end
  end
  return list
end


-- Raises unless every axis of `from` also occurs in `to`.
local function check_subset(fname, pattern, from, to, message)
  for _, axis in ipairs(from) do
    if not index_of(to, axis) then
      local shown = axis:sub(1, 3) == "..." and "..." or axis
      error(string.format("%s: argument #2 (pattern) %s, got '%s' in \"%s\"",
                          fname, message, shown, pattern), 0)
    end
  end
end


local function reject_anonymous(fname, pattern, dims, side)
  for _, axes in ipairs(dims) do
    if axes.anonymous then
      error(string.format("%s: argument #2 (pattern) expected only 1 as a "
                          .. "number on the %s, got %s in \"%s\"", fname, side,
                          axes.text, pattern), 0)
    end
  end
end


local function shape_of(list, size)
  local shape = {}
  for i, axis in ipairs(list) do shape[i] = size[axis] end
  return shape
end


-- The recipe being recorded, or nil. Each operation maps one tensor to
-- the next, so a recipe is a list of { method, argument } steps that a
-- later call with the same pattern, shape and sizes replays.
local recording = nil


local function run_step(method, x, arg)
  if method == "max" or method == "min" then return (x[method](x, arg)) end
  if method == "copy" then
    local y = core.empty(x:shape(), x:dtype())
    y:copy_(x)
    return y
  end
  return x[method](x, arg)
end


local function apply(method, x, arg)
  if recording then recording[#recording + 1] = { method, arg } end
  return run_step(method, x, arg)
end


-- Reshapes x to the sizes of `dims`, each dim the product of its axes.
local function compose(x, dims, size)
  local shape = {}
  for d, axes in ipairs(dims) do
    local n = 1
    for _, axis in ipairs(axes) do n = n * size[axis] end
    shape[d] = n
  end
  return apply("reshape", x, shape)
end


-- Returns x permuted from the axis order `axes` to `order`.
local function permute_to(x, axes, order)
  local dims = pattern_util.permutation(axes, order)
  if not dims then return x end
  return apply("permute", x, dims)
end


local function rearrange(x, pattern, sizes)
  local left, right, size = plan("rearrange", x, pattern, sizes)
  reject_anonymous("rearrange", pattern, left, "left")
  reject_anonymous("rearrange", pattern, right, "right")
  local from, to = flatten(left), flatten(right)
  check_subset("rearrange", pattern, to, from,
               "expected the same axes on both sides")
  check_subset("rearrange", pattern, from, to,
               "expected the same axes on both sides")

  local y = apply("reshape", x, shape_of(from, size))
  return compose(permute_to(y, from, to), right, size)
end


local function reduce(x, pattern, op, sizes)
  local left, right, size = plan("reduce", x, pattern, sizes)
  reject_anonymous("reduce", pattern, right, "right")
  local from, to = flatten(left), flatten(right)
  check_subset("reduce", pattern, to, from,
               "expected output axes that occur on the left")

  local y = apply("reshape", x, shape_of(from, size))
  local kept = {}
  for d = #from, 1, -1 do
    if index_of(to, from[d]) then
      table.insert(kept, 1, from[d])
    else
      y = apply(op, y, d)
    end
  end
  return compose(permute_to(y, kept, to), right, size)
end


local function repeat_(x, pattern, sizes)
  local left, right, size = plan("repeat", x, pattern, sizes)
  reject_anonymous("repeat", pattern, left, "left")
  local from, to = flatten(left), flatten(right)
  check_subset("repeat", pattern, from, to,
               "expected every left axis on the right")
  for _, axis in ipairs(to) do
    if not size[axis] then
      error(string.format("repeat: argument #3 (sizes) expected a size for "
                          .. "the new axis '%s' of \"%s\", got none", axis,
                          pattern), 0)
    end
  end

  -- Order the old axes as on the right, add the new ones as size-1 dims,
  -- expand them (stride 0) and copy once into a fresh tensor.
  local old = {}
  for _, axis in ipairs(to) do
    if index_of(from, axis) then old[#old + 1] = axis end
  end
  local y = permute_to(apply("reshape", x, shape_of(from, size)), from, old)
  local with_new = {}
  for i, axis in ipairs(to) do
    with_new[i] = index_of(from, axis) and size[axis] or 1
  end
  y = apply("reshape", y, with_new)
  y = apply("expand", y, shape_of(to, size))
  return compose(apply("copy", y), right, size)
end


-- Recorded recipes by operation, pattern, input shape and sizes. Planning
-- in Lua took 20 to 30 microseconds per call and a replay takes 2 to 8
-- (measured on the 2-core development machine). The cache is cleared when
-- full.
local recipes = pattern_util.bounded_cache(256)

-- Returns the cache key of a call, or nil when the call is not cacheable
-- (a bad argument, which the uncached path then reports).
local function recipe_key(fname, x, pattern, op, sizes)
  if getmetatable(x) ~= core.Tensor_mt or type(pattern) ~= "string" then
    return nil
  end
  local parts = { fname, pattern, table.concat(x:shape(), ","), op or "" }
  if sizes ~= nil then
    if type(sizes) ~= "table" then return nil end
    local names = {}
    for name, value in pairs(sizes) do
      if type(name) ~= "string" or type(value) ~= "number" then return nil end
      names[#names + 1] = name
    end
    table.sort(names)
    for _, name in ipairs(names) do
      parts[#parts + 1] = name .. "=" .. tostring(sizes[name])
    end
  end
  return table.concat(parts, "\0")
end


-- Runs body(x, ...), or replays the recipe recorded by an earlier call
-- with the same key.
local function cached(key, body, x, ...)
  local recipe = key and recipes:get(key)
  if recipe then
    for _, step in ipairs(recipe) do x = run_step(step[1], x, step[2]) end
    return x
  end
  if not key then return body(x, ...) end

  recording = {}
  local ok, result = pcall(body, x, ...)
  recipe, recording = recording, nil
  if not ok then error(result, 0) end
  recipes:put(key, recipe)
  return result
end


-- Reorders, splits and merges dims; the result is a view when the strides
-- of x allow it, as with reshape().
function M.rearrange(x, pattern, sizes)
  local key = recipe_key("rearrange", x, pattern, nil, sizes)
  return cached(key, rearrange, x, pattern, sizes)
end


local reductions = { sum = true, mean = true, max = true, min = true }

-- Reduces with `op` ("sum", "mean", "max" or "min") the axes of the left
-- side that are missing on the right, then rearranges.
function M.reduce(x, pattern, op, sizes)
  if not reductions[op] then
    error(string.format("reduce: argument #3 (op) expected \"sum\", \"mean\", "
                        .. "\"max\" or \"min\", got %s", type(op) == "string"
                        and "\"" .. op .. "\"" or type(op)), 0)
  end
  local key = recipe_key("reduce", x, pattern, op, sizes)
  return cached(key, reduce, x, pattern, op, sizes)
end


-- Repeats x along the new axes of the right side, whose sizes come from
-- `sizes` or from numbers in the pattern. Returns a contiguous tensor that
-- shares no storage with x.
function M.repeat_(x, pattern, sizes)
  local key = recipe_key("repeat", x, pattern, nil, sizes)
  return cached(key, repeat_, x, pattern, sizes)
end


-- Adds rearrange, reduce and repeat to the module table `sae`.
function M.install(sae)
  sae.rearrange = M.rearrange
  sae.reduce = M.reduce
  sae.repeat_ = M.repeat_
  sae["repeat"] = M.repeat_
end

return M
