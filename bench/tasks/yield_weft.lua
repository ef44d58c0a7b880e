-- The bare scheduler's ceiling for a ping-pong: two weft tasks that only
-- hand the turn to each other (a plain coroutine.yield in a task puts it
-- back at the end of the run queue), no channel: round trips per second.
-- usage: lua5.4 yield_weft.lua [N=1000000]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../lib/?.lua;" .. package.path
local C = require "common"
local weft = require "weft"
local N = tonumber(arg[1]) or 1000000
local yield = coroutine.yield
local a = 0
weft.async(function() for _ = 1, N do yield() end end)
local t0 = C.now()
weft.run(function()
  for _ = 1, N do a = a + 1; yield() end
end)
local s = C.now() - t0
assert(a == N)
C.result("rt_per_s", N / s, string.format("ns_per_rt=%.0f n=%d", s * 1e9 / N, N))
