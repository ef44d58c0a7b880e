#!/bin/sh
# Task benchmarks: (a) 100,000 tasks each sleeping 10 ms, against cqueues,
# luv + coroutines and node (wall time and peak RSS); (b) a ping-pong of two
# tasks over weft.channel(0) against raw coroutine resume/yield, against the
# bare scheduler (two tasks that only hand the turn to each other,
# yield_weft.lua), and that round trip with the four C calls a channel
# needs at least (floor_lua.lua); (c)
# 1,000,000 weft.async + await of a trivial function; (d) the Lua heap bytes
# a sleeping task holds.  ROUNDS interleaved.
# usage: bench/tasks/run.sh   env: BUILD=build ROUNDS=3
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$root/build}
ROUNDS=${ROUNDS:-3}
"$root/scripts/deps.sh" lua-luv lua-cqueues time
command -v node >/dev/null 2>&1 || "$root/scripts/deps.sh" nodejs
export LUA_CPATH="$BUILD/lua/?.so;;"
raw=$(mktemp)
tf=$(mktemp)
trap 'rm -f "$raw" "$tf"' EXIT

run() { # workload label cmd...
  w=$1 label=$2
  shift 2
  v=$(timeout 300 /usr/bin/time -f '%M' -o "$tf" "$@" 2>/dev/null |
      sed -n 's/^RESULT .*value=\([0-9.]*\).*/\1/p')
  rss=$(tail -1 "$tf")
  printf '%s\t%s\t%s\t%s\n' "$w" "$label" "${v:-NA}" "$rss" >> "$raw"
  printf '  %-10s %-28s %s (peak RSS %s KiB)\n' "$w" "$label" "${v:-FAILED}" "$rss"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -m), rounds=$ROUNDS"
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r"
  run sleep "weft tasks" lua5.4 "$here/sleep_weft.lua" 100000 10
  run sleep "cqueues" lua5.4 "$here/sleep_cqueues.lua" 100000 10
  run sleep "luv + coroutines" lua5.4 "$here/sleep_luv.lua" 100000 10
  run sleep "node promises" node "$here/sleep_node.js" 100000 10
  run baseline "lua5.4 + weft, empty" lua5.4 -e 'require "weft" print("RESULT metric=none value=0")'
  run pingpong "weft channel(0), rt/s" lua5.4 "$here/pingpong_weft.lua" 200000
  run pingpong "weft bare scheduler (2 tasks yielding), rt/s" lua5.4 "$here/yield_weft.lua" 1000000
  run pingpong "coroutine resume/yield, rt/s" lua5.4 "$here/../fibers/pingpong_lua.lua" resume 10000000
  run pingpong "same + 2 no-op C calls a side, rt/s" lua5.4 "$here/floor_lua.lua" 2 5000000
  run async "weft 1M async+await, ms" lua5.4 "$here/async_await_weft.lua" 1000000
  run heap "weft, Lua heap bytes per sleeping task" lua5.4 "$here/heap_weft.lua" 100000
done

lua5.4 - "$raw" "$root/bench/lib/common.lua" <<'LUA'
local rows, order = {}, {}
for line in io.lines(arg[1]) do
  local w, label, v, rss = line:match("^(.-)\t(.-)\t(.-)\t(.*)$")
  local key = w .. "\t" .. label
  if not rows[key] then rows[key] = { v = {}, rss = {} }; order[#order + 1] = key end
  if tonumber(v) then table.insert(rows[key].v, tonumber(v)) end
  if tonumber(rss) then table.insert(rows[key].rss, tonumber(rss)) end
end
local median = dofile(arg[2]).median
local base = median(rows["baseline\tlua5.4 + weft, empty"].rss)
print("\n| workload | system | median | peak RSS MiB | KiB per task above an empty weft |")
print("| --- | --- | --- | --- | --- |")
for _, key in ipairs(order) do
  local w, label = key:match("^(.-)\t(.*)$")
  local m, rss = median(rows[key].v), median(rows[key].rss)
  local per = (w == "sleep" and rss and base) and string.format("%.2f", (rss - base) / 100000) or "-"
  print(string.format("| %s | %s | %s | %s | %s |", w, label,
    m and string.format("%.0f", m) or "failed", rss and string.format("%.1f", rss / 1024) or "-", per))
end
LUA
