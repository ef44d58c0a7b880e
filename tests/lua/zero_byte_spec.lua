-- Strings that reach C as C strings (paths, hosts, services, argv and
-- environment entries, TLS options, module and function names) would be
-- cut at their first zero byte: "a\0b" would name "a".  Each is refused
-- with an argument error saying so, before anything is created, connected
-- or run; the loop works after.  (issue 14, item 10)
local weft = require "weft"
local helper = require "helper"

after_each(function()
  weft.on_error(nil)
  helper.assert_clean(weft)
end)

local function zero(n, fname, what)
  return ("bad argument #%d to '%s' (%s contains a zero byte)"):format(n, fname, what or "string")
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

describe("a string with a zero byte", function()
  local tmp

  before_each(function() tmp = helper.mkdtemp(weft) end)
  after_each(function() helper.rmtree(tmp) end)

  it("is refused as a path by weft.fs, creating nothing", function()
    local a = tmp .. "/a"
    local bad = a .. "\0b"
    assert(weft.fs.writefile(tmp .. "/old", "x"))
    for _, c in ipairs({
      { function() return weft.fs.writefile(bad, "x") end, zero(1, "writefile") },
      { function() return weft.fs.mkdir(bad) end, zero(1, "mkdir") },
      { function() return weft.fs.open(bad, "w") end, zero(1, "open") },
      { function() return weft.fs.open(a, "w\0x") end, zero(2, "open") },
      { function() return weft.fs.rename(tmp .. "/old", bad) end, zero(2, "rename") },
      { function() return weft.fs.rename(bad, a) end, zero(1, "rename") },
      { function() return weft.fs.readfile(bad) end, zero(1, "readfile") },
      { function() return weft.fs.stat(bad) end, zero(1, "stat") },
      { function() return weft.fs.lstat(bad) end, zero(1, "lstat") },
      { function() return weft.fs.unlink(bad) end, zero(1, "unlink") },
      { function() return weft.fs.rmdir(bad) end, zero(1, "rmdir") },
      { function() return weft.fs.readdir(bad) end, zero(1, "readdir") },
      { function() return weft.fs.watch(bad) end, zero(1, "watch") },
    }) do
      assert.has_error(c[1], c[2])
    end
    assert.is_false(exists(a))
    assert.is_true(exists(tmp .. "/old"))
    assert.same({ "old" }, weft.fs.readdir(tmp))
    assert.is_true(helper.loop_works(weft))
  end)

  it("is refused as a Unix socket path, binding and connecting nothing", function()
    local path = tmp .. "/s"
    assert.has_error(function() weft.unix.listen(path .. "\0x") end, zero(1, "listen"))
    assert.is_false(exists(path))
    local srv = assert(weft.unix.listen(path))
    assert.has_error(function() weft.unix.connect(path .. "\0x") end, zero(1, "connect"))
    -- The first connection the server gets is the one made after.
    local c = assert(weft.unix.connect(path))
    c:write("second\n")
    local s = assert(srv:accept())
    assert.equal("second", s:read("l"))
    for _, x in ipairs({ c, s, srv }) do x:close() end
    assert.is_true(helper.loop_works(weft))
  end)

  it("is refused as a host or service, connecting nothing", function()
    local srv = assert(weft.tcp.listen("127.0.0.1", 0))
    local _, port = srv:sockname()
    local evil = "127.0.0.1\0evil"
    for _, c in ipairs({
      { function() return weft.tcp.connect(evil, port) end, zero(1, "connect") },
      { function() return weft.tcp.listen(evil, 0) end, zero(1, "listen") },
      { function() return weft.udp.bind(evil, 0) end, zero(1, "bind") },
      { function() return weft.tls.connect(evil, port) end, zero(1, "connect") },
      { function() return weft.tls.listen(evil, 0, { cert = "c", key = "k" }) end, zero(1, "listen") },
      { function() return weft.dns.getaddrinfo(evil, 80) end, zero(1, "getaddrinfo") },
      { function() return weft.dns.getaddrinfo("localhost", "80\0x") end, zero(2, "getaddrinfo") },
      { function() return weft.dns.getnameinfo(evil, 80) end, zero(1, "getnameinfo") },
      { function() return weft.socket.connect(evil, port) end, zero(1, "connect") },
      { function() return weft.socket.connect("127.0.0.1", port, evil) end, zero(3, "connect") },
      { function() return weft.socket.bind(evil, 0) end, zero(1, "bind") },
      { function() return weft.socket.tcp():connect(evil, port) end, zero(1, "connect") },
      { function() return weft.socket.tcp():bind(evil, 0) end, zero(1, "bind") },
      { function() return weft.socket.tcp():setoption("keepalive\0x", true) end, zero(1, "setoption") },
      { function() return weft.socket.udp():setpeername(evil, port) end, zero(1, "setpeername") },
      { function() return weft.socket.udp():setsockname(evil, 0) end, zero(1, "setsockname") },
      { function() return weft.socket.udp():sendto("x", evil, port) end, zero(2, "sendto") },
    }) do
      assert.has_error(c[1], c[2])
    end
    local u = assert(weft.udp.bind("127.0.0.1", 0))
    assert.has_error(function() u:sendto("x", evil, port) end, zero(2, "sendto"))
    u:close()
    -- The first connection the server gets is the one made after.
    local c = assert(weft.tcp.connect("127.0.0.1", port))
    local s = assert(srv:accept())
    assert.same({ c:sockname() }, { s:peername() })
    for _, x in ipairs({ c, s, srv }) do x:close() end
    collectgarbage()
    assert.is_true(helper.loop_works(weft))
  end)

  it("is refused in a TLS option, connecting nothing", function()
    local srv = assert(weft.tcp.listen("127.0.0.1", 0))
    local _, port = srv:sockname()
    for _, field in ipairs({ "cafile", "capath", "cert", "servername", "ciphers" }) do
      local opts = { [field] = "a\0b" }
      if field == "cert" then opts.key = "k" end
      assert.has_error(function() weft.tls.connect("127.0.0.1", port, opts) end,
        zero(3, "connect", "field '" .. field .. "'"))
    end
    assert.has_error(function() weft.tls.connect("127.0.0.1", port, { cert = "c", key = "a\0b" }) end,
      zero(3, "connect", "field 'key'"))
    assert.has_error(function() weft.tls.connect("127.0.0.1", port, { alpn = { "h2", "a\0b" } }) end,
      zero(3, "connect", "alpn[2]"))
    assert.has_error(function()
      weft.tls.listen("127.0.0.1", 0, { cert = "c", key = "k", client_cafile = "a\0b" })
    end, zero(3, "listen", "field 'client_cafile'"))
    local r, w = weft.pipe()
    assert.has_error(function() weft.tls.wrap(r, { servername = "a\0b" }) end,
      zero(2, "wrap", "field 'servername'"))
    assert.is_false(r.closed) -- (refused before the stream was touched)
    r:close()
    w:close()
    local c = assert(weft.tcp.connect("127.0.0.1", port))
    local s = assert(srv:accept())
    assert.same({ c:sockname() }, { s:peername() })
    for _, x in ipairs({ c, s, srv }) do x:close() end
    assert.is_true(helper.loop_works(weft))
  end)

  it("is refused in argv, env and cwd, running nothing", function()
    local marker = tmp .. "/ran"
    for _, c in ipairs({
      { function() return weft.process.spawn { "touch", marker .. "\0x" } end,
        zero(1, "spawn", "argv[2]") },
      { function() return weft.process.spawn { "touch\0x", marker } end, zero(1, "spawn", "argv[1]") },
      { function() return weft.process.spawn { "touch", marker, env = { A = "x\0y" } } end,
        zero(1, "spawn", 'env["A"]') },
      { function() return weft.process.spawn { "touch", marker, env = { ["A\0B"] = "x" } } end,
        zero(1, "spawn", "a name in field 'env'") },
      { function() return weft.process.spawn { "touch", marker, cwd = tmp .. "\0x" } end,
        zero(1, "spawn", "field 'cwd'") },
      { function() return weft.process.run { "touch", marker .. "\0x" } end, zero(1, "run", "argv[2]") },
      { function() return weft.process.run({ "touch", marker }, { env = { A = "\0" } }) end,
        zero(2, "run", 'env["A"]') },
      { function() return weft.process.run({ "touch", marker }, { cwd = tmp .. "\0x" }) end,
        zero(2, "run", "field 'cwd'") },
    }) do
      assert.has_error(c[1], c[2])
    end
    assert.is_false(exists(marker))
    local r = weft.process.run { "touch", marker }
    assert.equal(0, r.status)
    assert.is_true(exists(marker))
    assert.is_true(helper.loop_works(weft))
  end)

  it("is refused as a pool's init module or a job's function name, running nothing", function()
    assert.has_error(function() weft.pool { init = "string\0x" } end, zero(1, "pool", "field 'init'"))
    local pool = weft.pool { max = 1 }
    assert.has_error(function() pool:run("string.len\0x", "abc") end, zero(1, "run", "function name"))
    assert.has_error(function() weft.thread.run("string.len\0x", "abc") end,
      zero(1, "run", "function name"))
    assert.equal(3, weft.await(pool:run("string.len", "abc")))
    pool:close()
    assert.is_true(helper.loop_works(weft))
  end)
end)
