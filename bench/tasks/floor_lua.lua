-- The floor of workload (b): a raw coroutine round trip (resume + yield)
-- in which each side also makes `calls` method calls of a C function that
-- does nothing (string.len on a one-byte string), as a task ping-pong's
-- sides make a send and a recv each.  No channel could cost less.
-- usage: lua5.4 floor_lua.lua [calls=2] [N=5000000]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../lib/?.lua;" .. package.path
local C = require "common"
local calls = tonumber(arg[1]) or 2
local N = tonumber(arg[2]) or 5000000
local yield, resume = coroutine.yield, coroutine.resume
local s = "x"
local co
if calls == 2 then
  co = coroutine.create(function(v) while true do s:len(); s:len(); v = yield(v) end end)
elseif calls == 0 then
  co = coroutine.create(function(v) while true do v = yield(v) end end)
else error("calls: 0 or 2") end
local t0 = C.now()
if calls == 2 then
  for i = 1, N do s:len(); s:len(); resume(co, i) end
else
  for i = 1, N do resume(co, i) end
end
local sec = C.now() - t0
C.result("rt_per_s", math.floor(N / sec), string.format("ns_per_rt=%.1f calls=%d", sec * 1e9 / N, calls))
