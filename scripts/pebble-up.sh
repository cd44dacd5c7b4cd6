#!/usr/bin/env bash
# Usage: pebble-up.sh DIR
#
# Starts Pebble (ACME test CA) and pebble-challtestsrv (mock DNS) on free loopback
# ports, with all state in DIR, waits until both answer, and prints shell lines for
# eval (also written to DIR/env):
#   eval "$(scripts/pebble-up.sh build/pebble)"   ...   scripts/pebble-down.sh build/pebble
#
# Ports are random (outside the ephemeral range, and reserved while Pebble runs:
# scripts/ports.sh) unless set: PEBBLE_PORT, PEBBLE_MGMT_PORT, PEBBLE_HTTP_PORT,
# PEBBLE_TLS_PORT (where the client's http-01 / tls-alpn-01 responders must listen; Pebble
# only dials them), CHALLTESTSRV_DNS_PORT, CHALLTESTSRV_MGMT_PORT.
# Optional: PEBBLE_EAB_KEYS='kid1=b64urlkey,kid2=...' (makes EAB required),
# PEBBLE_CERT_VALIDITY_SECONDS=N, PEBBLE_UP_TIMEOUT=seconds (default 20).
# PEBBLE_DNS_SERVER=HOST:PORT: the resolver Pebble's VA asks (default: the challtestsrv).
# Pebble's own knobs (PEBBLE_VA_NOSLEEP, PEBBLE_WFE_NONCEREJECT, ...) are inherited.
set -euo pipefail

die() { echo "pebble-up: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 DIR"
for tool in pebble:pebble pebble-challtestsrv:pebble openssl:openssl curl:curl \
  ss:iproute2 shuf:coreutils setsid:util-linux flock:util-linux; do
  command -v "${tool%%:*}" >/dev/null || die "${tool%%:*} not found (apt-get install -y ${tool#*:})"
done
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/ports.sh"
[[ $PWD/$1 != *[\"\\]* ]] || die "DIR must not contain quotes or backslashes (it goes into JSON): $1"
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
TIMEOUT=${PEBBLE_UP_TIMEOUT:-20}
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "PEBBLE_UP_TIMEOUT must be a positive number of seconds"

# alive NAME: the process in DIR/NAME.pid is alive (pid_alive: scripts/ports.sh).
alive() { pid_alive "$(cat "$DIR/$1.pid" 2>/dev/null)"; }

for f in pebble challtestsrv; do
  if alive $f; then
    die "$f already running in $DIR (pid $(cat "$DIR/$f.pid")); run pebble-down.sh $DIR first"
  fi
done

# EAB keys and certificate validity go into the config verbatim, so validate them.
EAB_JSON=
if [ -n "${PEBBLE_EAB_KEYS:-}" ]; then
  IFS=, read -ra pairs <<<"$PEBBLE_EAB_KEYS"
  for pair in "${pairs[@]}"; do
    [[ $pair =~ ^([A-Za-z0-9._-]+)=([A-Za-z0-9_-]+)$ ]] \
      || die "PEBBLE_EAB_KEYS entry '$pair' is not kid=base64urlkey"
    EAB_JSON+="${EAB_JSON:+, }\"${BASH_REMATCH[1]}\": \"${BASH_REMATCH[2]}\""
  done
fi
EAB_REQUIRED=false EXTRA_JSON=
if [ -n "$EAB_JSON" ]; then
  EAB_REQUIRED=true
  EXTRA_JSON+=$'\n'"    \"externalAccountMACKeys\": {$EAB_JSON},"
fi
if [ -n "${PEBBLE_CERT_VALIDITY_SECONDS:-}" ]; then
  [[ $PEBBLE_CERT_VALIDITY_SECONDS =~ ^[1-9][0-9]*$ ]] \
    || die "PEBBLE_CERT_VALIDITY_SECONDS must be a positive integer"
  EXTRA_JSON+=$'\n'"    \"certificateValidityPeriod\": $PEBBLE_CERT_VALIDITY_SECONDS,"
fi

# Throwaway certificate for Pebble's HTTPS listeners (ACME and management).
(
  umask 077
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -days 30 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$DIR/pebble.key" -out "$DIR/pebble.crt" 2>"$DIR/openssl.log"
) || die "openssl could not create the certificate: $(cat "$DIR/openssl.log")"
chmod 644 "$DIR/pebble.crt"
rm -f "$DIR/openssl.log"

start() { # NAME CMD... : starts CMD in its own session, log and pid in DIR
  local name=$1
  shift
  : >"$DIR/$name.log" # truncate here, not in the child: the poll loop reads it at once
  setsid "$@" </dev/null >>"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
}

fail_attempt() { # MESSAGE : shows log tails and stops what was started
  echo "pebble-up: $1" >&2
  for f in challtestsrv pebble; do
    echo "--- tail of $DIR/$f.log ---" >&2
    tail -n 20 "$DIR/$f.log" >&2 || true
  done
  "$HERE/pebble-down.sh" "$DIR" >&2
}

FIXED=" ${PEBBLE_PORT:-} ${PEBBLE_MGMT_PORT:-} ${PEBBLE_HTTP_PORT:-} ${PEBBLE_TLS_PORT:-} ${CHALLTESTSRV_DNS_PORT:-} ${CHALLTESTSRV_MGMT_PORT:-} "
LOGS=("$DIR/pebble.log" "$DIR/challtestsrv.log")
for attempt in 1 2 3 4; do # the first try plus up to 3 retries on a port race
  P=${PEBBLE_PORT:-} M=${PEBBLE_MGMT_PORT:-} H=${PEBBLE_HTTP_PORT:-} T=${PEBBLE_TLS_PORT:-}
  D=${CHALLTESTSRV_DNS_PORT:-} C=${CHALLTESTSRV_MGMT_PORT:-}
  for v in P M H T D C; do [[ -z ${!v} || ${!v} =~ ^[1-9][0-9]{0,4}$ ]] || die "port '${!v}' is not a number"; done
  # A fixed port is claimed too (unless a live process holds it, such as the Pebble whose
  # exported PEBBLE_HTTP_PORT this one inherits), so that no random one lands on it.
  for v in P M H T D C; do [ -z "${!v}" ] || port_owner_alive "${!v}" || port_claim "${!v}" $$; done
  for v in P M H T C; do [ -n "${!v}" ] || reserve_port $v $$ || die "no free port for Pebble"; done
  [ -n "$D" ] || reserve_port D $$ udp || die "no free port for pebble-challtestsrv"

  cat >"$DIR/pebble-config.json" <<EOF
{
  "pebble": {
    "listenAddress": "127.0.0.1:$P",
    "managementListenAddress": "127.0.0.1:$M",
    "certificate": "$DIR/pebble.crt",
    "privateKey": "$DIR/pebble.key",
    "httpPort": $H,
    "tlsPort": $T,
    "ocspResponderURL": "",$EXTRA_JSON
    "externalAccountBindingRequired": $EAB_REQUIRED
  }
}
EOF

  start challtestsrv pebble-challtestsrv -defaultIPv6 "" -defaultIPv4 127.0.0.1 \
    -http01 "" -https01 "" -tlsalpn01 "" -dns01 "127.0.0.1:$D" -management "127.0.0.1:$C"
  start pebble pebble -config "$DIR/pebble-config.json" -dnsserver "${PEBBLE_DNS_SERVER:-127.0.0.1:$D}"

  echo "pebble-up: attempt $attempt: pebble on 127.0.0.1:$P (mgmt $M), challtestsrv dns $D mgmt $C" >&2
  deadline=$((SECONDS + TIMEOUT))
  status="not ready after ${TIMEOUT}s"
  while [ $SECONDS -lt $deadline ]; do
    # challtestsrv logs a failed bind but keeps running, so watch the logs too.
    if grep -qs "address already in use" "${LOGS[@]}"; then status=collision; break; fi
    if ! alive pebble || ! alive challtestsrv; then status="a process exited during startup"; break; fi
    if curl -fsS -m 2 -o /dev/null --cacert "$DIR/pebble.crt" "https://127.0.0.1:$P/dir" 2>/dev/null &&
      curl -sS -m 2 -o /dev/null "http://127.0.0.1:$C/" 2>/dev/null &&
      [ -n "$(ss -Huln "sport = :$D")" ]; then
      status=ready
      break
    fi
    sleep 0.1
  done

  if [ "$status" = ready ]; then
    curl -fsS -m 5 --cacert "$DIR/pebble.crt" -o "$DIR/root.pem" "https://127.0.0.1:$M/roots/0" && break
    status="could not fetch https://127.0.0.1:$M/roots/0"
  fi
  if [ "$status" = collision ]; then
    busy=$(grep -hos '127\.0\.0\.1:[0-9]*: bind: address already in use' "${LOGS[@]}" | head -n 1 | cut -d: -f2)
    status="port $busy is already in use"
    if [ $attempt -lt 4 ] && [[ $FIXED != *" $busy "* ]]; then
      echo "pebble-up: $status, retrying with new ports" >&2
      "$HERE/pebble-down.sh" "$DIR" >&2
      continue
    fi
  fi
  fail_attempt "$status"
  exit 1
done

# From here the reservations last as long as the servers (H and T are bound only by the
# agent, while it answers a challenge, and must not go to anyone else in between).
hand_over_ports $$ "$(cat "$DIR/pebble.pid")" "$P" "$M" "$H" "$T"
hand_over_ports $$ "$(cat "$DIR/challtestsrv.pid")" "$D" "$C"

q() { printf '%q' "$1"; }
ENV_LINE="export PEBBLE_DIR=$(q "$DIR") PEBBLE_URL=https://127.0.0.1:$P/dir PEBBLE_CA_FILE=$(q "$DIR/pebble.crt") PEBBLE_MGMT=https://127.0.0.1:$M PEBBLE_ROOT=$(q "$DIR/root.pem") PEBBLE_HTTP_PORT=$H PEBBLE_TLS_PORT=$T CHALLTESTSRV=http://127.0.0.1:$C CHALLTESTSRV_DNS=127.0.0.1:$D"
echo "$ENV_LINE" >"$DIR/env"
echo "pebble-up: ready" >&2
echo "$ENV_LINE"
