#!/bin/sh
# Runs every test of one build tree: ctest (C tests, ABI checks, examples)
# then busted (Lua specs).  A sanitizer tree's runtime is preloaded for the
# uninstrumented Lua interpreter.
# usage: scripts/test.sh BUILD_DIR
set -eu
build=${1:-build}
cd "$(dirname "$0")/.."
echo "== ctest: $build"
ctest --test-dir "$build" --output-on-failure
echo "== busted: $build"
export WEFT_BUILD="$build"
if [ -f "$build/sanitizer.env" ]; then
  export WEFT_TEST_TIMEOUT_MULTIPLIER=4
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  LD_PRELOAD=$(sed -n 's/^LD_PRELOAD=//p' "$build/sanitizer.env")
  export LD_PRELOAD
fi
busted --lua=lua5.4
