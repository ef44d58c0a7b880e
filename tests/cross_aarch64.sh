#!/bin/sh
# Builds the fiber tests for aarch64 with Debian's cross compiler (static,
# no libuv needed) and runs them under qemu-user.
# usage: cross_aarch64.sh SOURCE_DIR OUT_DIR
set -eu
src=$1 out=$2
mkdir -p "$out"
aarch64-linux-gnu-gcc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -static \
  -I"$src/csrc/include" -I"$src/csrc" \
  "$src/tests/c/test_fiber.c" "$src/csrc/fiber.c" "$src/csrc/stack.c" \
  "$src/csrc/alloc.c" "$src/csrc/arch/aarch64.S" "$src/csrc/arch/aarch64.c" \
  -lpthread -lm -o "$out/test_fiber"
file "$out/test_fiber" | grep -q aarch64
WEFT_TEST_SKIP_MAPLIMIT=1 qemu-aarch64 "$out/test_fiber"
