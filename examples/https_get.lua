-- Fetches several https:// URLs at once, each within a time limit, and
-- prints a line per URL, in order: its status and body size, or why not.
--   lua5.4 examples/https_get.lua [--cafile CA.pem] [--timeout MS] URL...
-- The servers are verified against the system's trust store, or CA.pem.
local weft = require "weft"

local cafile, limit, urls = nil, 5000, {}
local i = 1
while arg[i] do
  if arg[i] == "--cafile" then
    cafile, i = arg[i + 1], i + 2
  elseif arg[i] == "--timeout" then
    limit, i = assert(tonumber(arg[i + 1]), "--timeout MS"), i + 2
  else
    urls[#urls + 1], i = arg[i], i + 1
  end
end

-- One GET: the status and the body, or nil and why.
local function get(url)
  local host, port, path = url:match("^https://([^/:]+):?(%d*)(/?[^#]*)")
  if not host then return nil, "not an https:// URL" end
  local s <close>, err = weft.tls.connect(host, tonumber(port) or 443,
    { cafile = cafile, alpn = { "http/1.1" } })
  if not s then return nil, err end
  s:write("GET ", path == "" and "/" or path, " HTTP/1.1\r\nHost: ", host,
    "\r\nConnection: close\r\n\r\n")
  local line, rerr = s:read("l")
  if not line then return nil, rerr or "no response" end
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  if not status then return nil, "not HTTP: " .. line end
  local length
  repeat
    local h = s:read("l")
    if not h then return nil, "truncated headers" end
    length = length or tonumber(h:lower():match("^content%-length:%s*(%d+)"))
  until h == "\r" or h == ""
  local body, berr = s:read(length or "a")
  if not body then return nil, berr or "truncated body" end
  return status, body
end

weft.run(function()
  local tasks = {}
  for n, url in ipairs(urls) do tasks[n] = weft.async(get, url) end
  for n, url in ipairs(urls) do
    -- (awaiting with a limit cancels a task that is still going: its
    -- connection closes)
    local ok, status, body = pcall(weft.await, tasks[n], limit)
    if not ok then
      print(url, weft.is_timeout(status) and "timed out" or tostring(status))
    elseif not status then
      print(url, "failed: " .. body)
    else
      print(url, status, #body .. " bytes")
    end
  end
end)
