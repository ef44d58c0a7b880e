-- weft.socket: LuaSocket's API in weft tasks, checked against the real
-- LuaSocket libraries (socket.http, socket.smtp, ltn12) and real peers
-- (python3 -m http.server, curl, servers written here with weft).
local weft = require "weft"
local helper = require "helper"
local socket = weft.socket

after_each(function()
  weft.on_error(nil)
  helper.assert_clean(weft)
end)

-- A listening weft.socket server on a free port: server, port.
local function listener()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  return s, port
end

-- A connected pair of weft.socket clients over loopback.
local function pair()
  local s, port = listener()
  local a = weft.async(function() return assert(s:accept()) end)
  local c = assert(socket.connect("127.0.0.1", port))
  local b = weft.await(a)
  s:close()
  return c, b
end

describe("weft.socket tcp", function()
  it("goes from master to client and server, as LuaSocket's classes", function()
    local m = socket.tcp()
    assert.matches("^tcp{master}: 0x%x+$", tostring(m))
    assert.equal(-1, m:getfd())
    assert.equal("inet4", m:getfamily())
    local s, port = listener()
    assert.equal("tcp{server}", s.class)
    assert.same({ 1 }, { m:connect("127.0.0.1", port) })
    assert.equal("tcp{client}", m.class)
    assert.is_true(m:getfd() >= 0)
    local c = s:accept()
    assert.equal("tcp{client}", c.class)
    local host, p, fam = c:getpeername()
    assert.same({ "127.0.0.1", "inet" }, { host, fam })
    assert.same({ "127.0.0.1", p, "inet" }, { m:getsockname() })
    assert.equal(1, m:close())
    assert.equal(1, m:close()) -- again: still 1
    assert.equal(-1, m:getfd())
    c:close(); s:close()
  end)

  it("sends a range of the data and returns the last byte's index", function()
    local c, s = pair()
    assert.same({ 4 }, { c:send("hello\r\nworld", 2, 4) })
    assert.same({ 12 }, { c:send("hello\r\nworld") })
    assert.same({ 12 }, { c:send("hello\r\nworld", -5) })
    assert.same({ 2 }, { c:send("abc", 3, 2) }) -- empty range: i - 1
    assert.equal("ellhello", s:receive("*l"))
    assert.equal("world", s:receive(5))
    assert.equal("world", s:receive(5))
    local received, sent = c:getstats()
    assert.same({ 0, 20 }, { received, sent })
    c:close(); s:close()
  end)

  it("receives lines without CR, counts, everything, with a prefix, and 5.4 spellings", function()
    local c, s = pair()
    c:send("a\r\nb\nc\r\rd\nrest")
    c:shutdown("send")
    assert.equal("a", s:receive())
    assert.equal("b", s:receive("l"))
    assert.equal(">cd", s:receive("*l", ">"))
    assert.equal("", s:receive(0))
    assert.equal("re", s:receive(2))
    assert.equal("x:st", s:receive("a", "x:"))
    assert.same({ nil, "closed", "" }, { s:receive("*a") }) -- nothing before the end
    c:close(); s:close()
  end)

  it("returns the partial data with 'closed' when the peer closes mid-pattern", function()
    local c, s = pair()
    c:send("no newline\r")
    c:close()
    assert.same({ nil, "closed", "no newline" }, { s:receive("*l") })
    assert.same({ nil, "closed", "" }, { s:receive(5) })
    s:close()
    local c2, s2 = pair()
    c2:send("abc")
    c2:close()
    assert.same({ nil, "closed", "pabc" }, { s2:receive(10, "p") })
    s2:close()
  end)

  it("returns the partial data with 'timeout', and the rest stays readable", function()
    local c, s = pair()
    s:settimeout(0.02)
    c:send("par")
    assert.same({ nil, "timeout", "par" }, { s:receive("*l") })
    c:send("tial\nmore")
    assert.equal("tial", s:receive())
    assert.same({ nil, "timeout", "more" }, { s:receive(10) })
    c:close(); s:close()
  end)

  it("settimeout(0) polls without giving the loop a turn", function()
    local c, s = pair()
    s:settimeout(0)
    local ran = false
    weft.run(function()
      weft.async(function() ran = true end)
      assert.same({ nil, "timeout", "" }, { s:receive() })
      assert.is_false(ran) -- the queued task did not run: nothing waited
    end)
    assert.is_true(ran)
    c:close(); s:close()
  end)

  it("counts a total timeout ('t') over the whole call", function()
    local c, s = pair()
    s:settimeout(0.03, "t")
    assert.same({ -1, 0.03 }, { s:gettimeout() })
    c:send("12345")
    assert.same({ nil, "timeout", "12345" }, { s:receive(10) })
    s:settimeout(-1, "t")
    s:settimeout(nil)
    assert.same({ -1, -1 }, { s:gettimeout() })
    c:close(); s:close()
  end)

  it("a timeout suspends only its task: the others go on meanwhile", function()
    local c, s = pair()
    local log = {}
    weft.run(function()
      local waiter = weft.async(function()
        s:settimeout(0.05)
        local v, err = s:receive()
        log[#log + 1] = err
      end)
      weft.async(function()
        for i = 1, 3 do
          log[#log + 1] = i
          weft.delay(0)
        end
      end)
      weft.await(waiter)
    end)
    assert.same({ 1, 2, 3, "timeout" }, log)
    c:close(); s:close()
  end)

  it("reports LuaSocket's error strings", function()
    local s, port = listener()
    s:close()
    local m = socket.tcp()
    assert.same({ nil, "connection refused" }, { m:connect("127.0.0.1", port) })
    assert.same({ nil, "host or service not provided, or not known" },
      { socket.connect("nonexistent.invalid", 80) })
    local s1, port1 = listener()
    local m2 = socket.tcp()
    assert.same({ nil, "address already in use" }, { m2:bind("127.0.0.1", port1) })
    m2:close()
    s1:settimeout(0)
    assert.same({ nil, "timeout" }, { s1:accept() })
    s1:close()
    local c, b = pair()
    b:close()
    c:close()
    assert.same({ nil, "closed", 0 }, { c:send("x") })
    assert.same({ nil, "closed", "" }, { c:receive() })
  end)

  it("reports a send to a reset peer as 'closed' with the bytes sent", function()
    local c, b = pair()
    b:setoption("linger", { on = true, timeout = 0 })
    b:close() -- an RST
    local sent, err, last
    for _ = 1, 100 do
      sent, err, last = c:send(string.rep("x", 65536))
      if not sent then break end
    end
    assert.same({ nil, "closed" }, { sent, err })
    assert.equal("number", math.type(last) and "number")
    c:close()
  end)

  it("sets and gets LuaSocket's options", function()
    local c, s = pair()
    assert.equal(1, c:setoption("tcp-nodelay", true))
    assert.is_true(c:getoption("tcp-nodelay"))
    assert.equal(1, c:setoption("keepalive", true))
    assert.is_true(c:getoption("keepalive"))
    assert.equal(1, c:setoption("linger", { on = true, timeout = 3 }))
    assert.same({ on = true, timeout = 3 }, c:getoption("linger"))
    local m = socket.tcp()
    assert.equal(1, m:setoption("reuseaddr", true)) -- kept until the descriptor exists
    assert.is_true(m:getoption("reuseaddr"))
    assert.equal(1, m:bind("127.0.0.1", 0))
    assert.is_true(m:getoption("reuseaddr"))
    m:close(); c:close(); s:close()
  end)

  it("tells dirty when data waits in the buffer", function()
    local c, s = pair()
    c:send("one\ntwo\n")
    assert.equal("one", s:receive())
    assert.is_true(s:dirty())
    assert.equal("two", s:receive())
    assert.is_false(s:dirty())
    c:close(); s:close()
  end)

  it("shuts down one direction", function()
    local c, s = pair()
    c:send("bye")
    assert.equal(1, c:shutdown("send"))
    assert.equal("bye", s:receive("*a"))
    assert.equal(6, s:send("still\n"))
    assert.equal("still", c:receive())
    c:close(); s:close()
  end)

  it("serves two tasks reading one socket one call at a time", function()
    local c, s = pair()
    local got = {}
    weft.run(function()
      local t1 = weft.async(function() got[1] = s:receive() end)
      local t2 = weft.async(function() got[2] = s:receive() end)
      weft.async(function() c:send("first\nsecond\n") end)
      weft.await({ t1, t2 })
    end)
    assert.same({ "first", "second" }, got)
    c:close(); s:close()
  end)

  it("a socket the collector takes is closed", function()
    local s, port = listener()
    local peer
    weft.run(function()
      local t = weft.async(function() peer = s:accept() end)
      do local c = assert(socket.connect("127.0.0.1", port)); c:send("x") end
      weft.await(t)
      collectgarbage(); collectgarbage()
      assert.same({ nil, "closed", "x" }, { peer:receive(2) })
    end)
    peer:close(); s:close()
  end)

  it("adopts a descriptor with setfd", function()
    local c, s = pair()
    local fd = c:getfd()
    local m = socket.tcp()
    assert.equal(1, m:setfd(fd))
    assert.equal("tcp{client}", m.class)
    m:send("via setfd\n")
    assert.equal("via setfd", s:receive())
    s:close(); m:close()
    c.h = nil -- (the descriptor went to m)
  end)
end)

describe("weft.socket udp", function()
  it("sends and receives datagrams, unconnected and connected", function()
    local u = socket.udp()
    assert.matches("^udp{unconnected}: 0x%x+$", tostring(u))
    assert.equal(1, u:setsockname("127.0.0.1", 0))
    local host, port = u:getsockname()
    local v = socket.udp()
    assert.equal(5, v:sendto("dgram", host, port))
    local data, from, fport = u:receivefrom()
    assert.same({ "dgram", "127.0.0.1" }, { data, from })
    assert.equal(1, v:setpeername(host, port))
    assert.equal("udp{connected}", v.class)
    assert.same({ host, port, "inet" }, { v:getpeername() })
    assert.equal(3, v:send("two"))
    assert.equal("tw", u:receive(2)) -- cut to the size asked for
    u:settimeout(0)
    assert.same({ nil, "timeout" }, { u:receive() })
    assert.equal(1, v:setpeername("*"))
    assert.equal("udp{unconnected}", v.class)
    assert.is_true(fport > 0)
    u:close(); v:close()
  end)
end)

describe("weft.socket functions", function()
  it("sleep suspends the task, gettime is the wall clock", function()
    local t = socket.gettime()
    assert.is_true(math.abs(t - os.time()) < 2)
    local order = {}
    weft.run(function()
      local a = weft.async(function() socket.sleep(0.02); order[#order + 1] = "slept" end)
      weft.async(function() order[#order + 1] = "other" end)
      weft.await(a)
    end)
    assert.same({ "other", "slept" }, order)
    socket.sleep(0) -- returns at once
    socket.sleep(-1)
  end)

  it("select returns LuaSocket's shape", function()
    local c, s = pair()
    local r, w, err = socket.select({ s }, { c }, 1)
    assert.same({ 0, 1, true }, { #r, #w, w[c] })
    assert.is_nil(err)
    c:send("x\ny\n")
    assert.equal("x", s:receive())
    -- s is dirty: ready at once, even with nothing left to read on the descriptor
    r = socket.select({ s }, nil, 1)
    assert.same({ s, [s] = true }, r)
    assert.equal("y", s:receive())
    r, w, err = socket.select({ s }, nil, 0)
    assert.same({ {}, {}, "timeout" }, { r, w, err })
    c:close(); s:close()
  end)

  it("raises for bad arguments, naming them", function()
    local m = socket.tcp()
    local c, s = pair()
    assert.has_error(function() m:receive() end,
      "bad argument #1 to 'receive' (tcp{client} expected, got tcp{master})")
    assert.has_error(function() c.receive({}) end,
      "bad argument #1 to 'receive' (tcp{client} expected, got table)")
    assert.has_error(function() c:receive("*x") end, "bad argument #1 to 'receive' (invalid receive pattern)")
    assert.has_error(function() c:receive(-1) end, "bad argument #1 to 'receive' (invalid receive pattern)")
    assert.has_error(function() c:receive("*l", {}) end, "bad argument #2 to 'receive' (string expected, got table)")
    assert.has_error(function() c:send({}) end, "bad argument #1 to 'send' (string expected, got table)")
    assert.has_error(function() c:send("x", 1.5) end,
      "bad argument #2 to 'send' (number has no integer representation)")
    assert.has_error(function() c:settimeout("x") end, "bad argument #1 to 'settimeout' (number expected, got string)")
    assert.has_error(function() c:settimeout(1, "x") end, "bad argument #2 to 'settimeout' (invalid timeout mode)")
    assert.has_error(function() c:setoption("nope", true) end, "bad argument #1 to 'setoption' (unsupported option 'nope')")
    assert.has_error(function() c:setoption("keepalive", 1) end,
      "bad argument #2 to 'setoption' (boolean expected, got number)")
    assert.has_error(function() c:getoption("nope") end, "bad argument #1 to 'getoption' (unsupported option 'nope')")
    assert.has_error(function() c:shutdown("x") end, "bad argument #1 to 'shutdown' (invalid option 'x')")
    assert.has_error(function() m:connect(1, 80) end, "bad argument #1 to 'connect' (string expected, got number)")
    assert.has_error(function() m:connect("127.0.0.1", 70000) end,
      "bad argument #2 to 'connect' (port must be an integer in 0..65535)")
    assert.has_error(function() m:listen("x") end, "bad argument #1 to 'listen' (integer expected, got string)")
    assert.has_error(function() socket.sleep("x") end, "bad argument #1 to 'sleep' (number expected, got string)")
    assert.has_error(function() socket.select(1) end, "bad argument #1 to 'select' (table expected, got number)")
    assert.has_error(function() socket.select({ 1 }) end, "bad argument #1 to 'select' (element 1 has no getfd method)")
    assert.has_error(function() socket.udp():send("x") end,
      "bad argument #1 to 'send' (udp{connected} expected, got udp{unconnected})")
    -- the loop still works
    c:send("ok\n")
    assert.equal("ok", s:receive())
    m:close(); c:close(); s:close()
  end)
end)

-- ---- LuaSocket's own libraries -----------------------------------------------

local http = require "socket.http"
local ltn12 = require "ltn12"
local smtp = require "socket.smtp"
local url = require "socket.url"

-- python3 -m http.server on dir (port 0: the kernel picks): the process,
-- the port.  Its listen backlog is raised from socketserver's 5, which
-- drops connections when 20 clients connect at once (curl too).
local function http_server(dir)
  local p = assert(weft.process.spawn { "env", "-u", "LD_PRELOAD", "python3", "-u", "-c",
    "import runpy, socketserver, sys; socketserver.TCPServer.request_queue_size = 128; "
      .. "sys.argv[1:] = ['0', '--bind', '127.0.0.1', '--directory', sys.argv[1]]; "
      .. "runpy.run_module('http.server', run_name='__main__')", dir,
    stdout = "pipe", stderr = "null" })
  local line = assert(p.stdout:read("l"))
  p:unref() -- weft.run need not wait for it
  return p, tonumber(line:match("port (%d+)"))
end

local function stop(p)
  p:kill()
  p:wait()
  p.stdout:close()
end

describe("socket.http with weft.socket.tcp", function()
  local dir, server, port
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    local all = table.concat(bytes)
    local sizes = { 0, 1, 1000, 100000, 1 << 20 }
    for i, n in ipairs(sizes) do
      local f = assert(io.open(dir .. "/f" .. i, "wb"))
      f:write(all:rep(n // 256 + 1):sub(1, n))
      f:close()
    end
    server, port = http_server(dir)
  end)
  teardown(function()
    stop(server)
    os.execute("rm -rf " .. dir)
  end)

  it("runs 20 requests at once from tasks, each byte-identical to curl's", function()
    local urls = {}
    for i = 1, 20 do
      urls[i] = i % 6 == 0 and ("http://127.0.0.1:%d/"):format(port)
        or ("http://127.0.0.1:%d/f%d"):format(port, i % 6)
    end
    local bodies = weft.run(function()
      local tasks = {}
      for i, u in ipairs(urls) do
        tasks[i] = weft.async(function()
          local t = {}
          local ok, code = http.request { url = u, create = socket.tcp, sink = ltn12.sink.table(t) }
          assert(ok, code)
          assert.equal(200, code)
          return table.concat(t)
        end)
      end
      local out = {}
      for i, r in ipairs(weft.await(tasks)) do out[i] = r[1] end
      return out
    end)
    for i, u in ipairs(urls) do
      local curl = assert(io.popen("env -u LD_PRELOAD curl -s " .. u))
      local want = curl:read("a")
      curl:close()
      assert.is_true(bodies[i] == want, "body " .. i .. " differs from curl's for " .. u)
    end
  end)

  it("works in the main chunk too (it runs the loop)", function()
    local body, code = http.request(("http://127.0.0.1:%d/f3"):format(port))
    assert.equal(200, code) -- LuaSocket's own sockets, for comparison
    local t = {}
    assert.equal(1, (http.request { url = ("http://127.0.0.1:%d/f3"):format(port),
      create = socket.tcp, sink = ltn12.sink.table(t) }))
    assert.equal(body, table.concat(t))
  end)

  it("a server that answers slowly does not delay the other tasks", function()
    local slow, sport = listener()
    local release = weft.event()
    local done = {}
    weft.run(function()
      weft.async(function() -- the slow server: answers once released
        local c = slow:accept()
        c:receive() -- the request line
        release:wait()
        c:send("HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nslow")
        c:close()
      end)
      local slow_task = weft.async(function()
        local t = {}
        http.request { url = ("http://127.0.0.1:%d/"):format(sport), create = socket.tcp,
          sink = ltn12.sink.table(t) }
        done[#done + 1] = table.concat(t)
      end)
      local fast = {}
      for i = 1, 5 do
        fast[i] = weft.async(function()
          local t = {}
          http.request { url = ("http://127.0.0.1:%d/f2"):format(port), create = socket.tcp,
            sink = ltn12.sink.table(t) }
          done[#done + 1] = #table.concat(t) -- f2: 1 byte
        end)
      end
      weft.await(fast)
      assert.equal("pending", slow_task:status()) -- the fast ones finished first
      release:set()
      weft.await(slow_task)
    end)
    assert.same({ 1, 1, 1, 1, 1, "slow" }, done)
    slow:close()
  end)

  it("http.TIMEOUT becomes a weft timeout: a silent server gives 'timeout'", function()
    local silent, sport = listener()
    local old = http.TIMEOUT
    http.TIMEOUT = 0.05
    local r = { weft.run(function()
      local held
      weft.async(function() held = silent:accept() end)
      local res = { http.request { url = ("http://127.0.0.1:%d/"):format(sport), create = socket.tcp } }
      held:close()
      return table.unpack(res)
    end) }
    http.TIMEOUT = old
    assert.same({ nil, "timeout" }, r)
    silent:close()
  end)

  it("cancelling a task mid-request closes its socket", function()
    local srv, sport = listener()
    local made, peer
    weft.run(function()
      local accepted = weft.event()
      weft.async(function()
        peer = srv:accept()
        peer:receive() -- the request line: the client now waits for the answer
        accepted:set()
      end)
      local t = weft.async(function()
        return http.request { url = ("http://127.0.0.1:%d/"):format(sport),
          create = function() made = socket.tcp(); return made end }
      end)
      accepted:wait()
      t:cancel("no longer needed")
      local ok, err = pcall(weft.await, t)
      assert.is_false(ok)
      assert.is_true(weft.is_cancelled(err))
      peer:settimeout(5)
      local rest, err = peer:receive("*a") -- the rest of the request, then the end
      assert.is_nil(err)
      assert.matches("\r\n\r\n$", rest)
      assert.equal(-1, made:getfd())
    end)
    peer:close(); srv:close()
  end)

  it("streams a chunked request body from an ltn12 source and a chunked answer into a sink", function()
    local srv, sport = listener()
    local body = {}
    for i = 1, 300 do body[i] = ("line %d of the upload\n"):format(i) end
    body = table.concat(body)
    local seen = {}
    local got = weft.run(function()
      weft.async(function() -- echoes the chunked upload back, upper-cased, chunked
        local c = srv:accept()
        repeat
          local line = c:receive()
          seen[#seen + 1] = line and line:lower()
        until line == ""
        local parts = {}
        while true do
          local size = tonumber(c:receive(), 16)
          if size == 0 then c:receive(); break end
          parts[#parts + 1] = c:receive(size)
          c:receive() -- the CRLF after the chunk
        end
        local up = table.concat(parts):upper()
        c:send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        for i = 1, #up, 1000 do
          local chunk = up:sub(i, i + 999)
          c:send(("%x\r\n%s\r\n"):format(#chunk, chunk))
        end
        c:send("0\r\n\r\n")
        c:close()
      end)
      local t = {}
      local ok, code = http.request { url = ("http://127.0.0.1:%d/up"):format(sport), method = "POST",
        create = socket.tcp, source = ltn12.source.string(body), sink = ltn12.sink.table(t) }
      assert.same({ 1, 200 }, { ok, code })
      return table.concat(t)
    end)
    assert.equal(body:upper(), got)
    local chunked = false
    for _, h in ipairs(seen) do chunked = chunked or h == "transfer-encoding: chunked" end
    assert.is_true(chunked)
    srv:close()
  end)

  it("pumps an ltn12 source into LuaSocket's socket sink and out of its socket source", function()
    local luasocket = require "socket"
    local c, s = pair()
    local data = ("0123456789"):rep(10000)
    local t = {}
    weft.run(function()
      local w = weft.async(function()
        assert(ltn12.pump.all(ltn12.source.string(data), luasocket.sink("close-when-done", c)))
      end)
      assert(ltn12.pump.all(luasocket.source("until-closed", s), (ltn12.sink.table(t))))
      weft.await(w)
    end)
    assert.equal(data, table.concat(t))
    s:close()
  end)

  it("parses URLs with socket.url (pure Lua, unaffected)", function()
    local u = url.parse("http://user@127.0.0.1:8080/a/b?q=1#f")
    assert.same({ "127.0.0.1", "8080", "/a/b" }, { u.host, u.port, u.path })
  end)
end)

describe("socket.smtp with weft.socket.tcp", function()
  it("sends a message to an SMTP sink written with weft", function()
    local srv, sport = listener()
    local log, data = {}, nil
    local r = { weft.run(function()
      weft.async(function()
        local c = srv:accept()
        c:send("220 sink ready\r\n")
        while true do
          local line = c:receive()
          log[#log + 1] = line
          local verb = line:match("^(%u+)")
          if verb == "EHLO" then
            c:send("250-sink\r\n250 OK\r\n")
          elseif verb == "DATA" then
            c:send("354 go on\r\n")
            local lines = {}
            while true do
              local l = c:receive()
              if l == "." then break end
              lines[#lines + 1] = l
            end
            data = table.concat(lines, "\n")
            c:send("250 queued\r\n")
          elseif verb == "QUIT" then
            c:send("221 bye\r\n")
            break
          else
            c:send("250 OK\r\n")
          end
        end
        c:close()
      end)
      return smtp.send {
        from = "<a@example.org>", rcpt = { "<b@example.org>", "<c@example.org>" },
        server = "127.0.0.1", port = sport, create = socket.tcp,
        source = smtp.message { headers = { subject = "hi" }, body = "first line\r\nsecond line" },
      }
    end) }
    assert.same({ 1 }, r)
    assert.equal("MAIL FROM:<a@example.org>", log[2])
    assert.same({ "RCPT TO:<b@example.org>", "RCPT TO:<c@example.org>", "DATA" },
      { log[3], log[4], log[5] })
    assert.truthy(("\n" .. data):find("\nSubject: hi\n", 1, true)) -- (headers in any order)
    assert.matches("first line\nsecond line$", data)
    srv:close()
  end)
end)

describe("socket.http over weft.tls", function()
  it("fetches https:// with create = weft.socket.tls(opts), verifying the server", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("sh tests/tls/mkcerts.sh " .. dir), "mkcerts.sh failed")
    -- openssl s_server -www answers GET / with a page about the session
    local p = assert(weft.process.spawn { "env", "-u", "LD_PRELOAD", "openssl", "s_server",
      "-accept", "0", "-naccept", "2", "-www", "-cert", dir .. "/server.pem",
      "-key", dir .. "/server.key", stdout = "pipe", stderr = "null" })
    local port
    repeat
      local line = assert(p.stdout:read("l"), "s_server did not start")
      port = line:match("^ACCEPT .*:(%d+)$")
    until port
    p:unref()
    local u = ("https://localhost:%s/"):format(port)
    local good, bad = weft.run(function()
      -- without the test's CA the server's certificate is refused
      local refused = { http.request { url = u, create = socket.tls() } }
      local t = {}
      local ok, code = http.request { url = u, create = socket.tls { cafile = dir .. "/ca.pem" },
        sink = ltn12.sink.table(t) }
      return { ok, code, table.concat(t) }, refused
    end)
    p:kill()
    p:wait()
    p.stdout:close()
    os.execute("rm -rf " .. dir)
    assert.same({ 1, 200 }, { good[1], good[2] })
    assert.matches("Protocol%s*: TLSv1", good[3])
    assert.is_nil(bad[1])
    assert.matches("certificate verify failed", bad[2])
    assert.has_error(function() socket.tls(5) end, "bad argument #1 to 'tls' (table expected, got number)")
  end)
end)
