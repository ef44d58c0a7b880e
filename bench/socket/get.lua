-- N socket.http GETs at concurrency C against http://127.0.0.1:PORT/, in
-- one of three ways: weft tasks with weft.socket.tcp, copas (Debian's
-- lua-copas) with copas.wrap'ed LuaSocket sockets, or blocking LuaSocket
-- (one request after another: it cannot overlap them).  Prints the
-- seconds it took.  usage: lua5.4 get.lua weft|copas|blocking PORT N C
local mode, port, n, c = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
local copas
if mode == "copas" then
  -- Debian installs copas 1.2 for Lua 5.1/5.2 only; it is plain Lua that
  -- runs on 5.4 too.  It must be loaded before socket.http.
  package.path = package.path .. ";/usr/share/lua/5.2/?.lua"
  copas = require "copas"
end
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"
local url = "http://127.0.0.1:" .. port .. "/"
local ok_count = 0

local function get(create)
  local t = {}
  local ok, code = http.request { url = url, create = create, sink = ltn12.sink.table(t) }
  assert(ok and code == 200 and table.concat(t) == "Hello World!", tostring(code))
  ok_count = ok_count + 1
end

-- c workers share n requests.
local function share(spawn, create)
  local left = n
  for _ = 1, c do
    spawn(function()
      while left > 0 do
        left = left - 1
        get(create)
      end
    end)
  end
end

local t0 = socket.gettime()
if mode == "weft" then
  local weft = require "weft"
  weft.run(function() share(weft.async, weft.socket.tcp) end)
elseif mode == "copas" then
  -- copas 1.2's wrap has no connect, close, getfd or dirty, and its
  -- settimeout returns nothing (socket.http asserts it): the usual adapter
  -- over copas's own yielding calls.
  local function copas_tcp()
    local raw = socket.tcp()
    return {
      settimeout = function() return 1 end,
      connect = function(_, host, p) return copas.connect(raw, host, p) end,
      send = function(_, data, i, j) return copas.send(raw, data, i, j) end,
      receive = function(_, pattern, prefix) return copas.receive(raw, pattern, prefix) end,
      close = function() return raw:close() end,
      getfd = function() return raw:getfd() end,
      dirty = function() return raw:dirty() end,
    }
  end
  share(copas.addthread, copas_tcp)
  while ok_count < n do copas.step() end -- (copas 1.2's loop never returns)
elseif mode == "blocking" then
  for _ = 1, n do get(socket.tcp) end
else
  error("usage: get.lua weft|copas|blocking PORT N C")
end
assert(ok_count == n, ok_count)
print(string.format("%.3f", socket.gettime() - t0))
