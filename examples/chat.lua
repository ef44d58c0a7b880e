-- A line-based chat server: every line a client sends goes to every other
-- client.  One task reads each connection; one task writes to it from its
-- own queue, so a slow client never holds the others up.
--   lua5.4 examples/chat.lua [port]      then: nc 127.0.0.1 PORT
-- Commands: /nick NAME, /who, /quit.
local weft = require "weft"

local server = assert(weft.tcp.listen("127.0.0.1", tonumber(arg and arg[1]) or 0))
local _, port = server:sockname()
io.stdout:write("listening on 127.0.0.1:", port, "\n")
io.stdout:flush()

local clients, count = {}, 0

local function send(client, line)
  -- a client whose queue is full is too slow: it misses lines, not others
  client.outbox:try_send(line)
end

local function broadcast(from, line)
  for _, client in pairs(clients) do
    if client ~= from then send(client, line) end
  end
end

local function session(c)
  count = count + 1
  local me = { name = "guest" .. count, outbox = weft.channel(100) }
  clients[me] = me
  local writer = weft.async(function()
    for line in me.outbox do
      if not c:write(line, "\n") then break end
    end
  end)
  send(me, "welcome, " .. me.name)
  broadcast(me, me.name .. " joined")
  for line in c:lines() do
    line = line:gsub("\r$", "")
    local cmd, arg = line:match("^/(%a+)%s*(.-)$")
    if cmd == "nick" and arg ~= "" then
      broadcast(me, me.name .. " is now " .. arg)
      me.name = arg
      send(me, "you are " .. arg)
    elseif cmd == "who" then
      local names = {}
      for _, client in pairs(clients) do names[#names + 1] = client.name end
      table.sort(names)
      send(me, "here: " .. table.concat(names, ", "))
    elseif cmd == "quit" then
      break
    elseif line ~= "" then
      broadcast(me, me.name .. ": " .. line)
    end
  end
  clients[me] = nil
  broadcast(me, me.name .. " left")
  me.outbox:close()
  weft.await(writer)
  c:close()
end

weft.run(function()
  while true do
    local c = server:accept()
    if c then weft.async(session, c) end
  end
end)
