#!/usr/bin/env bash
# What goes wrong, said clearly: an unreachable server, a TLS failure without --ca-file,
# a name the CA refuses, a challenge that fails, local mistakes (a busy --http-port, a
# missing --webroot, an --out that cannot be made: found before any request). Each has
# its own exit code, names the failing step and the CA's detail, writes no certificate
# and leaves the state dir as it was.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
setup_hsm
setup_pebble
setup_account
CERT=$("$ACME_AGENT" key generate --key "$(hsm_key cert)" --type ec-p256)
BEFORE=$(tree_digest "$STATE")
unchanged() { [ "$(tree_digest "$STATE")" = "$BEFORE" ] || fail "state dir changed after: $1"; }

# Unreachable server: exit 12 (network).
run_agent 12 "$ACME_AGENT" --server https://127.0.0.1:1/dir --ca-file "$PEBBLE_CA_FILE" --state-dir "$STATE" \
  issue --account-key "$ACCT" --key "$CERT" -d x.example.com --http-port "$HTTP" && contains "$ERR" "127.0.0.1:1"
unchanged "unreachable server"
# A key that cannot be opened (wrong PIN) with an unreachable server: the key's error comes
# first (exit 7), though the connect to the CA runs beside the token's login.
printf 'wrong-pin' >"$WORK/wrong.pin" && chmod 600 "$WORK/wrong.pin"
run_agent 7 "$ACME_AGENT" --server https://127.0.0.1:1/dir --ca-file "$PEBBLE_CA_FILE" --state-dir "$STATE" \
  issue --key "${CERT/pin-source=file:*/pin-source=file:$WORK/wrong.pin}" -d x.example.com --http-port "$HTTP" &&
  contains "$ERR" "wrong PIN" && lacks "$ERR" "127.0.0.1:1"
unchanged "wrong PIN, unreachable server"
# TLS failure: Pebble's certificate is not trusted without --ca-file: exit 12, hint given.
run_agent 12 "$ACME_AGENT" --server "$PEBBLE_URL" --state-dir "$STATE" issue --key "$CERT" -d x.example.com \
  --http-port "$HTTP" && contains "$ERR" "--ca-file"
unchanged "TLS failure"
# Local prerequisites, through the fault proxy (its log shows every request): exit 11, what
# to do named, and not one request sent (an order would count against the CA's limits).
start_proxy 120
requests_logged() { grep -c '"event": *"request"' "$PLOG" || true; }
BUSY=${PEBBLE_URL#https://}; BUSY=${BUSY%/dir} # Pebble's own port: held by Pebble
run_agent 11 "${P[@]}" issue --account-key "$ACCT" --key "$CERT" -d busy.example.com --http-port "$BUSY" \
  && contains "$ERR" "--http-port" && contains "$ERR" "--webroot" && contains "$ERR" "nothing was sent to the CA"
run_agent 11 "${P[@]}" issue --account-key "$ACCT" --key "$CERT" -d web.example.com --webroot "$WORK/no-such-webroot" \
  && contains "$ERR" "--webroot"
touch "$WORK/a-file"
run_agent 11 "${P[@]}" issue --account-key "$ACCT" --key "$CERT" -d out.example.com --http-port "$HTTP" --out "$WORK/a-file/out" \
  && contains "$ERR" "--out"
expect "requests reached the CA: $(cat "$PLOG" 2>/dev/null)" [ "$(requests_logged)" = 0 ] &&
  pass "busy port, missing webroot, bad --out: exit 11 before any request"
unchanged "local prerequisites"
# A name the CA refuses: exit 14 with Pebble's problem type and detail.
run_agent 14 "${AGENT[@]}" issue --key "$CERT" -d "bad_name!.example.com" --http-port "$HTTP" \
  && contains "$ERR" "urn:ietf:params:acme:error:"
unchanged "refused name"
# A challenge that fails: the responder listens where Pebble does not look: exit 14,
# the authorization and the CA's detail named.
OTHER=$((PEBBLE_HTTP_PORT == 65000 ? 65001 : 65000))
run_agent 14 "${AGENT[@]}" issue --key "$CERT" -d fails.example.com --http-port "127.0.0.1:$OTHER" \
  && contains "$ERR" "authorization fails.example.com" && contains "$ERR" "urn:ietf:params:acme:error:connection"
unchanged "failed challenge"
[ ! -e "$STATE/live" ] || fail "a certificate directory was written"
# The account key as the certificate key is refused (docs/SECURITY.md rule 9): exit 2.
run_agent 2 "${AGENT[@]}" issue --key "$ACCT" -d same.example.com --http-port "$HTTP" \
  && contains "$ERR" "separate key"
unchanged "account key as certificate key"
# A wildcard over http-01: exit 2 before anything is sent.
run_agent 2 "${AGENT[@]}" issue --key "$CERT" -d "*.example.com" --http-port "$HTTP" && contains "$ERR" "dns-01"
# Two agents on one state dir: the second is told and exits 15.
exec 9>"$STATE/lock"
flock -n 9
run_agent 15 "${AGENT[@]}" issue --key "$CERT" -d locked.example.com --http-port "$HTTP" \
  && contains "$ERR" "another acme-agent"
exec 9>&-
unchanged "locked state dir"
pass "every failure: its exit code, a clear message, state untouched"
# The proxy's log does show an order that reaches the CA (so its silence above means no request).
run_agent 14 "${P[@]}" issue --account-key "$ACCT" --key "$CERT" -d "bad_name!.example.com" --http-port "$HTTP"
grep -q '"path": *"/order-plz' "$PLOG" || fail "the proxy log has no newOrder: $(head -c 600 "$PLOG")"
finish
