-- An echo server on weft, task style, over TLS or plain TCP: one task per
-- connection, c:read(-65536) then c:write.
-- usage: lua5.4 echo_weft.lua tls|plain CERT KEY PORT
local weft = require "weft"
local mode, cert, key, port = arg[1], arg[2], arg[3], tonumber(arg[4])
local server
if mode == "tls" then
  server = assert(weft.tls.listen("127.0.0.1", port, { cert = cert, key = key, backlog = 1024 }))
else
  server = assert(weft.tcp.listen("127.0.0.1", port, { backlog = 1024 }))
end
weft.run(function()
  while true do
    local c = server:accept()
    if c then
      weft.async(function()
        while true do
          local d = c:read(-65536)
          if not d or not c:write(d) then break end
        end
        c:close()
      end)
    end
  end
end)
