#!/bin/sh
# The layering rules of docs/design.md: the core never includes a Lua header,
# and the public header's code (comments aside) carries no libuv or Lua type.
# The binding's installed header, weft_lua.h, carries no libuv type nor the
# binding's private ones, and includes lua.h and weft.h only.
# usage: layering.sh SOURCE_DIR
set -eu
root=$1
fail=0
if grep -rnE '#include *[<"](lua|lauxlib|lualib)\.h' "$root/csrc"; then
  echo "csrc/ must not include Lua headers" >&2; fail=1
fi
if perl -0777 -pe 's{/\*.*?\*/}{}gs' "$root/csrc/include/weft.h" |
   grep -nE '[<"](uv|lua|lauxlib)\.h|\buv_[a-z_]+_t\b|\blua_State\b'; then
  echo "weft.h must not use libuv or Lua types" >&2; fail=1
fi
code=$(perl -0777 -pe 's{/\*.*?\*/}{}gs' "$root/bindings/lua/weft_lua.h")
if echo "$code" | grep -nE '\buv_[a-z_]+_t\b|\blweft_|\bLWEFT_'; then
  echo "weft_lua.h must not use libuv types or the binding's private names" >&2; fail=1
fi
includes=$(echo "$code" | sed -n 's/^#include *\(.*\)/\1/p' | LC_ALL=C sort | tr '\n' ' ')
if [ "$includes" != '"weft.h" <lua.h> ' ]; then
  echo "weft_lua.h must include <lua.h> and \"weft.h\" only, not: $includes" >&2; fail=1
fi
[ $fail = 0 ] && echo "layering ok"
exit $fail
