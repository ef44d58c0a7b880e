-- Cancellation, timeouts and errors a structured program can rely on: when a
-- wait returns, what it gave up on has been cancelled and has finished
-- cleaning up (Trio's and asyncio's rule).
local weft = require "weft"
local helper = require "helper"

after_each(function()
  weft.on_error(nil)
  helper.assert_clean(weft)
end)

-- A task that waits "forever", and notes when its cleanup (a <close>
-- variable that itself waits a little) has run.
local function sleeper(log, name)
  return weft.async(function()
    local _ <close> = setmetatable({}, { __close = function()
      weft.shield(function() weft.delay(5) end)
      log[#log + 1] = name .. " cleaned"
    end })
    weft.delay(100000)
  end)
end

describe("awaiting a cancelled task", function()
  it("returns once the task's cleanup has run, raising the cancellation", function()
    local log = {}
    local t = sleeper(log, "t")
    weft.await(weft.async(function() end)) -- t waits now
    assert.is_true(t:cancel("enough"))
    assert.is_false(t:cancel()) -- once
    assert.equal("pending", t:status()) -- still cleaning up
    local ok, err = pcall(weft.await, t)
    assert.is_false(ok)
    assert.is_true(weft.is_cancelled(err))
    assert.equal("enough", err.reason)
    assert.same({ "t cleaned" }, log)
    assert.equal("cancelled", t:status())
  end)

  it("releases what the task held: a listener's address, a mutex", function()
    local server = assert(weft.tcp.listen("127.0.0.1", 0))
    local _, port = server:sockname()
    server:close()
    local m = weft.mutex()
    local t = weft.async(function()
      local s <close> = assert(weft.tcp.listen("127.0.0.1", port))
      local held <close> = m:lock()
      weft.delay(100000)
    end)
    weft.await(weft.async(function() end))
    assert.is_true(m:locked())
    t:cancel()
    assert.is_false(pcall(weft.await, t))
    assert.is_false(m:locked())
    local again = assert(weft.tcp.listen("127.0.0.1", port)) -- no EADDRINUSE
    again:close()
  end)

  it("waits for it from another task too", function()
    local log = {}
    local t = sleeper(log, "t")
    local seen = weft.await(weft.async(function()
      weft.delay(1)
      t:cancel()
      pcall(weft.await, t)
      return table.concat(log)
    end))
    assert.equal("t cleaned", seen)
  end)

  it("ends cancelled even if the function returns after the cancellation", function()
    local t = weft.async(function()
      pcall(weft.delay, 100000)
      return "ignored"
    end)
    weft.await(weft.async(function() end))
    t:cancel()
    local ok, err = pcall(weft.await, t)
    assert.is_false(ok)
    assert.is_true(weft.is_cancelled(err))
    assert.equal("cancelled", t:status())
  end)

  it("ends rejected if the cleanup raised another error", function()
    local t = weft.async(function()
      local _ <close> = setmetatable({}, { __close = function() error("cleanup broke", 0) end })
      weft.delay(100000)
    end)
    weft.await(weft.async(function() end))
    t:cancel()
    local ok, err = pcall(weft.await, t)
    assert.is_false(ok)
    assert.matches("cleanup broke", tostring(err))
    assert.equal("rejected", t:status())
  end)

  it("never runs a task cancelled before it started", function()
    local ran = false
    local t = weft.async(function() ran = true end)
    assert.is_true(t:cancel())
    assert.equal("cancelled", t:status()) -- nothing to clean up: at once
    weft.run()
    assert.is_false(ran)
  end)

  it("settles a plain promise as cancelled at once", function()
    local p = weft.promise()
    assert.is_true(p:cancel())
    assert.equal("cancelled", p:status())
  end)

  it("raises the cancellation at every wait of a cancelled task", function()
    local raised = 0
    local t = weft.async(function()
      for _ = 1, 3 do
        if not pcall(weft.delay, 100000) then raised = raised + 1 end
      end
    end)
    weft.await(weft.async(function() end))
    t:cancel()
    pcall(weft.await, t)
    assert.equal(3, raised)
  end)
end)

describe("a timeout", function()
  it("cancels every input of await(list, ms), raising once they ended", function()
    local log = {}
    local a, b = sleeper(log, "a"), sleeper(log, "b")
    local ok, err = pcall(weft.await, { a, b }, 10)
    assert.is_false(ok)
    assert.is_true(weft.is_timeout(err))
    table.sort(log)
    assert.same({ "a cleaned", "b cleaned" }, log)
    assert.equal("cancelled", a:status())
    assert.equal("cancelled", b:status())
  end)

  for _, form in ipairs {
    { "weft.await(p, ms)", function(p) return weft.await(p, 10) end },
    { "p:await(ms)", function(p) return p:await(10) end },
    { "weft.await(weft.timeout(p, ms))", function(p) return weft.await(weft.timeout(p, 10)) end },
  } do
    it("of " .. form[1] .. " cancels p and raises once it ended", function()
      local log = {}
      local t = sleeper(log, "t")
      local ok, err = pcall(form[2], t)
      assert.is_false(ok)
      assert.is_true(weft.is_timeout(err))
      assert.same({ "t cleaned" }, log)
      assert.equal("cancelled", t:status())
    end)
  end

  it("inside a task, also waits for the cleanup", function()
    local log = {}
    local r = weft.await(weft.async(function()
      local t = sleeper(log, "t")
      local ok, err = pcall(weft.await, t, 10)
      return weft.is_timeout(err) and not ok and table.concat(log)
    end))
    assert.equal("t cleaned", r)
  end)

  for _, form in ipairs {
    { "weft.await(p, ms)", function(p) return weft.await(p, 100000) end },
    { "weft.await(list, ms)", function(p) return weft.await({ p }, 100000) end },
  } do
    it("of " .. form[1] .. " in a task that is cancelled cancels p, its timer gone", function()
      local log = {}
      local p = sleeper(log, "p")
      local t = weft.async(form[2], p)
      weft.await(weft.async(function() end)) -- t waits now
      t:cancel()
      local ok, err = pcall(weft.await, t)
      assert.is_true(not ok and weft.is_cancelled(err))
      assert.same({ "p cleaned" }, log) -- the task raised once p had ended
      assert.equal("cancelled", p:status())
      assert.same({}, weft.watchers()) -- no 100 s timer keeps the loop alive
    end)
  end

  it("on the awaiting task itself ends that task when the time runs out", function()
    local t
    t = weft.async(function()
      local ok, err = pcall(weft.await, t, 5)
      return ok, err
    end)
    local ok, err = pcall(weft.await, t)
    assert.is_true(not ok and weft.is_cancelled(err))
  end)

  it("leaves a shielded promise running", function()
    local p = weft.promise()
    local ok, err = pcall(weft.await, weft.shield(p), 5)
    assert.is_true(not ok and weft.is_timeout(err))
    assert.equal("pending", p:status())
    p:resolve("later")
    assert.equal("later", weft.await(p))
  end)
end)

describe("g:wait(ms)", function()
  it("cancels the children past its timeout and raises it once they ended", function()
    local log = {}
    local g = weft.group()
    for i = 1, 3 do
      g:spawn(function()
        local _ <close> = setmetatable({}, { __close = function()
          log[#log + 1] = i
        end })
        weft.delay(100000)
      end)
    end
    local ok, err = pcall(g.wait, g, 10)
    assert.is_false(ok)
    assert.is_true(weft.is_timeout(err))
    table.sort(log)
    assert.same({ 1, 2, 3 }, log)
  end)

  it("cancels the children of a cancelled waiter, raising once they ended", function()
    local log = {}
    local t = weft.async(function()
      local g = weft.group()
      g:spawn(function()
        local _ <close> = setmetatable({}, { __close = function()
          weft.shield(function() weft.delay(1) end)
          log[#log + 1] = "child cleaned"
        end })
        weft.delay(100000)
      end)
      g:wait()
    end)
    weft.await(weft.async(function() end))
    t:cancel("enough")
    local ok, err = pcall(weft.await, t)
    assert.is_true(not ok and weft.is_cancelled(err))
    assert.equal("enough", err.reason)
    assert.same({ "child cleaned" }, log)
    assert.same({}, weft.watchers())
  end)

  it("cancels the children when a cancelled task closes the group", function()
    local child
    local t = weft.async(function()
      local g <close> = weft.group()
      child = g:spawn(function() weft.delay(100000) end)
      weft.delay(100000)
    end)
    weft.await(weft.async(function() end))
    t:cancel()
    assert.is_false(pcall(weft.await, t))
    assert.equal("cancelled", child:status())
    assert.same({}, weft.watchers())
  end)

  it("returns normally when the children end in time", function()
    local g = weft.group()
    g:spawn(function() weft.delay(1) end)
    g:wait(10000)
  end)

  it("rejects a bad timeout", function()
    local g = weft.group()
    assert.has_error(function() g:wait(-1) end,
      "bad argument #1 to 'wait' (timeout must be >= 0)")
  end)
end)

describe("combinators", function()
  for _, name in ipairs { "all", "any", "race", "settle" } do
    it("pass a cancellation of weft." .. name .. " to the inputs still pending", function()
      local log = {}
      local a, b = sleeper(log, "a"), sleeper(log, "b")
      local c = weft[name] { a, b }
      weft.await(weft.async(function() end))
      assert.is_true(c:cancel())
      local ok, err = pcall(weft.await, c)
      assert.is_true(not ok and weft.is_cancelled(err))
      table.sort(log)
      assert.same({ "a cleaned", "b cleaned" }, log)
      assert.equal("cancelled", a:status())
    end)
  end

  it("cancel the slower of a decided race, unless something else waits for it", function()
    local fast = weft.async(function() weft.delay(1); return "fast" end)
    local slow = weft.async(function() weft.delay(100000) end)
    local kept = weft.async(function() weft.delay(5); return "kept" end)
    local watcher = kept:next(function(v) return v .. " and chained" end)
    assert.equal("fast", weft.await(weft.race { fast, slow, kept }))
    weft.await(weft.async(function() end))
    assert.equal("cancelled", slow:status())
    assert.equal("kept and chained", weft.await(watcher))
  end)

  it("cancel the rest once all has failed, and once any is decided", function()
    local slow = weft.async(function() weft.delay(100000) end)
    local bad = weft.async(function() weft.delay(1); error("bad", 0) end)
    local ok, err = pcall(weft.await, weft.all { slow, bad })
    assert.is_false(ok)
    assert.matches("^bad", err)
    weft.await(weft.async(function() end))
    assert.equal("cancelled", slow:status())
    local slow2 = weft.async(function() weft.delay(100000) end)
    local good = weft.async(function() weft.delay(1); return "good" end)
    assert.equal("good", weft.await(weft.any { slow2, good }))
    weft.await(weft.async(function() end))
    assert.equal("cancelled", slow2:status())
  end)
end)

describe("cancellation through chains", function()
  it("cancels p with q = p:next(f) when q was p's only consumer", function()
    local log = {}
    local p = sleeper(log, "p")
    local ran = false
    local q = p:next(function() ran = true end)
    weft.await(weft.async(function() end))
    q:cancel()
    assert.is_false(pcall(weft.await, q))
    assert.equal("cancelled", q:status())
    assert.equal("cancelled", p:status())
    assert.same({ "p cleaned" }, log)
    assert.is_false(ran)
  end)

  it("leaves p alone when another consumer still waits for it", function()
    local p = weft.promise()
    local ran = false
    local q = p:next(function() ran = true end)
    local other = p:next(function(v) return v * 2 end)
    assert.is_true(q:cancel())
    assert.equal("cancelled", q:status()) -- at once: it waits for nothing
    assert.equal("pending", p:status())
    p:resolve(21)
    assert.equal(42, weft.await(other))
    assert.is_false(ran) -- a handler never runs once its promise is cancelled
  end)

  it("ends a consumer of a cancelled promise cancelled, skipping next and catch handlers", function()
    local p = weft.promise()
    local handlers = 0
    local q = p:next(function() handlers = handlers + 1 end, function() handlers = handlers + 1 end)
    local c = p:catch(function() handlers = handlers + 1 end)
    p:cancel("stop")
    local ok, err = pcall(weft.await, q)
    assert.is_true(not ok and weft.is_cancelled(err) and err.reason == "stop")
    assert.equal("cancelled", q:status())
    assert.is_false(pcall(weft.await, c))
    assert.equal("cancelled", c:status())
    assert.equal(0, handlers)
  end)

  it("runs finally handlers on cancellation, of the source or of the chain", function()
    local p = weft.promise()
    local ran = {}
    local f1 = p:finally(function() ran[#ran + 1] = "source cancelled" end)
    p:cancel()
    assert.is_false(pcall(weft.await, f1))
    assert.equal("cancelled", f1:status())
    local log = {}
    local t = sleeper(log, "t")
    local f2 = t:finally(function() ran[#ran + 1] = "chain cancelled" end)
    weft.await(weft.async(function() end))
    f2:cancel()
    assert.is_false(pcall(weft.await, f2))
    assert.same({ "source cancelled", "chain cancelled" }, ran)
    assert.same({ "t cleaned" }, log)
  end)

  it("rejects a promise resolved with itself (Promises/A+ 2.3.1)", function()
    local x = weft.promise()
    local p
    p = x:next(function() return p end)
    x:resolve()
    local ok, err = pcall(weft.await, p)
    assert.is_false(ok)
    assert.equal("promise resolved with itself", err)
  end)

  it("rejects a promise resolved with one that waits on it", function()
    weft.on_error(function() end) -- q follows p, and nobody awaits q
    local x = weft.promise()
    local p, q
    p = x:next(function() return q end)
    q = p:next(function() return "never" end)
    x:resolve()
    local ok, err = pcall(weft.await, p)
    assert.is_false(ok)
    assert.equal("promise resolved with a promise that waits on it", err)
  end)
end)

describe("weft.shield", function()
  it("lets a cancelled task wait through a graceful goodbye", function()
    local r, w = weft.pipe()
    local t = weft.async(function()
      local ok, err = pcall(weft.delay, 100000)
      assert(not ok and weft.is_cancelled(err))
      weft.shield(function()
        weft.delay(2)
        w:write("goodbye\n")
      end)
      weft.delay(1) -- the first wait after the shield raises again
      w:write("unreachable\n")
    end)
    weft.await(weft.async(function() end))
    t:cancel()
    assert.is_false(pcall(weft.await, t))
    w:close()
    assert.equal("goodbye\n", r:read("a"))
    r:close()
  end)

  it("holds back a cancellation that arrives meanwhile until its first wait after", function()
    local log = {}
    local t = weft.async(function()
      weft.shield(function()
        weft.delay(10)
        log[#log + 1] = "shielded wait done"
      end)
      log[#log + 1] = "after the shield"
      local ok, err = pcall(weft.delay, 1)
      log[#log + 1] = (not ok and weft.is_cancelled(err)) and "raised" or "not raised"
    end)
    weft.await(weft.async(function() end))
    t:cancel()
    pcall(weft.await, t)
    assert.same({ "shielded wait done", "after the shield", "raised" }, log)
    assert.equal("cancelled", t:status())
  end)

  it("returns fn's values, passes its errors, and nests", function()
    assert.same({ 1, 2 }, { weft.shield(function(a, b) return a, b end, 1, 2) })
    assert.has_error(function() weft.shield(function() error("inner", 0) end) end, "inner")
    local v = weft.await(weft.async(function()
      return weft.shield(weft.shield, function() weft.delay(1); return "deep" end)
    end))
    assert.equal("deep", v)
  end)

  it("can be bounded by a timeout", function()
    local bounded
    local t = weft.async(function()
      pcall(weft.delay, 100000)
      weft.shield(function()
        local ok, err = pcall(weft.await, weft.promise(), 5) -- never settles
        bounded = weft.is_timeout(err) and not ok
      end)
    end)
    weft.await(weft.async(function() end))
    t:cancel()
    assert.is_false(pcall(weft.await, t))
    assert.is_true(bounded)
  end)

  it("rejects what is not a function or a promise", function()
    assert.has_error(function() weft.shield(42) end,
      "bad argument #1 to 'shield' (function or weft.promise expected, got number)")
  end)
end)

describe("a timeout armed outside the loop", function()
  it("counts from when it was asked for, not from a stale loop time", function()
    weft.run()
    helper.busy(300) -- blocking work: the loop's cached time is 300 ms old
    local fired = false
    local id = weft.once(200, function() fired = true end)
    weft.tick(true) -- due in 200 ms from now, so not yet
    assert.is_false(fired)
    weft.cancel(id)
  end)
end)

describe("errors that never hide", function()
  it("reports a task's unhandled failure in the iteration it happened", function()
    local ticks, at_crash, at_report, msg = 0, nil, nil, nil
    weft.on_error(function(err)
      at_report, msg = ticks, tostring(err)
    end)
    local keepalive = weft.every(1, function() ticks = ticks + 1 end)
    weft.spawn({ name = "crashed" }, function()
      weft.delay(3)
      at_crash = ticks
      error("connection handler broke", 0)
    end)
    weft.once(30, function() weft.cancel(keepalive) end)
    weft.run()
    assert.matches("^unhandled rejection in crashed", msg)
    assert.equal(at_crash, at_report) -- no beat of the timer in between
  end)

  it("comes out of weft.run with no handler, though other work keeps the loop alive", function()
    local keepalive = weft.every(1000, function() end)
    weft.async(function() weft.delay(1); error("server task died", 0) end)
    local ok, err = pcall(weft.run)
    assert.is_false(ok)
    assert.matches("server task died", tostring(err))
    weft.cancel(keepalive)
  end)

  it("does not report a rejection the main chunk awaits", function()
    local reported = false
    weft.on_error(function() reported = true end)
    local t = weft.async(function() error("mine", 0) end)
    weft.delay(5)
    local ok, err = pcall(weft.await, t)
    assert.is_false(ok)
    assert.matches("^mine", err)
    assert.is_true(reported) -- it was unhandled for a whole iteration
    reported = false
    local t2 = weft.async(function() error("awaited at once", 0) end)
    assert.is_false(pcall(weft.await, t2))
    weft.run()
    assert.is_false(reported)
  end)

  it("raises weft.run(fn)'s error at once; the rest carries on at the next run", function()
    local fired = false
    weft.once(30, function() fired = true end)
    local ok, err = pcall(weft.run, function()
      weft.delay(1)
      error("fn failed", 0)
    end)
    assert.is_false(ok)
    assert.matches("^fn failed", err)
    assert.is_false(fired)
    weft.run()
    assert.is_true(fired)
  end)

  it("tells a script that never ran its loop, in one line naming where", function()
    local out, ok = helper.run_script([[
local weft = require "weft"
weft.async(function() print("never") end)
weft.async(print)
weft.once(10, print)
]])
    assert.is_true(ok)
    assert.matches("^weft: the loop never ran: 2 tasks never started and 1 watcher " ..
      "never fired %(the first created at [^\n]+:2%); call weft.run%(%)\n$", out)
    out, ok = helper.run_script([[
local weft = require "weft"
weft.async(function() io.write("ran") end)
weft.run()
]])
    assert.is_true(ok)
    assert.equal("ran", out)
  end)
end)

describe("cancellation against the core's run queue", function()
  it("of half the 2,000 tasks awaiting one promise: the rest get its value once each", function()
    local p, got, tasks = weft.promise(), {}, {}
    for i = 1, 2000 do
      tasks[i] = weft.async(function() got[i] = (got[i] or 0) + 1; return weft.await(p) end)
    end
    weft.await(weft.async(function() end)) -- every one waits on p now
    for i = 1, 2000, 2 do tasks[i]:cancel() end
    p:resolve("v")
    for i = 1, 2000 do
      local ok, v = pcall(weft.await, tasks[i])
      if i % 2 == 1 then
        assert.is_false(ok)
        assert.equal("cancelled", tasks[i]:status())
      else
        assert.is_true(ok)
        assert.equal("v", v)
      end
      assert.equal(1, got[i]) -- each body ran once
    end
  end)

  it("of a task whose wake-up is queued while the other runs the queue: it ends cancelled, nothing is lost", function()
    local ping, pong = weft.channel(0), weft.channel(0)
    local seen, a = {}, nil
    a = weft.async(function()
      for i = 1, 1000 do ping:send(i); seen[#seen + 1] = pong:recv() end
    end)
    local b = weft.async(function()
      for _ = 1, 1000 do
        local v = ping:recv()
        if v == 500 then a:cancel() end -- a is woken, its resume queued
        pong:send(v)
      end
    end)
    assert.is_false(pcall(weft.await, a))
    assert.equal("cancelled", a:status())
    -- a's last trip: the value handed over before the cancellation stays
    -- b's to give (a rendezvous either happened or it did not)
    assert.is_true(#seen >= 499 and #seen <= 500)
    for i = 1, #seen do assert.equal(i, seen[i]) end
    b:cancel()
    assert.is_false(pcall(weft.await, b))
  end)

  it("of a task whose delay is the core's timer: the timer goes, and a collection meanwhile keeps the sleeper", function()
    local woke = false
    local t = weft.async(function() weft.delay(60000); woke = true end)
    weft.await(weft.async(function() end))
    collectgarbage() collectgarbage() -- a sleeping task is kept while it sleeps
    assert.equal(1, #weft.watchers())
    assert.equal("pending", t:status())
    t:cancel()
    assert.is_false(pcall(weft.await, t))
    assert.is_false(woke)
    assert.same({}, weft.watchers())
  end)
end)
