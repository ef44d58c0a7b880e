-- Streams, sockets, polls and lookups: what a program doing I/O relies on.
local weft = require "weft"
local helper = require "helper"

after_each(function()
  weft.on_error(nil)
  helper.assert_clean(weft)
end)

-- The open descriptors of this process.
local function fd_count()
  local p = assert(io.popen("ls /proc/" .. helper.pid() .. "/fd"))
  local n = 0
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end

-- A connected pair over loopback TCP: client, server side.
local function tcp_pair()
  local server = assert(weft.tcp.listen("127.0.0.1", 0))
  local _, port = server:sockname()
  local accepted = weft.async(function() return assert(server:accept()) end)
  local c = assert(weft.tcp.connect("127.0.0.1", port))
  local s = weft.await(accepted)
  server:close()
  return c, s
end

-- A peer process that connects to port, sends data, and resets the
-- connection (SO_LINGER 0, then close) instead of closing it cleanly.
local function resetting_peer(port, data)
  -- (env -u: an ASan build's preloaded runtime would report perl's leaks)
  return assert(weft.process.spawn { "env", "-u", "LD_PRELOAD", "perl", "-MSocket", "-e", [[
    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    connect($s, pack_sockaddr_in($ARGV[0], inet_aton("127.0.0.1"))) or die "connect: $!";
    syswrite($s, $ARGV[1]) if length $ARGV[1];
    setsockopt($s, SOL_SOCKET, SO_LINGER, pack("ii", 1, 0)) or die "linger: $!";
    close($s);
  ]], tostring(port), data })
end

describe("s:read", function()
  it("reads lines, with and without newline, counts and the rest", function()
    local r, w = weft.pipe()
    assert(w:write("one\ntwo\nthree bytes", 4, "\n"))
    w:close()
    assert.equal("one", r:read("l"))
    assert.equal("two\n", r:read("L"))
    assert.equal("three", r:read(5))
    assert.same({ " bytes", "4" }, { r:read(6, "*l") })
    assert.equal("", r:read("a")) -- "a" at EOF: empty
    assert.is_nil(r:read("l"))
    assert.is_nil(r:read(1))
    assert.is_nil(r:read(0))
    r:close()
  end)

  it("returns a last line without its newline at EOF, then nil", function()
    local r, w = weft.pipe()
    w:write("half a li")
    w:close()
    assert.equal("half a li", r:read("l"))
    assert.is_nil(r:read("l"))
    r:close()
  end)

  it("stops at the first nil among several formats", function()
    local r, w = weft.pipe()
    w:write("a\n")
    w:close()
    assert.same({ "a", nil }, { r:read("l", "l", "l") })
    r:close()
  end)

  it("with -n returns what is there as soon as any is", function()
    local r, w = weft.pipe()
    weft.run(function()
      weft.async(function() w:write("ab"); weft.delay(20); w:write("cdef") end)
      assert.equal("ab", r:read(-100))
      assert.equal("cd", r:read(-2))
      assert.equal("ef", r:read(-100))
    end)
    r:close()
    w:close()
  end)

  it("0 returns '' while the stream is open and nil at EOF", function()
    local r, w = weft.pipe()
    w:write("x")
    assert.equal("", r:read(0))
    assert.equal("x", r:read(1))
    w:close()
    assert.is_nil(r:read(0))
    r:close()
  end)

  it("waits for a line that arrives in pieces", function()
    local r, w = weft.pipe()
    weft.run(function()
      weft.async(function()
        for _, piece in ipairs({ "hel", "lo wo", "rld\nnext" }) do
          w:write(piece)
          weft.delay(5)
        end
        w:close()
      end)
      assert.equal("hello world", r:read("l"))
      assert.equal("next", r:read("a"))
    end)
    r:close()
  end)

  it("serves two readers one after the other, never interleaved", function()
    local r, w = weft.pipe()
    local got = {}
    weft.run(function()
      local a = weft.async(function() got.a = r:read(6) end)
      local b = weft.async(function() got.b = r:read(6) end)
      weft.async(function()
        for _, piece in ipairs({ "aaa", "aaab", "bb", "bbb" }) do
          w:write(piece)
          weft.delay(2)
        end
      end)
      weft.await({ a, b })
    end)
    assert.same({ a = "aaaaaa", b = "bbbbbb" }, got)
    r:close()
    w:close()
  end)

  it("times out, then a later read succeeds", function()
    local r, w = weft.pipe()
    r:settimeout(10)
    assert.equal(10, r:gettimeout())
    assert.same({ nil, "timeout", "ETIMEDOUT" }, { r:read("l") })
    w:write("late\n")
    assert.equal("late", r:read("l"))
    r:settimeout(nil)
    r:close()
    w:close()
  end)

  it("a cancelled reader stops waiting; the stream serves the next", function()
    local r, w = weft.pipe()
    weft.run(function()
      local waiting = weft.promise()
      local t = weft.async(function() waiting:resolve(); return r:read("l") end)
      weft.await(waiting)
      weft.delay(1)
      t:cancel("enough")
      local ok, err = pcall(weft.await, t)
      assert.is_false(ok)
      assert.is_true(weft.is_cancelled(err))
      w:write("next\n")
      assert.equal("next", r:read("l"))
    end)
    r:close()
    w:close()
  end)

  it("a cancelled reader hands its turn to the reader queued behind it", function()
    local r, w = weft.pipe()
    weft.run(function()
      local first = weft.async(function() return r:read("l") end)
      local second = weft.async(function() return r:read("l") end)
      weft.delay(1) -- first waits with the turn, second waits for the turn
      first:cancel()
      w:write("for second\n")
      assert.equal("for second", weft.await(second))
      assert.equal("cancelled", first:status())
    end)
    r:close()
    w:close()
  end)

  it("a read that cannot wait raises and leaves the stream usable", function()
    local r, w = weft.pipe()
    weft.run(function()
      -- a cancellation due at the task's next wait
      local t = weft.async(function()
        weft.current():cancel("stop")
        return r:read("l")
      end)
      assert.is_true(weft.is_cancelled(select(2, pcall(weft.await, t))))
      -- a default task reading inside a sort comparator
      local u = weft.async(function()
        local ok, err = pcall(table.sort, { 2, 1 }, function(a, b)
          r:read("l")
          return a < b
        end)
        return ok, err
      end)
      local ok, err = weft.await(u)
      assert.is_false(ok)
      assert.matches("read: a default task cannot suspend inside a C call", err)
      w:write("still here\n")
      assert.equal("still here", r:read("l"))
    end)
    r:close()
    w:close()
  end)

  it("waits in a stackful task, even inside a sort comparator", function()
    local r, w = weft.pipe()
    local got = {}
    weft.run(function()
      local t = weft.spawn({ stackful = true }, function()
        local list = { 3, 1, 2 }
        table.sort(list, function(a, b)
          got[#got + 1] = r:read(1)
          return a < b
        end)
        return list
      end)
      for _ = 1, 10 do w:write("x"); weft.delay(1) end
      assert.same({ 1, 2, 3 }, weft.await(t))
    end)
    assert.is_true(#got >= 2)
    r:close()
    w:close()
  end)

  it("after a reset returns what was read, then fails with ECONNRESET", function()
    local server = assert(weft.tcp.listen("127.0.0.1", 0))
    local _, port = server:sockname()
    local peer = resetting_peer(port, "last words")
    local c = assert(server:accept())
    server:close()
    assert.equal(0, peer:wait()) -- the data and the reset are both there
    assert.equal("last words", c:read("a"))
    assert.same({ nil, "read: connection reset by peer", "ECONNRESET" }, { c:read("a") })
    -- and so on for every later read: a reset never reads as a clean end
    assert.same({ nil, "read: connection reset by peer", "ECONNRESET" }, { c:read("l") })
    assert.same({ nil, "read: connection reset by peer", "ECONNRESET" }, { c:read(1) })
    c:close()
  end)

  it("a reader waiting when the reset comes gets the line so far, then the reset", function()
    local server = assert(weft.tcp.listen("127.0.0.1", 0))
    local _, port = server:sockname()
    weft.run(function()
      local accepted = weft.async(function() return assert(server:accept()) end)
      local peer = resetting_peer(port, "no newline")
      local c = weft.await(accepted)
      assert.equal("no newline", c:read("l"))
      local ok, msg, code = c:read("l")
      assert.same({ nil, "read: connection reset by peer", "ECONNRESET" }, { ok, msg, code })
      assert.equal(0, peer:wait())
      c:close()
    end)
    server:close()
  end)

  it("a reset that a write met first still fails the reads after it", function()
    local server = assert(weft.tcp.listen("127.0.0.1", 0))
    local _, port = server:sockname()
    local peer = resetting_peer(port, "")
    local c = assert(server:accept())
    server:close()
    assert.equal(0, peer:wait())
    assert.is_true(weft.readable(c:getfd(), 5000)) -- the reset arrived
    local ok, _, code = c:write("x")
    assert.same({ nil, "ECONNRESET" }, { ok, code })
    assert.same({ nil, "read: connection reset by peer", "ECONNRESET" }, { c:read("a") })
    c:close()
  end)

  it("raises for a bad format", function()
    local r, w = weft.pipe()
    assert.has_error(function() r:read("x") end, "bad argument #1 to 'read' (invalid format)")
    assert.has_error(function() r:read("l", {}) end, "bad argument #2 to 'read' (invalid format)")
    assert.has_error(function() r:read(1.5) end,
      "bad argument #1 to 'read' (number has no integer representation)")
    w:write("still works\n")
    assert.equal("still works", r:read())
    r:close()
    w:close()
  end)

  it("raises for a bad self, and for a stream whose handle was replaced", function()
    local r, w = weft.pipe()
    assert.has_error(function() r.read(5) end,
      "bad argument #1 to 'read' (weft.stream expected, got number)")
    assert.has_error(function() w.write({}, "x") end,
      "bad argument #1 to 'write' (weft.stream expected, got table)")
    local h = r.h
    r.h = io.stdout -- a userdata of another kind is not taken for a handle
    assert.has_error(function() r:read() end, "attempt to use a closed stream")
    r.h = h
    w:write("still works\n")
    assert.equal("still works", r:read())
    r:close()
    w:close()
  end)
end)

describe("the line limit", function()
  -- This process's resident set, in KiB.
  local function rss_kb()
    local f <close> = assert(io.open("/proc/self/status"))
    return tonumber(f:read("a"):match("VmRSS:%s*(%d+)"))
  end

  it("refuses a 512 MiB line without holding it, and the stream reads on", function()
    local size = 512 * 1024 * 1024
    local p = assert(weft.process.spawn { "head", "-c", tostring(size), "/dev/zero", stdout = "pipe" })
    collectgarbage()
    local before = rss_kb()
    local r = p.stdout
    assert.same({ nil, "read: line too long", "EMSGSIZE" }, { r:read("l") })
    assert.same({ nil, "read: line too long", "EMSGSIZE" }, { r:read("L") })
    -- nothing was dropped: the bytes read so far are still there, by count
    assert.equal(string.rep("\0", 1 << 20), r:read(1 << 20))
    assert.is_true(rss_kb() - before < 64 * 1024, "RSS grew by " .. (rss_kb() - before) .. " KiB")
    r:close()
    assert.same({ nil, "SIGPIPE" }, { p:wait() })
  end)

  it("reads a line exactly at the limit; one byte more fails and its bytes stay", function()
    local r, w = weft.pipe()
    assert.is_true(r:setoption("maxline", 10))
    w:write("0123456789\n", "0123456789\n", "0123456789A\n", "0123456789A\nend\n")
    assert.equal("0123456789", r:read("l"))
    assert.equal("0123456789\n", r:read("L"))
    assert.same({ nil, "read: line too long", "EMSGSIZE" }, { r:read("l") })
    assert.same({ nil, "read: line too long", "EMSGSIZE" }, { r:read("L") })
    assert.equal("0123456789A\n", r:read(12)) -- still buffered
    -- a higher limit reads what a lower one refused
    assert.same({ nil, "read: line too long", "EMSGSIZE" }, { r:read("l", "l") })
    assert.is_true(r:setoption("maxline", 11))
    assert.same({ "0123456789A", "end" }, { r:read("l", "l") })
    w:close()
    assert.is_nil(r:read("l"))
    r:close()
  end)

  it("fails as soon as the limit is passed, without waiting for a newline", function()
    local r, w = weft.pipe()
    r:setoption("maxline", 16)
    r:settimeout(5000) -- (only if the limit were ignored)
    weft.run(function()
      local got = weft.async(function() return table.pack(r:read("l")) end)
      w:write("0123456789") -- a line that is not over the limit yet: it waits
      weft.delay(1)
      w:write("0123456789")
      local res = weft.await(got)
      assert.same({ nil, "read: line too long", "EMSGSIZE" }, { res[1], res[2], res[3] })
    end)
    assert.equal("0123456789012345", r:read(16))
    r:close()
    w:close()
  end)

  it("makes lines() raise, and applies to a last line at end of file", function()
    local r, w = weft.pipe()
    r:setoption("maxline", 4)
    w:write("ok\ntoo long\nnext\nlong tail")
    w:close()
    local got = {}
    local ok, err = pcall(function() for l in r:lines() do got[#got + 1] = l end end)
    assert.is_false(ok)
    assert.matches("read: line too long$", err)
    assert.same({ "ok" }, got)
    assert.equal("too long\n", r:read(9))
    assert.equal("next", r:read("l"))
    assert.same({ nil, "read: line too long", "EMSGSIZE" }, { r:read("l") })
    assert.equal("long tail", r:read("a"))
    r:close()
  end)

  it("is 64 KiB by default", function()
    local r, w = weft.pipe()
    weft.run(function()
      weft.async(function()
        w:write(string.rep("x", 65536), "\n", string.rep("y", 65537), "\n")
        w:close()
      end)
      assert.equal(65536, #r:read("l"))
      assert.same({ nil, "read: line too long", "EMSGSIZE" }, { r:read("l") })
      r:read("a")
    end)
    r:close()
  end)

  it("raises for a limit that is not an integer > 0", function()
    local r, w = weft.pipe()
    assert.has_error(function() r:setoption("maxline", 0) end,
      "bad argument #2 to 'setoption' (size must be an integer > 0)")
    assert.has_error(function() r:setoption("maxline", "big") end,
      "bad argument #2 to 'setoption' (size must be an integer > 0)")
    w:write("fine\n")
    assert.equal("fine", r:read("l"))
    r:close()
    w:close()
  end)
end)

describe("s:write", function()
  it("returns the stream and writes numbers like file:write", function()
    local r, w = weft.pipe()
    assert.equal(w, w:write("a", 1, 2.5, "\n"))
    assert.equal("a12.5", r:read())
    r:close()
    w:close()
  end)

  it("raises for a value that is not a string or number", function()
    local r, w = weft.pipe()
    assert.has_error(function() w:write("ok", {}) end,
      "bad argument #2 to 'write' (string expected, got table)")
    r:close()
    w:close()
  end)

  it("waits for a slow reader: memory stays bounded", function()
    local r, w = weft.pipe()
    assert.is_true(w:setoption("writequeue", 65536))
    local chunk = string.rep("x", 1 << 20)
    local total = 0
    weft.run(function()
      local reader = weft.async(function()
        while true do
          local s = r:read(-65536)
          if not s then return end
          total = total + #s
          weft.delay(0)
        end
      end)
      for _ = 1, 16 do assert(w:write(chunk)) end
      w:close()
      weft.await(reader)
    end)
    assert.equal(16 << 20, total)
    r:close()
  end)

  it("a writer to a peer that never reads times out with little queued", function()
    local c, s = tcp_pair()
    assert(c:setoption("sndbuf", 65536))
    assert(c:setoption("writequeue", 65536))
    c:settimeout(50)
    local big = string.rep("y", 256 * 1024)
    local rss0 = collectgarbage("count")
    local ok, msg, code
    for _ = 1, 64 do -- 16 MiB offered; the peer never reads
      ok, msg, code = c:write(big)
      if not ok then break end
    end
    assert.same({ nil, "timeout", "ETIMEDOUT" }, { ok, msg, code })
    assert.is_true(collectgarbage("count") - rss0 < 8 * 1024)
    c:close()
    s:close()
  end)

  it("a peer that resets during a write gives an error, not a signal", function()
    local c, s = tcp_pair()
    c:write("unread data\n") -- unread at close: the kernel resets
    weft.delay(10)
    s:close()
    local ok, msg, code
    for _ = 1, 100 do
      ok, msg, code = c:write(string.rep("z", 65536))
      if not ok then break end
      weft.delay(1)
    end
    assert.is_nil(ok)
    assert.truthy(code == "EPIPE" or code == "ECONNRESET", code)
    assert.matches("^write: ", msg)
    c:close()
  end)
end)

describe("s:close", function()
  it("wakes every task waiting on the stream with nil, 'closed', 'ECLOSED'", function()
    local r, w = weft.pipe()
    local results = {}
    weft.run(function()
      local waiters = {}
      for i = 1, 3 do
        waiters[i] = weft.async(function() results[i] = { r:read("l") } end)
      end
      weft.delay(5)
      r:close()
      weft.await(waiters)
    end)
    for i = 1, 3 do assert.same({ nil, "closed", "ECLOSED" }, results[i]) end
    w:close()
  end)

  it("makes later use raise, as Lua's io does", function()
    local r, w = weft.pipe()
    r:close()
    assert.has_error(function() r:read() end, "attempt to use a closed stream")
    assert.has_error(function() r:getfd() end, "attempt to use a closed stream")
    assert.same({ nil, "closed", "ECLOSED" }, { r:close() })
    assert.equal("weft.stream (closed)", tostring(r))
    assert.matches("^weft.stream %(0x%x+%)$", tostring(w))
    w:close()
  end)

  it("flushes queued data first", function()
    local c, s = tcp_pair()
    assert(c:setoption("sndbuf", 4096))
    local data = string.rep("q", 1 << 20)
    local got
    weft.run(function()
      local reader = weft.async(function() got = s:read("a") end)
      c:write(data)
      c:close()
      weft.await(reader)
    end)
    assert.equal(#data, #got)
    s:close()
  end)

  it("leaks no descriptor, and a collected stream is closed", function()
    local before = fd_count()
    for _ = 1, 20 do
      local c, s = tcp_pair()
      c:write("x\n")
      assert.equal("x", s:read())
      c:close()
      s:close()
    end
    do local _r, _w = weft.pipe() end
    collectgarbage()
    collectgarbage()
    assert.equal(before, fd_count())
  end)

  it("<close> closes at the end of the scope", function()
    local r, w = weft.pipe()
    do
      local _ <close> = r
    end
    assert.has_error(function() r:read() end, "attempt to use a closed stream")
    w:close()
  end)
end)

describe("promise twins", function()
  it("read_async resolves with the read's values", function()
    local r, w = weft.pipe()
    local p = r:read_async("l")
    w:write("hi\n")
    assert.equal("hi", weft.await(p))
    r:close()
    w:close()
  end)

  it("reject with the message and code of the direct call", function()
    local server = assert(weft.tcp.listen("127.0.0.1", 0))
    local _, port = server:sockname()
    server:close()
    local ok, err = pcall(weft.await, weft.tcp.connect_async("127.0.0.1", port))
    assert.is_false(ok)
    assert.equal("ECONNREFUSED", err.code)
    assert.equal("connect: connection refused", tostring(err))
    local r, w = weft.pipe()
    r:settimeout(5)
    local ok2, terr = pcall(weft.await, r:read_async())
    assert.is_false(ok2)
    assert.is_true(weft.is_timeout(terr))
    r:close()
    w:close()
  end)
end)

describe("weft.tcp", function()
  it("connects and echoes, with peer and local names", function()
    local c, s = tcp_pair()
    local host, port = c:peername()
    assert.equal("127.0.0.1", host)
    assert.same({ host, port }, { s:sockname() })
    c:write("ping\n")
    assert.equal("ping", s:read())
    s:write("pong\n")
    assert.equal("pong", c:read())
    assert.is_true(c:setoption("keepalive", true))
    assert.is_number(c:getfd())
    c:close()
    s:close()
  end)

  it("half-closes with shutdown: the peer reads EOF, replies still come", function()
    local c, s = tcp_pair()
    c:write("last words")
    assert.is_true(c:shutdown())
    assert.equal("last words", s:read("a"))
    s:write("reply")
    s:close()
    assert.equal("reply", c:read("a"))
    c:close()
  end)

  it("works over IPv6 loopback", function()
    local server, msg = weft.tcp.listen("::1", 0)
    if not server then pending("no IPv6 here: " .. msg) return end
    local host, port = server:sockname()
    assert.equal("::1", host)
    local a = weft.async(function() return server:accept() end)
    local c = assert(weft.tcp.connect("::1", port))
    local s = weft.await(a)
    c:write("6\n")
    assert.equal("6", s:read())
    c:close(); s:close(); server:close()
  end)

  it("resolves names", function()
    local server = assert(weft.tcp.listen("localhost", 0, { family = "inet" }))
    local _, port = server:sockname()
    local a = weft.async(function() return server:accept() end)
    local c = assert(weft.tcp.connect("localhost", port, { family = "inet" }))
    weft.await(a):close()
    c:close()
    server:close()
  end)

  it("returns nil, message, code when refused or in use", function()
    local server = assert(weft.tcp.listen("127.0.0.1", 0))
    local _, port = server:sockname()
    assert.same({ nil, "listen: address already in use", "EADDRINUSE" },
      { weft.tcp.listen("127.0.0.1", port, { reuseaddr = false }) })
    server:close()
    assert.same({ nil, "connect: connection refused", "ECONNREFUSED" },
      { weft.tcp.connect("127.0.0.1", port) })
  end)

  it("times out a connect that cannot complete", function()
    -- A listener that never accepts: once its queue is full the kernel
    -- drops further SYNs, and those connects stay pending.
    local server = assert(weft.tcp.listen("127.0.0.1", 0, { backlog = 1 }))
    local _, port = server:sockname()
    local held, s, msg, code = {}, nil, nil, nil
    for _ = 1, 20 do
      s, msg, code = weft.tcp.connect("127.0.0.1", port, { timeout = 50 })
      if not s then break end
      held[#held + 1] = s
    end
    assert.same({ nil, "connect: timed out", "ETIMEDOUT" }, { s, msg, code })
    for _, c in ipairs(held) do c:close() end
    server:close()
  end)

  it("accept times out, and tasks accept in turn", function()
    local server = assert(weft.tcp.listen("127.0.0.1", 0))
    assert.same({ nil, "timeout", "ETIMEDOUT" }, { server:accept(5) })
    local _, port = server:sockname()
    local order = {}
    weft.run(function()
      local a = weft.async(function() local s = server:accept(); order[#order + 1] = "a"; s:close() end)
      local b = weft.async(function() local s = server:accept(); order[#order + 1] = "b"; s:close() end)
      weft.delay(1)
      local c1 = assert(weft.tcp.connect("127.0.0.1", port))
      local c2 = assert(weft.tcp.connect("127.0.0.1", port))
      weft.await({ a, b })
      c1:close(); c2:close()
    end)
    assert.same({ "a", "b" }, order)
    server:close()
    assert.equal("weft.server (closed)", tostring(server))
    assert.has_error(function() server:accept() end, "attempt to use a closed server")
  end)

  it("raises for bad hosts, ports and options", function()
    assert.has_error(function() weft.tcp.connect(1, 80) end,
      "bad argument #1 to 'connect' (string expected, got number)")
    assert.has_error(function() weft.tcp.connect("", 80) end,
      "bad argument #1 to 'connect' (host must not be empty)")
    assert.has_error(function() weft.tcp.connect("127.0.0.1", 70000) end,
      "bad argument #2 to 'connect' (port must be in 0..65535)")
    assert.has_error(function() weft.tcp.connect("127.0.0.1", "80") end,
      "bad argument #2 to 'connect' (integer expected, got string)")
    assert.has_error(function() weft.tcp.connect("127.0.0.1", 80, { timout = 1 }) end,
      "bad argument #3 to 'connect' (unknown option 'timout')")
    assert.has_error(function() weft.tcp.connect("127.0.0.1", 80, { timeout = -1 }) end,
      "bad argument #3 to 'connect' (timeout must be >= 0)")
    assert.has_error(function() weft.tcp.listen("127.0.0.1", 0, { backlog = 0 }) end,
      "bad argument #3 to 'listen' (field 'backlog' must be an integer >= 1)")
    local c, s = tcp_pair()
    assert.has_error(function() c:setoption("nodelya", true) end,
      "bad argument #1 to 'setoption' (unknown option 'nodelya')")
    assert.has_error(function() c:setoption("nodelay", 1) end,
      "bad argument #2 to 'setoption' (boolean expected, got number)")
    assert.has_error(function() c:settimeout(-5) end,
      "bad argument #1 to 'settimeout' (timeout must be >= 0)")
    assert.same({ nil, "connect: address family not supported", "EAFNOSUPPORT" },
      { weft.tcp.connect("127.0.0.1", 1, { family = "inet6" }) })
    -- and the loop still works
    c:write("fine\n")
    assert.equal("fine", s:read())
    c:close()
    s:close()
  end)
end)

describe("server:accept out of descriptors", function()
  -- Runs a Lua script in a child lua5.4 limited to `fds` descriptors;
  -- returns its output (stdout and stderr).
  local function run_limited(src, fds)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(src)
    f:close()
    local p = assert(io.popen(string.format("ulimit -n %d && LUA_CPATH=%q LUA_PATH=%q lua5.4 %s 2>&1",
      fds, package.cpath, package.path, path)))
    local out = p:read("a")
    p:close()
    os.remove(path)
    return out
  end

  it("waits without spinning while the loop runs, and serves once descriptors free", function()
    local out = run_limited([[
      local weft = require "weft"
      local server = assert(weft.tcp.listen("127.0.0.1", 0))
      local _, port = server:sockname()
      -- three clients the kernel queues, then a full descriptor table
      local clients = {}
      for i = 1, 3 do clients[i] = assert(weft.tcp.connect("127.0.0.1", port)) end
      local r, w = weft.pipe()
      local held = {}
      while true do
        local f = io.open("/dev/null")
        if not f then break end
        held[#held + 1] = f
      end
      print("full", #held > 0)
      -- an accept with a timeout times out; a cancelled one stops waiting
      print("timeout", server:accept(30))
      local t = weft.async(function() return server:accept() end)
      weft.delay(20)
      t:cancel()
      print("cancelled", weft.is_cancelled(select(2, pcall(weft.await, t))))
      -- the accept loop of a server (which returns only with a connection)
      local accepts = 0
      local serving = weft.async(function()
        local n = 0
        while n < 3 do
          local c, msg = server:accept()
          accepts = accepts + 1
          if accepts > 1000 then print("spun: " .. tostring(msg)) os.exit(1) end
          if c then n = n + 1; c:write("hello ", n, "\n"); c:close() end
        end
      end)
      -- the loop runs timers meanwhile, in few iterations (a spin takes
      -- one per try)
      local fired, iterations = false, 0
      weft.once(300, function() fired = true end)
      while not fired do weft.tick(); iterations = iterations + 1 end
      print("fired", accepts, iterations < 100 or iterations)
      -- descriptors free: by Lua's io, and by weft (which retries at once)
      for _, f in ipairs(held) do f:close() end
      r:close(); w:close()
      for _, c in ipairs(clients) do print(c:read("l")) end
      weft.await(serving)
      print("done", accepts)
    ]], 64)
    assert.equal(table.concat({ "full\ttrue", "timeout\tnil\ttimeout\tETIMEDOUT", "cancelled\ttrue",
      "fired\t0\ttrue", "hello 1", "hello 2", "hello 3", "done\t3", "" }, "\n"), out)
  end)
end)

describe("weft.unix", function()
  it("connects over a socket file, removed when the server closes", function()
    local path = os.tmpname()
    os.remove(path)
    local server = assert(weft.unix.listen(path))
    assert.equal(path, server:sockname())
    local a = weft.async(function() return assert(server:accept()) end)
    local c = assert(weft.unix.connect(path))
    local s = weft.await(a)
    c:write("over unix\n")
    assert.equal("over unix", s:read())
    c:close(); s:close(); server:close()
    assert.is_nil(io.open(path))
    assert.equal("ENOENT", select(3, weft.unix.connect(path)))
  end)
end)

describe("weft.wrap", function()
  it("wraps a Lua file from io.popen and leaves it open", function()
    local f = assert(io.popen("printf 'from a child\\n'"))
    local s = assert(weft.wrap(f))
    assert.equal("from a child", s:read())
    s:close()
    assert.equal("file", io.type(f))
    f:close()
  end)

  it("wraps stdin and stdout of a process", function()
    local out, ok = helper.run_script([[
      local weft = require "weft"
      local stdin, stdout = assert(weft.wrap(io.stdin)), assert(weft.wrap(io.stdout))
      for line in stdin:lines() do stdout:write("got ", line, "\n") end
      stdout:close()
      stdin:close()
      io.stdout:write("stdout still open\n")
    ]], "printf 'a\\nb\\n'")
    assert.is_true(ok, out)
    assert.equal("got a\ngot b\nstdout still open\n", out)
  end)

  it("refuses a regular file and points to weft.fs", function()
    local f = io.tmpfile()
    assert.same({ nil, "wrap: a regular file or directory cannot be polled: use weft.fs", "EPERM" },
      { weft.wrap(f) })
    f:close()
    assert.has_error(function() weft.wrap(f) end, "bad argument #1 to 'wrap' (attempt to use a closed file)")
    assert.has_error(function() weft.wrap("x") end, "bad argument #1 to 'wrap' (integer or file expected, got string)")
    assert.equal("EBADF", select(3, weft.wrap(9999)))
  end)
end)

describe("weft.poll", function()
  it("fires once with the ready events", function()
    local r, w = weft.pipe()
    local calls = {}
    local id = weft.poll(r:getfd(), weft.POLLIN, nil, function(fd, ev) calls[#calls + 1] = { fd, ev } end)
    assert.is_number(id)
    w:write("x")
    weft.run()
    assert.same({ { r:getfd(), weft.POLLIN } }, calls)
    assert.is_false(weft.cancel(id))
    r:close(); w:close()
  end)

  it("reports a timeout with revents 0, and cancel stops it", function()
    local r, w = weft.pipe()
    local got
    weft.poll(r:getfd(), weft.POLLIN, 5, function(_, ev) got = ev end)
    local id = weft.poll(r:getfd(), weft.POLLIN, 5, function() error("cancelled poll ran") end)
    assert.is_true(weft.cancel(id))
    weft.run()
    assert.equal(0, got)
    r:close(); w:close()
  end)

  it("reports hang-up and gives POLLNVAL when weft closes the fd", function()
    local r, w = weft.pipe()
    local hup, nval
    weft.poll(r:getfd(), weft.POLLIN, nil, function(_, ev) hup = ev end)
    w:close()
    weft.run()
    assert.is_true(hup & weft.POLLHUP ~= 0)
    weft.poll(r:getfd(), weft.POLLIN, 1000, function(_, ev) nval = ev end)
    r:close()
    weft.run()
    assert.equal(weft.POLLNVAL, nval)
  end)

  it("returns nil, 'EBADF' / 'EPERM' before arming anything", function()
    assert.same({ nil, "EBADF" }, { weft.poll(9999, weft.POLLIN, nil, print) })
    local f = io.tmpfile()
    assert.same({ nil, "EPERM" }, { weft.poll(f, weft.POLLIN, nil, print) })
    f:close()
    assert.has_error(function() weft.poll(0, 0, nil, print) end,
      "bad argument #2 to 'poll' (events must ask for POLLIN, POLLOUT or POLLPRI)")
    assert.has_error(function() weft.poll(0, weft.POLLIN, nil, 5) end,
      "bad argument #4 to 'poll' (function expected, got number)")
  end)

  it("poll_any waits on many descriptors", function()
    local r1, w1 = weft.pipe()
    local r2, w2 = weft.pipe()
    assert.same({}, weft.poll_any({ [r1:getfd()] = weft.POLLIN, [r2:getfd()] = weft.POLLIN }, 5))
    w2:write("!")
    assert.same({ [r2:getfd()] = weft.POLLIN },
      weft.poll_any({ [r1:getfd()] = weft.POLLIN, [r2:getfd()] = weft.POLLIN }, 1000))
    assert.same({ nil, "EBADF" }, { weft.poll_any({ [9999] = weft.POLLIN }) })
    for _, s in ipairs({ r1, w1, r2, w2 }) do s:close() end
  end)
end)

describe("weft.dns", function()
  it("getaddrinfo resolves localhost and numeric hosts", function()
    local list = assert(weft.dns.getaddrinfo("localhost", 80, { family = "inet", socktype = "stream" }))
    assert.same({ family = "inet", address = "127.0.0.1", port = 80, socktype = "stream" }, list[1])
    local p = weft.dns.getaddrinfo_async("127.0.0.1", "443")
    assert.equal(443, weft.await(p)[1].port)
  end)

  it("getnameinfo turns an address back", function()
    assert.same({ "127.0.0.1", "80" }, { weft.dns.getnameinfo("127.0.0.1", 80, { numeric = true }) })
  end)

  it("raises for bad arguments", function()
    assert.has_error(function() weft.dns.getaddrinfo() end,
      "bad argument #1 to 'getaddrinfo' (host or service expected)")
    assert.has_error(function() weft.dns.getaddrinfo("x", nil, { family = "ipx" }) end,
      "bad argument #3 to 'getaddrinfo' (field 'family' must be 'inet' or 'inet6')")
    assert.has_error(function() weft.dns.getnameinfo("nope") end,
      "bad argument #1 to 'getnameinfo' (not a numeric address)")
  end)
end)

describe("many connections", function()
  it("10,000 concurrent loopback connections each echo", function()
    -- Both ends in child processes whose descriptor limit is raised for the
    -- run (10,000 sockets each side); this process's limit is untouched.
    local server = [[
      local weft = require "weft"
      local srv = assert(weft.tcp.listen("127.0.0.1", 0, { backlog = 4096 }))
      local _, port = srv:sockname()
      io.stdout:write(port, "\n") io.stdout:flush()
      weft.run(function()
        for _ = 1, 10000 do
          local c = assert(srv:accept())
          weft.async(function()
            local line = c:read("l")
            c:write(line, "\n")
            c:read("a")
            c:close()
          end)
        end
        srv:close()
      end)
    ]]
    local client = [[
      local weft = require "weft"
      local port = tonumber(arg[1])
      local ok = 0
      weft.run(function()
        local tasks = {}
        for i = 1, 10000 do
          tasks[i] = weft.async(function()
            local c = assert(weft.tcp.connect("127.0.0.1", port, { timeout = 60000 }))
            c:write("echo ", i, "\n")
            assert(c:read("l") == "echo " .. i)
            c:close()
            ok = ok + 1
          end)
        end
        weft.await(tasks)
      end)
      print("echoed " .. ok)
    ]]
    local function script(src)
      local path = os.tmpname()
      local f = assert(io.open(path, "w"))
      f:write(src)
      f:close()
      return path
    end
    local spath, cpath = script(server), script(client)
    local env = string.format("LUA_CPATH=%q LUA_PATH=%q", package.cpath, package.path)
    local srv = assert(io.popen(string.format("ulimit -n 10100 && %s lua5.4 %s", env, spath)))
    local port = srv:read("l")
    assert.truthy(tonumber(port), "the server did not start")
    local cl = assert(io.popen(string.format("ulimit -n 10100 && %s lua5.4 %s %s 2>&1", env, cpath, port)))
    local out = cl:read("a")
    local ok = cl:close()
    assert.is_true(srv:close())
    os.remove(spath)
    os.remove(cpath)
    assert.is_true(ok, out)
    assert.equal("echoed 10000\n", out)
  end)
end)

describe("weft.udp", function()
  it("sends and receives datagrams with their sender", function()
    local a = assert(weft.udp.bind("127.0.0.1", 0))
    local b = assert(weft.udp.bind("127.0.0.1", 0))
    local _, pa = a:sockname()
    local _, pb = b:sockname()
    assert.is_true(a:sendto("hello", "127.0.0.1", pb))
    assert.same({ "hello", "127.0.0.1", pa }, { b:recvfrom() })
    assert.is_true(b:sendto(string.rep("\0", 1000), "localhost", pa))
    assert.equal(1000, #a:recvfrom())
    a:close()
    b:close()
    assert.equal("weft.udp (closed)", tostring(a))
  end)

  it("recvfrom waits in a task and times out", function()
    local a = assert(weft.udp.bind("127.0.0.1", 0))
    local _, pa = a:sockname()
    assert.same({ nil, "timeout", "ETIMEDOUT" }, { a:recvfrom(nil, 5) })
    weft.run(function()
      local got = weft.async(function() return a:recvfrom(10) end)
      weft.delay(2)
      local b = assert(weft.udp.bind("127.0.0.1", 0))
      b:sendto("late", "127.0.0.1", pa)
      assert.equal("late", weft.await(got))
      b:close()
    end)
    a:close()
  end)

  it("raises for bad arguments, and reports a datagram too long for size", function()
    local a = assert(weft.udp.bind("127.0.0.1", 0))
    local _, pa = a:sockname()
    assert.has_error(function() a:sendto(1, "127.0.0.1", 1) end,
      "bad argument #1 to 'sendto' (string expected, got number)")
    assert.has_error(function() a:sendto("x", "127.0.0.1", -1) end,
      "bad argument #3 to 'sendto' (port must be in 0..65535)")
    assert.has_error(function() a:recvfrom(0) end,
      "bad argument #1 to 'recvfrom' (size must be an integer >= 1)")
    a:sendto("too long", "127.0.0.1", pa)
    assert.same({ nil, "recvfrom: message too long", "EMSGSIZE" }, { a:recvfrom(3) })
    a:close()
    assert.has_error(function() a:recvfrom() end, "attempt to use a closed socket")
  end)
end)
