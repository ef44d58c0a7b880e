-- Workload a (timers) on weft from Lua: N one-shot timers, random delay
-- 0..100 ms (the peers' xorshift32), a closure per timer as in the luv peer.
-- usage: lua5.4 timers_weft.lua [N=1000000]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../lib/?.lua;" .. package.path
local C = require "common"
local weft = require "weft"
local N = tonumber(arg[1]) or 1000000
local rnd = C.xorshift32()
local fired = 0
local once = weft.once
local t0 = C.now()
for _ = 1, N do
  once(rnd() % 101, function() fired = fired + 1 end)
end
local t1 = C.now()
weft.run()
local t2 = C.now()
assert(fired == N, "fired " .. fired)
C.result("wall_ms", (t2 - t0) * 1e3, string.format("sched_ms=%.1f n=%d", (t1 - t0) * 1e3, N))
