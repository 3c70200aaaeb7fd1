#!/usr/bin/env bash
# The main job on the embedded default: the project's demo config tree (demo/config) with a
# SoftHSM2 token created in a fresh temp dir, shown through the p11kit CLI.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d -t p11kit-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tokens" "$work/empty"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/tokens" > "$work/softhsm2.conf"
export SOFTHSM2_CONF="$work/softhsm2.conf"

so_pin=12345678 user_pin=1234   # demo values only: this token lives and dies in $work
echo "== creating a SoftHSM2 token 'p11kit-demo' in $work (SO PIN $so_pin, user PIN $user_pin)"
softhsm2-util --init-token --free --label p11kit-demo --so-pin "$so_pin" --pin "$user_pin" | sed 's/^/   /'

cli=(node dist/lib/cli.js)
conf=(--system-config demo/config/pkcs11.conf --system-modules demo/config/modules
      --package-modules "$work/empty" --user-config "$work/empty/pkcs11.conf" --user-modules "$work/empty")

echo
echo "== p11kit print-config (the registry as p11-kit 0.24 merges it)"
"${cli[@]}" print-config "${conf[@]}"
echo
echo "== p11kit list-modules (the modules p11-kit would load, in its order)"
"${cli[@]}" list-modules "${conf[@]}"
