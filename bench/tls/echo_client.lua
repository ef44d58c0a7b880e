-- The echo load: N connections, each a closed loop of one 64-byte message
-- and its echo, for DUR seconds after a 1 s warm-up; prints messages/s.
-- weft on both sides, so TLS and plain TCP meet the same client.
-- usage: lua5.4 echo_client.lua tls|plain CA PORT N DUR
local weft = require "weft"
local mode, ca, port, n, dur = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
local MSG = string.rep("x", 64)
local count, counting, stop = 0, false, false
weft.run(function()
  local tasks = {}
  for i = 1, n do
    tasks[i] = weft.async(function()
      local c
      if mode == "tls" then
        c = assert(weft.tls.connect("127.0.0.1", port, { cafile = ca, servername = "localhost" }))
      else
        c = assert(weft.tcp.connect("127.0.0.1", port))
      end
      while not stop do
        c:write(MSG)
        assert(c:read(64))
        if counting then count = count + 1 end
      end
      c:close()
    end)
  end
  weft.delay(1000)
  counting = true
  local t0 = weft.now()
  weft.delay(dur * 1000)
  counting = false
  local t1 = weft.now()
  stop = true
  weft.await(tasks)
  print(string.format("RESULT value=%.0f", count / ((t1 - t0) / 1000)))
end)
