-- sae: tensors, toy models of superposition and sparse autoencoders.
--
-- The compiled part is sae.core; this module re-exports it and adds the
-- conveniences written in Lua (printing, einsum, einops patterns, plots).

local core = require "sae.core"

local sae = {}
for name, value in pairs(core) do
  if name ~= "Tensor_mt" and name ~= "SAE_mt" and name ~= "SAE_new"
    and name ~= "SAE_bench_products" then
    sae[name] = value
  end
end

sae.core = core
sae.Tensor = core.Tensor_mt.__methods

-- Lua-side parts extend `sae` and the tensor methods table in place.
require("sae.tensor")(sae, core)
require("sae.autoencoder")(sae, core)

sae.optim = require "sae.optim"
sae.train = require "sae.train"
sae.toy = require "sae.toy"

-- Plots through gnuplot; plain Lua, loaded here because it is small.
sae.plot = require "sae.plot"

return sae
