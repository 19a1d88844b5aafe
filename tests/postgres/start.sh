#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the tests (the ctest fixture
# "tb_postgres"; tests/postgres/stop.sh is its cleanup).
#
# Usage: start.sh [DIR]   (DIR defaults to $TB_TEST_TMPDIR)
# Writes DIR/conninfo, a libpq "key=value" string for a fresh database.
#
# The server is for tests only: it listens on a Unix socket in a private
# directory and nowhere else (no TCP), trusts local connections, and runs
# without fsync.  initdb refuses to run as root, so as root (CI) the cluster
# belongs to the "postgres" user and the server runs as that user.
# Binaries: $TB_PG_BINDIR, else the newest /usr/lib/postgresql/*/bin, else PATH.
# Without binaries it exits 77 (ctest: skipped), or fails when $CI is set.
set -euo pipefail

dir=${1:-${TB_TEST_TMPDIR:?usage: start.sh DIR}}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rm -f "$dir/conninfo" "$dir/cluster_path"

bindir=
for d in ${TB_PG_BINDIR:-} $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) \
	"$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"; do
	if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
		bindir=$d
		break
	fi
done
if [ -z "$bindir" ]; then
	echo "start.sh: no PostgreSQL server binaries (initdb, pg_ctl); install postgresql (scripts/deps.sh)" >&2
	[ -n "${CI:-}" ] && exit 1
	exit 77
fi

as_owner=()
if [ "$(id -u)" -eq 0 ]; then
	id postgres >/dev/null 2>&1 || { echo "start.sh: running as root but there is no 'postgres' user" >&2; exit 1; }
	as_owner=(runuser -u postgres --)
fi

# The cluster goes under DIR if its owner can reach it and the socket path
# fits in sun_path (107 bytes); otherwise into a private directory in /tmp.
cluster="$dir/cluster"
mkdir -p "$cluster"
[ ${#as_owner[@]} -eq 0 ] || chown postgres: "$cluster"
if ! "${as_owner[@]}" test -w "$cluster" || [ ${#cluster} -gt 80 ]; then
	rm -rf "$cluster"
	cluster=$(mktemp -d "${TMPDIR:-/tmp}/tb-pg.XXXXXX")
	[ ${#as_owner[@]} -eq 0 ] || chown postgres: "$cluster"
fi
chmod 700 "$cluster"
echo "$cluster" >"$dir/cluster_path"
data="$cluster/data"
sock="$cluster/sock"
"${as_owner[@]}" mkdir -p "$sock"

pg() { "${as_owner[@]}" "$bindir/$@"; }

started=0
cleanup() {
	if [ $started -eq 1 ]; then
		pg pg_ctl -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	cat "$cluster/server.log" >&2 2>/dev/null || true
}
trap 'cleanup' ERR

echo "start.sh: initdb in $data ($bindir)"
pg initdb -D "$data" -U postgres -A trust -E UTF8 --locale=C -N >"$dir/initdb.log" 2>&1 \
	|| { cat "$dir/initdb.log" >&2; exit 1; }
# Test settings: no durability, short deadlock detection, room for pools.
cat >>"$data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$sock'
port = 5432
fsync = off
synchronous_commit = off
full_page_writes = off
deadlock_timeout = 100ms
max_connections = 200
CONF
started=1
pg pg_ctl -D "$data" -l "$cluster/server.log" -w -t 60 start >/dev/null
"$bindir/createdb" -h "$sock" -p 5432 -U postgres ticketyboo
trap - ERR
printf "host='%s' port=5432 user=postgres dbname=ticketyboo\n" "$sock" >"$dir/conninfo"
echo "start.sh: server up; conninfo in $dir/conninfo"
