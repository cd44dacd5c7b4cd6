#!/usr/bin/env bash
# Usage: bench/batch.sh   (env: N=50, JOBS="1 2 4 8", MODES="sleep nosleep",
#                          BUILD=<repo>/build-bench, RESULTS=bench/results-batch.txt,
#                          PLOT=bench/batch-throughput.png; REPLOT=1 only redraws PLOT
#                          from the last run's BUILD/bench-batch/runs.tsv)
#
# Throughput of `issue --batch` with --jobs: one batch of N certificates per --jobs value
# on ONE Pebble per mode, keys in a fresh SoftHSM token (N certificate keys, one account
# key; the same keys for every run, distinct names per run), http-01 through the built-in
# responder. Each run is one acme-agent process; its wall time (bash $EPOCHREALTIME) is
# the figure. Every certificate of every run must be issued, or the script fails.
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
MODES=${MODES:-sleep nosleep}
for j in $JOBS; do [[ $j =~ ^[1-9][0-9]*$ ]] && [ "$j" -le 64 ] || die "JOBS entries must be 1..64: '$j'"; done
for m in $MODES; do [[ $m == sleep || $m == nosleep ]] || die "MODES entries are sleep or nosleep: '$m'"; done
PLOT=${PLOT:-$HERE/batch-throughput.png}
need gnuplot:gnuplot-nox jq:jq openssl:openssl

TSV=$WORK/runs.tsv
if [ "${REPLOT:-0}" = 1 ]; then
  [ -f "$TSV" ] || die "no $TSV to redraw; run without REPLOT first"
  MODES=$(tail -n +2 "$TSV" | cut -f1 | uniq | tr '\n' ' ')
  JOBS=$(tail -n +2 "$TSV" | cut -f2 | sort -nu | tr '\n' ' ')
  N=$(sed -n 's/^N=\([0-9]*\) .*/\1/p' "$RESULTS")
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
printf 'mode\tjobs\tseconds\tcerts_per_s\tspeedup\trequests\tconnections\n' >"$TSV"

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

  base=
  for j in $JOBS; do
    batch=$WORK/$mode-j$j.txt
    for i in $(seq "$N"); do echo "${KEYS[i]} c$i.j$j.$mode.batch.example"; done >"$batch"
    say "$mode: $N certificates with --jobs $j"
    t0=$EPOCHREALTIME
    rc=0
    "${A[@]}" -v --json issue --batch "$batch" --jobs "$j" --http-port "127.0.0.1:$PEBBLE_HTTP_PORT" \
      >"$WORK/$mode-j$j.json" 2>"$WORK/$mode-j$j.err" </dev/null || rc=$?
    t1=$EPOCHREALTIME
    ok=$(jq '[.[] | select(.ok)] | length' "$WORK/$mode-j$j.json" 2>/dev/null || echo 0)
    [ "$rc" = 0 ] && [ "$ok" = "$N" ] ||
      die "$mode --jobs $j: exit $rc, $ok of $N issued; see $WORK/$mode-j$j.err"
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    [ -n "$base" ] || base=$secs
    reqs=$(sed -n 's/^debug: batch: \([0-9]*\) requests over \([0-9]*\) connections$/\1 \2/p' "$WORK/$mode-j$j.err")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$j" "$secs" \
      "$(awk -v n="$N" -v s="$secs" 'BEGIN { printf "%.2f", n / s }')" \
      "$(awk -v b="$base" -v s="$secs" 'BEGIN { printf "%.2f", b / s }')" \
      "${reqs% *}" "${reqs#* }" >>"$TSV"
    say "$mode --jobs $j: $secs s"
  done
  "$ROOT/scripts/pebble-down.sh" "$WORK/pebble-$mode" >/dev/null 2>&1 || true
done

{
  echo "acme-agent issue --batch throughput (bench/batch.sh), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "host: $(nproc) CPUs, $(uname -r); load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "acme-agent $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$([ -z "$(git -C "$ROOT" status --porcelain -- agent keystore 2>/dev/null)" ] || echo ' + uncommitted changes'); Pebble $(dpkg-query -W -f '${Version}' pebble 2>/dev/null || echo '?'); SoftHSM $(dpkg-query -W -f '${Version}' softhsm2 2>/dev/null || echo '?'); EC P-256 keys; http-01"
  echo "N=$N certificates per run, one process per run; sleep = Pebble's VA default (random 0-5 s before each validation), nosleep = PEBBLE_VA_NOSLEEP=1"
  echo
  printf '%-8s %5s %9s %8s %8s %9s %12s\n' mode jobs seconds certs/s speedup requests connections
  tail -n +2 "$TSV" | while IFS=$'\t' read -r m j s c x r k; do
    printf '%-8s %5s %9s %8s %8s %9s %12s\n' "$m" "$j" "$s" "$c" "$x" "$r" "$k"
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
