-- tls.lua: weft.tls: TLS streams (connect, listen, wrap) over the
-- primitives of tls.c.  A TLS stream is the same weft.stream object as a
-- TCP one, whose core stream got a TLS transport: every method, read
-- format, timeout and the failure convention carry over.  A TLS server is
-- a weft.server whose accept hands out streams that finished their
-- handshake; handshakes run in tasks of their own, so a slow client never
-- delays another's accept.  This chunk is compiled into weft.so and run
-- after stream.lua with (module, primitives, task internals).
local weft, C = ...
local S = C.stream_lua -- what stream.lua shares (see its end)

local Stream, Server = S.Stream, S.Server
local typename = S.typename
-- Misuse raises at the caller's position (argcheck.c).
local argerror, raise, nozero = C.argerror, C.raise, C.nozero
local close_now, twin = S.close_now, C.twin
local await, promise, async = weft.await, weft.promise, weft.async
local type, pairs, ipairs, error, pcall = type, pairs, ipairs, error, pcall
local getmetatable, tostring = getmetatable, tostring
local c_waitio, c_handshake = C.waitio, C.tls_handshake

local READ = 1
local HANDSHAKE_MS = 10000 -- the default handshake_timeout

local tls = {}
weft.tls = tls

-- ---- options -------------------------------------------------------------

local kinds = { cafile = "string", capath = "string", cert = "string", key = "string",
  client_cafile = "string", ciphers = "string", servername = "string", verify = "boolean",
  alpn = "list", handshake_timeout = "timeout", min_version = "version",
  -- the socket's
  timeout = "timeout", family = "any", nodelay = "any", backlog = "any", reuseaddr = "any",
  reuseport = "any", v6only = "any", server = "boolean" }

local function set(...)
  local t = {}
  for _, k in ipairs({ ... }) do t[k] = true end
  return t
end

local TLS_CLIENT = set("cafile", "capath", "cert", "key", "verify", "servername", "alpn",
  "handshake_timeout", "min_version", "ciphers")
local TLS_SERVER = set("cert", "key", "alpn", "handshake_timeout", "min_version", "ciphers",
  "client_cafile")
local function with(base, ...)
  local t = set(...)
  for k in pairs(base) do t[k] = true end
  return t
end
local CONNECT = with(TLS_CLIENT, "timeout", "family", "nodelay")
local LISTEN = with(TLS_SERVER, "backlog", "reuseaddr", "reuseport", "v6only", "family", "nodelay")
local WRAP_CLIENT, WRAP_SERVER = with(TLS_CLIENT, "server"), with(TLS_SERVER, "server")

-- Checks opts (argument n of fname) against allowed: unknown options and
-- wrong types raise (at the caller of fname).  Returns opts, or {}.
local function check_tls_opts(opts, n, fname, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then argerror(n, fname, "table expected, got " .. typename(opts)) end
  for k, v in pairs(opts) do
    if not allowed[k] then argerror(n, fname, "unknown option '" .. tostring(k) .. "'") end
    local kind = kinds[k]
    local bad
    if kind == "string" then
      bad = type(v) ~= "string" and "a string"
      nozero(v, n, fname, "field '" .. k .. "'")
    elseif kind == "boolean" then
      bad = type(v) ~= "boolean" and "a boolean"
    elseif kind == "timeout" then
      bad = (type(v) ~= "number" or not (v >= 0)) and "a number >= 0"
    elseif kind == "version" then
      bad = v ~= "1.2" and v ~= "1.3" and "'1.2' or '1.3'"
    elseif kind == "list" then
      bad = type(v) ~= "table" and "a list of strings"
      if not bad then
        if #v > 64 then bad = "a list of at most 64 names" end
        for i, p in ipairs(v) do
          if type(p) ~= "string" or #p < 1 or #p > 255 then
            bad = "a list of names of 1 to 255 bytes"
          end
          nozero(p, n, fname, "alpn[" .. i .. "]")
        end
      end
    end
    if bad then argerror(n, fname, "field '" .. k .. "' must be " .. bad) end
  end
  if opts.key and not opts.cert then argerror(n, fname, "field 'key' needs 'cert'") end
  return opts
end

-- Client configurations are kept, by their options, so that connections
-- share one (the system's trust store parsed once) and resume sessions.
local client_configs, nconfigs = {}, 0
local CONFIG_FIELDS = { "cafile", "capath", "cert", "key", "verify", "min_version", "ciphers" }

local function client_config(opts)
  local parts = {}
  for i, k in ipairs(CONFIG_FIELDS) do parts[i] = tostring(opts[k]) end
  parts[#parts + 1] = opts.alpn and table.concat(opts.alpn, "\0") or ""
  local key = table.concat(parts, "\1")
  local cfg = client_configs[key]
  if cfg then return cfg end
  local msg, code
  cfg, msg, code = C.tls_config("client", opts)
  if not cfg then return nil, msg, code end
  if nconfigs >= 32 then client_configs, nconfigs = {}, 0 end
  client_configs[key] = cfg
  nconfigs = nconfigs + 1
  return cfg
end

-- ---- the handshake ---------------------------------------------------------

-- Drives s's handshake for up to ms (nil: no limit).  Returns true, or nil,
-- message, code; a cancellation raises.
local function handshake(s, ms, fname)
  local h = s.h
  local deadline = ms and weft.now() + ms
  while true do
    local ok, msg, code = c_handshake(h)
    if ok then return true end
    if ok == nil then return nil, fname .. ": " .. msg, code end
    local r, m, c = c_waitio(h, READ, deadline and math.max(0, deadline - weft.now()), "handshake")
    if not r then
      if c == "ETIMEDOUT" then m = "handshake timed out" end
      return nil, fname .. ": " .. m, c
    end
  end
end

-- Makes s a TLS stream with cfg and completes its handshake within ms.
-- Returns s, or nil, message, code with s closed; a cancellation closes s
-- and raises.
local function start(s, cfg, servername, ms, fname)
  local ok, msg, code = C.tls_start(s.h, cfg, servername)
  if not ok then
    close_now(s)
    return nil, fname .. ": " .. msg, code
  end
  s.kind = "tls"
  local done, r, m, c = pcall(handshake, s, ms, fname)
  if not done or not r then close_now(s) end
  if not done then error(r, 0) end
  if not r then return nil, m, c end
  return s
end

-- ---- weft.tls.connect ------------------------------------------------------

function tls.connect(host, port, opts)
  if type(host) ~= "string" then argerror(1, "connect", "string expected, got " .. typename(host)) end
  nozero(host, 1, "connect")
  opts = check_tls_opts(opts, 3, "connect", CONNECT)
  local cfg, msg, code = client_config(opts)
  if not cfg then return nil, "connect: " .. msg, code end
  local t0 = weft.now()
  local s
  s, msg, code = weft.tcp.connect(host, port,
    { timeout = opts.timeout, family = opts.family, nodelay = opts.nodelay })
  if not s then return nil, msg, code end
  local ms = opts.handshake_timeout or HANDSHAKE_MS
  if opts.timeout then ms = math.min(ms, math.max(0, opts.timeout - (weft.now() - t0))) end
  local name = opts.servername or host
  return start(s, cfg, name, ms, "connect")
end

tls.connect_async = twin(tls.connect)

-- ---- weft.tls.wrap -----------------------------------------------------------

function tls.wrap(s, opts)
  if getmetatable(s) ~= Stream then argerror(1, "wrap", "weft.stream expected, got " .. typename(s)) end
  if s.closed then raise("attempt to use a closed stream") end
  local server = type(opts) == "table" and opts.server
  opts = check_tls_opts(opts, 2, "wrap", server and WRAP_SERVER or WRAP_CLIENT)
  if s.kind == "tls" then argerror(1, "wrap", "stream is already TLS") end
  if server and not opts.cert then argerror(2, "wrap", "field 'cert' is required for a server") end
  if not server and not opts.servername and opts.verify ~= false then
    argerror(2, "wrap", "field 'servername' is required to verify the peer")
  end
  -- No read or write may run meanwhile: the stream holds both turns.
  if not C.take_turn(s.h, READ) then argerror(1, "wrap", "stream is busy (a read in progress)") end
  if not C.take_turn(s.h, 2) then
    C.end_turn(s.h, READ)
    argerror(1, "wrap", "stream is busy (a write in progress)")
  end
  local cfg, msg, code
  if server then
    cfg, msg, code = C.tls_config("server", opts)
  else
    cfg, msg, code = client_config(opts)
  end
  local r, m, c
  if cfg then
    local done
    done, r, m, c = pcall(start, s, cfg, opts.servername, opts.handshake_timeout or HANDSHAKE_MS, "wrap")
    if not done then error(r, 0) end -- (start closed the stream: no turns to give back)
  else
    close_now(s)
    r, m, c = nil, "wrap: " .. msg, code
  end
  if r then
    C.end_turn(s.h, READ)
    C.end_turn(s.h, 2)
  end
  return r, m, c
end

tls.wrap_async = twin(tls.wrap)

-- ---- weft.tls.listen and a TLS server's accept -------------------------------

local plain_accept = Server.accept

local function push(q, v)
  q.last = q.last + 1
  q[q.last] = v
end

local function pop(q)
  if q.first > q.last then return nil end
  local v = q[q.first]
  q[q.first] = nil
  q.first = q.first + 1
  return v
end

-- Wakes the first accept still waiting, if any.
local function wake(srv)
  while true do
    local p = pop(srv.waiters)
    if not p then return end
    if p:status() == "pending" then
      p:resolve()
      return
    end
  end
end

-- One connection's handshake, in a task of its own: a stream that
-- finishes it goes to the ready queue; one that fails or times out is
-- closed (accept never sees it).
local function shake(srv, c)
  srv.shaking[c] = true
  local s = start(c, srv.tls, nil, srv.handshake_timeout, "accept")
  srv.shaking[c] = nil
  if not s then return end
  if srv.closed then
    close_now(s)
    return
  end
  push(srv.ready, s)
  wake(srv)
end

-- Accepts connections while some accept waits, each into a handshake task.
-- An accept error (out of descriptors...) is handed to the waiting accept.
local function pump(srv)
  while not srv.closed do
    local c, msg, code = plain_accept(srv)
    if c then
      async(shake, srv, c)
    elseif code ~= "ETIMEDOUT" then
      srv.pump = nil
      srv.failure = { msg, code }
      wake(srv)
      return
    end
  end
  srv.pump = nil
end

local function tls_accept(self, timeout)
  if self.closed then raise("attempt to use a closed server") end
  if timeout ~= nil and (type(timeout) ~= "number" or not (timeout >= 0)) then
    argerror(1, "accept", type(timeout) ~= "number" and ("number expected, got " .. typename(timeout))
      or "timeout must be >= 0")
  end
  local ms = timeout or self.timeout
  local deadline = ms and weft.now() + ms
  while true do
    local s = pop(self.ready)
    if s then return s end
    if self.failure then
      local f = self.failure
      self.failure = nil
      return nil, f[1], f[2]
    end
    local p = promise()
    push(self.waiters, p)
    self.nwaiting = self.nwaiting + 1
    if not self.pump then self.pump = async(pump, self) end
    local ok, err = pcall(await, p, deadline and math.max(0, deadline - weft.now()))
    self.nwaiting = self.nwaiting - 1
    if p:status() == "pending" then p:cancel() end
    -- Nobody accepts any more: new connections wait in the kernel.  (Seen
    -- from the next iteration: an accept loop is back before then, and
    -- its pump goes on.)
    if self.nwaiting == 0 and self.pump and not self.idle_check and not self.closed then
      self.idle_check = weft.immediately(function()
        self.idle_check = nil
        if self.nwaiting == 0 and self.pump then
          self.pump:cancel()
          self.pump = nil
        end
      end)
    end
    if not ok then
      if weft.is_timeout(err) then return nil, "timeout", "ETIMEDOUT" end
      error(err, 0)
    end
    if self.closed then return nil, "closed", "ECLOSED" end
  end
end

function Server:accept(timeout)
  if getmetatable(self) == Server and self.tls then return tls_accept(self, timeout) end
  return plain_accept(self, timeout)
end
Server.accept_async = twin(Server.accept)

-- Closing a TLS server closes the streams it still holds and ends the
-- accepts waiting.
local function close_tls_server(srv)
  if srv.idle_check then
    weft.cancel(srv.idle_check)
    srv.idle_check = nil
  end
  for c in pairs(srv.shaking) do close_now(c) end
  while true do
    local s = pop(srv.ready)
    if not s then break end
    close_now(s)
  end
  while srv.waiters.first <= srv.waiters.last do wake(srv) end
end

function tls.listen(host, port, opts)
  opts = check_tls_opts(opts, 3, "listen", LISTEN)
  if not opts.cert then argerror(3, "listen", "field 'cert' is required") end
  local srv, msg, code = weft.tcp.listen(host, port, { backlog = opts.backlog,
    reuseaddr = opts.reuseaddr, reuseport = opts.reuseport, v6only = opts.v6only,
    family = opts.family, nodelay = opts.nodelay })
  if not srv then return nil, msg, code end
  local cfg
  cfg, msg, code = C.tls_config("server", opts)
  if not cfg then
    srv:close()
    return nil, "listen: " .. msg, code
  end
  srv.tls = cfg
  srv.handshake_timeout = opts.handshake_timeout or HANDSHAKE_MS
  srv.ready = { first = 1, last = 0 }
  srv.waiters = { first = 1, last = 0 }
  srv.nwaiting = 0
  srv.shaking = {}
  srv.on_close = close_tls_server
  return srv
end

-- ---- what a TLS stream tells ---------------------------------------------------

local function check_tls(s, fname)
  if getmetatable(s) ~= Stream then
    argerror(1, fname, "weft.stream expected, got " .. typename(s))
  end
  if s.closed then raise("attempt to use a closed stream") end
  if s.kind ~= "tls" then argerror(1, fname, "TLS stream expected") end
end

-- The application protocol agreed (ALPN), or nil.
function Stream:alpn()
  check_tls(self, "alpn")
  return C.tls_alpn(self.h)
end

-- The peer's certificate: { subject, issuer, serial, not_before, not_after,
-- fingerprint, san, pem }, or nil if it sent none.
function Stream:peer_certificate()
  check_tls(self, "peer_certificate")
  return C.tls_peer_certificate(self.h)
end

-- { version, cipher, alpn, servername, resumed }
function Stream:tls_info()
  check_tls(self, "tls_info")
  return C.tls_info(self.h)
end
