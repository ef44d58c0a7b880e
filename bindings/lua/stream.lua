-- stream.lua: weft's streams, servers, weft.tcp, weft.unix, weft.pipe,
-- weft.wrap, weft.poll_any and weft.dns, over the primitives of stream.c.
-- Every call that may wait does it with weft.await, so it suspends a task,
-- runs the loop in the main chunk, and is cancellable; each has an _async
-- twin returning a promise.  This chunk is compiled into weft.so and run
-- by luaopen_weft with (module, primitives, task internals).
local weft, C, internals = ...

local await, promise, async = weft.await, weft.promise, weft.async
local error_mt = internals.error_mt
local pcall, error, type, select, tostring = pcall, error, type, select, tostring
local setmetatable, getmetatable, rawequal = setmetatable, getmetatable, rawequal
local math_type, string_format = math.type, string.format
local c_read, c_write = C.read, C.write

local READ, WRITE = 1, 2

-- Misuse raises at the caller's position, however deep in weft the
-- check runs (argcheck.c).
local argerror, raise, nozero, check_fd = C.argerror, C.raise, C.nozero, C.check_fd

local function typename(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and type(mt.__name) == "string" and mt.__name or type(v)
end

local function check_timeout(v, n, fname)
  if v ~= nil and (type(v) ~= "number" or not (v >= 0)) then
    argerror(n, fname, type(v) ~= "number" and ("number expected, got " .. typename(v))
      or "timeout must be >= 0")
  end
end

-- An error value for a promise twin: what the direct call returned as
-- nil, message, code.
local function io_error(msg, code)
  local kind = code == "ETIMEDOUT" and "timeout" or "io"
  return setmetatable({ kind = kind, message = msg, code = code }, error_mt)
end

-- ---- waiting ---------------------------------------------------------------

-- C.waitio(h, event, ms, fname) waits for event on handle h with timeout
-- ms (nil: none): true, or nil, message, code ("timeout" ETIMEDOUT,
-- "closed" ECLOSED, or the error a queued write met).  It suspends the
-- task without a promise; a cancellation withdraws the wait and raises.
local c_waitio = C.waitio

-- Per-direction turns (dir READ or WRITE): a call holds its direction
-- from its first byte to its last, so two readers never interleave.  The
-- handle keeps whether a turn is taken (C.take_turn, C.end_turn: the fast
-- paths in stream.c check it without entering Lua); the object keeps the
-- queue of calls waiting for it (rq, wq: present only while not empty).
local c_take_turn, c_end_turn = C.take_turn, C.end_turn
local QNAME = { "rq", "wq" }

-- Hands the turn to the first call still waiting for it, or frees it.
local function release(s, dir)
  local qname = QNAME[dir]
  local q = s[qname]
  if q then
    while q.first <= q.last do
      local p = q[q.first]
      q[q.first] = nil
      q.first = q.first + 1
      if p:status() == "pending" then
        p:resolve() -- the turn passes to it: it stays taken
        return
      end
    end
    s[qname] = nil
  end
  c_end_turn(s.h, dir)
end

-- Takes the turn, waiting for it behind the calls queued first.  Returns
-- true, or nil, message, code (the stream closed, or the turn did not
-- come within the timeout).
local function acquire(s, dir)
  if c_take_turn(s.h, dir) then return true end
  local qname = QNAME[dir]
  local q = s[qname]
  if not q then
    q = { first = 1, last = 0 }
    s[qname] = q
  end
  local p = promise()
  q.last = q.last + 1
  q[q.last] = p
  local ok, err = pcall(await, p, s.timeout)
  if not ok then
    if p:status() == "pending" then
      p:cancel()
    elseif p:status() == "fulfilled" then
      -- handed the turn just as it gave up: pass it on
      release(s, dir)
    end
    if weft.is_timeout(err) then return nil, "timeout", "ETIMEDOUT" end
    error(err, 0)
  end
  if s.closed then
    release(s, dir)
    return nil, "closed", "ECLOSED"
  end
  return true
end

-- ---- streams ---------------------------------------------------------------

local Stream = { __name = "weft.stream" }
Stream.__index = Stream

-- A stream's turns end through to-be-closed guards, so an error (a
-- cancellation) inside a call gives its turn back without a pcall.
local RGuard = { __close = function(g) release(g.s, READ) end }
local WGuard = { __close = function(g) release(g.s, WRITE) end }

local function new_stream(h, kind, file)
  local s = setmetatable({ h = h, kind = kind, file = file, closed = false }, Stream)
  s.rguard = setmetatable({ s = s }, RGuard)
  s.wguard = setmetatable({ s = s }, WGuard)
  return s
end

local function check_stream(s, fname)
  if getmetatable(s) ~= Stream then
    argerror(1, fname, "weft.stream expected, got " .. typename(s))
  end
  if s.closed then raise("attempt to use a closed stream") end
end

local formats = { l = true, L = true, a = true, ["*l"] = true, ["*L"] = true, ["*a"] = true }

local function check_format(f, n, fname)
  if type(f) == "number" then
    if math_type(f) ~= "integer" then argerror(n, fname, "number has no integer representation") end
  elseif not formats[f] then
    argerror(n, fname, "invalid format")
  end
end

-- Reads one format, waiting as needed; the read turn is held.
local function read1(s, fmt)
  local h = s.h
  while true do
    local ok, v, code = c_read(h, fmt)
    if ok then return v end
    if ok == nil then return nil, "read: " .. v, code end
    local r, msg, c = c_waitio(h, READ, s.timeout, "read")
    if not r then return nil, msg, c end
  end
end

-- Stream:read and Stream:write are C (stream.c: C.methods): they check
-- the arguments, do what the buffer or one syscall can, and wait in a task
-- for one format; the rest comes here.
local slow = {}

-- read with checked formats (at least one), when the turn is taken, for
-- several formats, or to wait in the main chunk.
function slow.read(self, ...)
  local n = select("#", ...)
  local ok, msg, code = acquire(self, READ)
  if not ok then return nil, msg, code end
  local _ <close> = self.rguard
  local v, m, c = read1(self, (...))
  if n <= 1 or v == nil then
    if v == nil and m then return nil, m, c end
    return v
  end
  local out = { v }
  for i = 2, n do
    v, m, c = read1(self, (select(i, ...)))
    if v == nil then
      if m then return nil, m, c end
      return table.unpack(out, 1, i)
    end
    out[i] = v
  end
  return table.unpack(out, 1, n)
end

-- Writes one string fully, waiting as needed; the write turn is held.
local function write1(s, data, off)
  local h, len = s.h, #data
  while true do
    local new, msg, code = c_write(h, data, off)
    if not new then return nil, "write: " .. msg, code end
    if new >= len then return true end
    off = new
    local r, m, c = c_waitio(h, WRITE, s.timeout, "write")
    if not r then
      if c ~= "ETIMEDOUT" and c ~= "ECLOSED" then m = "write: " .. m end
      return nil, m, c
    end
  end
end

-- write with checked values: several, a number, or while the turn is
-- taken.
function slow.write(self, ...)
  local n = select("#", ...)
  local ok, msg, code = acquire(self, WRITE)
  if not ok then return nil, msg, code end
  local _ <close> = self.wguard
  for i = 1, n do
    local v = select(i, ...)
    local r, m, c = write1(self, type(v) == "number" and tostring(v) or v, 0)
    if not r then return nil, m, c end
  end
  return self
end

-- The rest of a string from off, after the fast path met a full queue
-- (the turn was free).
function slow.write_rest(self, data, off)
  c_take_turn(self.h, WRITE)
  local _ <close> = self.wguard
  local r, m, c = write1(self, data, off)
  if not r then return nil, m, c end
  return self
end

slow.release = release
-- (weft.socket, socket.lua, serves its objects' calls by the same turns)
C.acquire, C.release = acquire, release
Stream.read, Stream.write = C.methods(Stream, slow)

-- Waits until every queued byte reached the kernel.
function Stream:flush()
  check_stream(self, "flush")
  if C.queued(self.h) == 0 then return self end
  local ok, msg, code = acquire(self, WRITE)
  if not ok then return nil, msg, code end
  local done, r, m, c = pcall(c_waitio, self.h, WRITE, self.timeout, "flush")
  release(self, WRITE)
  if not done then error(r, 0) end
  if not r then return nil, m, c end
  return self
end

function Stream:lines(...)
  check_stream(self, "lines")
  local n = select("#", ...)
  for i = 1, n do check_format((select(i, ...)), i, "lines") end
  local fmts = { ... }
  return function()
    if self.closed then return nil end
    local v, msg = self:read(table.unpack(fmts, 1, n))
    if v == nil and msg then error(msg, 2) end
    return v
  end
end

-- Closes now: every pending call returns nil, "closed", "ECLOSED".
-- Accepts that found no descriptor free wait on waiters kept here, and
-- every descriptor weft closes wakes them to try again (see
-- Server:accept).
local new_waiter = internals.waiter
local backing_off = {}

local function fds_freed()
  if next(backing_off) then
    local waiters = backing_off
    backing_off = {}
    for w in pairs(waiters) do w:wake() end
  end
end

local function close_now(s)
  if s.closed then return end
  s.closed = true
  C.close(s.h)
  fds_freed()
  for _, q in ipairs({ s.rq, s.wq }) do
    for i = q and q.first or 1, q and q.last or 0 do
      local p = q[i]
      if p and p:status() == "pending" then p:resolve() end
    end
  end
end

-- Closes the stream; data still queued is flushed first (within the
-- stream's timeout) unless a writer is blocked, or inside a finalizer.
function Stream:close()
  if getmetatable(self) ~= Stream then
    argerror(1, "close", "weft.stream expected, got " .. typename(self))
  end
  if self.closed then return nil, "closed", "ECLOSED" end
  if C.queued(self.h) > 0 and c_take_turn(self.h, WRITE) then
    pcall(c_waitio, self.h, WRITE, self.timeout, "flush")
    c_end_turn(self.h, WRITE)
  end
  close_now(self)
  return true
end
Stream.__close = function(s) if not s.closed then close_now(s) end end
C.close_now = close_now

function Stream:shutdown()
  check_stream(self, "shutdown")
  local ok, msg, code = C.shutdown(self.h)
  if not ok then return nil, "shutdown: " .. msg, code end
  return true
end

local function name_of(s, peer, fname)
  check_stream(s, fname)
  local a, b, c = C.name(s.h, peer)
  if a == nil and b then return nil, fname .. ": " .. b, c end
  return a, b
end

function Stream:peername() return name_of(self, true, "peername") end
function Stream:sockname() return name_of(self, false, "sockname") end

-- (sndbuf and rcvbuf are C ints, the others sizes)
local option_types = { nodelay = "boolean", keepalive = "boolean", reuseaddr = "boolean",
  reuseport = "boolean", broadcast = "boolean", sndbuf = "int", rcvbuf = "int",
  writequeue = "size", maxline = "size" }
local INT_MAX = 0x7fffffff

-- Sets socket option name on handle h (misuse raises).
local function set_option(h, name, value)
  if type(name) ~= "string" then argerror(1, "setoption", "string expected, got " .. typename(name)) end
  local t = option_types[name]
  if not t then argerror(1, "setoption", "unknown option '" .. name .. "'") end
  if t == "boolean" and type(value) ~= "boolean" then
    argerror(2, "setoption", "boolean expected, got " .. typename(value))
  elseif t ~= "boolean" and (math_type(value) ~= "integer" or value <= 0) then
    argerror(2, "setoption", "size must be an integer > 0")
  elseif t == "int" and value > INT_MAX then
    argerror(2, "setoption", "size must be at most " .. INT_MAX)
  end
  local ok, msg, code = C.setoption(h, name, value)
  if not ok then return nil, "setoption: " .. msg, code end
  return true
end

function Stream:setoption(name, value)
  check_stream(self, "setoption")
  return set_option(self.h, name, value)
end

-- ---- promise twins -----------------------------------------------------------

-- Makes fn's twin: a promise of fn's values, rejected with an error value
-- (message, code) where fn returned nil, message, code.  A nil first value
-- without a code (EOF, or a process ended by a signal) is a value.  The
-- other Lua parts (process.lua, fs.lua) get it as C.twin.
local function twin(fn)
  local function settle(...)
    local r = table.pack(fn(...))
    if r[1] == nil and r[3] ~= nil then error(io_error(r[2], r[3]), 0) end
    return table.unpack(r, 1, r.n)
  end
  return function(...) return async(settle, ...) end
end
C.twin = twin

-- What streams, servers and UDP sockets share: a timeout for every later
-- wait, their descriptor, and their names in tostring.
local function handle_methods(Class, check, label)
  function Class:settimeout(ms)
    check(self, "settimeout")
    check_timeout(ms, 1, "settimeout")
    self.timeout = ms
    return self
  end
  function Class:gettimeout()
    if getmetatable(self) ~= Class then
      argerror(1, "gettimeout", label .. " expected, got " .. typename(self))
    end
    return self.timeout
  end
  function Class:getfd()
    check(self, "getfd")
    return C.fd(self.h)
  end
  function Class:__tostring()
    if self.closed then return label .. " (closed)" end
    return string_format("%s (%s)", label, tostring(self.h):match("0x%x+") or "?")
  end
end

handle_methods(Stream, check_stream, "weft.stream")

for _, name in ipairs({ "read", "write", "flush", "close" }) do
  Stream[name .. "_async"] = twin(Stream[name])
end

-- ---- servers ---------------------------------------------------------------

local Server = { __name = "weft.server" }
Server.__index = Server

local function check_server(s, fname)
  if getmetatable(s) ~= Server then
    argerror(1, fname, "weft.server expected, got " .. typename(s))
  end
  if s.closed then raise("attempt to use a closed server") end
end

local function server_close(s)
  if s.closed then return end
  s.closed = true
  C.close(s.h)
  fds_freed()
  if s.path and s.unlink then os.remove(s.path) end
  if s.on_close then s:on_close() end -- (a TLS server's: tls.lua)
  local q = s.rq
  for i = q and q.first or 1, q and q.last or 0 do
    local p = q[i]
    if p and p:status() == "pending" then p:resolve() end
  end
end

local function set_nodelay(st)
  if st.kind == "tcp" then pcall(C.setoption, st.h, "nodelay", true) end
end

-- Out of descriptors (EMFILE, ENFILE) or of kernel memory (ENOBUFS,
-- ENOMEM), accept(2) fails and leaves the connection in the backlog, and
-- the listening socket stays readable: waiting for readiness would spin.
-- Such an accept waits instead, BACKOFF_MIN ms at first, twice as long
-- each time up to BACKOFF_MAX, or until weft closes a descriptor, and
-- tries again; the loop runs everything else meanwhile.  (libuv closes a
-- reserved descriptor to accept and drop the connection instead; waiting
-- serves it once a descriptor frees, as Go's http server does.)
local BACKOFF_MIN, BACKOFF_MAX = 5, 1000
local exhausted = { EMFILE = true, ENFILE = true, ENOBUFS = true, ENOMEM = true }

-- Waits ms for a descriptor to free; raises a cancellation.
local function back_off(ms)
  local w = new_waiter()
  backing_off[w] = true
  local ok, err = w:park(ms)
  backing_off[w] = nil
  if ok == false then error(err, 0) end
end

-- Accepts one connection: a stream, or nil, message, code.
function Server:accept(timeout)
  check_server(self, "accept")
  check_timeout(timeout, 1, "accept")
  local ms = timeout or self.timeout
  local deadline = ms and weft.now() + ms
  local ok, msg, code = acquire(self, READ)
  if not ok then return nil, msg, code end
  local done, s, m, c = pcall(function()
    local pause = 0
    while true do
      local fd, emsg, ecode = C.accept(self.h)
      if fd then
        local h, omsg, ocode = C.open(fd, false)
        if not h then C.closefd(fd); return nil, "accept: " .. omsg, ocode end
        local st = new_stream(h, self.kind)
        if self.nodelay then set_nodelay(st) end
        return st
      end
      local left = deadline and deadline - weft.now()
      if fd == false then
        local r, wm, wc = c_waitio(self.h, READ, left and math.max(left, 0), "accept")
        if not r then return nil, wm, wc end
      elseif exhausted[ecode] then
        if left and left <= 0 then return nil, "timeout", "ETIMEDOUT" end
        pause = math.min(math.max(pause * 2, BACKOFF_MIN), BACKOFF_MAX)
        back_off(left and math.min(left, pause) or pause)
      elseif ecode ~= "ECONNABORTED" then -- (that one went away: the next)
        return nil, "accept: " .. emsg, ecode
      end
    end
  end)
  release(self, READ)
  if not done then error(s, 0) end
  return s, m, c
end

function Server:close()
  if getmetatable(self) ~= Server then
    argerror(1, "close", "weft.server expected, got " .. typename(self))
  end
  if self.closed then return nil, "closed", "ECLOSED" end
  server_close(self)
  return true
end
Server.__close = server_close

function Server:sockname()
  check_server(self, "sockname")
  if self.path then return self.path end
  local a, b, c = C.name(self.h, false)
  if a == nil and b then return nil, "sockname: " .. b, c end
  return a, b
end

Server.accept_async = twin(Server.accept)
handle_methods(Server, check_server, "weft.server")

-- ---- DNS -------------------------------------------------------------------

local dns = {}
weft.dns = dns

local families = { inet = true, inet6 = true }
local socktypes = { stream = true, dgram = true }

local function check_opts(opts, n, fname, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then argerror(n, fname, "table expected, got " .. typename(opts)) end
  for k in pairs(opts) do
    if not allowed[k] then argerror(n, fname, "unknown option '" .. tostring(k) .. "'") end
  end
  return opts
end

local gai_opts = { family = true, socktype = true, passive = true, canonname = true }

-- Resolves host and service: a list of { family, address, port, socktype },
-- or nil, message, code.
function dns.getaddrinfo(host, service, opts)
  if host ~= nil and type(host) ~= "string" then
    argerror(1, "getaddrinfo", "string expected, got " .. typename(host))
  end
  if service ~= nil and type(service) ~= "string" and math_type(service) ~= "integer" then
    argerror(2, "getaddrinfo", "string or integer expected, got " .. typename(service))
  end
  if host == nil and service == nil then argerror(1, "getaddrinfo", "host or service expected") end
  nozero(host, 1, "getaddrinfo")
  nozero(service, 2, "getaddrinfo")
  opts = check_opts(opts, 3, "getaddrinfo", gai_opts)
  if opts.family ~= nil and not families[opts.family] then
    argerror(3, "getaddrinfo", "field 'family' must be 'inet' or 'inet6'")
  end
  if opts.socktype ~= nil and not socktypes[opts.socktype] then
    argerror(3, "getaddrinfo", "field 'socktype' must be 'stream' or 'dgram'")
  end
  local p = promise()
  local ok, msg, code = C.getaddrinfo(host, service ~= nil and tostring(service) or nil,
    opts.family, opts.socktype, opts.passive, opts.canonname, p)
  if not ok then return nil, "getaddrinfo: " .. msg, code end
  local done, list = pcall(await, p)
  if done then return list end
  if getmetatable(list) == error_mt and list.kind == "io" then return nil, list.message, list.code end
  error(list, 0)
end

function dns.getnameinfo(address, port, opts)
  if type(address) ~= "string" then argerror(1, "getnameinfo", "string expected, got " .. typename(address)) end
  nozero(address, 1, "getnameinfo")
  if port ~= nil and math_type(port) ~= "integer" then
    argerror(2, "getnameinfo", "integer expected, got " .. typename(port))
  end
  opts = check_opts(opts, 3, "getnameinfo", { numeric = true })
  local family = address:find(":", 1, true) and "inet6" or "inet"
  local p = promise()
  local ok, msg, code = C.getnameinfo(family, address, port or 0, opts.numeric, p)
  if not ok then
    if code == "EINVAL" then argerror(1, "getnameinfo", "not a numeric address") end
    return nil, "getnameinfo: " .. msg, code
  end
  local done, host, serv = pcall(await, p)
  if done then return host, serv end
  if getmetatable(host) == error_mt and host.kind == "io" then return nil, host.message, host.code end
  error(host, 0)
end

dns.getaddrinfo_async = twin(dns.getaddrinfo)
dns.getnameinfo_async = twin(dns.getnameinfo)

-- ---- TCP -------------------------------------------------------------------

local tcp = {}
weft.tcp = tcp

local function check_port(port, n, fname)
  if math_type(port) ~= "integer" then
    argerror(n, fname, "integer expected, got " .. (math_type(port) or typename(port)))
  end
  if port < 0 or port > 65535 then argerror(n, fname, "port must be in 0..65535") end
end

local function check_host(host, n, fname)
  if type(host) ~= "string" then argerror(n, fname, "string expected, got " .. typename(host)) end
  if host == "" then argerror(n, fname, "host must not be empty") end
  nozero(host, n, fname)
end

-- Numeric hosts skip the resolver.
local function numeric(host)
  if host:match("^%d+%.%d+%.%d+%.%d+$") then return "inet" end
  if host:find(":", 1, true) then return "inet6" end
end

local function resolve(host, port, passive, family, fname)
  local fam = numeric(host)
  if fam then
    if family and family ~= fam then
      return nil, fname .. ": address family not supported", "EAFNOSUPPORT"
    end
    return { { family = fam, address = host, port = port } }
  end
  local list, msg, code = dns.getaddrinfo(host, port, { socktype = "stream", passive = passive, family = family })
  if not list then return nil, fname .. ": " .. msg:gsub("^getaddrinfo: ", ""), code end
  if #list == 0 then return nil, fname .. ": unknown node or service", "EAI_NONAME" end
  return list
end

C.resolve = resolve -- (and weft.socket's names)

local connect_opts = { timeout = true, family = true, nodelay = true }

-- Connects to one address within ms; returns a stream or nil, msg, code.
local function connect_one(a, ms, kind)
  local fd, msg, code = C.connect(a.family, a.address, a.port, "stream")
  if not fd then return nil, msg, code end
  local h, omsg, ocode = C.open(fd, false)
  if not h then C.closefd(fd); return nil, omsg, ocode end
  local s = new_stream(h, kind)
  local ok, done, m, c = pcall(c_waitio, h, WRITE, ms, "connect")
  if not ok then close_now(s); error(done, 0) end
  if done then done, m, c = C.sockerr(h) end
  if not done then
    close_now(s)
    if c == "ETIMEDOUT" then m = "timed out" end
    return nil, m, c
  end
  return s
end

function tcp.connect(host, port, opts)
  check_host(host, 1, "connect")
  check_port(port, 2, "connect")
  opts = check_opts(opts, 3, "connect", connect_opts)
  check_timeout(opts.timeout, 3, "connect")
  if opts.family ~= nil and not families[opts.family] then
    argerror(3, "connect", "field 'family' must be 'inet' or 'inet6'")
  end
  local deadline = opts.timeout and weft.now() + opts.timeout
  local list, msg, code = resolve(host, port, false, opts.family, "connect")
  if not list then return nil, msg, code end
  for _, a in ipairs(list) do
    local left = deadline and math.max(0, deadline - weft.now())
    local s
    s, msg, code = connect_one(a, left, "tcp")
    if s then
      if opts.nodelay ~= false then set_nodelay(s) end
      return s
    end
    if code == "ETIMEDOUT" then break end
  end
  return nil, "connect: " .. msg, code
end

local listen_opts = { backlog = true, reuseaddr = true, reuseport = true, v6only = true,
  family = true, nodelay = true }

local REUSEADDR, REUSEPORT, V6ONLY = 1, 2, 4

function tcp.listen(host, port, opts)
  if host == nil or host == "*" then host = "0.0.0.0" end
  check_host(host, 1, "listen")
  check_port(port, 2, "listen")
  opts = check_opts(opts, 3, "listen", listen_opts)
  if opts.backlog ~= nil and (math_type(opts.backlog) ~= "integer" or opts.backlog < 1) then
    argerror(3, "listen", "field 'backlog' must be an integer >= 1")
  end
  local list, msg, code = resolve(host, port, true, opts.family, "listen")
  if not list then return nil, msg, code end
  local flags = (opts.reuseaddr ~= false and REUSEADDR or 0) |
    (opts.reuseport and REUSEPORT or 0) | (opts.v6only and V6ONLY or 0)
  for _, a in ipairs(list) do
    local fd
    fd, msg, code = C.listen(a.family, a.address, a.port, "stream", opts.backlog or 511, flags)
    if fd then
      local h, omsg, ocode = C.open(fd, false)
      if not h then C.closefd(fd); return nil, "listen: " .. omsg, ocode end
      return setmetatable({ h = h, kind = "tcp", closed = false,
        nodelay = opts.nodelay ~= false }, Server)
    end
  end
  return nil, "listen: " .. msg, code
end

tcp.connect_async = twin(tcp.connect)

-- ---- Unix domain sockets -------------------------------------------------------

local unix = {}
weft.unix = unix

local function check_path(path, fname)
  if type(path) ~= "string" then argerror(1, fname, "string expected, got " .. typename(path)) end
  if path == "" or #path > 107 then argerror(1, fname, "path must have 1 to 107 bytes") end
  nozero(path, 1, fname)
end

function unix.connect(path, opts)
  check_path(path, "connect")
  opts = check_opts(opts, 2, "connect", { timeout = true })
  check_timeout(opts.timeout, 2, "connect")
  local s, msg, code = connect_one({ family = "unix", address = path }, opts.timeout, "unix")
  if not s then return nil, "connect: " .. msg, code end
  return s
end

function unix.listen(path, opts)
  check_path(path, "listen")
  opts = check_opts(opts, 2, "listen", { backlog = true, unlink = true })
  local fd, msg, code = C.listen("unix", path, 0, "stream", opts.backlog or 511, 0)
  if not fd then return nil, "listen: " .. msg, code end
  local h, omsg, ocode = C.open(fd, false)
  if not h then C.closefd(fd); return nil, "listen: " .. omsg, ocode end
  return setmetatable({ h = h, kind = "unix", closed = false,
    path = path, unlink = opts.unlink ~= false }, Server)
end

unix.connect_async = twin(unix.connect)

-- ---- UDP ---------------------------------------------------------------------

local Udp = { __name = "weft.udp" }
Udp.__index = Udp

local udp = {}
weft.udp = udp

local function check_udp(u, fname)
  if getmetatable(u) ~= Udp then
    argerror(1, fname, "weft.udp expected, got " .. typename(u))
  end
  if u.closed then raise("attempt to use a closed socket") end
end

-- Binds a datagram socket to host and port (0: a free port).
function udp.bind(host, port, opts)
  if host == nil or host == "*" then host = "0.0.0.0" end
  check_host(host, 1, "bind")
  check_port(port, 2, "bind")
  opts = check_opts(opts, 3, "bind", { reuseaddr = true, reuseport = true, broadcast = true,
    family = true, v6only = true })
  local list, msg, code = resolve(host, port, true, opts.family, "bind")
  if not list then return nil, msg, code end
  local flags = (opts.reuseaddr and REUSEADDR or 0) | (opts.reuseport and REUSEPORT or 0) |
    (opts.v6only and V6ONLY or 0)
  for _, a in ipairs(list) do
    local fd
    fd, msg, code = C.listen(a.family, a.address, a.port, "dgram", 0, flags)
    if fd then
      local h, omsg, ocode = C.open(fd, false)
      if not h then C.closefd(fd); return nil, "bind: " .. omsg, ocode end
      local u = setmetatable({ h = h, family = a.family, closed = false }, Udp)
      if opts.broadcast then C.setoption(h, "broadcast", true) end
      return u
    end
  end
  return nil, "bind: " .. msg, code
end

-- Sends data as one datagram to host, port; true, or nil, message, code.
function Udp:sendto(data, host, port)
  check_udp(self, "sendto")
  if type(data) ~= "string" then argerror(1, "sendto", "string expected, got " .. typename(data)) end
  check_host(host, 2, "sendto")
  check_port(port, 3, "sendto")
  local fam = numeric(host)
  local addr = host
  if not fam then
    local list, msg, code = dns.getaddrinfo(host, port, { socktype = "dgram", family = self.family })
    if not list or not list[1] then return nil, "sendto: " .. (msg or "unknown node or service"), code or "EAI_NONAME" end
    fam, addr = list[1].family, list[1].address
  end
  while true do
    local ok, msg, code = C.sendto(self.h, data, fam, addr, port)
    if ok then return true end
    if ok == nil then
      if code == "EINVAL" and fam ~= self.family then
        return nil, "sendto: address family not supported", "EAFNOSUPPORT"
      end
      return nil, "sendto: " .. msg, code
    end
    local r, m, c = c_waitio(self.h, WRITE, self.timeout, "sendto")
    if not r then return nil, m, c end
  end
end

-- Receives one datagram (up to size bytes, default 65536): data, host,
-- port; or nil, message, code.
function Udp:recvfrom(size, timeout)
  check_udp(self, "recvfrom")
  if size ~= nil and (math_type(size) ~= "integer" or size < 1) then
    argerror(1, "recvfrom", "size must be an integer >= 1")
  end
  check_timeout(timeout, 2, "recvfrom")
  local ok, msg, code = acquire(self, READ)
  if not ok then return nil, msg, code end
  local done, data, host, port = pcall(function()
    while true do
      local d, a, b = C.recvfrom(self.h, size or 65536)
      if d then return d, a, b end
      if d == nil then return nil, "recvfrom: " .. a, b end
      local r, m, c = c_waitio(self.h, READ, timeout or self.timeout, "recvfrom")
      if not r then return nil, m, c end
    end
  end)
  release(self, READ)
  if not done then error(data, 0) end
  return data, host, port
end

function Udp:sockname()
  check_udp(self, "sockname")
  local a, b, c = C.name(self.h, false)
  if a == nil and b then return nil, "sockname: " .. b, c end
  return a, b
end

function Udp:close()
  if getmetatable(self) ~= Udp then argerror(1, "close", "weft.udp expected, got " .. typename(self)) end
  if self.closed then return nil, "closed", "ECLOSED" end
  close_now(self)
  return true
end
Udp.__close = function(u) if not u.closed then close_now(u) end end

function Udp:setoption(name, value)
  check_udp(self, "setoption")
  return set_option(self.h, name, value)
end

handle_methods(Udp, check_udp, "weft.udp")
Udp.recvfrom_async = twin(Udp.recvfrom)
Udp.sendto_async = twin(Udp.sendto)

-- ---- pipes and wrapped descriptors ---------------------------------------------

function weft.pipe()
  local r, w, code = C.pipe()
  if not r then return nil, "pipe: " .. w, code end
  local hr = C.open(r, false)
  local hw = C.open(w, false)
  return new_stream(hr, "pipe"), new_stream(hw, "pipe")
end

function weft.wrap(f, opts)
  local fd
  if math_type(f) == "integer" then
    if f < 0 then argerror(1, "wrap", "invalid file descriptor") end
    fd = f
  elseif io.type(f) == "file" then
    fd = C.fileno(f)
  elseif io.type(f) == "closed file" then
    argerror(1, "wrap", "attempt to use a closed file")
  else
    argerror(1, "wrap", "integer or file expected, got " .. typename(f))
  end
  opts = check_opts(opts, 2, "wrap", { own = true })
  -- A Lua file keeps its descriptor; an integer one is the caller's unless
  -- own = true hands it over.
  local keep = not (opts.own and io.type(f) ~= "file")
  local h, msg, code = C.open(fd, keep)
  if not h then
    if code == "EPERM" then
      msg = "a regular file or directory cannot be polled: use weft.fs"
    end
    return nil, "wrap: " .. msg, code
  end
  -- (the Lua file stays reachable while the stream is)
  return new_stream(h, "fd", f)
end

-- ---- polling many descriptors ------------------------------------------------------

local POLL_ASK = weft.POLLIN | weft.POLLOUT | weft.POLLPRI
local POLL_ALL = POLL_ASK | weft.POLLERR | weft.POLLHUP

-- Waits until any of the descriptors is ready (or timeout_ms passes) and
-- returns { [fd] = revents } for those that are (empty after a timeout),
-- or nil, "EBADF" / "EPERM".
function weft.poll_any(set, timeout)
  if type(set) ~= "table" then argerror(1, "poll_any", "table expected, got " .. typename(set)) end
  check_timeout(timeout, 2, "poll_any")
  for fd, events in pairs(set) do
    check_fd(fd, 1, "poll_any")
    if math_type(events) ~= "integer" then
      argerror(1, "poll_any", "events for descriptor " .. tostring(fd) .. " must be an integer")
    end
    if events & POLL_ASK == 0 or events & ~POLL_ALL ~= 0 then
      argerror(1, "poll_any", "events for descriptor " .. tostring(fd) ..
        " must ask for POLLIN, POLLOUT or POLLPRI")
    end
  end
  local p, got, ids = promise(), {}, {}
  local function fired(fd, revents)
    if revents ~= 0 then got[fd] = revents end
    p:resolve()
  end
  for fd, events in pairs(set) do
    local id, code = weft.poll(fd, events, nil, fired)
    if not id then
      for _, i in ipairs(ids) do weft.cancel(i) end
      return nil, code
    end
    ids[#ids + 1] = id
  end
  local timer = timeout and weft.once(timeout, function() p:resolve() end)
  local ok, err = pcall(await, p)
  for _, id in ipairs(ids) do weft.cancel(id) end
  if timer then weft.cancel(timer) end
  if not ok then error(err, 0) end
  return got
end

-- ---- what tls.lua builds on ----------------------------------------------------

C.stream_lua = { Stream = Stream, Server = Server, typename = typename, close_now = close_now }
