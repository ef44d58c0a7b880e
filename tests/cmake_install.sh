#!/bin/sh
# Installs a build tree with `cmake --install` into a temporary prefix, checks
# the files a Lua user gets, and builds and runs a C host against the
# installed files only (installed_host.sh).  A staged install (DESTDIR) must
# still name the real prefix in weft.pc.
# usage: cmake_install.sh SOURCE_DIR BUILD_DIR
set -eu
src=$1 build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
die() { echo "cmake_install: $*" >&2; exit 1; }
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log" 2>&1 ||
  { cat "$work/install.log"; die "cmake --install failed"; }
[ -f "$work/prefix/lib/lua/5.4/weft.so" ] || die "no lib/lua/5.4/weft.so"
[ -f "$work/prefix/share/weft/meta/weft.lua" ] || die "no share/weft/meta/weft.lua"
if [ -n "$(find "$work/prefix" -path '*/lua/*' -name 'weft.lua' ! -path '*/meta/*')" ]; then
  die "a weft.lua on a Lua path would shadow weft.so"
fi
DESTDIR="$work/stage" cmake --install "$build" --prefix /opt/weft > "$work/stage.log" 2>&1 ||
  { cat "$work/stage.log"; die "the staged install failed"; }
grep -qx 'prefix=/opt/weft' "$work/stage/opt/weft/lib/pkgconfig/weft.pc" ||
  die "a staged weft.pc does not name its prefix /opt/weft"
sh "$src/tests/installed_host.sh" "$work/prefix" "$src/tests/install"
