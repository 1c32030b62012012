local M = {}
function M.einsum() error("einsum: not yet") end
return M
