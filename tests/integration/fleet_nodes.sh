#!/usr/bin/env bash
# Fleet mode with real parts (docs/fleet.md): three `run` daemons share one PostgreSQL 15
# and one SoftHSM token behind p11-kit server (the network HSM's stand-in); a real HAProxy round-robins Pebble's http-01 port, and its
# tls-alpn-01 port, over the three nodes' responders, so each validation (Pebble checks
# every challenge three times) lands on the nodes in turn, not only on the one that ordered. Counted in Pebble's log: every
# certificate ordered exactly once; every node installs every certificate under its own
# state dir and runs its deploy hook once for it; after PostgreSQL restarts under them, a
# renewal made by a fourth agent reaches all three nodes (LISTEN/NOTIFY), each deploying it
# once; a node cut off from the database acts on nothing and catches up when the link
# returns.
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
N=8 # http-01 certificates f1..fN
T=2 # tls-alpn-01 certificates t1..tT
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

cat >"$WORK/haproxy.cfg" <<CFG
global
  maxconn 256
# No health checks: at the fleet's first start every node would be DOWN for the checks'
# first rounds, while the nodes already order (each node's responders are up before its
# first order).
defaults
  mode tcp
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend http01
  bind 127.0.0.1:$PEBBLE_HTTP_PORT
  default_backend nodes
backend nodes
  balance roundrobin
  server a 127.0.0.1:${NODE_PORT[a]}
  server b 127.0.0.1:${NODE_PORT[b]}
  server c 127.0.0.1:${NODE_PORT[c]}
frontend tlsalpn01
  bind 127.0.0.1:$PEBBLE_TLS_PORT
  default_backend tls_nodes
backend tls_nodes
  balance roundrobin
  server a 127.0.0.1:${NODE_TLS[a]}
  server b 127.0.0.1:${NODE_TLS[b]}
  server c 127.0.0.1:${NODE_TLS[c]}
CFG
haproxy -c -f "$WORK/haproxy.cfg" >"$WORK/haproxy.check" 2>&1 ||
  { fail "haproxy -c: $(cat "$WORK/haproxy.check")"; finish; }
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.out" 2>&1 &
HAPROXY_PID=$!
wait_port "$PEBBLE_HTTP_PORT" || { fail "haproxy did not listen: $(cat "$WORK/haproxy.out")"; finish; }

declare -A DAEMON
start_node() {
  ACME_AGENT_NODE=node-$1 "$ACME_AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" \
    run --config "$WORK/node-$1.toml" >"$WORK/node-$1.out" 2>"$WORK/node-$1.err" </dev/null &
  DAEMON[$1]=$!
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
trap 'stop_nodes >/dev/null 2>&1; kill "$HAPROXY_PID" ${RELAY_PID:-} 2>/dev/null; cleanup' EXIT
# deployed NODE NAME: how many times NODE's hook ran for NAME.
deployed() { grep -c "^$1 $2 " "$WORK/deployed" 2>/dev/null || true; }
# wait_for SECONDS WHAT CMD...: polls CMD until it succeeds (at most SECONDS).
wait_for() {
  local secs=$1 what=$2 _
  shift 2
  for _ in $(seq $((secs * 20))); do
    "$@" && return 0
    read -rt 0.05 <> <(:) || true
  done
  fail "$what"
  return 1
}
NAMES=()
for i in $(seq "$N"); do NAMES+=("f$i.example.com"); done
for i in $(seq "$T"); do NAMES+=("t$i.example.com"); done
all_deployed() {
  local n name
  for n in "${NODES[@]}"; do
    for name in "${NAMES[@]}"; do [ "$(deployed "$n" "$name")" -ge 1 ] || return 1; done
  done
}

for n in "${NODES[@]}"; do start_node "$n"; done
if wait_for 180 "not every node deployed every certificate: $(sort "$WORK/deployed" 2>/dev/null | tr '\n' ';')" all_deployed; then
  orders=$(grep -c 'Added order' "$PEBBLE_DIR/pebble.log" || true)
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
  wait_for 30 "the renewal ($NEW) did not reach every node: $(grep f1.example.com "$WORK/deployed" | tr '\n' ';')" renewed_everywhere &&
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
if wait_for 60 "node d did not deploy every certificate: $(grep '^d ' "$WORK/deployed" | tr '\n' ';')" all_deployed; then
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
    wait_for 30 "node d did not catch up after the link returned: $(tail -c 400 "$WORK/node-d.err")" on_d &&
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
