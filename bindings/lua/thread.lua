-- thread.lua: weft.pool, weft.thread.run and weft.thread.channel, over the
-- primitives of thread.c.  A job's function and values cross threads as
-- messages: what cannot cross is refused at the sending call with an
-- error naming its path.  Compiled into weft.so and run by luaopen_weft
-- with (module, primitives, task internals).
local weft, C = ...

local type, select, tostring, error = type, select, tostring, error
local math_type, getmetatable, setmetatable = math.type, getmetatable, setmetatable
local encode, decode = C.encode, C.decode

local function argerror(n, fname, msg)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 3)
end

local thread = {}
weft.thread = thread

function thread.id() return C.thread_id() end

-- Registers metatable mt as class `name` in this Lua state: its instances
-- may cross threads, and a receiving state that registered the same name
-- gives them its own metatable back (register in the pool's init module).
function thread.register(name, mt)
  if type(name) ~= "string" then argerror(1, "register", "string expected, got " .. type(name)) end
  if type(mt) ~= "table" then argerror(2, "register", "table expected, got " .. type(mt)) end
  return C.register(name, mt)
end

-- ---- channels ------------------------------------------------------------------

-- Its methods are C (threadchan.c).
function thread.channel(capacity)
  if capacity ~= nil and (math_type(capacity) ~= "integer" or capacity < 1) then
    argerror(1, "channel", "capacity must be an integer >= 1 or nil")
  end
  return C.chan_new(capacity)
end

-- ---- pools -------------------------------------------------------------------

local Pool = { __name = "weft.pool" }
Pool.__index = Pool

local pool_opts = { max = true, min = true, idle_ms = true, init = true, spin_us = true }

function weft.pool(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then argerror(1, "pool", "table expected, got " .. type(opts)) end
  for k in pairs(opts) do
    if not pool_opts[k] then argerror(1, "pool", "unknown option '" .. tostring(k) .. "'") end
  end
  local max = opts.max or C.cpus()
  local min = opts.min or 0
  local idle = opts.idle_ms or 5000
  if math_type(max) ~= "integer" or max < 1 then argerror(1, "pool", "field 'max' must be an integer >= 1") end
  if math_type(min) ~= "integer" or min < 0 or min > max then
    argerror(1, "pool", "field 'min' must be an integer in 0..max")
  end
  if math_type(idle) ~= "integer" or idle < 0 then argerror(1, "pool", "field 'idle_ms' must be an integer >= 0") end
  if opts.init ~= nil and type(opts.init) ~= "string" then argerror(1, "pool", "field 'init' must be a module name") end
  local spin = opts.spin_us or 50
  if math_type(spin) ~= "integer" or spin < 0 or spin > 1000000 then
    argerror(1, "pool", "field 'spin_us' must be an integer from 0 to 1000000")
  end
  return setmetatable({ h = C.pool_new(min, max, idle, opts.init, spin), closed = false }, Pool)
end

-- The error a job's promise gets when the job never ran.
local function cancelled_error(reason)
  local p = weft.promise()
  p:cancel(reason)
  local _, err = pcall(p.await, p)
  return err
end

local function job(handle)
  local ok, res = C.pool_wait(handle)
  if res == nil then error(cancelled_error("the pool closed"), 0) end
  if ok then return decode(res) end
  error((decode(res)), 0)
end

-- Runs fn(...) in a worker's own Lua state: a task (a promise) of its
-- results.  fn is a function without upvalues but _ENV, or a dotted name
-- ("mylib.render.page") resolved in the worker.
function Pool:run(fn, ...)
  if getmetatable(self) ~= Pool then argerror(1, "run", "weft.pool expected") end
  if self.closed then error("attempt to use a closed pool", 2) end
  if type(fn) ~= "function" and type(fn) ~= "string" then
    argerror(1, "run", "function or function name expected, got " .. type(fn))
  end
  local ok, msg = pcall(encode, "args", fn, ...)
  if not ok then error(msg, 2) end
  -- queued now, in call order; the task only waits for it
  return weft.async(job, C.pool_submit(self.h, msg))
end

function Pool:close()
  if getmetatable(self) ~= Pool then argerror(1, "close", "weft.pool expected") end
  if self.closed then return false end
  self.closed = true
  return C.pool_close(self.h)
end

function Pool:threads() return C.pool_threads(self.h) end

function Pool:__tostring()
  return self.closed and "weft.pool (closed)" or ("weft.pool (%d threads)"):format(self:threads())
end

Pool.__close = Pool.close

local default
-- weft.pool:run on a default pool sized to the CPU count.
function thread.run(fn, ...)
  if not default then default = weft.pool({ max = C.cpus(), min = 0, idle_ms = 5000, spin_us = 50 }) end
  return default:run(fn, ...)
end
