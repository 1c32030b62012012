-- Shared parts of the plot functions: option handling, the multiplot
-- layout, tics and the per-instance feature probabilities.

local gp = require "sae.plot.gnuplot"
local data = require "sae.plot.data"

local M = {}
local quote = gp.quote

-- Return the gnuplot binary used when a call passes no gnuplot option;
-- sae.plot replaces this to read its plot.gnuplot field.
function M.default_binary()
  return gp.binary
end


M.STATIC = { png = true, svg = true }
M.ANIMATED = { gif = true }


function M.start(fname, opts, formats)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error(string.format("%s: options expected a table, got %s", fname, type(opts)), 0)
  end
  if type(opts.file) ~= "string" or opts.file == "" then
    error(string.format("%s: option file expected an output path, got %s",
      fname, type(opts.file) == "string" and "an empty string" or type(opts.file)), 0)
  end
  local options = {}
  for k, v in pairs(opts) do options[k] = v end
  options.gnuplot = options.gnuplot or M.default_binary()
  local format = gp.format(fname, options, formats)
  return options, format, gp.script()
end


function M.finish(fname, script, format, width, height, opts)
  local header = gp.terminal(format, opts.width or width, opts.height or height, opts)
  return gp.run(fname, script, header, opts)
end


function M.multiplot(s, rows, cols, title)
  if title then
    s:add("set multiplot layout %d,%d title %s font ',13'", rows, cols, quote(title))
  else
    s:add("set multiplot layout %d,%d", rows, cols)
  end
end


function M.labels(s, opts)
  if opts.xlabel then s:add("set xlabel %s", quote(opts.xlabel)) end
  if opts.ylabel then s:add("set ylabel %s", quote(opts.ylabel)) end
end


function M.subplot_title(opts, k, default)
  local titles = opts.subplot_titles
  if titles and titles[k] ~= nil then return tostring(titles[k]) end
  return default
end


function M.max_abs(values, m)
  for _, v in ipairs(data.flatten(values)) do
    if v == v and math.abs(v) > m then m = math.abs(v) end
  end
  return m
end


function M.nice_tic(limit)
  local raw = limit / 2
  local p = 10 ^ math.floor(math.log(raw, 10))
  for _, m in ipairs({ 1, 2, 5, 10 }) do
    if m * p >= raw then return m * p end
  end
  return raw
end


function M.heatmap_block(s, M)
  local rows = {}
  for r = 1, #M do rows[r] = M[r] end
  return s:data(rows)
end


-- Per-instance feature probabilities from a number, [I] or [I, F] (the
-- first column is used).
function M.instance_probabilities(fname, p, I)
  if type(p) == "number" then
    local out = {}
    for i = 1, I do out[i] = p end
    return out
  end
  local what = string.format("numbers of shape [%d] or [%d, features]", I, I)
  local t, shape = data.array(p, fname, "", "feature_probability", what)
  if shape[1] ~= I or #shape > 2 then
    error(string.format("%s: option feature_probability expected %s, got shape %s",
      fname, what, data.shape_string(shape)), 0)
  end
  local out = {}
  for i = 1, I do out[i] = #shape == 2 and t[i][1] or t[i] end
  return out
end


M.SERIES_COLORS = { 0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b,
  0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf }

return M
