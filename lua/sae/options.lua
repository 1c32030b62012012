-- Checks option tables such as sae.toy.Model{...} and model:train{...}, so
-- a misspelt key raises instead of silently falling back to a default.

local options = {}


-- Returns the edit distance between two short strings.
local function distance(a, b)
  local previous = {}
  for j = 0, #b do previous[j] = j end
  for i = 1, #a do
    local current = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      current[j] = math.min(previous[j] + 1, current[j - 1] + 1,
                            previous[j - 1] + cost)
    end
    previous = current
  end
  return previous[#b]
end


--- Raises "<fname>: argument #1 has an unknown option "<key>"" for the first
-- key of `opts` that is not in `allowed` (a list of names), naming the
-- closest allowed name when one is near. `level` is passed to error().
function options.check(fname, opts, allowed, level)
  if type(opts) ~= "table" then return end
  local known = {}
  for _, name in ipairs(allowed) do known[name] = true end
  for key in pairs(opts) do
    if not known[key] then
      local message = string.format("%s: argument #1 has an unknown option %s",
        fname, type(key) == "string" and string.format("%q", key) or tostring(key))
      if type(key) == "string" then
        local best, best_distance = nil, 3
        for _, name in ipairs(allowed) do
          local d = distance(key, name)
          if d < best_distance then best, best_distance = name, d end
        end
        if best ~= nil then message = message .. string.format(" (did you mean %q?)", best) end
      end
      error(message, (level or 1) + 1)
    end
  end
end


return options
