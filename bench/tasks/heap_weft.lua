-- Lua heap bytes per sleeping task: N tasks each in weft.delay, measured
-- with collectgarbage("count") after full collections (the ts table that
-- keeps them is included: 16 bytes a task).  Deterministic for a given
-- build, so it shows what a change to the task object costs.
-- usage: lua5.4 heap_weft.lua [N=100000]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../lib/?.lua;" .. package.path
local C = require "common"
local weft = require "weft"
local N = tonumber(arg[1]) or 100000
collectgarbage() collectgarbage()
local k0 = collectgarbage("count")
local ts = {}
for i = 1, N do ts[i] = weft.async(function() weft.delay(50) end) end
weft.delay(1) -- every task has started and sleeps in its delay
collectgarbage() collectgarbage()
local per = (collectgarbage("count") - k0) * 1024 / N
for i = 1, N do weft.await(ts[i]) end
C.result("heap_bytes_per_task", per, string.format("n=%d", N))
