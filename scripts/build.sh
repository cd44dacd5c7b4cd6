#!/usr/bin/env bash
# Installs what is missing and builds acme-agent into build/ (warnings are errors).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DACME_AGENT_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)" 2>&1 | grep -Ev '^\[ *[0-9]+%\]|^Consolidate|^-- ' || true
test -x build/agent/acme-agent || { echo "build failed" >&2; exit 1; }
