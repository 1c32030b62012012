-- Benchmark driver: runs each part bench/<name>.lua that exists, in a
-- fixed order, and prints one aligned line per measurement.
--
--   lua5.4 bench/run.lua            all parts (make bench, ./run bench)
--   lua5.4 bench/run.lua tensor     only the named parts
--
-- A part file returns function(report). report(name, ours, reference,
-- note) prints one row. `ours` and `reference` are seconds per operation,
-- and reference may be nil when there is none. The ratio column is
-- reference / ours, so above 1 means we are faster. `note` is free text
-- such as a throughput. report.section(title) starts a group of rows.
-- See bench/README.md.

local PARTS = { "tensor", "nn", "toy", "sae" }

local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."

local function format_seconds(s)
  if s == nil then return "-" end
  if s >= 1 then return string.format("%.3f s", s) end
  if s >= 1e-3 then return string.format("%.3f ms", s * 1e3) end
  return string.format("%.2f us", s * 1e6)
end

local report = setmetatable({}, {
  __call = function(_, name, ours, reference, note)
    local ratio = "-"
    if ours and reference and ours > 0 then
      ratio = string.format("%.2f", reference / ours)
    end
    print(string.format("  %-40s %12s %12s %7s  %s", name, format_seconds(ours),
      format_seconds(reference), ratio, note or ""))
    io.stdout:flush()
  end,
})

function report.section(title)
  print("")
  print(title)
  print(string.format("  %-40s %12s %12s %7s  %s", "case", "ours", "reference",
    "ratio", "note"))
  io.stdout:flush()
end

local requested = {}
for i = 1, #arg do requested[arg[i]] = true end

local failed = 0
for _, name in ipairs(PARTS) do
  local path = script_dir .. "/" .. name .. ".lua"
  local file = io.open(path, "r")
  if file ~= nil and (next(requested) == nil or requested[name]) then
    file:close()
    print(string.format("== bench/%s.lua", name))
    local ok, err = pcall(function() dofile(path)(report) end)
    if not ok then
      failed = failed + 1
      print(string.format("bench/%s.lua failed: %s", name, tostring(err)))
    end
    print("")
  end
end
os.exit(failed == 0)
