-- weft.fs: files off the loop's thread, with io-style results.
local weft = require "weft"
local helper = require "helper"
local fs = weft.fs

local dir
before_each(function()
  dir = os.tmpname()
  os.remove(dir)
  assert(fs.mkdir(dir))
end)

after_each(function()
  for _, name in ipairs(fs.readdir(dir) or {}) do os.remove(dir .. "/" .. name) end
  fs.rmdir(dir)
  weft.on_error(nil)
  helper.assert_clean(weft)
end)

describe("weft.fs", function()
  it("writes and reads whole files, binary safe", function()
    local data = "a\0b\r\n" .. string.rep("x", 100000)
    assert.is_true(fs.writefile(dir .. "/f", data))
    assert.equal(data, fs.readfile(dir .. "/f"))
    assert.is_true(fs.writefile(dir .. "/f", ""))
    assert.equal("", fs.readfile(dir .. "/f"))
  end)

  it("writes atomically: a temporary file renamed over the old one", function()
    assert.is_true(fs.writefile(dir .. "/conf", "old"))
    assert.is_true(fs.writefile(dir .. "/conf", "new", { atomic = true, mode = tonumber("600", 8) }))
    assert.equal("new", fs.readfile(dir .. "/conf"))
    assert.same({ "conf" }, fs.readdir(dir)) -- no temporary left
    assert.equal(tonumber("600", 8), fs.stat(dir .. "/conf").mode)
  end)

  it("stat describes files and directories", function()
    fs.writefile(dir .. "/f", "12345")
    local st = fs.stat(dir .. "/f")
    assert.equal("file", st.type)
    assert.equal(5, st.size)
    assert.is_true(st.mtime > 1e9)
    assert.is_number(st.ino)
    assert.equal("directory", fs.stat(dir).type)
  end)

  it("returns nil, message, code for what fails", function()
    assert.same({ nil, "readfile: " .. dir .. "/none: not found", "ENOENT" }, { fs.readfile(dir .. "/none") })
    assert.same({ nil, "readfile: " .. dir .. ": illegal operation on a directory", "EISDIR" }, { fs.readfile(dir) })
    assert.equal("EEXIST", select(3, fs.mkdir(dir)))
    assert.equal("ENOENT", select(3, fs.unlink(dir .. "/none")))
    fs.writefile(dir .. "/f", "x")
    assert.equal("ENOTEMPTY", select(3, fs.rmdir(dir)))
    assert.equal("ENOENT", select(3, fs.open(dir .. "/none", "r")))
  end)

  it("lists, renames and removes", function()
    fs.writefile(dir .. "/b", "")
    fs.writefile(dir .. "/a", "")
    assert.is_true(fs.mkdir(dir .. "/sub"))
    assert.same({ "a", "b", "sub" }, fs.readdir(dir))
    assert.is_true(fs.rename(dir .. "/a", dir .. "/c"))
    assert.is_true(fs.unlink(dir .. "/b"))
    assert.is_true(fs.rmdir(dir .. "/sub"))
    assert.same({ "c" }, fs.readdir(dir))
  end)

  it("open gives a file that reads and writes at offsets", function()
    local f = assert(fs.open(dir .. "/f", "w+"))
    assert.equal(f, f:write("hello world"))
    assert.equal(f, f:write("W", 6))
    assert.equal("hello World", f:read(100, 0))
    assert.equal("World", f:read(5, 6))
    assert.is_nil(f:read(1, 100)) -- past the end
    f:seek(0)
    assert.equal("hel", f:read(3))
    assert.equal("lo", f:read(2))
    assert.equal(11, f:stat().size)
    assert.equal(f, f:sync())
    assert.is_true(f:close())
    assert.same({ nil, "closed", "ECLOSED" }, { f:close() })
    assert.has_error(function() f:read(1) end, "attempt to use a closed file")
  end)

  it("appends in 'a' mode and reads all in 'r' mode", function()
    fs.writefile(dir .. "/log", "one\n")
    local f = assert(fs.open(dir .. "/log", "a"))
    f:write("two\n")
    f:close()
    local r <close> = assert(fs.open(dir .. "/log"))
    assert.equal("one\ntwo\n", r:readall())
  end)

  it("calls run in tasks, concurrently, and have promise twins", function()
    local results = {}
    weft.run(function()
      local ps = {}
      for i = 1, 10 do
        ps[i] = weft.async(function()
          fs.writefile(dir .. "/" .. i, tostring(i))
          results[i] = fs.readfile(dir .. "/" .. i)
        end)
      end
      weft.await(ps)
    end)
    for i = 1, 10 do assert.equal(tostring(i), results[i]) end
    local ok, err = pcall(weft.await, fs.readfile_async(dir .. "/none"))
    assert.is_false(ok)
    assert.equal("ENOENT", err.code)
    assert.equal("readfile: " .. dir .. "/none: not found", tostring(err))
  end)

  it("raises for bad arguments", function()
    assert.has_error(function() fs.readfile(1) end, "bad argument #1 to 'readfile' (string expected, got number)")
    assert.has_error(function() fs.writefile("x", {}) end, "bad argument #2 to 'writefile' (string expected, got table)")
    assert.has_error(function() fs.writefile("x", "", { atomik = true }) end,
      "bad argument #3 to 'writefile' (unknown option 'atomik')")
    assert.has_error(function() fs.open("x", "rw") end, "bad argument #2 to 'open' (invalid mode 'rw')")
    assert.has_error(function() fs.mkdir("x", -1) end, "bad argument #2 to 'mkdir' (mode must be an integer in 0..0o7777)")
    local f = assert(fs.open(dir .. "/f", "w"))
    assert.has_error(function() f:read(-1) end, "bad argument #1 to 'read' (byte count must be an integer >= 0)")
    f:close()
  end)
end)
