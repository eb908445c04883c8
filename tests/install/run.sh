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
# libcurl, zlib and cJSON: a build with SPECTATOR_DLOPEN_DEPS on (the default, read from the
# build's CMakeCache.txt) must link none of them anywhere: neither libspectator.so (readelf NEEDED,
# ldd), nor the programs built against the installed package, nor spectator.pc's private
# requirements, nor the static link flags. A build with it off must link all three.
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

dlopen_deps=$(sed -n 's/^SPECTATOR_DLOPEN_DEPS:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
case ${dlopen_deps^^} in
ON | 1 | TRUE | YES | Y) DEPS_MODE=dlopen ;;
*) DEPS_MODE=linked ;;
esac
echo "libcurl, zlib, cJSON: $DEPS_MODE (SPECTATOR_DLOPEN_DEPS=${dlopen_deps:-unset})"

# The three libraries' file names, as ldd and readelf -d print them.
DEP_FILES=(libcurl.so.4 libz.so.1 libcjson.so.1)

# no_deps <what> <ldd or readelf output>: in dlopen mode, the output must name none of the three.
no_deps() {
  [[ $DEPS_MODE == dlopen ]] || return 0
  local f
  for f in "${DEP_FILES[@]}"; do
    if grep -qF "$f" <<<"$2"; then
      printf '%s\n' "$2" >&2
      fail "$1 loads $f at exec, but the library was built to load it at run time"
    fi
  done
}

# all_deps <what> <ldd or readelf output>: in linked mode, the output must name all three.
all_deps() {
  [[ $DEPS_MODE == linked ]] || return 0
  local f
  for f in "${DEP_FILES[@]}"; do
    if ! grep -qF "$f" <<<"$2"; then
      printf '%s\n' "$2" >&2
      fail "$1 does not load $f at exec, but the library was built to link it"
    fi
  done
}

step "install $BUILD into $PREFIX"
cmake --install "$BUILD" --prefix "$PREFIX"

step "installed files"
[[ -f $PREFIX/include/spectator.h ]] || fail "include/spectator.h is not installed"
[[ -f $PREFIX/include/spectator.hpp ]] || fail "include/spectator.hpp is not installed"
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

step "spectator-aggregator: installed, and runs from another directory"
AGG_BIN=$PREFIX/bin/spectator-aggregator
[[ -x $AGG_BIN ]] || fail "bin/spectator-aggregator is not installed"
agg_out=$(cd "$TMP" && "$AGG_BIN" --port 0 --duration 0.2)
grep -qE '^web page: http://127\.0\.0\.1:[0-9]+/$' <<<"$agg_out" ||
  fail "spectator-aggregator did not print its page: $agg_out"
echo "$agg_out"

step "C++: examples/cpp_server.cpp built against the installed headers with pkg-config"
if command -v "${CXX:-c++}" >/dev/null; then
  # shellcheck disable=SC2046 # pkg-config output is a list of flags
  "${CXX:-c++}" -std=c++11 -Wall -Wextra -pedantic -Werror -o "$TMP/cpp_server" \
    "$SRC/examples/cpp_server.cpp" $(pkg-config --cflags --libs spectator) -pthread
  cpp_out=$(LD_LIBRARY_PATH="$LIBDIR" SPECTATOR_LOG_LEVEL=error "$TMP/cpp_server" 0.2)
  grep -qF 'server.requests{statistic=count,status=200}' <<<"$cpp_out" ||
    fail "cpp_server built against the installed headers did not report server.requests: $cpp_out"
  echo "cpp_server: built and ran"
else
  echo "no C++ compiler (${CXX:-c++}): skipped"
fi

step "shared library: SONAME and exported symbols"
soname=$(readelf -d "$LIBDIR/libspectator.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libspectator.so.0 ]] || fail "SONAME is '$soname', expected libspectator.so.0"
echo "SONAME: $soname"
# (Type A entries are the symbol version nodes, SPECTATOR_0.1 and on.)
nm -D --defined-only "$LIBDIR/libspectator.so" | awk '$2 != "A" {print $NF}' | sed 's/@.*//' |
  sort -u >"$TMP/exported"
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

step "shared library: libcurl, zlib, cJSON $DEPS_MODE"
needed=$(readelf -d "$LIBDIR/libspectator.so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
echo "NEEDED: $(echo "$needed" | tr '\n' ' ')"
deps=$(ldd "$LIBDIR/libspectator.so")
requires_private=$(pkg-config --print-requires-private spectator | tr '\n' ' ')
for pkg in libcurl zlib libcjson; do
  if [[ $DEPS_MODE == dlopen && " $requires_private " == *" $pkg "* ]]; then
    fail "spectator.pc lists $pkg in Requires.private: $requires_private"
  elif [[ $DEPS_MODE == linked && " $requires_private " != *" $pkg "* ]]; then
    fail "spectator.pc does not list $pkg in Requires.private: $requires_private"
  fi
done
if [[ $DEPS_MODE == dlopen ]]; then
  no_deps "libspectator.so (readelf -d)" "$needed"
  no_deps "libspectator.so (ldd)" "$deps"
  # Nothing but the C library and the dynamic loader (pthread and dl are
  # objects of their own before glibc 2.34): a program that links spectator-c
  # and never starts it loads no other shared object.
  others=$(grep -vE '^((libc|libpthread|libdl)\.so\.[0-9]+|ld-linux.*)$' <<<"$needed" || true)
  [[ -z $others ]] || fail "libspectator.so needs more than the C library: $(echo "$others" | tr '\n' ' ')"
  undefined=$(nm -D --undefined-only "$LIBDIR/libspectator.so")
  grep -qw 'dlopen' <<<"$undefined" || fail "libspectator.so does not call dlopen()"
  echo "none of them is linked or required: each is loaded with dlopen() at first use"
else
  all_deps "libspectator.so (readelf -d)" "$needed"
  echo "${DEP_FILES[*]} are linked"
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
no_deps "outside (ldd)" "$deps"
all_deps "outside (ldd)" "$deps"
LD_LIBRARY_PATH="$LIBDIR" "$TMP/outside"

step "pkg-config --static: build and run outside.c against libspectator.a"
static_libs=$(pkg-config --static --libs spectator)
expected_libs=(-lspectator -lpthread -lm)
if [[ $DEPS_MODE == dlopen ]]; then
  for lib in -lcurl -lz -lcjson; do
    [[ " $static_libs " != *" $lib "* ]] ||
      fail "pkg-config --static --libs spectator asks for $lib: $static_libs"
  done
else
  expected_libs+=(-lcurl -lz -lcjson)
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
  requires_libs=""
  # shellcheck disable=SC2086 # a list of package names
  [[ -z $requires ]] || requires_libs=$(pkg-config --libs $requires)
  # shellcheck disable=SC2046,SC2086
  "$CC" "${CFLAGS_STRICT[@]}" -o "$TMP/outside_static" "$HERE/outside.c" \
    $(pkg-config --cflags spectator) -L"$LIBDIR" -l:libspectator.a \
    $requires_libs $private
fi
dyn=$(readelf -d "$TMP/outside_static")
if grep -q 'libspectator\.so' <<<"$dyn"; then
  fail "outside_static still needs libspectator.so"
fi
no_deps "outside_static (readelf -d)" "$dyn"
all_deps "outside_static (readelf -d)" "$dyn"
"$TMP/outside_static"

step "CMake package version: 0.x releases are compatible within a minor version"
pkg_version=$header_version
IFS=. read -r v_major v_minor _ <<<"$pkg_version"
# find_package() includes the version file with the requested version set.
cat >"$TMP/version_check.cmake" <<'EOS'
string(REPLACE "." ";" parts "${PACKAGE_FIND_VERSION}.0.0")
list(GET parts 0 PACKAGE_FIND_VERSION_MAJOR)
list(GET parts 1 PACKAGE_FIND_VERSION_MINOR)
list(GET parts 2 PACKAGE_FIND_VERSION_PATCH)
set(PACKAGE_FIND_VERSION_COUNT 2)
include(${VERSION_FILE})
message("${PACKAGE_VERSION_COMPATIBLE}")
EOS
version_ok() {
  cmake -DPACKAGE_FIND_VERSION="$1" \
    -DVERSION_FILE="$LIBDIR/cmake/spectator/spectatorConfigVersion.cmake" -P "$TMP/version_check.cmake"
}
for req in "$v_major.$v_minor:TRUE" "$v_major.$v_minor.0:TRUE" "$v_major.$((v_minor + 1)):FALSE" \
  "$((v_major + 1)).$v_minor:FALSE"; do
  got=$(version_ok "${req%%:*}" 2>&1)
  [[ $got == "${req##*:}" ]] || fail "find_package(spectator ${req%%:*}) compatible: '$got', expected ${req##*:}"
done
if ((v_minor > 0)); then
  got=$(version_ok "$v_major.$((v_minor - 1))" 2>&1)
  [[ $got == FALSE ]] || fail "find_package(spectator $v_major.$((v_minor - 1))) accepts $pkg_version"
fi
echo "find_package(spectator $v_major.$v_minor) accepts $pkg_version; other minor versions do not"

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
no_deps "outside_cmake (ldd)" "$deps"
all_deps "outside_cmake (ldd)" "$deps"
LD_LIBRARY_PATH="$LIBDIR" "$TMP/consumer/outside_cmake"
dyn=$(readelf -d "$TMP/consumer/outside_cmake_static")
no_deps "outside_cmake_static (readelf -d)" "$dyn"
all_deps "outside_cmake_static (readelf -d)" "$dyn"
"$TMP/consumer/outside_cmake_static"

step "install test passed"
