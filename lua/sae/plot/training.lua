-- Plots of sparse autoencoder training: the fraction of steps each
-- neuron fires, and hidden states against their reconstructions.

local gp = require "sae.plot.gnuplot"
local data = require "sae.plot.data"
local figure = require "sae.plot.figure"

local num, quote = gp.num, gp.quote
local start, finish, multiplot = figure.start, figure.finish, figure.multiplot
local subplot_title, nice_tic = figure.subplot_title, figure.nice_tic
local instance_probabilities = figure.instance_probabilities
local STATIC, SERIES_COLORS = figure.STATIC, figure.SERIES_COLORS

local plot = {}


--- Plot the fraction of steps each neuron fired, per instance, over training.
-- frac_active: [logs, instances, neurons]. opts: x (training step of each
-- log, default 1..logs), feature_probability (number or [I], drawn as a
-- dashed horizontal line), logy (default true), subplot_titles, columns,
-- title.
function plot.frac_active_line(frac_active, opts)
  local fname = "sae.plot.frac_active_line"
  local options, format, s = start(fname, opts, STATIC)
  local t, shape = data.checked(frac_active, fname, 1, "frac_active", { false, false, false },
    "a tensor of shape [logs, instances, neurons]")
  local T, I, N = shape[1], shape[2], shape[3]
  local x = options.x and data.checked(options.x, fname, "", "x", { T },
    string.format("%d step numbers", T))
  local p = options.feature_probability and
      instance_probabilities(fname, options.feature_probability, I)
  local cols = math.min(I, options.columns or 4)
  local grid_rows = math.ceil(I / cols)
  local x_max = x and select(2, data.range(x)) or T
  -- One y range for every panel, from the smallest positive fraction
  -- (rounded down to a power of ten), so panels compare at a glance.
  local y_min = 1
  for k = 1, T do
    for i = 1, I do
      for n = 1, N do
        local v = t[k][i][n]
        if v > 0 and v < y_min then y_min = v end
      end
    end
  end
  if p then
    for i = 1, I do
      if p[i] > 0 and p[i] < y_min then y_min = p[i] end
    end
  end
  y_min = 10 ^ math.floor(math.log(y_min, 10))
  multiplot(s, grid_rows, cols, options.title)
  for i = 1, I do
    s:add("reset")
    s:add("unset key")
    s:add("set title %s", quote(subplot_title(options, i, "instance " .. i)))
    s:add("set grid lc rgb '#e8e8e8'")
    -- Two or three x tics, so that step numbers stay readable in small panels.
    if x_max > 0 then s:add("set xtics %s", num(nice_tic(x_max))) end
    if options.logy ~= false then
      s:add("set logscale y")
      s:add("set yrange [%s:1.2]", num(y_min))
    else
      s:add("set yrange [0:1.05]")
    end
    s:add("set xlabel 'step'")
    if (i - 1) % cols == 0 then s:add("set ylabel 'fraction active'") end
    if p then
      s:add("set arrow from graph 0,first %s to graph 1,first %s nohead front lc rgb '#c03030' dt 2 lw 2",
        num(p[i]), num(p[i]))
    end
    local parts = {}
    for n = 1, N do
      local rows = {}
      for k = 1, T do
        local v = t[k][i][n]
        if options.logy ~= false and v <= 0 then v = 0 / 0 end
        rows[k] = { x and x[k] or k, v }
      end
      parts[n] = string.format("%s using 1:2 with lines lw 1.5 lc rgb '#%06x'", s:data(rows),
        SERIES_COLORS[(n - 1) % #SERIES_COLORS + 1])
    end
    s:add("plot " .. table.concat(parts, ", "))
  end
  for _ = I + 1, grid_rows * cols do s:add("set multiplot next") end
  return finish(fname, s, format, 300 * cols + 40, 260 * grid_rows + 50, options)
end


--- Plot hidden states of a batch and their SAE reconstructions.
-- h, h_reconstructed: [batch, instances, d] with d >= 2; opts.dims picks
-- the two dimensions shown (default {1, 2}). One panel per instance:
-- inputs in blue, reconstructions in red, each joined by a gray segment.
function plot.reconstruction(h, h_reconstructed, opts)
  local fname = "sae.plot.reconstruction"
  local options, format, s = start(fname, opts, STATIC)
  local what = "a tensor of shape [batch, instances, dims]"
  local a, sa = data.checked(h, fname, 1, "h", { false, false, false }, what)
  local b, sb = data.checked(h_reconstructed, fname, 2, "h_reconstructed", { false, false, false }, what)
  if sa[1] ~= sb[1] or sa[2] ~= sb[2] or sa[3] ~= sb[3] then
    error(string.format("%s: argument #2 (h_reconstructed) expected the shape of h %s, got %s",
      fname, data.shape_string(sa), data.shape_string(sb)), 0)
  end
  local B, I, D = sa[1], sa[2], sa[3]
  local dims = options.dims or { 1, 2 }
  for _, d in ipairs(dims) do
    if type(d) ~= "number" or d < 1 or d > D or d ~= math.floor(d) then
      error(string.format("%s: option dims expected two indices in [1, %d], got %s",
        fname, D, tostring(d)), 0)
    end
  end
  local dx, dy = dims[1], dims[2]
  local limit = 0
  for bb = 1, B do
    for i = 1, I do
      limit = math.max(limit, math.abs(a[bb][i][dx]), math.abs(a[bb][i][dy]),
        math.abs(b[bb][i][dx]), math.abs(b[bb][i][dy]))
    end
  end
  limit = (limit > 0 and limit or 1) * 1.1
  local cols = math.min(I, options.columns or 8)
  local grid_rows = math.ceil(I / cols)
  multiplot(s, grid_rows, cols, options.title)
  for i = 1, I do
    local links, inputs, outputs = {}, {}, {}
    for bb = 1, B do
      inputs[bb] = { a[bb][i][dx], a[bb][i][dy] }
      outputs[bb] = { b[bb][i][dx], b[bb][i][dy] }
      links[bb] = { a[bb][i][dx], a[bb][i][dy],
        b[bb][i][dx] - a[bb][i][dx], b[bb][i][dy] - a[bb][i][dy] }
    end
    s:add("reset")
    s:add("set size square")
    s:add("set xrange [%s:%s]", num(-limit), num(limit))
    s:add("set yrange [%s:%s]", num(-limit), num(limit))
    s:add("set grid lc rgb '#e8e8e8'")
    s:add("set title %s", quote(subplot_title(options, i, "instance " .. i)))
    s:add("unset key")
    if i == 1 then
      s:add("set label 'blue: h, red: reconstruction' at screen 0.01,screen 0.02 left tc rgb '#505050'")
    end
    s:add("plot %s using 1:2:3:4 with vectors nohead lc rgb '#c8c8c8', "
      .. "%s using 1:2 with points pt 7 ps 0.5 lc rgb '#1f77b4', "
      .. "%s using 1:2 with points pt 6 ps 0.5 lc rgb '#d62728'",
      s:data(links), s:data(inputs), s:data(outputs))
  end
  for _ = I + 1, grid_rows * cols do s:add("set multiplot next") end
  return finish(fname, s, format, 260 * cols + 20, 260 * grid_rows + 50, options)
end

return plot
