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

local Channel = {}
C.chan_mt.__index = Channel
C.chan_mt.__name = "weft.thread.channel"

local function check_chan(ch, fname)
  if getmetatable(ch) ~= C.chan_mt then
    argerror(1, fname, "weft.thread.channel expected, got " .. type(ch))
  end
end

local function check_timeout(v, n, fname)
  if v ~= nil and (type(v) ~= "number" or not (v >= 0)) then
    argerror(n, fname, "timeout must be a number >= 0")
  end
end

function thread.channel(capacity)
  if capacity ~= nil and (math_type(capacity) ~= "integer" or capacity < 1) then
    argerror(1, "channel", "capacity must be an integer >= 1 or nil")
  end
  return C.chan_new(capacity)
end

local chan_put, chan_take, chan_wait = C.chan_put, C.chan_take, C.chan_wait
local chan_mt = C.chan_mt

-- Sends v (any value that can cross threads, nil included), waiting while
-- the channel is full: a task suspends, the main chunk runs the loop, a
-- worker's plain code blocks.  Raises on a closed channel.
function Channel:send(v)
  if getmetatable(self) ~= chan_mt then check_chan(self, "send") end
  local ok, why = chan_put(self, v, 0)
  if ok then return true end
  if why == "full" and C.can_block() then ok, why = chan_put(self, v, -1) end
  while not ok do
    if why == "closed" then error("send on a closed channel", 2) end
    chan_wait(self, 2, nil)
    ok, why = chan_put(self, v, 0)
  end
  return true
end

function Channel:try_send(v)
  check_chan(self, "try_send")
  local ok, why = chan_put(self, v, 0)
  if ok then return true end
  return false, why
end

-- What this Lua state took from a channel in a burst and has not handed
-- out yet: channel -> { first, last, [i] = value } (nil values included).
local taken = setmetatable({}, { __mode = "k" })
local chan_take_many = C.chan_take_many
local pack = table.pack

-- Takes the next value without waiting: true, v; or false, "empty" /
-- "closed".  The values waiting are taken under one lock (up to 64) and
-- handed out one by one.
local function take(ch)
  local q = taken[ch]
  if q and q.first <= q.last then
    local i = q.first
    local v = q[i]
    q[i] = nil
    q.first = i + 1
    return true, v
  end
  local r = pack(chan_take_many(ch))
  if not r[1] then return false, r[2] end
  local n = r[1]
  if n > 1 then
    if not q then q = {}; taken[ch] = q end
    for i = 2, n do q[i - 1] = r[i + 1] end
    q.first, q.last = 1, n - 1
  end
  return true, r[2]
end

-- The next value (nil is a value too: tell it by the second result);
-- nil, "closed" once closed and drained; nil, "timeout".
function Channel:recv(timeout)
  if getmetatable(self) ~= chan_mt then check_chan(self, "recv") end
  local ok, v = take(self)
  if ok then return v end
  if v == "closed" then return nil, "closed" end
  check_timeout(timeout, 1, "recv")
  if C.can_block() then
    ok, v = chan_take(self, timeout and math.ceil(timeout) or -1)
    if ok then return v end
    return nil, v
  end
  local deadline = timeout and weft.now() + timeout
  while true do
    local left = deadline and math.max(0, deadline - weft.now())
    if left == 0 then return nil, "timeout" end
    chan_wait(self, 1, left)
    ok, v = take(self)
    if ok then return v end
    if v == "closed" then return nil, "closed" end
  end
end

function Channel:try_recv()
  check_chan(self, "try_recv")
  local ok, v = take(self)
  if ok then return v end
  return nil, v
end

function Channel:close()
  check_chan(self, "close")
  return C.chan_close(self)
end

-- Values waiting: in the channel, and taken here but not yet handed out.
function Channel:count()
  check_chan(self, "count")
  local q = taken[self]
  return C.chan_count(self) + (q and q.last - q.first + 1 or 0)
end

-- for v in ch do ... end: until closed and drained (a nil value ends it
-- too; use recv to receive nils).
C.chan_mt.__call = function(self) return (self:recv()) end

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
