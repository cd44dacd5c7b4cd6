# shellcheck shell=bash
# Sourced, not run: random loopback ports for the test servers, shared by pebble-up.sh,
# swtpm-setup.sh and the integration tests.
#
# Ports come from outside the kernel's ephemeral range, so that no outgoing connection, nor
# its TIME_WAIT, holds a port a server is about to bind (swtpm's TCTI opens a connection
# per TPM command: tens of thousands in a test run).
#
# A port handed out is also reserved, as the file $ACME_AGENT_PORTS_DIR/PORT holding the
# PID of its owner, until that process is gone. Checking that nothing listens is not
# enough: Pebble's httpPort and tlsPort are bound only while an agent answers a challenge,
# so between two issuances they look free, and a test running in parallel could take one
# and make the next issuance fail with "Address already in use".
# ACME_AGENT_PORT_RANGE=LOW-HIGH picks from that range instead.
PORTS_DIR=${ACME_AGENT_PORTS_DIR:-${TMPDIR:-/tmp}/acme-agent-ports}

# port_range: LOW-HIGH, ACME_AGENT_PORT_RANGE if set, else outside the ephemeral range
# where there is room.
port_range() {
  local lo hi
  if [ -n "${ACME_AGENT_PORT_RANGE:-}" ]; then
    [[ $ACME_AGENT_PORT_RANGE =~ ^[1-9][0-9]{0,4}-[1-9][0-9]{0,4}$ ]] ||
      { echo "ACME_AGENT_PORT_RANGE must be LOW-HIGH, not '$ACME_AGENT_PORT_RANGE'" >&2; return 1; }
    echo "$ACME_AGENT_PORT_RANGE"
    return
  fi
  read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
  if [ "$lo" -gt 11000 ]; then
    echo "10000-$((lo - 1))"
  elif [ "$hi" -lt 64000 ]; then
    echo "$((hi + 1))-65535"
  else
    echo "20000-60000" # no room outside: take our chances, the callers retry on a clash
  fi
}

# pid_alive PID: a live process; a zombie counts as gone (in some sandboxes PID 1 never
# reaps an orphaned daemon).
pid_alive() {
  [[ $1 =~ ^[0-9]+$ ]] && [ -d "/proc/$1" ] && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"
}

# port_owner_alive PORT: PORT is reserved by a live process.
port_owner_alive() {
  pid_alive "$(cat "$PORTS_DIR/$1" 2>/dev/null)"
}

# port_free PORT [udp]: neither reserved by a live process nor bound (TCP; UDP as well
# with udp).
port_free() {
  ! port_owner_alive "$1" && [ -z "$(ss -Htln "sport = :$1")" ] &&
    { [ "${2:-}" != udp ] || [ -z "$(ss -Huln "sport = :$1")" ]; }
}

# reserve_port VAR OWNER [udp|pair]: sets VAR to a random free port and reserves it for
# the process OWNER; with pair, VAR and VAR+1 are both free and both reserved. Under a
# lock, so two callers never get the same port. Fails only when no port in the range is
# free.
reserve_port() {
  local var=$1 owner=$2 kind=${3:-} range p fd rc=1
  range=$(port_range) || return 1
  mkdir -p "$PORTS_DIR" || return 1
  exec {fd}>>"$PORTS_DIR/.lock" || return 1
  flock "$fd"
  for p in $(shuf -i "$range"); do
    port_free "$p" "$kind" || continue
    if [ "$kind" = pair ]; then
      if [ "$p" -ge 65535 ] || ! port_free $((p + 1)); then continue; fi
      port_claim $((p + 1)) "$owner"
    fi
    port_claim "$p" "$owner"
    printf -v "$var" %s "$p"
    rc=0
    break
  done
  exec {fd}>&-
  [ $rc -eq 0 ] || echo "no free port in $range" >&2
  return $rc
}

# port_claim PORT OWNER: PORT is reserved for the process OWNER from now on, whoever held
# it (reserve_port takes it under its lock; a caller may claim a port fixed by its user).
port_claim() {
  mkdir -p "$PORTS_DIR" || return 1
  echo "$2" >"$PORTS_DIR/$1.tmp.$$" && mv -f "$PORTS_DIR/$1.tmp.$$" "$PORTS_DIR/$1"
}

# hand_over_ports FROM TO PORT...: those of the PORTs that process FROM holds pass to TO
# (a script's reservations, to the server it started).
hand_over_ports() {
  local from=$1 to=$2 p
  shift 2
  for p in "$@"; do
    [ "$(cat "$PORTS_DIR/$p" 2>/dev/null)" != "$from" ] || port_claim "$p" "$to" || return 1
  done
}
