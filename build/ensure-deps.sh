#!/usr/bin/env bash
# Installs what the build and the tests need, and only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  emscripten clang libclang-rt-14-dev pkg-config        # wasm core, sanitizers, fuzzing
  p11-kit p11-kit-modules libp11-kit-dev                 # the oracle and its trust module
  softhsm2 libnss3 libnss3-tools opensc opensc-pkcs11    # real PKCS#11 modules for the tests
  chromium                                               # the renderer test's browser engine (playwright-core drives it)
  openssl                                                # certificates and keys for the object-command tests
)
missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "== installing Debian packages: ${missing[*]}"
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
else
  echo "== Debian packages: all present"
fi

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "== installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
else
  echo "== npm dependencies: up to date"
fi
