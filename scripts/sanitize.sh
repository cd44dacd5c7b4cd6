#!/usr/bin/env bash
# The whole CTest suite under AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer).
#   scripts/sanitize.sh
# Installs what is missing, builds the `sanitize` preset (CMakePresets.json) into
# build-sanitize/ and runs every CTest test. Every sanitized process (test binaries, and each
# acme-agent the integration tests start) stops at its first error and writes its report to
# build-sanitize/sanitizers/; the run fails when a test failed or when any report was
# written, even by a process whose exit status a test does not look at. Leaks inside the
# third-party libraries the agent loads (PKCS#11 modules, TPM TCTIs) are suppressed, each
# with its reason, in tests/sanitizers/lsan.supp; our own code is never suppressed.
# Helpers that are not built here (Pebble, SoftHSM tools, the Python fault proxy) run as
# usual: the sanitizer options are ignored by uninstrumented programs.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
start=$SECONDS

logs=$PWD/build-sanitize/sanitizers
rm -rf "$logs"
mkdir -p "$logs"
# Set before the build too: it runs each test binary to list its tests.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$logs/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
export LSAN_OPTIONS="suppressions=$PWD/tests/sanitizers/lsan.supp:print_suppressions=0"
# The soak test's RSS budget is no measure under ASan (freed memory waits in its 256 MiB
# quarantine, plus shadow memory); here leaks are LeakSanitizer's job. Its descriptor,
# session and TPM-object checks still apply.
export SOAK_RSS_KIB=${SOAK_RSS_KIB:-1048576}

JOBS=$JOBS bash scripts/build.sh sanitize
build_s=$((SECONDS - start))

t=$SECONDS
tests_rc=0
ctest --test-dir build-sanitize -j"$JOBS" --output-on-failure --timeout 900 || tests_rc=$?
tests_s=$((SECONDS - t))

reports=()
for f in "$logs"/*; do [ -s "$f" ] && reports+=("$f"); done
for f in "${reports[@]}"; do
  echo "=== $f"
  head -n 40 "$f"
done
verdict=ok
[ "$tests_rc" -eq 0 ] || verdict="FAILED (tests failed)"
[ ${#reports[@]} -eq 0 ] || verdict="FAILED (${#reports[@]} sanitizer report(s) in $logs)"
echo "sanitize: $verdict; build ${build_s} s, tests ${tests_s} s, total $((SECONDS - start)) s"
[ "$tests_rc" -eq 0 ] && [ ${#reports[@]} -eq 0 ]
