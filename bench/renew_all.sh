#!/usr/bin/env bash
# Usage: bench/renew_all.sh   (env: N=10000, ROUNDS=3, BUILD=<repo>/build-bench,
#                              RESULTS=bench/results-renew_all.txt)
#
# `renew --all` over N stored certificates none of which is due (issue 17: under 2 s each),
# on the state dir and on PostgreSQL, in one run: one real certificate is issued from a
# local Pebble (keys in a fresh SoftHSM token), copied to N names in the state dir, and the
# state dir copied into a fresh PostgreSQL 15 with `storage migrate`; then ROUNDS runs of
# `renew --all` on each, interleaved (dir, database, dir, ...). Wall time and peak RSS of
# each run (GNU time), the load average at the start and at the end. Pebble has no ARI:
# each certificate is judged by the lifetime rule, so nothing is due and nothing is ordered.
set -euo pipefail

source "$(dirname "$0")/lib.sh" renew_all 10000
ROUNDS=${ROUNDS:-3}
need /usr/bin/time:time psql:postgresql-client-15
rm -rf "$WORK" && mkdir -p "$WORK"
cleanup() {
  "$ROOT/scripts/pebble-down.sh" "$WORK/pebble" >/dev/null 2>&1 || true
  "$ROOT/scripts/postgres-down.sh" "$WORK/pg" >/dev/null 2>&1 || true
}
trap cleanup EXIT
export PEBBLE_VA_NOSLEEP=1
eval "$("$ROOT/scripts/softhsm-setup.sh" "$WORK/hsm" acme)"
eval "$("$ROOT/scripts/pebble-up.sh" "$WORK/pebble")"
eval "$("$ROOT/scripts/postgres-setup.sh" "$WORK/pg")"
STATE=$WORK/state
A=("$AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --state-dir "$STATE")
ACCT=$("$AGENT" key generate --key "${ACME_AGENT_TOKEN_URI/\?/;object=acct?}" --type ec-p256)
KEY=$("$AGENT" key generate --key "${ACME_AGENT_TOKEN_URI/\?/;object=cert?}" --type ec-p256)
"${A[@]}" account register --key "$ACCT" --agree-tos >/dev/null 2>&1 || die "account register failed"
"${A[@]}" issue --key "$KEY" -d seed.example.com --http-port "127.0.0.1:$PEBBLE_HTTP_PORT" >/dev/null 2>&1 ||
  die "issue failed"
say "copying one certificate to $N names"
for i in $(seq "$N"); do cp -r "$STATE/live/seed.example.com" "$STATE/live/c$i.example.com"; done
"$AGENT" storage migrate --from "$STATE" --to "$ACME_AGENT_PG_URL" >/dev/null || die "storage migrate failed"
STORED=$(psql -X -qAt -h "$WORK/pg/sock" -p "$ACME_AGENT_PG_PORT" -U postgres -d acme -c "select count(*) from certificates")
[ "$STORED" -eq $((N + 1)) ] || die "PostgreSQL holds $STORED certificates, not $((N + 1))"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$WORK/runs.tsv"
run() { # run LABEL ARGS...: one timed renew --all; fails the bench if anything was renewed
  local label=$1
  shift
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" --json renew --all >"$WORK/out.json" 2>"$WORK/err" ||
    die "$label: renew --all failed: $(tail -c 400 "$WORK/err")"
  [ "$(jq '[.[] | select(.renewed == true)] | length' "$WORK/out.json" 2>/dev/null || echo 0)" -eq 0 ] ||
    die "$label: something was renewed"
  printf '%s\t%s\n' "$label" "$(cat "$WORK/time")" >>"$WORK/runs.tsv"
}
for r in $(seq "$ROUNDS"); do
  run statedir "${A[@]}"
  run postgresql "${A[@]}" --storage "$ACME_AGENT_PG_URL"
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
{
  echo "renew --all over $((N + 1)) stored certificates, none due; $ROUNDS rounds, interleaved"
  echo "load average at start: $LOAD_START; at end: $LOAD_END; $(nproc) CPUs; $(git -C "$ROOT" rev-parse --short HEAD)"
  printf '%-12s %-28s %s\n' storage "wall s (each run)" "median s, peak RSS KB"
  for label in statedir postgresql; do
    walls=$(awk -v l="$label" '$1 == l {print $2}' "$WORK/runs.tsv" | sort -n | tr '\n' ' ')
    median=$(awk -v l="$label" '$1 == l {print $2}' "$WORK/runs.tsv" | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}')
    rss=$(awk -v l="$label" '$1 == l {print $3}' "$WORK/runs.tsv" | sort -n | tail -1)
    printf '%-12s %-28s %s, %s\n' "$label" "$walls" "$median" "$rss"
  done
} | tee "$RESULTS"
