#!/bin/sh
# Fiber benchmarks: weft's switch round trip against glibc swapcontext, a
# minimal hand-written switch (with and without the FP control words) and
# Lua 5.4 coroutines; fiber lifecycles per second with pooled stacks; RSS
# per suspended fiber.  ROUNDS runs, interleaved; prints medians.
# usage: bench/fibers/run.sh   env: BUILD=build ROUNDS=3
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$root/build}
ROUNDS=${ROUNDS:-3}
"$root/scripts/deps.sh" lua-luv
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT

run() { # label unit cmd...  (takes value= and the per-op field of RESULT)
  label=$1 unit=$2
  shift 2
  line=$(timeout 300 "$@" 2>/dev/null | grep '^RESULT' || true)
  v=$(printf '%s' "$line" | sed -n 's/.* value=\([0-9.]*\).*/\1/p')
  per=$(printf '%s' "$line" | sed -n 's/.* \(ns_per_roundtrip\|ns_per_rt\|ns_each\)=\([0-9.]*\).*/\2/p')
  printf '%s\t%s\t%s\t%s\n' "$label" "$unit" "${v:-NA}" "${per:-}" >> "$raw"
  printf '  %-34s %s %s\n' "$label" "${v:-FAILED}" "$unit"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -m), rounds=$ROUNDS"
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r"
  run "weft fiber round trip" rt/s "$BUILD/bench/bench_fibers_weft" switch 100000000
  run "glibc swapcontext round trip" rt/s "$BUILD/bench/bench_ctxswitch_peers" ucontext 5000000
  run "minimal asm switch, FP words" rt/s "$BUILD/bench/bench_ctxswitch_peers" asm_fp 100000000
  run "minimal asm switch, no FP words" rt/s "$BUILD/bench/bench_ctxswitch_peers" asm 100000000
  run "Lua 5.4 coroutine resume/yield" rt/s lua5.4 "$here/pingpong_lua.lua" resume 10000000
  run "weft fiber lifecycles (pooled)" "fibers/s" "$BUILD/bench/bench_fibers_weft" lifecycle 2000000
  run "weft 10,000 suspended fibers" "KiB RSS each" "$BUILD/bench/bench_fibers_weft" rss 10000
done

lua5.4 - "$raw" "$root/bench/lib/common.lua" <<'LUA'
local rows, order = {}, {}
for line in io.lines(arg[1]) do
  local label, unit, v, per = line:match("^(.-)\t(.-)\t(.-)\t(.*)$")
  if not rows[label] then rows[label] = { unit = unit, v = {}, per = {} }; order[#order + 1] = label end
  if tonumber(v) then table.insert(rows[label].v, tonumber(v)) end
  if tonumber(per) then table.insert(rows[label].per, tonumber(per)) end
end
local median = dofile(arg[2]).median
local weft_rt = median(rows["weft fiber round trip"].per)
print("\n| measurement | median | unit | ns per op | time per op / weft round trip |")
print("| --- | --- | --- | --- | --- |")
for _, label in ipairs(order) do
  local r = rows[label]
  local m, per = median(r.v), median(r.per)
  local fmt = m and (m >= 1000 and string.format("%.2fM", m / 1e6) or string.format("%.2f", m)) or "failed"
  local vs = (per and weft_rt and label ~= "weft fiber round trip" and r.unit == "rt/s")
    and string.format("%.2fx", per / weft_rt) or "-"
  print(string.format("| %s | %s | %s | %s | %s |", label, fmt, r.unit,
    per and string.format("%.1f", per) or "-", vs))
end
LUA
