-- Lua promises and tasks: weft.promise, async, defer, await, delay,
-- current, cancellation, and the error values.
local weft = require "weft"
local helper = require "helper"

after_each(function()
  weft.on_error(nil)
  helper.assert_clean(weft)
end)

describe("weft.promise", function()
  it("settles once: later calls return false", function()
    local p = weft.promise()
    assert.equal("pending", p:status())
    assert.is_true(p:resolve(1, nil, 3))
    assert.is_false(p:resolve(4))
    assert.is_false(p:reject("x"))
    assert.is_false(p:cancel())
    assert.equal("fulfilled", p:status())
    local a, b, c = weft.await(p)
    assert.same({ 1, nil, 3 }, { a, b, c })
  end)

  it("rejects with any value, and await raises it as is", function()
    local e = {}
    local p = weft.promise()
    assert.is_true(p:reject(e))
    assert.equal("rejected", p:status())
    local ok, err = pcall(weft.await, p)
    assert.is_false(ok)
    assert.equal(e, err)
  end)

  it("runs next callbacks later, from the loop, in registration order", function()
    local log = {}
    local p = weft.promise()
    p:next(function(v) log[#log + 1] = "a" .. v end)
    p:next(function(v) log[#log + 1] = "b" .. v end)
    p:resolve(1)
    assert.same({}, log) -- never from inside resolve
    p:next(function(v) log[#log + 1] = "c" .. v end) -- already settled
    assert.same({}, log)
    weft.run()
    assert.same({ "a1", "b1", "c1" }, log)
  end)

  it("chains: each next settles with its handler's results", function()
    local p = weft.promise()
    local q = p:next(function(v) return v + 1, "x" end):next(function(v, x) return v * 10 .. x end)
    p:resolve(1)
    assert.equal("20x", weft.await(q))
  end)

  it("passes outcomes through a missing handler", function()
    local p = weft.promise()
    local q = p:next(nil, nil):next(function(v) return v end)
    p:resolve("through")
    assert.equal("through", weft.await(q))
    local r = weft.promise()
    local s = r:next(function() return "skipped" end)
    r:reject("boom")
    assert.has_error(function() weft.await(s) end, "boom")
  end)

  it("turns a handler's error into a rejection, and catch recovers", function()
    local p = weft.promise()
    local q = p:next(function() error("in handler", 0) end)
    local r = q:catch(function(err) return "recovered from " .. err end)
    p:resolve()
    assert.equal("recovered from in handler", weft.await(r))
    assert.equal("rejected", q:status())
  end)

  it("follows a promise returned by a handler", function()
    local p, inner = weft.promise(), weft.promise()
    local q = p:next(function() return inner end)
    p:resolve()
    weft.once(5, function() inner:resolve("inner value") end)
    assert.equal("inner value", weft.await(q))
  end)

  it("finally passes the outcome through unchanged, unless it raises", function()
    local ran = 0
    local p = weft.promise()
    local q = p:finally(function() ran = ran + 1; return "ignored" end)
    p:resolve("kept", 2)
    assert.same({ "kept", 2 }, { weft.await(q) })
    local r = weft.promise()
    local s = r:finally(function() ran = ran + 1 end)
    r:reject("still rejected")
    assert.has_error(function() weft.await(s) end, "still rejected")
    local t = weft.promise()
    local u = t:finally(function() error("finally failed", 0) end)
    t:resolve()
    assert.has_error(function() weft.await(u) end, "finally failed")
    assert.equal(2, ran) -- the third one raised before counting
  end)

  it("cancels: await raises a cancellation error carrying the reason", function()
    local p = weft.promise()
    assert.is_true(p:cancel("shutting down"))
    assert.equal("cancelled", p:status())
    local ok, err = pcall(weft.await, p)
    assert.is_false(ok)
    assert.is_true(weft.is_cancelled(err))
    assert.is_false(weft.is_timeout(err))
    assert.equal("shutting down", err.reason)
    assert.equal("cancelled: shutting down", tostring(err))
  end)

  it("classifies only weft's error values", function()
    assert.is_false(weft.is_cancelled("cancelled"))
    assert.is_false(weft.is_cancelled({ kind = "cancelled" }))
    assert.is_false(weft.is_timeout(nil))
  end)

  it("rejects bad handlers", function()
    local p = weft.promise()
    assert.has_error(function() p:next(1) end,
      "bad argument #1 to 'next' (function or nil expected, got number)")
    assert.has_error(function() p:catch() end,
      "bad argument #1 to 'catch' (function expected, got no value)")
    assert.has_error(function() p:finally("x") end,
      "bad argument #1 to 'finally' (function expected, got string)")
    p:resolve()
    weft.run()
  end)
end)

describe("weft.async", function()
  it("starts the task from the loop, after the caller, in FIFO order", function()
    local log = {}
    local a = weft.async(function() log[#log + 1] = "a" end)
    local b = weft.async(function() log[#log + 1] = "b" end)
    log[#log + 1] = "caller"
    weft.run()
    assert.same({ "caller", "a", "b" }, log)
    assert.equal("fulfilled", a:status())
    assert.equal("fulfilled", b:status())
  end)

  it("fulfils its promise with the function's results", function()
    local t = weft.async(function(x, y) return x + y, "sum" end, 2, 3)
    assert.same({ 5, "sum" }, { weft.await(t) })
  end)

  it("rejects its promise with the error, and a traceback", function()
    local t = weft.async(function() error("task failed") end)
    local ok, err = pcall(weft.await, t)
    assert.is_false(ok)
    assert.matches("task failed", err)
    assert.matches("stack traceback", err)
  end)

  it("suspends only the calling task", function()
    local log = {}
    local slow = weft.async(function()
      weft.delay(20)
      log[#log + 1] = "slow"
    end)
    local fast = weft.async(function()
      weft.delay(5)
      log[#log + 1] = "fast"
    end)
    weft.await(slow)
    weft.await(fast)
    assert.same({ "fast", "slow" }, log)
  end)

  it("awaits another task's promise, and catches its error", function()
    local t = weft.async(function()
      local inner = weft.async(function() error("inner", 0) end)
      local ok, err = pcall(weft.await, inner)
      return ok, err
    end)
    local ok, err = weft.await(t)
    assert.is_false(ok)
    assert.matches("^inner\nstack traceback", err) -- the failed task's traceback
  end)

  it("reports the running task with weft.current, nil outside", function()
    assert.is_nil(weft.current())
    local t
    t = weft.async(function() return weft.current() == t end)
    assert.is_true(weft.await(t))
  end)

  it("runs many tasks concurrently", function()
    local done, asleep, most = 0, 0, 0
    for _ = 1, 10000 do
      weft.async(function()
        asleep = asleep + 1
        most = math.max(most, asleep)
        weft.delay(10)
        asleep = asleep - 1
        done = done + 1
      end)
    end
    weft.run()
    assert.equal(10000, done)
    assert.equal(10000, most) -- all asleep at once
  end)

  it("starts tasks in spawn order while running ones spawn more", function()
    -- The run queue is a ring that wraps and grows while it is drained.
    local spawned, started = {}, {}
    local function task(id, depth)
      started[#started + 1] = id
      if depth < 6 then
        for k = 1, 3 do
          local child = id * 10 + k
          spawned[#spawned + 1] = child
          weft.async(task, child, depth + 1)
        end
      end
    end
    for id = 1, 9 do
      spawned[#spawned + 1] = id
      weft.async(task, id, 0)
    end
    weft.run()
    assert.equal(9 * (3 ^ 7 - 1) / 2, #started)
    assert.same(spawned, started)
  end)

  it("gives a task a clean coroutine, even one an earlier task used", function()
    local hooked = 0
    weft.await(weft.async(function()
      debug.sethook(function() hooked = hooked + 1 end, "", 1)
    end))
    local before = hooked
    for _ = 1, 3 do
      local t
      t = weft.async(function()
        local x = 0
        for i = 1, 100 do x = x + i end
        return weft.current() == t, coroutine.status(coroutine.running()), x
      end)
      assert.same({ true, "running", 5050 }, { weft.await(t) })
    end
    assert.equal(before, hooked)
  end)

  it("rejects a non-function", function()
    assert.has_error(function() weft.async(1) end,
      "bad argument #1 to 'async' (function expected, got number)")
  end)
end)

describe("weft.defer", function()
  it("runs a task with no promise", function()
    local ran = false
    assert.is_nil(weft.defer(function(x) ran = x end, true))
    weft.run()
    assert.is_true(ran)
  end)

  it("gives its error to the error handler", function()
    local seen
    weft.on_error(function(err) seen = err end)
    weft.defer(function() error("deferred failure") end)
    weft.run()
    assert.matches("deferred failure", seen)
  end)

  it("without a handler, its error comes out of run", function()
    weft.defer(function() error("loud failure") end)
    assert.has_error(weft.run)
  end)
end)

describe("weft.await", function()
  it("in the main chunk, runs the loop until the promise settles", function()
    local p = weft.promise()
    weft.once(10, function() p:resolve("done") end)
    assert.equal("done", weft.await(p))
  end)

  it("in the main chunk, refuses a promise that can never settle", function()
    local p = weft.promise()
    assert.has_error(function() weft.await(p) end,
      "await: the promise can never settle: nothing left to run")
  end)

  it("p:await is the same", function()
    local p = weft.promise()
    p:resolve(7)
    assert.equal(7, p:await())
  end)

  it("inside a callback, is refused with a clear error", function()
    local p = weft.promise()
    local err
    weft.immediately(function()
      local ok, e = pcall(weft.await, p)
      err = e
    end)
    weft.run()
    p:resolve()
    assert.matches("await: the loop is already running", err)
  end)

  it("inside a C call in a task, names the way out", function()
    local t = weft.async(function()
      local p = weft.promise()
      local ok, err = pcall(table.sort, { 2, 1 }, function(a, b)
        weft.await(p)
        return a < b
      end)
      p:resolve()
      return err
    end)
    assert.matches("a stackful task can: weft.spawn%({stackful = true}, fn%)", weft.await(t))
  end)

  it("rejects what is not a promise", function()
    assert.has_error(function() weft.await(1) end,
      "bad argument #1 to 'await' (weft.promise expected, got number)")
  end)
end)

describe("a waiting task's coroutine resumed by hand", function()
  it("keeps waiting: the resume gets the wait's marker back, the task its own outcome", function()
    local co, p = nil, weft.promise()
    local t = weft.async(function()
      co = coroutine.running()
      local got = weft.await(p)
      weft.delay(1)
      return got
    end)
    weft.await(weft.async(function() end)) -- t waits on p now
    local ok, marker = coroutine.resume(co, "bogus")
    assert.is_true(ok)
    assert.equal("userdata", type(marker))
    assert.equal("pending", t:status())
    p:resolve("real")
    assert.equal("real", weft.await(t))
  end)
end)

describe("weft.delay", function()
  it("shows in weft.watchers() where the task waits", function()
    local t = weft.async(function()
      weft.delay(10000) -- the line the listing names
    end)
    local line = debug.getinfo(1, "l").currentline - 2
    weft.await(weft.async(function() end)) -- t is suspended now
    local list = weft.watchers()
    assert.equal(1, #list)
    assert.equal("once", list[1].kind)
    assert.matches("task_spec.lua:" .. line .. "$", list[1].where)
    t:cancel()
    assert.same({}, weft.watchers())
  end)

  it("suspends a task for ms", function()
    local t = weft.async(function()
      local start = weft.now()
      weft.delay(15)
      return weft.now() - start
    end)
    assert.is_true(weft.await(t) >= 15)
  end)

  it("in the main chunk, runs the loop until the time has passed", function()
    local start, ticked = weft.now(), false
    weft.once(5, function() ticked = true end)
    weft.delay(20)
    assert.is_true(ticked)
    assert.is_true(weft.now() >= start + 20)
  end)

  it("rejects bad delays", function()
    assert.has_error(function() weft.delay("x") end,
      "bad argument #1 to 'delay' (number expected, got string)")
    assert.has_error(function() weft.delay(-1) end,
      "bad argument #1 to 'delay' (delay must be >= 0)")
  end)
end)

describe("cancelling a task", function()
  it("raises in the task where it waits; pcall and <close> see it", function()
    local log, waiting = {}, weft.promise()
    local t = weft.async(function()
      local guard <close> = setmetatable({}, { __close = function() log[#log + 1] = "closed" end })
      waiting:resolve() -- about to wait
      local ok, err = pcall(weft.delay, 10000)
      log[#log + 1] = weft.is_cancelled(err) and "cancelled" or tostring(err)
      return "cleaned up"
    end)
    weft.await(waiting) -- the task is now suspended in its delay
    assert.is_true(t:cancel("stop"))
    weft.run()
    assert.same({ "cancelled", "closed" }, log)
    assert.equal("cancelled", t:status()) -- stays cancelled
  end)

  it("withdraws an await on another promise", function()
    local p, waiting = weft.promise(), weft.promise()
    local t = weft.async(function()
      waiting:resolve()
      return weft.await(p)
    end)
    weft.await(waiting) -- the task now awaits p
    t:cancel()
    local ok, err = pcall(weft.await, t)
    assert.is_false(ok)
    assert.is_true(weft.is_cancelled(err))
    p:resolve("too late") -- nobody waits on it any more
    weft.run()
  end)

  it("before it starts, keeps its function from running", function()
    local ran = false
    local t = weft.async(function() ran = true end)
    assert.is_true(t:cancel())
    weft.run()
    assert.is_false(ran)
    assert.is_false(t:cancel())
  end)

  it("from inside itself, raises at its next suspension", function()
    local t
    t = weft.async(function()
      t:cancel()
      local ok, err = pcall(weft.delay, 1)
      return weft.is_cancelled(err)
    end)
    weft.run()
    assert.equal("cancelled", t:status())
  end)
end)

-- A task that waits ms and returns the values after ms.
local function after(ms, ...)
  local v = table.pack(...)
  return weft.async(function()
    weft.delay(ms)
    return table.unpack(v, 1, v.n)
  end)
end

local function failing(msg)
  return weft.async(function() error(msg, 0) end)
end

describe("weft.all", function()
  it("fulfils with every input's values, in list order", function()
    local r = weft.await(weft.all({ after(20, "a", 1), after(5, "b") }))
    assert.same({ { "a", 1, n = 2 }, { "b", n = 1 } }, r)
  end)

  it("rejects with the first failure", function()
    local p = weft.all({ after(50, "late"), failing("early") })
    local ok, err = pcall(weft.await, p)
    assert.is_false(ok)
    assert.matches("^early", err)
    weft.run()
  end)

  it("of nothing, fulfils at once with an empty list", function()
    assert.same({}, weft.await(weft.all({})))
  end)

  it("rejects what is not a list of promises", function()
    assert.has_error(function() weft.all({ 1 }) end,
      "bad argument #1 to 'all' (element 1 is not a weft.promise)")
    assert.has_error(function() weft.all(5) end,
      "bad argument #1 to 'all' (table expected, got number)")
  end)
end)

describe("weft.any / weft.race / weft.settle", function()
  it("any fulfils with the first fulfilled input's own values", function()
    assert.same({ "fast", 2 }, { weft.await(weft.any({ failing("x"), after(20, "slow"), after(5, "fast", 2) })) })
    weft.run()
  end)

  it("any rejects when every input fails", function()
    assert.has_error(function() weft.await(weft.any({ failing("a"), failing("b") })) end)
  end)

  it("race settles like the first input to settle", function()
    assert.equal("fast", weft.await(weft.race({ after(20, "slow"), after(5, "fast") })))
    local ok, err = pcall(weft.await, weft.race({ after(20, "slow"), failing("first") }))
    assert.is_false(ok)
    assert.matches("^first", err)
    weft.run()
  end)

  it("settle reports every outcome in list order", function()
    local r = weft.await(weft.settle({ after(5, "v"), failing("e") }))
    assert.is_true(r[1].ok)
    assert.equal("v", r[1][1])
    assert.equal(1, r[1].n)
    assert.is_false(r[2].ok)
    assert.matches("^e", r[2].err)
  end)
end)

describe("weft.timeout and await with a timeout", function()
  it("rejects a late promise with a timeout error and cancels it", function()
    local slow = after(10000, "never")
    local ok, err = pcall(weft.await, weft.timeout(slow, 10))
    assert.is_false(ok)
    assert.is_true(weft.is_timeout(err))
    assert.equal("cancelled", slow:status())
  end)

  it("passes an early result through and leaves no timer behind", function()
    assert.equal("quick", weft.await(weft.timeout(after(1, "quick"), 10000)))
    assert.same({}, weft.watchers())
  end)

  it("await(p, ms) is await(weft.timeout(p, ms))", function()
    local slow = after(10000)
    local ok, err = pcall(weft.await, slow, 5)
    assert.is_false(ok)
    assert.is_true(weft.is_timeout(err))
    assert.equal(7, after(1, 7):await(1000))
  end)

  it("await of a list waits for all of them", function()
    local r = weft.await({ after(10, "x"), after(1, "y") })
    assert.equal("x", r[1][1])
    assert.equal("y", r[2][1])
  end)

  it("rejects a bad timeout", function()
    local p = weft.promise()
    assert.has_error(function() weft.timeout(p, -1) end,
      "bad argument #2 to 'timeout' (timeout must be >= 0)")
    assert.has_error(function() weft.await(p, "soon") end,
      "bad argument #2 to 'await' (number expected, got string)")
    p:resolve()
    weft.run()
  end)
end)

describe("tasks as objects", function()
  it("are named by weft.spawn, or task#N", function()
    local t = weft.spawn({ name = "fetcher" }, function() return 1 end)
    assert.equal("fetcher", t.name)
    local u = weft.async(function() end)
    assert.matches("^task#%d+$", u.name)
    assert.is_nil(weft.promise().name)
    assert.matches("weft.task fetcher", tostring(t))
    weft.run()
  end)

  it("tell where a suspended task waits, and its traceback", function()
    local t = weft.async(function()
      weft.delay(10000) -- waits here
    end)
    weft.tick(true)
    local file, line = t:where()
    assert.matches("task_spec%.lua$", file)
    assert.equal("number", type(line))
    assert.matches("task_spec%.lua:" .. line, t:traceback())
    t:cancel()
    weft.run()
    assert.is_nil(t:where())
    assert.matches("finished", t:traceback())
  end)

  it("weft.tasks lists the live ones, oldest first", function()
    local a = weft.async(function() weft.delay(10000) end)
    local b = weft.spawn({ name = "b" }, function() weft.delay(10000) end)
    local list = weft.tasks()
    assert.equal(2, #list)
    assert.equal(a, list[1])
    assert.equal(b, list[2])
    a:cancel()
    b:cancel()
    weft.run()
    assert.same({}, weft.tasks())
  end)

  it("spawn rejects bad options", function()
    assert.has_error(function() weft.spawn({ nmae = "x" }, print) end,
      "bad argument #1 to 'spawn' (unknown option 'nmae')")
    assert.has_error(function() weft.spawn({ name = 1 }, print) end,
      "bad argument #1 to 'spawn' (field 'name' must be a string)")
    assert.has_error(function() weft.spawn(print) end,
      "bad argument #1 to 'spawn' (table expected, got function)")
  end)

  it("spawn rejects a bad stack size", function()
    assert.has_error(function() weft.spawn({ stackful = true, stack_size = 1 }, print) end,
      "bad argument #1 to 'spawn' (field 'stack_size' must be an integer from "
        .. helper.min_stack(weft) .. " to 1073741824)")
  end)
end)

describe("unhandled rejections", function()
  it("are reported when run ends, naming the task and where it was spawned", function()
    local seen = {}
    weft.on_error(function(err) seen[#seen + 1] = err end)
    local t = weft.spawn({ name = "lonely" }, function() error("nobody listens", 0) end)
    weft.run()
    assert.equal(1, #seen)
    local msg = tostring(seen[1])
    assert.matches("unhandled rejection in lonely %(spawned at .-task_spec%.lua:%d+%): nobody listens", msg)
    assert.equal("rejected", t:status())
  end)

  it("are reported when the promise is collected", function()
    local seen = {}
    weft.on_error(function(err) seen[#seen + 1] = tostring(err) end)
    do
      local p = weft.promise()
      p:reject("dropped on the floor")
    end
    collectgarbage()
    collectgarbage()
    assert.equal(1, #seen)
    assert.matches("unhandled rejection: dropped on the floor", seen[1])
  end)

  it("are not reported once handled by await, next or catch", function()
    local seen = 0
    weft.on_error(function() seen = seen + 1 end)
    local a = weft.promise(); a:reject("x"); pcall(weft.await, a)
    local b = weft.promise(); b:reject("y"); b:catch(function() end)
    local c = weft.async(function() error("z") end); c:next(nil, function() end)
    weft.run()
    collectgarbage()
    assert.equal(0, seen)
  end)

  it("without a handler, come out of run", function()
    weft.async(function() error("nobody caught me", 0) end)
    local ok, err = pcall(weft.run)
    assert.is_false(ok)
    assert.matches("nobody caught me", tostring(err))
  end)
end)

describe("stackful tasks", function()
  local function later(v)
    return weft.async(function() weft.delay(1); return v end)
  end

  it("await inside a table.sort comparator", function()
    local t = weft.spawn({ stackful = true }, function(list)
      table.sort(list, function(a, b) return weft.await(later(a < b)) end)
      return table.concat(list, " ")
    end, { 3, 1, 2 })
    assert.equal("1 2 3", weft.await(t))
  end)

  it("wait on a channel and a mutex inside a table.sort comparator", function()
    local ch, m = weft.channel(), weft.mutex()
    weft.async(function() m:lock(); weft.delay(5); m:unlock() end)
    local t = weft.spawn({ stackful = true }, function(list)
      table.sort(list, function(a, b)
        local _ <close> = m:lock()
        return ch:recv() and a < b
      end)
      return table.concat(list, " ")
    end, { 3, 1, 2 })
    weft.async(function()
      for _ = 1, 10 do weft.delay(1); ch:send(true) end
    end)
    assert.equal("1 2 3", weft.await(t))
    weft.run() -- the sender's last sends
  end)

  it("delay inside a string.gsub callback and a metamethod", function()
    local t = weft.spawn({ stackful = true }, function()
      local s = ("ab"):gsub(".", function(c) weft.delay(1); return c:upper() end)
      local proxy = setmetatable({}, { __index = function(_, k) weft.delay(1); return k .. "!" end })
      return s, proxy.hi
    end)
    assert.same({ "AB", "hi!" }, { weft.await(t) })
  end)

  it("await inside a plain coroutine.wrap generator", function()
    local t = weft.spawn({ stackful = true }, function()
      local gen = coroutine.wrap(function()
        for i = 1, 3 do coroutine.yield(weft.await(later(i * 10))) end
      end)
      return gen() + gen() + gen()
    end)
    assert.equal(60, weft.await(t))
  end)

  it("run alongside default tasks and report themselves as current", function()
    local log = {}
    local s
    s = weft.spawn({ stackful = true, name = "deep" }, function()
      table.sort({ 2, 1 }, function(a, b)
        assert.equal(s, weft.current())
        weft.delay(5)
        return a < b
      end)
      log[#log + 1] = "stackful"
    end)
    weft.async(function() log[#log + 1] = "default" end)
    weft.run()
    assert.same({ "default", "stackful" }, log)
    assert.equal("deep", s.name)
  end)

  it("reject with the error and its traceback", function()
    local t = weft.spawn({ stackful = true }, function() weft.delay(1); error("deep failure") end)
    local ok, err = pcall(weft.await, t)
    assert.is_false(ok)
    assert.matches("deep failure", err)
    assert.matches("stack traceback", err)
  end)

  it("are cancelled where they wait, even inside a C call", function()
    local closed, waiting = false, weft.promise()
    local t = weft.spawn({ stackful = true }, function()
      local guard <close> = setmetatable({}, { __close = function() closed = true end })
      table.sort({ 2, 1 }, function(a, b)
        waiting:resolve() -- about to wait, inside the comparator
        weft.delay(10000)
        return a < b
      end)
    end)
    weft.await(waiting)
    t:cancel("stop")
    local ok, err = pcall(weft.await, t) -- settled by the cancel: at once
    assert.is_false(ok)
    assert.is_true(weft.is_cancelled(err))
    weft.run() -- the task's own cleanup runs from the loop
    assert.is_true(closed)
  end)

  it("tell where they wait, even inside a C call", function()
    local t = weft.spawn({ stackful = true }, function()
      table.sort({ 2, 1 }, function(a, b)
        weft.delay(10000) -- waits here
        return a < b
      end)
    end)
    weft.tick(true)
    local file, line = t:where()
    assert.matches("task_spec%.lua$", file)
    assert.equal("number", type(line))
    assert.matches("sort", t:traceback())
    t:cancel()
    weft.run()
  end)

  it("take a stack size", function()
    local t = weft.spawn({ stackful = true, stack_size = 4 * 1024 * 1024 }, function()
      weft.delay(1)
      return "big stack"
    end)
    assert.equal("big stack", weft.await(t))
  end)

  it("reach Lua's C stack limit as an error at the smallest stack accepted", function()
    local min = helper.min_stack(weft)
    for name, deep in pairs(helper.deep_c_calls) do
      local t = weft.spawn({ stackful = true, stack_size = min }, function()
        weft.delay(0)
        return pcall(deep)
      end)
      local ok, err = weft.await(t)
      assert.is_false(ok, name)
      assert.matches("C stack overflow", err, 1, false, name)
    end
  end)

  it("cannot suspend inside a __gc finalizer; the collector keeps running", function()
    local errs = {}
    local at1, at2
    local function finalizer()
      local ok, err
      at1, ok, err = helper.here(), pcall(weft.delay, 1)
      errs[#errs + 1] = ok or err
      at2, ok, err = helper.here(), pcall(weft.await, weft.promise())
      errs[#errs + 1] = ok or err
    end
    local t = weft.spawn({ stackful = true }, function()
      setmetatable({}, { __gc = finalizer })
      collectgarbage()
      weft.delay(1)
      return "still running"
    end)
    assert.equal("still running", weft.await(t))
    local d = weft.async(function()
      setmetatable({}, { __gc = finalizer })
      collectgarbage()
      return "default too"
    end)
    assert.equal("default too", weft.await(d))
    local msg = "%s%s: a task cannot suspend inside a __gc finalizer"
    assert.same({ msg:format(at1, "delay"), msg:format(at2, "await"),
                  msg:format(at1, "delay"), msg:format(at2, "await") }, errs)
    assert.is_true(collectgarbage("isrunning"))
  end)
end)

describe("weft.coroutine", function()
  local function later(v)
    return weft.async(function() weft.delay(1); return v end)
  end

  it("lets a generator await inside a default task", function()
    local t = weft.async(function()
      local gen = weft.coroutine.wrap(function()
        for i = 1, 3 do weft.coroutine.yield(weft.await(later(i * 10))) end
      end)
      return gen() + gen() + gen()
    end)
    assert.equal(60, weft.await(t))
  end)

  it("resume returns the generator's own yields and errors, like coroutine's", function()
    local t = weft.async(function()
      local co = weft.coroutine.create(function(a)
        weft.delay(1)
        local b = weft.coroutine.yield(a + 1)
        error("done with " .. b, 0)
      end)
      local r1 = { weft.coroutine.resume(co, 1) }
      local r2 = { weft.coroutine.resume(co, "x") }
      return r1, r2, weft.coroutine.status(co)
    end)
    local r1, r2, status = weft.await(t)
    assert.same({ true, 2 }, r1)
    assert.same({ false, "done with x" }, r2)
    assert.equal("dead", status)
  end)

  it("works as plain coroutines outside tasks", function()
    local gen = weft.coroutine.wrap(function() weft.coroutine.yield(1); return 2 end)
    assert.equal(1, gen())
    assert.equal(2, gen())
  end)

  it("a plain coroutine inside a task gets an error naming the way out", function()
    local t = weft.async(function()
      local gen = coroutine.wrap(function() weft.delay(1) end)
      local ok, err = pcall(gen)
      return err
    end)
    assert.matches("make the coroutine with weft.coroutine", weft.await(t))
  end)
end)

describe("a task that is garbage while suspended", function()
  it("is closed: its <close> variables run", function()
    local closed = false
    do
      -- Only the task itself will hold this promise: it can never settle.
      weft.async(function(never)
        local guard <close> = setmetatable({}, { __close = function() closed = true end })
        weft.await(never)
      end, weft.promise())
    end
    weft.run() -- the task starts and suspends; nothing is left to run
    collectgarbage()
    collectgarbage()
    assert.is_true(closed)
  end)

  it("is closed when stackful too: its <close> variables run", function()
    local closed = false
    do
      weft.spawn({ stackful = true }, function(never)
        local guard <close> = setmetatable({}, { __close = function() closed = true end })
        table.sort({ 2, 1 }, function(a, b) weft.await(never); return a < b end)
      end, weft.promise())
    end
    weft.run()
    collectgarbage()
    collectgarbage()
    assert.is_true(closed)
  end)

  it("is kept while what it waits on can still wake it", function()
    local closed = false
    weft.async(function()
      local guard <close> = setmetatable({}, { __close = function() closed = true end })
      weft.delay(20)
    end)
    weft.tick(true)
    collectgarbage()
    collectgarbage()
    assert.is_false(closed) -- its timer holds it
    weft.run()
    assert.is_true(closed) -- it ended normally
  end)
end)

describe("closing the Lua state", function()
  it("with tasks still queued, frees everything and runs nothing", function()
    local out, ok = helper.run_script([[
      local weft = require "weft"
      weft.async(function() print("never runs") end)
      weft.defer(function() print("nor this") end)
    ]])
    assert.is_true(ok, out)
    -- (but says so, since the loop never ran: see cancel_spec.lua)
    assert.matches("^weft: the loop never ran: 2 tasks never started", out)
    assert.not_matches("never runs", out)
  end)

  it("with tasks suspended on timers, frees everything", function()
    local out, ok = helper.run_script([[
      local weft = require "weft"
      weft.async(function() weft.delay(100000) end)
      weft.tick(true)
    ]])
    assert.is_true(ok, out)
    assert.equal("", out)
  end)
end)
