-- TCP echo server on weft, task style: one task per connection, reads
-- and writes as blocking code.  usage: lua5.4 echo_weft.lua PORT
local weft = require "weft"
local port = tonumber(arg[1]) or 9007
local server = assert(weft.tcp.listen("127.0.0.1", port, { backlog = 1024 }))
io.stderr:write("echo_weft listening on 127.0.0.1:" .. port .. "\n")
weft.run(function()
  while true do
    local c = assert(server:accept())
    weft.async(function()
      while true do
        local data = c:read(-65536) -- what is there, up to 64 KiB
        if not data or not c:write(data) then break end
      end
      c:close()
    end)
  end
end)
