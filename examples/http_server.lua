-- A small HTTP/1.1 server: one task per connection, straight-line code.
-- Keep-alive, request bodies by Content-Length, and a chunked response.
--   lua5.4 examples/http_server.lua [port]     (0 or nothing: a free port)
-- Routes: GET /            -> "Hello World!"
--         GET /chunked     -> five chunks, 10 ms apart (Transfer-Encoding: chunked)
--         POST /echo       -> the request body back
--         anything else    -> 404
local weft = require "weft"

local server = assert(weft.tcp.listen("127.0.0.1", tonumber(arg and arg[1]) or 0))
local _, port = server:sockname()
io.stdout:write("listening on 127.0.0.1:", port, "\n")
io.stdout:flush()

local reasons = { [200] = "OK", [400] = "Bad Request", [404] = "Not Found", [413] = "Payload Too Large" }

local function respond(c, status, body, headers)
  local head = { ("HTTP/1.1 %d %s\r\n"):format(status, reasons[status]) }
  for k, v in pairs(headers or {}) do head[#head + 1] = k .. ": " .. v .. "\r\n" end
  head[#head + 1] = "Content-Length: " .. #body .. "\r\n\r\n"
  return c:write(table.concat(head), body)
end

-- Reads one request: method, path, headers, body; nil at end of stream.
local function read_request(c)
  local line = c:read("l")
  if not line then return nil end
  local method, path, version = line:match("^(%u+) (%S+) HTTP/(%d%.%d)\r?$")
  if not method then return false end
  local headers = {}
  while true do
    local h = c:read("l")
    if not h then return nil end
    if h == "" or h == "\r" then break end
    local k, v = h:match("^([^:]+):%s*(.-)\r?$")
    if k then headers[k:lower()] = v end
  end
  local body = ""
  local length = tonumber(headers["content-length"] or "0")
  if not length or length > 1 << 20 then return false, 413 end
  if length > 0 then
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
  c:settimeout(30000) -- idle keep-alive connections go after 30 s
  while true do
    local req, status = read_request(c)
    if req == nil then break end
    if req == false then respond(c, status or 400, "bad request\n", { Connection = "close" }) break end
    local ok
    if req.method == "GET" and req.path == "/" then
      ok = respond(c, 200, "Hello World!", { ["Content-Type"] = "text/plain" })
    elseif req.method == "GET" and req.path == "/chunked" then
      ok = chunked(c)
    elseif req.method == "POST" and req.path == "/echo" then
      ok = respond(c, 200, req.body, { ["Content-Type"] = "application/octet-stream" })
    else
      ok = respond(c, 404, "not found\n")
    end
    local conn = (req.headers.connection or ""):lower()
    if not ok or conn == "close" or (req.version == "1.0" and conn ~= "keep-alive") then break end
  end
  c:close()
end

weft.run(function()
  while true do
    local c = server:accept()
    if c then weft.async(serve, c) end
  end
end)
