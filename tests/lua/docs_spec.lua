-- The docs are part of the feature: every Lua block in them runs, and every
-- public function has a reference entry and a LuaLS annotation.
local weft = require "weft"
local helper = require "helper"

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

local function lua_blocks(path)
  local blocks, text = {}, read(path)
  for block in text:gmatch("```lua\n(.-)```") do blocks[#blocks + 1] = block end
  return blocks
end

for _, doc in ipairs { "README.md", "docs/guide.md", "docs/reference.md" } do
  describe(doc, function()
    local blocks = lua_blocks(doc)
    it("has Lua examples", function() assert.is_true(#blocks > 0) end)
    for i, block in ipairs(blocks) do
      it("example " .. i .. " runs", function()
        local out, ok = helper.run_script(block)
        assert.is_true(ok, "example " .. i .. " of " .. doc .. " failed:\n" .. block .. "\n--\n" .. out)
      end)
    end
  end)
end

describe("the Lua reference", function()
  local names = {}
  for k, v in pairs(weft) do
    if type(v) == "function" then names[#names + 1] = k end
  end
  table.sort(names)
  local reference, meta = read("docs/reference.md"), read("meta/weft.lua")

  it("documents every function of the module", function()
    for _, name in ipairs(names) do
      assert.truthy(reference:find("### `weft." .. name .. "(", 1, true)
        or reference:find("`weft." .. name .. "(", 1, true), "weft." .. name)
    end
  end)

  it("annotation file parses and declares each thing once", function()
    assert(load(meta, "meta/weft.lua"))
    local seen = {}
    for decl in meta:gmatch("\nfunction ([%w_.:]+)%(") do
      assert.is_nil(seen[decl], "declared twice: " .. decl)
      seen[decl] = true
    end
  end)

  it("has a LuaLS annotation for every function, and no stale one", function()
    local annotated = {}
    for name in meta:gmatch("\nfunction weft%.([%w_]+)%(") do annotated[#annotated + 1] = name end
    table.sort(annotated)
    assert.same(names, annotated)
  end)
end)

describe("the fiber reference", function()
  local reference = read("docs/reference.md")
  it("documents every fiber method and function", function()
    local f = weft.fiber(function() end)
    local methods = getmetatable(f).__index
    for name in pairs(methods) do
      assert.truthy(reference:find("`f:" .. name .. "(", 1, true), "f:" .. name)
    end
    for name in pairs(weft.fiber) do
      assert.truthy(reference:find("`weft.fiber." .. name .. "(", 1, true), "weft.fiber." .. name)
    end
  end)
end)

describe("examples/demo.lua", function()
  it("runs and ends with the loop idle", function()
    local out, ok = helper.run_script(read("examples/demo.lua"))
    assert.is_true(ok, out)
    assert.matches("child says 4", out)
    assert.matches("ticker stopped after %d ticks", out)
    assert.matches("run%(%) returned: nothing left to wait for\n$", out)
  end)
end)
