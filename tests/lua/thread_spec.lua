-- Threads: pools of workers with their own Lua states, channels across
-- threads, and what may cross.
local weft = require "weft"
local helper = require "helper"

local pool
before_each(function() pool = weft.pool { max = 2, idle_ms = 1000 } end)
after_each(function()
  pool:close()
  helper.assert_clean(weft)
end)

describe("pool:run", function()
  it("runs a function in a worker and gives its results", function()
    assert.same({ 5, "x", nil, true }, { weft.await(pool:run(function(a, b)
      return a + b, "x", nil, true
    end, 2, 3)) })
  end)

  it("resolves a dotted name with require in the worker", function()
    assert.equal("ababab", weft.await(pool:run("string.rep", "ab", 3)))
    assert.equal("ababab", weft.await(weft.thread.run("string.rep", "ab", 3)))
    local ok, err = pcall(weft.await, pool:run("no.such.thing"))
    assert.is_false(ok)
    assert.matches("'no.such.thing' is not a function", err)
  end)

  it("gives a worker only the standard libraries, with weft by require", function()
    local names = weft.await(pool:run(function()
      local t = {}
      for k in pairs(_G) do t[#t + 1] = k end
      table.sort(t)
      return table.concat(t, " "), require("weft").thread.id()
    end))
    assert.equal("_G _VERSION assert collectgarbage coroutine debug dofile error getmetatable io ipairs load loadfile math next os package pairs pcall print rawequal rawget rawlen rawset require select setmetatable string table tonumber tostring type utf8 warn xpcall",
      names)
    local _, id = weft.await(pool:run(function() return 0, require("weft").thread.id() end))
    assert.is_true(id > 0)
    assert.equal(0, weft.thread.id())
  end)

  it("lets a worker run a weft loop of its own", function()
    assert.same({ "a", "b", 2 }, { weft.await(pool:run(function()
      local w = require "weft"
      local order = {}
      w.run(function()
        local t = w.async(function() w.delay(5); order[#order + 1] = "b" end)
        order[#order + 1] = "a"
        w.await(t)
      end)
      return order[1], order[2], #order
    end)) })
  end)

  it("rejects with the job's error and the worker's traceback", function()
    local ok, err = pcall(weft.await, pool:run(function() error("boom") end))
    assert.is_false(ok)
    assert.matches("boom", err)
    assert.matches("stack traceback", err)
    -- the worker lives on
    assert.equal(1, weft.await(pool:run(function() return 1 end)))
  end)

  it("keeps values as they were: types, binary strings, shared parts, cycles", function()
    local shared = { 1 }
    local t = { a = shared, b = shared, int = 3, float = 3.0, bin = "\0\1\255", nested = { { { true } } } }
    t.self = t
    assert.same({ true, true, "integer", "float", "\0\1\255", true }, { weft.await(pool:run(function(x)
      return x.self == x, x.a == x.b, math.type(x.int), math.type(x.float), x.bin, x.nested[1][1][1]
    end, t)) })
  end)

  it("refuses what cannot cross, naming its path", function()
    local up = 1
    assert.has_error(function() pool:run(function() return up end) end,
      "args[1]: function with upvalues cannot cross threads")
    assert.has_error(function() pool:run(function() end, { conf = { cb = function() return up end } }) end,
      "args[2].conf.cb: function with upvalues cannot cross threads")
    assert.has_error(function() pool:run("x", io.stdout) end,
      "args[2]: FILE* cannot cross threads")
    assert.has_error(function() pool:run("x", setmetatable({}, {})) end,
      "args[2]: table with a metatable (not a registered class) cannot cross threads")
    assert.has_error(function() pool:run("x", { [coroutine.create(print)] = 1 }) end,
      "args[2].<key>: thread cannot cross threads")
    assert.has_error(function() pool:run(print) end,
      "args[1]: C function cannot cross threads")
    assert.has_error(function() pool:run(42) end,
      "bad argument #1 to 'run' (function or function name expected, got number)")
  end)

  it("cancels a queued job, and stops a running one at a hook check", function()
    local one = weft.pool { max = 1 }
    local running = one:run(function() local x = 0 while true do x = x + 1 end end)
    local queued = one:run(function() return "never" end)
    weft.run(function()
      queued:cancel()
      weft.delay(20)
      running:cancel("stop")
      assert.is_true(weft.is_cancelled(select(2, pcall(weft.await, running))))
      assert.is_true(weft.is_cancelled(select(2, pcall(weft.await, queued))))
      assert.equal("reused", weft.await(one:run(function() return "reused" end)))
    end)
    one:close()
  end)

  it("close cancels queued jobs and finishes running ones", function()
    local one = weft.pool { max = 1 }
    local ch, started = weft.thread.channel(), weft.thread.channel()
    local running = one:run(function(c, s)
      s:send(true)
      c:recv()
      return "finished"
    end, ch, started)
    local queued = one:run(function() return "never" end)
    weft.run(function()
      started:recv()
      -- the close waits for the running job, which another task lets end
      weft.async(function() ch:send("go") end)
      assert.is_true(one:close())
      assert.equal("finished", weft.await(running))
      assert.is_true(weft.is_cancelled(select(2, pcall(weft.await, queued))))
    end)
    assert.is_false(one:close())
    assert.has_error(function() one:run(print) end, "attempt to use a closed pool")
  end)

  it("keeps the loop responsive while a CPU-bound job runs", function()
    if os.getenv("WEFT_TEST_VALGRIND") then
      pending("valgrind runs one thread at a time: no parallelism to observe")
      return
    end
    local fired_at, done_at
    weft.run(function()
      local t0 = weft.now()
      local job = pool:run(function()
        local stop = os.clock() + 1
        while os.clock() < stop do end
        return true
      end)
      weft.once(10, function() fired_at = weft.now() - t0 end)
      weft.await(job)
      done_at = weft.now() - t0
    end)
    -- the 10 ms timer fired while the 1 s job ran, not after it
    assert.is_true(fired_at < done_at)
    assert.is_true(fired_at < 500, "timer late: " .. fired_at .. " ms")
  end)

  it("requires the init module in each worker", function()
    package.preload["weft_spec_init"] = nil
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir " .. dir)
    local f = assert(io.open(dir .. "/weftinit.lua", "w"))
    f:write("GREETING = 'hello from init'\n")
    f:close()
    local saved = package.path
    package.path = dir .. "/?.lua;" .. package.path
    local p = weft.pool { max = 1, init = "weftinit" }
    package.path = saved
    assert.equal("hello from init", weft.await(p:run(function() return GREETING end)))
    p:close()
    os.remove(dir .. "/weftinit.lua")
    os.remove(dir)
  end)

  it("carries instances of registered classes both ways", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir " .. dir)
    local f = assert(io.open(dir .. "/weftpoint.lua", "w"))
    f:write([[
      local Point = {}
      Point.__index = Point
      function Point.new(x, y) return setmetatable({ x = x, y = y }, Point) end
      function Point:len() return math.sqrt(self.x ^ 2 + self.y ^ 2) end
      return require("weft").thread.register("Point", Point)
    ]])
    f:close()
    local saved = package.path
    package.path = dir .. "/?.lua;" .. package.path
    local Point = require "weftpoint"
    local classy = weft.pool { max = 1, init = "weftpoint" }
    assert.same({ 5.0, true }, { weft.await(classy:run(function(p)
      return p:len(), getmetatable(p) == require("weftpoint")
    end, Point.new(3, 4))) })
    local back = weft.await(classy:run(function() return require("weftpoint").new(6, 8) end))
    assert.equal(Point, getmetatable(back))
    assert.equal(10.0, back:len())
    -- a worker that never registered it refuses the instance clearly
    local ok, err = pcall(weft.await, pool:run(function(p) return p end, Point.new(1, 1)))
    assert.is_false(ok)
    assert.matches("class 'Point' is not registered in this Lua state", err)
    assert.has_error(function() weft.thread.register("Point", {}) end,
      "bad argument #1 to 'register' (name already registered for another metatable)")
    classy:close()
    package.path = saved
    package.loaded.weftpoint = nil
    os.remove(dir .. "/weftpoint.lua")
    os.remove(dir)
  end)

  it("raises for bad options", function()
    assert.has_error(function() weft.pool { max = 0 } end,
      "bad argument #1 to 'pool' (field 'max' must be an integer >= 1)")
    assert.has_error(function() weft.pool { min = 3, max = 2 } end,
      "bad argument #1 to 'pool' (field 'min' must be an integer in 0..max)")
    assert.has_error(function() weft.pool { maxx = 2 } end,
      "bad argument #1 to 'pool' (unknown option 'maxx')")
    for _, bad in ipairs { -1, 1.5, "50", 1000001 } do
      assert.has_error(function() weft.pool { spin_us = bad } end,
        "bad argument #1 to 'pool' (field 'spin_us' must be an integer from 0 to 1000000)")
    end
    -- The loop still works, and so do pools.
    local p = weft.pool { max = 1, spin_us = 0 }
    assert.equal(3, weft.await(p:run(function(a, b) return a + b end, 1, 2)))
    p:close()
  end)

  it("runs back-to-back jobs on one watching worker", function()
    -- A worker that watches for the next job counts as idle: a job queued
    -- meanwhile goes to it, not to a new thread.
    local p = weft.pool { max = 4, spin_us = 1000000 }
    for i = 1, 50 do
      assert.equal(i, weft.await(p:run(function(k) return k end, i)))
    end
    assert.equal(1, p:threads())
    p:close()
  end)
end)

describe("weft.thread.channel", function()
  it("carries values, nil among them, from workers to a task", function()
    local ch = weft.thread.channel()
    local job = pool:run(function(c)
      for i = 1, 3 do c:send(i) end
      c:send(nil)
      c:send({ k = "v" })
      c:close()
    end, ch)
    local got = {}
    weft.run(function()
      for _ = 1, 5 do got[#got + 1] = { ch:recv() } end
      got[#got + 1] = { ch:recv() }
      weft.await(job)
    end)
    assert.same({ { 1 }, { 2 }, { 3 }, { nil }, { { k = "v" } }, { nil, "closed" } }, got)
  end)

  it("blocks a worker on a full channel and suspends a task", function()
    local ch = weft.thread.channel(1)
    local job = pool:run(function(c)
      for i = 1, 50 do c:send(i) end -- blocks while full
      return "sent"
    end, ch)
    local sum = 0
    weft.run(function()
      for _ = 1, 50 do sum = sum + ch:recv() end
      assert.equal("sent", weft.await(job))
    end)
    assert.equal(1275, sum)
  end)

  it("has try variants, a timeout, a count and close", function()
    local ch = weft.thread.channel(1)
    assert.same({ nil, "empty" }, { ch:try_recv() })
    assert.is_true(ch:try_send("a"))
    assert.same({ false, "full" }, { ch:try_send("b") })
    assert.equal(1, ch:count())
    assert.equal("a", ch:try_recv())
    assert.same({ nil, "timeout" }, { ch:recv(5) })
    assert.is_true(ch:close())
    assert.is_false(ch:close())
    assert.same({ false, "closed" }, { ch:try_send(1) })
    assert.has_error(function() ch:send(1) end, "send on a closed channel")
    assert.same({ nil, "closed" }, { ch:recv() })
    assert.has_error(function() weft.thread.channel(0) end,
      "bad argument #1 to 'channel' (capacity must be an integer >= 1 or nil)")
    assert.has_error(function() ch:send(function() return ch end) end,
      "value[1]: function with upvalues cannot cross threads")
  end)

  it("can be sent over a channel and used from the other side", function()
    local ch, reply = weft.thread.channel(), weft.thread.channel()
    local job = pool:run(function(c)
      local back = c:recv()
      back:send("pong")
    end, ch)
    ch:send(reply)
    assert.equal("pong", reply:recv(5000))
    weft.await(job)
  end)

  it("a cancelled task stops waiting on a channel", function()
    local ch = weft.thread.channel()
    weft.run(function()
      local waiting = weft.promise()
      local t = weft.async(function() waiting:resolve() return ch:recv() end)
      weft.await(waiting)
      weft.delay(1)
      t:cancel()
      assert.is_true(weft.is_cancelled(select(2, pcall(weft.await, t))))
    end)
    ch:send(1)
    assert.equal(1, ch:recv())
  end)
end)

-- How long a test waits before it calls something hung: generous, scaled
-- for sanitizers and valgrind.  A guard, not a speed assertion.
local HANG_MS = 10000 * tonumber(os.getenv("WEFT_TEST_TIMEOUT_MULTIPLIER") or 1)

describe("weft.thread.channel: every value once, to a receiver that waits", function()
  it("gives two jobs on one worker the first two values, leaving the rest", function()
    local one = weft.pool { max = 1 }
    local ch = weft.thread.channel()
    for i = 1, 10 do ch:send(i) end
    local recv = function(c) return c:recv(0) end
    assert.same({ 1, 2 }, { weft.await(one:run(recv, ch)), weft.await(one:run(recv, ch)) })
    assert.equal(8, ch:count())
    one:close()
  end)

  it("lets a second handle of a channel receive what the first left", function()
    local a, carrier = weft.thread.channel(), weft.thread.channel()
    carrier:send(a)
    local a2 = carrier:recv()
    assert.are_not.equal(a, a2) -- two handles, one channel
    a:send(1)
    a:send(2)
    assert.equal(1, a:recv())
    assert.equal(2, a2:recv(0))
    assert.same({ nil, "timeout" }, { a:recv(0) })
    assert.equal(0, a:count())
  end)

  it("gives N workers receiving once each the N values sent", function()
    local n = 48
    local many = weft.pool { max = n, idle_ms = 0 }
    local ch = weft.thread.channel()
    local jobs = {}
    for i = 1, n do
      jobs[i] = many:run(function(c, ms) return (c:recv(ms)) end, ch, HANG_MS)
    end
    for i = 1, n do ch:send(i) end
    local got = { weft.await(weft.all(jobs)) }
    got = got[1]
    local seen = {}
    for i = 1, n do
      local v = got[i][1]
      assert.is_number(v)
      assert.is_nil(seen[v])
      seen[v] = true
    end
    assert.equal(0, ch:count())
    many:close()
  end)

  it("shares a backlog among the workers that wait, one value at a time", function()
    -- 4 workers take values from one channel holding 64; each reports what
    -- it took and waits for its own go before taking the next.  Only a
    -- receiver that took one value and left the rest waiting lets the
    -- others take theirs.
    local workers, values = 4, 64
    local p = weft.pool { max = workers }
    local work, reports = weft.thread.channel(), weft.thread.channel()
    local go = {}
    for i = 1, values do work:send(i) end
    work:close()
    local jobs = {}
    for w = 1, workers do
      go[w] = weft.thread.channel()
      jobs[w] = p:run(function(id, c, r, g, ms)
        local n = 0
        while true do
          local v, why = c:recv(ms)
          if v == nil then return n, why end
          n = n + 1
          r:send({ id, v })
          g:recv(ms)
        end
      end, w, work, reports, go[w], HANG_MS)
    end
    local taken, ok, err, outcomes = {}, nil, nil, {}
    weft.run(function()
      ok, err = pcall(function()
        for _ = 1, values / workers do
          local round = {}
          for _ = 1, workers do
            local r, why = reports:recv(HANG_MS)
            assert.is_table(r, why)
            assert.is_nil(round[r[1]]) -- every worker once a round
            round[r[1]] = true
            taken[#taken + 1] = r[2]
          end
          for w = 1, workers do go[w]:send(true) end
        end
      end)
      for w = 1, workers do go[w]:close() end -- (let a failed run's jobs end)
      for w = 1, workers do outcomes[w] = { weft.await(jobs[w]) } end
    end)
    p:close()
    assert(ok, err)
    for w = 1, workers do assert.same({ values / workers, "closed" }, outcomes[w]) end
    table.sort(taken)
    for i = 1, values do assert.equal(i, taken[i]) end
  end)
end)

-- Runs src in a child lua5.4 (finding weft as this process does) that may
-- take at most secs: its output, and whether it exited with 0 in time.
local function run_bounded(src, secs)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(src)
  f:close()
  local p = assert(io.popen(("timeout -s KILL %d env LUA_CPATH=%q LUA_PATH=%q lua5.4 %s 2>&1")
    :format(secs, package.cpath, package.path, path)))
  local out = p:read("a")
  local ok = p:close()
  os.remove(path)
  return out, ok
end
local HANG_S = HANG_MS // 1000

describe("cancelling a job that waits in weft", function()
  -- Runs body(ch, started, ...) as a job, which tells `started` when it is
  -- about to wait, and returns its task once it is.
  local function blocked(one, ch, body, ...)
    local started = weft.thread.channel()
    local t = one:run(body, ch, started, ...)
    started:recv()
    return t
  end

  it("wakes a ch:recv() at once; a later value goes to a live receiver", function()
    local one = weft.pool { max = 1 }
    local ch = weft.thread.channel()
    weft.run(function()
      local t = blocked(one, ch, function(c, s) s:send(true); return c:recv() end)
      t:cancel()
      assert.is_true(weft.is_cancelled(select(2, pcall(weft.await, t))))
      -- the one worker is free again, and the value goes to the next job
      local nxt = one:run(function(c, ms) return c:recv(ms) end, ch, HANG_MS)
      ch:send(42)
      assert.equal(42, weft.await(nxt))
    end)
    assert.equal(0, ch:count())
    one:close()
  end)

  it("wakes a ch:send() waiting for room, which sends nothing", function()
    local one = weft.pool { max = 1 }
    local ch = weft.thread.channel(1)
    ch:send("first")
    weft.run(function()
      local t = blocked(one, ch, function(c, s) s:send(true); c:send("never") end)
      t:cancel()
      assert.is_true(weft.is_cancelled(select(2, pcall(weft.await, t))))
      local ok, got = pcall(weft.await, one:run(function(c) return c:recv() end, ch), HANG_MS)
      if not ok then ch:recv(0) end -- (a sender stuck in the job would hang the run)
      assert(ok, got)
      assert.equal("first", got)
    end)
    assert.same({ nil, "timeout" }, { ch:recv(0) })
    one:close()
  end)

  it("wakes a task of the job's own loop waiting on a channel", function()
    local one = weft.pool { max = 1 }
    local ch = weft.thread.channel()
    weft.run(function()
      local t = blocked(one, ch, function(c, s)
        return require("weft").run(function() s:send(true); return c:recv() end)
      end)
      t:cancel()
      assert.is_true(weft.is_cancelled(select(2, pcall(weft.await, t))))
      local nxt = one:run(function(c, ms) return c:recv(ms) end, ch, HANG_MS)
      ch:send(7)
      assert.equal(7, weft.await(nxt))
    end)
    one:close()
  end)

  it("wakes the job's own loop waiting on a timer", function()
    local one = weft.pool { max = 1 }
    weft.run(function()
      local t = blocked(one, nil, function(_, s, ms)
        local w = require "weft"
        w.run(function() s:send(true); w.delay(ms) end)
      end, HANG_MS)
      t:cancel()
      assert.equal("free", weft.await(one:run(function() return "free" end), HANG_MS))
    end)
    one:close()
  end)

  it("lets pool:close() return after cancelling a job blocked in ch:recv()", function()
    local out, ok = run_bounded([[
      local weft = require "weft"
      local pool, ch, started = weft.pool { max = 1 }, weft.thread.channel(), weft.thread.channel()
      weft.run(function()
        local t = pool:run(function(c, s) s:send(true); return c:recv() end, ch, started)
        started:recv()
        t:cancel()
        pool:close()
      end)
      print("closed")
    ]], HANG_S)
    assert.is_true(ok, out)
    assert.equal("closed\n", out)
  end)
end)

describe("a Lua state closing with jobs still waiting", function()
  for name, body in pairs {
    ["in ch:recv()"] = "c:recv()",
    ["in ch:send() on a full channel"] = "c:send(1); c:send(2)",
    ["in its own loop"] = "require('weft').run(function() c:recv() end)",
    ["in a busy loop"] = "while true do end",
  } do
    it("interrupts a worker waiting " .. name .. ", and the process exits", function()
      local out, ok = run_bounded(([[
        local weft = require "weft"
        local pool, ch, started = weft.pool { max = 2 }, weft.thread.channel(1), weft.thread.channel()
        pool:run(function(c, s) s:send(true); %s end, ch, started)
        weft.thread.run(function(c) c:recv() end, weft.thread.channel())
        started:recv()
        print("ending")
      ]]):format(body), HANG_S)
      assert.is_true(ok, out)
      assert.equal("ending\n", out)
    end)
  end
end)

describe("a Lua state closing with a task waiting on a channel", function()
  it("withdraws the wait and frees the loop (no leak under the sanitizers)", function()
    local out, ok = run_bounded([[
      local weft = require "weft"
      local ch, full = weft.thread.channel(), weft.thread.channel(1)
      full:send(1)
      weft.async(function() ch:recv() end)
      weft.async(function() full:send(2) end)
      weft.async(function() ch:recv(60000) end)
      weft.tick(true)
      print("ending")
    ]], HANG_S)
    assert.is_true(ok, out)
    assert.equal("ending\n", out)
  end)
end)

describe("pool:close()", function()
  -- A pool whose one job waits for "go" on its channel.
  local function waiting_job()
    local p, go, started = weft.pool { max = 1 }, weft.thread.channel(), weft.thread.channel()
    local job = p:run(function(g, s, ms) s:send(true); return g:recv(ms) end, go, started, HANG_MS)
    started:recv()
    return p, go, job
  end

  it("suspends a task while jobs finish: other tasks run meanwhile", function()
    local order = {}
    weft.run(function()
      local p, go, job = waiting_job()
      local closer = weft.async(function()
        assert.is_true(p:close())
        order[#order + 1] = "closed"
      end)
      weft.async(function()
        order[#order + 1] = "other task"
        go:send("go")
      end)
      weft.await(closer)
      assert.equal("go", weft.await(job))
      assert.is_false(p:close())
    end)
    assert.same({ "other task", "closed" }, order)
  end)

  it("runs the loop in the main chunk: timers fire meanwhile", function()
    local p, go, job = waiting_job()
    weft.once(1, function() go:send("go") end)
    assert.is_true(p:close())
    assert.equal("go", weft.await(job))
  end)

  it("in a callback, begins the close and returns without waiting", function()
    local p, go, job = waiting_job()
    local returned
    weft.once(1, function()
      returned = p:close()
      go:send("go") -- (only now can the job end)
    end)
    assert.equal("go", weft.await(job))
    assert.is_true(returned)
    weft.run() -- the close ends
    assert.equal("weft.pool (closed)", tostring(p))
    assert.equal(0, p:threads())
  end)

  it("closes a pool bound with <close> at the end of a task's block", function()
    local go, started = weft.thread.channel(), weft.thread.channel()
    local job
    weft.run(function()
      do
        local p <close> = weft.pool { max = 1 }
        job = p:run(function(g, s, ms) s:send(true); return g:recv(ms) end, go, started, HANG_MS)
        started:recv()
        weft.async(function() go:send("go") end)
      end
      assert.equal("go", weft.await(job))
    end)
  end)

  it("refuses bad self", function()
    assert.has_error(function() pool.close(42) end,
      "bad argument #1 to 'close' (weft.pool expected, got number)")
    assert.has_error(function() pool.run({}, print) end,
      "bad argument #1 to 'run' (weft.pool expected, got table)")
  end)
end)

describe("a job's error", function()
  it("arrives as the table it was, with the worker's traceback in 'traceback'", function()
    local ok, err = pcall(weft.await, pool:run(function() error({ code = 42 }) end))
    assert.is_false(ok)
    assert.is_table(err)
    assert.equal(42, err.code)
    assert.matches("^stack traceback:\n", err.traceback)
    assert.matches("in function 'error'", err.traceback)
  end)

  it("keeps a table's own 'traceback' field", function()
    local _, err = pcall(weft.await, pool:run(function() error({ traceback = "mine" }) end))
    assert.equal("mine", err.traceback)
  end)

  it("arrives as itself when it is a number or a boolean", function()
    assert.same({ false, 7 }, { pcall(weft.await, pool:run(function() error(7) end)) })
    assert.same({ false, false }, { pcall(weft.await, pool:run(function() error(false) end)) })
  end)

  it("names the type of a value that cannot cross", function()
    local _, err = pcall(weft.await, pool:run(function() error(io.stdout) end))
    assert.matches("^%(error object is a userdata value: error%[1%]: FILE%* cannot cross threads%)\nstack traceback:", err)
    _, err = pcall(weft.await, pool:run(function() local up = 1; error({ f = function() return up end }) end))
    assert.matches("^%(error object is a table value: error%[1%]%.f: function with upvalues cannot cross threads%)", err)
  end)

  it("keeps a string's worker traceback and shows no frame of weft's own", function()
    local _, err = pcall(weft.await, pool:run(function() error("boom") end))
    assert.matches("boom\nstack traceback:", err)
    assert.not_matches("thread%.lua", err)
    assert.not_matches("weft/", err)
  end)
end)

describe("errors of the thread functions", function()
  -- Calls fn, which raises on its line; the message must start there.
  local function raises_here(fn, msg)
    local line = debug.getinfo(2, "l").currentline
    local ok, err = pcall(fn)
    assert.is_false(ok)
    assert.equal(("%s:%d: %s"):format(debug.getinfo(1, "S").short_src, line, msg), err)
  end

  it("carry the caller's position and the function's name", function()
    local ch = weft.thread.channel()
    local up = 1
    raises_here(function() ch:send(function() return up end) end,
      "value[1]: function with upvalues cannot cross threads")
    raises_here(function() ch:try_send(function() return up end) end,
      "value[1]: function with upvalues cannot cross threads")
    raises_here(function() ch:recv(-1) end, "bad argument #1 to 'recv' (timeout must be a number >= 0)")
    raises_here(function() ch:recv("x") end, "bad argument #1 to 'recv' (timeout must be a number >= 0)")
    raises_here(function() ch.recv(42) end, "bad argument #1 to 'recv' (weft.thread.channel expected, got number)")
    raises_here(function() ch.count() end, "bad argument #1 to 'count' (weft.thread.channel expected, got no value)")
    raises_here(function() pool:run(function() return up end) end,
      "args[1]: function with upvalues cannot cross threads")
    raises_here(function() pool:run(print, io.stdout) end, "args[1]: C function cannot cross threads")
    raises_here(function() pool:run(42) end,
      "bad argument #1 to 'run' (function or function name expected, got number)")
    raises_here(function() weft.thread.run(42) end,
      "bad argument #1 to 'run' (function or function name expected, got number)")
    raises_here(function() weft.thread.channel(0) end,
      "bad argument #1 to 'channel' (capacity must be an integer >= 1 or nil)")
    raises_here(function() weft.pool { max = 0 } end,
      "bad argument #1 to 'pool' (field 'max' must be an integer >= 1)")
    weft.thread.register("spec.Thing", {})
    raises_here(function() weft.thread.register("spec.Thing", {}) end,
      "bad argument #1 to 'register' (name already registered for another metatable)")
    ch:close()
    raises_here(function() ch:send(1) end, "send on a closed channel")
    local closed = weft.pool { max = 1 }
    closed:close()
    raises_here(function() closed:run(print) end, "attempt to use a closed pool")
    -- and the loop still works
    assert.equal(3, weft.await(pool:run(function(a, b) return a + b end, 1, 2)))
  end)
end)
