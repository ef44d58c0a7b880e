-- Loaded by game_host.c: a game script.  Its task awaits an asset that the
-- host loads on weft's worker pool (a promise the host made), while the
-- host's frames keep calling animate; the host awaits its dialog task's
-- choice; an error nobody handles here goes to the host.
local weft = require "weft"

local x = 0
local loaded

-- The host calls this every frame.
function animate(frame)
  x = frame
end

weft.async(function()
  local before = x
  local name, bytes = weft.await(host.load_asset("level1"))
  loaded = string.format("loaded %s (%d bytes) while animating %s frames",
    name, bytes, x > before and "several" or "NO")
end)

-- A dialog: a task that ends with the player's choice, once the level is in.
function dialog()
  return weft.async(function()
    while not loaded do weft.delay(16) end
    weft.delay(50) -- the player thinks
    return "the sword"
  end)
end

-- A bug: nobody awaits this task, so its error goes to the host.
weft.async(function()
  weft.delay(20)
  error("the goblin AI broke")
end)

function report()
  return loaded or "the asset never loaded"
end
