#!/usr/bin/env bash
# Usage: bench/batch.sh   (env: N=50, ROUNDS=10, JOBS="1 2 4 8", MODES="sleep nosleep",
#                          BUILD=<repo>/build-bench, RESULTS=bench/results-batch.txt,
#                          PLOT=bench/batch-throughput.png; REPLOT=1 only redraws PLOT
#                          from the last run's BUILD/bench-batch/runs.tsv)
#
# Throughput of `issue --batch` with --jobs: ROUNDS rounds per mode, each round one batch
# of N certificates per --jobs value, the --jobs values interleaved and their order rotated
# each round (round 1: 1 2 4 8, round 2: 2 4 8 1, ...) so that a change in machine load hits
# every value alike; ONE Pebble per mode, keys in a fresh SoftHSM token (N certificate keys,
# one account key; the same keys for every run, distinct names per run), http-01 through
# the built-in responder. Each run is one acme-agent process; its wall time (bash
# $EPOCHREALTIME) is the figure: per --jobs value the median over the rounds with its
# spread (min-max), and the speedup of the medians over --jobs 1. The load average is
# recorded at the start and at the end. Every certificate of every run must be issued, or
# the script fails. Time: the sleep mode's --jobs 1 batch takes about 4 minutes (N=50), so
# the default run is over an hour; MODES=nosleep alone takes minutes.
#
# Modes: "sleep" is Pebble as it comes (its VA waits a random 0-5 s before each validation,
# like a real CA's queue: the case where concurrency pays most); "nosleep" is
# PEBBLE_VA_NOSLEEP=1 (validation at once: what is left is the client's and Pebble's CPU on
# the machine's cores). PEBBLE_AUTHZREUSE=0 and PEBBLE_WFE_NONCEREJECT=0 in both, so that
# every order is solved and no random nonce rejection adds retries.
#
# Writes RESULTS (mode, jobs, seconds, certs/s, speedup over --jobs 1) and a PNG (gnuplot)
# of certificates per second and speedup against --jobs.
set -euo pipefail

source "$(dirname "$0")/lib.sh" batch 50
JOBS=${JOBS:-1 2 4 8}
ROUNDS=${ROUNDS:-10}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer: '$ROUNDS'"
MODES=${MODES:-sleep nosleep}
for j in $JOBS; do [[ $j =~ ^[1-9][0-9]*$ ]] && [ "$j" -le 64 ] || die "JOBS entries must be 1..64: '$j'"; done
for m in $MODES; do [[ $m == sleep || $m == nosleep ]] || die "MODES entries are sleep or nosleep: '$m'"; done
PLOT=${PLOT:-$HERE/batch-throughput.png}
need gnuplot:gnuplot-nox jq:jq openssl:openssl python3:python3

TSV=$WORK/runs.tsv
if [ "${REPLOT:-0}" = 1 ]; then
  [ -f "$TSV" ] || die "no $TSV to redraw; run without REPLOT first"
  MODES=$(tail -n +2 "$TSV" | cut -f1 | uniq | tr '\n' ' ')
  JOBS=$(tail -n +2 "$TSV" | cut -f2 | sort -nu | tr '\n' ' ')
  N=$(sed -n 's/^N=\([0-9]*\) .*/\1/p' "$RESULTS")
  read -r -a JOBS_LIST <<<"$JOBS"
else
rm -rf "$WORK"
mkdir -p "$WORK"
cleanup() {
  local d
  for d in "$WORK"/pebble-*; do
    [ -f "$d/pebble.pid" ] && "$ROOT/scripts/pebble-down.sh" "$d" >/dev/null 2>&1
  done
  return 0
}
trap cleanup EXIT

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RUNS=$WORK/rounds.tsv
printf 'mode\tround\tjobs\tseconds\trequests\tconnections\n' >"$RUNS"
read -r -a JOBS_LIST <<<"$JOBS"

for mode in $MODES; do
  say "$mode: Pebble, a fresh token, $N certificate keys"
  if [ "$mode" = nosleep ]; then va=(PEBBLE_VA_NOSLEEP=1); else va=(-u PEBBLE_VA_NOSLEEP -u PEBBLE_VA_SLEEPTIME); fi
  env_lines=$(env "${va[@]}" PEBBLE_AUTHZREUSE=0 PEBBLE_WFE_NONCEREJECT=0 \
    "$ROOT/scripts/pebble-up.sh" "$WORK/pebble-$mode" 2>"$WORK/pebble-up-$mode.log") ||
    die "pebble-up.sh failed: $(tail -n 5 "$WORK/pebble-up-$mode.log")"
  eval "$env_lines"
  env_lines=$("$ROOT/scripts/softhsm-setup.sh" "$WORK/hsm-$mode" batch 2>"$WORK/softhsm-$mode.log") ||
    die "softhsm-setup.sh failed: $(cat "$WORK/softhsm-$mode.log")"
  eval "$env_lines"
  key() { echo "${ACME_AGENT_TOKEN_URI/\?/;object=$1?}"; }
  A=("$AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --state-dir "$WORK/state-$mode")
  ACCOUNT=$("$AGENT" key generate --key "$(key account)" --type ec-p256)
  "${A[@]}" account register --key "$ACCOUNT" --agree-tos >"$WORK/register-$mode.log" 2>&1 ||
    die "account register failed: $(tail -n 5 "$WORK/register-$mode.log")"
  KEYS=()
  for i in $(seq "$N"); do KEYS[i]=$("$AGENT" key generate --key "$(key "cert-$i")" --type ec-p256); done

  for r in $(seq "$ROUNDS"); do
    n=${#JOBS_LIST[@]}
    for k in $(seq 0 $((n - 1))); do
      j=${JOBS_LIST[$(((r - 1 + k) % n))]}
      batch=$WORK/$mode-r$r-j$j.txt
      for i in $(seq "$N"); do echo "${KEYS[i]} c$i.r$r.j$j.$mode.batch.example"; done >"$batch"
      say "$mode round $r/$ROUNDS: $N certificates with --jobs $j"
      t0=$EPOCHREALTIME
      rc=0
      "${A[@]}" -v --json issue --batch "$batch" --jobs "$j" --http-port "127.0.0.1:$PEBBLE_HTTP_PORT" \
        >"$WORK/$mode-r$r-j$j.json" 2>"$WORK/$mode-r$r-j$j.err" </dev/null || rc=$?
      t1=$EPOCHREALTIME
      ok=$(jq '[.[] | select(.ok)] | length' "$WORK/$mode-r$r-j$j.json" 2>/dev/null || echo 0)
      [ "$rc" = 0 ] && [ "$ok" = "$N" ] ||
        die "$mode round $r --jobs $j: exit $rc, $ok of $N issued; see $WORK/$mode-r$r-j$j.err"
      secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
      reqs=$(sed -n 's/^debug: batch: \([0-9]*\) requests over \([0-9]*\) connections$/\1 \2/p' "$WORK/$mode-r$r-j$j.err")
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$r" "$j" "$secs" "${reqs% *}" "${reqs#* }" >>"$RUNS"
      say "$mode round $r --jobs $j: $secs s"
    done
  done
  "$ROOT/scripts/pebble-down.sh" "$WORK/pebble-$mode" >/dev/null 2>&1 || true
done

# The per-(mode, jobs) medians over the rounds, for the table and the plot: mode, jobs,
# median seconds, certs/s at the median, speedup of the medians over --jobs 1, min and max
# seconds, median requests and connections.
python3 - "$RUNS" "$N" >"$TSV" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
n = int(sys.argv[2])
print("mode\tjobs\tseconds\tcerts_per_s\tspeedup\tmin_s\tmax_s\trequests\tconnections")
for mode in dict.fromkeys(r["mode"] for r in rows):
    mine = [r for r in rows if r["mode"] == mode]
    jobs = sorted({int(r["jobs"]) for r in mine})
    med = {j: statistics.median(float(r["seconds"]) for r in mine if int(r["jobs"]) == j) for j in jobs}
    for j in jobs:
        s = [float(r["seconds"]) for r in mine if int(r["jobs"]) == j]
        req = [int(r["requests"] or 0) for r in mine if int(r["jobs"]) == j]
        con = [int(r["connections"] or 0) for r in mine if int(r["jobs"]) == j]
        print(f"{mode}\t{j}\t{med[j]:.2f}\t{n / med[j]:.2f}\t{med[jobs[0]] / med[j]:.2f}\t{min(s):.2f}\t{max(s):.2f}\t{statistics.median(req):.0f}\t{statistics.median(con):.0f}")
PY

{
  echo "acme-agent issue --batch throughput (bench/batch.sh), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "host: $(nproc) CPUs, $(uname -r); load average at start: $LOAD_BEFORE, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "acme-agent $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$([ -z "$(git -C "$ROOT" status --porcelain -- agent keystore 2>/dev/null)" ] || echo ' + uncommitted changes'); Pebble $(dpkg-query -W -f '${Version}' pebble 2>/dev/null || echo '?'); SoftHSM $(dpkg-query -W -f '${Version}' softhsm2 2>/dev/null || echo '?'); EC P-256 keys; http-01"
  echo "N=$N certificates per run, one process per run, $ROUNDS rounds, the --jobs values interleaved (order rotated per round); sleep = Pebble's VA default (random 0-5 s before each validation), nosleep = PEBBLE_VA_NOSLEEP=1"
  echo "seconds: median over the rounds (min-max); certs/s at the median; speedup: median(--jobs 1) / median"
  echo
  printf '%-8s %5s %9s %17s %8s %8s %9s %12s\n' mode jobs seconds '(min-max)' certs/s speedup requests connections
  tail -n +2 "$TSV" | while IFS=$'\t' read -r m j s c x lo hi r k; do
    printf '%-8s %5s %9s %17s %8s %8s %9s %12s\n' "$m" "$j" "$s" "($lo-$hi)" "$c" "$x" "$r" "$k"
  done
} >"$RESULTS"
cat "$RESULTS"
fi

term=png
gnuplot -e 'set terminal' 2>&1 | grep -q pngcairo && term='pngcairo size 1000,420 font "sans,10"'
gnuplot <<GP
set terminal $term
set output '$PLOT'
set datafile separator '\t'
set key top left
set grid
set logscale x 2
set xrange [0.85:$(printf '%s\n' $JOBS | sort -n | tail -n 1) * 1.15]
set xtics ($(for j in $JOBS; do printf '"%s" %s, ' "$j" "$j"; done | sed 's/, $//'))
set xlabel '--jobs'
set multiplot layout 1,2 title "acme-agent issue --batch: $N certificates on one Pebble, keys in SoftHSM ($(nproc) CPUs)"
set ylabel 'certificates per second (log scale)'
set logscale y
plot for [m in "$MODES"] '$TSV' using (strcol(1) eq m ? \$2 : 1/0):4 with linespoints lw 2 pt 7 title m
set ylabel 'speedup over --jobs 1'
unset logscale y
set yrange [0:*]
plot for [m in "$MODES"] '$TSV' using (strcol(1) eq m ? \$2 : 1/0):5 with linespoints lw 2 pt 7 title m, \
     x with lines dt 2 lc rgb 'gray' title 'linear', 3 with lines dt 3 lc rgb 'red' title 'target 3x at 8'
unset multiplot
GP
echo "(written to $RESULTS and $PLOT; per-run output in $WORK)" >&2
