#!/usr/bin/env bash
# Install the Debian packages libticketyboo needs to build, test and run.
# Idempotent and fast when everything is present (no apt-get update then).
# Usage: scripts/deps.sh [EXTRA_PACKAGE...]
set -euo pipefail

pkgs=(
	build-essential cmake ninja-build pkg-config
	libsqlite3-dev libsodium-dev libjansson-dev libcurl4-openssl-dev
	libmicrohttpd-dev libcmocka-dev
	libpq-dev postgresql
	python3 python3-venv python3-pip
	chromium curl
)
# Node 20 and npm may come from elsewhere; use Debian's only when node is absent.
if ! command -v node >/dev/null 2>&1; then
	pkgs+=(nodejs npm)
fi
pkgs+=("$@")

missing=()
for p in "${pkgs[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#pkgs[@]} packages present"
	exit 0
fi

echo "deps: installing: ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo=(sudo -n)
	else
		echo "deps: not root and no sudo; install these packages by hand: ${missing[*]}" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
