-- Workload d (task sleep fan-out) on cqueues: N concurrent coroutine tasks,
-- each cqueues.sleep(0.010) then finish. usage: lua5.4 lua/sleep_cqueues.lua [N=100000] [ms=10]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../lib/?.lua;" .. package.path
local C = require "common"
local cqueues = require "cqueues"
local N = tonumber(arg[1]) or 100000
local SEC = (tonumber(arg[2]) or 10) / 1000
local cq = cqueues.new()
local sleep = cqueues.sleep
local finished = 0
local function task() sleep(SEC); finished = finished + 1 end
local t0 = C.now()
for i = 1, N do cq:wrap(task) end
local t1 = C.now()
assert(cq:loop())
local t2 = C.now()
assert(finished == N, finished)
C.result("wall_ms", (t2 - t0) * 1e3, string.format("spawn_ms=%.1f n=%d sleep_ms=%g", (t1 - t0) * 1e3, N, SEC * 1000))
