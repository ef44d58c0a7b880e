#!/bin/bash
# socket.http GETs through weft.socket vs copas vs blocking LuaSocket, in
# one run: N requests (default 1000) at concurrency C (default 50; the
# blocking client cannot overlap them) against one local server, the raw
# libuv C hello-world server of bench/net (so the server is not what is
# measured).  ROUNDS interleaved rounds; prints a markdown table of the
# median seconds and requests/s, and each client's ratio to weft.
# usage: bench/socket/run.sh   env: BUILD=build N=1000 C=50 ROUNDS=3
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$root/build}
N=${N:-1000}
C=${C:-50}
ROUNDS=${ROUNDS:-3}
"$root/scripts/deps.sh" >/dev/null
export LUA_CPATH="$BUILD/lua/?.so;;"
tmp=$(mktemp -d)
gcc -O2 -o "$tmp/http_uv" "$root/bench/net/http_uv.c" $(pkg-config --cflags --libs libuv) || exit 1
port=$((10000 + RANDOM % 20000))
"$tmp/http_uv" "$port" & server=$!
trap 'kill $server 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done
clients=(weft copas blocking)
for r in $(seq 1 "$ROUNDS"); do
  for m in "${clients[@]}"; do
    s=$(lua5.4 "$here/get.lua" "$m" "$port" "$N" "$C") || { echo "$m failed" >&2; exit 1; }
    echo "$m $s" >> "$tmp/raw"
  done
done
median() { grep "^$1 " "$tmp/raw" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
w=$(median weft)
echo "$N socket.http GETs, concurrency $C (blocking: 1), median of $ROUNDS rounds"
echo
echo "| client | seconds | requests/s | time vs weft |"
echo "| --- | ---: | ---: | ---: |"
for m in "${clients[@]}"; do
  s=$(median "$m")
  awk -v m="$m" -v s="$s" -v w="$w" -v n="$N" \
    'BEGIN { printf "| %s | %.3f | %.0f | %.2fx |\n", m, s, n / s, s / w }'
done
