local M = {}
function M.install() end
return M
