#!/usr/bin/env bash
# scripts/ensure-tool.sh COMMAND PACKAGE...
# Installs the Debian PACKAGEs (apt-get, through sudo unless root) when COMMAND is not on PATH;
# says nothing when it is. Used by the quality gates (format-check.sh, tidy.sh, cppcheck.sh),
# which need one tool each, not everything scripts/install-deps.sh brings.
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 COMMAND PACKAGE..." >&2; exit 2; }
command -v "$1" >/dev/null && exit 0
shift
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
echo "installing $*" >&2
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
