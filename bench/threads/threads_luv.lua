-- luv's uv.new_work (libuv's thread pool, a Lua state per pool thread) on
-- the same workloads as threads_weft.lua where it applies.
--   usage: lua5.4 threads_luv.lua latency|speedup [N]
package.path = arg[0]:gsub("[^/]*$", "") .. "../lib/?.lua;" .. package.path
local C = require "common"
local uv = require "luv"
local mode, n = arg[1], tonumber(arg[2])

if mode == "latency" then
  n = n or 10000
  local t, i, t0 = {}, 0, 0
  local work
  work = uv.new_work(function() return 0 end, function()
    if i > 0 then t[i] = (C.now() - t0) * 1e6 end
    i = i + 1
    if i <= n then t0 = C.now(); work:queue() end
  end)
  work:queue() -- warm
  uv.run()
  table.sort(t)
  C.result("p50_us", t[math.ceil(#t * 0.5)], ("p99_us=%.1f jobs=%d"):format(t[math.ceil(#t * 0.99)], n))
elseif mode == "speedup" then
  n = n or 30000000
  local function burn(k) local x = 0 for i = 1, k do x = x + i % 7 end return x end
  local left
  local work = uv.new_work(burn, function() left = left - 1 end)
  -- one at a time
  local t0 = C.now()
  left = 1; work:queue(n); uv.run()
  left = 1; work:queue(n); uv.run()
  local serial = C.now() - t0
  t0 = C.now()
  left = 2; work:queue(n); work:queue(n); uv.run()
  local parallel = C.now() - t0
  C.result("speedup", serial / parallel, ("serial_s=%.3f parallel_s=%.3f"):format(serial, parallel))
else
  error("mode: latency | speedup")
end
