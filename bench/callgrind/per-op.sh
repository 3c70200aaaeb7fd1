#!/bin/sh
# Instructions per operation of calls.mjs cases under callgrind: each case runs at N = 20,000 and
# N = 120,000 and prints (Ir₁₂₀ₖ − Ir₂₀ₖ) / 100,000. Extra environment (CALLGRIND_LOOP=jit) is passed on.
#   bench/callgrind/per-op.sh nss-raw-digest nss-c-digest
set -eu
here=$(dirname "$0")
ir() {
	valgrind --tool=callgrind --callgrind-out-file=/dev/null \
		node --single-threaded --hash-seed=1 --random-seed=1 "$here/calls.mjs" "$1" "$2" 2>&1 |
		sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for c in "$@"; do
	a=$(ir "$c" 20000)
	b=$(ir "$c" 120000)
	echo "$c $(((b - a) / 100000))"
done
