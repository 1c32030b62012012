-- sae.train: pieces shared by the training loops of toy models and SAEs:
-- learning-rate schedules, a terminal progress bar and a generic loop.
--
--   train.schedule(name_or_function)  -> function(step, steps) -> factor
--   train.progress(steps, opts)       -> bar with :update(step, fields) and
--                                        :close()
--   train.run{ steps, step, lr, lr_schedule, optimizer, log_every,
--              progress, on_log }     -> history (a list of log records)
--
-- Steps passed to schedules count from 0 (the number of steps already
-- taken), as in the exercises, so "linear" starts at the full rate and
-- "cosine" reaches 0 at the last step.

local core = require "sae.core"

local train = {}


-- Schedules ------------------------------------------------------------

train.schedules = {
  constant = function() return 1.0 end,
  linear = function(step, steps) return 1.0 - step / steps end,
  cosine = function(step, steps)
    if steps <= 1 then return 1.0 end
    return math.cos(0.5 * math.pi * step / (steps - 1))
  end,
}


-- Returns the factor function for a schedule name or a function(step,
-- steps); nil means "constant".
function train.schedule(schedule)
  if schedule == nil then return train.schedules.constant end
  if type(schedule) == "function" then return schedule end
  local f = train.schedules[schedule]
  if f == nil then
    error(string.format("lr_schedule: expected \"constant\", \"linear\", "
      .. "\"cosine\" or a function(step, steps), got %s", tostring(schedule)), 2)
  end
  return f
end


-- Progress bar ------------------------------------------------------------

local Progress = {}
Progress.__index = Progress


-- Returns whether standard output is a terminal.
function train.isatty()
  return core._optim.isatty()
end


train.now = core._optim.now


-- progress(steps, { enabled = true, out = io.stdout, width = 24,
-- interval = 0.1 }): a one-line bar redrawn at most every `interval`
-- seconds. It draws only when enabled and standard output is a terminal;
-- `force = true` skips the terminal check (for writing to a file).
function train.progress(steps, opts)
  opts = opts or {}
  local enabled = opts.enabled ~= false and (opts.force or train.isatty())
  return setmetatable({
    steps = steps,
    enabled = enabled,
    out = opts.out or io.stdout,
    width = opts.width or 24,
    interval = opts.interval or 0.1,
    start = train.now(),
    last_draw = -math.huge,
    drawn = false,
  }, Progress)
end


local function format_field(value)
  if type(value) ~= "number" then return tostring(value) end
  if value ~= 0 and (math.abs(value) < 1e-2 or math.abs(value) >= 1e4) then
    return string.format("%.3e", value)
  end
  return string.format("%.4f", value)
end


-- Returns the bar text for `step` with the given fields, a list of
-- { name, value } pairs drawn in order.
function Progress:render(step, fields, elapsed)
  local frac = self.steps > 0 and step / self.steps or 1
  local filled = math.floor(frac * self.width + 0.5)
  local parts = {
    string.format("%" .. #tostring(self.steps) .. "d/%d [%s%s] %3d%%", step,
      self.steps, string.rep("=", filled), string.rep(" ", self.width - filled),
      math.floor(100 * frac)),
  }
  for _, field in ipairs(fields or {}) do
    parts[#parts + 1] = field[1] .. " " .. format_field(field[2])
  end
  if elapsed and elapsed > 0 then
    parts[#parts + 1] = string.format("%.0f it/s", step / elapsed)
  end
  return table.concat(parts, "  ")
end


function Progress:update(step, fields)
  if not self.enabled then return end
  local t = train.now()
  if step < self.steps and t - self.last_draw < self.interval then return end
  self.last_draw = t
  self.out:write("\r", self:render(step, fields, t - self.start), "\27[K")
  self.out:flush()
  self.drawn = true
end


function Progress:close()
  if self.enabled and self.drawn then
    self.out:write("\n")
    self.out:flush()
  end
  self.drawn = false
end


-- Loop ----------------------------------------------------------------------

local function check_positive_integer(fname, name, value)
  if math.type(value) ~= "integer" or value < 1 then
    error(string.format("%s: option %s expected an integer >= 1, got %s",
      fname, name, tostring(value)), 3)
  end
  return value
end


-- run{ steps =, step = function(step, lr) -> loss, lr =, lr_schedule =,
-- optimizer =, log_every = 100, progress = true, on_log = function(rec) }
--
-- For step = 1 .. steps: sets the optimizer's rate to lr * schedule(step
-- - 1, steps), calls step(step, lr) (which does the forward, backward and
-- optimizer step and returns the loss as a number), and logs when step -
-- 1 is a multiple of log_every and at the last step. Returns the history,
-- a list of the log records { step =, loss =, lr = } plus the fields of
-- the table step() may return as a second result; on_log receives each
-- record as it is made.
function train.run(opts)
  local fname = opts.name or "train"
  local steps = check_positive_integer(fname, "steps", opts.steps)
  local log_every = check_positive_integer(fname, "log_every",
    opts.log_every or 100)
  if type(opts.step) ~= "function" then
    error(fname .. ": option step expected a function(step, lr), got "
      .. type(opts.step), 2)
  end
  local base_lr = opts.lr or 1e-3
  if type(base_lr) ~= "number" or base_lr < 0 then
    error(fname .. ": option lr expected a number >= 0, got "
      .. tostring(base_lr), 2)
  end
  local factor = train.schedule(opts.lr_schedule)
  local optimizer = opts.optimizer
  local bar = train.progress(steps, { enabled = opts.progress ~= false })
  local history = {}
  local loss

  for step = 1, steps do
    local lr = base_lr * factor(step - 1, steps)
    if optimizer then optimizer:set_lr(lr) end
    local extra
    loss, extra = opts.step(step, lr)
    if (step - 1) % log_every == 0 or step == steps then
      local record = { step = step, loss = loss, lr = lr }
      if extra then for k, v in pairs(extra) do record[k] = v end end
      history[#history + 1] = record
      if opts.on_log then opts.on_log(record) end
      bar:update(step, { { "loss", loss }, { "lr", lr } })
    end
  end
  bar:close()
  return history
end


return train
