#!/usr/bin/env bash
# Runs every benchmark (bench/*.mjs), each side by side with its native counterpart in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
for b in bench/*.mjs; do
  [[ -f "$b" ]] || continue
  echo "== $b"
  node "$b"
done
