-- sync.lua: waits on watchers, and the sync primitives, built on waiters
-- (waiter.c: a task parked until woken, with a timeout, cancellable).
-- This chunk is compiled into weft.so and run by luaopen_weft with
-- (module, primitives, task internals); it adds its functions to the
-- module table.
local weft, C, internals = ...

local cancel = weft.cancel
local error, type = error, type
local setmetatable, getmetatable, tostring = setmetatable, getmetatable, tostring

-- Misuse raises at the caller's position (argcheck.c).
local argerror, raise = C.argerror, C.raise

local function check_timeout(v, n, fname)
  if v ~= nil and (type(v) ~= "number" or not (v >= 0)) then
    argerror(n, fname, type(v) ~= "number" and ("number expected, got " .. type(v))
      or "timeout must be >= 0")
  end
end

-- Parks on the waiter w (see waiter.c) with an optional timeout: true, or
-- nil, "timeout".  A cancellation (or, in the main chunk, a loop error)
-- propagates; if a wake was handed to w just as it gave up,
-- release(a, b) passes it on first, so nothing is lost.
local new_waiter = internals.waiter
local function wait(w, timeout, release, a, b)
  local ok, err, woken = w:park(timeout)
  if ok then return true end
  if ok == nil then return nil, err end
  if woken and release then release(a, b) end
  error(err, 0)
end

-- One-shot wait on a watcher: make(cb) registers it and returns its id.
local function watch_once(make, timeout)
  local w, got = new_waiter(), nil
  local id = make(function(_, arg) got = arg; w:wake() end)
  local ok, err = w:park(timeout)
  cancel(id)
  if ok then return got end
  if ok == nil then return nil, err end
  error(err, 0)
end

do
  local watch_fd, watch_signal = C.watch_fd, C.watch_signal
  local function fd_wait(writable, fname)
    return function(fd, timeout)
      check_timeout(timeout, 2, fname)
      local got, why = watch_once(function(cb) return watch_fd(fd, cb, writable, fname) end, timeout)
      if got == nil then return nil, why end
      return true
    end
  end
  weft.readable = fd_wait(false, "readable")
  weft.writable = fd_wait(true, "writable")

  function weft.signal(sig, timeout)
    check_timeout(timeout, 2, "signal")
    return watch_once(function(cb) return watch_signal(sig, cb, "signal") end, timeout)
  end
end

-- A FIFO of waiters: items { w = waiter, ... }, skipping those that gave
-- up (timed out or cancelled).
local function queue() return { first = 1, last = 0 } end
local function push(q, item) q.last = q.last + 1; q[q.last] = item end
local function shift(q)
  while q.first <= q.last do
    local item = q[q.first]
    q[q.first] = nil
    q.first = q.first + 1
    if item.w:waiting() then return item end
  end
end

-- ---- mutex -----------------------------------------------------------------

local Mutex = {}
Mutex.__index = Mutex
Mutex.__name = "weft.mutex"

function weft.mutex()
  return setmetatable({ owner = false, waiters = queue() }, Mutex)
end

local function holder() return weft.current() or "main" end

-- Raises unless self is an object of class mt (named name), for method
-- fname.
local function check_self(self, mt, fname)
  if getmetatable(self) ~= mt then
    local smt = getmetatable(self)
    argerror(1, fname, mt.__name .. " expected, got " ..
      (type(smt) == "table" and type(smt.__name) == "string" and smt.__name or type(self)))
  end
end

function Mutex:lock(timeout)
  check_self(self, Mutex, "lock")
  check_timeout(timeout, 1, "lock")
  if not self.owner then
    self.owner = holder()
    return self
  end
  local w = new_waiter()
  push(self.waiters, { w = w, who = holder() })
  local ok, why = wait(w, timeout, self.unlock, self)
  if not ok then return nil, why end
  return self -- unlock handed it over
end

function Mutex:unlock()
  check_self(self, Mutex, "unlock")
  if self.owner ~= holder() then raise("unlock of a mutex this task does not hold") end
  local next = shift(self.waiters)
  if next then
    self.owner = next.who
    next.w:wake()
  else
    self.owner = false
  end
end

function Mutex:locked()
  check_self(self, Mutex, "locked")
  return self.owner ~= false
end

-- `local m <close> = mutex:lock()` unlocks at the end of the scope.
Mutex.__close = function(self) if self.owner then self:unlock() end end

-- ---- semaphore --------------------------------------------------------------

local Semaphore = {}
Semaphore.__index = Semaphore
Semaphore.__name = "weft.semaphore"

function weft.semaphore(n)
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then
    argerror(1, "semaphore", "a count >= 0 expected")
  end
  return setmetatable({ count = n, waiters = queue() }, Semaphore)
end

function Semaphore:acquire(timeout)
  check_self(self, Semaphore, "acquire")
  check_timeout(timeout, 1, "acquire")
  if self.count > 0 then
    self.count = self.count - 1
    return true
  end
  local w = new_waiter()
  push(self.waiters, { w = w })
  local ok, why = wait(w, timeout, self.release, self)
  if not ok then return nil, why end
  return true
end

function Semaphore:release()
  check_self(self, Semaphore, "release")
  local next = shift(self.waiters)
  if next then next.w:wake() else self.count = self.count + 1 end
end

-- ---- event ------------------------------------------------------------------

local Event = {}
Event.__index = Event
Event.__name = "weft.event"

function weft.event()
  return setmetatable({ flag = false, waiters = queue() }, Event)
end

function Event:set()
  check_self(self, Event, "set")
  self.flag = true
  local w = shift(self.waiters)
  while w do w.w:wake(); w = shift(self.waiters) end
end

function Event:clear()
  check_self(self, Event, "clear")
  self.flag = false
end

function Event:is_set()
  check_self(self, Event, "is_set")
  return self.flag
end

function Event:wait(timeout)
  check_self(self, Event, "wait")
  check_timeout(timeout, 1, "wait")
  if self.flag then return true end
  local w = new_waiter()
  push(self.waiters, { w = w })
  local ok, why = wait(w, timeout)
  if not ok then return nil, why end
  return true
end

-- ---- group (a nursery) ---------------------------------------------------------

local Group = {}
Group.__index = Group
Group.__name = "weft.group"

function weft.group()
  return setmetatable({ children = {}, failed = nil }, Group)
end

function Group:spawn(fn, ...)
  check_self(self, Group, "spawn")
  if type(fn) ~= "function" then
    argerror(1, "spawn", "function expected, got " .. type(fn))
  end
  local t = weft.async(fn, ...)
  self.children[#self.children + 1] = t
  -- The first failure cancels the siblings at once.
  t:catch(function(err)
    if self.failed == nil and not weft.is_cancelled(err) then
      self.failed = err
      self:cancel("a sibling failed")
    end
  end)
  return t
end

function Group:cancel(reason)
  check_self(self, Group, "cancel")
  for _, t in ipairs(self.children) do t:cancel(reason) end
end

-- A weft.once timer as a to-be-closed value: cancelled at the end of the
-- scope.
local Timer = { __close = function(self) cancel(self.id) end }
local function timer(ms, cb) return setmetatable({ id = weft.once(ms, cb) }, Timer) end

local error_mt = internals.error_mt

-- Waits until every child (including those spawned meanwhile) has ended;
-- raises the first failure.  Past timeout_ms, the children are cancelled,
-- and the timeout is raised once they have ended.
function Group:wait(timeout)
  check_self(self, Group, "wait")
  check_timeout(timeout, 1, "wait")
  local expired = false
  local _ <close> = timeout and timer(timeout, function()
    expired = true
    self:cancel()
  end) or nil
  local seen = 0
  while seen < #self.children do
    local batch = {}
    for i = seen + 1, #self.children do batch[#batch + 1] = self.children[i] end
    seen = #self.children
    local ok, err = pcall(weft.await, weft.settle(batch))
    if not ok then
      -- The waiter was cancelled: so are its children (a nursery's scope
      -- is its waiter's), and the cancellation is raised once they ended.
      if weft.is_cancelled(err) then
        self:cancel(err.reason)
        weft.shield(function() weft.await(weft.settle(self.children)) end)
      end
      error(err, 0)
    end
  end
  if self.failed ~= nil then
    local err = self.failed
    self.failed = nil
    error(err, 0)
  end
  if expired then
    error(setmetatable({ kind = "timeout", message = "timeout" }, error_mt), 0)
  end
end

-- `local g <close> = weft.group()`: closing the variable waits for the
-- children (in the main chunk, by running the loop, as await does there).
Group.__close = function(self) self:wait() end

for mt, name in pairs { [Mutex] = "weft.mutex", [Semaphore] = "weft.semaphore",
  [Event] = "weft.event", [Group] = "weft.group" } do
  mt.__tostring = function(self)
    local saved = getmetatable(self)
    setmetatable(self, nil)
    local addr = tostring(self):match("0x%x+") or "?"
    setmetatable(self, saved)
    return ("%s (%s)"):format(name, addr)
  end
end

-- ---- weft.coroutine ----------------------------------------------------------
-- A drop-in coroutine library whose resume and wrap pass task suspensions
-- through: a generator made with it may await inside a default task.  A
-- wait inside the coroutine yields a private marker; resume sees it,
-- suspends the task (or the enclosing weft.coroutine) in turn, and hands
-- what the task is woken with back to the wait.
do
  local adopt, SUSPEND = internals.adopt, internals.suspend_marker
  local co_resume, co_yield, co_create = coroutine.resume, coroutine.yield, coroutine.create
  local wco = {}
  for k, v in pairs(coroutine) do wco[k] = v end

  local function pass(co, ok, ...)
    if ok and select("#", ...) == 1 and (...) == SUSPEND then
      return pass(co, co_resume(co, co_yield(SUSPEND)))
    end
    return ok, ...
  end

  function wco.resume(co, ...)
    if type(co) ~= "thread" then argerror(1, "resume", "coroutine expected, got " .. type(co)) end
    adopt(co)
    return pass(co, co_resume(co, ...))
  end

  local function unwrap(ok, ...)
    if not ok then error((...), 0) end
    return ...
  end

  function wco.wrap(f)
    if type(f) ~= "function" then argerror(1, "wrap", "function expected, got " .. type(f)) end
    local co = co_create(f)
    return function(...) return unwrap(wco.resume(co, ...)) end
  end

  weft.coroutine = wco
end
