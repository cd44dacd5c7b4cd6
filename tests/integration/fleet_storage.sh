#!/usr/bin/env bash
# Fleet storage (docs/fleet.md) against a real PostgreSQL 15 over verified TLS: a state dir
# moves into the database with `storage migrate`; an agent given --storage renews what the
# database holds and leaves the old state dir alone; while one agent orders a name, a second
# one is turned away before it orders or binds a port; bad storage settings fail with their
# exit codes and never echo a password.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 # no stray badNonce: exact request counts
setup_hsm
setup_pebble
setup_account
run_setup "ACME_AGENT_PG_URL ACME_AGENT_PG_PORT" "$SCRIPTS/postgres-setup.sh" "$WORK/pg"
PG=$ACME_AGENT_PG_URL
# The superuser over the Unix socket (trust): what the database holds, one row per line.
sql() { psql -X -qAt -h "$WORK/pg/sock" -p "$ACME_AGENT_PG_PORT" -U postgres -d acme -c "$1"; }
pem_serial() { openssl x509 -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }

WWW=www.example.com
CERT=$("$ACME_AGENT" key generate --key "$(hsm_key www)" --type ec-p256)
run_agent 0 "${AGENT[@]}" issue --key "$CERT" -d "$WWW" --http-port "$HTTP"
OLD_SERIAL=$(serial_of "$STATE/live/$WWW/cert.pem")
BEFORE=$(tree_digest "$STATE")

# migrate: everything the dir holds, the dir untouched; a second run finds it all there.
if run_agent 0 "$ACME_AGENT" storage migrate --from "$STATE" --to "$PG"; then
  contains "$OUT" "copied 1 account(s), 1 certificate(s) and 0 order(s) in flight" &&
    expect "database serial: $(sql "select cert_pem from certificates where name='$WWW'" | pem_serial)" \
      [ "$(sql "select cert_pem from certificates where name='$WWW'" | pem_serial)" = "$OLD_SERIAL" ] &&
    expect "account not copied" [ "$(sql "select count(*) from accounts")" -eq 1 ] &&
    expect "the state dir changed" [ "$(tree_digest "$STATE")" = "$BEFORE" ] &&
    pass "storage migrate: the account and the certificate are in PostgreSQL"
fi
run_agent 0 "$ACME_AGENT" --json storage migrate --from "$STATE" --to "$PG" &&
  expect "rerun: $(cat "$OUT")" [ "$(jq -r '.certificates + .accounts' "$OUT")" -eq 0 ] &&
  expect "rerun: $(cat "$OUT")" [ "$(jq -r .unchanged "$OUT")" -eq 2 ] &&
  expect "generation: $(sql "select generation from certificates where name='$WWW'")" \
    [ "$(sql "select generation from certificates where name='$WWW'")" -eq 1 ] &&
  lacks "$OUT" "passfile=" && pass "migrate again: the same records are left as they are"

# Another certificate for the same name in a second dir conflicts: refused, nothing written.
OTHER=$WORK/other
OTHER_KEY=$("$ACME_AGENT" key generate --key "$(hsm_key other)" --type ec-p256)
run_agent 0 "$ACME_AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --state-dir "$OTHER" \
  account register --key "$ACCT" --agree-tos
run_agent 0 "$ACME_AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --state-dir "$OTHER" \
  issue --key "$OTHER_KEY" -d "$WWW" --http-port "$HTTP"
run_agent 4 "$ACME_AGENT" storage migrate --from "$OTHER" --to "$PG" &&
  contains "$ERR" "already has another certificate $WWW (--overwrite replaces it)" &&
  expect "the conflicting migrate wrote" \
    [ "$(sql "select cert_pem from certificates where name='$WWW'" | pem_serial)" = "$OLD_SERIAL" ] &&
  pass "storage migrate refuses to replace another certificate without --overwrite"

# renew from the database: a new certificate there, the old state dir as it was.
DB=("$ACME_AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --state-dir "$WORK/unused" --storage "$PG")
if run_agent 0 "${DB[@]}" renew --name "$WWW" --force --http-port "$HTTP"; then
  NEW_SERIAL=$(sql "select cert_pem from certificates where name='$WWW'" | pem_serial)
  expect "renewed serial $NEW_SERIAL is the old one" [ -n "$NEW_SERIAL" ] && [ "$NEW_SERIAL" != "$OLD_SERIAL" ] &&
    expect "generation: $(sql "select generation from certificates where name='$WWW'")" \
      [ "$(sql "select generation from certificates where name='$WWW'")" -eq 2 ] &&
    expect "the state dir changed" [ "$(tree_digest "$STATE")" = "$BEFORE" ] &&
    expect "--state-dir was written to" [ ! -e "$WORK/unused/live" ] &&
    expect "lease left behind: $(sql "select * from leases")" [ -z "$(sql "select * from leases")" ] &&
    pass "renew --storage: a new certificate in PostgreSQL, the state dir untouched"
fi
ACME_AGENT_STORAGE=$PG run_agent 0 "$ACME_AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" \
  --state-dir "$WORK/unused" --json renew --all --http-port "$HTTP" &&
  contains "$OUT" "$WWW" && pass "ACME_AGENT_STORAGE selects the database as --storage does"
# certificates lists what the database holds (the state dir is not made for it).
run_agent 0 "${DB[@]}" --json certificates &&
  expect "certificates --storage: $(cat "$OUT")" jq -e --arg n "$WWW" --arg s "$(sql "select cert_pem from certificates where name='$WWW'" | pem_serial | sed 's/^0*//')" \
    'length == 1 and .[0].name == $n and .[0].serial == $s and .[0].account.url != null and .[0].ca.reachable' "$OUT" >/dev/null &&
  expect "--state-dir was made" [ ! -e "$WORK/unused" ] &&
  pass "certificates --storage: the database's certificate"

# key delete asks the database which certificates use the key, though this machine has no
# state dir.
run_agent 2 "${DB[@]}" key delete --key "$CERT" && contains "$ERR" "--yes" &&
  contains "$ERR" "used by the certificates $WWW in postgresql://" &&
  expect "--state-dir was made" [ ! -e "$WORK/unused" ] &&
  expect "the key is gone" "$ACME_AGENT" key show --key "$CERT" >/dev/null &&
  pass "key delete --storage names the database's certificates on the key, and keeps it"

# Two agents, one name: the first holds the lease while the CA makes it wait (503 with
# Retry-After on new-order, once); the second is turned away before it orders or binds.
start_proxy 120
rules '{"match": "/order-plz", "method": "POST", "action": "status", "status": 503, "retry_after": "4", "times": 1}'
FLEET=fleet.example.com
FK=$("$ACME_AGENT" key generate --key "$(hsm_key fleet)" --type ec-p256)
"$ACME_AGENT" --server "$PROXY/dir" --ca-file "$PEBBLE_CA_FILE" --storage "$PG" \
  issue --account-key "$ACCT" --key "$FK" -d "$FLEET" --http-port "$HTTP" >"$WORK/a.out" 2>"$WORK/a.err" </dev/null &
A=$!
for _ in $(seq 200); do # the first agent's lease, 10 s at most
  [ -n "$(sql "select holder from leases where name='$FLEET'")" ] && break
  kill -0 "$A" 2>/dev/null || break
  read -rt 0.05 <> <(:) || true
done
HOLDER=$(sql "select holder from leases where name='$FLEET'")
expect "no lease while the first agent waits" [ -n "$HOLDER" ]
run_agent 15 "$ACME_AGENT" --server "$PROXY/dir" --ca-file "$PEBBLE_CA_FILE" --storage "$PG" \
  issue --account-key "$ACCT" --key "$FK" -d "$FLEET" --http-port "$HTTP" &&
  contains "$ERR" "another agent is working on $FLEET" && contains "$ERR" "it is left to that one" &&
  lacks "$ERR" "address already in use" && pass "a second agent is turned away while $HOLDER holds $FLEET"
rc=0
wait "$A" || rc=$?
expect "first agent: exit $rc: $(head -c 400 "$WORK/a.err")" [ "$rc" -eq 0 ] &&
  expect "new-order requests: $(grep -c '"/order-plz"' "$PLOG"), not the first agent's two (503, then its retry)" \
    [ "$(grep -c '"/order-plz"' "$PLOG")" -eq 2 ] &&
  expect "generation $(sql "select generation from certificates where name='$FLEET'")" \
    [ "$(sql "select generation from certificates where name='$FLEET'")" -eq 1 ] &&
  expect "lease left behind" [ -z "$(sql "select * from leases where name='$FLEET'")" ] &&
  pass "one order for $FLEET: the first agent issued it, the lease is gone"

# A node that dies mid-order (stopped by a failpoint right after the order is recorded:
# no release, as with kill -9) keeps its lease until it expires (ACME_AGENT_LEASE_TTL=5);
# meanwhile a second node is turned away; after it, the second node resumes the same order
# with the same key: one order at the CA, no key made.
CRASH=crash.example.com
CK=$("$ACME_AGENT" key generate --key "$(hsm_key crash)" --type ec-p256)
KEYS_BEFORE=$("$ACME_AGENT" key list --key "$TOKEN" | wc -l)
ORDERS_BEFORE=$(grep -c 'Added order' "$PEBBLE_DIR/pebble.log" || true)
export ACME_AGENT_LEASE_TTL=5
ACME_AGENT_FAILPOINT=order-created run_agent 86 "${DB[@]}" issue --key "$CK" -d "$CRASH" --http-port "$HTTP" &&
  expect "no order recorded: $(sql "select name from orders")" [ "$(sql "select count(*) from orders where name='$CRASH'")" -eq 1 ] &&
  run_agent 15 "${DB[@]}" issue --key "$CK" -d "$CRASH" --http-port "$HTTP" &&
  contains "$ERR" "another agent is working on $CRASH" && pass "a crashed node's lease holds the name until it expires"
lease_expired() { [ "$(sql "select count(*) from leases where name='$CRASH' and expires_at > now()")" -eq 0 ]; }
for _ in $(seq 200); do lease_expired && break; read -rt 0.05 <> <(:) || true; done
expect "the lease did not expire within 10 s" lease_expired
if run_agent 0 "${DB[@]}" issue --key "$CK" -d "$CRASH" --http-port "$HTTP"; then
  contains "$ERR" "order: resuming" &&
    expect "orders at the CA: $ORDERS_BEFORE before, $(grep -c 'Added order' "$PEBBLE_DIR/pebble.log") after" \
      [ "$(grep -c 'Added order' "$PEBBLE_DIR/pebble.log")" -eq $((ORDERS_BEFORE + 1)) ] &&
    expect "a key was made" [ "$("$ACME_AGENT" key list --key "$TOKEN" | wc -l)" -eq "$KEYS_BEFORE" ] &&
    expect "order record left" [ "$(sql "select count(*) from orders where name='$CRASH'")" -eq 0 ] &&
    pass "after the lease expired another node resumed the same order: one order, no new key"
fi

# A holder paused mid-order (the whole process stopped once its authorizations are valid, as
# a paused VM or a long GC pause) loses its lease; another node (on its own port: the
# paused one still holds $HTTP) resumes the same order and finishes it. Continued, the
# paused one stops at the next step: it neither finalizes nor stores nor removes the order
# record, which is the other node's to keep.
PAUSED=paused.example.com
PK=$("$ACME_AGENT" key generate --key "$(hsm_key paused)" --type ec-p256)
ORDERS_BEFORE=$(grep -c 'Added order' "$PEBBLE_DIR/pebble.log" || true)
ACME_AGENT_FAILPOINT=authorizations-valid:stop "${DB[@]}" issue --key "$PK" -d "$PAUSED" \
  --http-port "$HTTP" >"$WORK/p.out" 2>"$WORK/p.err" </dev/null &
P=$!
stopped() { [ "$(ps -o stat= -p "$P" | cut -c1)" = T ]; }
lease_gone() { [ "$(sql "select count(*) from leases where name='$PAUSED' and expires_at > now()")" -eq 0 ]; }
if wait_for 30 'the holder did not stop at its failpoint: $(tail -c 300 "$WORK/p.err")' stopped &&
  wait_for 15 'the stopped holder kept its lease' lease_gone &&
  reserve_port OTHER_HTTP $$ &&
  run_agent 0 "${DB[@]}" issue --key "$PK" -d "$PAUSED" --http-port "127.0.0.1:$OTHER_HTTP" &&
  contains "$ERR" "order: resuming"; then
  SERIAL=$(sql "select cert_pem from certificates where name='$PAUSED'" | pem_serial)
  kill -CONT "$P"
  rc=0
  wait "$P" || rc=$?
  expect "the continued holder: exit $rc: $(tail -c 400 "$WORK/p.err")" [ "$rc" -eq 15 ] &&
    contains "$WORK/p.err" "stop acting on this certificate" &&
    lacks "$WORK/p.err" "finalize:" &&
    expect "orders at the CA: $ORDERS_BEFORE before, $(grep -c 'Added order' "$PEBBLE_DIR/pebble.log") after" \
      [ "$(grep -c 'Added order' "$PEBBLE_DIR/pebble.log")" -eq $((ORDERS_BEFORE + 1)) ] &&
    expect "the certificate changed" [ "$(sql "select cert_pem from certificates where name='$PAUSED'" | pem_serial)" = "$SERIAL" ] &&
    expect "generation $(sql "select generation from certificates where name='$PAUSED'")" \
      [ "$(sql "select generation from certificates where name='$PAUSED'")" -eq 1 ] &&
    pass "a holder paused past its lease stops when continued: one order, finished by the node that took over"
else
  kill -KILL "$P" 2>/dev/null || true
fi
unset ACME_AGENT_LEASE_TTL

# Bad settings: each with its exit code and the fix; a password is never shown.
run_agent 2 "$ACME_AGENT" --storage "postgresql://acme_agent:s3cret-pw@localhost:$ACME_AGENT_PG_PORT/acme" \
  renew --all && lacks "$ERR" "s3cret-pw" && contains "$ERR" "passfile" &&
  pass "a password in the URL is refused (exit 2), not echoed"
UNUSED=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run_agent 12 "$ACME_AGENT" --storage "${PG/:$ACME_AGENT_PG_PORT\//:$UNUSED/}" renew --all &&
  contains "$ERR" "Connection refused" && pass "an unreachable database is a network error (exit 12)"
printf 'localhost:%s:*:acme_agent:wrong-password\n' "$ACME_AGENT_PG_PORT" >"$WORK/bad.pgpass"
chmod 600 "$WORK/bad.pgpass"
run_agent 2 "$ACME_AGENT" --storage "$(sed "s|passfile=[^&]*|passfile=$WORK/bad.pgpass|" <<<"$PG")" renew --all &&
  lacks "$ERR" "wrong-password" && contains "$ERR" "check the role, the database and the password" &&
  pass "a wrong password is a setting to fix (exit 2), not echoed"
run_agent 2 "$ACME_AGENT" --storage "mysql://localhost/acme" renew --all &&
  contains "$ERR" "postgresql://" && pass "a URL of another database is refused (exit 2)"
sql "update acme_agent_schema set version = version + 1"
run_agent 15 "${DB[@]}" renew --all && contains "$ERR" "newer" &&
  pass "a schema from a newer agent is refused (exit 15), the database left as it is"
finish
