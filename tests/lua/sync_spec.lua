-- Waits on watchers and the sync primitives: each suspends only the calling
-- task (or runs the loop in the main chunk).
local weft = require "weft"
local helper = require "helper"

after_each(function()
  weft.on_error(nil)
  helper.assert_clean(weft)
end)

describe("weft.readable / weft.writable / weft.signal", function()
  it("readable returns true once data arrives", function()
    local f = assert(io.popen("sleep 0.02; echo hi"))
    assert.is_true(weft.readable(f))
    assert.equal("hi", f:read("l"))
    f:close()
  end)

  it("readable returns nil, 'timeout' when nothing comes in time", function()
    local f = assert(io.popen("sleep 0.5"))
    assert.same({ nil, "timeout" }, { weft.readable(f, 10) })
    f:close()
  end)

  it("writable returns true for a pipe with room", function()
    local f = assert(io.popen("cat > /dev/null", "w"))
    assert.is_true(weft.writable(f, 1000))
    f:close()
  end)

  it("signal returns the signal number, or nil, 'timeout'", function()
    local pid = helper.pid()
    weft.once(5, function() os.execute("kill -USR1 " .. pid) end)
    assert.equal(10, weft.signal("SIGUSR1", 5000))
    assert.same({ nil, "timeout" }, { weft.signal("SIGUSR2", 5) })
  end)

  it("in a task, suspend only that task", function()
    local f = assert(io.popen("sleep 0.03; echo x"))
    local log = {}
    weft.async(function() weft.readable(f); log[#log + 1] = "read" end)
    weft.async(function() log[#log + 1] = "other" end)
    weft.run()
    assert.same({ "other", "read" }, log)
    f:close()
  end)

  it("reject a bad timeout", function()
    assert.has_error(function() weft.readable(0, -1) end,
      "bad argument #2 to 'readable' (timeout must be >= 0)")
  end)
end)

describe("weft.mutex", function()
  it("lets one task in at a time, in arrival order", function()
    local m, log = weft.mutex(), {}
    for i = 1, 3 do
      weft.async(function()
        local held <close> = m:lock()
        log[#log + 1] = "in" .. i
        weft.delay(2)
        log[#log + 1] = "out" .. i
      end)
    end
    weft.run()
    assert.same({ "in1", "out1", "in2", "out2", "in3", "out3" }, log)
    assert.is_false(m:locked())
  end)

  it("lock times out with nil, 'timeout'", function()
    local m = weft.mutex()
    local result
    weft.async(function() m:lock(); weft.delay(50); m:unlock() end)
    weft.async(function() result = { m:lock(5) } end)
    weft.run()
    assert.same({ nil, "timeout" }, result)
  end)

  it("skips a waiter that was cancelled", function()
    local m, got = weft.mutex(), {}
    weft.async(function() m:lock(); weft.delay(10); m:unlock() end)
    local doomed = weft.async(function() m:lock(); got[#got + 1] = "doomed" end)
    weft.async(function() m:lock(); got[#got + 1] = "next"; m:unlock() end)
    weft.once(2, function() doomed:cancel() end)
    weft.run()
    assert.same({ "next" }, got)
    assert.is_false(m:locked())
  end)

  it("refuses an unlock by a task that does not hold it", function()
    local m = weft.mutex()
    assert.has_error(function() m:unlock() end, "unlock of a mutex this task does not hold")
  end)
end)

describe("weft.semaphore", function()
  it("admits n at a time", function()
    local s, inside, most = weft.semaphore(2), 0, 0
    for _ = 1, 5 do
      weft.async(function()
        s:acquire()
        inside = inside + 1
        if inside > most then most = inside end
        weft.delay(2)
        inside = inside - 1
        s:release()
      end)
    end
    weft.run()
    assert.equal(2, most)
  end)

  it("acquire times out", function()
    local s = weft.semaphore(0)
    assert.same({ nil, "timeout" }, { s:acquire(5) })
  end)

  it("rejects a bad count", function()
    assert.has_error(function() weft.semaphore(-1) end,
      "bad argument #1 to 'semaphore' (a count >= 0 expected)")
  end)
end)

describe("weft.event", function()
  it("wakes every waiter when set, and stays set until cleared", function()
    local e, woke = weft.event(), 0
    for _ = 1, 3 do weft.async(function() e:wait(); woke = woke + 1 end) end
    weft.once(5, function() e:set() end)
    weft.run()
    assert.equal(3, woke)
    assert.is_true(e:is_set())
    assert.is_true(e:wait()) -- set: at once
    e:clear()
    assert.is_false(e:is_set())
    assert.same({ nil, "timeout" }, { e:wait(5) })
  end)
end)

describe("weft.channel", function()
  it("delivers values in order through a buffer", function()
    local ch, got = weft.channel(2), {}
    weft.async(function() for i = 1, 5 do ch:send(i) end; ch:close() end)
    weft.run(function() for v in ch do got[#got + 1] = v end end)
    assert.same({ 1, 2, 3, 4, 5 }, got)
  end)

  it("with capacity 0, a send waits for its receiver", function()
    local ch, log = weft.channel(0), {}
    weft.async(function() ch:send("x"); log[#log + 1] = "sent" end)
    weft.async(function() weft.delay(5); log[#log + 1] = "receiving"; log[#log + 1] = ch:recv() end)
    weft.run()
    assert.same({ "receiving", "x", "sent" }, log)
  end)

  it("recv returns nil once closed and drained, and times out", function()
    local ch = weft.channel()
    ch:send("left")
    ch:close()
    assert.equal("left", ch:recv())
    assert.is_nil(ch:recv())
    local open = weft.channel()
    assert.same({ nil, "timeout" }, { open:recv(5) })
  end)

  it("try_send sends only what needs no wait", function()
    local ch = weft.channel(1)
    assert.is_true(ch:try_send("a"))
    assert.is_false(ch:try_send("b")) -- full
    assert.equal("a", ch:recv())
    local rendezvous = weft.channel(0)
    assert.is_false(rendezvous:try_send(1)) -- nobody receives
    weft.run(function()
      local got = weft.async(function() return rendezvous:recv() end)
      weft.delay(1)
      assert.is_true(rendezvous:try_send(2))
      assert.equal(2, weft.await(got))
    end)
    ch:close()
    assert.is_false(ch:try_send("c"))
  end)

  it("send on a closed channel raises", function()
    local ch = weft.channel()
    ch:close()
    assert.has_error(function() ch:send(1) end, "send on a closed channel")
  end)

  it("rejects a bad capacity", function()
    assert.has_error(function() weft.channel(-1) end,
      "bad argument #1 to 'channel' (capacity must be an integer >= 0 or nil)")
    assert.has_error(function() weft.channel(1.5) end,
      "bad argument #1 to 'channel' (capacity must be an integer >= 0 or nil)")
    assert.has_error(function() weft.channel("2") end,
      "bad argument #1 to 'channel' (capacity must be an integer >= 0 or nil)")
  end)

  it("rejects a bad timeout and a bad self, and still works after", function()
    local ch = weft.channel()
    assert.has_error(function() ch:recv("soon") end,
      "bad argument #1 to 'recv' (number expected, got string)")
    assert.has_error(function() ch:recv(-1) end,
      "bad argument #1 to 'recv' (timeout must be >= 0)")
    assert.has_error(function() ch.send({}, 1) end)
    ch:send("still")
    assert.equal("still", ch:recv())
  end)

  it("carries nil and false, and wakes a blocked sender when room frees", function()
    local ch, got = weft.channel(1), {}
    weft.run(function()
      local sender = weft.async(function()
        ch:send(false); ch:send(nil); ch:send("last") -- the second waits
      end)
      weft.delay(1)
      for _ = 1, 3 do got[#got + 1] = tostring(ch:recv()) end
      weft.await(sender)
    end)
    assert.same({ "false", "nil", "last" }, got)
  end)

  it("wakes every waiting receiver with nil and every sender with an error on close", function()
    local empty, full, got = weft.channel(0), weft.channel(0), {}
    local function add(s) got[#got + 1] = s end
    weft.run(function()
      for i = 1, 2 do weft.async(function() add("r" .. i .. ":" .. tostring(empty:recv())) end) end
      local s = weft.async(function() full:send("never") end)
      weft.delay(1)
      empty:close()
      empty:close() -- twice is fine
      full:close()
      local ok, err = pcall(weft.await, s)
      add(ok and "sent" or err:match("send on a closed channel"))
    end)
    assert.same({ "r1:nil", "r2:nil", "send on a closed channel" }, got)
  end)

  it("keeps order across a large burst, in and out of the main chunk", function()
    local ch, n = weft.channel(), 5000
    for i = 1, n do ch:send(i) end
    local sum, ok = 0, true
    weft.run(function()
      for i = 1, n do local v = ch:recv(); ok = ok and v == i; sum = sum + v end
    end)
    assert.is_true(ok)
    assert.equal(n * (n + 1) // 2, sum)
    assert.matches("^weft%.channel %(0x%x+%)$", tostring(ch))
  end)
end)

describe("tasks that wake each other", function()
  -- A task that waits runs the tasks queued before its own wake-up itself
  -- (the handoff in task.c); what runs, and in which order, stays the
  -- drain's.
  it("run in the order the run queue gives", function()
    local ch, back, log = weft.channel(0), weft.channel(0), {}
    local function add(s) log[#log + 1] = s end
    weft.run(function()
      weft.async(function()
        add("b waits")
        add("b got " .. ch:recv())
        back:send("done")
      end)
      weft.delay(1)                            -- b waits in recv
      weft.async(function() add("c runs") end) -- queued first
      ch:send("x")                             -- b queued after c
      add("a waits")
      add("a got " .. back:recv())
    end)
    assert.same({ "b waits", "a waits", "c runs", "b got x", "a got done" }, log)
  end)

  it("pass a token round a ring of tasks without nesting deeper", function()
    local n, laps, chans, count = 50, 100, {}, 0
    for i = 1, n do chans[i] = weft.channel(0) end
    weft.run(function()
      for i = 1, n do
        weft.async(function()
          local inbox, outbox = chans[i], chans[i % n + 1]
          for v in inbox do
            count = count + 1
            if v == n * laps then outbox:close() else outbox:send(v + 1) end
          end
          if i < n then outbox:close() end
        end)
      end
      chans[1]:send(1)
    end)
    assert.equal(n * laps, count)
  end)

  it("still let timers fire while they ping-pong", function()
    local ping, pong, stop, trips = weft.channel(0), weft.channel(0), false, 0
    weft.run(function()
      -- (armed here, from the loop's own clock, so that it cannot be due
      -- before the first trip however slow the machine is)
      weft.once(20, function() stop = true end)
      weft.async(function()
        while true do
          local v = ping:recv()
          pong:send(v)
          if v == "end" then return end
        end
      end)
      -- (a cap, so that a regression fails instead of spinning for ever)
      while not stop and trips < 1000000 do ping:send(1); pong:recv(); trips = trips + 1 end
      ping:send("end"); pong:recv()
    end)
    assert.is_true(stop)
    assert.is_true(trips > 0)
  end)

  it("show where the waiting task that runs them waits", function()
    local ch, back, seen, line = weft.channel(0), weft.channel(0), {}, nil
    weft.run(function()
      local a = weft.current()
      weft.async(function()
        ch:recv()
        seen.file, seen.line = a:where()
        seen.traceback = a:traceback()
        back:send(true)
      end)
      weft.delay(1)
      ch:send(1)
      line = debug.getinfo(1, "l").currentline + 1
      back:recv() -- a runs the other task from here
    end)
    assert.matches("sync_spec.lua$", seen.file)
    assert.equal(line, seen.line)
    assert.matches("suspended", seen.traceback)
  end)

  it("deliver a cancellation from the task a waiting task runs", function()
    local ch, a = weft.channel(0), nil
    weft.run(function()
      weft.async(function() ch:recv(); a:cancel("by b") end)
      weft.delay(1) -- b waits in recv
      a = weft.async(function() ch:send(1); ch:recv() end)
      local ok, err = pcall(weft.await, a)
      assert.is_false(ok)
      assert.is_true(weft.is_cancelled(err))
    end)
    assert.equal("cancelled", a:status())
  end)
end)

describe("weft.group", function()
  it("closing waits for every child", function()
    local done = 0
    do
      local g <close> = weft.group()
      for i = 1, 3 do g:spawn(function() weft.delay(i); done = done + 1 end) end
    end -- the main chunk: closing runs the loop until they finish
    assert.equal(3, done)
  end)

  it("when a child fails, cancels the others and raises its error", function()
    local cancelled = false
    local ok, err = pcall(function()
      local g <close> = weft.group()
      g:spawn(function()
        local ok2, e = pcall(weft.delay, 10000)
        cancelled = weft.is_cancelled(e)
        error(e, 0)
      end)
      g:spawn(function() weft.delay(5); error("child failed", 0) end)
    end)
    assert.is_false(ok)
    assert.matches("child failed", err)
    assert.is_true(cancelled)
  end)

  it("g:cancel cancels the children", function()
    local g = weft.group()
    local t = g:spawn(function() weft.delay(10000) end)
    g:cancel()
    g:wait()
    assert.equal("cancelled", t:status())
  end)
end)

describe("cancelling a task during a wait", function()
  it("in weft.readable removes the watcher and raises there", function()
    local f = assert(io.popen("sleep 1"))
    local result
    local t = weft.async(function()
      local ok, err = pcall(weft.readable, f)
      result = weft.is_cancelled(err)
    end)
    weft.tick(true) -- the task now waits on f
    assert.equal(1, #weft.watchers())
    t:cancel()
    weft.run()
    assert.is_true(result)
    assert.same({}, weft.watchers())
    f:close()
  end)

  it("in ch:recv withdraws it: the next value goes to the next receiver", function()
    local ch, got = weft.channel(), {}
    local doomed = weft.async(function() got[#got + 1] = "doomed:" .. tostring(ch:recv()) end)
    weft.async(function() got[#got + 1] = "next:" .. tostring(ch:recv()) end)
    weft.tick(true) -- both wait
    doomed:cancel()
    weft.tick(true)
    ch:send("v")
    weft.run()
    assert.same({ "next:v" }, got)
  end)

  it("in a rendezvous send withdraws the value", function()
    local ch = weft.channel(0)
    local sender = weft.async(function() ch:send("lost") end)
    weft.tick(true)
    sender:cancel()
    weft.run()
    assert.same({ nil, "timeout" }, { ch:recv(5) })
  end)
end)

describe("a channel receiver cancelled as a value reaches it", function()
  it("passes the value on: nothing is lost", function()
    local ch = weft.channel()
    local r = weft.async(function() return ch:recv() end)
    weft.tick(true)      -- r waits in recv
    ch:send("precious")  -- handed to r...
    r:cancel()           -- ...which is cancelled before it resumes
    weft.run()
    assert.equal("cancelled", r:status())
    assert.equal("precious", ch:recv(100))
  end)
end)

describe("a lock or permit handed to a task cancelled before it resumes", function()
  it("passes a mutex on to the next waiter", function()
    local m, log = weft.mutex(), {}
    m:lock()
    local doomed = weft.async(function() m:lock(); log[#log + 1] = "doomed" end)
    local next = weft.async(function() m:lock(); log[#log + 1] = "next"; m:unlock() end)
    weft.tick(true) -- both wait
    m:unlock()      -- handed to doomed...
    doomed:cancel() -- ...which never resumes to take it
    weft.run()
    assert.same({ "next" }, log)
    assert.is_false(m:locked())
    assert.equal("cancelled", doomed:status())
    assert.equal("fulfilled", next:status())
  end)

  it("gives a semaphore's permit back", function()
    local s = weft.semaphore(0)
    local doomed = weft.async(function() s:acquire() end)
    weft.tick(true)
    s:release()
    doomed:cancel()
    weft.run()
    assert.is_true(s:acquire(0))
  end)
end)

describe("where a task waits on a sync object", function()
  it("names the caller's line, not weft's own code", function()
    local m = weft.mutex()
    m:lock()
    local t = weft.async(function()
      m:lock() -- this line
      m:unlock()
    end)
    local line = debug.getinfo(1, "l").currentline - 3
    weft.tick(true)
    local file, at = t:where()
    assert.matches("sync_spec.lua$", file)
    assert.equal(line, at)
    m:unlock()
    weft.run()
  end)

  it("shows a timed wait in weft.watchers() at the caller's line", function()
    local ch = weft.channel()
    local t = weft.async(function()
      local v = ch:recv(60000) -- this line
      return v
    end)
    local line = debug.getinfo(1, "l").currentline - 3
    weft.tick(true)
    local list = weft.watchers()
    assert.equal(1, #list)
    assert.matches("sync_spec.lua:" .. line .. "$", list[1].where)
    ch:send("v")
    assert.equal("v", weft.await(t))
    assert.same({}, weft.watchers())
  end)
end)
