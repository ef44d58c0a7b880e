#!/bin/sh
# Fails when libweft exports anything but the symbols listed in weft.sym, or
# the Lua module anything but the functions its header weft_lua.h declares.
# usage: abi_symbols.sh LIBWEFT WEFT_SYM LUA_MODULE WEFT_LUA_H
set -eu
lib=$1 sym=$2 mod=$3 modh=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | LC_ALL=C sort > "$tmp/lib"
if ! diff -u "$sym" "$tmp/lib"; then
  echo "libweft's exported symbols differ from $sym (- listed, + exported)" >&2
  exit 1
fi
nm -D --defined-only "$mod" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | LC_ALL=C sort > "$tmp/mod"
sed -n 's/^WEFT_LUA_EXTERN .*[ *]\([a-z_0-9]*\)(.*/\1/p' "$modh" | LC_ALL=C sort > "$tmp/modh"
grep -qx luaopen_weft "$tmp/modh" || { echo "$modh does not declare luaopen_weft" >&2; exit 1; }
if ! diff -u "$tmp/modh" "$tmp/mod"; then
  echo "weft.so's exported symbols differ from what $modh declares (- declared, + exported)" >&2
  exit 1
fi
soname=$(objdump -p "$lib" | awk '$1 == "SONAME" {print $2}')
case $soname in
  libweft.so.[0-9]*) ;;
  *) echo "libweft has no versioned SONAME (got '$soname')" >&2; exit 1 ;;
esac
if ! objdump -p "$mod" | grep -q "NEEDED *$soname"; then
  echo "weft.so does not link $soname: the Lua module would carry its own core" >&2
  exit 1
fi
echo "abi ok: $(wc -l < "$sym") symbols, $soname"
