#!/bin/sh
# Fails when libweft exports anything but the symbols listed in weft.sym, or
# the Lua module anything but luaopen_weft.
# usage: abi_symbols.sh LIBWEFT WEFT_SYM LUA_MODULE
set -eu
lib=$1 sym=$2 mod=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | LC_ALL=C sort > "$tmp/lib"
if ! diff -u "$sym" "$tmp/lib"; then
  echo "libweft's exported symbols differ from $sym (- listed, + exported)" >&2
  exit 1
fi
nm -D --defined-only "$mod" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | LC_ALL=C sort > "$tmp/mod"
if [ "$(cat "$tmp/mod")" != "luaopen_weft" ]; then
  echo "weft.so must export luaopen_weft only; it exports:" >&2
  cat "$tmp/mod" >&2
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
