-- Child processes: pipes as streams, exit codes, signals.
local weft = require "weft"
local helper = require "helper"

after_each(function()
  weft.on_error(nil)
  helper.assert_clean(weft)
end)

describe("weft.process.spawn", function()
  it("pipes stdin, stdout and stderr as streams and returns the exit code", function()
    local p = assert(weft.process.spawn { "sh", "-c", "read x; echo got $x; echo oops >&2; exit 7",
      stdin = "pipe", stdout = "pipe", stderr = "pipe" })
    assert.is_true(p.pid > 0)
    assert.matches("^weft.process %(%d+, running%)$", tostring(p))
    p.stdin:write("hello\n")
    p.stdin:close()
    assert.equal("got hello\n", p.stdout:read("a"))
    assert.equal("oops\n", p.stderr:read("a"))
    assert.equal(7, p:wait())
    assert.equal(7, p:wait()) -- again: the same answer
    p.stdout:close()
    p.stderr:close()
  end)

  it("reports the signal that ended it as nil, name", function()
    local p = assert(weft.process.spawn { "sleep", "10" })
    assert.is_true(p:kill())
    assert.same({ nil, "SIGTERM" }, { p:wait() })
    assert.same({ nil, "kill: no such process", "ESRCH" }, { p:kill() })
    local q = assert(weft.process.spawn { "sleep", "10" })
    assert.is_true(q:kill("KILL"))
    assert.same({ nil, "SIGKILL" }, { q:wait() })
  end)

  it("waits in a task while other tasks run", function()
    local log = {}
    weft.run(function()
      local t = weft.async(function()
        local p = assert(weft.process.spawn { "sh", "-c", "sleep 0.05; echo done", stdout = "pipe" })
        local line = p.stdout:read("l")
        log[#log + 1] = line
        local code = p:wait()
        log[#log + 1] = code
        p.stdout:close()
      end)
      weft.async(function() log[#log + 1] = "other" end)
      weft.await(t)
    end)
    assert.same({ "other", "done", 0 }, log)
  end)

  it("times out a wait, and wait_async gives a promise", function()
    local p = assert(weft.process.spawn { "sleep", "10" })
    assert.same({ nil, "timeout", "ETIMEDOUT" }, { p:wait(5) })
    local w = p:wait_async()
    p:kill()
    assert.same({ nil, "SIGTERM" }, { weft.await(w) })
  end)

  it("passes env, cwd, and stdio 'null' or a stream", function()
    local r, w = weft.pipe()
    local p = assert(weft.process.spawn { "sh", "-c", "echo $GREETING; pwd; cat",
      env = { GREETING = "hi", PATH = os.getenv("PATH") }, cwd = "/", stdout = w, stdin = "null" })
    w:close()
    assert.equal("hi\n/\n", r:read("a"))
    assert.equal(0, p:wait())
    r:close()
  end)

  it("returns nil, message, code when the program cannot start", function()
    assert.same({ nil, "spawn: no such program: /no/such/program", "ENOENT" },
      { weft.process.spawn { "/no/such/program" } })
    assert.same({ nil, "spawn: program not found in PATH: weft-no-such-program", "ENOENT" },
      { weft.process.spawn { "weft-no-such-program" } })
  end)

  it("says the directory is missing when cwd is, not the program", function()
    assert.same({ nil, "spawn: no such directory (cwd): /nonexistent/dir", "ENOENT" },
      { weft.process.spawn { "true", cwd = "/nonexistent/dir" } })
    local file = os.tmpname()
    assert.same({ nil, "spawn: not a directory (cwd): " .. file, "ENOTDIR" },
      { weft.process.spawn { "true", cwd = file } })
    assert.same({ nil, "spawn: not a directory (cwd): " .. file .. "/sub", "ENOTDIR" },
      { weft.process.spawn { "true", cwd = file .. "/sub" } })
    os.remove(file)
    -- a cwd that exists: the program is what is missing
    assert.same({ nil, "spawn: no such program: /no/such/program", "ENOENT" },
      { weft.process.spawn { "/no/such/program", cwd = "/" } })
  end)

  it("raises for bad options", function()
    assert.has_error(function() weft.process.spawn("ls") end,
      "bad argument #1 to 'spawn' (table expected, got string)")
    assert.has_error(function() weft.process.spawn {} end,
      "bad argument #1 to 'spawn' (the command (opts[1]) must be a non-empty string)")
    assert.has_error(function() weft.process.spawn { "ls", stdot = "pipe" } end,
      "bad argument #1 to 'spawn' (unknown option 'stdot')")
    assert.has_error(function() weft.process.spawn { "ls", stdout = "pipes" } end,
      "bad argument #1 to 'spawn' (field 'stdout' must be 'pipe', 'inherit', 'null', a stream, a file or a descriptor)")
    assert.has_error(function() weft.process.spawn { "ls", env = { 1 } } end,
      "bad argument #1 to 'spawn' (field 'env' must map names to strings)")
    local p = assert(weft.process.spawn { "true" })
    assert.has_error(function() p:kill("SIGNOPE") end, "bad argument #1 to 'kill' (unknown signal 'SIGNOPE')")
    assert.equal(0, p:wait())
  end)
end)
