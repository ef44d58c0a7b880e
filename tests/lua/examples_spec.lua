-- The network examples, started on a free port and talked to.
local weft = require "weft"
local helper = require "helper"

-- Starts examples/<name>.lua on a free port, with more arguments if
-- given, and with at most `fds` descriptors if given; returns the process
-- and its port.
local function start(name, args, fds)
  local argv = { "env", "LUA_CPATH=" .. package.cpath, "LUA_PATH=" .. package.path,
    "lua5.4", "examples/" .. name .. ".lua", "0", table.unpack(args or {}) }
  if fds then
    table.insert(argv, 1, "sh")
    table.insert(argv, 2, "-c")
    table.insert(argv, 3, 'ulimit -n ' .. fds .. ' && exec "$@"')
    table.insert(argv, 4, "sh")
  end
  argv.stdout = "pipe"
  local p = assert(weft.process.spawn(argv))
  local line = p.stdout:read("l")
  local port = tonumber(line and line:match(":(%d+)$"))
  assert(port, "the example did not start: " .. tostring(line))
  return p, port
end

local function stop(p)
  p:kill()
  p:wait()
  p.stdout:close()
end

after_each(function() helper.assert_clean(weft) end)

-- Reads one response: status, headers, body (de-chunked).
local function response(c)
  local line = c:read("l")
  if not line then return nil end
  local status = tonumber(line:match("^HTTP/1%.1 (%d+)"))
  local headers = {}
  while true do
    local h = c:read("l")
    if h == "\r" or h == "" then break end
    local k, v = h:match("^([^:]+):%s*(.-)\r$")
    headers[k:lower()] = v
  end
  if headers["transfer-encoding"] == "chunked" then
    local parts = {}
    while true do
      local size = tonumber(c:read("l"):match("^(%x+)"), 16)
      if size == 0 then c:read("l") break end
      parts[#parts + 1] = c:read(size)
      c:read("l")
    end
    return status, headers, table.concat(parts)
  end
  return status, headers, c:read(tonumber(headers["content-length"]))
end

describe("examples/http_server.lua", function()
  local server, port
  before_each(function() server, port = start("http_server") end)
  after_each(function() stop(server) end)

  it("answers several requests on one keep-alive connection", function()
    local c <close> = assert(weft.tcp.connect("127.0.0.1", port))
    for _ = 1, 3 do
      c:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      local status, _, body = response(c)
      assert.equal(200, status)
      assert.equal("Hello World!", body)
    end
    c:write("POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
    local status, _, body = response(c)
    assert.same({ 200, "hello" }, { status, body })
  end)

  it("streams a chunked response while other connections are served", function()
    -- (no weft.run here: the running server process keeps the loop alive)
    do
      local slow = weft.async(function()
        local c <close> = assert(weft.tcp.connect("127.0.0.1", port))
        c:write("GET /chunked HTTP/1.1\r\n\r\n")
        local status, headers, body = response(c)
        return status, headers["transfer-encoding"], body
      end)
      local fast = weft.async(function()
        local c <close> = assert(weft.tcp.connect("127.0.0.1", port))
        c:write("GET /nope HTTP/1.1\r\n\r\n")
        return (response(c))
      end)
      assert.equal(404, weft.await(fast))
      local status, te, body = weft.await(slow)
      assert.equal(200, status)
      assert.equal("chunked", te)
      assert.equal("chunk 1\nchunk 2\nchunk 3\nchunk 4\nchunk 5\n", body)
    end
  end)

  it("closes after Connection: close and rejects garbage", function()
    local c <close> = assert(weft.tcp.connect("127.0.0.1", port))
    c:write("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert.equal(200, (response(c)))
    assert.is_nil(c:read(1)) -- closed by the server
    local d <close> = assert(weft.tcp.connect("127.0.0.1", port))
    d:write("NOT HTTP\r\n\r\n")
    assert.equal(400, (response(d)))
  end)
end)

describe("examples/http_server.lua against clients that misbehave", function()
  it("answers 414 and 431 for a line over 8 KiB and 431 past 100 headers, then closes", function()
    local server, port = start("http_server")
    finally(function() stop(server) end)
    local function ask(request)
      local c <close> = assert(weft.tcp.connect("127.0.0.1", port))
      c:write(request)
      local status = response(c)
      assert.is_nil(c:read(1)) -- closed by the server
      return status
    end
    local function headers(n, line)
      local h = {}
      for i = 1, n do h[i] = line or ("X-" .. i .. ": y\r\n") end
      return table.concat(h)
    end
    assert.equal(414, ask("GET /" .. ("a"):rep(9000) .. " HTTP/1.1\r\n\r\n"))
    assert.equal(431, ask("GET / HTTP/1.1\r\nX: " .. ("b"):rep(9000) .. "\r\n\r\n"))
    assert.equal(431, ask("GET / HTTP/1.1\r\n" .. headers(101) .. "\r\n"))
    -- at the limits: 100 headers, lines of 8 KiB (with their "\r")
    local c <close> = assert(weft.tcp.connect("127.0.0.1", port))
    local full = "X: " .. ("b"):rep(8192 - 4) .. "\r\n"
    c:write("GET / HTTP/1.1\r\n", headers(99), full, "\r\n")
    assert.equal(200, (response(c)))
  end)

  it("drops a client that trickles its head (slowloris) after the head timeout", function()
    local server, port = start("http_server", { "200" })
    local trickle
    finally(function() trickle:cancel(); stop(server) end)
    local c <close> = assert(weft.tcp.connect("127.0.0.1", port))
    c:settimeout(20000) -- (only if the server kept the client forever)
    trickle = weft.async(function()
      assert(c:write("GET / HTTP/1.1\r\n"))
      for i = 1, math.huge do
        if not c:write("X-" .. i .. ": y\r\n") then return end
        weft.delay(10)
      end
    end)
    assert.equal(408, (response(c)))
    assert.is_nil(c:read(1)) -- closed by the server
  end)

  it("keeps serving with its descriptors used up, and serves a waiting client once one frees", function()
    local server, port = start("http_server", nil, 24)
    finally(function() stop(server) end)
    -- Each keep-alive client holds one of the server's descriptors; past
    -- the limit a client waits in the backlog (its read times out here).
    local served, waiting = {}, nil
    for _ = 1, 40 do
      local c = assert(weft.tcp.connect("127.0.0.1", port))
      c:write("GET / HTTP/1.1\r\n\r\n")
      c:settimeout(1000)
      local status = response(c)
      if not status then waiting = c break end
      assert.equal(200, status)
      served[#served + 1] = c
    end
    assert(waiting, "the server never ran out of descriptors")
    -- Out of descriptors, the server still answers the clients it holds
    -- (an accept loop that spun would starve them)...
    served[1]:settimeout(20000)
    served[1]:write("GET / HTTP/1.1\r\n\r\n")
    assert.equal(200, (response(served[1])))
    -- ...and serves the waiting client once a descriptor frees.
    served[2]:close()
    waiting:settimeout(20000)
    assert.equal(200, (response(waiting)))
    for i, c in ipairs(served) do if i ~= 2 then c:close() end end
    waiting:close()
  end)
end)

describe("examples/http_server.lua --tls and examples/https_get.lua", function()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("sh tests/tls/mkcerts.sh " .. dir), "mkcerts.sh failed")
  teardown(function() os.execute("rm -rf " .. dir) end)

  local M = tonumber(os.getenv("WEFT_TEST_TIMEOUT_MULTIPLIER") or "1")

  it("serve HTTPS and fetch several URLs at once, each within a limit", function()
    local server, port = start("http_server", { "--tls", dir .. "/server.pem", dir .. "/server.key" })
    -- a server that accepts and never answers: its fetch hits the limit
    local silent = assert(weft.tcp.listen("127.0.0.1", 0))
    local _, sport = silent:sockname()
    local held = weft.async(function() return silent:accept() end)
    local base = "https://localhost:" .. port
    local p = assert(weft.process.spawn { "env", "LUA_CPATH=" .. package.cpath, "LUA_PATH=" .. package.path,
      "lua5.4", "examples/https_get.lua", "--cafile", dir .. "/ca.pem", "--timeout", tostring(500 * M),
      base .. "/", "https://localhost:" .. sport .. "/", base .. "/nope", stdout = "pipe" })
    local out = p.stdout:read("a")
    assert.equal(0, p:wait())
    assert.equal(base .. "/\t200\t12 bytes\n" ..
      "https://localhost:" .. sport .. "/\ttimed out\n" ..
      base .. "/nope\t404\t10 bytes\n", out)
    weft.await(held):close()
    silent:close()
    -- curl too, with keep-alive over two requests
    local curl = assert(weft.process.spawn { "env", "-u", "LD_PRELOAD", "curl", "-sS", "--cacert", dir .. "/ca.pem",
      "--resolve", "localhost:" .. port .. ":127.0.0.1", base .. "/", base .. "/", stdout = "pipe" })
    assert.equal("Hello World!Hello World!", curl.stdout:read("a"))
    assert.equal(0, curl:wait())
    stop(server)
  end)
end)

describe("examples/chat.lua", function()
  it("relays lines between clients, with nicknames and /who", function()
    local server, port = start("chat")
    local a = assert(weft.tcp.connect("127.0.0.1", port))
    assert.equal("welcome, guest1", a:read("l"))
    local b = assert(weft.tcp.connect("127.0.0.1", port))
    assert.equal("welcome, guest2", b:read("l"))
    assert.equal("guest2 joined", a:read("l"))
    b:write("/nick bob\n")
    assert.equal("you are bob", b:read("l"))
    assert.equal("guest2 is now bob", a:read("l"))
    a:write("hello bob\n")
    assert.equal("guest1: hello bob", b:read("l"))
    b:write("/who\n")
    assert.equal("here: bob, guest1", b:read("l"))
    b:write("/quit\n")
    assert.is_nil(b:read("l"))
    assert.equal("bob left", a:read("l"))
    a:close()
    b:close()
    stop(server)
  end)
end)

describe("examples/offload.lua", function()
  it("answers / while /hash runs in a worker, and logs through a channel", function()
    local server, port = start("offload")
    local function get(path)
      local c <close> = assert(weft.tcp.connect("127.0.0.1", port))
      c:write("GET " .. path .. " HTTP/1.1\r\n\r\n")
      local status, length = c:read("l"), nil
      repeat
        local h = c:read("l")
        length = length or tonumber(h:match("^Content%-Length: (%d+)"))
      until h == "\r"
      return status, c:read(length)
    end
    local slow = weft.async(get, "/hash?n=30000000")
    local _, body = get("/")
    assert.equal("Hello World!", body)
    assert.equal("pending", slow:status()) -- the hash takes far longer
    local status, digest = weft.await(slow)
    assert.equal("HTTP/1.1 200 OK\r", status)
    assert.matches("^%x%x%x%x%x%x%x%x\n$", digest)
    assert.matches("^worker %d+: 30000000 rounds$", server.stdout:read("l"))
    stop(server)
  end)
end)
