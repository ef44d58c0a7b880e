#!/bin/sh
# Compiles and runs every C block with a main() in docs/*.md against the
# built libweft (and, for a block that includes weft_lua.h, the built Lua
# module and Lua 5.4), and checks docs/c-api.md has an entry per exported
# symbol and per item of weft_lua.h.
# usage: docs_c.sh SOURCE_DIR BUILD_DIR CC
set -eu
src=$1 build=$2 cc=${3:-cc}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0
for doc in "$src"/docs/*.md; do
  awk -v dir="$work" -v base="$(basename "$doc" .md)" '
    /^```c$/ { inblock = 1; n++; file = dir "/" base "_" n ".c"; next }
    /^```/   { inblock = 0; next }
    inblock  { print > file }
  ' "$doc"
done
for f in "$work"/*.c; do
  [ -e "$f" ] || continue
  grep -q 'int main' "$f" || continue
  n=$((n + 1))
  lua=""
  if grep -q '#include "weft_lua.h"' "$f"; then
    lua="-I$src/bindings/lua $(pkg-config --cflags lua5.4) $build/lua/weft.so $(pkg-config --libs lua5.4)"
  fi
  # shellcheck disable=SC2086 # lists of words
  $cc -std=c11 -Wall -Wextra -Werror -I"$src/csrc/include" "$f" -o "${f%.c}" \
    $lua -L"$build" -lweft -Wl,-rpath,"$build" $(pkg-config --libs libuv)
  "${f%.c}" > "${f%.c}.out" || { echo "$(basename "$f") failed:"; cat "${f%.c}.out"; exit 1; }
done
[ "$n" -gt 0 ] || { echo "no C example found" >&2; exit 1; }
missing=0
while read -r sym; do
  grep -q "^### \`$sym\`" "$src/docs/c-api.md" || { echo "undocumented: $sym" >&2; missing=1; }
done <<SYMBOLS
$(cat "$src/csrc/weft.sym"
  sed -n -e 's/^WEFT_LUA_EXTERN .*[ *]\([a-z_0-9]*\)(.*/\1/p' \
         -e 's/^#define \(WEFT_LUA_[A-Z_]*\) .*/\1/p' "$src/bindings/lua/weft_lua.h" |
    grep -vx 'WEFT_LUA_EXTERN')
SYMBOLS
[ $missing = 0 ] || exit 1
echo "docs ok: $n C examples ran; every symbol documented"
