-- Generic plots: lines, histograms and heatmaps.

local gp = require "sae.plot.gnuplot"
local data = require "sae.plot.data"
local figure = require "sae.plot.figure"

local num, quote = gp.num, gp.quote
local start, finish, labels = figure.start, figure.finish, figure.labels
local nice_tic, heatmap_block = figure.nice_tic, figure.heatmap_block
local STATIC, SERIES_COLORS = figure.STATIC, figure.SERIES_COLORS

local plot = {}


-- Horizontal reference lines from opts.hlines: numbers or {y =, title =}.
local function hlines(s, list)
  for _, h in ipairs(list or {}) do
    local y = type(h) == "table" and h.y or h
    s:add("set arrow from graph 0,first %s to graph 1,first %s nohead lc rgb '#c03030' dt 2 lw 1.5",
      num(y), num(y))
    if type(h) == "table" and h.title then
      s:add("set label %s at graph 0.01,first %s offset 0,0.6 tc rgb '#c03030'",
        quote(h.title), num(y))
    end
  end
end


-- Series from y: [N], [S, N] or a list of such tables of different lengths.
local function series_list(fname, y)
  local what = "numbers of shape [N] or [series, N], or a list of series"
  if type(y) == "table" and not data.is_tensor(y) and type(y[1]) ~= "number" and #y > 0 then
    local list = {}
    for k, item in ipairs(y) do
      list[k] = data.checked(item, fname, 1, string.format("y[%d]", k), { false }, what)
    end
    return list
  end
  local t, shape = data.array(y, fname, 1, "y", what)
  if #shape == 1 and shape[1] > 0 then return { t } end
  if #shape == 2 and shape[1] > 0 and shape[2] > 0 then return t end
  error(string.format("%s: argument #1 (y) expected %s, got shape %s",
    fname, what, data.shape_string(shape)), 0)
end


--- Plot one or more lines.
-- y: [N], [series, N], or a list of series. opts: x (shared [N] or one list
-- per series), names (legend), style ("lines", "linespoints", "points"),
-- xlabel, ylabel, logx, logy, hlines (numbers or {y =, title =}), title.
function plot.line(y, opts)
  local fname = "sae.plot.line"
  local options, format, s = start(fname, opts, STATIC)
  local series = series_list(fname, y)
  local xs = options.x
  if xs ~= nil then
    local xt = data.array(xs, fname, "", "x", "numbers")
    xs = type(xt[1]) == "number" and { xt } or xt
  end
  s:add("reset")
  if options.title then s:add("set title %s", quote(options.title)) end
  labels(s, options)
  if options.logx then s:add("set logscale x") end
  if options.logy then s:add("set logscale y") end
  s:add("set grid lc rgb '#e8e8e8'")
  hlines(s, options.hlines)
  if not options.names then s:add("unset key") end
  local style = options.style or "lines"
  local parts = {}
  for k, ys in ipairs(series) do
    local xk = xs and (xs[k] or xs[1])
    if xk and #xk ~= #ys then
      error(string.format("%s: option x expected %d values to match series %d, got %d",
        fname, #ys, k, #xk), 0)
    end
    local rows = {}
    for n = 1, #ys do rows[n] = { xk and xk[n] or n, ys[n] } end
    local title = options.names and options.names[k] and quote(options.names[k]) or "''"
    parts[k] = string.format("%s using 1:2 with %s lw 2 pt 7 ps 0.6 lc rgb '#%06x' title %s",
      s:data(rows), style, SERIES_COLORS[(k - 1) % #SERIES_COLORS + 1], title)
  end
  s:add("plot " .. table.concat(parts, ", "))
  return finish(fname, s, format, 800, 480, options)
end


--- Plot a histogram of all values of x (any shape).
-- opts: bins (default 50), range {lo, hi}, logy, xlabel, ylabel, title.
function plot.hist(x, opts)
  local fname = "sae.plot.hist"
  local options, format, s = start(fname, opts, STATIC)
  local t = data.array(x, fname, 1, "x", "a tensor or a table of numbers")
  local values = data.flatten(t)
  if #values == 0 then
    error(string.format("%s: argument #1 (x) expected at least one value, got none", fname), 0)
  end
  local bins = options.bins or 50
  if type(bins) ~= "number" or bins < 1 or bins ~= math.floor(bins) then
    error(string.format("%s: option bins expected a positive integer, got %s", fname, tostring(bins)), 0)
  end
  local lo, hi = data.range(values)
  if options.range then lo, hi = options.range[1], options.range[2] end
  if hi <= lo then lo, hi = lo - 0.5, hi + 0.5 end
  local width = (hi - lo) / bins
  local counts = {}
  for b = 1, bins do counts[b] = 0 end
  for _, v in ipairs(values) do
    if v >= lo and v <= hi then
      local b = math.min(bins, math.floor((v - lo) / width) + 1)
      counts[b] = counts[b] + 1
    end
  end
  local rows = {}
  for b = 1, bins do rows[b] = { lo + (b - 0.5) * width, counts[b] } end
  s:add("reset")
  s:add("unset key")
  if options.title then s:add("set title %s", quote(options.title)) end
  labels(s, { xlabel = options.xlabel, ylabel = options.ylabel or "count" })
  if options.logy then s:add("set logscale y") end
  s:add("set boxwidth %s absolute", num(width))
  s:add("set style fill solid 0.8 border lc rgb '#ffffff'")
  s:add("set grid ytics lc rgb '#e8e8e8'")
  s:add("plot %s using 1:2 with boxes lc rgb '#1f77b4'", s:data(rows))
  return finish(fname, s, format, 800, 480, options)
end


--- Show a matrix [rows, columns] as a heatmap (row 1 at the top).
-- opts: palette ("viridis", "rdbu", "blues"; default rdbu with a range
-- symmetric around 0 when there are negative values, else viridis), range
-- {lo, hi}, xlabel, ylabel, title, square (default true).
function plot.imshow(M, opts)
  local fname = "sae.plot.imshow"
  local options, format, s = start(fname, opts, STATIC)
  local t, shape = data.checked(M, fname, 1, "M", { false, false }, "a tensor of shape [rows, columns]")
  local lo, hi = data.range(data.flatten(t))
  local palette = options.palette
  if palette == nil then palette = lo < 0 and "rdbu" or "viridis" end
  if options.range then
    lo, hi = options.range[1], options.range[2]
  elseif palette == "rdbu" then
    local m = math.max(math.abs(lo), math.abs(hi))
    lo, hi = -m, m
  end
  if hi <= lo then hi = lo + 1 end
  s:add("reset")
  s:add("unset key")
  if options.title then s:add("set title %s", quote(options.title)) end
  labels(s, options)
  if options.square ~= false then s:add("set size ratio -1") end
  s:add(data.palette_command(palette, fname))
  s:add("set cbrange [%s:%s]", num(lo), num(hi))
  s:add("set xrange [0.5:%s]", num(shape[2] + 0.5))
  s:add("set yrange [%s:0.5]", num(shape[1] + 0.5))
  s:add("set xtics %d scale 0", math.max(1, nice_tic(shape[2] / 3)))
  s:add("set ytics %d scale 0", math.max(1, nice_tic(shape[1] / 3)))
  s:add("plot %s matrix using ($1+1):($2+1):3 with image", heatmap_block(s, t))
  return finish(fname, s, format, options.square == false and 800 or 640, 560, options)
end

return plot
