#!/usr/bin/env bash
# Usage: bench/coldstart.sh      (env: N=10, BUILD=<repo>/build-bench, RESULTS=bench/results-coldstart.txt)
#
# Cold start of acme-agent: what a fresh process does before its first ACME request, and
# that the expensive one-time steps happen once per process. N issuances (a fresh process
# each, keys in a fresh SoftHSM token, one local Pebble with PEBBLE_VA_NOSLEEP=1), each
# under `strace -f --seccomp-bpf -e trace=execve,openat,connect` (only those system calls
# stop the process, so the tracing overhead is small, but it is there: the figures are an
# upper bound). From each trace, milliseconds after the execve:
#   module    the PKCS#11 module (libsofthsm2.so) opened
#   token     the first read of the token's files (SoftHSM's C_Initialize/C_Login)
#   trust     the first read of a trust anchor (/etc/ssl/certs or the --ca-file)
#   request   the first connect() to Pebble's ACME port  <- exec-to-first-request
#   exit      the process's last traced event (issuance done)
# and per process the counts that must be 1: module loads, connections to the ACME server,
# reads of the --ca-file. Prints medians and writes them to RESULTS.
set -euo pipefail

source "$(dirname "$0")/lib.sh" coldstart 10
need strace:strace

rm -rf "$WORK"
mkdir -p "$WORK"
cleanup() { "$ROOT/scripts/pebble-down.sh" "$WORK/pebble" >/dev/null 2>&1 || true; }
trap cleanup EXIT
export PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0
eval "$("$ROOT/scripts/softhsm-setup.sh" "$WORK/hsm" coldstart)"
eval "$("$ROOT/scripts/pebble-up.sh" "$WORK/pebble")"
key() { echo "${ACME_AGENT_TOKEN_URI/\?/;object=$1?}"; }
A=("$AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --state-dir "$WORK/state")
"$AGENT" key generate --key "$(key account)" --type ec-p256 >/dev/null
"${A[@]}" -q account register --key "$(key account)" --agree-tos >/dev/null
CERT=$("$AGENT" key generate --key "$(key cert)" --type ec-p256)

for i in $(seq "$N"); do
  strace -f --seccomp-bpf -ttt -e trace=execve,openat,connect -o "$WORK/trace.$i" \
    "${A[@]}" -q issue --key "$CERT" -d "c$i.coldstart.example" \
    --http-port "127.0.0.1:$PEBBLE_HTTP_PORT" >/dev/null
done

python3 - "$WORK" "$N" "$(echo "$PEBBLE_URL" | sed -E 's|.*:([0-9]+)/.*|\1|')" "$PEBBLE_CA_FILE" "$SOFTHSM2_CONF" >"$RESULTS" <<'EOF'
import re, statistics, sys, os
work, n, port, ca_file, conf = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
tokendir = os.path.dirname(conf)
rows = []
for i in range(1, n + 1):
    ev = {}
    counts = {"module": 0, "acme connections": 0, "ca-file reads": 0}
    t0 = last = None
    for line in open(f"{work}/trace.{i}"):
        m = re.match(r"\d+\s+(\d+\.\d+) (\w+)\((.*)", line)
        if not m or (m.group(2) == "openat" and ("= -1" in line or "<unfinished" in line)):
            continue  # a failed openat (a library search path miss); connect is -1 EINPROGRESS
        t, call, args = float(m.group(1)), m.group(2), m.group(3)
        if t0 is None and call == "execve":
            t0 = t
        if t0 is None:
            continue
        ms = (t - t0) * 1000
        last = ms
        def first(k):
            ev.setdefault(k, ms)
        if call == "openat" and "libsofthsm2.so" in args:
            counts["module"] += 1; first("module")
        if call == "openat" and tokendir in args and "softhsm2.conf" not in args:
            first("token")
        if call == "openat" and ("/etc/ssl/certs" in args or ca_file in args):
            first("trust")
        if call == "openat" and ca_file in args:
            counts["ca-file reads"] += 1
        if call == "connect" and f"sin_port=htons({port})" in args:
            counts["acme connections"] += 1; first("request")
    ev["exit"] = last
    rows.append((ev, counts))
keys = ["module", "token", "trust", "request", "exit"]
print(f"acme-agent cold start: {n} issuances, a fresh process each (strace; ms after execve, median)")
for k in keys:
    vals = [r[0][k] for r in rows if k in r[0]]
    print(f"  {k:<10} {statistics.median(vals):8.1f} ms  (min {min(vals):.1f}, max {max(vals):.1f})" if vals else f"  {k:<10}  never")
for c in rows[0][1]:
    vals = sorted({r[1][c] for r in rows})
    print(f"  per process: {c} = {', '.join(map(str, vals))}")
EOF
cat "$RESULTS"
