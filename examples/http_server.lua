-- A small HTTP/1.1 server: one task per connection, straight-line code.
-- Keep-alive, request bodies by Content-Length, and a chunked response;
-- HTTPS with --tls and a certificate and its key (PEM files).
--   lua5.4 examples/http_server.lua [port [head_timeout_ms]] [--tls CERT KEY]
--     (port 0 or nothing: a free port; head_timeout_ms: default 10000)
-- Routes: GET /            -> "Hello World!"
--         GET /chunked     -> five chunks, 10 ms apart (Transfer-Encoding: chunked)
--         POST /echo       -> the request body back
--         anything else    -> 404
-- What a client may send is bounded: a line of the head is at most 8 KiB
-- (414 for the request line, 431 for a header), a head has at most 100
-- headers (431), a body at most 1 MiB (413), and the whole head must
-- arrive within head_timeout_ms of the server starting to wait for it
-- (408), so a client that trickles its head a byte at a time (slowloris)
-- is dropped instead of holding a connection forever.
local weft = require "weft"

local args, cert, key = {}, nil, nil
local i = 1
while arg and arg[i] do
  if arg[i] == "--tls" then
    cert, key = assert(arg[i + 1], "--tls CERT KEY"), assert(arg[i + 2], "--tls CERT KEY")
    i = i + 3
  else
    args[#args + 1] = arg[i]
    i = i + 1
  end
end

local MAX_LINE, MAX_HEADERS, MAX_BODY = 8192, 100, 1 << 20
local HEAD_TIMEOUT = tonumber(args[2]) or 10000
local BODY_TIMEOUT = 30000

local server
if cert then -- the same server over TLS: only the listen differs
  server = assert(weft.tls.listen("127.0.0.1", tonumber(args[1]) or 0,
    { cert = cert, key = key, alpn = { "http/1.1" } }))
else
  server = assert(weft.tcp.listen("127.0.0.1", tonumber(args[1]) or 0))
end
local _, port = server:sockname()
io.stdout:write("listening on ", cert and "https://" or "", "127.0.0.1:", port, "\n")
io.stdout:flush()

local reasons = { [200] = "OK", [400] = "Bad Request", [404] = "Not Found", [408] = "Request Timeout",
  [413] = "Payload Too Large", [414] = "URI Too Long", [431] = "Request Header Fields Too Large" }

local function respond(c, status, body, headers)
  local head = { ("HTTP/1.1 %d %s\r\n"):format(status, reasons[status]) }
  for k, v in pairs(headers or {}) do head[#head + 1] = k .. ": " .. v .. "\r\n" end
  head[#head + 1] = "Content-Length: " .. #body .. "\r\n\r\n"
  head[#head + 1] = body
  return c:write(table.concat(head)) -- (one write: one TLS record, one send)
end

-- Reads one line of a request's head before the deadline: the line, or
-- nil and the status to answer with (nil: just close).
local function head_line(c, deadline, too_long)
  c:settimeout(math.max(0, deadline - weft.now()))
  local line, _, code = c:read("l")
  if line then return line end
  if code == "EMSGSIZE" then return nil, too_long end -- over MAX_LINE
  if code == "ETIMEDOUT" then return nil, 408 end
  return nil -- the client went away
end

-- Reads one request: a table, or nil and the status to answer with before
-- closing (nil: close at once).
local function read_request(c)
  local deadline = weft.now() + HEAD_TIMEOUT
  local line, status = head_line(c, deadline, 414)
  if not line then return nil, status end
  local method, path, version = line:match("^(%u+) (%S+) HTTP/(%d%.%d)\r?$")
  if not method then return nil, 400 end
  local headers, count = {}, 0
  while true do
    local h
    h, status = head_line(c, deadline, 431)
    if not h then return nil, status end
    if h == "" or h == "\r" then break end
    count = count + 1
    if count > MAX_HEADERS then return nil, 431 end
    local k, v = h:match("^([^:]+):%s*(.-)\r?$")
    if k then headers[k:lower()] = v end
  end
  local body = ""
  local length = tonumber(headers["content-length"] or "0")
  if not length or length < 0 then return nil, 400 end
  if length > MAX_BODY then return nil, 413 end
  if length > 0 then
    c:settimeout(BODY_TIMEOUT)
    body = c:read(length)
    if not body or #body < length then return nil end
  end
  return { method = method, path = path, version = version, headers = headers, body = body }
end

local function chunked(c)
  c:write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
  for i = 1, 5 do
    local piece = "chunk " .. i .. "\n"
    c:write(("%x\r\n"):format(#piece), piece, "\r\n")
    weft.delay(10) -- this task waits; every other connection goes on
  end
  return c:write("0\r\n\r\n")
end

local function serve(c)
  c:setoption("maxline", MAX_LINE)
  while true do
    local req, status = read_request(c)
    if not req then
      if status then respond(c, status, reasons[status]:lower() .. "\n", { Connection = "close" }) end
      break
    end
    c:settimeout(BODY_TIMEOUT) -- (for the response's writes)
    -- The client asked to close after this one: say so (a client then
    -- closes first, instead of reading our end as an error).
    local conn = (req.headers.connection or ""):lower()
    local last = conn == "close" or (req.version == "1.0" and conn ~= "keep-alive")
    local close = last and "close" or nil
    local ok
    if req.method == "GET" and req.path == "/" then
      ok = respond(c, 200, "Hello World!", { ["Content-Type"] = "text/plain", Connection = close })
    elseif req.method == "GET" and req.path == "/chunked" then
      ok = chunked(c)
    elseif req.method == "POST" and req.path == "/echo" then
      ok = respond(c, 200, req.body, { ["Content-Type"] = "application/octet-stream", Connection = close })
    else
      ok = respond(c, 404, "not found\n", { Connection = close })
    end
    if not ok or last then break end
  end
  c:close()
end

weft.run(function()
  while true do
    -- Out of descriptors, accept waits (backing off) while the open
    -- connections are served.  Any other failure is reported, and the
    -- loop pauses before it tries again rather than spin.
    local c, err = server:accept()
    if c then
      weft.async(serve, c)
    else
      io.stderr:write("accept: ", err, "\n")
      weft.delay(100)
    end
  end
end)
