-- Lua-side tensor conveniences: printing and the helpers that are
-- simpler in Lua than in C.

return function(sae, core)
  local mt = core.Tensor_mt
  local methods = mt.__methods

  function sae.is_tensor(x)
    return getmetatable(x) == mt
  end

  methods.type = function() return "sae.Tensor" end
end
