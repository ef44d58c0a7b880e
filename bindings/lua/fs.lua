-- fs.lua: weft.fs, over the jobs of fs.c: every call runs its system calls
-- on libuv's thread pool, so a slow disk never stalls the loop.  A call
-- suspends a task (or runs the loop in the main chunk) and returns values,
-- or nil, message, code as Lua's io does; each has an _async twin.
-- Compiled into weft.so and run by luaopen_weft with (module, primitives,
-- task internals).
local weft, C = ...

local type, tostring = type, tostring
local getmetatable, setmetatable, math_type = getmetatable, setmetatable, math.type
local promise, await = weft.promise, weft.await

local fs = {}
weft.fs = fs

-- Misuse raises at the caller's position (argcheck.c).
local argerror, raise, nozero = C.argerror, C.raise, C.nozero

local function check_string(v, n, fname)
  if type(v) ~= "string" then argerror(n, fname, "string expected, got " .. type(v)) end
end

-- A path: a string without a zero byte (C would cut it there).
local function check_path(v, n, fname)
  check_string(v, n, fname)
  nozero(v, n, fname)
end

-- Runs job op with its arguments; returns its values, or nil, "op: path:
-- message", code.  `label` is what the message names (the path).
local function job(op, label, ...)
  local p = promise()
  local ok, msg, code = C.fs(op, p, ...)
  if not ok then return nil, op .. ": " .. msg, code end
  local done, a = pcall(await, p)
  if done then return a end
  if type(a) == "table" and a.kind == "io" then
    return nil, ("%s: %s%s"):format(op, label and (label .. ": ") or "", a.message), a.code
  end
  error(a, 0)
end

local twin = C.twin

local function check_mode(mode, n, fname, default)
  if mode == nil then return default end
  if math_type(mode) ~= "integer" or mode < 0 or mode > 4095 then
    argerror(n, fname, "mode must be an integer in 0..0o7777")
  end
  return mode
end

-- The calls that take one path and give the job's value.
for _, op in ipairs({ "readfile", "stat", "lstat", "unlink", "rmdir" }) do
  fs[op] = function(path)
    check_path(path, 1, op)
    return job(op, path, path)
  end
end

function fs.writefile(path, data, opts)
  check_path(path, 1, "writefile")
  check_string(data, 2, "writefile")
  if opts ~= nil and type(opts) ~= "table" then argerror(3, "writefile", "table expected, got " .. type(opts)) end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "atomic" and k ~= "mode" then argerror(3, "writefile", "unknown option '" .. tostring(k) .. "'") end
  end
  local mode = check_mode(opts.mode, 3, "writefile", 420) -- 0644
  return job("writefile", path, path, data, mode, opts.atomic)
end

function fs.mkdir(path, mode)
  check_path(path, 1, "mkdir")
  return job("mkdir", path, path, check_mode(mode, 2, "mkdir", 511)) -- 0777
end

function fs.rename(from, to)
  check_path(from, 1, "rename")
  check_path(to, 2, "rename")
  return job("rename", from, from, to)
end

function fs.readdir(path)
  check_path(path, 1, "readdir")
  local list, msg, code = job("readdir", path, path)
  if list then table.sort(list) end
  return list, msg, code
end

-- ---- open files ---------------------------------------------------------------

local File = { __name = "weft.file" }
File.__index = File

local function check_file(f, fname)
  if getmetatable(f) ~= File then argerror(1, fname, "weft.file expected, got " .. type(f)) end
  local fd = C.fdh_fd(f.h)
  if not fd then raise("attempt to use a closed file") end
  return fd
end

function fs.open(path, mode, perm)
  check_path(path, 1, "open")
  mode = mode or "r"
  check_string(mode, 2, "open")
  nozero(mode, 2, "open")
  local flags = C.fs_flags(mode)
  if not flags then argerror(2, "open", "invalid mode '" .. mode .. "'") end
  local h, msg, code = job("open", path, path, flags, check_mode(perm, 3, "open", 438)) -- 0666
  if not h then return nil, msg, code end
  return setmetatable({ h = h, path = path, pos = 0, append = mode:sub(1, 1) == "a" }, File)
end

-- Reads up to n bytes at offset (default: the file's position, which
-- then advances); nil at end of file.
function File:read(n, offset)
  local fd = check_file(self, "read")
  if math_type(n) ~= "integer" or n < 0 then argerror(1, "read", "byte count must be an integer >= 0") end
  if offset ~= nil and (math_type(offset) ~= "integer" or offset < 0) then
    argerror(2, "read", "offset must be an integer >= 0")
  end
  local data, msg, code = job("read", self.path, fd, n, offset or self.pos)
  if data and not offset then self.pos = self.pos + #data end
  return data, msg, code
end

-- Reads from the position to the end.
function File:readall()
  check_file(self, "readall")
  local parts = {}
  while true do
    local s, msg, code = self:read(1 << 20)
    if s == nil then
      if msg then return nil, msg, code end
      return table.concat(parts)
    end
    parts[#parts + 1] = s
  end
end

-- Writes data at offset (default: the file's position, which then
-- advances; a file opened for appending always writes at its end).
-- Returns the file, or nil, message, code.
function File:write(data, offset)
  local fd = check_file(self, "write")
  check_string(data, 1, "write")
  if offset ~= nil and (math_type(offset) ~= "integer" or offset < 0) then
    argerror(2, "write", "offset must be an integer >= 0")
  end
  local n, msg, code = job("write", self.path, fd, data, (self.append or offset) and (offset or 0) or self.pos)
  if not n then return nil, msg, code end
  if not offset and not self.append then self.pos = self.pos + n end
  return self
end

function File:seek(pos)
  check_file(self, "seek")
  if math_type(pos) ~= "integer" or pos < 0 then argerror(1, "seek", "position must be an integer >= 0") end
  self.pos = pos
  return self
end

function File:stat()
  local fd = check_file(self, "stat")
  return job("fstat", self.path, fd)
end

function File:sync()
  local fd = check_file(self, "sync")
  local ok, msg, code = job("fsync", self.path, fd)
  if not ok then return nil, msg, code end
  return self
end

function File:close()
  if getmetatable(self) ~= File then argerror(1, "close", "weft.file expected, got " .. type(self)) end
  local fd = C.fdh_fd(self.h)
  if not fd then return nil, "closed", "ECLOSED" end
  return job("close", self.path, C.fdh_release(self.h))
end
File.__close = function(f) if C.fdh_fd(f.h) then f:close() end end

function File:__tostring()
  return C.fdh_fd(self.h) and ("weft.file (%s)"):format(self.path) or "weft.file (closed)"
end

for _, name in ipairs({ "read", "write", "readall", "stat", "sync", "close" }) do
  File[name .. "_async"] = twin(File[name])
end
for _, name in ipairs({ "readfile", "writefile", "stat", "lstat", "mkdir", "rename", "unlink",
                        "rmdir", "readdir", "open" }) do
  fs[name .. "_async"] = twin(fs[name])
end
