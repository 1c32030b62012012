-- busted output handler: the plain terminal output, then one closing line
-- "N passed, N failed" (errors count as failures) that CI reads.

return function(options)
  local busted = require "busted"
  local handler = require("busted.outputHandlers.plainTerminal")(options)

  busted.subscribe({ "suite", "end" }, function()
    local failed = handler.failuresCount + handler.errorsCount
    local line = string.format("%d passed, %d failed", handler.successesCount,
                               failed)
    if handler.pendingsCount > 0 then
      line = line .. string.format(", %d skipped", handler.pendingsCount)
    end
    io.write("\n", line, "\n")
    io.flush()
    return nil, true
  end)

  return handler
end
