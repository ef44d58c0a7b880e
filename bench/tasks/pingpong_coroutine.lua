-- Workload b (Lua side): plain Lua 5.4 coroutine round trips (resume+yield).
-- usage: lua5.4 lua/pingpong.lua [resume|wrap] [N=10000000]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../lib/?.lua;" .. package.path
local C = require "common"
local mode = arg[1] or "resume"
local N = tonumber(arg[2]) or 10000000
local yield, resume = coroutine.yield, coroutine.resume
local count = 0
local t0, t1
if mode == "resume" then
  -- one value passed each way, like await returning a result
  local co = coroutine.create(function(v)
    while true do count = count + 1; v = yield(v) end
  end)
  t0 = C.now()
  for i = 1, N do local ok, v = resume(co, i) end
  t1 = C.now()
elseif mode == "wrap" then
  local f = coroutine.wrap(function(v)
    while true do count = count + 1; v = yield(v) end
  end)
  t0 = C.now()
  for i = 1, N do f(i) end
  t1 = C.now()
else error("mode?") end
assert(count == N)
local s = t1 - t0
C.result("rt_per_s", math.floor(N / s), string.format("ns_per_rt=%.2f n=%d mode=%s clock=%s", s * 1e9 / N, N, mode, C.clock))
