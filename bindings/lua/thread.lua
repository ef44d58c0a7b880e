-- thread.lua: the constructors of weft.pool and weft.thread.channel and
-- their options, weft.thread.run and weft.thread.register.  Pools, jobs and
-- channels are C (thread.c, worker.c, threadchan.c): their methods raise
-- at the caller's position.  Compiled into weft.so and run by luaopen_weft
-- with (module, primitives, task internals).
local weft, C = ...

local type, tostring, error, pairs = type, tostring, error, pairs
local math_type = math.type

-- Misuse raises at the caller's position (argcheck.c).
local argerror, nozero = C.argerror, C.nozero

local thread = {}
weft.thread = thread

thread.id = C.thread_id

-- Registers metatable mt as class `name` in this Lua state: its instances
-- may cross threads, and a receiving state that registered the same name
-- gives them its own metatable back (register in the pool's init module).
function thread.register(name, mt)
  if type(name) ~= "string" then argerror(1, "register", "string expected, got " .. type(name)) end
  if type(mt) ~= "table" then argerror(2, "register", "table expected, got " .. type(mt)) end
  if not C.register(name, mt) then
    argerror(1, "register", "name already registered for another metatable")
  end
  return mt
end

function thread.channel(capacity)
  if capacity ~= nil and (math_type(capacity) ~= "integer" or capacity < 1) then
    argerror(1, "channel", "capacity must be an integer >= 1 or nil")
  end
  return C.chan_new(capacity)
end

-- The error of a job that never ran: a task cancellation.
C.on_cancelled(function(reason)
  local p = weft.promise()
  p:cancel(reason)
  local _, err = pcall(p.await, p)
  return err
end)

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
  nozero(opts.init, 1, "pool", "field 'init'")
  local spin = opts.spin_us or 50
  if math_type(spin) ~= "integer" or spin < 0 or spin > 1000000 then
    argerror(1, "pool", "field 'spin_us' must be an integer from 0 to 1000000")
  end
  return C.pool_new(min, max, idle, opts.init, spin)
end

local default
-- pool:run on a default pool sized to the CPU count, made on first use.
function thread.run(fn, ...)
  if type(fn) ~= "function" and type(fn) ~= "string" then
    argerror(1, "run", "function or function name expected, got " .. type(fn))
  end
  if not default then default = weft.pool({ max = C.cpus(), min = 0, idle_ms = 5000, spin_us = 50 }) end
  return default:run(fn, ...) -- (a tail call: its errors point at the caller)
end
