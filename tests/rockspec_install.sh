#!/bin/sh
# Runs the README's luarocks command (into a temporary tree, from a copy of
# the sources), then requires weft from that tree and runs a timer, checks
# the LuaLS annotations, and builds and runs a C host against the files the
# tree got for C hosts (installed_host.sh).
# usage: rockspec_install.sh SOURCE_DIR
set -eu
src=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The README's command, as a user on a stock Debian 12 types it: there a bare
# `luarocks make` picks Lua 5.1.
cmd=$(sed -n 's/^\(luarocks .* make .*\.rockspec\)[[:space:]]*$/\1/p' "$src/README.md")
[ -n "$cmd" ] && [ "$(echo "$cmd" | wc -l)" = 1 ] ||
  { echo "README.md: expected one line 'luarocks ... make ....rockspec', got '$cmd'" >&2; exit 1; }
mkdir "$work/src"
cp -r "$src/CMakeLists.txt" "$src/cmake" "$src/csrc" "$src/bindings" "$src/rockspec" \
      "$src/meta" "$src/docs" "$work/src/"
cd "$work/src"
echo "running: $cmd --tree=<tmp>"
# shellcheck disable=SC2086 # the command is a list of words
$cmd --tree="$work/tree" > "$work/luarocks.log" 2>&1 || { cat "$work/luarocks.log"; exit 1; }
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
sh "$src/tests/installed_host.sh" "$work/tree" "$src/tests/install"
