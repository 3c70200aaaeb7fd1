#!/usr/bin/env bash
# Each libFuzzer target (ASan + UBSan build of the C core) runs for a bounded time from its seed corpus.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-20}
rc=0; n=0
for fuzzer in dist/native/fuzz/*; do
  [[ -x "$fuzzer" ]] || continue
  name=$(basename "$fuzzer")
  corpus="dist/fuzz-corpus/$name"
  mkdir -p "$corpus"
  seeds="wasm/fuzz/seeds/$name"
  [[ -d "$seeds" ]] || seeds=""
  echo "-- $name for ${seconds}s"
  if "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       "$corpus" $seeds > "dist/fuzz-$name.log" 2>&1; then
    grep -E 'stat::number_of_executed_units' "dist/fuzz-$name.log" | sed "s/^/   /"
  else
    rc=1
    echo "   FINDING: see dist/fuzz-$name.log"; tail -40 "dist/fuzz-$name.log"
  fi
  n=$((n + 1))
done
echo "fuzz: $n targets, $([[ $rc == 0 ]] && echo 0 || echo some) findings"
exit $rc
