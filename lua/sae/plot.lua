-- Plots of toy models and sparse autoencoders, drawn with gnuplot.
--
-- Every function takes sae.Tensor values or nested Lua tables of numbers
-- and an options table, writes one figure to opts.file and returns that
-- path. The format is opts.format ("png" or "svg"), else the file's
-- extension, else PNG (pngcairo when gnuplot has it, else the libgd png
-- terminal). Animations are GIF. Misuse and failures raise an error that
-- names the function: bad arguments, gnuplot missing from PATH (the
-- binary is opts.gnuplot, default plot.gnuplot = "gnuplot"), or gnuplot
-- failing (its message is included).
--
-- Common options: file (required), format, title, width and height in
-- pixels, font ("sans,10"), gnuplot (the binary), keep_script (keep the
-- generated script and print its path on stderr), and enhanced. Enhanced
-- turns on gnuplot's enhanced text markup, which is off by default so
-- that _ and ^ print as typed.

local gp = require "sae.plot.gnuplot"
local data = require "sae.plot.data"
local figure = require "sae.plot.figure"

local plot = {}

-- The gnuplot binary used when a call passes no gnuplot option.
plot.gnuplot = "gnuplot"
figure.default_binary = function() return plot.gnuplot end

local num, quote = gp.num, gp.quote
local start, finish, multiplot = figure.start, figure.finish, figure.multiplot
local subplot_title, nice_tic, max_abs = figure.subplot_title, figure.nice_tic, figure.max_abs
local heatmap_block, instance_probabilities = figure.heatmap_block, figure.instance_probabilities
local STATIC, ANIMATED = figure.STATIC, figure.ANIMATED

--------------------------------------------------------------------------
-- Feature directions in two dimensions.

-- Collect the rows of panels: W is one tensor [I, 2, F] (or [2, F]) or a
-- list of them. Returns a list of {values = [I][2][F], I =, F =}.
local function rows_2d(fname, W, argn)
  local what = "a tensor of shape [instances, 2, features] or a list of them"
  local list
  if type(W) == "table" and not data.is_tensor(W) and
      (data.is_tensor(W[1]) or (type(W[1]) == "table" and type(W[1][1]) == "table"
        and type(W[1][1][1]) == "table")) then
    list = W
  else
    list = { W }
  end
  if #list == 0 then
    error(string.format("%s: argument #%d (W) expected %s, got an empty list", fname, argn, what), 0)
  end
  local rows = {}
  for r, item in ipairs(list) do
    local name = #list > 1 and string.format("W[%d]", r) or "W"
    local t, shape = data.array(item, fname, argn, name, what)
    if #shape == 2 then t, shape = { t }, { 1, shape[1], shape[2] } end
    if #shape ~= 3 or shape[2] ~= 2 or shape[1] == 0 or shape[3] == 0 then
      error(string.format("%s: argument #%d (%s) expected %s, got shape %s",
        fname, argn, name, what, data.shape_string(shape)), 0)
    end
    rows[r] = { values = t, I = shape[1], F = shape[3] }
  end
  return rows
end


-- Hidden states [B, I, 2] for the scatter under the features of a row.
local function hidden_points(fname, hidden, I)
  local what = string.format("a tensor of shape [batch, %d, 2]", I)
  local t = data.checked(hidden, fname, "", "hidden", { false, I, 2 }, what)
  local per_instance = {}
  for i = 1, I do
    local pts = {}
    for b = 1, #t do pts[b] = { t[b][i][1], t[b][i][2] } end
    per_instance[i] = pts
  end
  return per_instance
end


-- Emit the panels of one frame: rows of instances, features as points
-- joined to the origin. `frame` has rows, colors (per row, per instance,
-- per feature) and optional hidden scatter for the first row.
local function draw_2d_frame(s, frame, layout, opts)
  multiplot(s, layout.rows, layout.cols, frame.title)
  local k = 0
  for r, row in ipairs(frame.rows) do
    local limit = layout.limits[r]
    for i = 1, row.I do
      k = k + 1
      s:add("reset")
      s:add("unset key")
      s:add("set size square")
      s:add("set xrange [%s:%s]", num(-limit), num(limit))
      s:add("set yrange [%s:%s]", num(-limit), num(limit))
      s:add("set xtics %s", num(layout.tic[r]))
      s:add("set ytics %s", num(layout.tic[r]))
      s:add("set grid lc rgb '#e0e0e0'")
      s:add("set xzeroaxis lc rgb '#a0a0a0'")
      s:add("set yzeroaxis lc rgb '#a0a0a0'")
      local title = subplot_title(frame, k, nil)
      if title then s:add("set title %s", quote(title)) end
      if i == 1 and frame.row_titles and frame.row_titles[r] then
        s:add("set ylabel %s", quote(frame.row_titles[r]))
      end
      local pts = {}
      for f = 1, row.F do
        pts[f] = { row.values[i][1][f], row.values[i][2][f], frame.colors[r][i][f] }
      end
      local block = s:data(pts)
      local parts = {}
      if frame.hidden and frame.hidden[r] then
        local hb = s:data(frame.hidden[r][i])
        parts[#parts + 1] = string.format("%s using 1:2 with points pt 7 ps 0.4 lc rgb '#9a9a9a'", hb)
      end
      if frame.lines then
        parts[#parts + 1] = string.format(
          "%s using (0):(0):1:2:3 with vectors nohead lw 1.5 lc rgb variable", block)
      end
      parts[#parts + 1] = string.format("%s using 1:2:3 with points pt 7 ps %s lc rgb variable",
        block, num(frame.point_size))
      s:add("plot " .. table.concat(parts, ", "))
    end
    for _ = row.I + 1, layout.cols do s:add("set multiplot next") end
  end
  s:add("unset multiplot")
end


local function layout_2d(rows_list, opts)
  local cols = 0
  for _, row in ipairs(rows_list[1]) do cols = math.max(cols, row.I) end
  local limits, tics = {}, {}
  local global = 0
  for _, rows in ipairs(rows_list) do
    for r, row in ipairs(rows) do
      local m = max_abs(row.values, 0)
      if rows.hidden and rows.hidden[r] then m = max_abs(rows.hidden[r], m) end
      limits[r] = math.max(limits[r] or 0, m)
      global = math.max(global, m)
    end
  end
  for r in ipairs(limits) do
    local m = opts.different_limits and limits[r] or global
    if opts.limit then m = opts.limit end
    if m == 0 then m = 1 end
    limits[r] = m * 1.15
    tics[r] = nice_tic(limits[r])
  end
  return { rows = #rows_list[1], cols = cols, limits = limits, tic = tics }
end


local function row_colors(fname, opts, rows, frame_colors)
  local colors = {}
  for r, row in ipairs(rows) do
    local spec = frame_colors
    if spec == nil and opts.row_colors then spec = opts.row_colors[r] end
    if spec == nil then spec = opts.colors end
    colors[r] = data.feature_colors(spec, row.I, row.F, fname, "colors", 0x1f3b73,
      opts.color_range)
  end
  return colors
end


--- Plot feature directions in 2-D, one panel per instance.
-- W: [instances, 2, features] (or [2, features]), or a list of such tensors
-- for several rows of panels (say encoder and decoder). Each feature's
-- column is a point joined to the origin.
-- opts: colors (a color, a list of colors per feature, per-instance lists,
-- or numbers [F] or [I, F] such as importance, mapped through viridis),
-- row_colors (one colors value per row), color_range {lo, hi},
-- subplot_titles (row-major over all panels), row_titles, hidden (hidden
-- states [batch, instances, 2] drawn as a gray scatter under the first row),
-- lines (false: points only, for plotting hidden states themselves),
-- different_limits (per-row axis limits), limit, panel_size (pixels).
function plot.features_in_2d(W, opts)
  local fname = "sae.plot.features_in_2d"
  local options, format, s = start(fname, opts, STATIC)
  local rows = rows_2d(fname, W, 1)
  if options.hidden ~= nil then
    rows.hidden = { hidden_points(fname, options.hidden, rows[1].I) }
  end
  local layout = layout_2d({ rows }, options)
  local frame = {
    rows = rows, colors = row_colors(fname, options, rows), hidden = rows.hidden,
    title = options.title, subplot_titles = options.subplot_titles,
    row_titles = options.row_titles, lines = options.lines ~= false,
    point_size = options.point_size or (options.lines == false and 0.6 or 1.2),
  }
  draw_2d_frame(s, frame, layout, options)
  local panel = options.panel_size or 260
  return finish(fname, s, format, panel * layout.cols + 20,
    panel * layout.rows + (options.title and 40 or 10), options)
end


--- Write an animated GIF of 2-D feature directions over training.
-- frames: a list; each frame is W (as for features_in_2d: one tensor or a
-- list of rows) or a table {rows = {...} or W = ..., colors = ..., title = ...}.
-- opts: as features_in_2d, plus titles (one per frame), frame_colors (one
-- colors value per frame, such as the neuron colors of a training log),
-- delay (hundredths of a second per frame, default 10). Axis limits are
-- fixed over all frames.
function plot.animate_features_in_2d(frames, opts)
  local fname = "sae.plot.animate_features_in_2d"
  local options, format, s = start(fname, opts, ANIMATED)
  if type(frames) ~= "table" or data.is_tensor(frames) or #frames == 0 then
    error(string.format("%s: argument #1 (frames) expected a nonempty list of frames, got %s",
      fname, data.is_tensor(frames) and "a tensor" or type(frames) == "table" and "an empty table"
        or type(frames)), 0)
  end
  local all = {}
  for k, frame in ipairs(frames) do
    local W, colors, title = frame, nil, nil
    if type(frame) == "table" and not data.is_tensor(frame) and (frame.rows or frame.W) then
      W, colors, title = frame.rows or frame.W, frame.colors, frame.title
    end
    local rows = rows_2d(fname, W, 1)
    if k > 1 and (#rows ~= #all[1] or rows[1].I ~= all[1][1].I) then
      error(string.format("%s: argument #1 (frames) expected every frame to have %d rows of %d "
        .. "instances like frame 1, got %d rows of %d in frame %d",
        fname, #all[1], all[1][1].I, #rows, rows[1].I, k), 0)
    end
    if colors == nil and options.frame_colors then colors = options.frame_colors[k] end
    rows.colors = row_colors(fname, options, rows, colors)
    rows.title = title or (options.titles and options.titles[k]) or options.title
    all[k] = rows
  end
  local layout = layout_2d(all, options)
  for _, rows in ipairs(all) do
    draw_2d_frame(s, {
      rows = rows, colors = rows.colors, title = rows.title,
      subplot_titles = options.subplot_titles, row_titles = options.row_titles,
      lines = options.lines ~= false, point_size = options.point_size or 1.2,
    }, layout, options)
  end
  local panel = options.panel_size or 220
  return finish(fname, s, format, panel * layout.cols + 20, panel * layout.rows + 40, options)
end


--------------------------------------------------------------------------
-- Features in N dimensions.

local function instances_3d(fname, W, argn, name, what)
  local t, shape = data.checked(W, fname, argn, name, { false, false, false }, what)
  return t, shape[1], shape[2], shape[3]
end


--- Plot WᵀW and feature norms per instance, or neurons as stacked bars.
-- W: [instances, hidden, features].
-- Default mode, per instance: a WᵀW heatmap (red negative, blue positive,
-- range [-1, 1]) above horizontal bars of the feature norms ||W_i||,
-- colored by superposition sum over j ~= i of (Ŵ_i·W_j)² (viridis over
-- [0, 1]; values above 1 take the top color).
-- opts.neuron = true: per instance, one stacked bar per neuron made of
-- W[neuron, feature] segments (positive up, negative down), colored per
-- feature by opts.colors (numbers [F] such as importance, default the
-- feature index) or a color list.
-- opts: title, subplot_titles, columns (instances per row of panels,
-- default min(instances, 10)), panel_size.
function plot.features_in_Nd(W, opts)
  local fname = "sae.plot.features_in_Nd"
  local options, format, s = start(fname, opts, STATIC)
  local t, I, H, F = instances_3d(fname, W, 1, "W", "a tensor of shape [instances, hidden, features]")
  local cols = math.min(I, options.columns or 10)
  local grid_rows = math.ceil(I / cols)
  local panel = options.panel_size or 220

  if options.neuron then
    local colors = options.colors
    if colors == nil then
      colors = {}
      for f = 1, F do colors[f] = F - f end
    end
    local fcolors = data.feature_colors(colors, I, F, fname, "colors", nil, options.color_range)
    multiplot(s, grid_rows, cols, options.title)
    for i = 1, I do
      local boxes = {}
      local lo, hi = 0, 0
      for h = 1, H do
        local up, down = 0, 0
        for f = 1, F do
          local v = t[i][h][f]
          local a, b
          if v >= 0 then a, b, up = up, up + v, up + v else a, b, down = down + v, down, down + v end
          if v ~= 0 then
            boxes[#boxes + 1] = { h, (a + b) / 2, 0.4, (b - a) / 2, fcolors[i][f] }
          end
        end
        hi, lo = math.max(hi, up), math.min(lo, down)
      end
      s:add("reset")
      s:add("unset key")
      s:add("set title %s", quote(subplot_title(options, i, "instance " .. i)))
      s:add("set xrange [0.4:%s]", num(H + 0.6))
      local pad = 0.05 * math.max(hi - lo, 1e-6)
      s:add("set yrange [%s:%s]", num(lo - pad), num(hi + pad))
      s:add("set xtics %d scale 0", H > 20 and 10 or 1)
      s:add("set xzeroaxis lc rgb '#606060'")
      s:add("set xlabel 'neuron'")
      if i == 1 then s:add("set ylabel 'W[neuron, feature]'") end
      if #boxes == 0 then boxes[1] = { 1, 0, 0, 0, 0xffffff } end
      local block = s:data(boxes)
      -- Thin white borders separate the segments while they are few.
      s:add("plot %s using 1:2:3:4:5 with boxxyerror fs solid 1.0 %s fc rgb variable", block,
        F > 20 and "noborder" or "border lc rgb '#ffffff' lw 0.3")
    end
    for _ = I + 1, grid_rows * cols do s:add("set multiplot next") end
    local neuron_panel = options.panel_size or (H > 20 and 300 or 220)
    return finish(fname, s, format, neuron_panel * cols + 40, neuron_panel * grid_rows + 50, options)
  end

  -- Fixed margins keep every panel the same size. The two color bars go in
  -- the right margin, beside the first row of heatmaps and of bars.
  local top, bottom, right = options.title and 0.9 or 0.95, 0.09, 0.9
  local band = (top - bottom) / (2 * grid_rows)
  s:add("set multiplot layout %d,%d margins 0.05,%s,%s,%s spacing 0.02,0.07%s",
    2 * grid_rows, cols, num(right), num(bottom), num(top),
    options.title and " title " .. quote(options.title) .. " font ',13'" or "")
  local function colorbox(row)
    s:add("set colorbox user origin screen %s,screen %s size screen 0.012,screen %s",
      num(right + 0.03), num(top - row * band + 0.15 * band), num(0.7 * band))
  end
  local grams, norms, supers = {}, {}, {}
  for i = 1, I do
    grams[i] = data.gram(t[i])
    norms[i] = data.column_norms(t[i])
    supers[i] = data.superposition(grams[i])
  end
  local max_norm = 0
  for i = 1, I do max_norm = max_abs(norms[i], max_norm) end
  for gr = 1, grid_rows do
    local first, last = (gr - 1) * cols + 1, math.min(gr * cols, I)
    for i = first, last do
      s:add("reset")
      s:add("unset key")
      s:add("set size square")
      s:add(data.palette_command("rdbu", fname))
      s:add("set cbrange [-1:1]")
      if i == last and gr == 1 then colorbox(1) else s:add("unset colorbox") end
      s:add("set xrange [0.5:%s]", num(F + 0.5))
      s:add("set yrange [%s:0.5]", num(F + 0.5))
      s:add("unset xtics")
      s:add("unset ytics")
      s:add("set title %s", quote(subplot_title(options, i, "instance " .. i)))
      s:add("plot %s matrix using ($1+1):($2+1):3 with image", heatmap_block(s, grams[i]))
    end
    for _ = last + 1, gr * cols do s:add("set multiplot next") end
    for i = first, last do
      local bars = {}
      for f = 1, F do
        bars[f] = { norms[i][f] / 2, f, norms[i][f] / 2, F > 30 and 0.5 or 0.4, supers[i][f] }
      end
      s:add("reset")
      s:add("unset key")
      s:add(data.palette_command("viridis", fname))
      s:add("set cbrange [0:1]")
      s:add("set cblabel 'superposition'")
      if i == last and gr == 1 then colorbox(2) else s:add("unset colorbox") end
      s:add("set xrange [0:%s]", num(math.max(max_norm, 1e-6) * 1.05))
      s:add("set yrange [%s:0.5]", num(F + 0.5))
      s:add("set xtics %s", num(nice_tic(max_norm)))
      if F > 20 then s:add("unset ytics") else s:add("set ytics 1 scale 0") end
      if gr == grid_rows then s:add("set xlabel '||W_i||'") end
      if i == first then s:add("set ylabel 'feature'") end
      s:add("plot %s using 1:2:3:4:5 with boxxyerror fs solid 1.0 noborder lc palette", s:data(bars))
    end
    for _ = last + 1, gr * cols do s:add("set multiplot next") end
  end
  return finish(fname, s, format, panel * cols + 60, 2 * panel * grid_rows + 50, options)
end


--------------------------------------------------------------------------
-- Correlated features and feature geometry.

--- Show batches of features as [instances, features] heatmaps.
-- batch: [batch, instances, features]; one panel per batch element (at
-- most opts.max_panels, default 4), thin lines between groups of
-- opts.group features (default 2: the pairs).
function plot.correlated_features(batch, opts)
  local fname = "sae.plot.correlated_features"
  local options, format, s = start(fname, opts, STATIC)
  local t, shape = data.checked(batch, fname, 1, "batch", { false, false, false },
    "a tensor of shape [batch, instances, features]")
  local B, I, F = shape[1], shape[2], shape[3]
  local n = math.min(B, options.max_panels or 4)
  local group = options.group or 2
  multiplot(s, 1, n, options.title)
  for b = 1, n do
    s:add("reset")
    s:add("unset key")
    s:add(data.palette_command("blues", fname))
    s:add("set cbrange [0:1]")
    if b ~= n then s:add("unset colorbox") end
    s:add("set xrange [0.5:%s]", num(F + 0.5))
    s:add("set yrange [%s:0.5]", num(I + 0.5))
    s:add("set xtics 1 scale 0")
    s:add("set ytics %d scale 0", I > 20 and 5 or 1)
    s:add("set xlabel 'feature'")
    if b == 1 then s:add("set ylabel 'instance'") end
    if n > 1 then s:add("set title %s", quote(subplot_title(options, b, "batch element " .. b))) end
    for g = group, F - 1, group do
      s:add("set arrow from %s,graph 0 to %s,graph 1 nohead front lc rgb '#c04040' lw 1.5",
        num(g + 0.5), num(g + 0.5))
    end
    s:add("plot %s matrix using ($1+1):($2+1):3 with image", heatmap_block(s, t[b]))
  end
  local width = math.max(math.max(320, 60 * F) * n + 40, 9 * #(options.title or ""))
  return finish(fname, s, format, width,
    math.max(260, 18 * I + 120), options)
end


--- Plot dimensions per feature against 1/(1-S) across sparsity.
-- W: [instances, hidden, features], or a model with fields W and
-- feature_probability. opts.feature_probability: number, [I] or [I, F].
-- Draws the dimensions per feature hidden / ||W||_F² per instance on a
-- log x axis with reference lines at 1, 3/4, 2/3, 1/2, 2/5 and 1/3.
-- opts.dimensionality: [I, F] per-feature dimensionalities to scatter
-- (such as sae.toy.dimensionality(W)), or true to compute them here.
function plot.feature_geometry(W, opts)
  local fname = "sae.plot.feature_geometry"
  local options, format, s = start(fname, opts, STATIC)
  if type(W) == "table" and not data.is_tensor(W) and W.W ~= nil then
    options.feature_probability = options.feature_probability or W.feature_probability
    W = W.W
  end
  local t, I, H, F = instances_3d(fname, W, 1, "W", "a tensor of shape [instances, hidden, features]")
  if options.feature_probability == nil then
    error(string.format("%s: option feature_probability expected a number or [%d] values, got nil",
      fname, I), 0)
  end
  local p = instance_probabilities(fname, options.feature_probability, I)
  local line = {}
  for i = 1, I do
    local frob = 0
    for h = 1, H do
      for f = 1, F do frob = frob + t[i][h][f] ^ 2 end
    end
    line[i] = { 1 / p[i], H / math.max(frob, 1e-12) }
  end
  table.sort(line, function(a, b) return a[1] < b[1] end)
  local xmin, xmax = line[1][1], line[#line][1]

  local scatter
  if options.dimensionality then
    local dims
    if options.dimensionality == true then
      dims = {}
      for i = 1, I do dims[i] = data.dimensionality(data.gram(t[i])) end
    else
      dims = data.checked(options.dimensionality, fname, "", "dimensionality", { I, F },
        string.format("a tensor of shape [%d, %d]", I, F))
    end
    scatter = {}
    for i = 1, I do
      for f = 1, F do
        -- Spread the points of one instance sideways (by a factor up to
        -- 1.08 on the log axis) so that equal values stay visible.
        local jitter = 1 + 0.08 * (((f * 0.618034) % 1) - 0.5)
        scatter[#scatter + 1] = { jitter / p[i], dims[i][f] }
      end
    end
  end

  s:add("reset")
  s:add("set logscale x")
  s:add("set key top right")
  s:add("set grid lc rgb '#e8e8e8'")
  s:add("set xlabel %s", quote(options.xlabel or "1/(1-S)"))
  s:add("set ylabel %s", quote(options.ylabel or "dimensions per feature"))
  s:add("set yrange [0:%s]", num(options.ymax or 1.1))
  s:add("set xrange [%s:%s]", num(xmin / 1.2), num(xmax * 1.2))
  if options.title then s:add("set title %s", quote(options.title)) end
  local plateaus = { { 1, "1" }, { 3 / 4, "3/4" }, { 2 / 3, "2/3" }, { 1 / 2, "1/2" },
    { 2 / 5, "2/5" }, { 1 / 3, "1/3" } }
  for _, pl in ipairs(plateaus) do
    s:add("set arrow from graph 0,first %s to graph 1,first %s nohead lc rgb '#b0b0b0' dt 2",
      num(pl[1]), num(pl[1]))
    s:add("set label %s at graph 1.01,first %s left tc rgb '#707070'", quote(pl[2]), num(pl[1]))
  end
  s:add("set rmargin 6")
  local parts = {}
  if scatter then
    parts[#parts + 1] = string.format(
      "%s using 1:2 with points pt 7 ps 0.5 lc rgb '#803a7ebf' title 'feature dimensionality'",
      s:data(scatter))
  end
  parts[#parts + 1] = string.format(
    "%s using 1:2 with linespoints pt 7 ps 0.8 lw 2 lc rgb '#202020' title 'dimensions per feature'",
    s:data(line))
  s:add("plot " .. table.concat(parts, ", "))
  return finish(fname, s, format, 900, 520, options)
end


-- Generic plots (line, hist, imshow) and sparse autoencoder training plots
-- (frac_active_line, reconstruction) live in their own files.
for _, part in ipairs({ "sae.plot.generic", "sae.plot.training" }) do
  for name, fn in pairs(require(part)) do plot[name] = fn end
end

return plot
