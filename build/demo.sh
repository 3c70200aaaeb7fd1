#!/usr/bin/env bash
# The main job on the embedded default (demo/demo.mjs): the project's demo config tree with a
# SoftHSM2 token created in a fresh temp dir, shown through the library, the CLI, the proxy and
# the worker-thread service.
set -euo pipefail
cd "$(dirname "$0")/.."
node demo/demo.mjs
