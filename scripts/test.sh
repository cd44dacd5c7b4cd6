#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite through CTest: unit,
# conformance (file:, SoftHSM) and integration (SoftHSM + Pebble) tests. Every server a
# test needs is started by that test on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
bash scripts/build.sh
echo "build: $((SECONDS - start)) s"
start=$SECONDS
ctest --test-dir build -j"$(nproc)" --output-on-failure --timeout 900
echo "tests: $((SECONDS - start)) s"
