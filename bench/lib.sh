# The opening the bench scripts share; sourced with the script's name and its default N:
#   source "$(dirname "$0")/lib.sh" NAME DEFAULT_N
# Sets HERE (bench/), ROOT, N (env N, a positive integer), BUILD (env BUILD, else
# <repo>/build-bench), AGENT (env AGENT, else BUILD's acme-agent), RESULTS (env RESULTS, else
# bench/results-NAME.txt) and WORK (BUILD/bench-NAME); defines die and say, and need TOOL:PKG...
# (die naming the package when a command is missing). Dies when AGENT is not built.
BENCH_NAME=$1
die() { echo "$BENCH_NAME: $*" >&2; exit 1; }
say() { echo "$BENCH_NAME: $*" >&2; }
need() {
  local tool
  for tool; do
    command -v "${tool%%:*}" >/dev/null || die "${tool%%:*} not found (apt-get install -y ${tool#*:})"
  done
}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
N=${N:-$2}
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer: '$N'"
BUILD=${BUILD:-$ROOT/build-bench}
AGENT=${AGENT:-$BUILD/agent/acme-agent}
RESULTS=${RESULTS:-$HERE/results-$BENCH_NAME.txt}
WORK=$BUILD/bench-$BENCH_NAME
[ -x "$AGENT" ] || die "$AGENT not built: cmake -S $ROOT -B $BUILD -DCMAKE_BUILD_TYPE=Release && make -C $BUILD -j2 acme-agent"
