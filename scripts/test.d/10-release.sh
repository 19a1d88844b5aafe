#!/usr/bin/env bash
# An optimised build (-O3 with _FORTIFY_SOURCE=3 and the stack protector)
# under -Werror: some warnings only appear with optimisation.  Runs the C
# suites once more there.
set -euo pipefail
. "$TB_ROOT/scripts/common.sh"
dir="$TB_ROOT/build-release"
tb_configure_build "$dir" -DCMAKE_BUILD_TYPE=Release -DTB_WERROR=ON -DTB_SANITIZE=OFF
ctest --test-dir "$dir" --output-on-failure -j "$TB_JOBS"
