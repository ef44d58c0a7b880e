-- weft.fiber: the PHP Fiber model, stackful, driven by hand.
local weft = require "weft"
local helper = require "helper"

describe("weft.fiber", function()
  it("starts with arguments and hands values out and in", function()
    local f = weft.fiber(function(a, b)
      local x, y = weft.fiber.suspend(a + b, "first")
      local z = weft.fiber.suspend(x .. y)
      return "done", z
    end)
    assert.equal("init", f:status())
    assert.same({ 3, "first" }, { f:start(1, 2) })
    assert.equal("suspended", f:status())
    assert.same({ "ab" }, { f:resume("a", "b") })
    assert.same({ "done", 42 }, { f:resume(42) })
    assert.equal("terminated", f:status())
    assert.same({ "done", 42 }, { f:result() })
  end)

  it("suspends from inside a table.sort comparator", function()
    local f = weft.fiber(function()
      local t = { 3, 1, 2 }
      table.sort(t, function(a, b)
        weft.fiber.suspend()
        return a < b
      end)
      return table.concat(t, " ")
    end)
    f:start()
    local last
    while f:status() == "suspended" do last = f:resume() end
    assert.equal("1 2 3", last)
  end)

  it("suspends from inside a string.gsub callback", function()
    local f = weft.fiber(function()
      return (("abc"):gsub(".", function(c) return weft.fiber.suspend(c) end))
    end)
    local seen, out = {}, { f:start() }
    while f:status() == "suspended" do
      seen[#seen + 1] = out[1]
      out = { f:resume(out[1]:upper()) }
    end
    assert.same({ "a", "b", "c" }, seen)
    assert.equal("ABC", out[1])
  end)

  it("suspends from inside a metamethod", function()
    local proxy = setmetatable({}, {
      __index = function(_, k) return weft.fiber.suspend(k) end,
    })
    local f = weft.fiber(function() return proxy.answer + 1 end)
    assert.equal("answer", f:start())
    assert.equal(42, f:resume(41))
  end)

  it("suspends from inside a coroutine.wrap generator", function()
    local f = weft.fiber(function()
      local gen = coroutine.wrap(function()
        for i = 1, 3 do
          local got = weft.fiber.suspend(i) -- the whole fiber suspends
          coroutine.yield(got)
        end
      end)
      return gen() + gen() + gen()
    end)
    local v = f:start()
    while f:status() == "suspended" do v = f:resume(v * 10) end
    assert.equal(60, v) -- 10 + 20 + 30
  end)

  it("throws into the fiber at its suspension; pcall and <close> see it", function()
    local log = {}
    local f = weft.fiber(function()
      local ok, err = pcall(function()
        local guard <close> = setmetatable({}, { __close = function() log[#log + 1] = "closed" end })
        weft.fiber.suspend()
      end)
      log[#log + 1] = ok and "no error" or err
      return "recovered"
    end)
    f:start()
    assert.equal("recovered", f:throw("stop"))
    assert.same({ "closed", "stop" }, log)
  end)

  it("propagates the function's error out of resume, as the same value", function()
    local e = {}
    local f = weft.fiber(function()
      weft.fiber.suspend()
      error(e)
    end)
    f:start()
    local ok, err = pcall(f.resume, f)
    assert.is_false(ok)
    assert.equal(e, err)
    assert.equal("terminated", f:status())
    assert.has_error(function() f:result() end)
  end)

  it("reports the running fiber, and nil outside", function()
    assert.is_nil(weft.fiber.current())
    local f
    f = weft.fiber(function()
      assert.equal(f, weft.fiber.current())
      assert.equal("running", f:status())
      return true
    end)
    assert.is_true(f:start())
    assert.is_nil(weft.fiber.current())
  end)

  it("nests: a fiber resumes another", function()
    local inner, outer
    inner = weft.fiber(function()
      assert.equal(inner, weft.fiber.current())
      weft.fiber.suspend("in")
      return "inner done"
    end)
    outer = weft.fiber(function()
      local a = inner:start()
      assert.equal(outer, weft.fiber.current()) -- back in outer
      assert.equal("suspended", inner:status())
      weft.fiber.suspend(a)
      return inner:resume()
    end)
    assert.equal("in", outer:start())
    assert.equal("inner done", outer:resume())
  end)

  it("tells where a suspended fiber stopped", function()
    local f = weft.fiber(function()
      weft.fiber.suspend() -- line marker: where
    end)
    f:start()
    local file, line = f:where()
    assert.matches("fiber_spec%.lua$", file)
    assert.equal("number", type(line))
    assert.matches("fiber_spec%.lua:" .. line, f:traceback())
    f:resume()
    assert.is_nil(f:where())
  end)

  it("reaches Lua's own C stack limit as an error, never past the stack", function()
    local f = weft.fiber(function()
      local function deep(s) return (s:gsub(".", deep)) end
      return pcall(deep, "x")
    end)
    local ok, err = f:start()
    assert.is_false(ok)
    assert.matches("stack overflow", err)
  end)

  it("frees suspended fibers it collects, and keeps making new ones", function()
    for _ = 1, 2000 do
      local f = weft.fiber(function() weft.fiber.suspend() end)
      f:start()
    end
    collectgarbage()
    collectgarbage()
    local f = weft.fiber(function() return "still fine" end)
    assert.equal("still fine", f:start())
  end)

  it("closes with <close>, after which it cannot be used", function()
    local f = weft.fiber(function() weft.fiber.suspend() end)
    do
      local g <close> = f
      g:start()
    end
    assert.equal("weft.fiber (closed)", tostring(f))
    assert.has_error(function() f:resume() end, "attempt to use a closed fiber")
  end)

  it("takes a stack size", function()
    local f = weft.fiber(function() return "big" end, { stack_size = 4 * 1024 * 1024 })
    assert.equal("big", f:start())
  end)

  it("reaches Lua's C stack limit as an error at the smallest stack it accepts", function()
    local min = helper.min_stack(weft)
    for name, deep in pairs(helper.deep_c_calls) do
      local f = weft.fiber(function() return pcall(deep) end, { stack_size = min })
      local ok, err = f:start()
      assert.is_false(ok, name)
      assert.matches("C stack overflow", err, 1, false, name)
    end
  end)

  it("refuses to suspend inside a __gc finalizer, and the collector keeps running", function()
    local errs, at = {}, nil
    local f = weft.fiber(function()
      for _ = 1, 3 do
        setmetatable({}, { __gc = function()
          local ok, err
          at, ok, err = helper.here(), pcall(weft.fiber.suspend)
          errs[#errs + 1] = ok or err
        end })
      end
      collectgarbage()
      return "done"
    end)
    assert.equal("done", f:start())
    local msg = at .. "attempt to suspend inside a __gc finalizer"
    assert.same({ msg, msg, msg }, errs)
    assert.is_true(collectgarbage("isrunning"))
  end)

  it("may suspend in a fiber that a finalizer resumed", function()
    local out
    local g = weft.fiber(function() weft.fiber.suspend("in"); return "out" end)
    setmetatable({}, { __gc = function() out = { g:start(), g:resume() } end })
    collectgarbage()
    assert.same({ "in", "out" }, out)
    assert.is_true(collectgarbage("isrunning"))
  end)

  describe("misuse", function()
    it("rejects a non-function", function()
      assert.has_error(function() weft.fiber(1) end,
        "bad argument #1 to 'fiber' (function expected, got number)")
    end)

    it("rejects a bad stack size, or one too small for Lua's nested C calls", function()
      local min = helper.min_stack(weft)
      assert.is_true(min >= 512 * 1024)
      local msg = "bad argument #2 to 'fiber' (field 'stack_size' must be an integer from "
        .. min .. " to 1073741824)"
      assert.has_error(function() weft.fiber(print, { stack_size = 10 }) end, msg)
      assert.has_error(function() weft.fiber(print, { stack_size = min - 1 }) end, msg)
      assert.has_error(function() weft.fiber(print, { stack_size = 1.5 }) end, msg)
      assert.equal("init", weft.fiber(print, { stack_size = min }):status())
    end)

    it("names itself in errors even when called through pcall", function()
      local at, ok, err = helper.here(), pcall(weft.fiber, 1)
      assert.is_false(ok)
      assert.equal(at .. "bad argument #1 to 'fiber' (function expected, got number)", err)
      at, ok, err = helper.here(), pcall(weft.fiber, print, 5)
      assert.equal(at .. "bad argument #2 to 'fiber' (table expected, got number)", err)
      local f = weft.fiber(print)
      for _, m in ipairs({ "start", "resume", "throw", "status", "result", "traceback", "where",
                           "close" }) do
        at, ok, err = helper.here(), pcall(f[m], 42)
        assert.equal(at .. "bad argument #1 to '" .. m .. "' (weft.fiber expected, got number)", err)
      end
      local g = weft.fiber(function() weft.fiber.suspend() end)
      g:start()
      at, ok, err = helper.here(), pcall(g.throw, g)
      assert.equal(at .. "bad argument #2 to 'throw' (value expected)", err)
      g:close()
    end)

    it("rejects an unknown option", function()
      assert.has_error(function() weft.fiber(print, { stack = 1 }) end,
        "bad argument #2 to 'fiber' (unknown option 'stack')")
    end)

    it("refuses to start twice", function()
      local f = weft.fiber(function() weft.fiber.suspend() end)
      f:start()
      assert.has_error(function() f:start() end, "cannot start a fiber that was already started")
    end)

    it("refuses to resume before start, or after the end", function()
      local f = weft.fiber(function() end)
      assert.has_error(function() f:resume() end, "cannot resume a fiber that has not started")
      assert.has_error(function() f:throw("x") end, "cannot throw into a fiber that has not started")
      f:start()
      assert.has_error(function() f:resume() end, "cannot resume a fiber that has terminated")
    end)

    it("refuses to resume the running fiber, or close it", function()
      local f
      local at1, at2
      f = weft.fiber(function()
        local ok1, e1
        at1, ok1, e1 = helper.here(), pcall(f.resume, f)
        local ok2, e2
        at2, ok2, e2 = helper.here(), pcall(f.close, f)
        return ok1, e1, ok2, e2
      end)
      local ok1, e1, ok2, e2 = f:start()
      assert.is_false(ok1)
      assert.equal(at1 .. "cannot resume a running fiber", e1)
      assert.is_false(ok2)
      assert.equal(at2 .. "cannot close a running fiber", e2)
    end)

    it("refuses to suspend outside a fiber", function()
      assert.has_error(function() weft.fiber.suspend() end, "attempt to suspend outside a fiber")
    end)

    it("asks for the result only once terminated", function()
      local f = weft.fiber(function() weft.fiber.suspend() end)
      assert.has_error(function() f:result() end, "fiber has not terminated")
    end)
  end)
end)
