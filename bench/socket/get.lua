-- N socket.http GETs at concurrency C against http://127.0.0.1:PORT/, in
-- one of three ways: weft tasks with weft.socket.tcp, copas (Debian's
-- lua-copas) with copas.wrap'ed LuaSocket sockets, or blocking LuaSocket
-- (one request after another: it cannot overlap them).  Prints the
-- seconds it took.  usage: lua5.4 get.lua weft|copas|blocking PORT N C
local mode, port, n, c = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
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
  -- Debian installs copas 1.2 for Lua 5.1/5.2 only; it is plain Lua that
  -- runs on 5.4 too.
  package.path = package.path .. ";/usr/share/lua/5.2/?.lua"
  local copas = require "copas"
  share(copas.addthread, function() return copas.wrap(socket.tcp()) end)
  copas.loop()
elseif mode == "blocking" then
  for _ = 1, n do get(socket.tcp) end
else
  error("usage: get.lua weft|copas|blocking PORT N C")
end
assert(ok_count == n, ok_count)
print(string.format("%.3f", socket.gettime() - t0))
