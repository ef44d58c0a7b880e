-- weft threads benchmarks.  usage: lua5.4 threads_weft.lua MODE [N]
--   start    N workers (own Lua state each) started, a trivial job on each: ms
--   latency  N no-op jobs one after the other: p50 / p99 round trip, µs
--            (a third argument sets the pool's spin_us)
--   channel  N small values worker -> main task over a channel: msgs/s
--   channel_in  N small values main task -> worker: msgs/s
--   speedup  two CPU-bound jobs on 1 worker, then on 2: the ratio
--   large_job, large_channel  a string of N MiB (default 64) through a job
--            and back, or to a job over one channel and back over another:
--            how far VmHWM rose over VmRSS, in multiples of the size, the
--            time, and what VmRSS kept after two collections (also in
--            KiB, for tests/lua/thread_memory_spec.lua); "no reset" where
--            VmHWM cannot be reset
--   local    N values of arg[3] bytes sent and received on one thread
--            (no worker): msgs/s, the codec's and the channel's cost alone,
--            for instruction counts under cachegrind
package.path = arg[0]:gsub("[^/]*$", "") .. "../lib/?.lua;" .. package.path
local C = require "common"
local weft = require "weft"
local mode, n = arg[1], tonumber(arg[2])

local function pct(t, p)
  table.sort(t)
  return t[math.max(1, math.ceil(#t * p))]
end

if mode == "start" then
  n = n or 1000
  local t0 = C.now()
  local pool = weft.pool { max = n, min = n, idle_ms = 0 }
  local jobs = {}
  for i = 1, n do jobs[i] = pool:run(function(k) return k end, i) end
  weft.await(jobs)
  local ms = (C.now() - t0) * 1000
  local threads = pool:threads()
  pool:close()
  C.result("ms", ms, ("workers=%d threads=%d"):format(n, threads))
elseif mode == "latency" then
  n = n or 10000
  local pool = weft.pool { max = 1, min = 1, spin_us = tonumber(arg[3]) }
  local noop = function() end
  weft.await(pool:run(noop)) -- warm
  local t = {}
  for i = 1, n do
    local t0 = C.now()
    weft.await(pool:run(noop))
    t[i] = (C.now() - t0) * 1e6
  end
  pool:close()
  C.result("p50_us", pct(t, 0.5), ("p99_us=%.1f jobs=%d"):format(pct(t, 0.99), n))
elseif mode == "channel" or mode == "channel_in" then
  -- n values one way; the receiving side counts and sums them (this
  -- function has no upvalues, so it runs in a worker as well).
  local function drain(c)
    local got, sum = 0, 0
    while true do
      local v = c:recv()
      if v == nil then break end
      got, sum = got + 1, sum + v
    end
    return got, sum
  end
  local function fill(c, count)
    for i = 1, count do c:send(i) end
    c:close()
  end
  n = n or 1000000
  local pool = weft.pool { max = 1 }
  local ch = weft.thread.channel()
  -- "channel": the worker fills, this task drains; "channel_in": the other way
  local here, there = drain, fill
  if mode == "channel_in" then here, there = fill, drain end
  local t0 = C.now()
  local job = pool:run(there, ch, n)
  local got, sum
  weft.run(function()
    local g1, s1 = here(ch, n)
    local g2, s2 = weft.await(job)
    got, sum = g1 or g2, s1 or s2 -- (fill returns nothing)
  end)
  local s = C.now() - t0
  assert(got == n and sum == n * (n + 1) // 2)
  pool:close()
  C.result("msgs_per_s", n / s, ("msgs=%d secs=%.3f"):format(n, s))
elseif mode == "speedup" then
  n = n or 30000000
  local function burn(k) local x = 0 for i = 1, k do x = x + i % 7 end return x end
  local one = weft.pool { max = 1, min = 1 }
  local t0 = C.now()
  weft.await(one:run(burn, n))
  weft.await(one:run(burn, n))
  local serial = C.now() - t0
  one:close()
  local two = weft.pool { max = 2, min = 2 }
  t0 = C.now()
  weft.await({ two:run(burn, n), two:run(burn, n) })
  local parallel = C.now() - t0
  two:close()
  C.result("speedup", serial / parallel, ("serial_s=%.3f parallel_s=%.3f"):format(serial, parallel))
elseif mode == "large_job" or mode == "large_channel" then
  n = n or 64
  local function vm() -- VmRSS, VmHWM in KiB
    local f = assert(io.open("/proc/self/status"))
    local s = f:read("a")
    f:close()
    return tonumber(s:match("VmRSS:%s*(%d+)")), tonumber(s:match("VmHWM:%s*(%d+)"))
  end
  local pool = weft.pool { max = 1 }
  local to, from = weft.thread.channel(), weft.thread.channel()
  weft.await(pool:run(function() return 1 end))
  local big = string.rep("x", n * 1024 * 1024)
  collectgarbage()
  local f = io.open("/proc/self/clear_refs", "w") -- VmHWM back to VmRSS
  if not (f and f:write("5") and f:close()) then
    print("no reset") -- (a kernel without it: VmHWM would be stale)
    os.exit(0)
  end
  local before = vm()
  local t0 = C.now()
  local back
  if mode == "large_job" then
    back = weft.await(pool:run(function(s) return s end, big))
  else
    local job = pool:run(function(a, b) b:send(a:recv()) end, to, from)
    to:send(big)
    weft.await(job)
    back = from:recv()
  end
  local ms = (C.now() - t0) * 1000
  assert(back == big)
  local _, peak = vm()
  back = nil
  collectgarbage()
  collectgarbage()
  local after = vm()
  pool:close()
  C.result("peak_x_size", (peak - before) / 1024 / n,
    ("ms=%.1f kept_mib=%.1f size_mib=%d peak_kib=%d kept_kib=%d")
    :format(ms, (after - before) / 1024, n, peak - before, after - before))
elseif mode == "local" then
  n = n or 100000
  local v = string.rep("x", tonumber(arg[3]) or 0)
  local ch = weft.thread.channel()
  local t0 = C.now()
  for _ = 1, n do
    ch:send(v)
    ch:recv()
  end
  local s = C.now() - t0
  C.result("msgs_per_s", n / s, ("msgs=%d bytes=%d"):format(n, #v))
else
  error("mode: start | latency | channel | channel_in | speedup | large_job | large_channel | local")
end
