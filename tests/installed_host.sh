#!/bin/sh
# Checks what an install (cmake --install, luarocks make) put in PREFIX for C
# hosts, then builds the host of tests/install/ in a directory of its own
# against those files only, once with `pkg-config --cflags --libs weft` and
# once with find_package(weft) in its own CMake project, and runs both.
# CC and CFLAGS build the hosts (the sanitizer tree passes its own).
# usage: installed_host.sh PREFIX HOST_DIR
set -eu
prefix=$1 hostsrc=$2
cc=${CC:-cc}
cflags=${CFLAGS:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$hostsrc/host.c" "$hostsrc/CMakeLists.txt" "$work/"
cd "$work"
die() { echo "installed_host: $*" >&2; exit 1; }

# ---- the installed files ------------------------------------------------
pc=$(find "$prefix" -name weft.pc)
[ -n "$pc" ] && [ "$(echo "$pc" | wc -l)" = 1 ] || die "one weft.pc expected, found: '$pc'"
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
libdir=$(pkg-config --variable=libdir weft)
incdir=$(pkg-config --variable=includedir weft)
module=$(pkg-config --variable=lua_module weft)
for f in "$incdir/weft.h" "$incdir/weft_lua.h" "$module"; do
  [ -f "$f" ] || die "$f is missing"
done
case $libdir$incdir$module in
  "$prefix"/*) ;;
  *) die "weft.pc points outside $prefix: $libdir $incdir $module" ;;
esac
ver() { sed -n "s/^#define WEFT_VERSION_$1 \([0-9]*\)$/\1/p" "$incdir/weft.h"; }
major=$(ver MAJOR)
version=$major.$(ver MINOR).$(ver PATCH)
[ "$(pkg-config --modversion weft)" = "$version" ] ||
  die "weft.pc gives version $(pkg-config --modversion weft), weft.h $version"
# libweft.so -> libweft.so.MAJOR -> libweft.so.VERSION, and nothing else
# named libweft anywhere in the prefix (no stray copy, no "libweft.so.").
[ "$(readlink "$libdir/libweft.so")" = "libweft.so.$major" ] &&
  [ "$(readlink "$libdir/libweft.so.$major")" = "libweft.so.$version" ] &&
  [ -f "$libdir/libweft.so.$version" ] && [ ! -L "$libdir/libweft.so.$version" ] ||
  die "expected libweft.so -> libweft.so.$major -> libweft.so.$version in $libdir"
[ "$(objdump -p "$libdir/libweft.so.$version" | awk '$1 == "SONAME" {print $2}')" = "libweft.so.$major" ] ||
  die "libweft.so.$version has no SONAME libweft.so.$major"
found=$(cd "$prefix" && find . -name 'libweft*' | LC_ALL=C sort | tr '\n' ' ')
libs=$(cd "$prefix" && for f in libweft.so libweft.so.$major libweft.so.$version; do
         echo "./${libdir#"$prefix"/}/$f"; done | LC_ALL=C sort | tr '\n' ' ')
[ "$found" = "$libs" ] || die "libweft files: $found (expected $libs)"

# ---- one host, built two ways -------------------------------------------
# The host links libweft from libdir and, by its path, the Lua module; ldd
# proves neither comes from anywhere else.
run_host() { # name
  ldd "./$1" > "$1.ldd"
  awk -v l="libweft.so.$major" -v p="$libdir/libweft.so.$major" \
    '$1 == l && $3 == p {n++} END {exit n != 1}' "$1.ldd" &&
    awk -v m="$module" '$1 == m {n++} END {exit n != 1}' "$1.ldd" ||
    { cat "$1.ldd"; die "$1 does not load libweft and weft.so from $prefix"; }
  "./$1" > "$1.out" 2>&1 || { cat "$1.out"; die "$1 failed"; }
  printf "script: sees the host's every watcher\nscript: timer fired\n%s\n%s\n" \
    "host: script done: yes; host timer beat: yes" "host: loop freed: ok" > expected
  diff -u expected "$1.out" || die "$1: unexpected output"
  echo "$1 runs"
}

# shellcheck disable=SC2046 # pkg-config's output is a list of words
$cc -std=c11 -Wall -Wextra -Werror $cflags host.c -o host_pkgconfig \
  $(pkg-config --cflags --libs weft lua5.4) "$module" -Wl,-rpath,"$libdir"
run_host host_pkgconfig

CFLAGS="$cflags" LDFLAGS="$cflags" cmake -S . -B build -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  -DWEFT_EXPECTED_VERSION="$version" \
  > cmake.log 2>&1 && cmake --build build >> cmake.log 2>&1 ||
  { cat cmake.log; die "the find_package(weft) host did not build"; }
grep -q "^-- weft $version from $prefix/" cmake.log ||
  { cat cmake.log; die "find_package(weft) did not find weft $version in $prefix"; }
cp build/host host_cmake
run_host host_cmake
