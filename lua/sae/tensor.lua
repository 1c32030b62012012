-- Lua-side tensor conveniences: printing and the helpers that are
-- simpler in Lua than in C.

return function(sae, core)
  local mt = core.Tensor_mt
  local methods = mt.__methods

  function sae.is_tensor(x)
    return getmetatable(x) == mt
  end

  methods.type = function() return "sae.Tensor" end

  -- Printing, einsum and einops patterns live in their own modules.
  local print_ = require "sae.print"
  mt.__tostring = print_.tostring
  sae.set_printoptions = print_.set_printoptions
  sae.get_printoptions = print_.get_printoptions
  sae.einsum = require("sae.einsum").einsum
  require("sae.einops").install(sae)
end
