#!/usr/bin/env bash
# Install test: install a finished build into a fresh temporary prefix and use it from outside
# the project, the way an application would.
#
# Usage: tests/install/run.sh <build dir> <source dir>
# (registered in ctest as "install"; needs cmake, cc, pkg-config, readelf and nm)
#
#   1. cmake --install <build dir> --prefix <tmp>
#   2. the installed files: header, libraries with their symlinks, spectator.pc, CMake package
#   3. the shared library: SONAME libspectator.so.0, exports exactly the functions the header
#      declares (all spectator_*, no internal spectator__*)
#   4. the static library: defines no global symbol outside the spectator_ prefix
#   5. outside.c built with pkg-config (shared, then --static) and run
#   6. outside.c built by a CMake project with find_package(spectator) (shared and static) and run
#
# libcurl: a build with SPECTATOR_DLOPEN_CURL on (the default, read from the build's CMakeCache.txt)
# must not link it anywhere: neither libspectator.so (readelf NEEDED, ldd), nor the programs built
# against the installed package, nor spectator.pc's private requirements. A build with it off
# must link it.
set -euo pipefail

if (($# != 2)); then
  echo "usage: $0 <build dir> <source dir>" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
HERE="$SRC/tests/install"
CC=${CC:-cc}

# outside.c needs no network and no publisher.
export SPECTATOR_DISABLE_AUTO_START=1
unset SPECTATOR_URI DESTDIR

TMP=$(mktemp -d "${TMPDIR:-/tmp}/spectator-install.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
PREFIX="$TMP/prefix"

step() { printf '\n--- %s\n' "$*"; }
fail() {
  printf 'install test FAILED: %s\n' "$*" >&2
  exit 1
}

dlopen_curl=$(sed -n 's/^SPECTATOR_DLOPEN_CURL:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
case ${dlopen_curl^^} in
ON | 1 | TRUE | YES | Y) CURL_MODE=dlopen ;;
*) CURL_MODE=linked ;;
esac
echo "libcurl: $CURL_MODE (SPECTATOR_DLOPEN_CURL=${dlopen_curl:-unset})"

# no_libcurl <what> <ldd or readelf output>: in dlopen mode, the output must not name libcurl.
no_libcurl() {
  [[ $CURL_MODE == dlopen ]] || return 0
  if grep -q 'libcurl' <<<"$2"; then
    printf '%s\n' "$2" >&2
    fail "$1 loads libcurl at exec, but the library was built to load it at run time"
  fi
}

step "install $BUILD into $PREFIX"
cmake --install "$BUILD" --prefix "$PREFIX"

step "installed files"
[[ -f $PREFIX/include/spectator.h ]] || fail "include/spectator.h is not installed"
PC=$(find "$PREFIX" -name spectator.pc -path '*/pkgconfig/*' | head -n 1)
[[ -n $PC ]] || fail "spectator.pc is not installed"
PKGDIR=$(dirname "$PC")
LIBDIR=$(dirname "$PKGDIR")
echo "libdir: ${LIBDIR#"$PREFIX"/}"
for f in libspectator.so libspectator.so.0 libspectator.a; do
  [[ -e $LIBDIR/$f ]] || fail "$f is not installed in $LIBDIR"
done
[[ -L $LIBDIR/libspectator.so && -L $LIBDIR/libspectator.so.0 ]] ||
  fail "libspectator.so and libspectator.so.0 must be symlinks"
[[ -f $LIBDIR/cmake/spectator/spectatorConfig.cmake ]] ||
  fail "the CMake package is not installed in $LIBDIR/cmake/spectator"
ls -l "$LIBDIR"

export PKG_CONFIG_PATH="$PKGDIR"
header_version=$(sed -n 's/^#define SPECTATOR_VERSION_STRING "\(.*\)"$/\1/p' "$PREFIX/include/spectator.h")
pc_version=$(pkg-config --modversion spectator)
[[ $pc_version == "$header_version" ]] ||
  fail "spectator.pc says version $pc_version, the header $header_version"
cflags=$(pkg-config --cflags spectator)
[[ $cflags == *"-I$PREFIX/include"* ]] ||
  fail "pkg-config --cflags ($cflags) does not point into the install prefix $PREFIX"
echo "pkg-config: spectator $pc_version, cflags: $cflags"

step "shared library: SONAME and exported symbols"
soname=$(readelf -d "$LIBDIR/libspectator.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libspectator.so.0 ]] || fail "SONAME is '$soname', expected libspectator.so.0"
echo "SONAME: $soname"
nm -D --defined-only "$LIBDIR/libspectator.so" | awk '{print $NF}' | sed 's/@.*//' | sort -u \
  >"$TMP/exported"
bad=$(grep -v '^spectator_' "$TMP/exported" || true)
[[ -z $bad ]] || fail "symbols exported outside the spectator_ prefix: $(echo "$bad" | tr '\n' ' ')"
bad=$(grep '^spectator__' "$TMP/exported" || true)
[[ -z $bad ]] || fail "internal symbols exported: $(echo "$bad" | tr '\n' ' ')"
# Every function the header declares is exported, and nothing else.
perl -0777 -ne 'while (/SPECTATOR_EXTERN[^;]*?\b(spectator_\w+)\s*\(/g) { print "$1\n" }' \
  "$PREFIX/include/spectator.h" | sort -u >"$TMP/declared"
missing=$(comm -23 "$TMP/declared" "$TMP/exported")
[[ -z $missing ]] || fail "declared in spectator.h but not exported: $(echo "$missing" | tr '\n' ' ')"
extra=$(comm -13 "$TMP/declared" "$TMP/exported")
[[ -z $extra ]] || fail "exported but not declared in spectator.h: $(echo "$extra" | tr '\n' ' ')"
echo "exports exactly the $(wc -l <"$TMP/declared") functions of spectator.h"

step "shared library: libcurl $CURL_MODE"
needed=$(readelf -d "$LIBDIR/libspectator.so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
echo "NEEDED: $(echo "$needed" | tr '\n' ' ')"
deps=$(ldd "$LIBDIR/libspectator.so")
requires_private=$(pkg-config --print-requires-private spectator | tr '\n' ' ')
if [[ $CURL_MODE == dlopen ]]; then
  no_libcurl "libspectator.so (readelf -d)" "$needed"
  no_libcurl "libspectator.so (ldd)" "$deps"
  undefined=$(nm -D --undefined-only "$LIBDIR/libspectator.so")
  grep -qw 'dlopen' <<<"$undefined" || fail "libspectator.so does not call dlopen()"
  [[ " $requires_private " != *" libcurl "* ]] ||
    fail "spectator.pc lists libcurl in Requires.private: $requires_private"
  echo "libcurl is neither linked nor required: loaded with dlopen() by the first start"
else
  grep -q 'libcurl\.so\.4' <<<"$needed" || fail "libspectator.so does not link libcurl.so.4"
  [[ " $requires_private " == *" libcurl "* ]] ||
    fail "spectator.pc does not list libcurl in Requires.private: $requires_private"
  echo "libcurl.so.4 is linked"
fi

step "static library: global symbols"
# Defined global symbols (T, D, B, R...) of every member; internal ones are spectator__*.
bad=$(nm -g --defined-only "$LIBDIR/libspectator.a" 2>/dev/null |
  awk 'NF == 3 {print $3}' | grep -v '^spectator_' | sort -u || true)
[[ -z $bad ]] || fail "libspectator.a defines global symbols outside the spectator_ prefix: $(echo "$bad" | tr '\n' ' ')"
echo "all global symbols are spectator_*"

CFLAGS_STRICT=(-std=c11 -Wall -Wextra -Wpedantic -Werror)

step "pkg-config, shared: build and run outside.c"
# shellcheck disable=SC2046 # pkg-config output is a list of words
"$CC" "${CFLAGS_STRICT[@]}" -o "$TMP/outside" "$HERE/outside.c" $(pkg-config --cflags --libs spectator)
# (ldd's output is captured first: with pipefail, grep -q closing the pipe
# early can fail the pipeline with SIGPIPE even when the line was found)
deps=$(LD_LIBRARY_PATH="$LIBDIR" ldd "$TMP/outside")
grep -q "$LIBDIR/libspectator.so.0" <<<"$deps" ||
  fail "outside does not load libspectator.so.0 from $LIBDIR"
no_libcurl "outside (ldd)" "$deps"
LD_LIBRARY_PATH="$LIBDIR" "$TMP/outside"

step "pkg-config --static: build and run outside.c against libspectator.a"
static_libs=$(pkg-config --static --libs spectator)
expected_libs=(-lspectator -lz -lcjson -lpthread -lm)
if [[ $CURL_MODE == dlopen ]]; then
  [[ " $static_libs " != *" -lcurl "* ]] ||
    fail "pkg-config --static --libs spectator asks for -lcurl: $static_libs"
else
  expected_libs+=(-lcurl)
fi
for lib in "${expected_libs[@]}"; do
  [[ " $static_libs " == *" $lib "* ]] || fail "pkg-config --static --libs spectator lacks $lib: $static_libs"
done
# The directory holds both libraries; name the archive so the linker cannot pick the .so.
static_libs=${static_libs/-lspectator/-l:libspectator.a}
# shellcheck disable=SC2046,SC2086 # pkg-config output is a list of words
if "$CC" "${CFLAGS_STRICT[@]}" -o "$TMP/outside_static" "$HERE/outside.c" \
  $(pkg-config --static --cflags spectator) $static_libs 2>"$TMP/static.log"; then
  echo "fully static dependency link: ok"
else
  # pkg-config --static also asks for the static libraries of libcurl's own dependencies
  # (nghttp2, ssh2, ldap...), which Debian's libcurl4-openssl-dev does not pull in. Link
  # libspectator.a with its direct dependencies shared instead: what an application does.
  echo "note: a fully static link needs static libraries that are not installed:"
  grep -o 'cannot find -l[^:]*' "$TMP/static.log" | sort -u | sed 's/^/  /' || true
  requires=$(pkg-config --print-requires-private spectator | awk '{print $1}')
  private=$(sed -n 's/^Libs.private: *//p' "$PC")
  echo "linking libspectator.a with shared $(echo "$requires" | tr '\n' ' ')$private"
  # shellcheck disable=SC2046,SC2086
  "$CC" "${CFLAGS_STRICT[@]}" -o "$TMP/outside_static" "$HERE/outside.c" \
    $(pkg-config --cflags spectator) -L"$LIBDIR" -l:libspectator.a \
    $(pkg-config --libs $requires) $private
fi
dyn=$(readelf -d "$TMP/outside_static")
if grep -q 'libspectator\.so' <<<"$dyn"; then
  fail "outside_static still needs libspectator.so"
fi
no_libcurl "outside_static (readelf -d)" "$dyn"
"$TMP/outside_static"

step "find_package(spectator): configure, build and run tests/install/CMakeLists.txt"
cmake -S "$HERE" -B "$TMP/consumer" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >"$TMP/consumer.log" 2>&1 ||
  {
    cat "$TMP/consumer.log"
    fail "the find_package consumer does not configure"
  }
grep -q "spectator_DIR:PATH=$LIBDIR/cmake/spectator" "$TMP/consumer/CMakeCache.txt" ||
  fail "find_package did not find the package in $LIBDIR/cmake/spectator"
cmake --build "$TMP/consumer"
deps=$(LD_LIBRARY_PATH="$LIBDIR" ldd "$TMP/consumer/outside_cmake")
grep -q "$LIBDIR/libspectator.so.0" <<<"$deps" ||
  fail "outside_cmake does not load libspectator.so.0 from $LIBDIR"
no_libcurl "outside_cmake (ldd)" "$deps"
LD_LIBRARY_PATH="$LIBDIR" "$TMP/consumer/outside_cmake"
no_libcurl "outside_cmake_static (readelf -d)" "$(readelf -d "$TMP/consumer/outside_cmake_static")"
"$TMP/consumer/outside_cmake_static"

step "install test passed"
