-- Misuse errors point at the caller: every public function and method,
-- called with bad arguments from a known line, raises an error that starts
-- with that line's "file:line: ", names the function as the caller called
-- it in "bad argument" errors (never '?', never an internal helper), and
-- leaves the loop working.  (issue 14, item 13)
local weft = require "weft"
local helper = require "helper"

after_each(function()
  weft.on_error(nil)
  helper.assert_clean(weft)
end)

local function noop() end

-- Values no parameter accepts, chosen so that no call waits: no timeout
-- or delay takes -1, no path or name takes a zero byte.
local BAD = { true, -1, "a\0b" }

-- The generated calls run from this chunk name, line 1.
local CALLER = "caller:1: "

-- Lua's own coroutine functions (weft.coroutine copies them) are not
-- weft's; stop changes the loop for every later call; an _async twin
-- raises nothing: its promise is rejected with the error its function
-- raises.
local SKIP = { ["weft.stop"] = true }
local function skipped(path, k, v, prefix)
  return SKIP[path] or tostring(k):find("_async$") or
    (prefix == "weft.coroutine." and coroutine[k] == v)
end

-- Calls that wait when given no argument at all: only bad ones are made.
local WAITS = { run = true, tick = true, lock = true, acquire = true, wait = true,
  accept = true, recv = true, next = true, await = true, recvfrom = true,
  receive = true, receivefrom = true }

-- A watchdog's error: a call that waited instead of raising.
local BLOCKED = setmetatable({}, { __tostring = function() return "blocked" end })

local function show(v)
  if type(v) == "string" then return (("%q"):format(v):gsub("\\0", "\\0")) end
  if v == noop then return "fn" end
  return tostring(v)
end

-- Runs src (a chunk taking the values given) from CALLER's line; adds
-- what is wrong with the error it raised to problems.  Watchers a call
-- made are cancelled.  Returns whether it raised a string error.
local function check(problems, label, fname, src, ...)
  local chunk = assert(load(src, "=caller"))
  local before = {}
  for _, w in ipairs(weft.watchers()) do before[w.id] = true end
  local dog = weft.once(10000 * (tonumber(os.getenv("WEFT_TEST_TIMEOUT_MULTIPLIER")) or 1),
    function() error(BLOCKED, 0) end)
  local ok, err = pcall(chunk, ...)
  weft.cancel(dog)
  for _, w in ipairs(weft.watchers()) do
    if not before[w.id] then weft.cancel(w.id) end
  end
  if err == BLOCKED then
    problems[#problems + 1] = label .. ": waited instead of raising"
    return false
  end
  if ok or type(err) ~= "string" then return false end
  local wrong = {}
  if err:sub(1, #CALLER) ~= CALLER then wrong[#wrong + 1] = "not at the caller's line" end
  if err:find("'?'", 1, true) then wrong[#wrong + 1] = "names '?'" end
  local named = err:match("^[^\n]-bad argument #%d+ to '([^']*)'") or
    err:match("^[^\n]-calling '([^']*)' on bad self")
  if named and named ~= fname then wrong[#wrong + 1] = "names '" .. named .. "'" end
  if #wrong > 0 then
    problems[#problems + 1] = ("%s: %s: %s"):format(label, table.concat(wrong, ", "), err)
  end
  return true
end

-- Calls fn (path "weft.x.y", or a method of obj) with each bad value at
-- each position after the good arguments given for it, with none, and
-- (methods) with a bad self, directly and through pcall.  Returns how many
-- string errors it checked.
local function sweep_fn(problems, path, obj, good)
  local name = path:match("[.:]([%w_]+)$")
  local n = 0
  local function run(label, src, ...)
    if check(problems, label, name, src, ...) then n = n + 1 end
  end
  local callee = obj and ("o:" .. name) or path
  for i = 0, #good do
    for _, bad in ipairs(BAD) do
      local args, names, shown = table.move(good, 1, i, 1, {}), {}, {}
      args[i + 1] = bad
      for k = 1, i + 1 do
        names[k], shown[k] = "a" .. k, show(args[k])
      end
      run(("%s(%s)"):format(path, table.concat(shown, ", ")),
        ("local o, weft, %s = ...; local r = %s(%s); return r"):format(
          table.concat(names, ", "), callee, table.concat(names, ", ")),
        obj, weft, table.unpack(args, 1, i + 1))
    end
  end
  if not WAITS[name] then
    run(path .. "()", ("local o, weft = ...; local r = %s(); return r"):format(callee), obj, weft)
  end
  if obj then
    run(path .. " on 42", ("local o = ...; local r = o.%s(42); return r"):format(name), obj)
    run(path .. " on 42 through pcall",
      ("local o = ...; local ok, e = pcall(o.%s, 42); if not ok then error(e, 0) end"):format(name), obj)
    run(path .. " with {} through pcall",
      ("local o = ...; local ok, e = pcall(o.%s, o, {}); if not ok then error(e, 0) end"):format(name), obj)
  else
    run(path .. " through pcall",
      ("local weft = ...; local ok, e = pcall(%s, true); if not ok then error(e, 0) end"):format(path), weft)
  end
  return n
end

-- The public functions of weft's tables, as { path, fn }, sorted.
local function public_functions()
  local out, seen = {}, {}
  local function walk(t, prefix)
    if seen[t] then return end
    seen[t] = true
    for k, v in pairs(t) do
      local path = prefix .. tostring(k)
      if type(v) == "function" and not skipped(path, k, v, prefix) then
        out[#out + 1] = path
      elseif type(v) == "table" and type(k) == "string" then
        walk(v, path .. ".")
      end
    end
  end
  walk(weft, "weft.")
  out[#out + 1] = "weft.fiber" -- (a table callable through __call)
  table.sort(out)
  return out
end

-- The method names of obj: its metatable's __index table, or the names
-- given for an __index function (promises and tasks).
local PROMISE_METHODS = { "resolve", "reject", "cancel", "status", "next", "catch", "finally",
  "await", "traceback", "where" }
local function methods_of(obj)
  local mt = getmetatable(obj)
  local out = {}
  if type(mt.__index) == "function" then
    for _, m in ipairs(PROMISE_METHODS) do out[#out + 1] = m end
  else
    local index = type(mt.__index) == "table" and mt.__index or mt
    for k, v in pairs(index) do
      if type(k) == "string" and type(v) == "function" and not k:find("^__") and
          not k:find("_async$") then
        out[#out + 1] = k
      end
    end
  end
  -- (what ends the object last: the others still see it open)
  local last = { close = 3, kill = 2, cancel = 1 }
  table.sort(out, function(a, b)
    if (last[a] or 0) ~= (last[b] or 0) then return (last[a] or 0) < (last[b] or 0) end
    return a < b
  end)
  return out
end

describe("misuse errors", function()
  local tmp

  before_each(function() tmp = helper.mkdtemp(weft) end)
  after_each(function() helper.rmtree(tmp) end)

  it("start at the caller's line and name the function they belong to", function()
    local srv = assert(weft.tcp.listen("127.0.0.1", 0))
    local _, port = srv:sockname()
    local good = {
      ["weft.tcp.connect"] = { "127.0.0.1", port },
      ["weft.tcp.listen"] = { "127.0.0.1", 0 },
      ["weft.udp.bind"] = { "127.0.0.1", 0 },
      ["weft.tls.connect"] = { "127.0.0.1", port },
      ["weft.unix.connect"] = { tmp .. "/nosock" },
      ["weft.unix.listen"] = { tmp .. "/sock" },
      ["weft.dns.getaddrinfo"] = { "127.0.0.1", 80 },
      ["weft.dns.getnameinfo"] = { "127.0.0.1", 80 },
      ["weft.fs.writefile"] = { tmp .. "/wf", "data" },
      ["weft.fs.rename"] = { tmp .. "/nothing" },
      ["weft.fs.open"] = { tmp .. "/f2", "w" },
      ["weft.fs.mkdir"] = { tmp .. "/d" },
      ["weft.fs.watch"] = { tmp },
      ["weft.once"] = { 10, noop },
      ["weft.every"] = { 10, noop },
      ["weft.process.run"] = { { "true" } },
      ["weft.socket.connect"] = { "127.0.0.1", port },
      ["weft.socket.bind"] = { "127.0.0.1", 0 },
    }
    local problems, checked = {}, 0
    weft.on_error(function(e) if e == BLOCKED then error(e, 0) end end)
    for _, path in ipairs(public_functions()) do
      checked = checked + sweep_fn(problems, path, nil, good[path] or {})
    end
    srv:close()
    assert.same({}, problems)
    assert.is_true(checked > 400, "only " .. checked .. " errors checked")
    assert.is_true(helper.loop_works(weft))
  end)

  it("start at the caller's line and name the method they belong to", function()
    local peer_r, w = weft.pipe()
    local r, eof_w = weft.pipe()
    eof_w:close() -- (r is at end of file: reading it never waits)
    local objects = {
      stream = r, stream_w = w,
      server = assert(weft.tcp.listen("127.0.0.1", 0)),
      udp = assert(weft.udp.bind("127.0.0.1", 0)),
      promise = weft.promise(), task = weft.async(noop),
      channel = weft.channel(), mutex = weft.mutex(), semaphore = weft.semaphore(1),
      event = weft.event(), group = weft.group(),
      process = assert(weft.process.spawn { "sleep", "100" }),
      pool = weft.pool { max = 1 }, thread_channel = weft.thread.channel(),
      fiber = weft.fiber(noop),
      file = assert(weft.fs.open(tmp .. "/f", "w")),
      fswatch = assert(weft.fs.watch(tmp)),
      socket_tcp = weft.socket.tcp(), socket_udp = weft.socket.udp(),
    }
    local good = {
      ["stream:setoption"] = { "sndbuf" },
      ["stream_w:setoption"] = { "sndbuf" },
      ["udp:sendto"] = { "x", "127.0.0.1" },
      ["udp:setoption"] = { "sndbuf" },
      ["file:read"] = { 1 },
      ["file:write"] = { "x" },
      ["socket_udp:sendto"] = { "x", "127.0.0.1" },
    }
    local problems, checked = {}, 0
    weft.on_error(function(e) if e == BLOCKED then error(e, 0) end end)
    local kinds = {}
    for kind in pairs(objects) do kinds[#kinds + 1] = kind end
    table.sort(kinds)
    for _, kind in ipairs(kinds) do
      for _, m in ipairs(methods_of(objects[kind])) do
        local path = kind .. ":" .. m
        checked = checked + sweep_fn(problems, path, objects[kind], good[path] or {})
      end
    end
    peer_r:close()
    objects.process:kill("SIGKILL")
    objects.process:wait()
    objects.pool:close()
    for _, o in pairs(objects) do
      if type(o) == "table" and o.close and not o.closed then pcall(o.close, o) end
    end
    assert.same({}, problems)
    assert.is_true(checked > 400, "only " .. checked .. " errors checked")
    assert.is_true(helper.loop_works(weft))
  end)

  -- The cases issue 14 names, from this file.
  it("points a stream's setoption at its caller", function()
    local r, w = weft.pipe()
    local at, ok, err = helper.here(), pcall(function() return r:setoption("sndbuf", 1 << 40) end)
    assert.is_false(ok)
    assert.equal(at .. "bad argument #2 to 'setoption' (size must be at most 2147483647)", err)
    at, ok, err = helper.here(), pcall(function() return r:setoption("sndbuf", 0) end)
    assert.equal(at .. "bad argument #2 to 'setoption' (size must be an integer > 0)", err)
    r:close()
    w:close()
  end)

  it("names a fiber's method called through pcall", function()
    local f = weft.fiber(noop)
    local at, ok, err = helper.here(), pcall(f.resume, 42)
    assert.is_false(ok)
    assert.equal(at .. "bad argument #1 to 'resume' (weft.fiber expected, got number)", err)
  end)

  it("gives a closed object's error at the caller's line, also through pcall", function()
    local r, w = weft.pipe()
    local ch, tch, f = weft.channel(), weft.thread.channel(), weft.fiber(noop)
    r:close()
    ch:close()
    tch:close()
    f:close()
    for _, c in ipairs({ { r.read, r, "attempt to use a closed stream" },
                         { r.setoption, r, "attempt to use a closed stream" },
                         { ch.send, ch, "send on a closed channel" },
                         { tch.send, tch, "send on a closed channel" },
                         { f.start, f, "attempt to use a closed fiber" } }) do
      local at, ok, err = helper.here(), pcall(c[1], c[2], 1)
      assert.is_false(ok)
      assert.equal(at .. c[3], err)
    end
    w:close()
  end)

  it("names the public function, not the one weft calls for it", function()
    local at, ok, err = helper.here(), pcall(function() return weft.readable(true) end)
    assert.is_false(ok)
    assert.equal(at .. "bad argument #1 to 'readable' (integer or file expected, got boolean)", err)
    at, ok, err = helper.here(), pcall(function() return weft.signal("SIGNOPE") end)
    assert.equal(at .. "bad argument #1 to 'signal' (unknown signal 'SIGNOPE')", err)
    at, ok, err = helper.here(), pcall(function() return weft.socket.connect4(true, 80) end)
    assert.equal(at .. "bad argument #1 to 'connect4' (string expected, got boolean)", err)
    at, ok, err = helper.here(), pcall(function() return weft.coroutine.wrap(1) end)
    assert.equal(at .. "bad argument #1 to 'wrap' (function expected, got number)", err)
    at, ok, err = helper.here(), pcall(function() return weft.poll_any({ [0] = 0 }) end)
    assert.equal(at .. "bad argument #1 to 'poll_any' (events for descriptor 0 must ask for " ..
      "POLLIN, POLLOUT or POLLPRI)", err)
  end)

  it("names the method a wait that cannot happen belongs to", function()
    local m, ch = weft.mutex(), weft.channel()
    local errs = {}
    weft.run(function()
      m:lock()
      for i, f in ipairs({ function() m:lock() end, function() ch:recv() end }) do
        local _, err = pcall(coroutine.wrap(f))
        errs[i] = err
      end
      m:unlock()
    end)
    assert.matches("^.-errors_spec.lua:%d+: lock: the loop is already running", errs[1])
    assert.matches("^.-errors_spec.lua:%d+: recv: the loop is already running", errs[2])
  end)
end)
