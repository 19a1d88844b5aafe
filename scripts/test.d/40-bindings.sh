#!/usr/bin/env bash
# Drop-in test step (scripts/test.d/README.txt): the Python and Node bindings,
# built the way a user builds them, then their tests and walkthroughs.
#
#   Python  venv under $TB_BUILD_DIR/bindings; pip install ./bindings/python
#           (scikit-build-core compiles libticketyboo and the SWIG extension);
#           pytest bindings/python/tests; examples/python/walkthrough.py;
#           python -m build (sdist, then a wheel from that sdist).
#   Node    npm install of ./bindings/node into a scratch project (built in
#           place with the pinned SWIG); npm pack, and an install of that
#           tarball into a second scratch project with no SWIG anywhere;
#           node --test bindings/node/test against the installed tarball;
#           examples/node/walkthrough.js.
#   Types   mypy --strict over the walkthrough and the package; tsc --strict
#           over bindings/node/test/types.check.ts against index.d.ts.
# Wrappers are compiled with -Werror here (TB_BINDINGS_WERROR).
# Every step runs even if an earlier one failed; the exit status says
# whether all passed.
set -uo pipefail

TB_ROOT=${TB_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
TB_BUILD_DIR=${TB_BUILD_DIR:-$TB_ROOT/build}
cd "$TB_ROOT" || exit 1

work="$TB_BUILD_DIR/bindings"
venv="$work/venv"
py="$venv/bin/python"
pin=$(cat bindings/SWIG_VERSION)
mkdir -p "$work"

failed=()
passed=0
step() { # step NAME CMD...: run, time and record one step
	local name=$1 rc=0 t0=$SECONDS
	shift
	echo "== bindings: $name"
	"$@" || rc=$?
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		echo "== bindings: $name: ok ($((SECONDS - t0)) s)"
	else
		failed+=("$name (exit $rc)")
		echo "== bindings: $name: FAILED (exit $rc, $((SECONDS - t0)) s)" >&2
	fi
}

# ---------------------------------------------------------------- Python ----

setup_venv() {
	if ! grep -q "\"swig==$pin\"" bindings/python/pyproject.toml; then
		echo "bindings/python/pyproject.toml does not pin swig==$pin (bindings/SWIG_VERSION)" >&2
		return 1
	fi
	if ! grep -q "\"node-addon-api\"" bindings/node/package.json; then
		echo "bindings/node/package.json lacks node-addon-api" >&2
		return 1
	fi
	[ -x "$py" ] || python3 -m venv "$venv" || return 1
	"$py" -m pip install -q --disable-pip-version-check "swig==$pin" "pytest>=7" "build>=1"
}

pip_install() {
	"$py" -m pip install --disable-pip-version-check --force-reinstall --no-deps \
		-C cmake.define.TB_BINDINGS_WERROR=ON ./bindings/python
}

pytest_run() {
	local rc=0
	(cd bindings/python && "$py" -m pytest -q -s -rs -p no:cacheprovider tests) || rc=$?
	if [ $rc -eq 5 ]; then
		echo "pytest collected no tests" >&2
	fi
	return $rc
}

python_example() {
	(cd "$work" && "$py" "$TB_ROOT/examples/python/walkthrough.py")
}

python_build() {
	rm -rf "$work/dist"
	"$py" -m build --outdir "$work/dist" bindings/python || return 1
	local sdist wheel
	sdist=$(ls "$work"/dist/ticketyboo-*.tar.gz) && wheel=$(ls "$work"/dist/ticketyboo-*.whl) || return 1
	echo "built $sdist and $wheel (the wheel from the sdist)"
	# (lists captured first: `tar | grep -q` fails under pipefail when grep exits early)
	local files
	files=$(tar -tzf "$sdist") || return 1
	grep -q '/ticketyboo.i$' <<<"$files" || { echo "the sdist lacks ticketyboo.i" >&2; return 1; }
	grep -q '/vendor/libticketyboo/src/' <<<"$files" || { echo "the sdist lacks the library sources" >&2; return 1; }
	files=$("$py" -m zipfile -l "$wheel") || return 1
	grep -Eq 'ticketyboo/_core\..*so' <<<"$files" || { echo "the wheel lacks the extension" >&2; return 1; }
	grep -q 'ticketyboo/core.pyi' <<<"$files" || { echo "the wheel lacks the stubs" >&2; return 1; }
}

python_types() {
	"$py" -m pip install -q --disable-pip-version-check mypy &&
		"$py" -m mypy --strict --cache-dir "$work/mypy-cache" examples/python/walkthrough.py &&
		"$py" -m mypy --strict --cache-dir "$work/mypy-cache" -p ticketyboo
}

step "python venv (swig==$pin, pytest, build)" setup_venv
step "pip install ./bindings/python" pip_install
step "pytest bindings/python/tests" pytest_run
step "python examples/python/walkthrough.py" python_example
step "python -m build bindings/python (sdist -> wheel)" python_build
step "mypy --strict: the walkthrough and the package (py.typed, core.pyi)" python_types

# ------------------------------------------------------------------ Node ----

npm_q=(--no-audit --no-fund --loglevel=warn)
dev="$work/node-dev"
consumer="$work/node-consumer"

new_project() { # new_project DIR SPEC: an empty npm project allowed to run ticketyboo's install script
	# (npm 11 keys allowScripts by the dependency's spec, e.g. "file:/abs/ticketyboo-0.1.0.tgz")
	rm -rf "$1" && mkdir -p "$1" && cat >"$1/package.json" <<-EOF
		{ "name": "ticketyboo-consumer", "version": "1.0.0", "private": true,
		  "allowScripts": { "ticketyboo": true, "file:$2": true } }
	EOF
}

npm_install_dev() {
	# The repository's package, linked and built in place; the wrapper is
	# generated with the pinned SWIG from the venv.
	new_project "$dev" "$TB_ROOT/bindings/node" &&
		(cd "$dev" && SWIG="$venv/bin/swig" TB_BINDINGS_WERROR=1 \
			npm install "${npm_q[@]}" --foreground-scripts "$TB_ROOT/bindings/node") &&
		(cd "$dev" && node -e "require('ticketyboo')")
}

npm_pack_and_install() {
	rm -f "$work"/ticketyboo-*.tgz
	(cd bindings/node && SWIG="$venv/bin/swig" npm pack "${npm_q[@]}" --pack-destination "$work") || return 1
	local tarball
	tarball=$(ls "$work"/ticketyboo-*.tgz) || return 1
	local files
	files=$(tar -tzf "$tarball") || return 1
	grep -q '^package/src/ticketyboo_wrap.cxx$' <<<"$files" || { echo "the tarball lacks the wrapper" >&2; return 1; }
	grep -q '^package/index.d.ts$' <<<"$files" || { echo "the tarball lacks index.d.ts" >&2; return 1; }
	grep -q '^package/vendor/libticketyboo/CMakeLists.txt$' <<<"$files" || { echo "the tarball lacks the library" >&2; return 1; }
	# No SWIG anywhere: installing the tarball must not need it.
	new_project "$consumer" "$tarball" &&
		(cd "$consumer" && env -u SWIG PATH="/usr/local/bin:/usr/bin:/bin" TB_BINDINGS_WERROR=1 \
			npm install "${npm_q[@]}" --foreground-scripts "$tarball") &&
		(cd "$consumer" && node -e "const tb = require('ticketyboo'); console.log('require(\"ticketyboo\") ok:', Object.keys(tb).length, 'exports')")
}

node_tests() {
	local out rc=0
	out=$(TICKETYBOO_MODULE="$consumer/node_modules/ticketyboo" node --expose-gc --test bindings/node/test/ 2>&1) || rc=$?
	echo "$out"
	if ! echo "$out" | grep -Eq '^# pass [1-9]'; then
		echo "node --test ran no test" >&2
		return 1
	fi
	return $rc
}

node_example() {
	(cd "$work" && NODE_PATH="$dev/node_modules" node "$TB_ROOT/examples/node/walkthrough.js")
}

node_types() {
	# index.d.ts against the installed tarball, as a TypeScript user sees it
	(cd "$consumer" && npm install "${npm_q[@]}" --no-save typescript@5 @types/node@20 &&
		cp "$TB_ROOT/bindings/node/test/types.check.ts" . &&
		npx --no-install tsc --noEmit --strict --target es2022 --module commonjs --moduleResolution node \
			--types node types.check.ts)
}

step "npm install ./bindings/node (in place, pinned SWIG)" npm_install_dev
step "npm pack, and install the tarball without SWIG" npm_pack_and_install
step "node --test bindings/node/test" node_tests
step "node examples/node/walkthrough.js" node_example
step "tsc --strict against index.d.ts" node_types

echo "== bindings: $passed passed, ${#failed[@]} failed"
for f in "${failed[@]}"; do
	echo "   FAILED: $f" >&2
done
[ ${#failed[@]} -eq 0 ]
