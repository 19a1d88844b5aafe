#!/usr/bin/env bash
# Exported-symbol check: every symbol the shared library defines in its dynamic
# symbol table must be public API (tb_*), and no cross-file internal
# (tb_<module>__<name>) may leak.  Usage: check_symbols.sh path/to/libticketyboo.so
set -euo pipefail

lib=${1:?usage: check_symbols.sh LIB}
[ -f "$lib" ] || { echo "check_symbols: no such file: $lib" >&2; exit 2; }

# nm -D prints "ADDR TYPE NAME[@@VERSION]"; type A marks version nodes, not symbols.
syms=$(nm -D --defined-only "$lib" | awk 'NF >= 3 && $2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u)

bad=$(printf '%s\n' "$syms" | grep -v '^tb_' | grep -v '^$' || true)
internal=$(printf '%s\n' "$syms" | grep '^tb_[A-Za-z0-9]*__' || true)
count=$(printf '%s\n' "$syms" | grep -c '^tb_' || true)

status=0
if [ -n "$bad" ]; then
	echo "check_symbols: symbols exported without the tb_ prefix:" >&2
	printf '  %s\n' $bad >&2
	status=1
fi
if [ -n "$internal" ]; then
	echo "check_symbols: internal tb_<module>__<name> symbols exported (drop TB_API):" >&2
	printf '  %s\n' $internal >&2
	status=1
fi
if [ "$count" -eq 0 ]; then
	echo "check_symbols: no tb_* symbol exported at all (missing TB_API?)" >&2
	status=1
fi
[ $status -eq 0 ] && echo "check_symbols: $count exported symbols, all tb_*"
exit $status
