#!/usr/bin/env bash
# Installs what is missing and builds acme-agent with warnings as errors:
#   scripts/build.sh            the default preset: RelWithDebInfo in build/
#   scripts/build.sh PRESET     another configure preset of CMakePresets.json (coverage,
#                               sanitize), in build-PRESET/
# ccache is used when installed. Exits 1 when configuring or building any target fails
# (tests/integration/build_gate.sh checks this gate).
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
cmake --preset "$preset" "${launcher[@]}" >/dev/null || { echo "configure ($preset) failed" >&2; exit 1; }
# Progress lines are dropped (sed, which never fails for lack of output); the status is
# cmake's own (pipefail): a compile or link error in any target fails the build, even
# when an old acme-agent is still there.
rc=0
cmake --build --preset "$preset" -j"${JOBS:-$(nproc)}" 2>&1 | sed -u -E '/^\[ *[0-9]+%\]|^Consolidate|^-- /d' || rc=$?
[ "$rc" -eq 0 ] || { echo "build ($preset) failed: cmake --build exited $rc (the compiler's messages are above)" >&2; exit 1; }
test -x "$dir/agent/acme-agent" || { echo "build ($preset) failed: no $dir/agent/acme-agent" >&2; exit 1; }
