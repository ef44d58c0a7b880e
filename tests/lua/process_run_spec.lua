-- weft.process.run (a command's whole output, with a timeout and limits)
-- and p:ref() / p:unref().
local weft = require "weft"
local helper = require "helper"

-- Slower machines (valgrind, sanitizers) get longer limits.
local M = tonumber(os.getenv("WEFT_TEST_TIMEOUT_MULTIPLIER") or "1")

after_each(function()
  weft.on_error(nil)
  helper.assert_clean(weft)
end)

-- Whether process pid still exists (not even as a zombie).
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  f:close()
  return true
end

describe("weft.process.run", function()
  it("returns the status and both outputs, feeding input to stdin", function()
    local r = weft.process.run({ "sh", "-c", "tr a-z A-Z; echo err >&2; exit 3" }, { input = "hello\0world\n" })
    assert.same({ status = 3, stdout = "HELLO\0WORLD\n", stderr = "err\n",
      stdout_dropped = 0, stderr_dropped = 0 }, r)
  end)

  it("reports the signal that ended the child", function()
    local r = weft.process.run { "sh", "-c", "kill -USR1 $$" }
    assert.is_nil(r.status)
    assert.equal("SIGUSR1", r.signal)
  end)

  it("runs in cwd with env", function()
    local r = weft.process.run({ "sh", "-c", "pwd; echo $GREETING" }, { cwd = "/tmp", env = { GREETING = "hi" } })
    assert.equal("/tmp\nhi\n", r.stdout)
  end)

  it("keeps max_output bytes per stream and counts the rest", function()
    local r = weft.process.run({ "sh", "-c", "head -c 100000 /dev/zero; head -c 10 /dev/zero >&2" },
      { max_output = 1000 })
    assert.same({ 1000, 99000, 10, 0 }, { #r.stdout, r.stdout_dropped, #r.stderr, r.stderr_dropped })
    r = weft.process.run({ "echo", "x" }, { max_output = 0 })
    assert.same({ "", 2 }, { r.stdout, r.stdout_dropped })
  end)

  it("takes a large output and input whole", function()
    local big = ("0123456789abcdef"):rep(1 << 16) -- 1 MiB
    local r = weft.process.run({ "cat" }, { input = big })
    assert.is_true(r.stdout == big)
  end)

  it("tells a missing program, a missing cwd and a non-executable file apart", function()
    assert.same({ nil, "run: program not found in PATH: weft-no-such-program", "ENOENT" },
      { weft.process.run { "weft-no-such-program" } })
    assert.same({ nil, "run: no such program: /nonexistent/prog", "ENOENT" },
      { weft.process.run { "/nonexistent/prog" } })
    assert.same({ nil, "run: no such directory (cwd): /nonexistent/dir", "ENOENT" },
      { weft.process.run({ "true" }, { cwd = "/nonexistent/dir" }) })
    local path = os.tmpname()
    assert.same({ nil, "run: permission denied (not executable): " .. path, "EACCES" },
      { weft.process.run { path } })
    os.remove(path)
  end)

  it("on timeout ends the child with SIGTERM, reaps it and raises the timeout error", function()
    local pidfile = os.tmpname()
    local ok, err = pcall(weft.process.run, { "sh", "-c", "echo $$ > " .. pidfile .. "; exec sleep 30" },
      { timeout = 1000 * M }) -- (time for sh to write its pid)
    assert.is_false(ok)
    assert.is_true(weft.is_timeout(err))
    assert.equal(("run: sh timed out after %d ms"):format(1000 * M), tostring(err))
    local pid = tonumber(io.open(pidfile):read("a"))
    os.remove(pidfile)
    assert.is_false(alive(pid)) -- gone and reaped, not a zombie
  end)

  it("sends SIGKILL after the grace period to a child that ignores SIGTERM", function()
    local pidfile = os.tmpname()
    local ok, err = pcall(weft.process.run,
      { "sh", "-c", "trap '' TERM; echo $$ > " .. pidfile .. "; while :; do sleep 0.01; done" },
      { timeout = 1000 * M })
    assert.is_false(ok)
    assert.is_true(weft.is_timeout(err))
    local pid = tonumber(io.open(pidfile):read("a"))
    os.remove(pidfile)
    assert.is_false(alive(pid))
  end)

  it("cancelling the calling task kills and reaps the child", function()
    local pidfile = os.tmpname()
    weft.run(function()
      local t = weft.async(weft.process.run, { "sh", "-c", "echo $$ > " .. pidfile .. "; echo started; exec sleep 30" })
      while (io.open(pidfile):read("a") or "") == "" do weft.delay(5) end
      t:cancel()
      assert.is_true(weft.is_cancelled(select(2, pcall(weft.await, t))))
      -- the await returned once the cleanup had reaped the child
      assert.is_false(alive(tonumber(io.open(pidfile):read("a"))))
    end)
    os.remove(pidfile)
  end)

  it("raises for bad arguments, naming them", function()
    assert.has_error(function() weft.process.run("ls") end, "bad argument #1 to 'run' (table expected, got string)")
    assert.has_error(function() weft.process.run({}) end,
      "bad argument #1 to 'run' (the command (argv[1]) must be a non-empty string)")
    assert.has_error(function() weft.process.run({ "ls" }, { tmeout = 1 }) end,
      "bad argument #2 to 'run' (unknown option 'tmeout')")
    assert.has_error(function() weft.process.run({ "ls" }, { timeout = -1 }) end,
      "bad argument #2 to 'run' (field 'timeout' must be a number >= 0)")
    assert.has_error(function() weft.process.run({ "ls" }, { max_output = 1.5 }) end,
      "bad argument #2 to 'run' (field 'max_output' must be an integer >= 0)")
    assert.has_error(function() weft.process.run({ "ls" }, { input = 5 }) end,
      "bad argument #2 to 'run' (field 'input' must be a string)")
    assert.equal(0, weft.process.run({ "true" }).status) -- the loop still works
  end)
end)

describe("p:unref() / p:ref()", function()
  it("lets weft.run return while an unreferenced child runs, and ref undoes it", function()
    local p = assert(weft.process.spawn { "sleep", "30" })
    assert.equal(p, p:unref())
    assert.equal("done", weft.run(function() weft.delay(1) return "done" end))
    assert.is_true(alive(p.pid))
    assert.equal(p, p:ref())
    weft.once(1, function() p:kill() end)
    weft.run() -- waits for the exit now
    assert.same({ nil, "SIGTERM" }, { p:wait() })
  end)

  it("a wait keeps the loop alive for an unreferenced child", function()
    local p = assert(weft.process.spawn { "sh", "-c", "exit 4" })
    p:unref()
    assert.equal(4, p:wait())
  end)

  it("an unreferenced child still reports its exit while the loop runs", function()
    local p = assert(weft.process.spawn { "sh", "-c", "exit 6" })
    p:unref()
    local code
    weft.run(function()
      code = p:wait()
    end)
    assert.equal(6, code)
  end)

  it("raises for a bad self", function()
    assert.has_error(function() weft.process.spawn { "true" }.unref(5) end,
      "bad argument #1 to 'unref' (weft.process expected, got number)")
  end)
end)
