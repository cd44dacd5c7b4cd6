# Shared helpers for the integration tests (bash). Each test sources this file; CTest
# passes ACME_AGENT (the binary) and ACME_AGENT_SOURCE_DIR / ACME_AGENT_BINARY_DIR.
set -euo pipefail
# Nothing from the caller's environment: every CA, token and TPM a test talks to is one
# it started (a leftover ACME_AGENT_TCTI or TPM2TOOLS_TCTI could name a real TPM).
unset ACME_AGENT_TCTI TPM2TOOLS_TCTI TPM2OPENSSL_TCTI SWTPM_DIR SWTPM_PORT SOFTHSM2_CONF \
  ACME_AGENT_PKCS11_MODULE ACME_AGENT_TOKEN_URI ACME_AGENT_SERVER ACME_AGENT_CA_FILE \
  ACME_AGENT_STATE_DIR ACME_AGENT_FAILPOINT ACME_AGENT_TEST_SUMMARY ACME_AGENT_ALLOWED_SKIPS \
  $(compgen -e | grep -E '^(PEBBLE_|CHALLTESTSRV)' || true)

: "${ACME_AGENT:?set by CTest}" "${ACME_AGENT_SOURCE_DIR:?}" "${ACME_AGENT_BINARY_DIR:?}"
SCRIPTS=$ACME_AGENT_SOURCE_DIR/scripts
source "$SCRIPTS/ports.sh"
TEST_NAME=$(basename "$0" .sh)
WORK=$ACME_AGENT_BINARY_DIR/test-scratch/$TEST_NAME-$$
rm -rf "$WORK"
mkdir -p "$WORK"
STATE=$WORK/state
FAILURES=0

cleanup() {
  local d
  for d in "$WORK"/pebble*; do
    [ -f "$d/pebble.pid" ] && "$SCRIPTS/pebble-down.sh" "$d" >/dev/null 2>&1
  done
  [ -f "$WORK/swtpm/swtpm.pid" ] && "$SCRIPTS/swtpm-down.sh" "$WORK/swtpm" >/dev/null 2>&1
  [ -f "$WORK/pg/data/postmaster.pid" ] && "$SCRIPTS/postgres-down.sh" "$WORK/pg" >/dev/null 2>&1
  [ -z "${PROXY_PID:-}" ] || kill "$PROXY_PID" 2>/dev/null || true
  [ -z "${WEB_PID:-}" ] || kill "$WEB_PID" 2>/dev/null || true
  [ -z "${PROM_PID:-}" ] || kill "$PROM_PID" 2>/dev/null || true
  [ -z "${P11_SERVER_PID:-}" ] || kill -TERM -- "-$P11_SERVER_PID" 2>/dev/null || true
  stop_named
  return 0
}
trap cleanup EXIT
# set -e ends a test at the first unchecked failure; say where, or the log just stops.
trap 'echo "FAIL: $TEST_NAME aborted (exit $?) at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND" >&2' ERR

fail() { echo "FAIL: $*" >&2; FAILURES=$((FAILURES + 1)); }
pass() { echo "ok: $*"; }
finish() {
  if [ "$FAILURES" -ne 0 ]; then echo "$TEST_NAME: $FAILURES failure(s)" >&2; exit 1; fi
  echo "$TEST_NAME: all passed"
}

# A fresh SoftHSM token: sets TOKEN (its URI with module-path and pin-source), PIN_FILE.
setup_hsm() {
  run_setup "SOFTHSM2_CONF ACME_AGENT_TOKEN_URI" "$SCRIPTS/softhsm-setup.sh" "$WORK/hsm" "${1:-acme}"
  TOKEN=$ACME_AGENT_TOKEN_URI
  PIN_FILE=$WORK/hsm/${1:-acme}.pin
}
# key URI for object NAME on the token
hsm_key() { echo "${TOKEN/\?/;object=$1?}"; }

# A fresh swtpm: sets ACME_AGENT_TCTI (and the tools' TCTI variables); the test ends
# unless they name the swtpm it just started (require_swtpm).
setup_tpm() {
  unset ACME_AGENT_TCTI TPM2TOOLS_TCTI TPM2OPENSSL_TCTI SWTPM_DIR
  run_setup "ACME_AGENT_TCTI TPM2TOOLS_TCTI TPM2OPENSSL_TCTI SWTPM_DIR" "$SCRIPTS/swtpm-setup.sh" "$WORK/swtpm"
  require_swtpm
}

# Pebble with the current environment's knobs: sets PEBBLE_* (see scripts/pebble-up.sh),
# AGENT (the agent's command pointed at it) and HTTP.
# setup_pebble [NAME]: NAME (default pebble) is its folder under $WORK; the last one set
# up is the one AGENT and the PEBBLE_* variables point at.
setup_pebble() {
  run_setup "PEBBLE_DIR PEBBLE_URL PEBBLE_CA_FILE PEBBLE_MGMT PEBBLE_HTTP_PORT PEBBLE_TLS_PORT" \
    "$SCRIPTS/pebble-up.sh" "$WORK/${1:-pebble}"
  AGENT=("$ACME_AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --state-dir "$STATE")
  HTTP=127.0.0.1:$PEBBLE_HTTP_PORT # where its VA does http-01: the agent's --http-port
}
# setup_account [TYPE [FLAG...]]: ACCT, an account key of TYPE (ec-p256) made in the token
# and registered with the current Pebble (--agree-tos and the FLAGs).
setup_account() {
  ACCT=$("$ACME_AGENT" key generate --key "$(hsm_key acct)" --type "${1:-ec-p256}")
  run_agent 0 "${AGENT[@]}" account register --key "$ACCT" --agree-tos "${@:2}"
}

# The fault proxy (tests/tools/fault_proxy.py) between the agent and the current Pebble.
# rules 'RULE, RULE...': its rules from now on (written atomically: it re-reads the file on
# every request; a new generation resets the `times` counters).
CONTROL=$WORK/control.json
PLOG=$WORK/proxy.log
GEN=0
rules() {
  GEN=$((GEN + 1))
  printf '{"generation": %d, "rules": [%s]}\n' "$GEN" "${1:-}" >"$CONTROL.new"
  mv "$CONTROL.new" "$CONTROL"
}
# start_proxy MAX_SECONDS: starts it (it stops by itself after MAX_SECONDS) and sets PROXY
# (its origin) and P (the agent through it). PYTHON picks the interpreter.
start_proxy() {
  [ -e "$CONTROL" ] || rules ''
  "${PYTHON:-python3}" "$ACME_AGENT_SOURCE_DIR/tests/tools/fault_proxy.py" --listen 127.0.0.1:0 \
    --upstream "${PEBBLE_URL%/dir}" --upstream-ca "$PEBBLE_CA_FILE" \
    --cert "$PEBBLE_DIR/pebble.crt" --key "$PEBBLE_DIR/pebble.key" \
    --control "$CONTROL" --log "$PLOG" --max-seconds "$1" >"$WORK/proxy.out" 2>"$WORK/proxy.err" &
  PROXY_PID=$!
  local _
  for _ in $(seq 200); do # its ready line, 10 s at most
    grep -q '^ready ' "$WORK/proxy.out" 2>/dev/null && break
    kill -0 "$PROXY_PID" 2>/dev/null || break
    read -rt 0.05 <> <(:) || true
  done
  PROXY=$(sed -n 's/^ready //p' "$WORK/proxy.out")
  [ -n "$PROXY" ] || { fail "fault_proxy did not start: $(cat "$WORK/proxy.err")"; finish; }
  P=("$ACME_AGENT" --server "$PROXY/dir" --ca-file "$PEBBLE_CA_FILE" --state-dir "$STATE")
}

# run_agent EXPECTED_EXIT ARGS...: runs the agent, output in $OUT and $ERR (files).
OUT=$WORK/out
ERR=$WORK/err
run_agent() {
  local want=$1; shift
  local rc=0
  "$@" >"$OUT" 2>"$ERR" </dev/null || rc=$?
  if [ "$rc" -ne "$want" ]; then
    fail "exit $rc, expected $want: ${*:1:6}...; stderr: $(head -c 600 "$ERR")"
    return 1
  fi
}
# expect DESCRIPTION COMMAND...: a failed check is a failure (never silently skipped).
expect() { local d=$1; shift; if "$@"; then return 0; fi; fail "$d"; return 1; }
contains() { grep -qF -- "$2" "$1" || { fail "$1 lacks '$2': $(head -c 400 "$1")"; return 1; }; }
# lacks FILE TEXT: FILE is readable and holds no TEXT (a missing file proves nothing).
lacks() {
  local rc=0
  grep -qF -- "$2" "$1" || rc=$?
  [ "$rc" -ne 1 ] || return 0
  if [ "$rc" -eq 0 ]; then fail "$1 contains '$2'"; else fail "cannot read $1 to show it lacks '$2'"; fi
  return 1
}

# cert_status SERIAL: Pebble's word on a serial ("Valid" or "Revoked") and the reason code.
cert_status() {
  curl -fsS --cacert "$PEBBLE_CA_FILE" "$PEBBLE_MGMT/cert-status-by-serial/$1" | jq -r '"\(.Status) \(.Reason // "")"'
}
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }

# wait_port PORT [PID]: polls (50 ms) until something accepts on 127.0.0.1:PORT, 10 s at most.
wait_port() {
  local i
  for i in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null && break
    read -rt 0.05 <> <(:) || true
  done
  fail "nothing listens on port $1"
  return 1
}

# A digest of every file and mode under a dir: equal before and after means untouched.
# Coordination records are not state: the state dir's lock and its lease records
# (leases/NAME.json, taken before an order and released, owner emptied, after it).
# tree_digest DIR [PATH...]: also without the files at PATHs (find -path patterns, ./...).
tree_digest() {
  local dir=$1 p skip=()
  shift
  for p in "$@"; do skip+=(! -path "$p"); done
  (cd "$dir" 2>/dev/null && find . -type f ! -name lock ! -path './leases/*' "${skip[@]}" \
    -printf '%p %m\n' -exec sha256sum {} + | sort) | sha256sum
}

# verify_cert DIR KEY_URI: the certificate in DIR verifies against Pebble's root and
# carries the public key of KEY_URI.
verify_cert() {
  local dir=$1 key=$2
  curl -fsS --cacert "$PEBBLE_CA_FILE" "$PEBBLE_MGMT/roots/0" >"$WORK/root.pem"
  if openssl verify -CAfile "$WORK/root.pem" -untrusted "$dir/chain.pem" "$dir/cert.pem" >/dev/null 2>"$WORK/verify.err"; then
    :
  else
    fail "certificate in $dir does not verify against Pebble's root: $(cat "$WORK/verify.err")"
    return 1
  fi
  openssl x509 -in "$dir/cert.pem" -noout -pubkey | openssl pkey -pubin -outform DER >"$WORK/cert-pub.der"
  "$ACME_AGENT" --json key show --key "$key" | jq -r .public_key_pem |
    openssl pkey -pubin -outform DER >"$WORK/key-pub.der"
  [ -s "$WORK/key-pub.der" ] && cmp -s "$WORK/cert-pub.der" "$WORK/key-pub.der" ||
    { fail "certificate key differs from $key"; return 1; }
}

# start_named DIR: BIND 9 (authoritative only) from DIR/named.conf.in, whose @PORT@ becomes
# a free port, polled with dig until it answers; sets NAMED_PORT and NAMED_PID. Its zone
# example.test must exist. A few new ports on a bind race.
NAMED_PID=
start_named() {
  local dir=$1 attempt port deadline
  for attempt in 1 2 3 4; do
    reserve_port port $$ udp || break # for as long as this test runs
    sed -e "s|@PORT@|$port|g" "$dir/named.conf.in" >"$dir/named.conf"
    named -g -4 -n 1 -c "$dir/named.conf" </dev/null >"$dir/named.log" 2>&1 &
    NAMED_PID=$!
    deadline=$((SECONDS + 20))
    while [ $SECONDS -lt $deadline ] && kill -0 "$NAMED_PID" 2>/dev/null; do
      if dig @127.0.0.1 -p "$port" example.test SOA +short +time=1 +tries=1 2>/dev/null | grep -q hostmaster; then
        NAMED_PORT=$port
        return 0
      fi
      read -rt 0.1 <> <(:) || true
    done
    echo "named did not come up on port $port (attempt $attempt): $(tail -n 5 "$dir/named.log")" >&2
    stop_named
  done
  fail "named would not start: $(tail -n 20 "$dir/named.log")"
  return 1
}
stop_named() {
  [ -n "${NAMED_PID:-}" ] || return 0
  kill -TERM "$NAMED_PID" 2>/dev/null || true
  local deadline=$((SECONDS + 10))
  while kill -0 "$NAMED_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do read -rt 0.05 <> <(:) || true; done
  kill -KILL "$NAMED_PID" 2>/dev/null || true
  wait "$NAMED_PID" 2>/dev/null || true
  NAMED_PID=
}

# challtestsrv_hook FILE [LOG]: writes FILE, a dns-01 hook that runs dns/challtestsrv-hook.sh
# with CHALLTESTSRV (and DNS_HOOK_LOG=LOG) written into it: a hook gets PATH, HOME, LANG and
# its ACME_AGENT_* variables only, not the test's environment. It also records its open
# descriptors in FILE.fds (ls's own directory fd is 3) and its environment in FILE.env.
challtestsrv_hook() {
  cat >"$1" <<HOOK
#!/bin/sh
ls /proc/self/fd >"$1.fds"
env >"$1.env"
CHALLTESTSRV='$CHALLTESTSRV' DNS_HOOK_LOG='${2:-}' exec '$ACME_AGENT_SOURCE_DIR/tests/integration/dns/challtestsrv-hook.sh' "\$@"
HOOK
  chmod 755 "$1"
}

# run_setup "VAR..." SCRIPT ARG...: runs a set-up script that prints `export` lines and
# applies them. A failing script, or one that leaves a VAR empty, ends the test with its
# status (`eval "$(script)"` would lose it and run on without the server).
run_setup() {
  local vars=$1 out rc=0 v
  shift
  out=$("$@") || rc=$?
  if [ "$rc" -ne 0 ]; then
    fail "set-up failed: $* exited $rc"
    finish
  fi
  eval "$out"
  for v in $vars; do
    [ -n "${!v:-}" ] || { fail "set-up: $1 did not set $v"; finish; }
  done
}

# require_swtpm: the TPM behind the TCTI variables is the swtpm this test started in
# $WORK/swtpm (its pid listens on the TCTI's port) and says it is a simulator (the
# GoogleTest TPM suite's guard); otherwise the test ends. The tests lock out, evict and
# set --max-tries: never on a real TPM.
SWTPM_MANUFACTURER=0x49424D00 # "IBM": libtpms
require_swtpm() {
  local port pid caps
  [[ ${ACME_AGENT_TCTI:-} =~ ^swtpm:host=127\.0\.0\.1,port=([0-9]+)$ ]] ||
    { fail "refusing to run: ACME_AGENT_TCTI='${ACME_AGENT_TCTI:-}' is not a loopback swtpm"; finish; }
  port=${BASH_REMATCH[1]}
  [ "${TPM2TOOLS_TCTI:-}" = "$ACME_AGENT_TCTI" ] && [ "${TPM2OPENSSL_TCTI:-}" = "$ACME_AGENT_TCTI" ] ||
    { fail "refusing to run: the tools' TCTI (${TPM2TOOLS_TCTI:-}, ${TPM2OPENSSL_TCTI:-}) is not $ACME_AGENT_TCTI"; finish; }
  [ "${SWTPM_DIR:-}" = "$WORK/swtpm" ] || { fail "refusing to run: SWTPM_DIR='${SWTPM_DIR:-}' is not $WORK/swtpm"; finish; }
  pid=$(cat "$WORK/swtpm/swtpm.pid" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] && [[ $(ss -Htlnp "sport = :$port") == *"pid=$pid,"* ]] ||
    { fail "refusing to run: port $port is not served by this test's swtpm (pid '${pid}')"; finish; }
  caps=$(tpm2_getcap -T "$ACME_AGENT_TCTI" properties-fixed 2>&1) ||
    { fail "refusing to run: tpm2_getcap on $ACME_AGENT_TCTI failed: $caps"; finish; }
  [[ $caps =~ TPM2_PT_MANUFACTURER:[[:space:]]*raw:[[:space:]]*(0x[0-9A-Fa-f]+) ]] &&
    [ $((BASH_REMATCH[1])) -eq $((SWTPM_MANUFACTURER)) ] ||
    { fail "refusing to run: the TPM behind $ACME_AGENT_TCTI is not swtpm (${BASH_REMATCH[1]:-no manufacturer})"; finish; }
}

# no_txt SERVER PORT NAME WHAT: SERVER answers for NAME (NOERROR or NXDOMAIN) and holds no
# TXT record there. A server that does not answer, or answers SERVFAIL/REFUSED, is a
# failure too: silence is no proof of absence.
no_txt() {
  local out rc=0
  out=$(dig @"$1" -p "$2" "$3" TXT +time=1 +tries=3 +noall +comments +answer 2>&1) || rc=$?
  if [ "$rc" -ne 0 ] || ! [[ $out =~ status:\ (NOERROR|NXDOMAIN) ]]; then
    fail "$4: $1#$2 gave no answer for $3 TXT (dig exit $rc): $(head -c 300 <<<"$out")"
    return 1
  fi
  if grep -v '^;' <<<"$out" | grep -qE '[[:space:]]TXT[[:space:]]'; then
    fail "$4: $1#$2 still holds a TXT at $3: $(grep -v '^;' <<<"$out")"
    return 1
  fi
}

# start_prometheus TARGET...: a real Prometheus (Debian prometheus) on a free loopback port,
# its data in $WORK/prometheus, scraping each TARGET (ADDR:PORT, /metrics) every second;
# sets PROM (its URL) and PROM_PID (cleanup stops it). Returns once it is ready.
start_prometheus() {
  local port targets="" t
  reserve_port port $$ || { fail "no port for Prometheus"; finish; }
  for t in "$@"; do targets+="${targets:+, }'$t'"; done
  mkdir -p "$WORK/prometheus"
  printf '%s\n' 'global: {scrape_interval: 1s, evaluation_interval: 1s}' 'scrape_configs:' \
    '  - job_name: acme-agent' "    static_configs: [{targets: [$targets]}]" >"$WORK/prometheus/prometheus.yml"
  prometheus --config.file="$WORK/prometheus/prometheus.yml" --storage.tsdb.path="$WORK/prometheus/data" \
    --web.listen-address="127.0.0.1:$port" >"$WORK/prometheus/log" 2>&1 &
  PROM_PID=$!
  PROM=http://127.0.0.1:$port
  for _ in $(seq 600); do # 30 s at most: its TSDB and rule manager start first
    curl -sf "$PROM/-/ready" >/dev/null 2>&1 && return 0
    kill -0 "$PROM_PID" 2>/dev/null || break
    read -rt 0.05 <> <(:) || true
  done
  fail "Prometheus did not start: $(tail -c 600 "$WORK/prometheus/log")"
  finish
}
# prom_value VAR QUERY [SECONDS]: sets VAR to the value of QUERY's first series (an
# instant query of Prometheus' HTTP API), waiting up to SECONDS (default 30) for the series
# to exist (scrapes are every second); a failure, and VAR empty, when it never does.
prom_value() {
  local _pv=""
  for _ in $(seq $((${3:-30} * 10))); do
    _pv=$(curl -sfG "$PROM/api/v1/query" --data-urlencode "query=$2" | jq -r '.data.result[0].value[1] // empty') || true
    [ -n "$_pv" ] && break
    read -rt 0.1 <> <(:) || true
  done
  printf -v "$1" %s "$_pv"
  [ -n "$_pv" ] || { fail "Prometheus has no series for $2"; return 1; }
}

# The token behind `p11-kit server`, a network HSM's stand-in (one process holds the module,
# every agent reaches it through p11-kit's client module). start_p11_server serves
# token=acme of $ACME_AGENT_PKCS11_MODULE on $P11_SOCK in a process group of its own (it
# forks a child per connection) and exports P11_KIT_SERVER_ADDRESS; stop_p11_server ends
# them all; `net URI` is the key URI through the client module.
P11_SOCK=$WORK/p11-kit.sock
P11_CLIENT=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
start_p11_server() {
  setsid p11-kit server -f -n "$P11_SOCK" --provider "$ACME_AGENT_PKCS11_MODULE" "pkcs11:token=acme" \
    >"$WORK/p11-kit-server.out" 2>&1 &
  P11_SERVER_PID=$!
  export P11_KIT_SERVER_ADDRESS=unix:path=$P11_SOCK
  local i
  for i in $(seq 200); do [ -S "$P11_SOCK" ] && return 0; read -rt 0.05 <> <(:) || true; done
  fail "p11-kit server did not start: $(cat "$WORK/p11-kit-server.out")"
  return 1
}
stop_p11_server() {
  kill -TERM -- "-$P11_SERVER_PID" 2>/dev/null || true
  wait "$P11_SERVER_PID" 2>/dev/null || true
  local i
  for i in $(seq 200); do pgrep -g "$P11_SERVER_PID" >/dev/null || break; read -rt 0.05 <> <(:) || true; done
  rm -f "$P11_SOCK"
}
net() { echo "${1/module-path=$ACME_AGENT_PKCS11_MODULE/module-path=$P11_CLIENT}"; }

# wait_for SECONDS WHAT CMD...: polls CMD until it succeeds, at most SECONDS; else fails
# with WHAT (expanded then, so that it can show the state at the end: single-quote it).
wait_for() {
  local secs=$1 what=$2 _
  shift 2
  for _ in $(seq $((secs * 20))); do
    "$@" && return 0
    read -rt 0.05 <> <(:) || true
  done
  fail "$(eval "printf '%s' \"$what\"")"
  return 1
}
