#!/usr/bin/env bash
# cppcheck gate: cppcheck (Debian's 2.10) over every translation unit of the GCC build
# (base/, keystore/, pkcs11/, tpm/, agent/, tests/, bench/) with the build's include paths and defines.
# Installs cppcheck when missing. Prints each finding and one summary line; exits 1 on any.
# Suppressions: `// cppcheck-suppress ID` with its reason on the line above the finding, or,
# for false positives only, an entry with its reason in .cppcheck-suppressions.
# Results are cached under build-cppcheck/, so a second run re-checks only changed files.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$SECONDS
bash scripts/ensure-tool.sh cppcheck cppcheck

cmake -S . -B build-cppcheck -DACME_AGENT_WERROR=OFF >/dev/null
# cppcheck's cache does not notice a changed option, .cfg or suppression: key it on them.
cache=build-cppcheck/cache-$(cat scripts/cppcheck.sh scripts/cppcheck/*.cfg .cppcheck-suppressions | md5sum | cut -c1-12)
[[ -d "$cache" ]] || { rm -rf build-cppcheck/cache-*; mkdir -p "$cache"; }
log=build-cppcheck/cppcheck.log
rc=0
# Not loaded: gnu.cfg, whose accept4() wrongly requires a non-null addrlen.
# Off by choice, not false positives: useStlAlgorithm (a plain loop is often the clearer code)
# and shadowFunction (GCC's -Wshadow covers shadowing; this one also fires on a guard named
# `lock` in a class that has a lock() method).
cppcheck --project=build-cppcheck/compile_commands.json --cppcheck-build-dir="$cache" \
    -j"$(nproc)" -q -rp="$root" --error-exitcode=1 --inline-suppr \
    --enable=warning,style,performance,portability \
    --library=posix,openssl,libcurl,scripts/cppcheck/googletest-extra.cfg,googletest \
    --suppressions-list=.cppcheck-suppressions --suppress='*:/usr/include/*' \
    --suppress=useStlAlgorithm --suppress=shadowFunction \
    --template='{file}:{line}:{column}: {severity}: {message} [{id}]' >"$log" 2>&1 || rc=$?

findings=$(grep -E '^[^ ]+:[0-9]+:[0-9]+: [a-z]+: ' "$log" | sed "s|^$root/||" | sort -u || true)
count=$(grep -c . <<<"$findings" || true)
[[ -n "$findings" ]] && echo "$findings"
if [[ $rc -ne 0 && $count -eq 0 ]]; then
    tail -20 "$log" >&2
    echo "cppcheck: failed (exit $rc), see $log" >&2
    exit 1
fi
files=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' build-cppcheck/compile_commands.json)
echo "cppcheck: $files files, $count findings ($((SECONDS - start)) s)"
[[ $count -eq 0 ]]
