local sae = require "sae"
local plot = sae.plot
local data = require "sae.plot.data"

local PNG_MAGIC = "\137PNG\r\n\26\n"

local tmp_files = {}

local function tmp(ext)
  local base = os.tmpname()
  os.remove(base)
  local path = base .. "." .. ext
  tmp_files[#tmp_files + 1] = path
  return path
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function assert_png(path)
  local s = read(path)
  assert.is_not_nil(s, "no file at " .. path)
  assert.equal(PNG_MAGIC, s:sub(1, 8))
  assert.is_true(#s > 1000, "PNG of only " .. #s .. " bytes")
end

local function assert_svg(path)
  local s = read(path)
  assert.is_not_nil(s, "no file at " .. path)
  assert.truthy(s:find("<svg", 1, true), "no <svg element in " .. path)
  assert.truthy(s:find("</svg>", 1, true), "unterminated SVG in " .. path)
end

-- Five unit vectors 72 degrees apart in each of I instances: [I, 2, 5].
local function pentagons(I, radius)
  local W = {}
  for i = 1, I do
    W[i] = { {}, {} }
    for f = 1, 5 do
      local angle = 2 * math.pi * (f - 1) / 5
      W[i][1][f] = radius * math.cos(angle)
      W[i][2][f] = radius * math.sin(angle)
    end
  end
  return W
end

local function filled(shape, fn, prefix)
  prefix = prefix or {}
  local depth = #prefix + 1
  if depth > #shape then return fn(table.unpack(prefix)) end
  local t = {}
  for k = 1, shape[depth] do
    prefix[depth] = k
    t[k] = filled(shape, fn, prefix)
    prefix[depth] = nil
  end
  return t
end

local function wavy(...)
  local s = 0
  for k, v in ipairs({ ... }) do s = s + v * (k + 0.37) end
  return math.sin(s)
end


describe("sae.plot", function()
  teardown(function()
    for _, path in ipairs(tmp_files) do os.remove(path) end
  end)

  describe("features_in_2d()", function()
    it("writes a PNG from a tensor", function()
      local file = tmp("png")
      local W = sae.tensor(pentagons(3, 1))
      assert.equal(file, plot.features_in_2d(W, {
        file = file, colors = { 1, 0.9, 0.81, 0.73, 0.66 }, title = "pentagons",
        subplot_titles = { "a", "b", "c" },
      }))
      assert_png(file)
    end)

    it("writes an SVG with hidden states and named colors", function()
      local file = tmp("svg")
      local hidden = filled({ 20, 2, 2 }, wavy)
      plot.features_in_2d(pentagons(2, 0.8), {
        file = file, hidden = hidden, colors = { "blue", "blue", "limegreen", "limegreen", "#800080" },
      })
      assert_svg(file)
    end)

    it("takes svg from the format option", function()
      local file = tmp("out")
      plot.features_in_2d(pentagons(1, 1), { file = file, format = "svg" })
      assert_svg(file)
    end)

    it("draws several rows of panels", function()
      local file = tmp("png")
      plot.features_in_2d({ pentagons(2, 1), pentagons(2, 0.5) }, {
        file = file, row_titles = { "encoder", "decoder" },
        row_colors = { "red", { { "blue", "blue", "red", "red", "red" }, "green" } },
      })
      assert_png(file)
    end)

    it("rejects a second dimension other than 2", function()
      assert.has_error(function()
        plot.features_in_2d(sae.zeros(2, 3, 5), { file = tmp("png") })
      end, "sae.plot.features_in_2d: argument #1 (W) expected a tensor of shape "
        .. "[instances, 2, features] or a list of them, got shape [2, 3, 5]")
    end)

    it("rejects a ragged table", function()
      assert.has_error(function()
        plot.features_in_2d({ { { 1, 2 }, { 3 } } }, { file = tmp("png") })
      end, "sae.plot.features_in_2d: argument #1 (W) expected a tensor of shape "
        .. "[instances, 2, features] or a list of them, got a ragged nested table "
        .. "(expected 2 elements at depth 3)")
    end)

    it("rejects colors of the wrong length", function()
      assert.has_error(function()
        plot.features_in_2d(pentagons(1, 1), { file = tmp("png"), colors = { "red", "blue" } })
      end, "sae.plot.features_in_2d: option colors expected a color, a list of 5 colors, "
        .. "or numbers of shape [5] or [1, 5], got a list of 2 colors")
    end)

    it("rejects an unknown color name", function()
      assert.has_error(function()
        plot.features_in_2d(pentagons(1, 1), { file = tmp("png"), colors = "bluish" })
      end, 'sae.plot.features_in_2d: option colors expected a color name (such as "blue") '
        .. 'or "#rrggbb", got "bluish"')
    end)

    it("rejects a missing file option", function()
      assert.has_error(function() plot.features_in_2d(pentagons(1, 1), {}) end,
        "sae.plot.features_in_2d: option file expected an output path, got nil")
    end)

    it("rejects an unknown format", function()
      assert.has_error(function()
        plot.features_in_2d(pentagons(1, 1), { file = tmp("png"), format = "jpeg" })
      end, 'sae.plot.features_in_2d: option format expected one of "png", "svg", got jpeg')
    end)

    it("rejects hidden states of the wrong shape", function()
      assert.has_error(function()
        plot.features_in_2d(pentagons(2, 1), { file = tmp("png"), hidden = sae.zeros(4, 3, 2) })
      end, "sae.plot.features_in_2d: option hidden expected a tensor of shape "
        .. "[batch, 2, 2], got shape [4, 3, 2]")
    end)
  end)

  describe("gnuplot", function()
    it("raises when the binary is not on PATH", function()
      assert.has_error(function()
        plot.features_in_2d(pentagons(1, 1), { file = tmp("png"), gnuplot = "no-such-gnuplot-binary" })
      end, "sae.plot.features_in_2d: gnuplot not found (looked for no-such-gnuplot-binary on PATH); "
        .. "install it (Debian: apt-get install gnuplot-nox) or set the gnuplot option")
    end)

    it("raises when PATH has no gnuplot", function()
      -- Run a fresh Lua whose PATH has no gnuplot, as a user without it.
      local lua = io.popen("command -v lua5.4"):read("l")
      local code = "local plot = require 'sae.plot'; "
        .. "print(select(2, pcall(plot.line, {1, 2}, {file = '/tmp/never-written.png'})))"
      local out = io.popen(string.format("PATH=/nonexistent-dir %s -e %q 2>&1", lua, code)):read("a")
      assert.equal("sae.plot.line: gnuplot not found (looked for gnuplot on PATH); "
        .. "install it (Debian: apt-get install gnuplot-nox) or set the gnuplot option\n", out)
    end)

    it("reports gnuplot's message when it fails", function()
      local ok, err = pcall(plot.features_in_2d, pentagons(1, 1),
        { file = "/nonexistent-dir/x.png" })
      assert.is_false(ok)
      assert.truthy(err:find("^sae.plot.features_in_2d: gnuplot failed %(exit status %d+%) "
        .. "writing /nonexistent%-dir/x.png: "), err)
    end)

    it("leaves no temporary script behind", function()
      local before = {}
      for name in io.popen("ls /tmp"):lines() do before[name] = true end
      plot.line({ 1, 2, 3 }, { file = tmp("png") })
      local added = {}
      for name in io.popen("ls /tmp"):lines() do
        if not before[name] and name:match("^lua_%w+$") then added[#added + 1] = name end
      end
      assert.same({}, added)
    end)
  end)

  describe("animate_features_in_2d()", function()
    it("writes an animated GIF", function()
      local file = tmp("gif")
      local frames = {}
      for k = 1, 3 do
        frames[k] = { rows = { pentagons(2, k / 3), pentagons(2, 1) }, title = "step " .. k,
          colors = k == 3 and { "red", "blue", "blue", "blue", "blue" } or nil }
      end
      plot.animate_features_in_2d(frames, { file = file, row_titles = { "encoder", "decoder" } })
      local s = read(file)
      assert.equal("GIF89a", s:sub(1, 6))
      assert.truthy(s:find("NETSCAPE2.0", 1, true), "no looping extension, so not animated")
    end)

    it("rejects frames with different layouts", function()
      assert.has_error(function()
        plot.animate_features_in_2d({ pentagons(2, 1), pentagons(3, 1) }, { file = tmp("gif") })
      end, "sae.plot.animate_features_in_2d: argument #1 (frames) expected every frame to have "
        .. "1 rows of 2 instances like frame 1, got 1 rows of 3 in frame 2")
    end)

    it("rejects an empty list", function()
      assert.has_error(function()
        plot.animate_features_in_2d({}, { file = tmp("gif") })
      end, "sae.plot.animate_features_in_2d: argument #1 (frames) expected a nonempty list "
        .. "of frames, got an empty table")
    end)

    it("only writes GIF", function()
      assert.has_error(function()
        plot.animate_features_in_2d({ pentagons(1, 1) }, { file = tmp("png"), format = "png" })
      end, 'sae.plot.animate_features_in_2d: option format expected one of "gif", got png')
    end)
  end)

  describe("features_in_Nd()", function()
    it("writes heatmaps and norm bars", function()
      local file = tmp("png")
      plot.features_in_Nd(sae.tensor(filled({ 3, 4, 8 }, wavy)), { file = file, title = "Nd" })
      assert_png(file)
    end)

    it("writes stacked neuron bars", function()
      local file = tmp("svg")
      plot.features_in_Nd(filled({ 2, 5, 10 }, wavy), { file = file, neuron = true })
      assert_svg(file)
    end)

    it("rejects a 2-D tensor", function()
      assert.has_error(function() plot.features_in_Nd(sae.zeros(4, 8), { file = tmp("png") }) end,
        "sae.plot.features_in_Nd: argument #1 (W) expected a tensor of shape "
        .. "[instances, hidden, features], got shape [4, 8]")
    end)
  end)

  describe("correlated_features()", function()
    it("writes a heatmap per batch element", function()
      local file = tmp("png")
      plot.correlated_features(sae.tensor(filled({ 2, 5, 4 }, wavy)), { file = file })
      assert_png(file)
    end)
  end)

  describe("feature_geometry()", function()
    it("writes dimensions per feature with dimensionality", function()
      local file = tmp("png")
      local p = {}
      for i = 1, 6 do p[i] = 20 ^ (-(i - 1) / 5) end
      plot.feature_geometry(filled({ 6, 3, 7 }, wavy),
        { file = file, feature_probability = p, dimensionality = true })
      assert_png(file)
    end)

    it("takes a model-like table", function()
      local file = tmp("svg")
      plot.feature_geometry({ W = filled({ 2, 3, 5 }, wavy), feature_probability = { { 1 }, { 0.1 } } },
        { file = file })
      assert_svg(file)
    end)

    it("requires feature probabilities", function()
      assert.has_error(function()
        plot.feature_geometry(filled({ 2, 3, 5 }, wavy), { file = tmp("png") })
      end, "sae.plot.feature_geometry: option feature_probability expected a number or [2] values, got nil")
    end)
  end)

  describe("line(), hist() and imshow()", function()
    it("line writes several series", function()
      local file = tmp("png")
      plot.line({ { 1, 2, 3 }, { 3, 1 } }, { file = file, names = { "a", "b" }, logy = true, hlines = { 2 } })
      assert_png(file)
    end)

    it("line rejects x of another length", function()
      assert.has_error(function() plot.line({ 1, 2, 3 }, { file = tmp("png"), x = { 1, 2 } }) end,
        "sae.plot.line: option x expected 3 values to match series 1, got 2")
    end)

    it("hist writes a histogram of a tensor", function()
      local file = tmp("png")
      plot.hist(sae.tensor(filled({ 10, 10 }, wavy)), { file = file, bins = 7 })
      assert_png(file)
    end)

    it("hist rejects a bad bin count", function()
      assert.has_error(function() plot.hist({ 1, 2 }, { file = tmp("png"), bins = 0 }) end,
        "sae.plot.hist: option bins expected a positive integer, got 0")
    end)

    it("imshow writes a heatmap", function()
      local file = tmp("svg")
      plot.imshow(sae.tensor(filled({ 3, 4 }, wavy)), { file = file })
      assert_svg(file)
    end)

    it("imshow rejects a string", function()
      assert.has_error(function() plot.imshow("x", { file = tmp("png") }) end,
        "sae.plot.imshow: argument #1 (M) expected a tensor of shape [rows, columns], got string")
    end)
  end)

  describe("frac_active_line() and reconstruction()", function()
    it("frac_active_line writes lines with the probability marked", function()
      local file = tmp("png")
      local frac = filled({ 6, 2, 3 }, function(...) return 0.01 + 0.01 * (wavy(...) + 1) end)
      plot.frac_active_line(frac, { file = file, feature_probability = 0.01, x = { 1, 2, 3, 4, 5, 6 } })
      assert_png(file)
    end)

    it("reconstruction writes inputs against outputs", function()
      local file = tmp("png")
      local h = sae.tensor(filled({ 10, 2, 2 }, wavy))
      plot.reconstruction(h, h, { file = file })
      assert_png(file)
    end)

    it("reconstruction rejects mismatched shapes", function()
      assert.has_error(function()
        plot.reconstruction(sae.zeros(4, 2, 2), sae.zeros(4, 3, 2), { file = tmp("png") })
      end, "sae.plot.reconstruction: argument #2 (h_reconstructed) expected the shape of h "
        .. "[4, 2, 2], got [4, 3, 2]")
    end)
  end)

  describe("geometry helpers", function()
    it("dimensionality is 1 for orthogonal and 1/2 for antipodal features", function()
      local dims = data.dimensionality(data.gram({ { 1, -1, 0 }, { 0, 0, 1 } }))
      assert.near(0.5, dims[1], 1e-6)
      assert.near(0.5, dims[2], 1e-6)
      assert.near(1, dims[3], 1e-6)
    end)

    it("superposition counts the other features only", function()
      local s = data.superposition(data.gram({ { 1, 0.5 }, { 0, 0 } }))
      assert.near(0.25, s[1], 1e-6)
      assert.near(1, s[2], 1e-6)
    end)
  end)
end)
