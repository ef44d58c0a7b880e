-- socket.lua: weft.socket, LuaSocket's API (tcp, udp, select, sleep,
-- gettime) over weft's stream handles, so that code written for LuaSocket
-- (socket.http, socket.smtp, ltn12 pumps) runs in weft tasks: a call that
-- would block waits through the stream primitives (waitio), which suspend
-- the task, or run the loop in the main chunk.  Method names, return
-- values and error strings are LuaSocket 3's.  Compiled into weft.so and
-- run by luaopen_weft with (module, primitives, task internals).
local weft, C = ...

local type, tostring, tonumber, pcall, error = type, tostring, tonumber, pcall, error
local setmetatable, getmetatable, pairs, ipairs = setmetatable, getmetatable, pairs, ipairs
local math_type, string_format, sub, byte, find, gsub =
  math.type, string.format, string.sub, string.byte, string.find, string.gsub
local c_read, c_write, c_waitio, c_fd = C.read, C.write, C.waitio, C.fd
local c_take_turn, acquire, release, close_now = C.take_turn, C.acquire, C.release, C.close_now
local now = weft.now

local READ, WRITE = 1, 2
local ALL = -math.maxinteger -- a read format: whatever is buffered

local socket = {
  _VERSION = "LuaSocket 3.0 (weft)",
  _DATAGRAMSIZE = 8192,
  _SOCKETINVALID = -1,
}
weft.socket = socket

-- Misuse raises at the caller's position (argcheck.c).
local argerror, nozero = C.argerror, C.nozero

local function typename(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and type(mt.__name) == "string" and mt.__name or type(v)
end

-- LuaSocket's words for the failures it names; weft's message otherwise.
local WORDS = {
  ETIMEDOUT = "timeout", ECLOSED = "closed", ECONNRESET = "closed", EPIPE = "closed",
  ECONNABORTED = "closed", ECONNREFUSED = "connection refused",
  EADDRINUSE = "address already in use", EISCONN = "already connected",
  EACCES = "permission denied", EAI_NONAME = "host or service not provided, or not known",
}

local function word(msg, code)
  return WORDS[code] or (gsub(msg, "^%w+: ", ""))
end

-- ---- classes -------------------------------------------------------------

local tcp_methods, udp_methods = {}, {}

-- A class as LuaSocket names it ("tcp{client}"): its metatable, whose
-- __index holds the methods and the name as `class`.
local function class(name, methods)
  local index = { class = name }
  local mt = { __name = name, __index = index }
  mt.__tostring = function(s)
    return string_format("%s: %p", name, s)
  end
  mt.__close = function(s) s:close() end
  return mt, function() for k, f in pairs(methods) do index[k] = f end end
end

local MASTER, fill_master = class("tcp{master}", tcp_methods)
local CLIENT, fill_client = class("tcp{client}", tcp_methods)
local SERVER, fill_server = class("tcp{server}", tcp_methods)
local UNCONNECTED, fill_unconnected = class("udp{unconnected}", udp_methods)
local CONNECTED, fill_connected = class("udp{connected}", udp_methods)

local TCP = { [MASTER] = true, [CLIENT] = true, [SERVER] = true }
local UDP = { [UNCONNECTED] = true, [CONNECTED] = true }

-- Raises unless s is of one of the classes (a set of metatables, or one).
local function check(s, fname, allowed, want)
  local mt = getmetatable(s)
  if mt ~= nil and (mt == allowed or allowed[mt] == true) then return s end
  argerror(1, fname, (want or allowed.__name) .. " expected, got " .. typename(s))
end

local function check_host(host, n, fname)
  if type(host) ~= "string" then argerror(n, fname, "string expected, got " .. typename(host)) end
  if host == "" then argerror(n, fname, "host must not be empty") end
  nozero(host, n, fname)
end

-- A port: an integer (or a string of one) in 0..65535.
local function check_port(port, n, fname)
  local p = math_type(port) and port or (type(port) == "string" and tonumber(port))
  p = p and math.tointeger(p)
  if not p or p < 0 or p > 65535 then argerror(n, fname, "port must be an integer in 0..65535") end
  return p
end

-- ---- descriptors, timeouts and waits -------------------------------------

-- Makes the socket's descriptor and its stream handle (LuaSocket's
-- tcp() makes it at the first bind or connect, once the family is known),
-- applying the options set before.  Returns true, or nil, error.
local function create(s, family, socktype)
  local fd, msg, code = C.sk_socket(family, socktype)
  if not fd then return nil, word(msg, code) end
  local h
  h, msg, code = C.open(fd, false)
  if not h then C.closefd(fd); return nil, word(msg, code) end
  s.h, s.family, s.closed = h, family, false
  if family == "inet6" and s.v6only ~= nil then C.sk_setopt(fd, "ipv6-v6only", s.v6only) end
  for name, v in pairs(s.pending) do C.sk_setopt(fd, name, v) end
  return true
end

-- Closes the socket now (pending calls of other tasks get "closed").
local function kill(s)
  if s.h then close_now(s) end
  s.closed = true
end

-- The end of a call's time (ms on weft.now()'s clock), for mode "t".
local function deadline_of(s)
  return s.total and now() + s.total * 1000
end

-- How long the next wait of a call may take, in ms (nil: no limit).
local function limit(s, deadline)
  local ms = s.block and s.block * 1000
  if deadline then
    local left = deadline - now()
    if left < 0 then left = 0 end
    if not ms or left < ms then ms = left end
  end
  return ms
end

-- Waits until the socket is ready for dir: true, or nil, error.  A
-- cancellation of the task closes the socket (the protocol it spoke is
-- cut in the middle) and goes on up.
local function wait(s, dir, deadline, fname)
  local ms = limit(s, deadline)
  if ms == 0 then return nil, "timeout" end
  local ok, r, msg, code = pcall(c_waitio, s.h, dir, ms, fname)
  if not ok then kill(s); error(r, 0) end
  if not r then return nil, word(msg, code) end
  return true
end

-- Takes the socket's turn for dir (tasks sharing a socket are served one
-- call at a time, in order): true, or nil, error.
local function take(s, dir)
  if c_take_turn(s.h, dir) then return true end
  local ok, r, msg, code = pcall(acquire, s, dir)
  if not ok then kill(s); error(r, 0) end
  if not r then return nil, word(msg, code) end
  return true
end

local function new(mt, family, socktype)
  local s = setmetatable({ want = family, socktype = socktype, pending = {}, closed = false,
    received = 0, sent = 0, birth = C.sk_gettime() }, mt)
  if family then
    if family == "inet6" then s.v6only = true end
    local ok, err = create(s, family, socktype)
    if not ok then return nil, err end
  end
  return s
end

-- Resolves host (and "*": any address) for s: a list of addresses, or nil,
-- error.
local function resolve(s, host, port, passive)
  if host == "*" then host = s.want == "inet6" and "::" or "0.0.0.0" end
  local list, msg, code = C.resolve(host, port, passive, s.want or s.family, "resolve")
  if not list then return nil, word(msg, code) end
  return list
end

-- Binds s to host, port (making its descriptor, of socktype, for the
-- first address if it has none): 1, or nil, error.
local function bind_to(s, host, port, socktype)
  local list, err = resolve(s, host, port, true)
  if not list then return nil, err end
  for _, a in ipairs(list) do
    if not s.h then
      local ok, e = create(s, a.family, socktype)
      if not ok then return nil, e end
    end
    if s.family == a.family then
      local ok, msg, code = C.sk_bind(c_fd(s.h), a.family, a.address, a.port)
      if ok then return 1 end
      err = word(msg, code)
    end
  end
  return nil, err or "address family not supported"
end

-- Makes s use descriptor fd (setfd): true, or nil, error.
local function adopt(s, fd)
  if math_type(fd) ~= "integer" or fd < 0 then argerror(1, "setfd", "invalid file descriptor") end
  if s.h then kill(s) end
  local h, msg, code = C.open(fd, false)
  if not h then return nil, word(msg, code) end
  s.h, s.closed = h, false
  local host = C.name(h, false)
  s.family = host and find(host, ":", 1, true) and "inet6" or "inet"
  return true
end

-- ---- methods of every class ------------------------------------------------

local function common(methods, any)
  function methods:settimeout(t, mode)
    check(self, "settimeout", any, "socket")
    if t ~= nil and type(t) ~= "number" then argerror(1, "settimeout", "number expected, got " .. typename(t)) end
    if t and t < 0 then t = nil end
    mode = mode or "b"
    if mode == "b" then
      self.block = t
      self.timeout = t and t * 1000 -- (the wait for a turn)
    elseif mode == "t" or mode == "r" then
      self.total = t
    else
      argerror(2, "settimeout", "invalid timeout mode")
    end
    return 1
  end

  function methods:gettimeout()
    check(self, "gettimeout", any, "socket")
    return self.block or -1, self.total or -1
  end

  function methods:getfd()
    check(self, "getfd", any, "socket")
    return self.h and not self.closed and c_fd(self.h) or -1
  end

  function methods:dirty()
    check(self, "dirty", any, "socket")
    return self.h ~= nil and not self.closed and C.pending(self.h)
  end

  function methods:getfamily()
    check(self, "getfamily", any, "socket")
    return (self.family or self.want) == "inet6" and "inet6" or "inet4"
  end

  function methods:getsockname()
    check(self, "getsockname", any, "socket")
    if not self.h or self.closed then return nil, "closed" end
    local host, port, code = C.name(self.h, false)
    if not host then return nil, word(port, code) end
    return host, port, self.family
  end

  function methods:setoption(name, value)
    check(self, "setoption", any, "socket")
    if type(name) ~= "string" then argerror(1, "setoption", "string expected, got " .. typename(name)) end
    if self.closed then return nil, "closed" end
    local fd = self.h and c_fd(self.h) or -1
    local ok, msg, code = C.sk_setopt(fd, name, value)
    if not ok then return nil, word(msg, code) end
    if fd < 0 then self.pending[name] = value end
    return 1
  end

  function methods:getoption(name)
    check(self, "getoption", any, "socket")
    if type(name) ~= "string" then argerror(1, "getoption", "string expected, got " .. typename(name)) end
    if self.closed then return nil, "closed" end
    if not self.h then
      C.sk_optname("getoption", name)
      return self.pending[name]
    end
    local v, msg, code = C.sk_getopt(c_fd(self.h), name)
    if v == nil then return nil, word(msg, code) end
    return v
  end

  -- Closes the socket; what send queued goes out first (within the
  -- socket's timeout; not in a cancelled task, whose waits raise).  Always
  -- 1, as LuaSocket.
  function methods:close()
    check(self, "close", any, "socket")
    if self.h and not self.closed and C.queued(self.h) > 0 and c_take_turn(self.h, WRITE) then
      pcall(wait, self, WRITE, deadline_of(self), "close")
    end
    kill(self)
    return 1
  end
end

common(tcp_methods, TCP)
common(udp_methods, UDP)

-- ---- TCP -------------------------------------------------------------------

-- Reads one pattern for receive (the read turn is held): the data, or
-- nil, error, partial.
local function recv(s, fmt, prefix, deadline)
  local h = s.h
  while true do
    local ok, v, code = c_read(h, fmt)
    if ok then
      if v == nil or v == "" then return nil, "closed", prefix end
      s.received = s.received + #v
      if fmt == "L" then
        local complete = byte(v, -1) == 10
        if complete then v = sub(v, 1, -2) end
        if find(v, "\r", 1, true) then v = gsub(v, "\r", "") end
        if not complete then return nil, "closed", prefix .. v end
      elseif fmt ~= "a" and #v < fmt then
        return nil, "closed", prefix .. v
      end
      return prefix .. v
    end
    local err
    if ok == nil then
      err = word(v, code)
    else
      local r, e = wait(s, READ, deadline, "receive")
      if not r then err = e end
    end
    if err then
      local _, rest = c_read(h, ALL)
      rest = type(rest) == "string" and rest or ""
      s.received = s.received + #rest
      if fmt == "L" then rest = gsub(rest, "\r", "") end
      return nil, err, prefix .. rest
    end
  end
end

local patterns = { ["*l"] = "L", l = "L", ["*a"] = "a", a = "a" }

function tcp_methods:receive(pattern, prefix)
  check(self, "receive", CLIENT)
  local fmt
  if pattern == nil then
    fmt = "L"
  elseif type(pattern) == "number" then
    fmt = math.tointeger(pattern)
    if not fmt or fmt < 0 then argerror(1, "receive", "invalid receive pattern") end
  else
    fmt = patterns[pattern]
    if not fmt then argerror(1, "receive", "invalid receive pattern") end
  end
  if prefix ~= nil and type(prefix) ~= "string" and type(prefix) ~= "number" then
    argerror(2, "receive", "string expected, got " .. typename(prefix))
  end
  prefix = prefix and tostring(prefix) or ""
  if self.closed then return nil, "closed", prefix end
  if fmt == 0 then return prefix end
  local ok, err = take(self, READ)
  if not ok then return nil, err, prefix end
  local v, e, partial = recv(self, fmt, prefix, deadline_of(self))
  release(self, READ)
  return v, e, partial
end

-- send(data[, i[, j]]): the index of the last byte sent, or nil, error,
-- the index of the last byte sent before it.
function tcp_methods:send(data, i, j)
  check(self, "send", CLIENT)
  if type(data) == "number" then data = tostring(data) end
  if type(data) ~= "string" then argerror(1, "send", "string expected, got " .. typename(data)) end
  if i ~= nil and not math.tointeger(i) then argerror(2, "send", "number has no integer representation") end
  if j ~= nil and not math.tointeger(j) then argerror(3, "send", "number has no integer representation") end
  local len = #data
  i, j = math.tointeger(i) or 1, math.tointeger(j) or -1
  if i < 0 then i = len + i + 1 end
  if i < 1 then i = 1 end
  if j < 0 then j = len + j + 1 end
  if j > len then j = len end
  if self.closed then return nil, "closed", i - 1 end
  if i > j then return i - 1 end
  local chunk = (i == 1 and j == len) and data or sub(data, i, j)
  local ok, err = take(self, WRITE)
  if not ok then return nil, err, i - 1 end
  local h, n, off, deadline = self.h, #chunk, 0, deadline_of(self)
  while true do
    local new, msg, code = c_write(h, chunk, off)
    if not new then err = word(msg, code); break end
    self.sent = self.sent + (new - off)
    off = new
    if off >= n then
      release(self, WRITE)
      return i - 1 + n
    end
    ok, err = wait(self, WRITE, deadline, "send")
    if not ok then break end
  end
  release(self, WRITE)
  return nil, err, i - 1 + off
end

-- Makes the connected socket s (made by socket.tls's creator, s.tls its
-- options) a TLS client of host: weft.tls.wrap does the handshake on the
-- socket's stream handle, seen as a weft.stream, so verification, SNI
-- and every option are weft.tls's.  Returns 1, or nil, error (s closed).
local function secure(s, host)
  local opts = {}
  for k, v in pairs(s.tls) do opts[k] = v end
  opts.servername = opts.servername or host
  if not opts.handshake_timeout and s.block then opts.handshake_timeout = s.block * 1000 end
  local view = setmetatable({ h = s.h, kind = "tcp", closed = false }, C.stream_lua.Stream)
  local done, ok, msg = pcall(weft.tls.wrap, view, opts)
  if not done or not ok then kill(s) end
  if not done then error(ok, 0) end
  if not ok then return nil, (gsub(msg, "^wrap: ", "")) end
  return 1
end

-- Waits for the connect in progress on s to end: 1, or nil, error.
local function finish_connect(s, deadline)
  local ok, err = wait(s, WRITE, deadline, "connect")
  if not ok then return nil, err end
  s.connecting = nil
  local r, msg, code = C.sockerr(s.h)
  if not r then return nil, word(msg, code) end
  setmetatable(s, CLIENT)
  if s.tls then return secure(s, s.tls_host) end
  return 1
end

-- connect(host, port): 1, or nil, error.  A name is tried address by
-- address; with a timeout of 0 (or one that runs out) the connection goes
-- on, and a later connect call waits for it again.
function tcp_methods:connect(host, port)
  check(self, "connect", MASTER)
  check_host(host, 1, "connect")
  port = check_port(port, 2, "connect")
  local deadline = deadline_of(self)
  local err
  if self.closed then return nil, "closed" end
  if self.connecting then return finish_connect(self, deadline) end
  self.tls_host = host
  local list
  list, err = resolve(self, host, port, false)
  if not list then return nil, err end
  for _, a in ipairs(list) do
    local made = false
    if not self.h then
      local ok, e = create(self, a.family, "stream")
      if not ok then return nil, e end
      made = true
    end
    if self.family == a.family then
      local r, msg, code = C.sk_connect(c_fd(self.h), a.family, a.address, a.port)
      if r then
        setmetatable(self, CLIENT)
        if self.tls then return secure(self, host) end
        return 1
      elseif r == false then
        self.connecting = true
        local ok, e = finish_connect(self, deadline)
        if ok then return 1 end
        if e == "timeout" then return nil, e end
        err = e
      else
        err = word(msg, code)
      end
      if made then -- the next address gets a fresh socket
        kill(self)
        self.h, self.family, self.closed = nil, nil, false
      end
    end
  end
  return nil, err or "address family not supported"
end

function tcp_methods:bind(host, port)
  check(self, "bind", MASTER)
  check_host(host, 1, "bind")
  return bind_to(self, host, check_port(port, 2, "bind"), "stream")
end

function tcp_methods:listen(backlog)
  check(self, "listen", MASTER)
  if backlog ~= nil and math_type(backlog) ~= "integer" then
    argerror(1, "listen", "integer expected, got " .. typename(backlog))
  end
  if not self.h then
    local ok, e = create(self, self.want or "inet", "stream")
    if not ok then return nil, e end
  end
  local ok, msg, code = C.sk_listen(c_fd(self.h), backlog or 32)
  if not ok then return nil, word(msg, code) end
  setmetatable(self, SERVER)
  return 1
end

-- accept(): a tcp{client}, or nil, error ("timeout").
function tcp_methods:accept()
  check(self, "accept", SERVER)
  if self.closed then return nil, "closed" end
  local ok, err = take(self, READ)
  if not ok then return nil, err end
  local deadline = deadline_of(self)
  while true do
    local fd, msg, code = C.accept(self.h)
    if fd then
      local c = setmetatable({ pending = {}, closed = false, received = 0, sent = 0,
        birth = C.sk_gettime() }, CLIENT)
      local h, m, cd = C.open(fd, false)
      if not h then C.closefd(fd); release(self, READ); return nil, word(m, cd) end
      c.h, c.family = h, self.family
      release(self, READ)
      return c
    end
    if fd == nil then err = word(msg, code); break end
    ok, err = wait(self, READ, deadline, "accept")
    if not ok then break end
  end
  release(self, READ)
  return nil, err
end

function tcp_methods:getpeername()
  check(self, "getpeername", CLIENT)
  if self.closed then return nil, "closed" end
  local host, port, code = C.name(self.h, true)
  if not host then return nil, word(port, code) end
  return host, port, self.family
end

local shutdowns = { both = true, send = true, receive = true }

-- shutdown([how]): "send" goes after what send queued; 1, or nil, error.
function tcp_methods:shutdown(how)
  check(self, "shutdown", CLIENT)
  how = how or "both"
  if not shutdowns[how] then argerror(1, "shutdown", "invalid option '" .. tostring(how) .. "'") end
  if self.closed then return nil, "closed" end
  if how ~= "receive" then
    local ok, msg, code = C.shutdown(self.h)
    if not ok then return nil, word(msg, code) end
  end
  if how ~= "send" then
    local ok, msg, code = C.sk_shutdown(c_fd(self.h), "receive")
    if not ok then return nil, word(msg, code) end
  end
  return 1
end

function tcp_methods:getstats()
  check(self, "getstats", TCP, "tcp{any}")
  return self.received, self.sent, C.sk_gettime() - self.birth
end

function tcp_methods:setstats(received, sent, age)
  check(self, "setstats", TCP, "tcp{any}")
  for n = 1, 3 do
    local v = select(n, received, sent, age)
    if type(v) ~= "number" then argerror(n, "setstats", "number expected, got " .. typename(v)) end
  end
  self.received, self.sent, self.birth = received, sent, C.sk_gettime() - age
  return 1
end

-- setfd(fd): a master adopts a connected or a listening socket.
function tcp_methods:setfd(fd)
  check(self, "setfd", MASTER)
  local ok, err = adopt(self, fd)
  if not ok then return nil, err end
  setmetatable(self, C.name(self.h, true) and CLIENT or SERVER)
  return 1
end

fill_master(); fill_client(); fill_server()

-- ---- UDP -------------------------------------------------------------------

local function udp_create(s, family)
  if s.h then return true end
  return create(s, family or s.want or "inet", "dgram")
end

-- Sends one datagram to (family, address, port): the size, or nil, error.
local function send_dgram(s, data, family, address, port)
  local deadline = deadline_of(s)
  while true do
    local ok, msg, code = C.sendto(s.h, data, family, address, port)
    if ok then
      s.sent = s.sent + #data
      return #data
    end
    if ok == nil then return nil, word(msg, code) end
    local r, err = wait(s, WRITE, deadline, "sendto")
    if not r then return nil, err end
  end
end

-- Receives one datagram (cut to size): data, host, port, or nil, error.
local function recv_dgram(s, size, fname)
  if size ~= nil and (math_type(size) ~= "integer" or size < 1) then
    argerror(1, fname, "size must be an integer >= 1")
  end
  if s.closed then return nil, "closed" end
  local ok, err = udp_create(s)
  if not ok then return nil, err end
  ok, err = take(s, READ)
  if not ok then return nil, err end
  local deadline = deadline_of(s)
  while true do
    local data, host, port = C.recvfrom(s.h, 65536)
    if data then
      release(s, READ)
      if #data > (size or 8192) then data = sub(data, 1, size or 8192) end
      s.received = s.received + #data
      return data, host, port
    end
    if data == nil then err = word(host, port); break end
    ok, err = wait(s, READ, deadline, fname)
    if not ok then break end
  end
  release(s, READ)
  return nil, err
end

function udp_methods:setsockname(host, port)
  check(self, "setsockname", UNCONNECTED)
  check_host(host, 1, "setsockname")
  return bind_to(self, host, check_port(port, 2, "setsockname"), "dgram")
end

-- setpeername(host, port) connects; setpeername("*") disconnects.
function udp_methods:setpeername(host, port)
  check(self, "setpeername", UDP, "udp{any}")
  check_host(host, 1, "setpeername")
  if self.closed then return nil, "closed" end
  if host == "*" then
    local ok, msg, code = C.sk_connect(c_fd(self.h), "unspec")
    if not ok and code ~= "EAFNOSUPPORT" then return nil, word(msg, code) end
    self.peer = nil
    setmetatable(self, UNCONNECTED)
    return 1
  end
  port = check_port(port, 2, "setpeername")
  local list, err = resolve(self, host, port, false)
  if not list then return nil, err end
  for _, a in ipairs(list) do
    local ok, e = udp_create(self, a.family)
    if not ok then return nil, e end
    if self.family == a.family then
      local r, msg, code = C.sk_connect(c_fd(self.h), a.family, a.address, a.port)
      if r then
        self.peer = a
        setmetatable(self, CONNECTED)
        return 1
      end
      err = word(msg, code)
    end
  end
  return nil, err or "address family not supported"
end

function udp_methods:getpeername()
  check(self, "getpeername", CONNECTED)
  if self.closed then return nil, "closed" end
  local p = self.peer
  return p.address, p.port, p.family
end

function udp_methods:send(data)
  check(self, "send", CONNECTED)
  if type(data) ~= "string" then argerror(1, "send", "string expected, got " .. typename(data)) end
  if self.closed then return nil, "closed" end
  local p = self.peer
  return send_dgram(self, data, p.family, p.address, p.port)
end

function udp_methods:sendto(data, host, port)
  check(self, "sendto", UNCONNECTED)
  if type(data) ~= "string" then argerror(1, "sendto", "string expected, got " .. typename(data)) end
  check_host(host, 2, "sendto")
  port = check_port(port, 3, "sendto")
  if self.closed then return nil, "closed" end
  local list, err = resolve(self, host, port, false)
  if not list then return nil, err end
  local a = list[1]
  local ok, e = udp_create(self, a.family)
  if not ok then return nil, e end
  return send_dgram(self, data, a.family, a.address, a.port)
end

function udp_methods:receive(size)
  check(self, "receive", UDP, "udp{any}")
  local data, err = recv_dgram(self, size, "receive")
  if data then return data end
  return nil, err
end

function udp_methods:receivefrom(size)
  check(self, "receivefrom", UNCONNECTED)
  return recv_dgram(self, size, "receivefrom")
end

function udp_methods:setfd(fd)
  check(self, "setfd", UDP, "udp{any}")
  local ok, err = adopt(self, fd)
  if not ok then return nil, err end
  return 1
end

fill_unconnected(); fill_connected()

-- ---- constructors ------------------------------------------------------------

function socket.tcp() return new(MASTER, nil, "stream") end
function socket.tcp4() return new(MASTER, "inet", "stream") end
function socket.tcp6() return new(MASTER, "inet6", "stream") end
function socket.udp() return new(UNCONNECTED, nil, "dgram") end
function socket.udp4() return new(UNCONNECTED, "inet", "dgram") end
function socket.udp6() return new(UNCONNECTED, "inet6", "dgram") end

-- tls([opts]): a `create` function for LuaSocket's libraries whose
-- masters become TLS clients on connect (weft.tls.wrap's options; the
-- server name defaults to the host connected to):
-- http.request { url = "https://...", create = weft.socket.tls() }.
function socket.tls(opts)
  if opts ~= nil and type(opts) ~= "table" then argerror(1, "tls", "table expected, got " .. typename(opts)) end
  opts = opts or {}
  return function()
    local s, err = socket.tcp()
    if s then s.tls = opts end
    return s, err
  end
end

local makers = { inet = socket.tcp4, inet6 = socket.tcp6 }

-- connect(host, port[, locaddr[, locport[, family]]]): a tcp{client}, or
-- nil, error.  (fname: the name misuse errors give)
local function connect(fname, host, port, locaddr, locport, family)
  check_host(host, 1, fname)
  port = check_port(port, 2, fname)
  if locaddr ~= nil then check_host(locaddr, 3, fname) end
  if locport ~= nil then check_port(locport, 4, fname) end
  if family ~= nil and not makers[family] then argerror(5, fname, "invalid family") end
  local c, err = (family and makers[family] or socket.tcp)()
  if not c then return nil, err end
  if locaddr then
    local ok, e = c:bind(locaddr, locport or 0)
    if not ok then c:close(); return nil, e end
  end
  local ok, e = c:connect(host, port)
  if not ok then c:close(); return nil, e end
  return c
end

function socket.connect(host, port, locaddr, locport, family)
  return connect("connect", host, port, locaddr, locport, family)
end

function socket.connect4(host, port, locaddr, locport)
  return connect("connect4", host, port, locaddr, locport, "inet")
end

function socket.connect6(host, port, locaddr, locport)
  return connect("connect6", host, port, locaddr, locport, "inet6")
end

-- bind(host, port[, backlog]): a tcp{server} with reuseaddr set, or nil,
-- error.
function socket.bind(host, port, backlog)
  check_host(host, 1, "bind")
  port = check_port(port, 2, "bind")
  if backlog ~= nil and math_type(backlog) ~= "integer" then
    argerror(3, "bind", "integer expected, got " .. typename(backlog))
  end
  local s = socket.tcp()
  s:setoption("reuseaddr", true)
  local ok, err = s:bind(host, port)
  if ok then ok, err = s:listen(backlog or 32) end
  if not ok then s:close(); return nil, err end
  return s
end

-- ---- time --------------------------------------------------------------------

function socket.gettime() return C.sk_gettime() end

-- sleep(seconds): suspends the task (the main chunk runs the loop).
function socket.sleep(t)
  if type(t) ~= "number" then argerror(1, "sleep", "number expected, got " .. typename(t)) end
  if t > 0 then weft.delay(t * 1000) end
end

-- ---- select --------------------------------------------------------------------

local IN = weft.POLLIN | weft.POLLHUP | weft.POLLERR
local OUT = weft.POLLOUT | weft.POLLHUP | weft.POLLERR

-- The sockets of list t (each with getfd, maybe dirty) by descriptor,
-- added to the poll set with events ev.
local function collect(t, n, ev, set)
  if t == nil then return {} end
  if type(t) ~= "table" then argerror(n, "select", "table expected, got " .. typename(t)) end
  local fds = {}
  for i, s in ipairs(t) do
    if type(s) ~= "table" and type(s) ~= "userdata" or not s.getfd then
      argerror(n, "select", "element " .. i .. " has no getfd method")
    end
    local fd = s:getfd()
    if math_type(fd) == "integer" and fd >= 0 then
      fds[#fds + 1] = { s, fd }
      set[fd] = (set[fd] or 0) | ev
    end
  end
  return fds
end

-- select(recvt, sendt[, timeout]): the sockets of recvt ready to read and
-- those of sendt ready to write (lists, also keyed by socket), and
-- "timeout" when none is.
function socket.select(recvt, sendt, timeout)
  if timeout ~= nil and type(timeout) ~= "number" then
    argerror(3, "select", "number expected, got " .. typename(timeout))
  end
  local set = {}
  local rs, ws = collect(recvt, 1, weft.POLLIN, set), collect(sendt, 2, weft.POLLOUT, set)
  local r, w = {}, {}
  local function add(out, s)
    if not out[s] then out[#out + 1] = s; out[s] = true end
  end
  for _, e in ipairs(rs) do
    if e[1].dirty and e[1]:dirty() then add(r, e[1]) end
  end
  local ms = timeout and timeout >= 0 and timeout * 1000 or nil
  if #r > 0 then ms = 0 end
  local got = next(set) and weft.poll_any(set, ms)
  if got == nil and next(set) then return r, w, "select failed" end
  if not got then
    if ms and ms > 0 then weft.delay(ms) end
    got = {}
  end
  for _, e in ipairs(rs) do
    if (got[e[2]] or 0) & IN ~= 0 then add(r, e[1]) end
  end
  for _, e in ipairs(ws) do
    if (got[e[2]] or 0) & OUT ~= 0 then add(w, e[1]) end
  end
  if #r == 0 and #w == 0 then return r, w, "timeout" end
  return r, w
end
