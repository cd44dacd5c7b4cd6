#!/usr/bin/env bash
# scripts/ports.sh: a port handed to a test server stays reserved while its owner lives,
# even when nothing is bound to it (Pebble's httpPort between two issuances), concurrent
# callers never get the same port, and a dead owner's port is free again.
source "$(dirname "$0")/lib.sh"
export ACME_AGENT_PORTS_DIR=$WORK/ports # this test's own reservations only
PORTS_DIR=$ACME_AGENT_PORTS_DIR

# RANGE: 24 consecutive ports with nothing bound on them, where no other test binds one
# meanwhile: above the ephemeral range when there is room (the test servers take theirs
# below it; bind(0) in it), else within the default range.
read -r _ eph_hi </proc/sys/net/ipv4/ip_local_port_range
if [ "$eph_hi" -lt 65000 ]; then lo=$((eph_hi + 1)) hi=65535; else IFS=- read -r lo hi <<<"$(port_range)"; fi
start=$lo
for ((p = lo; p <= hi && p - start < 24; p++)); do
  [ -z "$(ss -Htuln "sport = :$p")" ] || start=$((p + 1))
done
[ $((p - start)) -eq 24 ] || { fail "no 24 unbound ports in $lo-$hi"; finish; }
RANGE=$start-$((start + 23))

sleep infinity & # the owner of what follows
OWNER=$!

# 6 callers at once, 4 ports each, from a range of 24: all different, and then none is left.
for i in 1 2 3 4 5 6; do
  (for _ in 1 2 3 4; do
    ACME_AGENT_PORT_RANGE=$RANGE reserve_port port "$OWNER" && echo "$port"
  done) >"$WORK/got.$i" &
done
wait_rc=0
for job in $(jobs -p); do [ "$job" = "$OWNER" ] || wait "$job" || wait_rc=1; done
[ $wait_rc -eq 0 ] || fail "a reserve_port call failed"
sort -n "$WORK"/got.* >"$WORK/got"
if [ "$(wc -l <"$WORK/got")" -eq 24 ] && [ "$(sort -u "$WORK/got" | wc -l)" -eq 24 ] &&
  [ "$(head -n 1 "$WORK/got")" -eq "$start" ] && [ "$(tail -n 1 "$WORK/got")" -eq $((start + 23)) ]; then
  pass "24 concurrent reservations from 24 ports: all distinct"
else
  fail "24 concurrent reservations gave: $(tr '\n' ' ' <"$WORK/got")"
fi
if ACME_AGENT_PORT_RANGE=$RANGE reserve_port port "$OWNER" 2>"$WORK/err"; then
  fail "a 25th reservation from 24 ports gave $port"
else
  contains "$WORK/err" "no free port in $RANGE" && pass "the 25th: 'no free port in $RANGE'"
fi

# The owner gone: its ports are free again.
kill "$OWNER"
wait "$OWNER" 2>/dev/null || true
if ACME_AGENT_PORT_RANGE=$RANGE reserve_port port $$; then
  pass "the owner gone: its ports are free again ($port)"
else
  fail "ports stay reserved after their owner exited"
fi

# Pebble's http-01 and tls-alpn-01 ports: reserved by the Pebble process, unbound.
setup_pebble
PID=$(cat "$PEBBLE_DIR/pebble.pid")
for p in "$PEBBLE_HTTP_PORT" "$PEBBLE_TLS_PORT"; do
  if [ "$(cat "$PORTS_DIR/$p")" = "$PID" ] && [ -z "$(ss -Htln "sport = :$p")" ] && ! port_free "$p"; then
    pass "port $p: unbound, reserved by Pebble (pid $PID)"
  else
    fail "port $p: owner '$(cat "$PORTS_DIR/$p" 2>/dev/null)', Pebble is $PID; bound: $(ss -Htln "sport = :$p")"
  fi
done
# A second Pebble inherits the exported ports: the first keeps them; its own are its own.
FIRST=$PEBBLE_DIR
setup_pebble pebble2
[ "$(cat "$PORTS_DIR/$PEBBLE_HTTP_PORT")" = "$PID" ] && pass "a second Pebble leaves the first's port $PEBBLE_HTTP_PORT alone" ||
  fail "port $PEBBLE_HTTP_PORT went from $PID to $(cat "$PORTS_DIR/$PEBBLE_HTTP_PORT")"
P2=${PEBBLE_URL#https://127.0.0.1:} P2=${P2%/dir} PID2=$(cat "$PEBBLE_DIR/pebble.pid")
[ "$(cat "$PORTS_DIR/$P2")" = "$PID2" ] && pass "the second Pebble holds its own port $P2" ||
  fail "port $P2: owner '$(cat "$PORTS_DIR/$P2")', the second Pebble is $PID2"
"$SCRIPTS/pebble-down.sh" "$PEBBLE_DIR"
PEBBLE_DIR=$FIRST
"$SCRIPTS/pebble-down.sh" "$PEBBLE_DIR"
port_free "$PEBBLE_HTTP_PORT" && pass "Pebble stopped: port $PEBBLE_HTTP_PORT free again" ||
  fail "port $PEBBLE_HTTP_PORT still reserved after pebble-down"

# swtpm's pair: both ports held by the swtpm process.
setup_tpm
T=${ACME_AGENT_TCTI##*port=} TPID=$(cat "$SWTPM_DIR/swtpm.pid")
[ "$(cat "$PORTS_DIR/$T")" = "$TPID" ] && [ "$(cat "$PORTS_DIR/$((T + 1))")" = "$TPID" ] &&
  pass "swtpm (pid $TPID) holds ports $T and $((T + 1))" ||
  fail "swtpm ports $T/$((T + 1)): owners '$(cat "$PORTS_DIR/$T")' '$(cat "$PORTS_DIR/$((T + 1))")', swtpm is $TPID"
finish
