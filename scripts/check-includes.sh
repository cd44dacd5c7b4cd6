#!/usr/bin/env bash
# Include gate (docs/ARCHITECTURE.md, "What may include what"): checks every `#include "..."`
# line under base/ keystore/ pkcs11/ tpm/ agent/ against the layer rule
#   base/                      nothing of the project but base/
#   keystore/                  base/
#   pkcs11/, tpm/              base/, keystore/ (not each other)
#   agent/<part>/ (jose, x509, acme, challenge, store, lifecycle, config, any new part)
#                              never pkcs11/, tpm/ or cli/
#   agent/cli/                 anything: the composition root, the one place that knows
#                              every backend
# and keystore/'s public headers include no OpenSSL, TSS2 or PKCS#11 header (<openssl/...>,
# <tss2/...>, <p11-kit/...>, <pkcs11.h>): the contract is plain C++.
# An include names its module by its first path component ("base/log.h", "acme/client.h";
# "agent/acme/client.h" is read as acme/); one without a directory is the including file's
# own module. Prints one line per violation (FILE:LINE, the include, the rule broken) and a
# summary; exits 1 when there is any violation.
# Usage: scripts/check-includes.sh [SOURCE_DIR]   (default: this repository)
set -euo pipefail
root=${1:-$(dirname "$0")/..}
cd "$root"

# The module of an include path; empty for anything not of the project (tests/support, ...).
module_of() {
  local path=${1#agent/}
  case $path in
    */*) path=${path%%/*} ;;
    *) echo "$2"; return ;;  # same directory
  esac
  case $path in
    base | keystore | pkcs11 | tpm) echo "$path" ;;
    *) [ -d "agent/$path" ] && echo "agent/$path" || echo "" ;;
  esac
}

# allowed FROM TO: exit 0 when module FROM may include module TO, else prints the rule.
allowed() {
  local from=$1 to=$2
  [ -z "$to" ] || [ "$from" = "$to" ] && return 0
  case $from in
    base) echo "base/ includes nothing of the project" ;;
    keystore) [ "$to" = base ] && return 0
      echo "keystore/ includes only base/" ;;
    pkcs11 | tpm) [ "$to" = base ] || [ "$to" = keystore ] && return 0
      echo "$from/ includes only base/ and keystore/" ;;
    agent/cli) return 0 ;;
    agent/*) case $to in
        pkcs11 | tpm) echo "${from}/ never includes $to/: only agent/cli/, the composition root, knows the backends" ;;
        agent/cli) echo "${from}/ never includes cli/: the command line sits on top, not below" ;;
        *) return 0 ;;
      esac ;;
  esac
  return 1
}

violations=0
files=0
while IFS= read -r -d '' file; do
  files=$((files + 1))
  dir=${file#./}
  dir=${dir%/*}
  case $dir in
    agent/*) rest=${dir#agent/}; from=agent/${rest%%/*} ;;
    *) from=${dir%%/*} ;;
  esac
  while IFS=: read -r line inc; do
    inc=${inc#*\"}
    inc=${inc%%\"*}
    to=$(module_of "$inc" "$from")
    if ! why=$(allowed "$from" "$to"); then
      echo "check-includes: ${file#./}:$line: #include \"$inc\": $why"
      violations=$((violations + 1))
    fi
  done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" || true)
done < <(find base keystore pkcs11 tpm agent -type f \( -name '*.h' -o -name '*.cpp' -o -name '*.c' \) -print0 2>/dev/null)

# keystore/*.h: no library header of a backend or of OpenSSL.
while IFS=: read -r file line text; do
  echo "check-includes: $file:$line: ${text#"${text%%#*}"}: keystore/ public headers include no OpenSSL, TSS2 or PKCS#11 header (PImpl or a forward declaration)"
  violations=$((violations + 1))
done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<(openssl/|tss2/|p11-kit/|pkcs11)' keystore/*.h 2>/dev/null || true)

if [ "$files" -eq 0 ]; then
  echo "check-includes: no sources under $(pwd)/{base,keystore,pkcs11,tpm,agent}" >&2
  exit 1
fi
echo "check-includes: $files files, $violations violation(s) of the layer rule (docs/ARCHITECTURE.md)"
[ "$violations" -eq 0 ]
