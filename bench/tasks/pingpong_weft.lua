-- Two tasks ping-pong over weft.channel(0): round trips per second.
-- usage: lua5.4 pingpong_weft.lua [N=200000]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../lib/?.lua;" .. package.path
local C = require "common"
local weft = require "weft"
local N = tonumber(arg[1]) or 200000
local ping, pong = weft.channel(0), weft.channel(0)
weft.async(function()
  for _ = 1, N do pong:send(ping:recv() + 1) end
end)
local t0 = C.now()
weft.run(function()
  local v = 0
  for _ = 1, N do ping:send(v); v = pong:recv() end
  assert(v == N)
end)
local s = C.now() - t0
C.result("rt_per_s", N / s, string.format("ns_per_rt=%.0f n=%d", s * 1e9 / N, N))
