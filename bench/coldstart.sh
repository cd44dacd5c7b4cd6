#!/usr/bin/env bash
# Usage: bench/coldstart.sh      (env: N=10, BUILD=<repo>/build-bench, RESULTS=bench/results-coldstart.txt)
#
# Cold start of acme-agent: what a fresh process does before its first ACME request, and
# that the expensive one-time steps happen once per process. N issuances (a fresh process
# each, keys in a fresh SoftHSM token, one local Pebble with PEBBLE_VA_NOSLEEP=1, an
# existing account), each with ACME_AGENT_TRACE (keystore/log.h: a timestamp per phase,
# written by the agent itself, so no tracer slows it down). Milliseconds after the fork
# (bash $EPOCHREALTIME just before starting the agent):
#   main      the top of main(): fork, exec, the dynamic loader, static initialisers
#   module    the PKCS#11 module (libsofthsm2.so) starts loading
#   login     C_Login done (the token is usable)
#   trust     the --ca-file read (the only trust anchor read; system roots are looked up
#             by hash in /etc/ssl/certs only when a chain needs one)
#   request   the first ACME request starts (TCP connect)  <- exec-to-first-request
#   exit      the process has ended (issuance done)
# The connect to the CA runs beside the module load and login (issue in acme_commands.cpp),
# so "request" can come before "login".
# Then one more issuance under `strace -f -e trace=openat,connect` for the counts that must
# be 1 per process (module loads, connections to the ACME server, reads of the --ca-file)
# and 0 (reads of the system bundle ca-certificates.crt).
# Prints medians (min, max) with the load average at the start and end; writes RESULTS.
set -euo pipefail

source "$(dirname "$0")/lib.sh" coldstart 10
need strace:strace python3:python3

rm -rf "$WORK"
mkdir -p "$WORK"
cleanup() { "$ROOT/scripts/pebble-down.sh" "$WORK/pebble" >/dev/null 2>&1 || true; }
trap cleanup EXIT
export PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0
env_lines=$("$ROOT/scripts/softhsm-setup.sh" "$WORK/hsm" coldstart 2>"$WORK/softhsm-setup.log") ||
  die "softhsm-setup.sh failed: $(cat "$WORK/softhsm-setup.log")"
eval "$env_lines"
env_lines=$("$ROOT/scripts/pebble-up.sh" "$WORK/pebble" 2>"$WORK/pebble-up.log") ||
  die "pebble-up.sh failed: $(tail -n 5 "$WORK/pebble-up.log")"
eval "$env_lines"
key() { echo "${ACME_AGENT_TOKEN_URI/\?/;object=$1?}"; }
A=("$AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --state-dir "$WORK/state")
"$AGENT" key generate --key "$(key account)" --type ec-p256 >/dev/null
"${A[@]}" -q account register --key "$(key account)" --agree-tos >/dev/null
CERT=$("$AGENT" key generate --key "$(key cert)" --type ec-p256)

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for i in $(seq "$N"); do
  t0=$EPOCHREALTIME
  ACME_AGENT_TRACE=$WORK/trace.$i "${A[@]}" -q issue --key "$CERT" -d "c$i.coldstart.example" \
    --http-port "127.0.0.1:$PEBBLE_HTTP_PORT" >/dev/null </dev/null
  t1=$EPOCHREALTIME
  echo "$t0 $t1" >"$WORK/times.$i"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
strace -f --seccomp-bpf -e trace=openat,connect -o "$WORK/strace" \
  "${A[@]}" -q issue --key "$CERT" -d "strace.coldstart.example" \
  --http-port "127.0.0.1:$PEBBLE_HTTP_PORT" >/dev/null </dev/null

(python3 - "$WORK" "$N" "$(echo "$PEBBLE_URL" | sed -E 's|.*:([0-9]+)/.*|\1|')" "$PEBBLE_CA_FILE" \
  "$LOAD_BEFORE" "$LOAD_AFTER" >"$RESULTS" <<'PY'
import statistics, sys
work, n = sys.argv[1], int(sys.argv[2])
port, ca_file, load_before, load_after = sys.argv[3:]
rows = []
for i in range(1, n + 1):
    t0, t1 = (float(x) * 1e6 for x in open(f"{work}/times.{i}").read().split())
    ev = {"exit": (t1 - t0) / 1000}
    for line in open(f"{work}/trace.{i}"):
        start, end, what = line.rstrip("\n").split(" ", 2)
        at, done = (int(start) - t0) / 1000, (int(end) - t0) / 1000
        if what == "main":
            ev.setdefault("main", at)
        elif what == "pkcs11 module load":
            ev.setdefault("module", at)
        elif what == "pkcs11 login":
            ev.setdefault("login", done)
        elif what.startswith("trust store: read"):
            ev.setdefault("trust", at)
        elif what.startswith("http "):
            ev.setdefault("request", at)
    rows.append(ev)
counts = {"module loads": 0, "acme connections": 0, "ca-file reads": 0, "system bundle reads": 0}
for line in open(f"{work}/strace"):
    if "= -1" in line:  # a failed openat (a library search path miss)
        continue
    if "openat(" in line and "libsofthsm2.so" in line:
        counts["module loads"] += 1
    if "openat(" in line and ca_file in line:
        counts["ca-file reads"] += 1
    if "openat(" in line and "ca-certificates.crt" in line:
        counts["system bundle reads"] += 1
    if "connect(" in line and f"sin_port=htons({port})" in line:
        counts["acme connections"] += 1
print(f"acme-agent cold start (bench/coldstart.sh): {n} issuances, a fresh process each, keys in SoftHSM")
print(f"load average at start: {load_before}, at end: {load_after}")
print("ms after the fork (ACME_AGENT_TRACE), median (min, max):")
for k in ["main", "module", "login", "trust", "request", "exit"]:
    vals = [r[k] for r in rows if k in r]
    if vals:
        print(f"  {k:<10} {statistics.median(vals):8.1f} ms  (min {min(vals):.1f}, max {max(vals):.1f})")
    else:
        print(f"  {k:<10}  never")
print("one more issuance under strace, per process:")
for c, v in counts.items():
    print(f"  {c} = {v}")
want = {"module loads": 1, "acme connections": 1, "ca-file reads": 1, "system bundle reads": 0}
bad = [f"{c} = {counts[c]}, not {v}" for c, v in want.items() if counts[c] != v]
if bad:
    print("DONE MORE THAN ONCE (or not at all): " + "; ".join(bad))
    sys.exit(1)
PY
) || { cat "$RESULTS"; die "a one-time step was not done exactly once (see above)"; }
cat "$RESULTS"
