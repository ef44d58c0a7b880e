-- process.lua: weft.process.spawn, over the primitives of process.c.  The
-- child's pipes are weft streams; p:wait() suspends a task (or runs the
-- loop in the main chunk) until the child exits.  Compiled into weft.so
-- and run by luaopen_weft with (module, primitives, task internals).
local weft, C, internals = ...

local type, tostring, pairs, ipairs = type, tostring, pairs, ipairs
local getmetatable, setmetatable, math_type = getmetatable, setmetatable, math.type

-- Misuse raises at the caller's position (argcheck.c).
local argerror, nozero = C.argerror, C.nozero

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

-- The strings of argv list t (argument n of fname, strings or numbers,
-- without a zero byte: C would cut them there).
local function check_argv(t, n, fname)
  for i, a in ipairs(t) do
    if type(a) ~= "string" and type(a) ~= "number" then
      argerror(n, fname, ("argument %d must be a string"):format(i))
    end
    nozero(a, n, fname, "argv[" .. i .. "]")
  end
end

-- The environment of field 'env' (of argument n of fname) as a sorted
-- list of "name=value", or nil.
local function check_env(env, n, fname)
  if env == nil then return nil end
  if type(env) ~= "table" then argerror(n, fname, "field 'env' must be a table") end
  local list = {}
  for k, v in pairs(env) do
    if type(k) ~= "string" or k:find("=", 1, true) or (type(v) ~= "string" and type(v) ~= "number") then
      argerror(n, fname, "field 'env' must map names to strings")
    end
    nozero(k, n, fname, "a name in field 'env'")
    nozero(v, n, fname, ("env[%q]"):format(k))
    list[#list + 1] = k .. "=" .. tostring(v)
  end
  table.sort(list)
  return list
end

local function check_cwd(cwd, n, fname)
  if cwd ~= nil and type(cwd) ~= "string" then argerror(n, fname, "field 'cwd' must be a string") end
  nozero(cwd, n, fname, "field 'cwd'")
end

-- Why spawn (or run: op) could not start prog in cwd: distinct messages
-- for a missing cwd (cwd_code, from spawn's look at it), a missing
-- program and a file that cannot be executed.
local function why(op, prog, cwd, msg, code, cwd_code)
  if cwd_code == "ENOENT" then return op .. ": no such directory (cwd): " .. cwd, "ENOENT" end
  if cwd_code == "ENOTDIR" then return op .. ": not a directory (cwd): " .. cwd, "ENOTDIR" end
  if code == "ENOENT" then
    if prog:find("/", 1, true) then return op .. ": no such program: " .. prog, "ENOENT" end
    return op .. ": program not found in PATH: " .. prog, "ENOENT"
  end
  if code == "EACCES" then return op .. ": permission denied (not executable): " .. prog, "EACCES" end
  return op .. ": " .. msg, code
end

-- Starts { "cmd", "arg", ..., stdin=, stdout=, stderr=, env=, cwd=,
-- detached= }: a process object, or nil, message, code.
function process.spawn(opts)
  if type(opts) ~= "table" then argerror(1, "spawn", "table expected, got " .. type(opts)) end
  if type(opts[1]) ~= "string" or opts[1] == "" then
    argerror(1, "spawn", "the command (opts[1]) must be a non-empty string")
  end
  check_argv(opts, 1, "spawn")
  local argv = {}
  for i, a in ipairs(opts) do argv[i] = tostring(a) end
  for k in pairs(opts) do
    if math_type(k) ~= "integer" and not allowed[k] then
      argerror(1, "spawn", "unknown option '" .. tostring(k) .. "'")
    end
  end
  local env = check_env(opts.env, 1, "spawn")
  check_cwd(opts.cwd, 1, "spawn")
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
  local h, pid, code, cwd_code = C.spawn(argv, env, opts.cwd, fds[1], fds[2], fds[3], opts.detached, exited)
  for _, fd in ipairs(child_ends) do C.closefd(fd) end
  if not h then
    for _, s in pairs(streams) do s:close() end
    return nil, why("spawn", argv[1], opts.cwd, pid, code, cwd_code)
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

-- ---- weft.process.run ------------------------------------------------------

-- After SIGTERM, how long a child gets to exit before SIGKILL.
local GRACE_MS = 2000
local run_allowed = { input = true, cwd = true, env = true, timeout = true, max_output = true }

-- Ends child p the way run's timeout and cancellation do: SIGTERM, then
-- SIGKILL after GRACE_MS, and waits until it is reaped.
local function terminate(p)
  p:kill("SIGTERM")
  local code, why = p:wait(GRACE_MS)
  if code == nil and why == "timeout" then
    p:kill("SIGKILL")
    p:wait()
  end
end

-- Collects stream s into out[1] (at most max bytes kept) and counts the
-- rest in out.dropped; closes s at the end.
local function collect(s, max, out)
  local parts, kept = {}, 0
  while true do
    local chunk = s:read(-65536)
    if not chunk then break end
    local room = max and math.max(0, max - kept) or #chunk
    if room < #chunk then
      out.dropped = out.dropped + #chunk - room
      chunk = chunk:sub(1, room)
    end
    if #chunk > 0 then
      parts[#parts + 1] = chunk
      kept = kept + #chunk
    end
  end
  s:close()
  out[1] = table.concat(parts)
end

-- run(argv[, opts]) -> { status, signal, stdout, stderr, stdout_dropped,
-- stderr_dropped }, or nil, message, code when the program cannot start.
-- Raises a timeout error (weft.is_timeout) after opts.timeout ms, once the
-- child is reaped.
function process.run(argv, opts)
  if type(argv) ~= "table" then argerror(1, "run", "table expected, got " .. type(argv)) end
  if type(argv[1]) ~= "string" or argv[1] == "" then
    argerror(1, "run", "the command (argv[1]) must be a non-empty string")
  end
  check_argv(argv, 1, "run")
  if opts ~= nil and type(opts) ~= "table" then argerror(2, "run", "table expected, got " .. type(opts)) end
  opts = opts or {}
  for k in pairs(opts) do
    if not run_allowed[k] then argerror(2, "run", "unknown option '" .. tostring(k) .. "'") end
  end
  check_env(opts.env, 2, "run")
  check_cwd(opts.cwd, 2, "run")
  if opts.input ~= nil and type(opts.input) ~= "string" then
    argerror(2, "run", "field 'input' must be a string")
  end
  local timeout, max = opts.timeout, opts.max_output
  if timeout ~= nil and (type(timeout) ~= "number" or not (timeout >= 0)) then
    argerror(2, "run", "field 'timeout' must be a number >= 0")
  end
  if max ~= nil and (math_type(max) ~= "integer" or max < 0) then
    argerror(2, "run", "field 'max_output' must be an integer >= 0")
  end
  local spec = { stdin = opts.input and "pipe" or "null", stdout = "pipe", stderr = "pipe",
    cwd = opts.cwd, env = opts.env }
  for i, a in ipairs(argv) do spec[i] = a end
  local p, msg, code = process.spawn(spec)
  if not p then return nil, "run: " .. msg:gsub("^spawn: ", ""), code end
  local out, err = { dropped = 0 }, { dropped = 0 }
  local jobs = { weft.async(collect, p.stdout, max, out), weft.async(collect, p.stderr, max, err) }
  if opts.input then
    jobs[3] = weft.async(function()
      p.stdin:write(opts.input) -- (a child that exits unread gives EPIPE: fine)
      p.stdin:close()
    end)
  end
  local ok, status, signal = pcall(p.wait, p, timeout)
  if not ok or signal == "timeout" then
    -- Timed out, or this task was cancelled: end the child and its pipes
    -- before going on, shielded so that the cleanup's waits work in a
    -- cancelled task (awaiting it then returns once the child is reaped).
    weft.shield(function()
      terminate(p)
      for _, name in ipairs({ "stdin", "stdout", "stderr" }) do
        if p[name] and not p[name].closed then p[name]:close() end
      end
      weft.await(weft.settle(jobs))
    end)
    if not ok then error(status, 0) end
    error(setmetatable({ kind = "timeout", code = "ETIMEDOUT",
      message = ("run: %s timed out after %s ms"):format(argv[1], tostring(timeout)) },
      internals.error_mt), 0)
  end
  weft.await(jobs)
  return { status = signal == nil and status or nil, signal = signal,
    stdout = out[1], stderr = err[1], stdout_dropped = out.dropped, stderr_dropped = err.dropped }
end
