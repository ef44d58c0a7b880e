#!/bin/bash
# Network benchmarks, every peer in the same run, ROUNDS interleaved:
# (a) TCP echo: 100 connections, 64-byte messages, closed loop, msgs/s
#     (bench/net/loadgen.c, 1 s warm-up);
# (b) HTTP hello world, keep-alive: wrk -t1 -c64 -d5s after a 1 s warm-up.
# Servers run on CPU 0, the load on CPU 1.  Peers: weft (task style), luv
# (callback style), raw libuv C, node, cqueues.  Prints a markdown table
# of medians and each peer's ratio to weft.
# usage: bench/net/run.sh [echo] [http]   env: BUILD=build ROUNDS=3 DUR=5
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$root/build}
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-5}
WORKLOADS=("$@")
[ ${#WORKLOADS[@]} -eq 0 ] && WORKLOADS=(echo http)
"$root/scripts/deps.sh" lua-luv lua-cqueues wrk >/dev/null
command -v node >/dev/null 2>&1 || "$root/scripts/deps.sh" nodejs >/dev/null
export LUA_CPATH="$BUILD/lua/?.so;;"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for p in loadgen echo_uv http_uv; do
  gcc -O2 -o "$tmp/$p" "$here/$p.c" $(pkg-config --cflags --libs libuv) || exit 1
done
raw=$tmp/raw.tsv
# Below the kernel's ephemeral range (32768 and up), where the load
# generator's own connections could hold the port.
port=$((10000 + RANDOM % 20000))

. "$root/bench/lib/wait_port.sh"

serve() { # workload label cmd... (the port is appended)
  local w=$1 label=$2 value load="" cpu=$'NA\tNA'
  shift 2
  port=$((port + 1))
  taskset -c 0 "$@" "$port" >/dev/null 2>"$tmp/err" &
  local pid=$!
  if ! wait_port "$port" "$pid"; then
    echo "  $w $label: server failed: $(head -c 200 "$tmp/err")"
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    return
  fi
  if [ "$w" = echo ]; then
    local line u0 s0 u1 s1
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    line=$(taskset -c 1 "$tmp/loadgen" -p "$port" -c 100 -d "$DUR" -w 1 -s 64 | grep '^RESULT ')
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    value=$(printf '%s' "$line" | sed -n 's/^RESULT .*value=\([0-9.]*\).*/\1/p')
    # The server's CPU per message over warm-up + run (at the measured
    # rate): the efficiency figure when the load generator is the bound;
    # and its user part, the server's own code (the system part is mostly
    # the kernel's TCP path, the same two calls a message for every peer).
    [ -n "$value" ] && cpu=$(awk -v u0="$u0" -v s0="$s0" -v u1="$u1" -v s1="$s1" \
      -v hz="$(getconf CLK_TCK)" -v v="$value" -v d="$DUR" 'BEGIN {
        n = (d + 1) * v * hz / 1e6
        printf "%.1f\t%.2f", (u1 - u0 + s1 - s0) / n, (u1 - u0) / n }')
    # A load generator at ~100% of its core bounds the figure, not the server.
    load=", load generator CPU $(printf '%s' "$line" | sed -n 's/.*client_cpu=\([0-9]*%\).*/\1/p')"
  else
    taskset -c 1 wrk -t1 -c64 -d1s "http://127.0.0.1:$port/" >/dev/null 2>&1
    value=$(taskset -c 1 wrk -t1 -c64 -d"${DUR}s" "http://127.0.0.1:$port/" |
            awk '/^Requests\/sec:/{print $2}')
  fi
  local rss; rss=$(awk '/VmHWM/{print $2}' "/proc/$pid/status" 2>/dev/null)
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  printf '%s\t%s\t%s\t%s\t%s\n' "$w" "$label" "${value:-NA}" "${rss:-NA}" "$cpu" >> "$raw"
  [ "$w" = echo ] && load="$load, server CPU ${cpu%%$'\t'*} µs/msg (user ${cpu##*$'\t'})"
  printf '  %-5s %-26s %s (peak RSS %s KiB%s)\n' "$w" "$label" "${value:-FAILED}" "$rss" "$load"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -m), rounds=$ROUNDS, ${DUR}s per run"
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r"
  for w in "${WORKLOADS[@]}"; do
    case $w in
    echo)
      serve echo "weft tasks" lua5.4 "$here/echo_weft.lua"
      serve echo "luv callbacks" lua5.4 "$here/echo_luv.lua"
      serve echo "libuv C" "$tmp/echo_uv"
      serve echo "node net" node "$here/echo_node.js"
      serve echo "cqueues" lua5.4 "$here/echo_cqueues.lua"
      ;;
    http)
      serve http "weft tasks" lua5.4 "$here/http_weft.lua"
      serve http "luv callbacks" lua5.4 "$here/http_luv.lua"
      serve http "libuv C" "$tmp/http_uv"
      serve http "node http module" node "$here/http_node.js" http
      serve http "node net, minimal" node "$here/http_node.js" net
      serve http "cqueues" lua5.4 "$here/http_cqueues.lua"
      ;;
    *) echo "unknown workload $w" >&2; exit 2 ;;
    esac
  done
done

lua5.4 - "$raw" "$root/bench/lib/common.lua" <<'LUA'
local rows, order = {}, {}
for line in io.lines(arg[1]) do
  local w, label, v, rss, cpu, ucpu = line:match("^(.-)\t(.-)\t(.-)\t(.-)\t(.-)\t(.*)$")
  local key = w .. "\t" .. label
  if not rows[key] then rows[key] = { v = {}, rss = {}, cpu = {}, ucpu = {} }; order[#order + 1] = key end
  if tonumber(v) then table.insert(rows[key].v, tonumber(v)) end
  if tonumber(rss) then table.insert(rows[key].rss, tonumber(rss)) end
  if tonumber(cpu) then table.insert(rows[key].cpu, tonumber(cpu)) end
  if tonumber(ucpu) then table.insert(rows[key].ucpu, tonumber(ucpu)) end
end
local median = dofile(arg[2]).median
print("\n| workload | system | median /s | min | max | peak RSS MiB | weft / this | server CPU µs/msg | of which user |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for _, key in ipairs(order) do
  local w, label = key:match("^(.-)\t(.*)$")
  local r = rows[key]
  local m = median(r.v)
  local weft = median(rows[w .. "\tweft tasks"].v)
  local rss, cpu, ucpu = median(r.rss), median(r.cpu), median(r.ucpu)
  print(string.format("| %s | %s | %s | %s | %s | %s | %s | %s | %s |", w, label,
    m and string.format("%.0f", m) or "FAILED",
    r.v[1] and string.format("%.0f", r.v[1]) or "-",
    r.v[#r.v] and string.format("%.0f", r.v[#r.v]) or "-",
    rss and string.format("%.1f", rss / 1024) or "-",
    (m and weft) and string.format("%.2fx", weft / m) or "-",
    cpu and string.format("%.1f", cpu) or "-",
    ucpu and string.format("%.2f", ucpu) or "-"))
end
LUA
