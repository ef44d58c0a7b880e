-- process.lua: weft.process.spawn, over the primitives of process.c.  The
-- child's pipes are weft streams; p:wait() suspends a task (or runs the
-- loop in the main chunk) until the child exits.  Compiled into weft.so
-- and run by luaopen_weft with (module, primitives, task internals).
local weft, C = ...

local type, tostring, pairs, ipairs = type, tostring, pairs, ipairs
local getmetatable, setmetatable, math_type = getmetatable, setmetatable, math.type

local function argerror(n, fname, msg)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 3)
end

local Process = { __name = "weft.process" }
Process.__index = Process

local process = {}
weft.process = process

local stdio_names = { "stdin", "stdout", "stderr" }
local allowed = { env = true, cwd = true, detached = true, stdin = true, stdout = true, stderr = true }

-- The descriptor the child gets for slot i (0, 1, 2) from opts value v:
-- returns child fd, parent stream (for "pipe").  "inherit" (the default)
-- shares this process's descriptor, "null" gives /dev/null; a weft
-- stream, a Lua file or an integer gives that descriptor.
local function stdio_fd(i, v)
  if v == nil or v == "inherit" then return i end
  if v == "null" then return -1 end
  if v == "pipe" then
    local r, w, code = C.pipe()
    if not r then return nil, nil, w, code end
    if i == 0 then
      return r, assert(weft.wrap(w, { own = true })), nil, nil, r
    end
    return w, assert(weft.wrap(r, { own = true })), nil, nil, w
  end
  if math_type(v) == "integer" and v >= 0 then return v end
  if io.type(v) == "file" then return C.fileno(v) end
  local mt = getmetatable(v)
  if type(mt) == "table" and mt.__name == "weft.stream" then return v:getfd() end
  argerror(1, "spawn", ("field '%s' must be 'pipe', 'inherit', 'null', a stream, a file or a descriptor"):format(stdio_names[i + 1]))
end

-- Starts { "cmd", "arg", ..., stdin=, stdout=, stderr=, env=, cwd=,
-- detached= }: a process object, or nil, message, code.
function process.spawn(opts)
  if type(opts) ~= "table" then argerror(1, "spawn", "table expected, got " .. type(opts)) end
  if type(opts[1]) ~= "string" or opts[1] == "" then
    argerror(1, "spawn", "the command (opts[1]) must be a non-empty string")
  end
  local argv = {}
  for i, a in ipairs(opts) do
    if type(a) ~= "string" and type(a) ~= "number" then
      argerror(1, "spawn", ("argument %d must be a string"):format(i))
    end
    argv[i] = tostring(a)
  end
  for k in pairs(opts) do
    if math_type(k) ~= "integer" and not allowed[k] then
      argerror(1, "spawn", "unknown option '" .. tostring(k) .. "'")
    end
  end
  local env
  if opts.env ~= nil then
    if type(opts.env) ~= "table" then argerror(1, "spawn", "field 'env' must be a table") end
    env = {}
    for k, v in pairs(opts.env) do
      if type(k) ~= "string" or k:find("=", 1, true) or (type(v) ~= "string" and type(v) ~= "number") then
        argerror(1, "spawn", "field 'env' must map names to strings")
      end
      env[#env + 1] = k .. "=" .. tostring(v)
    end
    table.sort(env)
  end
  if opts.cwd ~= nil and type(opts.cwd) ~= "string" then argerror(1, "spawn", "field 'cwd' must be a string") end
  local fds, streams, child_ends = {}, {}, {}
  local function undo()
    for _, s in pairs(streams) do s:close() end
    for _, fd in ipairs(child_ends) do C.closefd(fd) end
  end
  for i = 0, 2 do
    local fd, stream, msg, code, child_end = stdio_fd(i, opts[stdio_names[i + 1]])
    if not fd then undo(); return nil, "spawn: " .. msg, code end
    fds[i + 1], streams[stdio_names[i + 1]] = fd, stream
    if child_end then child_ends[#child_ends + 1] = child_end end
  end
  local exited = weft.promise()
  local h, pid, code = C.spawn(argv, env, opts.cwd, fds[1], fds[2], fds[3], opts.detached, exited)
  for _, fd in ipairs(child_ends) do C.closefd(fd) end
  if not h then
    for _, s in pairs(streams) do s:close() end
    return nil, "spawn: " .. pid, code
  end
  return setmetatable({ h = h, pid = pid, exited = exited, stdin = streams.stdin,
    stdout = streams.stdout, stderr = streams.stderr }, Process)
end

local function check_process(p, fname)
  if getmetatable(p) ~= Process then
    argerror(1, fname, "weft.process expected, got " .. type(p))
  end
end

-- Waits for the exit: the exit code, or nil, the signal's name when a
-- signal ended it; nil, "timeout", "ETIMEDOUT" after timeout_ms.
function Process:wait(timeout)
  check_process(self, "wait")
  if timeout ~= nil and (type(timeout) ~= "number" or not (timeout >= 0)) then
    argerror(1, "wait", "timeout must be a number >= 0")
  end
  -- (a timeout cancels what it waits on: wait on a shield of the exit)
  -- An unreferenced child keeps the loop alive while someone waits for it.
  if self.unref_ then C.proc_ref(self.h, true) end
  local ok, status, signal = pcall(weft.await,
    timeout and weft.shield(self.exited) or self.exited, timeout)
  if self.unref_ then C.proc_ref(self.h, false) end
  if not ok then
    if weft.is_timeout(status) then return nil, "timeout", "ETIMEDOUT" end
    error(status, 0)
  end
  if signal then return nil, signal end
  return status
end

function Process:kill(sig)
  check_process(self, "kill")
  local signo = C.signo(sig or "SIGTERM")
  if not signo then
    argerror(1, "kill", (math_type(sig) and "invalid signal %s" or "unknown signal '%s'"):format(tostring(sig)))
  end
  if self.exited:status() ~= "pending" then return nil, "kill: no such process", "ESRCH" end
  local ok, msg, code = C.kill(self.h, signo)
  if not ok then return nil, "kill: " .. msg, code end
  return true
end

-- Whether the running child keeps weft.run (and the main chunk's waits)
-- from returning: p:ref() is the default; after p:unref() the loop ends
-- without waiting for it (its exit is still seen while the loop runs).
function Process:ref()
  check_process(self, "ref")
  self.unref_ = nil
  C.proc_ref(self.h, true)
  return self
end

function Process:unref()
  check_process(self, "unref")
  self.unref_ = true
  C.proc_ref(self.h, false)
  return self
end

function Process:__tostring()
  return ("weft.process (%d, %s)"):format(self.pid,
    self.exited:status() == "pending" and "running" or "exited")
end

Process.wait_async = C.twin(Process.wait)
