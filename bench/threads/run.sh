#!/bin/sh
# Thread benchmarks, ROUNDS interleaved: (a) 1,000 workers, each with its
# own Lua state, started and given a trivial job; (b) no-op job round trip
# (p50/p99) against luv's uv.new_work and against a bare C condition
# variable round trip (what a sleeping worker costs at least); (c) small values from a worker to a
# task over a channel; (d) a 64 MiB string through a job and back, and
# over channels: the peak memory it costs, in multiples of its size; (e)
# two CPU-bound jobs on 1 worker, then 2 (speed-up), against luv's
# uv.new_work.  lua-lanes and lua-effil are not packaged by Debian, so
# they are not here.
# usage: bench/threads/run.sh   env: BUILD=build ROUNDS=3
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$root/build}
ROUNDS=${ROUNDS:-3}
"$root/scripts/deps.sh" lua-luv >/dev/null
export LUA_CPATH="$BUILD/lua/?.so;;"
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT

run() { # label cmd...
  label=$1
  shift
  line=$(timeout 300 "$@" 2>/dev/null | grep '^RESULT ' || true)
  v=$(printf '%s' "$line" | sed -n 's/^RESULT .*value=\([0-9.]*\).*/\1/p')
  extra=$(printf '%s' "$line" | sed 's/^RESULT metric=[^ ]* value=[^ ]* *//')
  printf '%s\t%s\t%s\n' "$label" "${v:-NA}" "$extra" >> "$raw"
  printf '  %-40s %s %s\n' "$label" "${v:-FAILED}" "$extra"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -m), $(nproc) CPUs, rounds=$ROUNDS"
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r"
  run "start 1000 workers + jobs, ms" lua5.4 "$here/threads_weft.lua" start 1000
  run "no-op job p50 µs: weft pool" lua5.4 "$here/threads_weft.lua" latency 20000
  run "no-op job p50 µs: weft pool, spin_us=0" lua5.4 "$here/threads_weft.lua" latency 20000 0
  run "no-op job p50 µs: luv new_work" lua5.4 "$here/threads_luv.lua" latency 20000
  run "floor: C condvar round trip p50 µs" "$BUILD/bench/bench_wake_c" 20000
  run "channel worker -> task, msgs/s" lua5.4 "$here/threads_weft.lua" channel 1000000
  run "channel task -> worker, msgs/s" lua5.4 "$here/threads_weft.lua" channel_in 1000000
  run "64 MiB via a job and back: peak, x size" lua5.4 "$here/threads_weft.lua" large_job 64
  run "64 MiB via channels and back: peak, x size" lua5.4 "$here/threads_weft.lua" large_channel 64
  run "CPU speed-up, 2 workers: weft" lua5.4 "$here/threads_weft.lua" speedup 40000000
  run "CPU speed-up, 2 threads: luv new_work" lua5.4 "$here/threads_luv.lua" speedup 40000000
done

lua5.4 - "$raw" "$root/bench/lib/common.lua" <<'LUA'
local rows, order = {}, {}
for line in io.lines(arg[1]) do
  local label, v, extra = line:match("^(.-)\t(.-)\t(.*)$")
  if not rows[label] then rows[label] = { v = {}, extra = {} }; order[#order + 1] = label end
  if tonumber(v) then table.insert(rows[label].v, tonumber(v)) end
  table.insert(rows[label].extra, extra)
end
local median = dofile(arg[2]).median
print("\n| measurement | median | min | max | one run's details |")
print("| --- | --- | --- | --- | --- |")
for _, label in ipairs(order) do
  local r = rows[label]
  local m = median(r.v)
  print(string.format("| %s | %s | %s | %s | %s |", label, m and string.format("%.1f", m) or "FAILED",
    r.v[1] and string.format("%.1f", r.v[1]) or "-", r.v[#r.v] and string.format("%.1f", r.v[#r.v]) or "-",
    r.extra[1] or ""))
end
LUA
