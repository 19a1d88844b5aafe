#!/usr/bin/env bash
# Stop and remove the cluster that tests/postgres/start.sh started in DIR
# (the cleanup of the ctest fixture "tb_postgres"; runs even when tests fail).
# Usage: stop.sh DIR
set -euo pipefail

dir=${1:?usage: stop.sh DIR}
[ -f "$dir/cluster_path" ] || { echo "stop.sh: no cluster recorded in $dir"; exit 0; }
cluster=$(cat "$dir/cluster_path")
data="$cluster/data"

as_owner=()
[ "$(id -u)" -eq 0 ] && as_owner=(runuser -u postgres --)
bindir=
if [ -f "$data/PG_VERSION" ]; then
	bindir="/usr/lib/postgresql/$(cat "$data/PG_VERSION")/bin"
	[ -x "$bindir/pg_ctl" ] || bindir=${TB_PG_BINDIR:-$(dirname "$(command -v pg_ctl)")}
fi

rc=0
if [ -n "$bindir" ] && [ -f "$data/postmaster.pid" ]; then
	"${as_owner[@]}" "$bindir/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null || {
		rc=1
		"${as_owner[@]}" "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null || true
	}
fi
# Keep the server log beside the conninfo; drop the data.
cp "$cluster/server.log" "$dir/server.log" 2>/dev/null || true
rm -rf "$cluster" "$dir/cluster_path" "$dir/conninfo"
echo "stop.sh: cluster stopped and removed"
exit $rc
