-- Workload c (immediate chain) on luv: N deferred callbacks, each scheduling
-- the next.
--   idle   : one idle handle; each callback stops and re-starts it
--            (one full loop iteration per callback, like setImmediate)
--   timer0 : one timer; each callback re-arms it with timeout 0 (libuv 1.44
--            runs it again in the same timer pass: no poll in between)
-- usage: lua5.4 lua/immediate_luv.lua idle|timer0 [N=1000000]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../lib/?.lua;" .. package.path
local C = require "common"
local uv = require "luv"
local mode = arg[1] or "idle"
local N = tonumber(arg[2]) or 1000000
local count = 0
local t0 = C.now()
if mode == "idle" then
  local h = uv.new_idle()
  local function cb()
    h:stop()
    count = count + 1
    if count < N then h:start(cb) end
  end
  h:start(cb)
elseif mode == "timer0" then
  local t = uv.new_timer()
  local function cb()
    count = count + 1
    if count < N then t:start(0, 0, cb) end
  end
  t:start(0, 0, cb)
else error("mode?") end
uv.run()
local t1 = C.now()
assert(count == N)
local s = t1 - t0
C.result("wall_ms", s * 1e3, string.format("per_s=%.0f n=%d mode=%s", N / s, N, mode))
