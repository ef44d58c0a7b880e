-- TLS streams against real peers: openssl s_server and s_client, curl,
-- and weft itself, with certificates made for the run by the openssl
-- command (tests/tls/mkcerts.sh).
local weft = require "weft"
local helper = require "helper"

local M = tonumber(os.getenv("WEFT_TEST_TIMEOUT_MULTIPLIER") or "1")
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("sh tests/tls/mkcerts.sh " .. dir), "mkcerts.sh failed")
local function pem(name) return dir .. "/" .. name end
local CA = pem("ca.pem")

after_each(function()
  weft.on_error(nil)
  helper.assert_clean(weft)
end)

teardown(function() os.execute("rm -rf " .. dir) end)

-- A weft TLS server on a free port, with the server certificate unless
-- opts names another: the server, its port.
local function server(opts)
  opts = opts or {}
  if not opts.cert then opts.cert, opts.key = pem("server.pem"), pem("server.key") end
  local srv = assert(weft.tls.listen("127.0.0.1", 0, opts))
  local _, port = srv:sockname()
  return srv, port
end

-- A connected pair: the client's stream, the server's.
local function tls_pair(copts, sopts)
  local srv, port = server(sopts)
  local accepted = weft.async(function() return assert(srv:accept()) end)
  local c = assert(weft.tls.connect("localhost", port, copts or { cafile = CA }))
  local s = weft.await(accepted)
  srv:close()
  return c, s
end

-- Starts a command with its stdin and stdout piped (stderr too when
-- asked), without the sanitizer runtime an ASan build preloads.
local function spawn(argv, stderr)
  local cmd = { "env", "-u", "LD_PRELOAD", stdin = "pipe", stdout = "pipe", stderr = stderr or "null" }
  for _, a in ipairs(argv) do cmd[#cmd + 1] = a end
  return assert(weft.process.spawn(cmd))
end

-- openssl s_server for one connection, with extra arguments: the process
-- and its port.
local function s_server(args, cert)
  local argv = { "openssl", "s_server", "-accept", "0", "-naccept", "1",
    "-cert", pem((cert or "server") .. ".pem"), "-key", pem((cert or "server") .. ".key") }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local p = spawn(argv)
  while true do
    local line = assert(p.stdout:read("l"), "s_server did not start")
    local port = line:match("^ACCEPT .*:(%d+)$")
    if port then return p, tonumber(port) end
  end
end

-- The sockets this process holds open.  Sockets only: a thread pool an
-- earlier spec left behind closes its workers' descriptors when they idle
-- out, at any time; and collected first, so that a stream an earlier spec
-- dropped is not finalized in the middle of a count.
local function fd_count()
  collectgarbage()
  collectgarbage()
  local p = assert(io.popen("ls -l /proc/" .. helper.pid() .. "/fd"))
  local n = 0
  for line in p:lines() do
    if line:find("socket:", 1, true) then n = n + 1 end
  end
  p:close()
  return n
end

-- A plain TCP server that accepts and says nothing: the server, its port,
-- and a promise of the accepted stream.
local function silent_server()
  local srv = assert(weft.tcp.listen("127.0.0.1", 0))
  local _, port = srv:sockname()
  return srv, port, weft.async(function() return assert(srv:accept()) end)
end

describe("weft.tls.connect", function()
  it("talks to openssl s_server, verifying it and sending SNI", function()
    local p, port = s_server { "-servername", "localhost", "-cert2", pem("server.pem"), "-key2", pem("server.key") }
    local s = assert(weft.tls.connect("localhost", port, { cafile = CA }))
    s:write("hello from weft\n")
    p.stdin:write("hello from openssl\n")
    assert.equal("hello from openssl", s:read("l"))
    local info = s:tls_info()
    assert.equal("TLSv1.3", info.version)
    assert.equal("localhost", info.servername)
    assert.is_false(info.resumed)
    local cert = s:peer_certificate()
    assert.equal("O=weft test,CN=localhost", cert.subject)
    assert.equal("CN=weft test CA", cert.issuer)
    assert.same({ "localhost", "127.0.0.1" }, cert.san)
    assert.equal(30 * 86400, cert.not_after - cert.not_before)
    assert.truthy(cert.pem:find("^%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-\n"))
    assert.equal(95, #cert.fingerprint)
    assert.is_true(s:close())
    local out = p.stdout:read("a")
    p.stdin:close()
    assert.equal(0, p:wait())
    assert.truthy(out:find('Hostname in TLS extension: "localhost"', 1, true), out)
    assert.truthy(out:find("hello from weft", 1, true), out)
  end)

  it("offers ALPN, and the server's choice is s:alpn()", function()
    local p, port = s_server { "-alpn", "http/1.1" }
    local s = assert(weft.tls.connect("localhost", port, { cafile = CA, alpn = { "h2", "http/1.1" } }))
    assert.equal("http/1.1", s:alpn())
    assert.equal("http/1.1", s:tls_info().alpn)
    s:close()
    local out = p.stdout:read("a")
    p.stdin:close()
    p:wait()
    assert.truthy(out:find("ALPN protocols advertised by the client: h2, http/1.1", 1, true), out)
  end)

  it("speaks TLS 1.2 to a 1.2 server, unless min_version is 1.3", function()
    local p, port = s_server { "-tls1_2" }
    local s, msg, code = weft.tls.connect("localhost", port, { cafile = CA, min_version = "1.3" })
    assert.is_nil(s)
    assert.equal("connect: tlsv1 alert protocol version", msg)
    assert.equal("ETLS", code)
    p.stdin:close()
    p:wait()
    p, port = s_server { "-tls1_2" }
    s = assert(weft.tls.connect("localhost", port, { cafile = CA }))
    assert.equal("TLSv1.2", s:tls_info().version)
    s:close()
    p.stdin:close()
    p:wait()
  end)

  it("refuses renegotiation", function()
    local p, port = s_server { "-tls1_2" }
    local s = assert(weft.tls.connect("localhost", port, { cafile = CA }))
    p.stdin:write("R\n") -- s_server asks to renegotiate; refused, it gives up
    assert.same({ nil, "read: sslv3 alert handshake failure", "ETLS" }, { s:read("l") })
    s:close()
    local out = p.stdout:read("a")
    p.stdin:close()
    p:wait()
    assert.truthy(out:find("ERROR\n", 1, true), out)
    assert.truthy(out:find(" 1 server accepts that finished", 1, true), out) -- (the first handshake only)
  end)

  it("refuses each bad certificate with its reason", function()
    local cases = {
      { "self", "certificate verify failed: self-signed certificate" },
      { "expired", "certificate verify failed: certificate has expired" },
      { "wrong", "certificate verify failed: hostname mismatch" },
    }
    for _, case in ipairs(cases) do
      local srv, port = server { cert = pem(case[1] .. ".pem"), key = pem(case[1] .. ".key") }
      local accepting = weft.async(function() return srv:accept(50 * M) end)
      local s, msg, code = weft.tls.connect("localhost", port, { cafile = CA })
      assert.is_nil(s)
      assert.equal("connect: " .. case[2], msg)
      assert.equal("ECERT", code)
      assert.same({ nil, "timeout", "ETIMEDOUT" }, { weft.await(accepting) })
      srv:close()
    end
    -- A CA the client does not trust (the system store has no test CA).
    local srv, port = server()
    local accepting = weft.async(function() return srv:accept(50 * M) end)
    local s, msg, code = weft.tls.connect("localhost", port)
    assert.is_nil(s)
    assert.equal("connect: certificate verify failed: unable to get local issuer certificate", msg)
    assert.equal("ECERT", code)
    weft.await(accepting)
    srv:close()
  end)

  it("connects to anything with verify = false", function()
    local c, s = tls_pair({ verify = false }, { cert = pem("self.pem"), key = pem("self.key") })
    c:write("x\n")
    assert.equal("x", s:read("l"))
    assert.equal("CN=localhost", c:peer_certificate().subject)
    c:close()
    s:close()
  end)

  it("resumes its session with the same server", function()
    local srv, port = server()
    local served = weft.async(function()
      for _ = 1, 2 do
        local s = assert(srv:accept())
        s:write("hi\n")
        assert.is_nil(s:read("l")) -- the client's close_notify: a clean end
        s:close()
      end
    end)
    for i = 1, 2 do
      local c = assert(weft.tls.connect("localhost", port, { cafile = CA }))
      assert.equal(i == 2, c:tls_info().resumed)
      assert.equal("hi", c:read("l")) -- (the session arrives after the handshake)
      c:close()
    end
    weft.await(served)
    srv:close()
  end)

  it("gives up a silent server's handshake after handshake_timeout", function()
    local srv, port, accepted = silent_server()
    local s, msg, code = weft.tls.connect("127.0.0.1", port,
      { cafile = CA, handshake_timeout = 20 * M })
    assert.is_nil(s)
    assert.equal("connect: handshake timed out", msg)
    assert.equal("ETIMEDOUT", code)
    weft.await(accepted):close()
    srv:close()
  end)

  it("cancelled in its handshake, leaves no descriptor or watcher behind", function()
    local before = fd_count()
    local srv, port, accepted = silent_server()
    local t = weft.async(function() return weft.tls.connect("127.0.0.1", port, { cafile = CA }) end)
    local peer = weft.await(accepted) -- connected: the client waits in its handshake
    t:cancel()
    assert.is_false(pcall(weft.await, t))
    -- The client's end is closed: the peer reads its ClientHello, then
    -- the end.
    assert.truthy(peer:read("a"))
    peer:close()
    srv:close()
    assert.equal(before, fd_count())
  end)

  it("reports a missing file as nil, message, code naming it", function()
    local s, msg, code = weft.tls.connect("localhost", 1, { cafile = "/nonexistent/ca.pem" })
    assert.is_nil(s)
    assert.equal("connect: cafile '/nonexistent/ca.pem': not found", msg)
    assert.equal("ENOENT", code)
  end)

  it("raises for a bad argument or option", function()
    local function bad(opts)
      return function() weft.tls.connect("localhost", 443, opts) end
    end
    assert.has_error(bad { cafle = CA }, "bad argument #3 to 'connect' (unknown option 'cafle')")
    assert.has_error(bad { client_cafile = CA }, "bad argument #3 to 'connect' (unknown option 'client_cafile')")
    assert.has_error(bad { cafile = 1 }, "bad argument #3 to 'connect' (field 'cafile' must be a string)")
    assert.has_error(bad { verify = "no" }, "bad argument #3 to 'connect' (field 'verify' must be a boolean)")
    assert.has_error(bad { alpn = "h2" }, "bad argument #3 to 'connect' (field 'alpn' must be a list of strings)")
    assert.has_error(bad { alpn = { "" } }, "bad argument #3 to 'connect' (field 'alpn' must be a list of names of 1 to 255 bytes)")
    assert.has_error(bad { min_version = "1.1" }, "bad argument #3 to 'connect' (field 'min_version' must be '1.2' or '1.3')")
    assert.has_error(bad { handshake_timeout = -1 }, "bad argument #3 to 'connect' (field 'handshake_timeout' must be a number >= 0)")
    assert.has_error(bad { key = "k.pem" }, "bad argument #3 to 'connect' (field 'key' needs 'cert')")
    assert.has_error(bad "x", "bad argument #3 to 'connect' (table expected, got string)")
    assert.has_error(function() weft.tls.connect(1, 443) end, "bad argument #1 to 'connect' (string expected, got number)")
    assert.has_error(function() weft.tls.connect("localhost", "https") end,
      "bad argument #2 to 'connect' (integer expected, got string)")
    -- The loop still works.
    local c, s = tls_pair()
    c:close()
    s:close()
  end)
end)

describe("weft.tls.listen", function()
  it("serves openssl s_client, which verifies it and gets its ALPN choice", function()
    local srv, port = server { alpn = { "h2", "http/1.1" } }
    local served = weft.async(function()
      local s = assert(srv:accept())
      local line = s:read("l")
      s:write("echo: ", line, "\n")
      local info = s:tls_info()
      s:close()
      return info
    end)
    local p = spawn({ "openssl", "s_client", "-connect", "127.0.0.1:" .. port, "-servername", "localhost",
      "-alpn", "http/1.1", "-CAfile", CA, "-verify_return_error", "-brief" }, "pipe")
    p.stdin:write("hello\n")
    assert.equal("echo: hello", p.stdout:read("l"))
    local info = weft.await(served)
    assert.equal("localhost", info.servername)
    assert.equal("http/1.1", info.alpn)
    p.stdin:close()
    local err = p.stderr:read("a")
    p:wait()
    assert.truthy(err:find("Verification: OK", 1, true), err)
    srv:close()
  end)

  it("serves curl over HTTPS", function()
    local srv, port = server { alpn = { "http/1.1" } }
    local served = weft.async(function()
      local s = assert(srv:accept())
      local request = s:read("l")
      repeat local h = s:read("l") until h == "\r" or h == nil
      s:write("HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n")
      s:close()
      return request
    end)
    local p = spawn { "curl", "-sS", "--cacert", CA, "--resolve", "localhost:" .. port .. ":127.0.0.1",
      "https://localhost:" .. port .. "/x" }
    p.stdin:close()
    assert.equal("hello\n", p.stdout:read("a"))
    assert.equal(0, p:wait())
    assert.equal("GET /x HTTP/1.1\r", weft.await(served))
    srv:close()
  end)

  it("handshakes concurrently: a silent client does not delay another", function()
    local srv, port = server { handshake_timeout = 60000 }
    local silent = assert(weft.tcp.connect("127.0.0.1", port))
    local accepted = weft.async(function() return assert(srv:accept()) end)
    local c = assert(weft.tls.connect("localhost", port, { cafile = CA }))
    local s = weft.await(accepted)
    c:write("first\n")
    assert.equal("first", s:read("l"))
    -- The silent client is still in its handshake, not dropped.
    silent:settimeout(0)
    assert.same({ nil, "timeout", "ETIMEDOUT" }, { silent:read(1) })
    silent:close()
    c:close()
    s:close()
    srv:close()
  end)

  it("drops a silent client after handshake_timeout", function()
    local srv, port = server { handshake_timeout = 20 * M }
    local silent = assert(weft.tcp.connect("127.0.0.1", port))
    local accepting = weft.async(function() return srv:accept() end)
    assert.equal("", silent:read("a")) -- the server closed it
    silent:close()
    srv:close()
    assert.same({ nil, "closed", "ECLOSED" }, { weft.await(accepting) })
  end)

  it("keeps the loop alive only while an accept waits", function()
    local out, ok = helper.run_script(string.format([[
      local weft = require "weft"
      weft.run(function()
        local srv = assert(weft.tls.listen("127.0.0.1", 0, { cert = %q, key = %q }))
        local _, port = srv:sockname()
        local accepted = weft.async(function() return srv:accept() end)
        local c = assert(weft.tls.connect("localhost", port, { cafile = %q }))
        weft.await(accepted):close()
        c:close()
      end) -- returns, though the server stays open: nothing waits on it
      print("done")
    ]], pem("server.pem"), pem("server.key"), CA))
    assert.is_true(ok, out)
    assert.equal("done\n", out)
  end)

  it("requires client certificates signed by client_cafile", function()
    local srv, port = server { client_cafile = CA }
    local accepting = weft.async(function() return srv:accept() end)
    -- Without one: TLS 1.3 tells the client on its first read.
    local c = assert(weft.tls.connect("localhost", port, { cafile = CA }))
    assert.same({ nil, "read: tlsv13 alert certificate required", "ETLS" }, { c:read("l") })
    c:close()
    -- With one: the server sees it.
    c = assert(weft.tls.connect("localhost", port,
      { cafile = CA, cert = pem("client.pem"), key = pem("client.key") }))
    local s = weft.await(accepting)
    assert.equal("O=weft test,CN=weft client", s:peer_certificate().subject)
    c:close()
    s:close()
    srv:close()
  end)

  it("closing the server closes the handshakes in flight and ends accepts", function()
    local srv, port = server()
    local silent = assert(weft.tcp.connect("127.0.0.1", port))
    silent:write("\22") -- (one byte of a record: its handshake waits for more)
    -- A client that connects after it is accepted after it: once that one
    -- is through, the silent one is in its handshake.
    local accepting = weft.async(function() return srv:accept() end)
    local c = assert(weft.tls.connect("localhost", port, { cafile = CA }))
    weft.await(accepting):close()
    c:close()
    accepting = weft.async(function() return srv:accept() end)
    weft.async(function() srv:close() end)
    assert.same({ nil, "closed", "ECLOSED" }, { weft.await(accepting) })
    assert.equal("", silent:read("a"))
    silent:close()
  end)

  it("reports a missing certificate file as nil, message, code naming it", function()
    local srv, msg, code = weft.tls.listen("127.0.0.1", 0, { cert = "/nonexistent/srv.pem" })
    assert.is_nil(srv)
    assert.equal("listen: cert '/nonexistent/srv.pem': not found", msg)
    assert.equal("ENOENT", code)
    srv, msg, code = weft.tls.listen("127.0.0.1", 0, { cert = pem("server.pem"), key = pem("wrong.key") })
    assert.is_nil(srv)
    assert.equal("listen: key '" .. pem("wrong.key") .. "': key values mismatch", msg)
    assert.equal("ETLS", code)
  end)

  it("raises for a bad argument or option", function()
    local cert, key = pem("server.pem"), pem("server.key")
    assert.has_error(function() weft.tls.listen("127.0.0.1", 0, {}) end,
      "bad argument #3 to 'listen' (field 'cert' is required)")
    assert.has_error(function() weft.tls.listen("127.0.0.1", 0, { cert = cert, servername = "x" }) end,
      "bad argument #3 to 'listen' (unknown option 'servername')")
    assert.has_error(function() weft.tls.listen("127.0.0.1", 0, { cert = cert, key = key, client_cafile = true }) end,
      "bad argument #3 to 'listen' (field 'client_cafile' must be a string)")
    local srv = server()
    assert.has_error(function() srv:accept(-1) end, "bad argument #1 to 'accept' (timeout must be >= 0)")
    srv:close()
    assert.has_error(function() srv:accept() end, "attempt to use a closed server")
  end)
end)

describe("TLS streams", function()
  it("move 1 MiB each way at once", function()
    local c, s = tls_pair()
    local data = {}
    for i = 1, 65536 do data[i] = string.format("%015d\n", i) end
    data = table.concat(data)
    local writers = { weft.async(function() return c:write(data) end),
      weft.async(function() return s:write(data) end) }
    assert.equal(data, s:read(#data))
    local n = 0
    for line in c:lines() do
      n = n + 1
      assert.equal(string.format("%015d", n), line)
      if n == 65536 then break end
    end
    assert.equal(c, weft.await(writers[1]))
    assert.equal(s, weft.await(writers[2]))
    c:close()
    assert.equal("", s:read("a")) -- close_notify: a clean end of file
    s:close()
  end)

  it("keep timeouts and the failure convention of streams", function()
    local c, s = tls_pair()
    c:settimeout(10 * M)
    assert.same({ nil, "timeout", "ETIMEDOUT" }, { c:read("l") })
    s:write("late\n")
    assert.equal("late", c:read("l"))
    s:close()
    assert.is_nil(c:read("l"))
    c:close()
    assert.same({ nil, "closed", "ECLOSED" }, { c:close() })
    assert.has_error(function() c:read() end, "attempt to use a closed stream")
  end)

  it("report a peer that stops mid-record as a truncation", function()
    local srv, port = server()
    local served = weft.async(function()
      local s = assert(srv:accept())
      s:write(string.rep("x", 100000))
      s:read("a")
      s:close()
    end)
    -- A proxy that passes whole records until the first large one, then
    -- half of it, and hangs up.
    local proxy = assert(weft.tcp.listen("127.0.0.1", 0))
    local _, pport = proxy:sockname()
    local proxied = weft.async(function()
      local a = assert(proxy:accept())
      local b = assert(weft.tcp.connect("127.0.0.1", port))
      local up = weft.async(function()
        while true do
          local d = a:read(-65536)
          if not d then return end
          b:write(d)
        end
      end)
      while true do
        local head = assert(b:read(5))
        local len = head:byte(4) * 256 + head:byte(5)
        local body = assert(b:read(len))
        if len > 8000 then
          a:write(head, body:sub(1, len // 2))
          break
        end
        a:write(head, body)
      end
      a:close()
      b:close()
      pcall(weft.await, up)
    end)
    local c = assert(weft.tls.connect("localhost", pport, { cafile = CA, servername = "localhost" }))
    assert.same({ nil, "read: stream truncated: end without TLS close_notify", "ETRUNCATED" }, { c:read("a") })
    c:close()
    weft.await(proxied)
    weft.await(served)
    srv:close()
    proxy:close()
  end)

  it("say what they are only if TLS", function()
    local srv = assert(weft.tcp.listen("127.0.0.1", 0))
    local _, port = srv:sockname()
    local accepted = weft.async(function() return srv:accept() end)
    local c = assert(weft.tcp.connect("127.0.0.1", port))
    assert.has_error(function() c:alpn() end, "bad argument #1 to 'alpn' (TLS stream expected)")
    assert.has_error(function() c:peer_certificate() end, "bad argument #1 to 'peer_certificate' (TLS stream expected)")
    assert.has_error(function() c:tls_info() end, "bad argument #1 to 'tls_info' (TLS stream expected)")
    assert.has_error(function() weft.tls.wrap(c, { verify = true }) end,
      "bad argument #2 to 'wrap' (field 'servername' is required to verify the peer)")
    assert.has_error(function() weft.tls.wrap("x") end, "bad argument #1 to 'wrap' (weft.stream expected, got string)")
    assert.has_error(function() weft.tls.wrap(c, { server = true }) end,
      "bad argument #2 to 'wrap' (field 'cert' is required for a server)")
    c:close()
    weft.await(accepted):close()
    srv:close()
  end)
end)

-- OpenSSL reads ahead: one recv may bring the handshake's end with the
-- request written right after it, or many records at once, and a read
-- takes one record (or part of one).  What it holds is no longer on the
-- socket, so nothing may wait for the socket while it holds bytes.
describe("TLS streams, with records OpenSSL read ahead,", function()
  local LIMIT = 5000 * M

  -- Runs body in a task that must end within LIMIT (then it is
  -- cancelled), so that a lost request, a read that waits for ever or
  -- wakes for ever without progress, fails the test instead of hanging it.
  local function limited(body)
    return function() weft.await(weft.async(body), LIMIT) end
  end

  it("read a request the client wrote as its handshake ended", limited(function()
    local srv, port = server()
    local served = weft.async(function()
      local s = assert(srv:accept())
      s:settimeout(LIMIT)
      local line = { s:read("l") }
      s:write("got it\n")
      s:read("a")
      s:close()
      return line
    end)
    local c = assert(weft.tls.connect("localhost", port, { cafile = CA }))
    c:write("GET /\n") -- in the same pass as the handshake's last flight
    assert.equal("got it", c:read("l"))
    c:close()
    assert.same({ "GET /" }, weft.await(served))
    srv:close()
  end))

  it("read what openssl s_client sends as soon as its handshake ends", limited(function()
    local srv, port = server()
    local served = weft.async(function()
      local s = assert(srv:accept())
      s:settimeout(LIMIT)
      local line = { s:read("l") }
      s:write("got ", tostring(line[1]), "\n")
      return s, line
    end)
    -- s_client reads its input only once the handshake is done, and sends
    -- it then; its input stays open, so nothing follows the line.
    local p = spawn { "openssl", "s_client", "-connect", "127.0.0.1:" .. port, "-servername", "localhost",
      "-CAfile", CA, "-quiet" }
    p.stdin:write("hello\n")
    local s, line = weft.await(served)
    assert.same({ "hello" }, line)
    assert.equal("got hello", p.stdout:read("l"))
    s:close()
    p.stdin:close()
    p:wait()
    srv:close()
  end))

  it("read the lines of one record one by one, with nothing arriving after", limited(function()
    local c, s = tls_pair()
    s:write("one\ntwo\nthree\n")
    assert.equal("one", c:read("l"))
    assert.equal("two", c:read("l"))
    assert.equal("three", c:read("l"))
    c:close()
    s:close()
  end))

  it("read small counts from one big record", limited(function()
    local c, s = tls_pair()
    local big = string.rep("0123456789abcdef", 1000) -- one record (up to 16 KiB)
    s:write(big)
    local got = {}
    for i = 1, #big // 100 do got[i] = assert(c:read(100)) end
    assert.equal(big, table.concat(got))
    c:close()
    s:close()
  end))

  it("read many small records that came in together", limited(function()
    local c, s = tls_pair()
    for i = 1, 200 do s:write(i, "\n") end -- a record each, before any read
    for i = 1, 200 do assert.equal(tostring(i), c:read("l")) end
    c:close()
    s:close()
  end))

  it("count as readable for weft.socket's dirty() and select", limited(function()
    local srv, port = server()
    local served = weft.async(function()
      local s = assert(srv:accept())
      s:settimeout(LIMIT)
      for i = 1, 3 do s:write(i, "\n") end -- three records, in one recv
      local bye = s:read("l")
      s:close()
      return bye
    end)
    local c = weft.socket.tls { cafile = CA }()
    assert.equal(1, c:connect("localhost", port))
    assert.equal("1", c:receive())
    -- the other two wait in OpenSSL: the descriptor shows nothing
    assert.is_true(c:dirty())
    local r, _, err = weft.socket.select({ c }, nil)
    assert.same({ c, [c] = true }, r)
    assert.is_nil(err)
    assert.equal("2", c:receive())
    assert.equal("3", c:receive())
    assert.is_false(c:dirty())
    r, _, err = weft.socket.select({ c }, nil, 0)
    assert.same({}, r)
    assert.equal("timeout", err)
    c:send("bye\n")
    assert.equal("bye", weft.await(served))
    c:close()
    srv:close()
  end))
end)

describe("weft.tls.wrap", function()
  it("upgrades a plain connection in place (STARTTLS), keeping bytes read early", function()
    local srv = assert(weft.tcp.listen("127.0.0.1", 0))
    local _, port = srv:sockname()
    local accepted = weft.async(function() return assert(srv:accept()) end)
    local c = assert(weft.tcp.connect("127.0.0.1", port))
    local s = weft.await(accepted)
    srv:close()
    -- The client sends its ClientHello right after STARTTLS, so the
    -- server's read of that line takes (part of) it into its buffer.
    local client = weft.async(function()
      c:write("STARTTLS\n")
      return assert(weft.tls.wrap(c, { servername = "localhost", cafile = CA }))
    end)
    assert.equal("STARTTLS", s:read("l"))
    assert.equal(s, assert(weft.tls.wrap(s, { server = true, cert = pem("server.pem"),
      key = pem("server.key"), handshake_timeout = 5000 * M })))
    assert.equal(c, weft.await(client))
    c:write("secret\n")
    assert.equal("secret", s:read("l"))
    assert.has_error(function() weft.tls.wrap(c, { verify = false }) end,
      "bad argument #1 to 'wrap' (stream is already TLS)")
    c:close()
    s:close()
  end)

  it("refuses a stream with a read in progress", function()
    local r, w = weft.pipe()
    local started = weft.promise()
    local reading = weft.async(function()
      started:resolve()
      return r:read("l")
    end)
    weft.await(started) -- (the task went on into its read)
    assert.has_error(function() weft.tls.wrap(r, { verify = false }) end,
      "bad argument #1 to 'wrap' (stream is busy (a read in progress))")
    w:write("x\n")
    assert.equal("x", weft.await(reading))
    r:close()
    w:close()
  end)
end)

describe("many TLS connections", function()
  it("1,000 concurrent TLS connections on loopback each echo", function()
    local server = [[
      local weft = require "weft"
      local srv = assert(weft.tls.listen("127.0.0.1", 0, { cert = arg[1], key = arg[2], backlog = 2048,
        handshake_timeout = 120000 }))
      local _, port = srv:sockname()
      io.stdout:write(port, "\n") io.stdout:flush()
      weft.run(function()
        for _ = 1, 1000 do
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
      local port, ca = tonumber(arg[1]), arg[2]
      local ok, open = 0, 0
      weft.run(function()
        local tasks, all = {}, weft.promise()
        for i = 1, 1000 do
          tasks[i] = weft.async(function()
            local c = assert(weft.tls.connect("localhost", port, { cafile = ca, timeout = 120000,
              handshake_timeout = 120000 }))
            open = open + 1
            if open == 1000 then all:resolve() end
            weft.await(all) -- every connection is open at once
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
    local spath, cpath = helper.script_file(server), helper.script_file(client)
    local env = string.format("LUA_CPATH=%q LUA_PATH=%q", package.cpath, package.path)
    -- (spawned, not popen'd: a server left waiting after a failed client
    -- is killed instead of waited for)
    local srv = assert(weft.process.spawn { "sh", "-c", string.format("ulimit -n 2100 && exec env %s lua5.4 %s %s %s",
      env, spath, pem("server.pem"), pem("server.key")), stdout = "pipe" })
    local port = srv.stdout:read("l")
    assert.truthy(tonumber(port), "the server did not start")
    local cl = assert(weft.process.spawn { "sh", "-c", string.format("ulimit -n 2100 && exec env %s lua5.4 %s %s %s 2>&1",
      env, cpath, port, CA), stdout = "pipe" })
    local out = cl.stdout:read("a")
    local code = cl:wait()
    if code ~= 0 then srv:kill() end
    local scode = srv:wait()
    os.remove(spath)
    os.remove(cpath)
    assert.equal(0, code, out)
    assert.equal("echoed 1000\n", out)
    assert.equal(0, scode)
  end)
end)
