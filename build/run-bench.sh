#!/usr/bin/env bash
# Runs every benchmark (bench/*.mjs), each side by side with its reference (native C, libp11-kit,
# pkcs11js, in-thread) in one run, through the roll-up: it prints one table and rewrites
# bench/RESULTS.md, bench/results.svg and the README's Benchmarks table. Arguments are passed on
# (bench names: run only those, write nothing); BENCH_QUICK=1 shortens the long benches.
set -euo pipefail
cd "$(dirname "$0")/.."
exec node bench/all.mjs "$@"
