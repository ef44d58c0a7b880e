-- weft's main demo (`make demo`): a child process's output, a ticker, a
-- deadline and a one-shot, all on one reactor, in plain callbacks.
local weft = require "weft"

print(weft._VERSION .. ": a reactor for Lua")
local start = weft.now()

-- A child that prints a line every 150 ms; we react when its pipe is
-- readable instead of blocking on it.
local child = assert(io.popen([[for i in 1 2 3 4; do echo "child says $i"; sleep 0.15; done]]))
weft.on_readable(child, function(id, f)
  local line = f:read("l")
  if line then
    print(string.format("[%4d ms] %s", weft.now() - start, line))
  else -- end of file: the child is done
    weft.cancel(id)
    f:close()
    print(string.format("[%4d ms] child finished", weft.now() - start))
  end
end)

-- A ticker that does not drift, and a one-shot that stops it.
local ticks = 0
local ticker = weft.every(100, function()
  ticks = ticks + 1
  print(string.format("[%4d ms] tick %d", weft.now() - start, ticks))
end)
weft.once(450, function()
  weft.cancel(ticker)
  print(string.format("[%4d ms] ticker stopped after %d ticks", weft.now() - start, ticks))
end)

weft.immediately(function()
  print("[   0 ms] first iteration: what keeps the loop alive?")
  for _, w in ipairs(weft.watchers()) do
    print(string.format("           %-11s %-7s at %s", w.kind,
      w.enabled and "enabled" or "off", w.where))
  end
end)

weft.run()
print("run() returned: nothing left to wait for")
