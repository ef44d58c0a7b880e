-- Shared helpers for the Lua specs.
local M = {}

-- This process's pid, read from /proc (Lua has no getpid).
function M.pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return pid
end

-- Busy-waits ms of CPU time: a callback that overruns, without sleeping.
function M.busy(ms)
  local stop = os.clock() + ms / 1000
  while os.clock() < stop do end
end

-- Writes src to a new temporary file; returns its path.
function M.script_file(src)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(src)
  f:close()
  return path
end

-- Runs a Lua script in a child lua5.4 that finds weft as this process does,
-- with stdin fed from the shell command `feed` if given.  Returns the
-- child's stdout and whether it exited with 0.
function M.run_script(src, feed)
  local path = M.script_file(src)
  local cmd = string.format("LUA_CPATH=%q LUA_PATH=%q lua5.4 %s 2>&1",
    package.cpath, package.path, path)
  if feed then cmd = feed .. " | " .. cmd end
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  local ok = p:close()
  os.remove(path)
  return out, ok
end

-- The smallest stack_size weft accepts for a Lua fiber or stackful task in
-- this build (larger under ASan), read from the error a too-small one gets.
function M.min_stack(weft)
  local _, err = pcall(weft.fiber, print, { stack_size = 1 })
  return assert(tonumber(tostring(err):match("from (%d+) to")), err)
end

-- Functions that nest C calls (each level a string.gsub callback, a
-- table.sort comparator or a __tostring called by string.format) deeper
-- than Lua's limit of 200: each must end in "C stack overflow".
M.deep_c_calls = {
  gsub = function()
    local function f(d)
      if d == 0 then return "x" end
      return (("a"):gsub("a", function() return f(d - 1) end))
    end
    return f(300)
  end,
  sort = function()
    local function f(d)
      if d == 0 then return end
      table.sort({ 2, 1 }, function(a, b) f(d - 1); return a < b end)
    end
    return f(300)
  end,
  format = function()
    local mt = {}
    mt.__tostring = function(o)
      if o.d == 0 then return "x" end
      return string.format("%s", setmetatable({ d = o.d - 1 }, mt))
    end
    return tostring(setmetatable({ d = 300 }, mt))
  end,
}

-- "file:line: " of the line that calls it: the position a misuse error
-- raised from that line starts with.
function M.here()
  local info = debug.getinfo(2, "Sl")
  return ("%s:%d: "):format(info.short_src, info.currentline)
end

-- Every spec leaves the shared loop as it found it.
function M.assert_clean(weft)
  local left = weft.watchers()
  if #left > 0 then
    local lines = {}
    for _, w in ipairs(left) do
      lines[#lines + 1] = string.format("%s %s at %s", w.kind, w.id, w.where)
    end
    for _, w in ipairs(left) do weft.cancel(w.id) end
    error("watchers left behind:\n" .. table.concat(lines, "\n"), 2)
  end
end

-- Whether the loop still works after a misuse: a task waits for what a
-- timer does.
function M.loop_works(weft)
  local p = weft.promise()
  weft.once(1, function() p:resolve("fired") end)
  local t = weft.async(function() return weft.await(p) end)
  weft.run()
  return t:status() == "fulfilled" and weft.await(t) == "fired"
end

-- A new empty directory (for before_each), and removing one with what is
-- in it (for after_each).
function M.mkdtemp(weft)
  local dir = os.tmpname()
  os.remove(dir)
  assert(weft.fs.mkdir(dir))
  return dir
end

function M.rmtree(dir)
  os.execute("rm -rf '" .. dir .. "'")
end

return M
