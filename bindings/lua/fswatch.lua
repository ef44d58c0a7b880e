-- fswatch.lua: weft.fs.watch, over the primitives of fswatch.c: a watcher
-- whose changes (coalesced by the core over a window) queue on a weft
-- channel that next() receives from.  Compiled into weft.so and run by
-- luaopen_weft with (module, primitives, task internals), after fs.lua.
local weft, C = ...

local fs = weft.fs
local type, tostring, pairs, getmetatable, setmetatable = type, tostring, pairs, getmetatable, setmetatable
local math_type = math.type

-- The default coalescing window (ms): changes within it are one event per
-- name.
local WINDOW_MS = 50

-- Misuse raises at the caller's position (argcheck.c).
local argerror, nozero = C.argerror, C.nozero

local Watcher = { __name = "weft.fswatch" }
Watcher.__index = Watcher

local watch_opts = { recursive = true, coalesce = true }

-- watch(path[, opts]) -> watcher, or nil, message, code.
function fs.watch(path, opts)
  if type(path) ~= "string" then argerror(1, "watch", "string expected, got " .. type(path)) end
  if path == "" then argerror(1, "watch", "path must not be empty") end
  nozero(path, 1, "watch")
  if opts ~= nil and type(opts) ~= "table" then argerror(2, "watch", "table expected, got " .. type(opts)) end
  opts = opts or {}
  for k in pairs(opts) do
    if not watch_opts[k] then argerror(2, "watch", "unknown option '" .. tostring(k) .. "'") end
  end
  local window = opts.coalesce or WINDOW_MS
  if math_type(window) ~= "integer" or window < 0 then
    argerror(2, "watch", "field 'coalesce' must be an integer >= 0 (ms)")
  end
  if opts.recursive ~= nil and type(opts.recursive) ~= "boolean" then
    argerror(2, "watch", "field 'recursive' must be a boolean")
  end
  local st, msg, code = fs.stat(path)
  if not st then return nil, (msg:gsub("^stat: ", "watch: ")), code end
  local dir = st.type == "directory" and path:gsub("/+$", "") or nil
  local ch = weft.channel()
  local h
  h, msg, code = C.fswatch_start(path, opts.recursive, window, function(name, event, err)
    if err then
      ch:try_send({ path = path, event = "error", error = err })
    else
      ch:try_send({ path = dir and name ~= "" and (dir .. "/" .. name) or path, event = event })
    end
  end)
  if not h then
    if code == "ENOSYS" and opts.recursive then
      msg = "recursive watching is not supported on this platform"
    end
    return nil, "watch: " .. path .. ": " .. msg, code
  end
  return setmetatable({ h = h, ch = ch, path = path, closed = false }, Watcher)
end

local function check(w, fname)
  if getmetatable(w) ~= Watcher then
    local mt = getmetatable(w)
    argerror(1, fname, "weft.fswatch expected, got " .. (type(mt) == "table" and mt.__name or type(w)))
  end
end

-- next([timeout_ms]) -> { path, event }, or nil, "timeout" / "closed".
function Watcher:next(timeout)
  check(self, "next")
  if timeout ~= nil and (type(timeout) ~= "number" or not (timeout >= 0)) then
    argerror(1, "next", "timeout must be a number >= 0")
  end
  if self.closed then return nil, "closed" end
  local ev, why = self.ch:recv(timeout)
  if ev ~= nil then return ev end
  if why == "timeout" then return nil, "timeout" end
  return nil, "closed"
end

-- for ev in w do ... end: the changes until the watcher is closed.
function Watcher:__call()
  return (self:next())
end

function Watcher:close()
  check(self, "close")
  if self.closed then return nil, "closed", "ECLOSED" end
  self.closed = true
  C.fswatch_close(self.h)
  self.ch:close()
  return true
end
Watcher.__close = function(w) if not w.closed then w:close() end end

function Watcher:__tostring()
  return self.closed and "weft.fswatch (closed)" or ("weft.fswatch (%s)"):format(self.path)
end

fs.watch_async = C.twin(fs.watch)
Watcher.next_async = C.twin(Watcher.next)
