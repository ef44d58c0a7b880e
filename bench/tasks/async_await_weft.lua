-- N weft.async of a trivial function, each awaited: wall ms.
-- usage: lua5.4 async_await_weft.lua [N=1000000]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../lib/?.lua;" .. package.path
local C = require "common"
local weft = require "weft"
local N = tonumber(arg[1]) or 1000000
local t0 = C.now()
weft.run(function()
  local async, await = weft.async, weft.await
  local f = function() return 1 end
  local s = 0
  for _ = 1, N do s = s + await(async(f)) end
  assert(s == N)
end)
C.result("wall_ms", (C.now() - t0) * 1e3, string.format("n=%d", N))
