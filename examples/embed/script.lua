-- Loaded by frame_host and poll_host: a script that runs on its host's
-- loop without knowing how the host drives it.
local weft = require "weft"

for _, w in ipairs(weft.watchers()) do
  if w.where == "host" then print("script: sees the host's " .. w.kind .. " watcher") end
end

local beats = 0
weft.every(10, function(id)
  beats = beats + 1
  if beats == 3 then
    weft.cancel(id)
    print("script: 3 beats")
  end
end)

weft.once(50, function()
  print("script: done")
  finished = true
end)

-- Left running on purpose: the host's lua_close must cancel it.
weft.every(1000, function() end)
