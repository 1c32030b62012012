-- Helpers shared by the pattern-driven modules sae.einops and sae.einsum:
-- axis-list lookups, permutations between axis orders and a bounded cache
-- for parsed patterns and recorded plans.

local M = {}


-- Formats the shape of tensor x as "[2, 3]" for error messages.
function M.shape_string(x)
  return "[" .. table.concat(x:shape(), ", ") .. "]"
end


function M.index_of(list, value)
  for i, v in ipairs(list) do
    if v == value then return i end
  end
  return nil
end


-- Returns the dims for permute() that reorder axes from the order `axes`
-- to `order` (a permutation of `axes`), or nil when the orders are equal.
function M.permutation(axes, order)
  local dims, identity = {}, true
  for i, axis in ipairs(order) do
    dims[i] = M.index_of(axes, axis)
    identity = identity and dims[i] == i
  end
  if identity then return nil end
  return dims
end


local Cache = {}
Cache.__index = Cache

-- Creates a cache that contains at most `max` entries. A put() into a full
-- cache first drops every entry, which keeps memory bounded without
-- tracking use.
function M.bounded_cache(max)
  return setmetatable({ entries = {}, count = 0, max = max }, Cache)
end


function Cache:get(key)
  return self.entries[key]
end


function Cache:put(key, value)
  if self.count >= self.max then self.entries, self.count = {}, 0 end
  self.entries[key] = value
  self.count = self.count + 1
end

return M
