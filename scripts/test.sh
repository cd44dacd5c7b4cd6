#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite and every quality gate,
# each stage one script a developer can also run alone:
#   build      scripts/build.sh        RelWithDebInfo with -Werror (build/); any compile or
#                                      link error of any target stops everything
#   format     scripts/format-check.sh clang-format-19 --dry-run --Werror
#   includes   scripts/check-includes.sh the layer rule over every #include "..." line
#                                      (docs/ARCHITECTURE.md)
#   cppcheck   scripts/cppcheck.sh     cppcheck, failing on warnings
#   tidy       scripts/tidy.sh         clang-tidy-19 with .clang-tidy
#   fuzz       scripts/fuzz.sh 30      every libFuzzer target for FUZZ_SECONDS (30) each
#   tests      scripts/ctest.sh build  unit, conformance (file:, SoftHSM, swtpm), integration
#                                      (SoftHSM, swtpm, Pebble, BIND, nginx, the fault proxy)
#   sanitize+coverage scripts/coverage.sh  the whole suite again, once, in one build with
#                                      ASan + UBSan + LSan and gcov: fails on any sanitizer
#                                      report and below 85 % of lines per module
# Every server a test needs is started by that test on free loopback ports. A failing stage
# does not stop the later ones (except the build); the script prints each stage's time and,
# for the test stages, the number of tests run, failed and skipped; a skip nobody allowed
# fails its stage (scripts/ctest.sh, ACME_AGENT_ALLOWED_SKIPS). Exits 1 when any stage
# failed. STAGES="build tests" runs only those (`sanitize` or `coverage` in STAGES name the
# sanitize+coverage stage).
set -euo pipefail
cd "$(dirname "$0")/.."
STAGES=${STAGES:-build format includes cppcheck tidy fuzz tests sanitize+coverage}
# sanitize and coverage are one stage since they share one instrumented run.
[[ " $STAGES " != *" sanitize "* && " $STAGES " != *" coverage "* ]] || STAGES+=" sanitize+coverage"
export FUZZ_SEED=${FUZZ_SEED:-1}

summary=()
failed=()
counts=$(mktemp)
trap 'rm -f "$counts"' EXIT
stage() {
    local name=$1 start=$SECONDS rc=0
    shift
    [[ " $STAGES " == *" $name "* ]] || return 0
    echo "=== $name: $*"
    : >"$counts"
    ACME_AGENT_TEST_SUMMARY=$counts "$@" || rc=$?
    local line
    line=$(printf '%-17s %5d s  %s%s' "$name" $((SECONDS - start)) "$([[ $rc -eq 0 ]] && echo ok || echo "FAILED (exit $rc)")" \
        "$([[ -s $counts ]] && echo "; tests: $(cat "$counts")")")
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
stage includes bash scripts/check-includes.sh
stage cppcheck bash scripts/cppcheck.sh
stage tidy bash scripts/tidy.sh
stage fuzz bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
stage tests bash scripts/ctest.sh build
stage sanitize+coverage bash scripts/coverage.sh

echo
echo "stage              time"
printf '%s\n' "${summary[@]}"
echo "total             $((SECONDS - total)) s"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
