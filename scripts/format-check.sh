#!/usr/bin/env bash
# Formatting gate: clang-format-19 --dry-run --Werror (the checked-in .clang-format) over every
# git-tracked .cpp/.h/.c except the fuzz corpus. Installs clang-format-19 when missing. Prints the
# files that need formatting and one summary line; exits 1 when any file does.
# Fix: clang-format-19 -i FILE (only on files you are editing).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
bash scripts/ensure-tool.sh clang-format-19 clang-format-19

files=()
while IFS= read -r -d '' f; do
    [[ -f "$f" ]] && files+=("$f")  # a tracked file deleted in the work tree is not checked
done < <(git ls-files -z -- '*.cpp' '*.h' '*.c' ':(exclude)tests/fuzz/corpus/**')

# One process for all files; each violation is reported as FILE:LINE:COL: error: ...
rc=0
out=$(clang-format-19 --dry-run --Werror "${files[@]}" 2>&1) || rc=$?
mapfile -t bad < <(grep -oE '^[^:]+:[0-9]+:[0-9]+: error' <<<"$out" | cut -d: -f1 | sort -u)
if [[ $rc -ne 0 && ${#bad[@]} -eq 0 ]]; then echo "$out" >&2; echo "format: clang-format-19 failed" >&2; exit 1; fi
for f in "${bad[@]}"; do echo "format: $f differs from clang-format-19 (clang-format-19 -i $f)"; done
echo "format: ${#files[@]} files, ${#bad[@]} to reformat ($((SECONDS - start)) s)"
[[ ${#bad[@]} -eq 0 ]]
