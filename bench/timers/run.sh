#!/bin/sh
# Runs the timer workloads for weft (Lua and C) and its peers (raw libuv C,
# luv, node), ROUNDS times interleaved (round -> workload -> peer), and
# prints a markdown table of medians with ratios.
#   a. timers:    1,000,000 one-shot timers, random delays 0..100 ms
#   c. immediate: a chain of 1,000,000 next-iteration callbacks
# usage: bench/timers/run.sh   env: BUILD=build ROUNDS=3 N=1000000
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$root/build}
ROUNDS=${ROUNDS:-3}
N=${N:-1000000}
"$root/scripts/deps.sh" lua-luv
command -v node >/dev/null 2>&1 || "$root/scripts/deps.sh" nodejs
export LUA_CPATH="$BUILD/lua/?.so;;" LUA_PATH="$BUILD/lua/?.lua;;"
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT

run() { # workload peer cmd...
  w=$1 p=$2
  shift 2
  v=$(timeout 120 "$@" 2>/dev/null | sed -n 's/^RESULT .*value=\([0-9.]*\).*/\1/p')
  printf '%s\t%s\t%s\n' "$w" "$p" "${v:-NA}" >> "$raw"
  printf '  %-10s %-22s %s ms\n' "$w" "$p" "${v:-FAILED}"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -m), $(nproc) cores, N=$N, rounds=$ROUNDS"
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r"
  run timers "weft Lua" lua5.4 "$here/timers_weft.lua" "$N"
  run timers "weft C" "$BUILD/bench/bench_timers_weft" "$N"
  run timers "libuv C" "$BUILD/bench/bench_timers_uv" "$N"
  run timers "luv" lua5.4 "$here/timers_luv.lua" "$N"
  run timers "node setTimeout" node "$here/timers_node.js" "$N"
  run immediate "weft Lua" lua5.4 "$here/immediate_weft.lua" "$N"
  run immediate "weft C" "$BUILD/bench/bench_immediate_weft" "$N"
  run immediate "libuv C (idle)" "$BUILD/bench/bench_immediate_uv" idle "$N"
  run immediate "luv (idle)" lua5.4 "$here/immediate_luv.lua" idle "$N"
  run immediate "node setImmediate" node "$here/immediate_node.js" immediate "$N"
done

lua5.4 - "$raw" "$root/bench/lib/common.lua" <<'LUA'
local rows, order = {}, {}
for line in io.lines(arg[1]) do
  local w, p, v = line:match("^(.-)\t(.-)\t(.-)$")
  local key = w .. "\t" .. p
  if not rows[key] then rows[key] = {}; order[#order + 1] = key end
  if tonumber(v) then table.insert(rows[key], tonumber(v)) end
end
local median = dofile(arg[2]).median
local med = {}
for _, key in ipairs(order) do med[key] = median(rows[key]) end
print("\n| workload | peer | median ms | min | max | vs weft Lua | vs libuv C |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for _, key in ipairs(order) do
  local w, p = key:match("^(.-)\t(.*)$")
  local t, m = rows[key], med[key]
  local base = med[w .. "\tweft Lua"]
  local uv = med[w .. "\tlibuv C"] or med[w .. "\tlibuv C (idle)"]
  local function ratio(b) return (m and b) and string.format("%.2fx", m / b) or "-" end
  print(string.format("| %s | %s | %s | %s | %s | %s | %s |", w, p,
    m and string.format("%.0f", m) or "failed", t[1] and string.format("%.0f", t[1]) or "-",
    t[#t] and string.format("%.0f", t[#t]) or "-", ratio(base), ratio(uv)))
end
LUA
