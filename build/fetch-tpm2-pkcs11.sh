#!/usr/bin/env bash
# Fetches libtpm2_pkcs11 into dist/cache/tpm2-pkcs11/ WITHOUT installing the Debian package:
# the package drops a p11-kit module file that makes every p11-kit user on the machine load it
# (and print TCTI errors, and create ~/.tpm2_pkcs11). The tests load the library by path only.
# Its libtss2 dependencies are ordinary packages (build/ensure-deps.sh installs them).
# Prints the library's path on success. Safe to run concurrently: the cache appears whole or not at all.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=dist/cache/tpm2-pkcs11
if [[ ! -d $cache ]]; then
  mkdir -p dist/cache
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download -q -o APT::Sandbox::User=root libtpm2-pkcs11-1 >/dev/null) || {
    echo "fetch-tpm2-pkcs11: apt-get download libtpm2-pkcs11-1 failed (run apt-get update?)" >&2; exit 1; }
  # Only the library is used; the extracted p11-kit module file stays inert inside the cache.
  dpkg -x "$work"/libtpm2-pkcs11-1_*.deb "$work/root"
  mv -T "$work/root" "$cache" 2>/dev/null || true   # another run may have won the race: keep its copy
fi
found=$(find "$cache" -name 'libtpm2_pkcs11.so*' -type f | head -1)
[[ -n $found ]] || { echo "fetch-tpm2-pkcs11: no libtpm2_pkcs11.so in the package" >&2; exit 1; }
realpath "$found"
