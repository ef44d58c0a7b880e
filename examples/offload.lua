-- An HTTP server whose CPU-heavy route runs in a worker pool while the
-- other routes keep answering.  Workers log through a channel; the main
-- thread writes the log.
--   lua5.4 examples/offload.lua [port]      (0 or nothing: a free port)
-- Routes: GET /             -> "Hello World!"
--         GET /hash?n=ROUNDS -> a digest computed by ROUNDS rounds, in a worker
local weft = require "weft"

local server = assert(weft.tcp.listen("127.0.0.1", tonumber(arg and arg[1]) or 0))
local _, port = server:sockname()
io.stdout:write("listening on 127.0.0.1:", port, "\n")
io.stdout:flush()

local pool = weft.pool { max = 2 }
local log = weft.thread.channel()

-- Runs in a worker's own Lua state: no upvalues, only its arguments.
local function digest(rounds, logch)
  local h = 2166136261
  for i = 1, rounds do
    h = ((h ~ (i & 0xff)) * 16777619) & 0xffffffff
  end
  logch:send(("worker %d: %d rounds"):format(require("weft").thread.id(), rounds))
  return ("%08x"):format(h)
end

local function respond(c, status, body)
  return c:write(("HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n")
    :format(status, #body), body)
end

local function serve(c)
  while true do
    local line = c:read("l")
    if not line then break end
    local path = line:match("^GET (%S+) HTTP/1%.1\r?$")
    repeat local h = c:read("l") until not h or h == "" or h == "\r"
    local ok
    if path == "/" then
      ok = respond(c, "200 OK", "Hello World!")
    elseif path and path:match("^/hash%?n=%d+$") then
      local rounds = tonumber(path:match("n=(%d+)"))
      ok = respond(c, "200 OK", weft.await(pool:run(digest, rounds, log)) .. "\n")
    else
      ok = respond(c, "404 Not Found", "not found\n")
    end
    if not ok then break end
  end
  c:close()
end

weft.run(function()
  weft.async(function() -- the log writer: the one place that writes stdout
    for line in log do
      io.stdout:write(line, "\n")
      io.stdout:flush()
    end
  end)
  while true do
    local c = server:accept()
    if c then weft.async(serve, c) end
  end
end)
