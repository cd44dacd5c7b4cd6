#!/usr/bin/env bash
# Installs what is missing and builds acme-agent with warnings as errors:
#   scripts/build.sh            the default preset: RelWithDebInfo in build/
#   scripts/build.sh PRESET     another configure preset of CMakePresets.json (coverage,
#                               sanitize), in build-PRESET/
# ccache is used when installed. Exits 1 when the build fails.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-default}
dir=build
[ "$preset" = default ] || dir=build-$preset
bash scripts/install-deps.sh
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake --preset "$preset" "${launcher[@]}" >/dev/null
cmake --build --preset "$preset" -j"${JOBS:-$(nproc)}" 2>&1 | grep -Ev '^\[ *[0-9]+%\]|^Consolidate|^-- ' || true
test -x "$dir/agent/acme-agent" || { echo "build ($preset) failed" >&2; exit 1; }
