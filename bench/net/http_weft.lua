-- Minimal HTTP/1.1 keep-alive "hello world" on weft, task style: one task
-- per connection reading header lines.  GET only, no bodies; pipelined
-- requests get their responses in one write.  usage: lua5.4 http_weft.lua PORT
local weft = require "weft"
local port = tonumber(arg[1]) or 8007
local RESP = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nHello World!"
local server = assert(weft.tcp.listen("127.0.0.1", port, { backlog = 1024 }))
io.stderr:write("http_weft listening on 127.0.0.1:" .. port .. "\n")
weft.run(function()
  while true do
    local c = assert(server:accept())
    weft.async(function()
      while true do
        local line = c:read("l") -- the request line
        if not line then break end
        repeat line = c:read("l") until not line or line == "" or line == "\r"
        if not line or not c:write(RESP) then break end
      end
      c:close()
    end)
  end
end)
