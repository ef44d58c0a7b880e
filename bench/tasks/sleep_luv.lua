-- Workload d (task sleep fan-out) on luv + plain Lua coroutines: the shape
-- weft will have (libuv loop, a task = coroutine, sleep = timer + yield).
-- Each task: create a uv timer, start it, yield; the timer callback closes the
-- timer and resumes the task.  usage: lua5.4 lua/sleep_luv.lua [N=100000] [ms=10]
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../lib/?.lua;" .. package.path
local C = require "common"
local uv = require "luv"
local N = tonumber(arg[1]) or 100000
local MS = tonumber(arg[2]) or 10
local running, yield, resume = coroutine.running, coroutine.yield, coroutine.resume
local function sleep(ms)
  local co = running()
  local t = uv.new_timer()
  t:start(ms, 0, function()
    t:close()
    local ok, err = resume(co)
    if not ok then error(err) end
  end)
  yield()
end
local finished = 0
local function task() sleep(MS); finished = finished + 1 end
local t0 = C.now()
for i = 1, N do
  local co = coroutine.create(task)
  assert(resume(co))            -- runs until the first yield (like spawn+start)
end
local t1 = C.now()
uv.run()
local t2 = C.now()
assert(finished == N, finished)
C.result("wall_ms", (t2 - t0) * 1e3, string.format("spawn_ms=%.1f n=%d sleep_ms=%d", (t1 - t0) * 1e3, N, MS))
