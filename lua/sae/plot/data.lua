-- Input handling for the plots: tensors and nested tables to plain arrays
-- with checked shapes, colors and palettes, and the small linear algebra
-- the plots compute in plain Lua.

local M = {}


local function is_tensor(x)
  if type(x) ~= "userdata" then return false end
  local ok, totable = pcall(function() return x.totable end)
  return ok and type(totable) == "function"
end
M.is_tensor = is_tensor


function M.shape_string(shape)
  local parts = {}
  for i, n in ipairs(shape) do parts[i] = tostring(n) end
  return "[" .. table.concat(parts, ", ") .. "]"
end


-- Shape of a rectangular nested table of numbers, or nil and the reason.
local function table_shape(t)
  local shape = {}
  local node = t
  while type(node) == "table" do
    shape[#shape + 1] = #node
    if #node == 0 then break end
    node = node[1]
  end
  local function check(x, depth)
    if depth > #shape then
      if type(x) ~= "number" then return "a non-number " .. type(x) end
      return nil
    end
    if type(x) ~= "table" or #x ~= shape[depth] then
      return string.format("a ragged nested table (expected %d elements at depth %d)",
        shape[depth], depth)
    end
    for i = 1, #x do
      local reason = check(x[i], depth + 1)
      if reason then return reason end
    end
    return nil
  end
  local reason = check(t, 1)
  if reason then return nil, reason end
  return shape
end


-- "argument #<argn> (<name>)", or "option <name>" when argn is "".
local function subject(argn, name)
  if argn == "" then return "option " .. name end
  return string.format("argument #%s (%s)", argn, name)
end


-- Convert a tensor or a nested table of numbers to a nested table and its
-- shape. Raises "<fname>: argument #<argn> (<name>) expected <what>, got ...".
function M.array(x, fname, argn, name, what)
  local t, shape
  if is_tensor(x) then
    t, shape = x:totable(), x:shape()
  elseif type(x) == "table" then
    local reason
    shape, reason = table_shape(x)
    if not shape then
      error(string.format("%s: %s expected %s, got %s",
        fname, subject(argn, name), what, reason), 0)
    end
    t = x
  else
    error(string.format("%s: %s expected %s, got %s",
      fname, subject(argn, name), what, type(x)), 0)
  end
  return t, shape
end


-- Like array(), and also check the number of dimensions and fixed sizes:
-- dims is a list in which a number fixes that size and false leaves it free.
function M.checked(x, fname, argn, name, dims, what)
  local t, shape = M.array(x, fname, argn, name, what)
  local ok = #shape == #dims
  for i = 1, #dims do
    if ok and dims[i] and shape[i] ~= dims[i] then ok = false end
  end
  for i = 1, #shape do
    if shape[i] == 0 then ok = false end
  end
  if not ok then
    error(string.format("%s: %s expected %s, got shape %s",
      fname, subject(argn, name), what, M.shape_string(shape)), 0)
  end
  return t, shape
end


function M.flatten(t, out)
  out = out or {}
  if type(t) == "number" then
    out[#out + 1] = t
  else
    for i = 1, #t do M.flatten(t[i], out) end
  end
  return out
end


function M.range(values)
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(values) do
    if v == v then
      if v < lo then lo = v end
      if v > hi then hi = v end
    end
  end
  return lo, hi
end


-- Palettes as color stops in [0, 1]: viridis, and the ColorBrewer RdBu
-- (red for negative, blue for positive) and Blues schemes.
M.palettes = {
  viridis = { { 0, "#440154" }, { 0.25, "#3b528b" }, { 0.5, "#21918c" },
    { 0.75, "#5ec962" }, { 1, "#fde725" } },
  rdbu = { { 0, "#b2182b" }, { 1 / 6, "#ef8a62" }, { 2 / 6, "#fddbc7" },
    { 0.5, "#f7f7f7" }, { 4 / 6, "#d1e5f0" }, { 5 / 6, "#67a9cf" }, { 1, "#2166ac" } },
  blues = { { 0, "#ffffff" }, { 0.5, "#6baed6" }, { 1, "#08306b" } },
}


function M.palette_command(name, fname)
  local stops = M.palettes[name]
  if not stops then
    error(string.format("%s: option palette expected viridis, rdbu or blues, got %s",
      fname, tostring(name)), 0)
  end
  local parts = {}
  for i, stop in ipairs(stops) do
    parts[i] = string.format("%g '%s'", stop[1], stop[2])
  end
  return "set palette defined (" .. table.concat(parts, ", ") .. ")"
end


local function hex_rgb(hex)
  return tonumber(hex:sub(2, 3), 16), tonumber(hex:sub(4, 5), 16), tonumber(hex:sub(6, 7), 16)
end


-- Map t in [0, 1] through a palette to an integer 0xRRGGBB.
function M.palette_color(name, t)
  local stops = M.palettes[name]
  if t ~= t then t = 0 end
  t = math.max(0, math.min(1, t))
  for i = 2, #stops do
    if t <= stops[i][1] then
      local a, b = stops[i - 1], stops[i]
      local f = (t - a[1]) / (b[1] - a[1])
      local r1, g1, b1 = hex_rgb(a[2])
      local r2, g2, b2 = hex_rgb(b[2])
      local function mix(u, v) return math.floor(u + (v - u) * f + 0.5) end
      return mix(r1, r2) * 65536 + mix(g1, g2) * 256 + mix(b1, b2)
    end
  end
  return tonumber(stops[#stops][2]:sub(2), 16)
end


-- CSS color names that the exercises and plotting libraries use most.
M.color_names = {
  black = 0x000000, white = 0xffffff, gray = 0x808080, grey = 0x808080,
  lightgray = 0xd3d3d3, lightgrey = 0xd3d3d3, darkgray = 0xa9a9a9,
  red = 0xff0000, darkred = 0x8b0000, orange = 0xffa500, gold = 0xffd700,
  yellow = 0xffff00, green = 0x008000, limegreen = 0x32cd32, lime = 0x00ff00,
  darkgreen = 0x006400, olive = 0x808000, teal = 0x008080, cyan = 0x00ffff,
  blue = 0x0000ff, lightblue = 0xadd8e6, darkblue = 0x00008b, navy = 0x000080,
  royalblue = 0x4169e1, steelblue = 0x4682b4, purple = 0x800080,
  magenta = 0xff00ff, violet = 0xee82ee, pink = 0xffc0cb, brown = 0xa52a2a,
}


-- Convert a color name or "#rrggbb" to an integer 0xRRGGBB.
function M.color(c, fname, what)
  if type(c) == "number" and c >= 0 and c <= 0xffffff and c == math.floor(c) then
    return c
  end
  if type(c) == "string" then
    local hex = c:match("^#(%x%x%x%x%x%x)$")
    if hex then return tonumber(hex, 16) end
    local named = M.color_names[c:lower()]
    if named then return named end
  end
  error(string.format("%s: %s expected a color name (such as \"blue\") or \"#rrggbb\", got %s",
    fname, what, type(c) == "string" and '"' .. c .. '"' or type(c)), 0)
end


-- Build per-instance, per-feature colors (integers 0xRRGGBB) from a colors
-- option. It may be nil (the default color), a color string, a list of F
-- colors, or a list of I entries that are each a color or a list of F
-- colors. Numbers of shape [F] or [I, F] are mapped through viridis over
-- their range, or over `range` when given.
function M.feature_colors(spec, n_instances, n_features, fname, name, default, range)
  local function fill(get)
    local out = {}
    for i = 1, n_instances do
      out[i] = {}
      for f = 1, n_features do out[i][f] = get(i, f) end
    end
    return out
  end
  if spec == nil then
    local c = default or 0
    return fill(function() return c end)
  end
  if type(spec) == "string" then
    local c = M.color(spec, fname, "option " .. name)
    return fill(function() return c end)
  end
  local what = string.format("a color, a list of %d colors, or numbers of shape [%d] or [%d, %d]",
    n_features, n_features, n_instances, n_features)
  if type(spec) == "table" and not is_tensor(spec) then
    local first = spec[1]
    if type(first) == "string" then
      if #spec ~= n_features then
        error(string.format("%s: option %s expected %s, got a list of %d colors",
          fname, name, what, #spec), 0)
      end
      local colors = {}
      for f = 1, n_features do colors[f] = M.color(spec[f], fname, "option " .. name) end
      return fill(function(_, f) return colors[f] end)
    end
    if type(first) == "table" and type(first[1]) == "string" or
        type(first) == "string" and #spec == n_instances and n_instances ~= n_features then
      if #spec ~= n_instances then
        error(string.format("%s: option %s expected %s, got a list of %d color lists",
          fname, name, what, #spec), 0)
      end
      return fill(function(i, f)
        local c = spec[i]
        if type(c) == "table" then
          if #c ~= n_features then
            error(string.format("%s: option %s expected %d colors for instance %d, got %d",
              fname, name, n_features, i, #c), 0)
          end
          c = c[f]
        end
        return M.color(c, fname, "option " .. name)
      end)
    end
  end
  local t, shape = M.array(spec, fname, "", name, what)
  local values
  if #shape == 1 and shape[1] == n_features then
    values = fill(function(_, f) return t[f] end)
  elseif #shape == 2 and shape[2] == n_features and (shape[1] == n_instances or shape[1] == 1) then
    values = fill(function(i, f) return t[shape[1] == 1 and 1 or i][f] end)
  else
    error(string.format("%s: option %s expected %s, got shape %s",
      fname, name, what, M.shape_string(shape)), 0)
  end
  local lo, hi
  if range then
    lo, hi = range[1], range[2]
  else
    lo, hi = M.range(M.flatten(values))
  end
  return fill(function(i, f)
    local v = values[i][f]
    local s = hi > lo and (v - lo) / (hi - lo) or 0.5
    return M.palette_color("viridis", s)
  end)
end


-- Plain-Lua geometry of one instance's weights W [H][F].

-- Column norms ||W_f||.
function M.column_norms(W)
  local H, F = #W, #W[1]
  local norms = {}
  for f = 1, F do
    local s = 0
    for h = 1, H do s = s + W[h][f] * W[h][f] end
    norms[f] = math.sqrt(s)
  end
  return norms
end


-- Gram matrix G[f][g] = W_f . W_g.
function M.gram(W)
  local H, F = #W, #W[1]
  local G = {}
  for f = 1, F do
    G[f] = {}
    for g = 1, F do
      local s = 0
      for h = 1, H do s = s + W[h][f] * W[h][g] end
      G[f][g] = s
    end
  end
  return G
end


-- Superposition of each feature: sum over g ~= f of (W_f/||W_f|| . W_g)^2.
function M.superposition(G)
  local F = #G
  local out = {}
  for f = 1, F do
    local norm = math.sqrt(math.max(G[f][f], 0)) + 1e-8
    local s = 0
    for g = 1, F do
      if g ~= f then s = s + (G[f][g] / norm) ^ 2 end
    end
    out[f] = s
  end
  return out
end


-- Feature dimensionality ||W_f||^2 / sum over g of (W_f/||W_f|| . W_g)^2,
-- the quantity of "Toy Models of Superposition" (Elhage et al., 2022).
function M.dimensionality(G)
  local F = #G
  local out = {}
  for f = 1, F do
    local norm = math.sqrt(math.max(G[f][f], 0)) + 1e-8
    local s = 0
    for g = 1, F do s = s + (G[f][g] / norm) ^ 2 end
    out[f] = s > 0 and G[f][f] / s or 0
  end
  return out
end

return M
