#!/bin/sh
# Installs the Debian packages weft needs to build and test, if any is
# missing: one `apt-get update`, then `apt-get install -y`.  Nothing is
# downloaded from anywhere else.
# usage: scripts/deps.sh [extra-package ...]
set -eu
need="cmake pkg-config make gcc clang libclang-rt-14-dev libuv1-dev libssl-dev openssl curl liblua5.4-dev lua5.4 \
lua-busted luarocks binutils perl valgrind file \
gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
lua-socket lua-copas python3 $*"
missing=""
for p in $need; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
