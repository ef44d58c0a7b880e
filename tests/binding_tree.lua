-- The Lua binding's C files form a tree (docs/design.md): a file uses the
-- functions and variables of files below it only, never one above, so no
-- two files depend on each other, directly or around a circle.
-- usage: lua5.4 binding_tree.lua SOURCE_DIR
local dir = assert(arg[1], "usage: binding_tree.lua SOURCE_DIR") .. "/bindings/lua/"
local files = {}
local p = assert(io.popen("ls " .. dir .. "*.c"))
for path in p:lines() do files[#files + 1] = path:match("[^/]+$") end
p:close()

-- Each file's code without comments and strings (a name in a comment is
-- not a use).
local code = {}
for _, f in ipairs(files) do
  local src = assert(io.open(dir .. f)):read("a")
  src = src:gsub("/%*.-%*/", " "):gsub("//[^\n]*", " "):gsub('"[^"\n]*"', '""')
  code[f] = src
end

-- Who defines each shared name: a function at column 0 that is not static
-- (static ones are private to their file), and a variable defined there
-- (`const char lweft_fire_key = 0, lweft_where_key = 0;` defines two).
local owner = {}
local function own(name, f)
  assert(not owner[name] or owner[name] == f, name .. " defined twice")
  owner[name] = f
end
for _, f in ipairs(files) do
  for line in (code[f] .. "\n"):gmatch("([^\n]*)\n") do
    if not line:match("^static") and not line:match("^typedef") and not line:match(";%s*$") then
      local name = line:match("^[%a_][%w_ %*]-[ %*]([%a_][%w_]*)%s*%(")
      if name then own(name, f) end
    end
  end
  for list in code[f]:gmatch("\nconst char ([^;\n]+);") do
    for name in list:gmatch("([%a_][%w_]*) = ") do own(name, f) end
  end
end

local deps = {}
for _, f in ipairs(files) do
  deps[f] = {}
  for name in code[f]:gmatch("%f[%w_]([%a_][%w_]*)%f[^%w_]") do
    local o = owner[name]
    if o and o ~= f then deps[f][o] = name end
  end
end

-- A depth-first search for a circle.
local state, stack = {}, {}
local function visit(f)
  state[f] = "open"
  stack[#stack + 1] = f
  local names = {}
  for d in pairs(deps[f]) do names[#names + 1] = d end
  table.sort(names)
  for _, d in ipairs(names) do
    if state[d] == "open" then
      local from
      for i, s in ipairs(stack) do if s == d then from = i end end
      local circle = {}
      for i = from, #stack do
        local a, b = stack[i], stack[i + 1] or d
        circle[#circle + 1] = ("%s (%s)"):format(a, deps[a][b])
      end
      io.stderr:write("the binding's files depend on each other in a circle: ",
        table.concat(circle, " -> "), " -> ", d, "\n")
      os.exit(1)
    elseif not state[d] then
      visit(d)
    end
  end
  stack[#stack] = nil
  state[f] = "done"
end
table.sort(files)
for _, f in ipairs(files) do if not state[f] then visit(f) end end
print(("binding tree ok: %d files"):format(#files))
