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
  pcscd vsmartcard-vpcd ykcs11                           # real devices: a virtual card through PC/SC
  swtpm swtpm-tools libtss2-esys-3.0.2-0 libtss2-mu0     # real devices: a software TPM, and what
  libtss2-rc0 libtss2-tctildr0 libtss2-tcti-swtpm0       #   libtpm2_pkcs11 needs (the library itself
  libyaml-0-2 libsqlite3-0                               #   is fetched unregistered, see below)
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

# libtpm2_pkcs11 without its package: installing libtpm2-pkcs11-1 would register it with p11-kit
# for every user of the machine. Failure here only skips the TPM suites.
bash build/fetch-tpm2-pkcs11.sh >/dev/null || echo "== libtpm2_pkcs11 not fetched: the TPM suites will be skipped"

if [[ -L node_modules ]]; then
  # A worktree sharing another checkout's node_modules: npm ci would empty the shared tree.
  echo "== npm dependencies: node_modules is a link to $(readlink node_modules), left alone"
elif [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "== installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
else
  echo "== npm dependencies: up to date"
fi
