#!/usr/bin/env bash
# Fleet mode with real parts (docs/fleet.md): three `run` daemons share one PostgreSQL 15
# and one SoftHSM token behind p11-kit server (the network HSM's stand-in); a real HAProxy
# round-robins Pebble's http-01 port, and its tls-alpn-01 port, over the three nodes'
# responders, so each validation (Pebble checks every challenge three times) lands on the
# nodes in turn, not only on the one that ordered. Counted in Pebble's log: 20 certificates,
# each ordered exactly once. Node a stops in the middle of its first order (a failpoint
# that holds it there, its lease kept alive) while b and c issue the other 19; then it is
# killed with kill -9, and b or c resumes that same order once the lease has expired and
# finishes it (no second order, no key made); node a, restarted, catches up. Every node
# installs every certificate under its own state dir and runs its deploy hook once for it;
# after PostgreSQL restarts under them, a renewal made by a fourth agent reaches all three
# nodes (LISTEN/NOTIFY), each deploying it once; a node cut off from the database acts on
# nothing and catches up when the link returns.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
command -v haproxy >/dev/null || { fail "haproxy missing (scripts/install-deps.sh installs it)"; finish; }
setup_hsm
setup_pebble
run_setup "ACME_AGENT_PG_URL ACME_AGENT_PG_PORT" "$SCRIPTS/postgres-setup.sh" "$WORK/pg"
PG=$ACME_AGENT_PG_URL
sql() { psql -X -qAt -h "$WORK/pg/sock" -p "$ACME_AGENT_PG_PORT" -U postgres -d acme -c "$1"; }
ACCT=$("$ACME_AGENT" key generate --key "$(hsm_key acct)" --type ec-p256)
CERT_KEY=$("$ACME_AGENT" key generate --key "$(hsm_key site)" --type ec-p256)
# The nodes share the token through p11-kit server, as they would a network HSM.
start_p11_server || finish
N=16 # http-01 certificates f1..fN
T=4  # tls-alpn-01 certificates t1..tT
TTL=5 # every node's lease (ACME_AGENT_LEASE_TTL, its minimum): a dead holder's is free sooner
NODES=(a b c)

# Each node: its own responder port behind HAProxy, its own state dir (local copies), a
# deploy hook that records NODE NAME SERIAL, the same certificates and database.
declare -A NODE_PORT NODE_TLS
for n in "${NODES[@]}"; do
  reserve_port port $$ || { fail "no port for node $n"; finish; }
  NODE_PORT[$n]=$port
  reserve_port port $$ || { fail "no port for node $n"; finish; }
  NODE_TLS[$n]=$port
  cat >"$WORK/hook-$n" <<HOOK
#!/bin/sh
set -eu
serial=\$(openssl x509 -in "\$ACME_AGENT_CERT" -noout -serial | cut -d= -f2)
echo "$n \$ACME_AGENT_NAME \$serial" >>"$WORK/deployed"
HOOK
  chmod 755 "$WORK/hook-$n"
  {
    printf 'account_key = "%s"\nagree_tos = true\nstate_dir = "%s"\nstorage = "%s"\n' \
      "$(net "$ACCT")" "$WORK/node-$n" "$PG"
    for i in $(seq "$N"); do
      printf '[[certificate]]\ndomains = ["f%s.example.com"]\nkey = "%s"\nhttp_port = "127.0.0.1:%s"\ndeploy_hook = "%s"\n' \
        "$i" "$(net "$CERT_KEY")" "${NODE_PORT[$n]}" "$WORK/hook-$n"
    done
    for i in $(seq "$T"); do
      printf '[[certificate]]\ndomains = ["t%s.example.com"]\nkey = "%s"\nchallenge = "tls-alpn-01"\ntls_alpn_port = "127.0.0.1:%s"\ndeploy_hook = "%s"\n' \
        "$i" "$(net "$CERT_KEY")" "${NODE_TLS[$n]}" "$WORK/hook-$n"
    done
  } >"$WORK/node-$n.toml"
done

# Health checks take a killed node out of the rotation (DOWN after two failed checks,
# 200 ms). HAProxy 2.6 starts a checked server UP, but its first failed check takes it DOWN
# at once (seen on Debian 12's 2.6.12): the nodes are not listening yet then, so the test
# waits for that DOWN and starts a node only then; each is UP again one check after it
# listens, and no validation is sent to a node that is not listening.
cat >"$WORK/haproxy.cfg" <<CFG
global
  maxconn 256
defaults
  mode tcp
  timeout connect 2s
  timeout client 10s
  timeout server 10s
  default-server inter 100ms fall 2 rise 1
frontend http01
  bind 127.0.0.1:$PEBBLE_HTTP_PORT
  default_backend nodes
backend nodes
  balance roundrobin
  server a 127.0.0.1:${NODE_PORT[a]} check
  server b 127.0.0.1:${NODE_PORT[b]} check
  server c 127.0.0.1:${NODE_PORT[c]} check
frontend tlsalpn01
  bind 127.0.0.1:$PEBBLE_TLS_PORT
  default_backend tls_nodes
backend tls_nodes
  balance roundrobin
  server a 127.0.0.1:${NODE_TLS[a]} check
  server b 127.0.0.1:${NODE_TLS[b]} check
  server c 127.0.0.1:${NODE_TLS[c]} check
CFG
haproxy -c -f "$WORK/haproxy.cfg" >"$WORK/haproxy.check" 2>&1 ||
  { fail "haproxy -c: $(cat "$WORK/haproxy.check")"; finish; }
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.out" 2>&1 &
HAPROXY_PID=$!
wait_port "$PEBBLE_HTTP_PORT" || { fail "haproxy did not listen: $(cat "$WORK/haproxy.out")"; finish; }

declare -A DAEMON
# start_node NODE [VAR=VALUE...]: NODE's daemon, with these in its environment too.
start_node() {
  local n=$1
  shift
  env ACME_AGENT_NODE="node-$n" ACME_AGENT_LEASE_TTL=$TTL "$@" "$ACME_AGENT" --server "$PEBBLE_URL" \
    --ca-file "$PEBBLE_CA_FILE" run --config "$WORK/node-$n.toml" \
    >"$WORK/node-$n.out" 2>"$WORK/node-$n.err" </dev/null &
  DAEMON[$n]=$!
}
stop_nodes() {
  local n rc
  for n in "${NODES[@]}"; do kill -TERM "${DAEMON[$n]}" 2>/dev/null || true; done
  for n in "${NODES[@]}"; do
    rc=0
    wait "${DAEMON[$n]}" || rc=$?
    expect "node $n exit $rc after SIGTERM: $(tail -c 400 "$WORK/node-$n.err")" [ "$rc" -eq 0 ]
  done
}
# A node held at a failpoint ignores SIGTERM (the daemon blocks it): it is killed.
trap '[ -z "${HELD_PID:-}" ] || kill -KILL "$HELD_PID" 2>/dev/null
  stop_nodes >/dev/null 2>&1; kill "$HAPROXY_PID" ${RELAY_PID:-} 2>/dev/null; cleanup' EXIT
# deployed NODE NAME: how many times NODE's hook ran for NAME.
deployed() { grep -c "^$1 $2 " "$WORK/deployed" 2>/dev/null || true; }
# marked STATE NODE...: HAProxy's last word on each NODE, in both backends, is STATE.
marked() {
  local state=$1 n b
  shift
  for n in "$@"; do
    for b in nodes tls_nodes; do
      [ "$(grep -oE "Server $b/$n is (UP|DOWN)" "$WORK/haproxy.out" | tail -1)" = "Server $b/$n is $state" ] || return 1
    done
  done
}
NAMES=()
for i in $(seq "$N"); do NAMES+=("f$i.example.com"); done
for i in $(seq "$T"); do NAMES+=("t$i.example.com"); done
# all_deployed [NAME]: every node in NODES deployed every certificate (but NAME).
all_deployed() {
  local n name
  for n in "${NODES[@]}"; do
    for name in "${NAMES[@]}"; do
      [ "$name" = "${1:-}" ] || [ "$(deployed "$n" "$name")" -ge 1 ] || return 1
    done
  done
}
pebble_orders() { grep -c 'Added order' "$PEBBLE_DIR/pebble.log" || true; }
KEYS=$("$ACME_AGENT" key list --key "$TOKEN" | wc -l)

# Node a first, alone: it takes the lease of the first certificate, records its order and
# is held there (its lease keeper and responders still running).
wait_for 10 'HAProxy did not mark the nodes DOWN before they start: $(cat "$WORK/haproxy.out")' \
  marked DOWN "${NODES[@]}" || finish
start_node a ACME_AGENT_FAILPOINT=order-created:hang
HELD_PID=${DAEMON[a]}
held() { grep -q "failpoint order-created reached, holding until killed" "$WORK/node-a.err"; }
wait_for 30 'node a was not held at its first order: $(tail -c 600 "$WORK/node-a.err")' held || finish
HELD=${NAMES[0]}
ORDER=$(grep -o "\[$HELD\] order: https://[^ ]*" "$WORK/node-a.err" | cut -d' ' -f3)
expect "lease of $HELD: $(sql "select holder from leases where name='$HELD' and expires_at > now()")" \
  [ "$(sql "select holder from leases where name='$HELD' and expires_at > now()")" = "node-a:$HELD_PID" ] &&
  expect "order of $HELD in PostgreSQL: $(sql "select body from orders where name='$HELD'")" \
    grep -qF "\"$ORDER\"" <<<"$(sql "select body from orders where name='$HELD'")" &&
  pass "node a holds the lease of $HELD and recorded its order ($ORDER), then stopped there"
# b and c, each answering validations once HAProxy has it UP, issue the other 19; to them
# the held one is busy.
wait_for 10 'HAProxy did not mark node a UP: $(cat "$WORK/haproxy.out")' marked UP a || finish
NODES=(b c)
for n in "${NODES[@]}"; do start_node "$n"; done
if wait_for 180 'b and c did not deploy every other certificate: $(sort "$WORK/deployed" 2>/dev/null | tr "\n" ";")' all_deployed "$HELD"; then
  expect "Pebble: $(pebble_orders) orders while node a is held" [ "$(pebble_orders)" -eq "${#NAMES[@]}" ] &&
    expect "$HELD deployed while node a holds it" [ "$(grep -c " $HELD " "$WORK/deployed")" -eq 0 ] &&
    expect "neither b nor c found $HELD busy" \
      grep -qF "another agent is working on $HELD (held by node-a:$HELD_PID" "$WORK/node-b.err" "$WORK/node-c.err" &&
    pass "b and c issued the other $((${#NAMES[@]} - 1)) certificates, leaving $HELD to node a"
fi

# kill -9 of the holder: its responders go (HAProxy takes it out), its lease stays until
# it expires, at most one TTL later (it was last extended at most TTL/3 before). b and c
# try a busy certificate again one TTL after they found it busy, so one of them takes it
# over within 2 x TTL and a pass, then resumes the same order: 2 x TTL + 8 s.
kill -KILL "$HELD_PID"
KILLED=$(date +%s%N)
wait "$HELD_PID" 2>/dev/null || true
HELD_PID=
wait_for 10 'HAProxy did not mark node a DOWN after kill -9: $(tail -5 "$WORK/haproxy.out")' marked DOWN a
taken_over() { [ "$(deployed b "$HELD")" -ge 1 ] && [ "$(deployed c "$HELD")" -ge 1 ]; }
if wait_for $((2 * TTL + 8)) '$HELD not finished by b or c within $((2 * TTL + 8)) s of kill -9: $(grep -h "$HELD" "$WORK/node-b.err" "$WORK/node-c.err" | tail -4)' taken_over; then
  took=$((($(date +%s%N) - KILLED) / 1000000))
  expect "neither b nor c resumed $ORDER" grep -qF "[$HELD] order: resuming $ORDER (pending)" "$WORK/node-b.err" "$WORK/node-c.err" &&
    expect "Pebble: $(pebble_orders) orders after the takeover" [ "$(pebble_orders)" -eq "${#NAMES[@]}" ] &&
    expect "keys on the token: $KEYS before, $("$ACME_AGENT" key list --key "$TOKEN" | wc -l) now" \
      [ "$("$ACME_AGENT" key list --key "$TOKEN" | wc -l)" -eq "$KEYS" ] &&
    pass "kill -9 of node a mid-order: $(grep -lF "order: resuming $ORDER" "$WORK/node-b.err" "$WORK/node-c.err" | sed 's/.*node-\(.\).err/node \1/') finished the same order ${took} ms later (TTL ${TTL} s), no order or key made"
fi
# Node a back, without the failpoint: it catches up on all 20.
mv "$WORK/node-a.err" "$WORK/node-a-held.err"
start_node a
NODES=(a b c)
wait_for 10 'HAProxy did not mark node a UP after its restart: $(tail -5 "$WORK/haproxy.out")' marked UP a

if wait_for 60 'not every node deployed every certificate: $(sort "$WORK/deployed" 2>/dev/null | tr "\n" ";")' all_deployed; then
  orders=$(pebble_orders)
  issued=$(grep -c 'Issued certificate serial' "$PEBBLE_DIR/pebble.log" || true)
  expect "Pebble: $orders orders, $issued certificates for ${#NAMES[@]} names" \
    [ "$orders" -eq "${#NAMES[@]}" ] && [ "$issued" -eq "${#NAMES[@]}" ] &&
    pass "${#NAMES[@]} certificates ($N http-01, $T tls-alpn-01), each ordered once by one of three nodes behind HAProxy"
  same=0
  for name in "${NAMES[@]}"; do
    a=$(serial_of "$WORK/node-a/live/$name/cert.pem")
    [ "$a" = "$(serial_of "$WORK/node-b/live/$name/cert.pem")" ] &&
      [ "$a" = "$(serial_of "$WORK/node-c/live/$name/cert.pem")" ] &&
      verify_cert "$WORK/node-c/live/$name" "$CERT_KEY" && same=$((same + 1))
  done
  expect "$same of ${#NAMES[@]} certificates the same, verifying, on all three nodes" [ "$same" -eq "${#NAMES[@]}" ] &&
    pass "every node holds every certificate in its own live/ (and it verifies)"
  twice=$(sort "$WORK/deployed" | cut -d' ' -f1,2 | uniq -d)
  expect "hooks run twice: $twice" [ -z "$twice" ] && pass "each node ran its hook once per certificate"
  # Pebble logs each http-01 fetch; for tls-alpn-01 only the task and its 3 validations.
  validated=$(grep -c 'Attempting to validate w/ HTTP' "$PEBBLE_DIR/pebble.log" || true)
  tasks_tls=$(grep -c 'Pulled a task.*Value:"t[0-9]*\.example\.com"' "$PEBBLE_DIR/pebble.log" || true)
  rounds=$(grep -c 'Starting 3 validations' "$PEBBLE_DIR/pebble.log" || true)
  expect "Pebble fetched http-01 $validated times, not 3 per order" [ "$validated" -eq $((3 * N)) ] &&
    expect "Pebble: $tasks_tls tls-alpn-01 validations, $rounds rounds of 3" \
      [ "$tasks_tls" -eq "$T" ] && [ "$rounds" -eq $((N + T)) ] &&
    pass "each order validated three times, round-robin over the three nodes' responders (both kinds)"
fi

# PostgreSQL restarted under the running nodes: every connection they hold breaks. Each
# node's certificate watch reconnects (and looks again), and the responders' lookups
# reconnect on their next request: the renewal below needs both.
as_db=()
[ "$(id -u)" -ne 0 ] || as_db=(setpriv --reuid=postgres --regid=postgres --init-groups --)
"${as_db[@]}" /usr/lib/postgresql/15/bin/pg_ctl -D "$WORK/pg/data" -m fast -w -t 30 restart \
  >"$WORK/pg-restart.log" 2>&1 || { fail "PostgreSQL did not restart: $(tail -5 "$WORK/pg-restart.log")"; finish; }
watches_back() {
  local n
  for n in "${NODES[@]}"; do grep -q "certificate watch reconnected" "$WORK/node-$n.err" || return 1; done
}
wait_for 30 "a node's certificate watch did not reconnect after the restart" watches_back &&
  pass "PostgreSQL restarted: every node's certificate watch reconnected"

# A renewal by a fourth agent (a one-shot renew on the database, its responder not behind
# HAProxy): the nodes answer its challenges, and each installs and deploys it once.
reserve_port port $$ || { fail "no port for the fourth agent"; finish; }
OLD=$(serial_of "$WORK/node-a/live/f1.example.com/cert.pem")
if run_agent 0 "$ACME_AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --storage "$PG" \
  --state-dir "$WORK/fourth" renew --name f1.example.com --force --http-port "127.0.0.1:$port"; then
  NEW=$(sql "select cert_pem from certificates where name='f1.example.com'" | openssl x509 -noout -serial | cut -d= -f2)
  renewed_everywhere() {
    local n
    for n in "${NODES[@]}"; do grep -q "^$n f1.example.com $NEW\$" "$WORK/deployed" || return 1; done
  }
  wait_for 30 'the renewal ($NEW) did not reach every node: $(grep f1.example.com "$WORK/deployed" | tr "\n" ";")' renewed_everywhere &&
    expect "serial unchanged" [ "$(echo "$NEW" | tr 'A-F' 'a-f')" != "$OLD" ] &&
    for n in "${NODES[@]}"; do
      expect "node $n: hook for the renewal ran $(grep -c "^$n f1.example.com $NEW\$" "$WORK/deployed") times" \
        [ "$(grep -c "^$n f1.example.com $NEW\$" "$WORK/deployed")" -eq 1 ] || break
    done && pass "a renewal by another agent reaches all three nodes, each deploys it once"
fi
# A fourth node, d, reaches PostgreSQL only through a TCP relay (its responders are not
# behind HAProxy). Cut off (the relay stopped), it acts on nothing: a renewal made meanwhile
# reaches a, b and c but not d, which orders nothing. When the link returns it catches up
# at once: the renewed certificate installed and deployed once.
RELAY=$ACME_AGENT_SOURCE_DIR/tests/tools/tcp_relay.py
reserve_port RELAY_PORT $$ || { fail "no port for the relay"; finish; }
start_relay() {
  python3 "$RELAY" --listen "127.0.0.1:$RELAY_PORT" --upstream "127.0.0.1:$ACME_AGENT_PG_PORT" \
    --max-seconds 300 >"$WORK/relay.out" 2>&1 &
  RELAY_PID=$!
  wait_port "$RELAY_PORT" "$RELAY_PID"
}
stop_relay() { kill "$RELAY_PID" 2>/dev/null; wait "$RELAY_PID" 2>/dev/null || true; }
start_relay
reserve_port D_HTTP $$ && reserve_port D_TLS $$ || { fail "no ports for node d"; finish; }
# libpq's passfile names the port: d's names the relay's.
sed "s/:$ACME_AGENT_PG_PORT:/:$RELAY_PORT:/" "$WORK/pg/pgpass" >"$WORK/pgpass-d" && chmod 600 "$WORK/pgpass-d"
sed -e "s|localhost:$ACME_AGENT_PG_PORT/|localhost:$RELAY_PORT/|" -e "s|passfile=$WORK/pg/pgpass|passfile=$WORK/pgpass-d|" \
  -e "s|127.0.0.1:${NODE_PORT[a]}\"|127.0.0.1:$D_HTTP\"|" -e "s|127.0.0.1:${NODE_TLS[a]}\"|127.0.0.1:$D_TLS\"|" \
  -e "s|$WORK/node-a\"|$WORK/node-d\"|" -e "s|$WORK/hook-a\"|$WORK/hook-d\"|" "$WORK/node-a.toml" >"$WORK/node-d.toml"
sed 's/^echo "a /echo "d /' "$WORK/hook-a" >"$WORK/hook-d" && chmod 755 "$WORK/hook-d"
start_node d
NODES+=(d)
if wait_for 60 'node d did not deploy every certificate: $(grep "^d " "$WORK/deployed" | tr "\n" ";")' all_deployed; then
  ORDERS=$(grep -c 'Added order' "$PEBBLE_DIR/pebble.log" || true)
  stop_relay
  if run_agent 0 "$ACME_AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --storage "$PG" \
    --state-dir "$WORK/fourth" renew --name f2.example.com --force --http-port "127.0.0.1:$port"; then
    F2=$(sql "select cert_pem from certificates where name='f2.example.com'" | openssl x509 -noout -serial | cut -d= -f2)
    on_abc() {
      local n
      for n in a b c; do grep -q "^$n f2.example.com $F2\$" "$WORK/deployed" || return 1; done
    }
    wait_for 30 "the renewal of f2 did not reach a, b and c" on_abc &&
      expect "node d deployed f2 while cut off" [ "$(grep -c "^d f2.example.com $F2\$" "$WORK/deployed")" -eq 0 ] &&
      expect "orders: $ORDERS before, $(grep -c 'Added order' "$PEBBLE_DIR/pebble.log") after" \
        [ "$(grep -c 'Added order' "$PEBBLE_DIR/pebble.log")" -eq $((ORDERS + 1)) ] &&
      pass "node d cut off from PostgreSQL: it acts on nothing while a, b and c deploy the renewal"
    start_relay
    on_d() { grep -q "^d f2.example.com $F2\$" "$WORK/deployed"; }
    wait_for 30 'node d did not catch up after the link returned: $(tail -c 400 "$WORK/node-d.err")' on_d &&
      expect "node d deployed f2 $(grep -c "^d f2.example.com $F2\$" "$WORK/deployed") times" \
        [ "$(grep -c "^d f2.example.com $F2\$" "$WORK/deployed")" -eq 1 ] &&
      expect "node d's copy is not the renewed one" \
        [ "$(serial_of "$WORK/node-d/live/f2.example.com/cert.pem")" = "$(echo "$F2" | tr 'A-F' 'a-f')" ] &&
      pass "the link back: node d installs and deploys the renewal once, at once"
  fi
fi
stop_nodes
expect "leases left: $(sql "select name, holder from leases where holder <> ''")" \
  [ -z "$(sql "select name from leases where expires_at > now()")" ]
finish
