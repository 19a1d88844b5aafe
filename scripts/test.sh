#!/usr/bin/env bash
# THE test command (README "Quick start"; .ci/run calls exactly this).
#
# Steps, each counted as passed or failed (a failing step never aborts the rest):
#   1. build/       Debug, TB_WERROR=ON             -> ctest
#   2. build-asan/  Debug, TB_SANITIZE=ON (ASan+UBSan) -> ctest
#   3. every executable scripts/test.d/*.sh, in sorted order (see its README.txt)
# Ends with the line "N passed, N failed" and exits non-zero if any step failed.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"
cd "$TB_ROOT"

passed=0
failed=0
summary=()
record() { # record NAME STATUS
	if [ "$2" -eq 0 ]; then
		passed=$((passed + 1)); summary+=("PASS  $1")
	else
		failed=$((failed + 1)); summary+=("FAIL  $1 (exit $2)")
	fi
}

if ! "$TB_ROOT/scripts/deps.sh"; then
	echo "== deps.sh failed; carrying on with what is installed" >&2
	record deps 1
fi

# build_and_ctest NAME DIR CMAKE_ARGS...
build_and_ctest() {
	local name=$1 dir=$2 rc=0
	shift 2
	tb_configure_build "$dir" "$@" || rc=$?
	if [ $rc -ne 0 ]; then
		echo "== $name: configure/build failed" >&2
		record "$name" "$rc"
		return 0
	fi
	echo "== ctest $dir"
	ctest --test-dir "$dir" --output-on-failure -j "$TB_JOBS" || rc=$?
	record "$name" "$rc"
}

build_dir="$TB_ROOT/build"
build_and_ctest "ctest build (Debug, -Werror)" "$build_dir" \
	-DCMAKE_BUILD_TYPE=Debug -DTB_WERROR=ON -DTB_SANITIZE=OFF

ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	build_and_ctest "ctest build-asan (ASan+UBSan)" "$TB_ROOT/build-asan" \
	-DCMAKE_BUILD_TYPE=Debug -DTB_WERROR=ON -DTB_SANITIZE=ON

# Drop-in steps: scripts/test.d/*.sh (contract in scripts/test.d/README.txt).
export TB_BUILD_DIR="$build_dir"
shopt -s nullglob
dropins=("$TB_ROOT"/scripts/test.d/*.sh)
shopt -u nullglob
if [ ${#dropins[@]} -gt 0 ]; then
	mapfile -t dropins < <(printf '%s\n' "${dropins[@]}" | LC_ALL=C sort)
fi
for f in "${dropins[@]}"; do
	name="test.d/$(basename "$f")"
	if [ ! -x "$f" ]; then
		echo "== $name is not executable; skipped"
		continue
	fi
	echo "== $name"
	rc=0
	"$f" </dev/null || rc=$?
	record "$name" "$rc"
done

echo
echo "== summary"
printf '  %s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
