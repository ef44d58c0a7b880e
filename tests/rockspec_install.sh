#!/bin/sh
# Installs weft with `luarocks make` into a temporary tree from a copy of the
# sources, then requires it from there and runs a timer.
# usage: rockspec_install.sh SOURCE_DIR
set -eu
src=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
cp -r "$src/CMakeLists.txt" "$src/cmake" "$src/csrc" "$src/bindings" "$src/rockspec" \
      "$src/meta" "$src/docs" "$work/src/"
cd "$work/src"
luarocks --lua-version=5.4 --tree="$work/tree" make rockspec/weft-scm-1.rockspec \
  > "$work/luarocks.log" 2>&1 || { cat "$work/luarocks.log"; exit 1; }
LUA_CPATH="$work/tree/lib/lua/5.4/?.so" LUA_PATH="$work/tree/share/lua/5.4/?.lua" \
  lua5.4 -e '
    local weft = require "weft"
    assert(package.searchpath("weft", package.cpath):find("/tree/lib/lua/5.4/"))
    local fired = false
    weft.once(1, function() fired = true end)
    weft.run()
    assert(fired)
    assert(weft.mutex and weft.channel, "the embedded Lua parts are missing")
    print("installed " .. weft._VERSION .. " runs")'
meta=$(find "$work/tree" -path '*weft/scm-1/meta/weft.lua')
[ -n "$meta" ] || { echo "LuaLS annotations were not installed" >&2; exit 1; }
echo "annotations at ${meta#$work/tree/}"
