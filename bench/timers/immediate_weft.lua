-- Workload c (immediate chain) on weft from Lua: N weft.immediately
-- callbacks, each scheduling the next (one loop iteration per link).
-- usage: lua5.4 immediate_weft.lua [N=1000000]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../lib/?.lua;" .. package.path
local C = require "common"
local weft = require "weft"
local N = tonumber(arg[1]) or 1000000
local count = 0
local immediately = weft.immediately
local function step()
  count = count + 1
  if count < N then immediately(step) end
end
local t0 = C.now()
immediately(step)
weft.run()
local s = C.now() - t0
assert(count == N)
C.result("wall_ms", s * 1e3, string.format("per_s=%.0f n=%d", N / s, N))
