-- Text form of a tensor for tostring(), print() and the REPL.
--
-- The layout follows PyTorch's tensor printing: nested brackets, one common
-- number format and width for every value shown, and the middle of each
-- dimension elided with "..." once the tensor has more than `threshold`
-- elements. spec/fixtures/print.lua contains PyTorch 1.13 output for checking.
-- A Torch7-style footer gives the dtype and shape:
--
--   [[1., 2., 3.],
--    [4., 5., 6.]]
--   [sae.Tensor float32 of shape [2, 3]]
--
-- Only the elements that are shown are read, through views, so printing a
-- tensor of a billion elements reads a few dozen numbers.

local M = {}

local defaults = {
  precision = 4,      -- digits after the point in fixed and scientific mode
  threshold = 1000,   -- more elements than this are summarized with "..."
  edgeitems = 3,      -- elements kept at each end of a summarized dimension
  linewidth = 80,     -- characters per line before a row of numbers wraps
  sci_mode = nil,     -- true or false forces the mode; nil chooses as PyTorch
}

local options = {}
for key, value in pairs(defaults) do options[key] = value end


-- Sets print options by name and raises on unknown names. With "default"
-- as the argument, restores the defaults.
function M.set_printoptions(new)
  if new == "default" then
    for key in pairs(options) do options[key] = nil end
    for key, value in pairs(defaults) do options[key] = value end
    return
  end
  if type(new) ~= "table" then
    error("set_printoptions: argument #1 (options) expected a table or "
          .. "\"default\", got " .. type(new), 0)
  end
  for key, value in pairs(new) do
    if key == "sci_mode" then
      if type(value) ~= "boolean" then
        error("set_printoptions: argument #1 (options) expected sci_mode "
              .. "to be a boolean, got " .. type(value), 0)
      end
    elseif key == "precision" then
      if math.type(value) ~= "integer" or value < 0 or value > 50 then
        error("set_printoptions: argument #1 (options) expected precision "
              .. "to be an integer in [0, 50], got " .. tostring(value), 0)
      end
    elseif defaults[key] ~= nil then
      if math.type(value) ~= "integer" or value < 0 then
        error(string.format("set_printoptions: argument #1 (options) "
              .. "expected %s to be a non-negative integer, got %s",
              key, tostring(value)), 0)
      end
    else
      error("set_printoptions: argument #1 (options) expected one of "
            .. "precision, threshold, edgeitems, linewidth, sci_mode, got "
            .. tostring(key), 0)
    end
    options[key] = value
  end
end


-- Returns a copy of the current print options.
function M.get_printoptions()
  local copy = {}
  for key, value in pairs(options) do copy[key] = value end
  return copy
end


local function shape_string(shape)
  return "[" .. table.concat(shape, ", ") .. "]"
end
M.shape_string = shape_string


local function is_finite(v)
  return v == v and v ~= math.huge and v ~= -math.huge
end


-- Formats inf and nan the way Python does, whatever sign bit a nan has.
local function nonfinite_string(v)
  if v ~= v then return "nan" end
  return v > 0 and "inf" or "-inf"
end


-- Reads the shown elements of x into nested Lua tables. A summarized
-- dimension becomes { head, tail } with `gap = true`. Every number read is
-- also appended to `values`, from which the format is chosen.
local function collect(x, summarize, values)
  local n = x:size(1)
  local edge = options.edgeitems
  local elide = summarize and n > 2 * edge

  if x:dim() == 1 then
    local function read(first, count)
      local part = x:narrow(1, first, count):totable()
      for _, v in ipairs(part) do values[#values + 1] = v end
      return part
    end
    if elide then
      return { gap = true, read(1, edge), read(n - edge + 1, edge) }
    end
    if n == 0 then return {} end
    return read(1, n)
  end

  local function rows(first, last)
    local part = {}
    for i = first, last do
      part[#part + 1] = collect(x:select(1, i), summarize, values)
    end
    return part
  end
  if elide then
    return { gap = true, rows(1, edge), rows(n - edge + 1, n) }
  end
  return rows(1, n)
end


-- Chooses one format for all shown values, as PyTorch does:
-- integral floats print as "3.", fixed point with `precision` digits
-- otherwise, and scientific notation when the nonzero magnitudes span more
-- than three decades or leave the range [1e-4, 1e8].
local function make_formatter(values, is_float)
  local precision = options.precision
  local width = 1

  if not is_float then
    for _, v in ipairs(values) do
      width = math.max(width, #string.format("%d", v))
    end
    return function(v)
      local s = string.format("%d", v)
      return string.rep(" ", width - #s) .. s
    end, width
  end

  local int_mode, sci_mode = true, false
  local min_abs, max_abs
  local shown = {}
  for _, v in ipairs(values) do
    if is_finite(v) and v ~= 0 then
      shown[#shown + 1] = v
      local a = math.abs(v)
      min_abs = min_abs and math.min(min_abs, a) or a
      max_abs = max_abs and math.max(max_abs, a) or a
      if v ~= math.ceil(v) then int_mode = false end
    end
  end

  local fixed = "%." .. precision .. "f"
  local sci = "%." .. precision .. "e"
  local function format_finite(v, scientific)
    if scientific then return string.format(sci, v) end
    if int_mode then return string.format("%.0f", v) .. "." end
    return string.format(fixed, v)
  end

  if #shown > 0 then
    local wide = max_abs / min_abs > 1000.0 or max_abs > 1.0e8
    if int_mode then
      sci_mode = wide
    else
      sci_mode = wide or min_abs < 1.0e-4
    end
    for _, v in ipairs(shown) do
      width = math.max(width, #format_finite(v, sci_mode))
    end
  end
  if options.sci_mode ~= nil then sci_mode = options.sci_mode end

  return function(v)
    local s
    if is_finite(v) then
      s = format_finite(v, sci_mode)
    else
      s = nonfinite_string(v)
    end
    return string.rep(" ", width - #s) .. s
  end, width
end


-- Renders one nested level whose opening bracket is at column `indent`.
local function render(node, depth, indent, format, width)
  if depth == 1 then
    local items = {}
    if node.gap and options.edgeitems == 0 then
      items[1] = "..."
    elseif node.gap then
      for _, v in ipairs(node[1]) do items[#items + 1] = format(v) end
      items[#items + 1] = " ..."
      for _, v in ipairs(node[2]) do items[#items + 1] = format(v) end
    else
      for _, v in ipairs(node) do items[#items + 1] = format(v) end
    end
    local per_line = math.max(1, (options.linewidth - indent) // (width + 2))
    local lines = {}
    for first = 1, #items, per_line do
      lines[#lines + 1] = table.concat(items, ", ", first,
                                       math.min(#items, first + per_line - 1))
    end
    return "[" .. table.concat(lines, ",\n" .. string.rep(" ", indent + 1))
           .. "]"
  end

  local slices = {}
  local function add(rows)
    for _, row in ipairs(rows) do
      slices[#slices + 1] = render(row, depth - 1, indent + 1, format, width)
    end
  end
  if node.gap then
    add(node[1])
    slices[#slices + 1] = "..."
    add(node[2])
  else
    add(node)
  end
  local separator = "," .. string.rep("\n", depth - 1)
                    .. string.rep(" ", indent + 1)
  return "[" .. table.concat(slices, separator) .. "]"
end


-- Returns the values of x as text, without the footer.
function M.values_string(x)
  local is_float = x:dtype() == "float32"
  local numel = x:numel()

  if x:dim() == 0 then
    local v = x:item()
    return (make_formatter({ v }, is_float)(v))
  end
  if numel == 0 then
    return "[]"
  end

  local values = {}
  local tree = collect(x, numel > options.threshold, values)
  local format, width = make_formatter(values, is_float)
  return render(tree, x:dim(), 0, format, width)
end


-- Returns the values of x followed by a line with its dtype and shape.
function M.tostring(x)
  return M.values_string(x) .. "\n[sae.Tensor " .. x:dtype()
         .. " of shape " .. shape_string(x:shape()) .. "]"
end

return M
