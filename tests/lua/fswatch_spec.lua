-- weft.fs.watch: changes to files and directories, coalesced bursts.
local weft = require "weft"
local helper = require "helper"

after_each(function()
  weft.on_error(nil)
  helper.assert_clean(weft)
end)

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir " .. d))
  return d
end

local function put(path, data)
  local f = assert(io.open(path, "ab"))
  f:write(data)
  f:close()
end

-- The events of w until the one for path `last` (included), as
-- "event name" strings relative to dir.
local function until_event(w, dir, last)
  local seen = {}
  while true do
    local ev = assert(w:next())
    seen[#seen + 1] = ev.event .. " " .. ev.path:sub(#dir + 2)
    if ev.path == dir .. "/" .. last then return seen end
  end
end

describe("weft.fs.watch", function()
  it("reports a write to an entry of a directory as one change", function()
    local dir = tmpdir()
    put(dir .. "/f", "v1")
    local w = assert(weft.fs.watch(dir))
    assert.matches("^weft.fswatch %(", tostring(w))
    weft.run(function()
      assert(weft.fs.writefile(dir .. "/f", "v2")) -- truncate + write: one event
      assert.same({ path = dir .. "/f", event = "change" }, w:next())
      assert.same({ nil, "timeout" }, { w:next(20) })
      w:close()
    end)
    os.execute("rm -rf " .. dir)
  end)

  it("reports a rename as both names, and a delete", function()
    local dir = tmpdir()
    put(dir .. "/f", "x")
    local w = assert(weft.fs.watch(dir .. "/")) -- (a trailing slash is fine)
    weft.run(function()
      assert(os.rename(dir .. "/f", dir .. "/g"))
      assert.same({ "rename f", "rename g" }, until_event(w, dir, "g"))
      assert(os.remove(dir .. "/g"))
      assert.same({ path = dir .. "/g", event = "rename" }, w:next())
      w:close()
    end)
    os.execute("rm -rf " .. dir)
  end)

  it("watches a file by its own path", function()
    local dir = tmpdir()
    local path = dir .. "/conf"
    put(path, "a=1\n")
    local w = assert(weft.fs.watch(path))
    weft.run(function()
      put(path, "b=2\n")
      assert.same({ path = path, event = "change" }, w:next())
      w:close()
    end)
    os.execute("rm -rf " .. dir)
  end)

  it("coalesces a burst of 1,000 writes into one event", function()
    local dir = tmpdir()
    local w = assert(weft.fs.watch(dir))
    local seen = weft.run(function()
      local f = assert(io.open(dir .. "/burst", "wb"))
      f:setvbuf("no")
      for i = 1, 1000 do f:write(i, "\n") end -- 1,000 write(2)s before the loop looks
      f:close()
      put(dir .. "/zz", "marker")
      local seen = until_event(w, dir, "zz")
      w:close() -- (an open watcher keeps the loop running)
      return seen
    end)
    assert.same({ "rename burst", "rename zz" }, seen) -- created, written: one event
    os.execute("rm -rf " .. dir)
  end)

  it("iterates with for ... in until the watcher is closed", function()
    local dir = tmpdir()
    local w = assert(weft.fs.watch(dir, { coalesce = 0 }))
    local got = {}
    weft.run(function()
      weft.async(function() put(dir .. "/one", "1") end)
      for ev in w do
        got[#got + 1] = ev.path:sub(#dir + 2)
        w:close()
      end
    end)
    assert.same({ "one" }, got)
    os.execute("rm -rf " .. dir)
  end)

  it("wakes a task waiting in next with 'closed' when another closes it", function()
    local dir = tmpdir()
    local w = assert(weft.fs.watch(dir))
    local r = { weft.run(function()
      local t = weft.async(function() return w:next() end)
      weft.async(function() assert.is_true(w:close()) end)
      return weft.await(t)
    end) }
    assert.same({ nil, "closed" }, r)
    assert.same({ nil, "closed" }, { w:next() })
    assert.same({ nil, "closed", "ECLOSED" }, { w:close() })
    os.execute("rm -rf " .. dir)
  end)

  it("a watcher the collector takes stops watching", function()
    local dir = tmpdir()
    do assert(weft.fs.watch(dir)) end
    assert.is_true(weft.tick(true)) -- the open watcher keeps the loop
    collectgarbage()
    collectgarbage()
    assert.is_false(weft.tick(true))
    os.execute("rm -rf " .. dir)
  end)

  it("gives a clear error for a path that does not exist, and for recursive on Linux", function()
    assert.same({ nil, "watch: /nonexistent/weft: not found", "ENOENT" },
      { weft.fs.watch("/nonexistent/weft") })
    local dir = tmpdir()
    assert.same({ nil, "watch: " .. dir .. ": recursive watching is not supported on this platform", "ENOSYS" },
      { weft.fs.watch(dir, { recursive = true }) })
    os.execute("rm -rf " .. dir)
  end)

  it("raises for bad arguments, naming them", function()
    assert.has_error(function() weft.fs.watch(1) end, "bad argument #1 to 'watch' (string expected, got number)")
    assert.has_error(function() weft.fs.watch("") end, "bad argument #1 to 'watch' (path must not be empty)")
    assert.has_error(function() weft.fs.watch("/tmp", { recursve = true }) end,
      "bad argument #2 to 'watch' (unknown option 'recursve')")
    assert.has_error(function() weft.fs.watch("/tmp", { coalesce = -1 }) end,
      "bad argument #2 to 'watch' (field 'coalesce' must be an integer >= 0 (ms))")
    local w = assert(weft.fs.watch("/tmp"))
    assert.has_error(function() w:next(-1) end, "bad argument #1 to 'next' (timeout must be a number >= 0)")
    assert.has_error(function() w.next(5) end, "bad argument #1 to 'next' (weft.fswatch expected, got number)")
    w:close()
    assert.is_false(weft.tick(true)) -- the loop still works, and is idle
  end)
end)
