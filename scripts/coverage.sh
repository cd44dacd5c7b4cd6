#!/usr/bin/env bash
# The whole CTest suite (unit, conformance, integration) once, in one instrumented build
# that serves two gates:
#   scripts/coverage.sh          (scripts/sanitize.sh is the same run)
# Installs what is missing, builds the `instrumented` preset (CMakePresets.json: Debug with
# ASan + UBSan + LSan and gcov) into build-instrumented/, and runs every CTest test
# (scripts/ctest.sh: counted, no unexpected skip).
# Sanitizers: every instrumented process (test binaries, and each acme-agent the
# integration tests start) stops at its first error and writes its report to
# build-instrumented/sanitizers/; the run fails when any report was written, even by a
# process whose exit status a test does not look at. Leaks inside the third-party
# libraries the agent loads (PKCS#11 modules, TPM TCTIs) are suppressed, each with its
# reason, in tests/sanitizers/lsan.supp; our own code is never suppressed. Helpers that
# are not built here (Pebble, SoftHSM tools, the Python fault proxy) run as usual: the
# sanitizer options are ignored by uninstrumented programs.
# Coverage: the same processes write their gcov counters at exit; gcovr reports per module:
# base/, keystore/, pkcs11/, tpm/, agent/ (and, for information, each agent/ part). The run fails
# when one of the four modules is below COVERAGE_MIN percent of lines (default 85).
# Reports under build-instrumented/coverage/: lines.txt and branches.txt (every file with
# its uncovered lines / branches), html/index.html (annotated sources), summary.json.
# Not counted: processes that stop on purpose with _exit (the crash tests' failpoints, exit
# 86), are killed by a signal or stopped by a sanitizer write no counters; what they ran
# before is run again by the tests that resume them.
# Only tests/, bench/ and the build dirs are left out; no line is excluded. Branches that the
# compiler adds for exception unwinding (--exclude-throw-branches) and those on lines with
# no code (--exclude-unreachable-branches) are not counted: they are no path of the source.
# One build and one run of the suite instead of two each (sanitize, then coverage): CI time.
set -euo pipefail
cd "$(dirname "$0")/.."
COVERAGE_MIN=${COVERAGE_MIN:-85}
JOBS=${JOBS:-$(nproc)}
start=$SECONDS

B=build-instrumented
logs=$PWD/$B/sanitizers
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

JOBS=$JOBS bash scripts/build.sh instrumented # installs gcovr, and everything the tests start
build_s=$((SECONDS - start))

# Counters of this run only (the build ran each test binary once to list its tests).
find "$B" -name '*.gcda' -delete
out=$B/coverage
rm -rf "$out"
mkdir -p "$out/html"
t=$SECONDS
tests_rc=0
JOBS=$JOBS bash scripts/ctest.sh "$B" || tests_rc=$?
tests_s=$((SECONDS - t))

reports=()
for f in "$logs"/*; do [ -s "$f" ] && reports+=("$f"); done
for f in "${reports[@]}"; do
  echo "=== $f"
  head -n 40 "$f"
done

t=$SECONDS
gcovr --root . --filter 'base/' --filter 'keystore/' --filter 'pkcs11/' --filter 'tpm/' --filter 'agent/' \
  --exclude-throw-branches --exclude-unreachable-branches -j "$JOBS" \
  --json "$out/coverage.json" "$B"
gcovr --root . --add-tracefile "$out/coverage.json" --sort-uncovered \
  --txt "$out/lines.txt" --json-summary-pretty --json-summary "$out/summary.json" \
  --html-details "$out/html/index.html" --html-title "acme-agent coverage"
gcovr --root . --add-tracefile "$out/coverage.json" --sort-uncovered --branches --txt "$out/branches.txt"
report_s=$((SECONDS - t))

# Per module (a module is its top directory; agent/ also per part).
set +e
python3 - "$out/summary.json" "$COVERAGE_MIN" <<'EOF'
import json, sys
files = json.load(open(sys.argv[1]))["files"]
minimum = float(sys.argv[2])
gated = ["base", "keystore", "pkcs11", "tpm", "agent"]
rows = {}
for f in files:
    parts = f["filename"].split("/")
    keys = [parts[0] + "/"]
    if parts[0] == "agent" and len(parts) > 2:
        keys.append("agent/" + parts[1] + "/")
    for k in keys:
        r = rows.setdefault(k, [0, 0, 0, 0])
        r[0] += f["line_covered"]; r[1] += f["line_total"]
        r[2] += f["branch_covered"]; r[3] += f["branch_total"]
pct = lambda c, t: 100.0 * c / t if t else 100.0
print(f"{'module':<18} {'lines':>15} {'line %':>7} {'branches':>15} {'branch %':>8}")
low = []
order = [m + "/" for m in gated] + sorted(k for k in rows if k.count("/") == 2)
for k in order:
    lc, lt, bc, bt = rows.get(k, [0, 0, 0, 0])
    gate = k.count("/") == 1
    mark = ""
    if gate and pct(lc, lt) < minimum:
        low.append(k); mark = f"  < {minimum:g} %"
    name = k if gate else "  " + k
    print(f"{name:<18} {lc:>7}/{lt:<7} {pct(lc, lt):>6.1f}% {bc:>7}/{bt:<7} {pct(bc, bt):>7.1f}%{mark}")
tl = sum(rows[m + "/"][0] for m in gated if m + "/" in rows)
tt = sum(rows[m + "/"][1] for m in gated if m + "/" in rows)
bl = sum(rows[m + "/"][2] for m in gated if m + "/" in rows)
bt = sum(rows[m + "/"][3] for m in gated if m + "/" in rows)
print(f"{'total':<18} {tl:>7}/{tt:<7} {pct(tl, tt):>6.1f}% {bl:>7}/{bt:<7} {pct(bl, bt):>7.1f}%")
with open(sys.argv[1] + ".line", "w") as o:
    o.write(f"lines {pct(tl, tt):.1f} %, branches {pct(bl, bt):.1f} %")
    o.write(f"; below {minimum:g} %: {' '.join(low)}" if low else f"; every module >= {minimum:g} %")
sys.exit(1 if low else 0)
EOF
cov_rc=$?
set -e
summary=$(cat "$out/summary.json.line")
rm -f "$out/summary.json.line"
echo "reports: $out/lines.txt, $out/branches.txt, $out/html/index.html"
why=()
[ "$tests_rc" -eq 0 ] || why+=("tests failed or skipped")
[ ${#reports[@]} -eq 0 ] || why+=("${#reports[@]} sanitizer report(s) in $logs")
[ "$cov_rc" -eq 0 ] || why+=("a module below ${COVERAGE_MIN} % of lines")
verdict=ok
[ ${#why[@]} -eq 0 ] || verdict="FAILED ($(IFS=,; echo "${why[*]}"))"
echo "sanitize+coverage: $verdict: sanitizer reports: ${#reports[@]}; $summary; build ${build_s} s, tests ${tests_s} s, report ${report_s} s, total $((SECONDS - start)) s"
[ ${#why[@]} -eq 0 ]
