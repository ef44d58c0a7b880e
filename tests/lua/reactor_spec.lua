-- The Lua reactor API: run / tick / stop / now, the watcher constructors,
-- acting on ids, errors in callbacks, and introspection.
local weft = require "weft"
local helper = require "helper"

local function noop() end

after_each(function()
  weft.on_error(nil)
  helper.assert_clean(weft)
end)

describe("weft.run", function()
  it("returns when no referenced watcher remains", function()
    local fired = 0
    weft.once(1, function() fired = fired + 1 end)
    weft.immediately(function() fired = fired + 1 end)
    weft.run()
    assert.equal(2, fired)
  end)

  it("returns at once with nothing to do", function()
    weft.run()
  end)

  it("runs fn(...) from the loop, not before, and returns its values", function()
    local started = false
    local a, b = weft.run(function(x, y)
      started = true
      return x + y, "done"
    end, 2, 3)
    assert.is_true(started)
    assert.equal(5, a)
    assert.equal("done", b)
  end)

  it("re-raises fn's error with a traceback", function()
    local ok, err = pcall(weft.run, function() error("boom") end)
    assert.is_false(ok)
    assert.matches("boom", err)
    assert.matches("stack traceback", err)
  end)

  it("rejects a non-function first argument", function()
    assert.has_error(function() weft.run(1) end,
      "bad argument #1 to 'run' (function expected, got number)")
  end)

  it("refuses to run from inside a callback", function()
    local err
    weft.immediately(function()
      local ok, e = pcall(weft.run)
      err = e
    end)
    weft.run()
    assert.matches("already running", err)
  end)
end)

describe("weft.tick", function()
  it("returns false when no work remains", function()
    assert.is_false(weft.tick(true))
  end)

  it("runs one iteration and reports remaining work", function()
    local fired = false
    weft.immediately(function() fired = true end)
    local id = weft.once(1000, noop)
    assert.is_true(weft.tick(true))
    assert.is_true(fired)
    weft.cancel(id)
    assert.is_false(weft.tick(true))
  end)

  it("may block until a timer is due", function()
    local fired = false
    weft.once(5, function() fired = true end)
    while not fired do weft.tick() end
    assert.is_false(weft.tick(true))
  end)
end)

describe("weft.stop", function()
  it("makes run return with the watcher still live", function()
    local beats = 0
    local id = weft.every(1, function()
      beats = beats + 1
      if beats == 3 then weft.stop() end
    end)
    weft.run()
    assert.equal(3, beats)
    assert.is_true(weft.cancel(id))
  end)

  it("keeps callbacks due in the same pass for the next run", function()
    local log = {}
    weft.immediately(function() log[#log + 1] = "a"; weft.stop() end)
    weft.immediately(function() log[#log + 1] = "b" end)
    weft.run()
    assert.same({ "a" }, log)
    weft.run()
    assert.same({ "a", "b" }, log)
  end)
end)

describe("weft.now", function()
  it("is an integer that does not go back", function()
    local t0 = weft.now()
    assert.equal("integer", math.type(t0))
    local t1
    weft.once(3, function() t1 = weft.now() end)
    weft.run()
    assert.is_true(t1 >= t0 + 3)
  end)

  it("is cached during a callback", function()
    local a, b
    weft.immediately(function()
      a = weft.now()
      helper.busy(3)
      b = weft.now()
    end)
    weft.run()
    assert.equal(a, b)
  end)
end)

describe("weft.immediately", function()
  it("calls cb(id, data) in the next iteration, never from the constructor", function()
    local got = {}
    local id = weft.immediately(function(i, d) got = { i, d } end, { data = "x" })
    assert.same({}, got)
    weft.tick(true)
    assert.same({ id, "x" }, got)
  end)

  it("passes nil data when none was given", function()
    local n, seen
    weft.immediately(function(...) n = select("#", ...); seen = select(2, ...) end)
    weft.run()
    assert.equal(2, n)
    assert.is_nil(seen)
  end)

  it("runs one created by its callback in the following iteration", function()
    local ticks, runs = 0, 0
    local function relay()
      runs = runs + 1
      if runs < 3 then weft.immediately(relay) end
    end
    weft.immediately(relay)
    while weft.tick(true) do
      ticks = ticks + 1
      assert.equal(ticks, runs)
    end
    assert.equal(3, runs)
  end)

  it("queued from an I/O callback, waits for the next iteration", function()
    local f = assert(io.popen("printf x"))
    local ran, io_done = false, false
    weft.on_readable(f, function(id)
      weft.cancel(id)
      io_done = true
      weft.immediately(function() ran = true end)
    end)
    while not io_done do weft.tick() end
    assert.is_false(ran) -- not in the iteration that queued it
    weft.tick(true)
    assert.is_true(ran)
    f:close()
  end)

  it("is collected after it ran: cancelling it then is a no-op", function()
    local id = weft.immediately(noop)
    weft.run()
    assert.is_false(weft.cancel(id))
  end)

  it("rejects a missing callback", function()
    assert.has_error(function() weft.immediately() end,
      "bad argument #1 to 'immediately' (function expected, got no value)")
  end)

  it("rejects an unknown option", function()
    assert.has_error(function() weft.immediately(noop, { dat = 1 }) end,
      "bad argument #2 to 'immediately' (unknown option 'dat')")
  end)

  it("rejects options that are not a table", function()
    assert.has_error(function() weft.immediately(noop, 5) end,
      "bad argument #2 to 'immediately' (table expected, got number)")
  end)
end)

describe("weft.once", function()
  it("fires once after ms, counted from weft.now()", function()
    local start, at, calls = weft.now(), nil, 0
    local id = weft.once(20, function(i, d)
      calls = calls + 1
      at = weft.now()
      assert.equal("payload", d)
    end, { data = "payload" })
    assert.equal("integer", math.type(id))
    weft.run()
    assert.equal(1, calls)
    assert.is_true(at >= start + 20)
    assert.is_false(weft.cancel(id))
  end)

  it("waits its full delay again when re-enabled", function()
    local at, enabled_at
    local id = weft.once(20, function() at = weft.now() end)
    assert.is_true(weft.disable(id))
    weft.once(10, function()
      enabled_at = weft.now()
      assert.is_true(weft.enable(id))
    end)
    weft.run()
    assert.is_true(at >= enabled_at + 20, "fired " .. (at - enabled_at) .. " ms after enable")
  end)

  it("created in a callback with 0 ms runs in a later pass", function()
    local pass, order = 0, {}
    weft.once(0, function()
      order[#order + 1] = "first"
      weft.once(0, function() order[#order + 1] = "second" end)
    end)
    while weft.tick(true) do pass = pass + 1 end
    assert.same({ "first", "second" }, order)
  end)

  it("fires timers due at the same time in creation order", function()
    local order = {}
    for i = 1, 5 do weft.once(10, function() order[#order + 1] = i end) end
    weft.run()
    assert.same({ 1, 2, 3, 4, 5 }, order)
  end)

  it("rounds fractional delays up, so nothing fires early", function()
    local start, at = weft.now(), nil
    weft.once(1.2, function() at = weft.now() end)
    weft.run()
    assert.is_true(at >= start + 2)
  end)

  it("rejects a delay that is not a number", function()
    assert.has_error(function() weft.once("x") end,
      "bad argument #1 to 'once' (number expected, got string)")
  end)

  it("rejects a negative delay", function()
    assert.has_error(function() weft.once(-1, noop) end,
      "bad argument #1 to 'once' (delay must be >= 0)")
  end)

  it("rejects NaN", function()
    assert.has_error(function() weft.once(0 / 0, noop) end,
      "bad argument #1 to 'once' (delay must be >= 0)")
  end)

  it("rejects a missing callback", function()
    assert.has_error(function() weft.once(5) end,
      "bad argument #2 to 'once' (function expected, got no value)")
  end)

  it("does not take every's delay option", function()
    assert.has_error(function() weft.once(5, noop, { delay = 1 }) end,
      "bad argument #3 to 'once' (unknown option 'delay')")
  end)

  it("leaves the loop working after a bad argument", function()
    pcall(weft.once, "x")
    local fired = false
    weft.once(0, function() fired = true end)
    weft.run()
    assert.is_true(fired)
  end)
end)

describe("weft.every", function()
  it("fires every ms until cancelled in its own callback", function()
    local beats = 0
    local id
    id = weft.every(2, function(i)
      assert.equal(id, i)
      beats = beats + 1
      if beats == 4 then assert.is_true(weft.cancel(i)) end
    end)
    weft.run()
    assert.equal(4, beats)
  end)

  it("takes opts.delay as the first delay", function()
    local start, log = weft.now(), {}
    weft.every(1000, function(id)
      log[#log + 1] = weft.now() - start >= 5 and "beat" or "early"
      weft.cancel(id)
    end, { delay = 5 })
    weft.once(500, function() log[#log + 1] = "sentinel" end)
    weft.run()
    assert.same({ "beat", "sentinel" }, log)
  end)

  it("never fires a beat early, even when each call takes time", function()
    local start, at = weft.now(), {}
    weft.every(20, function(id)
      at[#at + 1] = weft.now()
      helper.busy(7)
      if #at == 10 then weft.cancel(id) end
    end)
    weft.run()
    -- (that the beats stay on their grid, whatever the load, is checked
    -- exactly in tests/c/test_timer.c: Lua cannot see when one is due)
    for k = 1, 10 do assert.is_true(at[k] >= start + 20 * k) end
  end)

  it("skips the beats an overrunning callback missed", function()
    local start, at = weft.now(), {}
    weft.every(20, function(id)
      at[#at + 1] = weft.now()
      if #at == 1 then helper.busy(55) end -- misses the beats at 40 and 60
      if #at == 2 then weft.cancel(id) end
    end)
    weft.run()
    assert.is_true(at[2] >= start + 80, "second beat at " .. (at[2] - start))
  end)

  it("rejects an interval of 0", function()
    assert.has_error(function() weft.every(0, noop) end,
      "bad argument #1 to 'every' (interval must be > 0)")
  end)

  it("rejects a negative first delay", function()
    assert.has_error(function() weft.every(1, noop, { delay = -1 }) end,
      "bad argument #3 to 'every' (field 'delay' must be >= 0)")
  end)

  it("rejects a first delay that is not a number", function()
    assert.has_error(function() weft.every(1, noop, { delay = "soon" }) end,
      "bad argument #3 to 'every' (field 'delay' must be a number)")
  end)
end)

describe("watcher options", function()
  it("enable = false creates a disabled watcher", function()
    local fired = false
    local id = weft.immediately(function() fired = true end, { enable = false })
    weft.run()
    assert.is_false(fired)
    assert.is_true(weft.enable(id))
    weft.run()
    assert.is_true(fired)
  end)

  it("keep_alive = false does not keep run alive", function()
    local beats = 0
    local id = weft.every(1, function() beats = beats + 1 end, { keep_alive = false })
    weft.run()
    assert.equal(0, beats)
    weft.once(10, noop) -- a referenced watcher lets it run meanwhile
    weft.run()
    assert.is_true(beats >= 1)
    assert.is_true(weft.cancel(id))
  end)

  it("rejects a non-boolean enable", function()
    assert.has_error(function() weft.once(1, noop, { enable = "yes" }) end,
      "bad argument #3 to 'once' (field 'enable' must be a boolean)")
  end)

  it("rejects a non-boolean keep_alive", function()
    assert.has_error(function() weft.once(1, noop, { keep_alive = 1 }) end,
      "bad argument #3 to 'once' (field 'keep_alive' must be a boolean)")
  end)
end)

describe("weft.enable / disable / cancel / ref / unref", function()
  it("return true for a live id", function()
    local id = weft.once(1000, noop)
    assert.is_true(weft.disable(id))
    assert.is_true(weft.enable(id))
    assert.is_true(weft.unref(id))
    assert.is_true(weft.ref(id))
    assert.is_true(weft.cancel(id))
  end)

  it("return false for an unknown, cancelled or finished id", function()
    local id = weft.once(1000, noop)
    weft.cancel(id)
    for _, f in ipairs { weft.enable, weft.disable, weft.cancel, weft.ref, weft.unref } do
      assert.is_false(f(id))
      assert.is_false(f(0))
      assert.is_false(f(123456789))
    end
  end)

  it("a stale id never touches the watcher that reused its slot", function()
    local old = weft.once(1000, noop)
    weft.cancel(old)
    local fired = false
    local new = weft.once(1, function() fired = true end)
    assert.is_false(weft.cancel(old))
    weft.run()
    assert.is_true(fired)
    assert.is_false(weft.cancel(new))
  end)

  it("are safe on the running watcher and others, inside callbacks", function()
    local log = {}
    local a, b, c
    a = weft.every(1, function(id)
      log[#log + 1] = "a"
      assert.is_true(weft.disable(id))
      assert.is_true(weft.enable(id))
      assert.is_true(weft.cancel(id))
      assert.is_false(weft.cancel(id))
      weft.cancel(b) -- due in the same pass: must not run
    end)
    b = weft.every(1, function() log[#log + 1] = "b" end)
    c = weft.once(5, function() log[#log + 1] = "c"; weft.cancel(b) end)
    weft.run()
    assert.same({ "a", "c" }, log)
    assert.is_false(weft.cancel(a))
    assert.is_false(weft.cancel(c))
  end)

  it("unref lets run return, ref makes it wait again", function()
    local fired = false
    local id = weft.once(5, function() fired = true end)
    weft.unref(id)
    weft.run()
    assert.is_false(fired)
    weft.ref(id)
    weft.run()
    assert.is_true(fired)
  end)

  it("reject an id that is not an integer", function()
    assert.has_error(function() weft.cancel("x") end,
      "bad argument #1 to 'cancel' (number expected, got string)")
    assert.has_error(function() weft.enable(1.5) end,
      "bad argument #1 to 'enable' (number has no integer representation)")
    assert.has_error(function() weft.unref() end,
      "bad argument #1 to 'unref' (number expected, got no value)")
  end)
end)

describe("errors in callbacks", function()
  it("propagate out of run with a traceback, and run works again", function()
    weft.once(0, function() error("kaboom") end)
    local ok, err = pcall(weft.run)
    assert.is_false(ok)
    assert.matches("kaboom", err)
    assert.matches("stack traceback", err)
    local fired = false
    weft.once(0, function() fired = true end)
    weft.run()
    assert.is_true(fired)
  end)

  it("keep non-string error values as they are", function()
    local e = setmetatable({}, { __tostring = function() return "custom" end })
    weft.immediately(function() error(e) end)
    local ok, err = pcall(weft.run)
    assert.is_false(ok)
    assert.equal(e, err)
  end)

  it("leave the rest of the pass for the next run", function()
    local log = {}
    weft.immediately(function() error("first") end)
    weft.immediately(function() log[#log + 1] = "second" end)
    assert.has_error(weft.run)
    assert.same({}, log)
    weft.run()
    assert.same({ "second" }, log)
  end)

  it("go to the on_error handler, and the loop goes on", function()
    local seen = {}
    assert.is_nil(weft.on_error(function(err) seen[#seen + 1] = err end))
    weft.immediately(function() error("one") end)
    weft.once(1, function() error("two") end)
    weft.run()
    assert.equal(2, #seen)
    local both = seen[1] .. seen[2]
    assert.matches("one", both)
    assert.matches("two", both)
  end)

  it("on_error returns the previous handler and nil restores the default", function()
    local h1 = function() end
    weft.on_error(h1)
    assert.equal(h1, weft.on_error(nil))
    weft.immediately(function() error("loud") end)
    assert.has_error(weft.run)
  end)

  it("a failing handler's own error propagates", function()
    weft.on_error(function() error("handler broke") end)
    weft.immediately(function() error("original") end)
    local ok, err = pcall(weft.run)
    assert.is_false(ok)
    assert.matches("handler broke", err)
  end)

  it("on_error rejects a non-function", function()
    assert.has_error(function() weft.on_error("x") end,
      "bad argument #1 to 'on_error' (function or nil expected, got string)")
  end)
end)

describe("weft.on_readable / on_writable", function()
  it("fires while readable and at EOF, passing the file handle back", function()
    local f = assert(io.popen("printf 'one\\ntwo\\n'"))
    local lines = {}
    local id
    id = weft.on_readable(f, function(i, fh, data)
      assert.equal(id, i)
      assert.equal(f, fh)
      assert.equal("tag", data)
      local line = fh:read("l")
      if line then lines[#lines + 1] = line else weft.cancel(i) end
    end, { data = "tag" })
    weft.run()
    f:close()
    assert.same({ "one", "two" }, lines)
  end)

  it("fires for a writable pipe", function()
    local f = assert(io.popen("cat > /dev/null", "w"))
    local got
    weft.on_writable(f, function(id, fh)
      got = fh
      weft.cancel(id)
    end)
    weft.run()
    f:close()
    assert.equal(f, got)
  end)

  it("takes an integer descriptor", function()
    local out, ok = helper.run_script([[
      local weft = require "weft"
      weft.on_readable(0, function(id, fd)
        io.write("fd ", fd, ": ", io.read("l"), "\n")
        weft.cancel(id)
      end)
      weft.run()
    ]], "printf 'hello\\n'")
    assert.is_true(ok, out)
    assert.equal("fd 0: hello\n", out)
  end)

  it("rejects a negative descriptor", function()
    assert.has_error(function() weft.on_readable(-1, noop) end,
      "bad argument #1 to 'on_readable' (invalid file descriptor)")
  end)

  it("rejects a descriptor that is not open", function()
    assert.has_error(function() weft.on_readable(99999, noop) end,
      "bad argument #1 to 'on_readable' (bad file descriptor)")
  end)

  it("rejects a closed file", function()
    local f = assert(io.popen("true"))
    f:close()
    assert.has_error(function() weft.on_writable(f, noop) end,
      "bad argument #1 to 'on_writable' (attempt to use a closed file)")
  end)

  it("rejects a regular file, which cannot be polled", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    assert.has_error(function() weft.on_readable(f, noop) end,
      "bad argument #1 to 'on_readable' (descriptor cannot be watched (a regular file is always ready))")
    f:close()
    os.remove(path)
  end)

  it("rejects other types", function()
    assert.has_error(function() weft.on_readable("0", noop) end,
      "bad argument #1 to 'on_readable' (integer or file expected, got string)")
  end)
end)

describe("weft.on_signal", function()
  local pid = helper.pid()

  it("calls cb(id, signo, data) when the signal arrives", function()
    local got
    local sid = weft.on_signal("SIGUSR1", function(id, signo, data)
      got = { signo, data }
      weft.cancel(id)
    end, { data = 7 })
    weft.once(1, function() os.execute("kill -USR1 " .. pid) end)
    weft.run()
    assert.same({ 10, 7 }, got)
    assert.is_false(weft.cancel(sid))
  end)

  it("takes a name without SIG, or a number", function()
    local n, t0 = 0, weft.now()
    local a = weft.on_signal("USR2", function() n = n + 1 end)
    local b = weft.on_signal(12, function() n = n + 1 end)
    weft.once(1, function() os.execute("kill -USR2 " .. pid) end)
    while n < 2 and weft.now() - t0 < 5000 do weft.tick() end
    weft.cancel(a)
    weft.cancel(b)
    assert.equal(2, n)
  end)

  it("rejects an unknown name", function()
    assert.has_error(function() weft.on_signal("SIGFOO", noop) end,
      "bad argument #1 to 'on_signal' (unknown signal 'SIGFOO')")
  end)

  it("rejects a signal that cannot be caught", function()
    assert.has_error(function() weft.on_signal("SIGKILL", noop) end,
      "bad argument #1 to 'on_signal' (signal 9 cannot be watched)")
    assert.has_error(function() weft.on_signal(0, noop) end,
      "bad argument #1 to 'on_signal' (signal 0 cannot be watched)")
  end)

  it("rejects other types", function()
    assert.has_error(function() weft.on_signal({}, noop) end,
      "bad argument #1 to 'on_signal' (signal number or name expected, got table)")
  end)
end)

describe("weft.watchers", function()
  it("lists live watchers with kind, state and where they were made", function()
    local a = weft.once(1000, noop)
    local b = weft.every(1000, noop, { enable = false, keep_alive = false })
    local list = weft.watchers()
    assert.equal(2, #list)
    table.sort(list, function(x, y) return x.kind > y.kind end) -- once, every
    assert.same({ id = a, kind = "once", enabled = true, ref = true,
      where = list[1].where }, list[1])
    assert.same({ id = b, kind = "every", enabled = false, ref = false,
      where = list[2].where }, list[2])
    assert.matches("reactor_spec%.lua:%d+$", list[1].where)
    weft.cancel(a)
    weft.cancel(b)
    assert.same({}, weft.watchers())
  end)

  it("lists none of weft's own, even when a turn of tasks ran out of budget", function()
    -- More tasks than one drain runs (65,536) leave the rest for the next
    -- iteration, behind a watcher of the run queue's own.
    local done = 0
    for _ = 1, 70000 do weft.async(function() done = done + 1 end) end
    weft.tick(true)
    assert.is_true(done < 70000) -- the rest waits for the next iteration
    assert.same({}, weft.watchers())
    weft.run()
    assert.equal(70000, done)
  end)
end)
