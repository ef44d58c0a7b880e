rockspec_format = "3.0"
package = "weft"
version = "scm-1"
-- `luarocks make` builds the checkout it runs in; nothing is fetched.
source = {
  url = "git+file:///weft",
}
description = {
  summary = "A reactor for Lua 5.4 and C hosts: timers, immediates, fd and signal watchers",
  detailed = [[
weft is an event loop written in C over libuv, with a stable C ABI and a Lua
binding.  Lua scripts `require "weft"`; C hosts embed the same core.]],
  license = "MIT",
  labels = { "event-loop", "libuv", "async" },
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  LIBUV = { header = "uv.h" },
}
build = {
  type = "cmake",
  -- luarocks' cmake backend passes only what is listed here.
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_C_FLAGS = "$(CFLAGS)",
    CMAKE_MODULE_LINKER_FLAGS = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUA = "$(LUA)",
    -- The module goes to the rock's lib directory (luarocks deploys it to
    -- <tree>/lib/lua/5.4); weft.h, weft_lua.h, libweft.so, weft.pc and the
    -- CMake package to the tree itself, as to a prefix (cmake/install.cmake).
    WEFT_ROCK_PREFIX = "$(PREFIX)",
    WEFT_ROCK_LIBDIR = "$(LIBDIR)",
    WEFT_BUILD_TESTS = "OFF",
  },
  -- LuaLS annotations and the docs go into the rock's own directory, off
  -- the module path: point the language server's workspace.library there.
  copy_directories = { "meta", "docs" },
}
