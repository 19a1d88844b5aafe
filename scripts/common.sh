# Shared by scripts/run.sh and scripts/test.sh (sourced, not run).
# tb_configure_build DIR [CMAKE_ARGS...]: configure (Ninja) and build DIR with -j2.

TB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export TB_ROOT
TB_JOBS=${TB_JOBS:-2}
export TB_JOBS

tb_configure_build() {
	local dir=$1
	shift
	# A tree configured with another generator cannot be reused: start over.
	if [ -f "$dir/CMakeCache.txt" ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt"; then
		echo "== $dir was configured with another generator; removing it"
		rm -rf "$dir"
	fi
	echo "== configure $dir ($*)"
	cmake -S "$TB_ROOT" -B "$dir" -G Ninja "$@" || return 1
	echo "== build $dir"
	cmake --build "$dir" -j "$TB_JOBS" || return 1
}
