#!/usr/bin/env bash
# Usage: bench/e2e.sh        (env: N=10, BUILD=<repo>/build-bench, RESULTS=bench/results-e2e.txt)
#
# End-to-end comparison on ONE local Pebble, in one run: N sequential certificate
# issuances over http-01 by each of
#   acme-agent  both keys (account, certificate) in a fresh SoftHSM token; its built-in
#               http-01 responder on Pebble's httpPort (--http-port)
#   lego        Debian package; built-in responder (--http --http.port), --key-type ec256,
#               Pebble's TLS certificate trusted through LEGO_CA_CERTIFICATES
#   uacme       Debian package; a hook script writes the key authorization into a webroot
#               that `python3 -m http.server` serves on Pebble's httpPort; EC P-256 keys
# A fresh process per certificate, a distinct name per certificate, an account registered
# beforehand (not measured), the clients interleaved round by round (agent, uacme, lego)
# so that a change in machine load hits all three alike, and one untimed warm-up
# issuance per client first.
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

# ---- tools ---------------------------------------------------------------------------
missing=()
command -v lego >/dev/null || missing+=(lego)
command -v uacme >/dev/null || missing+=(uacme)
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
need jq:jq curl:curl unshare:util-linux softhsm2-util:softhsm2 pebble:pebble ss:iproute2
[ -x "$PYTHON" ] || die "$PYTHON not found (apt-get install -y python3)"
SYSTEM_BUNDLE=/etc/ssl/certs/ca-certificates.crt
[ -f "$SYSTEM_BUNDLE" ] || die "$SYSTEM_BUNDLE not found (apt-get install -y ca-certificates)"
if [ "$(id -u)" = 0 ]; then UNSHARE=(unshare -m); else UNSHARE=(unshare -r -m); fi
"${UNSHARE[@]}" true 2>/dev/null || die "'${UNSHARE[*]}' does not work here (needs root or unprivileged user namespaces)"

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

CLIENTS=(acme-agent uacme lego)
say "warm-up: one untimed issuance per client (lego's also registers its account)"
for c in "${CLIENTS[@]}"; do one "$c" warmup; done
for c in "${CLIENTS[@]}"; do
  [ "$(cut -d' ' -f1 "$WORK/runs/$c-warmup.m")" = 0 ] || die "$c warm-up failed; see $WORK/runs/$c-warmup.err"
done
say "measuring: $N rounds of ${CLIENTS[*]}"
for i in $(seq "$N"); do
  for c in "${CLIENTS[@]}"; do one "$c" "$i"; done
done

# ---- summary ---------------------------------------------------------------------------
# med CLIENT FIELD [max]: median (or max) of FIELD over the client's successful runs.
med() {
  awk -F'\t' -v c="$1" -v f="$2" -v how="${3:-median}" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $1 == c && $3 == 0 {
      v = (f == "cpu_s") ? $col["user_s"] + $col["sys_s"] : $col[f]
      if (v != "-") a[++n] = v + 0 }
    END {
      if (n == 0) { print "nan"; exit }
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      if (how == "max") print a[n]; else print (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }' "$RUNS"
}
ok_count() { awk -F'\t' -v c="$1" '$1 == c && $3 == 0 { n++ } END { print n + 0 }' "$RUNS"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0 || a == "nan" || b == "nan") print "nan"; else printf "%.3f", a / b }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { if (r == "nan") print "n/a"; else print (r + 0 <= t + 0) ? "met" : "MISSED" }'; }

version_of() {
  case $1 in
    acme-agent) "$AGENT" --version 2>/dev/null | head -n 1 || echo unknown ;;
    lego) echo "lego $(dpkg-query -W -f '${Version}' lego 2>/dev/null || echo '?') (Debian)" ;;
    uacme) echo "uacme $(dpkg-query -W -f '${Version}' uacme 2>/dev/null || echo '?') (Debian)" ;;
  esac
}
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$ROOT" status --porcelain -- agent keystore pkcs11 2>/dev/null)" ] || rev+=" + uncommitted changes"
rev+=", binary built $(date -u -r "$AGENT" '+%Y-%m-%d %H:%M UTC')"

{
  echo "acme-agent end-to-end benchmark (bench/e2e.sh), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "host: $(nproc) CPUs, $(uname -r); load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "Pebble $(dpkg-query -W -f '${Version}' pebble 2>/dev/null || echo '?'): PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0 PEBBLE_WFE_NONCEREJECT=${PEBBLE_WFE_NONCEREJECT:-0}; http-01; EC P-256 keys everywhere"
  echo "acme-agent: $(version_of acme-agent) at $rev, keys in SoftHSM $(dpkg-query -W -f '${Version}' softhsm2 2>/dev/null || echo '?')"
  echo "lego: $(version_of lego); uacme: $(version_of uacme)"
  echo "N=$N certificates per client (fresh process each, distinct names, existing account), interleaved; medians over successful runs"
  echo
  printf '%-11s %6s %10s %9s %11s %11s %9s\n' client ok/N wall_s cpu_s rss_MB rss_max_MB requests
  for c in "${CLIENTS[@]}"; do
    printf '%-11s %6s %10.3f %9.3f %11.1f %11.1f %9s\n' "$c" "$(ok_count "$c")/$N" \
      "$(med "$c" wall_s)" "$(med "$c" cpu_s)" \
      "$(awk -v k="$(med "$c" maxrss_kb)" 'BEGIN { print k / 1024 }')" \
      "$(awk -v k="$(med "$c" maxrss_kb max)" 'BEGIN { print k / 1024 }')" \
      "$(med "$c" requests)"
  done
  echo "(requests: counted in Pebble's log for every client; acme-agent's own --json .requests median: $(med acme-agent self_reported))"
  echo
  printf '%-22s %8s %8s %8s %9s\n' ratio wall cpu rss requests
  for other in uacme lego; do
    printf '%-22s %8s %8s %8s %9s\n' "acme-agent/$other" \
      "$(ratio "$(med acme-agent wall_s)" "$(med "$other" wall_s)")" \
      "$(ratio "$(med acme-agent cpu_s)" "$(med "$other" cpu_s)")" \
      "$(ratio "$(med acme-agent maxrss_kb)" "$(med "$other" maxrss_kb)")" \
      "$(ratio "$(med acme-agent requests)" "$(med "$other" requests)")"
  done
  echo
  echo "targets:"
  r=$(ratio "$(med acme-agent wall_s)" "$(med uacme wall_s)")
  echo "  wall per certificate  acme-agent/uacme <= 0.25: $r  $(verdict "$r" 0.25)"
  r=$(ratio "$(med acme-agent wall_s)" "$(med lego wall_s)")
  echo "  wall per certificate  acme-agent/lego  <= 0.05: $r  $(verdict "$r" 0.05)"
  r=$(ratio "$(med acme-agent maxrss_kb)" "$(med lego maxrss_kb)")
  echo "  peak RSS              acme-agent/lego  <= 0.50: $r  $(verdict "$r" 0.50)"
} >"$WORK/summary.txt"
cp "$WORK/summary.txt" "$RESULTS"
cat "$RESULTS"
echo "(written to $RESULTS; per-run figures in $RUNS)" >&2
