#!/usr/bin/env bash
# Runs every test suite: vitest (TypeScript + wasm + native modules), then the bounded fuzzers.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p dist
echo "== running the vitest suites"
npx vitest run --reporter=default --reporter=json --outputFile.json=dist/vitest-report.json "$@"
vitest_rc=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync("dist/vitest-report.json", "utf8"));
  console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + (r.numTodoTests||0)} skipped`);
' || vitest_rc=1
echo "== running the fuzzers (bounded)"
bash build/run-fuzzers.sh
fuzz_rc=$?
if ((vitest_rc || fuzz_rc)); then
  echo "== FAILED (vitest rc=$vitest_rc, fuzz rc=$fuzz_rc)"
  exit 1
fi
echo "== all tests passed"
