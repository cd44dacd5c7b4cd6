#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite and every quality gate,
# each stage one script a developer can also run alone:
#   build      scripts/build.sh        RelWithDebInfo with -Werror (build/)
#   format     scripts/format-check.sh clang-format-19 --dry-run --Werror
#   cppcheck   scripts/cppcheck.sh     cppcheck, failing on warnings
#   tidy       scripts/tidy.sh         clang-tidy-19 with .clang-tidy
#   fuzz       scripts/fuzz.sh 30      every libFuzzer target for FUZZ_SECONDS (30) each
#   tests      CTest on build/         unit, conformance (file:, SoftHSM, swtpm), integration
#                                      (SoftHSM, swtpm, Pebble, BIND, nginx, the fault proxy)
#   sanitize   scripts/sanitize.sh     the whole suite again under ASan + UBSan + LSan
#   coverage   scripts/coverage.sh     the whole suite again with gcov; >= 85 % of lines per module
# Every server a test needs is started by that test on free loopback ports. A failing stage
# does not stop the later ones (except the build); the script prints each stage's time and
# exits 1 when any stage failed. STAGES="build tests" runs only those.
set -euo pipefail
cd "$(dirname "$0")/.."
STAGES=${STAGES:-build format cppcheck tidy fuzz tests sanitize coverage}
export FUZZ_SEED=${FUZZ_SEED:-1}

summary=()
failed=()
stage() {
    local name=$1 start=$SECONDS rc=0
    shift
    [[ " $STAGES " == *" $name "* ]] || return 0
    echo "=== $name: $*"
    "$@" || rc=$?
    local line
    line=$(printf '%-9s %5d s  %s' "$name" $((SECONDS - start)) "$([[ $rc -eq 0 ]] && echo ok || echo "FAILED (exit $rc)")")
    echo "=== $line"
    summary+=("$line")
    [[ $rc -eq 0 ]] || failed+=("$name")
    return 0
}

total=$SECONDS
stage build bash scripts/build.sh
if [[ " ${failed[*]} " == *" build "* ]]; then
    echo "the build failed: nothing else runs" >&2
    exit 1
fi
stage format bash scripts/format-check.sh
stage cppcheck bash scripts/cppcheck.sh
stage tidy bash scripts/tidy.sh
stage fuzz bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
stage tests ctest --test-dir build -j"$(nproc)" --output-on-failure --timeout 900
stage sanitize bash scripts/sanitize.sh
stage coverage bash scripts/coverage.sh

echo
echo "stage      time"
printf '%s\n' "${summary[@]}"
echo "total     $((SECONDS - total)) s"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
