#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: a bounded, repeatable
# run of every fuzz target (scripts/fuzz.sh, FUZZ_SECONDS per target, default 30), then
# CTest: unit, conformance (file:, SoftHSM, swtpm) and integration (SoftHSM, swtpm, Pebble,
# BIND, the fault proxy) tests. Every server a test needs is started by that test on free
# loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
bash scripts/build.sh
echo "build: $((SECONDS - start)) s"
FUZZ_SEED=${FUZZ_SEED:-1} bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
start=$SECONDS
ctest --test-dir build -j"$(nproc)" --output-on-failure --timeout 900
echo "tests: $((SECONDS - start)) s"
