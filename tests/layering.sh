#!/bin/sh
# The layering rules of docs/design.md: the core never includes a Lua header,
# and the public header's code (comments aside) carries no libuv or Lua type.
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
[ $fail = 0 ] && echo "layering ok"
exit $fail
