#!/bin/bash
# TLS benchmarks, every peer in the same run, ROUNDS interleaved, with one
# certificate (EC P-256, made by tests/tls/mkcerts.sh):
# (a) https: HTTPS hello world, keep-alive: wrk -t1 -c64 -d${DUR}s after a
#     1 s warm-up, against weft's examples/http_server.lua --tls, nginx
#     (nginx-light, one worker) and node's https module;
# (b) handshakes: the same with "Connection: close", so every request is
#     a new connection and a new handshake;
# (c) echo: 64-byte messages over 50 connections, closed loop, TLS against
#     plain TCP, weft on both sides (bench/tls/echo_*.lua).
# Servers run on CPU 0, the load on CPU 1.  Prints a markdown table of
# medians and weft's ratio to each peer: the median of the rounds' ratios,
# each taken within one round (a shared machine's load drifts between
# rounds more than within one).
# usage: bench/tls/run.sh [https] [handshakes] [echo]
#        env: BUILD=build ROUNDS=3 DUR=5
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$root/build}
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-5}
WORKLOADS=("$@")
[ ${#WORKLOADS[@]} -eq 0 ] && WORKLOADS=(https handshakes echo)
"$root/scripts/deps.sh" wrk nginx-light >/dev/null
command -v node >/dev/null 2>&1 || "$root/scripts/deps.sh" nodejs >/dev/null
export LUA_CPATH="$BUILD/lua/?.so;;"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sh "$root/tests/tls/mkcerts.sh" "$tmp/certs" || exit 1
cert=$tmp/certs/server.pem key=$tmp/certs/server.key ca=$tmp/certs/ca.pem
raw=$tmp/raw.tsv
# Below the kernel's ephemeral range (32768 and up), where the load
# generator's own connections could hold the port.
port=$((10000 + RANDOM % 20000))

. "$root/bench/lib/wait_port.sh"

serve() { # workload label cmd... (the port is appended)
  local w=$1 label=$2 value cpu=NA
  shift 2
  port=$((port + 1))
  taskset -c 0 "$@" "$port" >/dev/null 2>"$tmp/err" &
  local pid=$!
  if ! wait_port "$port" "$pid"; then
    echo "  $w $label: server failed: $(head -c 300 "$tmp/err")"
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    return
  fi
  local url="https://127.0.0.1:$port/" u0 s0 u1 s1
  case $w in
  https)
    taskset -c 1 wrk -t1 -c64 -d1s "$url" >/dev/null 2>&1
    value=$(taskset -c 1 wrk -t1 -c64 -d"${DUR}s" "$url" | awk '/^Requests\/sec:/{print $2}') ;;
  handshakes)
    taskset -c 1 wrk -t1 -c64 -d1s -H "Connection: close" "$url" >/dev/null 2>&1
    value=$(taskset -c 1 wrk -t1 -c64 -d"${DUR}s" -H "Connection: close" "$url" |
            awk '/^Requests\/sec:/{print $2}') ;;
  echo)
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    value=$(taskset -c 1 lua5.4 "$here/echo_client.lua" "$label" "$ca" "$port" 50 "$DUR" |
            sed -n 's/^RESULT value=\([0-9.]*\).*/\1/p')
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    # the server's CPU per message, warm-up included (µs)
    [ -n "$value" ] && cpu=$(awk -v u="$((u1 - u0 + s1 - s0))" -v hz="$(getconf CLK_TCK)" \
      -v v="$value" -v d="$DUR" 'BEGIN { printf "%.1f", u / hz * 1e6 / ((d + 1) * v) }') ;;
  esac
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$w" "$label" "${value:-NA}" "$cpu" >> "$raw"
  printf '  %-10s %-22s %s%s\n' "$w" "$label" "${value:-FAILED}" \
    "$([ "$cpu" != NA ] && echo " (server CPU $cpu µs/msg)")"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -m), rounds=$ROUNDS, ${DUR}s per run, $(openssl version | cut -d' ' -f1-2)"
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r"
  for w in "${WORKLOADS[@]}"; do
    case $w in
    https|handshakes)
      serve "$w" "weft" lua5.4 "$root/examples/http_server.lua" --tls "$cert" "$key"
      serve "$w" "nginx, 1 worker" "$here/nginx.sh" "$tmp/nginx" "$cert" "$key"
      serve "$w" "node https" node "$here/https_node.js" "$cert" "$key"
      ;;
    echo)
      serve echo "tls" lua5.4 "$here/echo_weft.lua" tls "$cert" "$key"
      serve echo "plain" lua5.4 "$here/echo_weft.lua" plain "$cert" "$key"
      ;;
    *) echo "unknown workload $w" >&2; exit 2 ;;
    esac
  done
done

lua5.4 - "$raw" "$root/bench/lib/common.lua" <<'LUA'
local rows, order, by_round = {}, {}, {}
for line in io.lines(arg[1]) do
  local r, w, label, v, cpu = line:match("^(.-)\t(.-)\t(.-)\t(.-)\t(.*)$")
  local key = w .. "\t" .. label
  if not rows[key] then rows[key] = { v = {}, cpu = {}, ratio = {} }; order[#order + 1] = key end
  if tonumber(v) then
    table.insert(rows[key].v, tonumber(v))
    by_round[r .. "\t" .. key] = tonumber(v)
  end
  if tonumber(cpu) then table.insert(rows[key].cpu, tonumber(cpu)) end
end
-- weft's ratio to each peer within each round (the echo rows: TLS to plain)
for k, v in pairs(by_round) do
  local r, w, label = k:match("^(.-)\t(.-)\t(.*)$")
  local base = by_round[r .. "\t" .. w .. "\tweft"] or by_round[r .. "\t" .. w .. "\ttls"]
  if base then table.insert(rows[w .. "\t" .. label].ratio, base / v) end
end
local median = dofile(arg[2]).median
print("\n| workload | system | median /s | min | max | weft / this (median of rounds) | server CPU µs/msg |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for _, key in ipairs(order) do
  local w, label = key:match("^(.-)\t(.*)$")
  local r = rows[key]
  table.sort(r.v)
  table.sort(r.ratio)
  local m, ratio, cpu = median(r.v), median(r.ratio), median(r.cpu)
  print(string.format("| %s | %s | %s | %s | %s | %s | %s |", w, label,
    m and string.format("%.0f", m) or "FAILED",
    r.v[1] and string.format("%.0f", r.v[1]) or "-",
    r.v[#r.v] and string.format("%.0f", r.v[#r.v]) or "-",
    ratio and string.format("%.2fx", ratio) or "-",
    cpu and string.format("%.1f", cpu) or "-"))
end
LUA
