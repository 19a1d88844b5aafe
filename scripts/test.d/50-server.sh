#!/usr/bin/env bash
# scripts/test.d/50-server.sh - the reference server (examples/server):
#   1. its HTTP suite (node --test) against the Debug build's ticketyboo-server,
#   2. the same suite against the ASan+UBSan build's binary when there is one
#      (leaks or UB make the server's exit status non-zero, which fails the suite),
#   3. the browser test: Debian's Chromium driven by playwright-core, two users,
#      live updates; screenshots land in $TB_BUILD_DIR/artifacts/server-ui/.
# The tests run from a copy under the build dir, where `npm ci` installs
# playwright-core (once per lockfile; nothing is downloaded when it is current).
set -uo pipefail

TB_ROOT=${TB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
TB_BUILD_DIR=${TB_BUILD_DIR:-$TB_ROOT/build}
src="$TB_ROOT/examples/server/tests"
work="$TB_BUILD_DIR/examples/server/node-tests"
artifacts="$TB_BUILD_DIR/artifacts/server-ui"
server="$TB_BUILD_DIR/examples/server/ticketyboo-server"
asan_server="$TB_ROOT/build-asan/examples/server/ticketyboo-server"
chromium=${TBS_CHROMIUM:-/usr/bin/chromium}

if [ ! -x "$server" ]; then
	echo "50-server: $server was not built (libmicrohttpd-dev missing? TB_BUILD_SERVER=OFF?)" >&2
	exit 1
fi
if ! command -v node >/dev/null 2>&1; then
	"$TB_ROOT/scripts/deps.sh" nodejs npm || exit 1
fi
if [ ! -x "$chromium" ]; then
	"$TB_ROOT/scripts/deps.sh" chromium || echo "50-server: could not install chromium" >&2
fi

echo "== 50-server: tests copied to $work"
mkdir -p "$work/lib" "$artifacts"
cp "$src"/package.json "$src"/package-lock.json "$src"/*.mjs "$work"/
cp "$src"/lib/*.mjs "$work"/lib/
stamp="$work/node_modules/.package-lock.json.installed"
if ! cmp -s "$src/package-lock.json" "$stamp" 2>/dev/null; then
	echo "== 50-server: npm ci (playwright-core; no browser download)"
	if (cd "$work" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error); then
		cp "$src/package-lock.json" "$stamp"
	else
		echo "50-server: npm ci failed" >&2
	fi
fi

# The library's fake Stripe server, when the tree has it (the --payments stripe tests use it).
if [ -f "$TB_ROOT/tests/fake_stripe/fake_stripe.py" ]; then
	export TBS_FAKE_STRIPE="$TB_ROOT/tests/fake_stripe/fake_stripe.py"
fi

rc=0
run() { # run LABEL ENV... -- node args
	local label=$1
	shift
	echo "== 50-server: $label"
	if ! (cd "$work" && env "$@"); then
		echo "== 50-server: FAILED: $label" >&2
		rc=1
	fi
}

run "HTTP suite, Debug build" TBS_SERVER="$server" node --test api.test.mjs
if [ -x "$asan_server" ]; then
	run "HTTP suite, ASan+UBSan build" TBS_SERVER="$asan_server" \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		node --test api.test.mjs
else
	echo "== 50-server: no ASan build at $asan_server; skipping the sanitizer run"
fi
if [ ! -d "$work/node_modules/playwright-core" ] || [ ! -x "$chromium" ]; then
	echo "50-server: the browser test needs playwright-core (npm ci) and $chromium" >&2
	rc=1
else
	run "browser test (Chromium)" TBS_SERVER="$server" TBS_CHROMIUM="$chromium" \
		TBS_ARTIFACTS="$artifacts" node --test browser.test.mjs
	echo "== 50-server: screenshots in $artifacts"
fi
exit $rc
