-- Loaded by frame_host and poll_host: a script that runs on its host's
-- loop without knowing how the host drives it.
local weft = require "weft"

for _, w in ipairs(weft.watchers()) do
  if w.where == "host" then print("script: sees the host's " .. w.kind .. " watcher") end
end

-- Done once both the beats and the deadline have happened (in either order:
-- on a loaded machine late beats are skipped, not burst).
local beats, deadline_passed = 0, false
local function maybe_done()
  if beats >= 3 and deadline_passed and not finished then
    print("script: done")
    finished = true
  end
end

weft.every(10, function(id)
  beats = beats + 1
  if beats == 3 then
    weft.cancel(id)
    print("script: 3 beats")
    maybe_done()
  end
end)

weft.once(50, function()
  deadline_passed = true
  maybe_done()
end)

-- Left running on purpose: the host's lua_close must cancel it.
weft.every(1000, function() end)
