-- Workload a (timers) on luv: N one-shot uv timers, random delay 0..100 ms,
-- each closed in its own callback. usage: lua5.4 lua/timers_luv.lua [N=1000000]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../lib/?.lua;" .. package.path
local C = require "common"
local uv = require "luv"
local N = tonumber(arg[1]) or 1000000
local rnd = C.xorshift32()
local fired = 0
local new_timer = uv.new_timer
local t0 = C.now()
for i = 1, N do
  local t = new_timer()
  t:start(rnd() % 101, 0, function()
    fired = fired + 1
    t:close()
  end)
end
local t1 = C.now()
uv.run()
local t2 = C.now()
assert(fired == N, "fired " .. fired)
C.result("wall_ms", (t2 - t0) * 1e3, string.format("sched_ms=%.1f n=%d", (t1 - t0) * 1e3, N))
