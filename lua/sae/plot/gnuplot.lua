-- Writes gnuplot scripts with inline data blocks and runs them.
--
-- A Script collects data blocks ($name << EOD ... EOD) and commands; run()
-- writes it to a temporary file, runs `gnuplot FILE`, checks the exit
-- status and the output file, and removes the temporary files.

local M = {}

-- The gnuplot binary used when a call passes no `gnuplot` option.
M.binary = "gnuplot"


local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end


-- Quote text as a gnuplot single-quoted string, in which only '' is special.
function M.quote(s)
  return "'" .. tostring(s):gsub("'", "''") .. "'"
end


-- Format a number for a data block or command: %.7g, with NaN and the
-- infinities written as NaN so gnuplot skips the point.
function M.num(x)
  if x ~= x or x == math.huge or x == -math.huge then return "NaN" end
  return string.format("%.7g", x)
end


local Script = {}
Script.__index = Script


function M.script()
  return setmetatable({ blocks = {}, lines = {}, count = 0 }, Script)
end


-- Add a data block from a list of rows (each a list of numbers) and return
-- its name. An empty row becomes a blank line, which separates data sets.
function Script:data(rows)
  self.count = self.count + 1
  local name = "$data" .. self.count
  local out = { name .. " << EOD" }
  for _, row in ipairs(rows) do
    local fields = {}
    for k, v in ipairs(row) do
      fields[k] = type(v) == "number" and M.num(v) or tostring(v)
    end
    out[#out + 1] = table.concat(fields, " ")
  end
  out[#out + 1] = "EOD"
  self.blocks[#self.blocks + 1] = table.concat(out, "\n")
  return name
end


-- Append one command, formatted with string.format when extra arguments
-- are given.
function Script:add(fmt, ...)
  if select("#", ...) > 0 then fmt = string.format(fmt, ...) end
  self.lines[#self.lines + 1] = fmt
end


function Script:text(header)
  return table.concat({ header, table.concat(self.blocks, "\n"),
    table.concat(self.lines, "\n"), "unset multiplot", "set output", "" }, "\n")
end


-- Pick the output format: opts.format, else the file's extension, else png.
function M.format(fname, opts, allowed)
  local format = opts.format
  if format == nil then
    format = opts.file:match("%.(%w+)$")
    format = format and format:lower()
    if not allowed[format] then format = nil end
  end
  format = format or "png"
  if not allowed[format] then
    local names = {}
    for k in pairs(allowed) do names[#names + 1] = '"' .. k .. '"' end
    table.sort(names)
    error(string.format("%s: option format expected one of %s, got %s",
      fname, table.concat(names, ", "), tostring(format)), 0)
  end
  return format
end


-- Terminal commands for a format and a canvas size in pixels. PNG uses
-- pngcairo when this gnuplot has it (antialiased, alpha) and falls back to
-- the libgd png terminal.
function M.terminal(format, width, height, opts)
  local font = opts.font or "sans,10"
  local size = string.format("size %d,%d", width, height)
  local lines
  if format == "png" then
    lines = {
      "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {",
      string.format("  set terminal pngcairo %s font %s background '#ffffff'", size, M.quote(font)),
      "} else {",
      string.format("  set terminal png %s background '#ffffff'", size),
      "}",
    }
  elseif format == "svg" then
    lines = { string.format("set terminal svg %s font %s background '#ffffff'", size, M.quote(font)) }
  elseif format == "gif" then
    lines = { string.format("set terminal gif animate delay %d loop 0 %s",
      opts.delay or 10, size) }
  end
  lines[#lines + 1] = "set encoding utf8"
  if not opts.enhanced then lines[#lines + 1] = "set termoption noenhanced" end
  lines[#lines + 1] = "set output " .. M.quote(opts.file)
  return table.concat(lines, "\n")
end


-- Raise unless the gnuplot binary is on PATH (or is an executable path).
function M.check(fname, binary)
  local ok = os.execute("command -v " .. shell_quote(binary) .. " >/dev/null 2>&1")
  if not ok then
    error(string.format("%s: gnuplot not found (looked for %s on PATH); "
      .. "install it (Debian: apt-get install gnuplot-nox) or set the gnuplot option",
      fname, binary), 0)
  end
end


local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end


-- Run a script and return opts.file. Raises with gnuplot's own message when
-- gnuplot fails or writes nothing.
function M.run(fname, script, header, opts)
  local binary = opts.gnuplot or M.binary
  M.check(fname, binary)
  local script_path = os.tmpname()
  local err_path = os.tmpname()
  local f = assert(io.open(script_path, "w"))
  f:write(script:text(header))
  f:close()
  os.remove(opts.file)
  local ok, _, code = os.execute(string.format("%s %s 2>%s </dev/null",
    shell_quote(binary), shell_quote(script_path), shell_quote(err_path)))
  local stderr = read_all(err_path)
  if opts.keep_script then
    io.stderr:write(fname, ": gnuplot script kept at ", script_path, "\n")
  else
    os.remove(script_path)
  end
  os.remove(err_path)
  if not ok then
    error(string.format("%s: gnuplot failed (exit status %s) writing %s: %s",
      fname, tostring(code), opts.file, stderr:gsub("%s+$", "")), 0)
  end
  local out = io.open(opts.file, "rb")
  local size = out and out:seek("end") or 0
  if out then out:close() end
  if size == 0 then
    error(string.format("%s: gnuplot wrote no output to %s: %s",
      fname, opts.file, stderr:gsub("%s+$", "")), 0)
  end
  return opts.file
end

return M
