-- The network examples, started on a free port and talked to.
local weft = require "weft"
local helper = require "helper"

-- Starts examples/<name>.lua; returns the process and its port.
local function start(name)
  local p = assert(weft.process.spawn { "env", "LUA_CPATH=" .. package.cpath, "LUA_PATH=" .. package.path,
    "lua5.4", "examples/" .. name .. ".lua", "0", stdout = "pipe" })
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

describe("examples/http_server.lua", function()
  local server, port
  before_each(function() server, port = start("http_server") end)
  after_each(function() stop(server) end)

  -- Reads one response: status, headers, body (de-chunked).
  local function response(c)
    local status = tonumber(c:read("l"):match("^HTTP/1%.1 (%d+)"))
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
