#!/usr/bin/env bash
# Usage: bench/e2e.sh        (env: N=10, BUILD=<repo>/build-bench, RESULTS=bench/results-e2e.txt,
#                              CLIENTS="acme-agent floor uacme lego", VERDICT=1)
#
# End-to-end comparison on ONE local Pebble, in one run: N sequential certificate
# issuances over http-01 by each of CLIENTS:
#   acme-agent  both keys (account, certificate) in a fresh SoftHSM token; its built-in
#               http-01 responder on Pebble's httpPort (--http-port)
#   lego        Debian package; built-in responder (--http --http.port), --key-type ec256,
#               Pebble's TLS certificate trusted through LEGO_CA_CERTIFICATES
#   uacme       Debian package; a hook script writes the key authorization into a webroot
#               that `python3 -m http.server` serves on Pebble's httpPort; EC P-256 keys
#   floor       bench/floor.py: the smallest client replaying acme-agent's request sequence
#               (keys in memory, CSR built before the clock, no waits, own responder); its
#               figure is its self-reported time from the first request to the certificate,
#               without Python's start-up: the protocol's floor on this machine and Pebble
# A fresh process per certificate, a distinct name per certificate, an account registered
# beforehand (not measured), the clients interleaved round by round, the order rotated each
# round (round 1 agent, floor, uacme, lego; round 2 floor, uacme, lego, agent; ...) so that
# a change in machine load, or a position in the round, hits all of them alike, and one
# untimed warm-up issuance per client first. The load average is recorded at the start and
# at the end; medians come with their spread (IQR and min-max).
#
# After the rounds, one more acme-agent issuance runs with ACME_AGENT_TRACE and its phases
# are printed (bench/phases.py): exec to main, module load, login, trust store, each request
# (client vs server time), waiting for validation, signatures, file writes, exit.
#
# CLIENTS picks the clients (the order of round 1); VERDICT=0 prints no target verdicts. The
# CI smoke run (ctest -L bench) is N=2 CLIENTS="acme-agent floor" VERDICT=0: explicitly
# without the peers (lego, uacme), which need Debian packages a CI image may lack; it
# checks that the bench, the floor and the phase breakdown still run, nothing more.
#
# Per certificate it measures, the same way for all three:
#   wall      bash's $EPOCHREALTIME around `/usr/bin/time ... timeout 60 CLIENT ...`
#   CPU       user+sys of the client and its children (bash's `times`, ms resolution)
#   peak RSS  GNU time %M (largest resident set of the client or a child it waited for)
#   requests  lines "-> calling handler" that Pebble logged during the run: every HTTP
#             request the client sent to the ACME server (Pebble's own http-01 fetches
#             are outbound and not counted). acme-agent's self-reported .requests from
#             `--json issue` is shown beside it as a cross-check.
# It prints a table with medians and the ratios acme-agent/uacme and acme-agent/lego, and
# writes the same to RESULTS. Raw per-run figures: $WORK/runs.tsv.
#
# Trusting Pebble in uacme: uacme has no CA-file option and always reads the system bundle
# /etc/ssl/certs/ca-certificates.crt. Each uacme run therefore happens in a private mount
# namespace (`unshare -m`, util-linux makes mounts private by default there; as non-root,
# `unshare -r -m` maps the user to root inside a user namespace) in which a copy of the
# system bundle with Pebble's certificate appended is bind-mounted over that path. The
# system file itself is never changed and nothing outside the namespace sees the copy.
# The wall-clock measurement starts inside the namespace, after the bind mount, so the
# namespace set-up is not charged to uacme.
#
# Pebble runs with PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0 and PEBBLE_WFE_NONCEREJECT=0
# (set PEBBLE_WFE_NONCEREJECT=5 for Pebble's default: 5 % of good nonces rejected, which
# adds random badNonce retries to every client's request count and time).
#
# Missing packages (lego, uacme, time) are installed with apt-get, and the script says so.
set -euo pipefail

source "$(dirname "$0")/lib.sh" e2e 10
PYTHON=${PYTHON:-/usr/bin/python3}
EMAIL=bench@e2e.example
DOMAIN=e2e.bench.example
read -r -a CLIENTS <<<"${CLIENTS:-acme-agent floor uacme lego}"
VERDICT=${VERDICT:-1}
[[ $VERDICT == [01] ]] || die "VERDICT is 0 or 1: '$VERDICT'"
[ ${#CLIENTS[@]} -gt 0 ] || die "CLIENTS names no client"
for c in "${CLIENTS[@]}"; do
  [[ $c == acme-agent || $c == floor || $c == uacme || $c == lego ]] ||
    die "CLIENTS entries are acme-agent, floor, uacme, lego: '$c'"
done
running() { [[ " ${CLIENTS[*]} " == *" $1 "* ]]; }

# ---- tools ---------------------------------------------------------------------------
missing=()
if running lego; then command -v lego >/dev/null || missing+=(lego); fi
if running uacme; then command -v uacme >/dev/null || missing+=(uacme); fi
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing missing packages: ${missing[*]} (apt-get install -y ${missing[*]})"
  [ "$(id -u)" = 0 ] || die "not root: run 'sudo apt-get install -y ${missing[*]}' first"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y "${missing[@]}" >&2 ||
    { apt-get update >&2 && apt-get install -y "${missing[@]}" >&2; } ||
    die "apt-get install -y ${missing[*]} failed"
  say "installed: ${missing[*]}"
fi
need jq:jq curl:curl softhsm2-util:softhsm2 pebble:pebble ss:iproute2
[ -x "$PYTHON" ] || die "$PYTHON not found (apt-get install -y python3)"
if running floor; then
  "$PYTHON" -c 'import cryptography' 2>/dev/null || die "the floor needs python3-cryptography (apt-get install -y python3-cryptography)"
fi
SYSTEM_BUNDLE=/etc/ssl/certs/ca-certificates.crt
if running uacme; then
  need unshare:util-linux
  [ -f "$SYSTEM_BUNDLE" ] || die "$SYSTEM_BUNDLE not found (apt-get install -y ca-certificates)"
  if [ "$(id -u)" = 0 ]; then UNSHARE=(unshare -m); else UNSHARE=(unshare -r -m); fi
  "${UNSHARE[@]}" true 2>/dev/null || die "'${UNSHARE[*]}' does not work here (needs root or unprivileged user namespaces)"
fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- work dir, clean-up ----------------------------------------------------------------
rm -rf "$WORK"
mkdir -p "$WORK"
WEB_PID=
stop_web() {
  if [ -n "$WEB_PID" ]; then
    kill "$WEB_PID" 2>/dev/null || true
    wait "$WEB_PID" 2>/dev/null || true
    WEB_PID=
  fi
}
cleanup() {
  stop_web
  "$ROOT/scripts/pebble-down.sh" "$WORK/pebble" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# poll_until SECONDS CMD...: runs CMD every 20 ms until it succeeds or the deadline passes.
poll_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    read -rt 0.02 <> <(:) || true
  done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_free() { [ -z "$(ss -Htln "sport = :$1")" ]; }

# ---- Pebble, token, accounts -----------------------------------------------------------
say "starting Pebble"
env_lines=$(PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0 PEBBLE_WFE_NONCEREJECT=${PEBBLE_WFE_NONCEREJECT:-0} \
  "$ROOT/scripts/pebble-up.sh" "$WORK/pebble" 2>"$WORK/pebble-up.log") ||
  die "pebble-up.sh failed: $(tail -n 5 "$WORK/pebble-up.log")"
eval "$env_lines"
PEBBLE_LOG=$WORK/pebble/pebble.log
HTTP_ADDR=127.0.0.1:$PEBBLE_HTTP_PORT
export LEGO_CA_CERTIFICATES=$PEBBLE_CA_FILE

say "SoftHSM token and keys for acme-agent"
env_lines=$("$ROOT/scripts/softhsm-setup.sh" "$WORK/hsm" e2e 2>"$WORK/softhsm-setup.log") ||
  die "softhsm-setup.sh failed: $(cat "$WORK/softhsm-setup.log")"
eval "$env_lines"
ACCOUNT_KEY=$("$AGENT" key generate --key "${ACME_AGENT_TOKEN_URI/\?/;object=account?}" --type ec-p256)
CERT_KEY=$("$AGENT" key generate --key "${ACME_AGENT_TOKEN_URI/\?/;object=cert?}" --type ec-p256)
AGENT_BASE=("$AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --state-dir "$WORK/agent-state")
"${AGENT_BASE[@]}" account register --key "$ACCOUNT_KEY" --agree-tos --email "$EMAIL" \
  >"$WORK/agent-register.log" 2>&1 || die "acme-agent account register failed: $(tail -n 5 "$WORK/agent-register.log")"

if running floor; then
  say "floor: keys and account"
  "$PYTHON" "$HERE/floor.py" register --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" \
    --dir "$WORK/floor" >"$WORK/floor-register.log" 2>&1 ||
    die "floor.py register failed: $(tail -n 5 "$WORK/floor-register.log")"
fi

if running uacme; then
say "uacme: CA bundle, hook, webroot, account"
BUNDLE=$WORK/ca-bundle-with-pebble.crt
cat "$SYSTEM_BUNDLE" "$PEBBLE_CA_FILE" >"$BUNDLE"
WEBROOT=$WORK/webroot
mkdir -p "$WEBROOT/.well-known/acme-challenge"
HOOK=$WORK/uacme-hook.sh
# uacme calls: HOOK METHOD TYPE IDENT TOKEN KEY_AUTH (METHOD begin|done|failed); exit 0 on
# begin accepts the challenge type.
cat >"$HOOK" <<EOF
#!/bin/sh
dir='$WEBROOT/.well-known/acme-challenge'
[ "\$2" = http-01 ] || exit 1
case \$1 in
  begin) printf '%s' "\$5" >"\$dir/\$4" ;;
  done|failed) rm -f "\$dir/\$4" ;;
  *) exit 1 ;;
esac
EOF
chmod 755 "$HOOK"
UACME_BASE=(uacme -c "$WORK/uacme" -a "$PEBBLE_URL" -t EC -b 256 -h "$HOOK")
# in_ns CMD...: CMD in a private mount namespace that trusts Pebble (see the header).
# shellcheck disable=SC2016 # the inner script expands its own arguments
in_ns() {
  "${UNSHARE[@]}" bash -c 'mount --bind "$1" "$2" || exit 97; shift 2; "$@"' _ \
    "$BUNDLE" "$SYSTEM_BUNDLE" "$@"
}
in_ns "${UACME_BASE[@]}" -y new "$EMAIL" >"$WORK/uacme-new.log" 2>&1 ||
  die "uacme new failed: $(tail -n 5 "$WORK/uacme-new.log")"
fi

start_web() {
  poll_until 10 port_free "$PEBBLE_HTTP_PORT" || die "port $PEBBLE_HTTP_PORT stays busy"
  "$PYTHON" -m http.server --bind 127.0.0.1 --directory "$WEBROOT" "$PEBBLE_HTTP_PORT" \
    >>"$WORK/http-server.log" 2>&1 &
  WEB_PID=$!
  poll_until 10 port_open "$PEBBLE_HTTP_PORT" || die "python3 http.server did not start on $HTTP_ADDR"
}

# ---- measurement -----------------------------------------------------------------------
# measure OUT CMD...: runs CMD bounded by `timeout 60`; writes "rc t0 t1 user sys maxrss_kb"
# to OUT.m, stdout/stderr to OUT.out/OUT.err. CPU comes from bash's `times` in a subshell
# (children's user and sys, millisecond resolution; GNU time's %U/%S have only 10 ms), the
# peak RSS from GNU time's %M. The subshell's children are time, timeout and the client,
# so their CPU is in the figure too (about 1 ms, the same for every client). Exported: the
# uacme runs call it inside their mount namespace.
measure() {
  local out=$1 rc=0 t0 t1 cpu
  shift
  t0=$EPOCHREALTIME
  (
    r=0
    /usr/bin/time -o "$out.time" -f '%M' timeout -k 5 60 "$@" >"$out.out" 2>"$out.err" </dev/null || r=$?
    times >"$out.times"
    exit $r
  ) || rc=$?
  t1=$EPOCHREALTIME
  # `times` prints the shell's user/sys, then its children's: "0m0.012s 0m0.004s".
  cpu=$(awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); printf "%.3f ", p[1] * 60 + p[2] } }' "$out.times")
  echo "$rc $t0 $t1 ${cpu:-nan nan} $(tail -n 1 "$out.time")" >"$out.m"
}
export -f measure

handler_lines() { grep -c -- '-> calling handler' "$PEBBLE_LOG" || true; }

RUNS=$WORK/runs.tsv
printf 'client\trun\trc\twall_s\tuser_s\tsys_s\tmaxrss_kb\trequests\tself_reported\n' >"$RUNS"

# one CLIENT RUN: one issuance of a fresh name; appends a line to runs.tsv unless RUN is
# "warmup".
one() {
  local client=$1 run=$2 name out before after self=- rc t0 t1 user sys rss
  name=$client-$run.$DOMAIN
  out=$WORK/runs/$client-$run
  mkdir -p "$WORK/runs"
  if [ "$client" = uacme ]; then start_web; fi
  before=$(handler_lines)
  case $client in
    acme-agent)
      measure "$out" "${AGENT_BASE[@]}" --json issue --key "$CERT_KEY" -d "$name" --http-port "$HTTP_ADDR" ;;
    floor)
      measure "$out" "$PYTHON" "$HERE/floor.py" issue --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" \
        --dir "$WORK/floor" --http-port "$HTTP_ADDR" "$name" ;;
    lego)
      measure "$out" lego --server "$PEBBLE_URL" --accept-tos --email "$EMAIL" --key-type ec256 \
        --path "$WORK/lego" --http --http.port "$HTTP_ADDR" -d "$name" run ;;
    uacme)
      in_ns measure "$out" "${UACME_BASE[@]}" issue "$name" ;;
  esac
  after=$(handler_lines)
  if [ "$client" = uacme ]; then stop_web; fi
  read -r rc t0 t1 user sys rss <"$out.m"
  if [ "$client" = acme-agent ] && [ "$rc" = 0 ]; then self=$(jq -r '.requests // "-"' "$out.out" 2>/dev/null || echo -); fi
  # The floor's own figure: seconds from its first request to the certificate.
  if [ "$client" = floor ] && [ "$rc" = 0 ]; then self=$(jq -r '.seconds // "-"' "$out.out" 2>/dev/null || echo -); fi
  if [ "$rc" != 0 ]; then
    say "$client run $run ($name) failed with exit $rc; last lines of its stderr:"
    tail -n 5 "$out.err" >&2 || true
  fi
  if [ "$run" = warmup ]; then return 0; fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$client" "$run" "$rc" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')" "$user" "$sys" "$rss" \
    "$((after - before))" "$self" >>"$RUNS"
  printf 'e2e: %-10s %3s  rc=%s  wall=%ss  cpu=%ss  rss=%sKB  requests=%s\n' "$client" "$run" "$rc" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" \
    "$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", u + s }')" "$rss" "$((after - before))" >&2
}

say "warm-up: one untimed issuance per client (lego's also registers its account)"
for c in "${CLIENTS[@]}"; do one "$c" warmup; done
for c in "${CLIENTS[@]}"; do
  [ "$(cut -d' ' -f1 "$WORK/runs/$c-warmup.m")" = 0 ] || die "$c warm-up failed; see $WORK/runs/$c-warmup.err"
done
say "measuring: $N rounds of ${CLIENTS[*]} (the order rotated each round)"
for i in $(seq "$N"); do
  n=${#CLIENTS[@]}
  for k in $(seq 0 $((n - 1))); do one "${CLIENTS[$(((i - 1 + k) % n))]}" "$i"; done
done

# ---- phases of one acme-agent issuance ------------------------------------------------
PHASES=
if running acme-agent; then
  say "phases: one traced acme-agent issuance (ACME_AGENT_TRACE)"
  trace=$WORK/phases.trace
  rm -f "$trace"
  # The clock starts in this shell just before the fork; the agent's first trace line is
  # at the top of main(), so "exec to main" includes fork, exec and the dynamic loader.
  t_exec=$EPOCHREALTIME
  ACME_AGENT_TRACE=$trace "${AGENT_BASE[@]}" -q issue --key "$CERT_KEY" -d "phases.$DOMAIN" \
    --http-port "$HTTP_ADDR" >"$WORK/phases.out" 2>"$WORK/phases.err" </dev/null ||
    die "the traced issuance failed: $(tail -n 5 "$WORK/phases.err")"
  t_end=$EPOCHREALTIME
  PHASES=$("$PYTHON" "$HERE/phases.py" "$trace" "$t_exec" "$t_end") ||
    die "phases.py failed on $trace"
fi

# ---- summary ---------------------------------------------------------------------------
# stat CLIENT FIELD [how]: over the client's successful runs, FIELD's median (how=median,
# the default), p25, p75, min or max (p25/p75: the quartiles by linear interpolation).
stat() {
  awk -F'\t' -v c="$1" -v f="$2" -v how="${3:-median}" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $1 == c && $3 == 0 {
      v = (f == "cpu_s") ? $col["user_s"] + $col["sys_s"] : $col[f]
      if (v != "-") a[++n] = v + 0 }
    function q(p,   h, lo) { h = (n - 1) * p + 1; lo = int(h); return (lo >= n) ? a[n] : a[lo] + (h - lo) * (a[lo + 1] - a[lo]) }
    END {
      if (n == 0) { print "nan"; exit }
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      if (how == "min") print a[1]; else if (how == "max") print a[n]
      else if (how == "p25") print q(0.25); else if (how == "p75") print q(0.75); else print q(0.5) }' "$RUNS"
}
ok_count() { awk -F'\t' -v c="$1" '$1 == c && $3 == 0 { n++ } END { print n + 0 }' "$RUNS"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0 || a == "nan" || b == "nan") print "nan"; else printf "%.3f", a / b }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { if (r == "nan") print "n/a"; else print (r + 0 <= t + 0) ? "met" : "MISSED" }'; }
# The per-certificate time a client is judged by: the floor's own protocol time, the
# others' wall time.
TIME_FIELD() { if [ "$1" = floor ]; then echo self_reported; else echo wall_s; fi; }
t_med() { stat "$1" "$(TIME_FIELD "$1")"; }

version_of() {
  case $1 in
    acme-agent) "$AGENT" --version 2>/dev/null | head -n 1 || echo unknown ;;
    floor) echo "bench/floor.py ($("$PYTHON" --version 2>&1), cryptography $("$PYTHON" -c 'import cryptography; print(cryptography.__version__)'))" ;;
    lego) echo "lego $(dpkg-query -W -f '${Version}' lego 2>/dev/null || echo '?') (Debian)" ;;
    uacme) echo "uacme $(dpkg-query -W -f '${Version}' uacme 2>/dev/null || echo '?') (Debian)" ;;
  esac
}
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$ROOT" status --porcelain -- agent keystore pkcs11 2>/dev/null)" ] || rev+=" + uncommitted changes"
rev+=", binary built $(date -u -r "$AGENT" '+%Y-%m-%d %H:%M UTC')"

{
  echo "acme-agent end-to-end benchmark (bench/e2e.sh), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "host: $(nproc) CPUs, $(uname -r); load average at start: $LOAD_BEFORE, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "Pebble $(dpkg-query -W -f '${Version}' pebble 2>/dev/null || echo '?'): PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0 PEBBLE_WFE_NONCEREJECT=${PEBBLE_WFE_NONCEREJECT:-0}; http-01; EC P-256 keys everywhere"
  for c in "${CLIENTS[@]}"; do
    case $c in
      acme-agent) echo "acme-agent: $(version_of acme-agent) at $rev, keys in SoftHSM $(dpkg-query -W -f '${Version}' softhsm2 2>/dev/null || echo '?')" ;;
      *) echo "$c: $(version_of "$c")" ;;
    esac
  done
  echo "N=$N certificates per client (fresh process each, distinct names, existing account), interleaved, order rotated per round; clients: ${CLIENTS[*]}"
  echo
  echo "per certificate, over successful runs: median [IQR p25-p75] (min-max)"
  printf '%-11s %6s %-36s %9s %8s %10s %9s\n' client ok/N 'wall_s median [IQR] (min-max)' cpu_s rss_MB rss_max_MB requests
  for c in "${CLIENTS[@]}"; do
    printf '%-11s %6s %-36s %9.3f %8.1f %10.1f %9s\n' "$c" "$(ok_count "$c")/$N" \
      "$(printf '%.3f [%.3f-%.3f] (%.3f-%.3f)' "$(stat "$c" wall_s)" "$(stat "$c" wall_s p25)" "$(stat "$c" wall_s p75)" "$(stat "$c" wall_s min)" "$(stat "$c" wall_s max)")" \
      "$(stat "$c" cpu_s)" \
      "$(awk -v k="$(stat "$c" maxrss_kb)" 'BEGIN { print k / 1024 }')" \
      "$(awk -v k="$(stat "$c" maxrss_kb max)" 'BEGIN { print k / 1024 }')" \
      "$(stat "$c" requests)"
  done
  if running floor; then
    printf '%-11s %6s %-36s  (its own time from the first request to the certificate: the figure compared below)\n' \
      'floor' 'proto' "$(printf '%.3f [%.3f-%.3f] (%.3f-%.3f)' "$(stat floor self_reported)" "$(stat floor self_reported p25)" "$(stat floor self_reported p75)" "$(stat floor self_reported min)" "$(stat floor self_reported max)")"
  fi
  if running acme-agent; then
    echo "(requests: counted in Pebble's log for every client; acme-agent's own --json .requests median: $(stat acme-agent self_reported))"
  fi
  others=()
  for c in "${CLIENTS[@]}"; do [ "$c" = acme-agent ] || others+=("$c"); done
  if running acme-agent && [ ${#others[@]} -gt 0 ]; then
    echo
    printf '%-22s %8s %8s %8s %9s\n' ratio time cpu rss requests
    for other in "${others[@]}"; do
      printf '%-22s %8s %8s %8s %9s\n' "acme-agent/$other" \
        "$(ratio "$(t_med acme-agent)" "$(t_med "$other")")" \
        "$(ratio "$(stat acme-agent cpu_s)" "$(stat "$other" cpu_s)")" \
        "$(ratio "$(stat acme-agent maxrss_kb)" "$(stat "$other" maxrss_kb)")" \
        "$(ratio "$(stat acme-agent requests)" "$(stat "$other" requests)")"
    done
    echo "(time: wall medians; for the floor its own protocol time, without Python's start-up)"
  fi
  if [ "$VERDICT" = 1 ]; then
    echo
    echo "targets (issue 20; a client not run gives n/a):"
    target() { # LABEL FIELD OTHER LIMIT
      local r=nan
      if running acme-agent && running "$3"; then
        if [ "$2" = time ]; then r=$(ratio "$(t_med acme-agent)" "$(t_med "$3")"); else r=$(ratio "$(stat acme-agent "$2")" "$(stat "$3" "$2")"); fi
      fi
      printf '  %-22s acme-agent/%-6s <= %-5s %6s  %s\n' "$1" "$3" "$4" "$r" "$(verdict "$r" "$4")"
    }
    target "per certificate" time uacme 0.20
    target "per certificate" time floor 1.50
    target "per certificate" time lego 0.02
    target "peak RSS" maxrss_kb uacme 1.00
    target "peak RSS" maxrss_kb lego 0.85
  else
    echo
    echo "(VERDICT=0: no target verdicts; a smoke run, not a measurement)"
  fi
  if [ -n "$PHASES" ]; then
    echo
    echo "$PHASES"
  fi
} >"$WORK/summary.txt"
cp "$WORK/summary.txt" "$RESULTS"
cat "$RESULTS"
echo "(written to $RESULTS; per-run figures in $RUNS)" >&2
# A failed issuance is a failed bench (the figures above are over the successful runs only).
failed=$(awk -F'\t' 'NR > 1 && $3 != 0 { n++ } END { print n + 0 }' "$RUNS")
[ "$failed" = 0 ] || die "$failed of the measured issuances failed (see the rc column of $RUNS)"
