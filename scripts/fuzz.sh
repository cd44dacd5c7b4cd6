#!/usr/bin/env bash
# libFuzzer targets (tests/fuzz/) for the parsers of server and user data.
#   scripts/fuzz.sh [SECONDS]   (default 30 per target)
# Installs clang-19 + libclang-rt-19-dev when missing (clang 14 cannot parse libstdc++ 12's
# <expected>), builds tests/fuzz into build-fuzz/ with ASan + UBSan, runs every target for
# SECONDS on a copy of its seed corpus (the seeds in git stay as they are), prints one line
# per target, and exits 1 when any target crashed, leaked or timed out; the crash artifact
# and the log are kept under build-fuzz/runs/NAME/.
# FUZZ_TARGETS="key_uri x509" limits the run to those targets; FUZZ_SEED=N makes a run
# repeatable (CI uses a fixed seed, so a green run here is a green run there).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }
start=$SECONDS

if ! command -v clang++-19 >/dev/null || [[ ! -d /usr/lib/llvm-19/lib/clang/19/lib/linux ]]; then
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq clang-19 libclang-rt-19-dev >/dev/null
fi

cmake -S tests/fuzz -B build-fuzz -DCMAKE_CXX_COMPILER=clang++-19 >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
echo "fuzz build: $((SECONDS - start)) s"

targets=()
if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    for f in tests/fuzz/fuzz_*.cpp; do n=$(basename "$f" .cpp); targets+=("${n#fuzz_}"); done
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=0
for name in "${targets[@]}"; do
    bin="build-fuzz/fuzz_$name"
    run="build-fuzz/runs/$name"
    rm -rf "$run"
    mkdir -p "$run/corpus" "$run/artifacts"
    cp -a "tests/fuzz/corpus/$name/." "$run/corpus/" 2>/dev/null || true
    rc=0
    "$bin" -max_total_time="$seconds" -seed="${FUZZ_SEED:-0}" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$run/artifacts/" "$run/corpus" >"$run/log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run/log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$run/log" | tail -1 | cut -d' ' -f2)
    units=$(find "$run/corpus" -type f | wc -l)
    if [[ $rc -eq 0 ]]; then
        printf 'fuzz %-16s ok     %8s execs  cov %-5s corpus %s\n' "$name" "${execs:-?}" "${cov:-?}" "$units"
    else
        failed=1
        artifact=$(find "$run/artifacts" -type f | head -1)
        printf 'fuzz %-16s FAILED exit %s  artifact %s  log %s\n' "$name" "$rc" "${artifact:-none}" "$run/log"
        grep -m1 -E 'ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error|FUZZ_CHECK failed' "$run/log" | sed 's/^/    /' || true
    fi
done
echo "fuzz: $((SECONDS - start)) s"
exit $failed
