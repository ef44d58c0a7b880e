-- Workload d (task sleep fan-out) on weft: N tasks, each weft.delay(ms)
-- then finish.  usage: lua5.4 sleep_weft.lua [N=100000] [ms=10]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../lib/?.lua;" .. package.path
local C = require "common"
local weft = require "weft"
local N = tonumber(arg[1]) or 100000
local MS = tonumber(arg[2]) or 10
local finished = 0
local delay = weft.delay
local function task() delay(MS); finished = finished + 1 end
local t0 = C.now()
for _ = 1, N do weft.async(task) end
local t1 = C.now()
weft.run()
local t2 = C.now()
assert(finished == N)
C.result("wall_ms", (t2 - t0) * 1e3, string.format("spawn_ms=%.1f n=%d", (t1 - t0) * 1e3, N))
