#!/usr/bin/env bash
# Install test: install the build into a temporary prefix, then build
# tests/install/app.c against it (a) with pkg-config and (b) as a CMake project
# using find_package(ticketyboo); each program must run and exit 0.
#
# Usage: run.sh BUILD_DIR SOURCE_DIR
# Env:   TB_CONSUMER_CFLAGS  extra flags for compiling/linking consumers (sanitizer builds)
#        TB_CMAKE_GENERATOR  generator for the consumer project (default: cmake's)
#        TB_TEST_TMPDIR      where to put the prefix (default: mktemp)
set -euo pipefail

build=${1:?usage: run.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: run.sh BUILD_DIR SOURCE_DIR}
here="$src/tests/install"
cflags=${TB_CONSUMER_CFLAGS:-}
cc=${CC:-cc}

work=$(mktemp -d "${TB_TEST_TMPDIR:-${TMPDIR:-/tmp}}/install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

step() { printf '\n== install test: %s\n' "$*"; }

step "cmake --install into $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; exit 1; }

pc=$(find "$prefix" -name ticketyboo.pc -print -quit)
[ -n "$pc" ] || { echo "ticketyboo.pc was not installed" >&2; exit 1; }
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")
echo "pkg-config file: $pc"

step "pkg-config consumer"
# shellcheck disable=SC2046 # word splitting of pkg-config output is intended
flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs ticketyboo)
echo "pkg-config --cflags --libs ticketyboo: $flags"
case "$flags" in *"$prefix"*) ;; *) echo "pkg-config flags do not point into the install prefix" >&2; exit 1;; esac
# shellcheck disable=SC2086
"$cc" -std=c11 -Wall -Wextra -Werror $cflags -o "$work/app_pc" "$here/app.c" $flags
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/app_pc"

step "CMake find_package consumer (shared and static)"
gen=()
[ -n "${TB_CMAKE_GENERATOR:-}" ] && gen=(-G "$TB_CMAKE_GENERATOR")
cmake -S "$here/cmake" -B "$work/consumer" "${gen[@]}" \
	-DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_BUILD_TYPE=Debug \
	-DCMAKE_C_FLAGS="$cflags" \
	-DCMAKE_EXE_LINKER_FLAGS="$cflags" >"$work/consumer.log" 2>&1 || { cat "$work/consumer.log"; exit 1; }
cmake --build "$work/consumer" >>"$work/consumer.log" 2>&1 || { cat "$work/consumer.log"; exit 1; }
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/consumer/app"
"$work/consumer/app_static"

# The shared consumer must really use the installed library.
if command -v ldd >/dev/null; then
	# Capture first: grep -q closing the pipe early would fail the pipeline.
	deps=$(LD_LIBRARY_PATH="$libdir" ldd "$work/consumer/app")
	case "$deps" in
	*"$libdir/libticketyboo.so"*) ;;
	*)
		echo "consumer app is not linked to the installed libticketyboo.so" >&2
		printf '%s\n' "$deps" >&2
		exit 1
		;;
	esac
fi

step "ok"
