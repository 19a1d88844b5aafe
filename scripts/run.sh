#!/usr/bin/env bash
# The main job (README "Quick start"): install dependencies, build, and run.
#   - if the build produced the reference server (ticketyboo-server), exec it:
#       ticketyboo-server --port ${PORT:-8080} --db ./ticketyboo.db "$@"
#   - otherwise run the C demo: build/examples/c/demo ./ticketyboo-demo.db "$@"
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"

"$TB_ROOT/scripts/deps.sh"
build_dir="$TB_ROOT/build"
# Same configuration as scripts/test.sh's first build, so the two share one tree.
tb_configure_build "$build_dir" -DCMAKE_BUILD_TYPE=Debug -DTB_WERROR=ON -DTB_SANITIZE=OFF >&2

server=$(find "$build_dir" -type f -name ticketyboo-server -perm -u+x -print -quit)
if [ -n "$server" ]; then
	echo "== starting $server on port ${PORT:-8080}" >&2
	exec "$server" --port "${PORT:-8080}" --db ./ticketyboo.db "$@"
fi

demo="$build_dir/examples/c/demo"
if [ ! -x "$demo" ]; then
	echo "run.sh: neither ticketyboo-server nor $demo was built (examples/c/demo.c missing?)" >&2
	exit 1
fi
echo "== running $demo ./ticketyboo-demo.db" >&2
exec "$demo" ./ticketyboo-demo.db "$@"
