#!/usr/bin/env bash
# Production-CA behaviour Pebble 2.4 never shows (issue #21), emulated by
# tests/tools/fault_proxy.py in front of one Pebble: an order that stays `processing`, a
# finalize answered 500 or never answered though Pebble took it, a stalled POST-as-GET,
# rateLimited with a Retry-After of hours, ARI failures and alreadyReplaced. Each check
# counts in the proxy log the newOrder and finalize requests the agent sent: never a second
# certificate for one request, never a request before the Retry-After the CA gave.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0
setup_hsm
setup_pebble
start_proxy 600

mark() { MARK=$(wc -l <"$PLOG"); T0=$(date +%s); }
since_mark() { tail -n +"$((MARK + 1))" "$PLOG"; }
# sent METHOD PATH-PREFIX: requests of the agent the proxy saw since mark.
sent() {
  since_mark | jq -s --arg m "$1" --arg p "$2" \
    '[.[] | select(.event == "request" and .method == $m and (.path | startswith($p)))] | length'
}
# once WHAT: exactly one newOrder and one finalize since mark.
once() {
  expect "$1: $(sent POST /order-plz) newOrder requests, not 1" [ "$(sent POST /order-plz)" = 1 ] &&
    expect "$1: $(sent POST /finalize-order/) finalize requests, not 1" [ "$(sent POST /finalize-order/)" = 1 ]
}
ACCT=$("$ACME_AGENT" key generate --key "$(hsm_key acct)" --type ec-p256)
CERT=$("$ACME_AGENT" key generate --key "$(hsm_key cert)" --type ec-p256)
run_agent 0 "${P[@]}" account register --key "$ACCT" --agree-tos || finish
issue() { run_agent "$1" "${P[@]}" "${@:3}" issue --key "$CERT" -d "$2" --http-port "$HTTP"; }

# 1. The order stays `processing` for a few polls after finalize (Retry-After: 1): polled
#    to valid, one newOrder, one finalize.
#    (The rule's count includes the polls before finalize, which it leaves alone.)
rules '{"match": "/my-order/*", "method": "POST", "action": "processing", "retry_after": "1", "times": 5}'
mark
issue 0 processing.example.com && once "processing" &&
  expect "the order was not shown processing" [ "$(since_mark | jq -s '[.[] | select(.shown == "processing")] | length')" -ge 2 ] &&
  verify_cert "$STATE/live/processing.example.com" "$CERT" &&
  pass "order processing for several polls: waited for valid, 1 newOrder, 1 finalize"

# 2. Still processing when --order-timeout runs out: exit 12, the order record kept; the
#    next run resumes the order (no newOrder, no finalize) and stores the certificate.
rules '{"match": "/my-order/*", "method": "POST", "action": "processing", "retry_after": "1"}'
mark
issue 12 slow.example.com --order-timeout 3 && contains "$ERR" "the next run resumes it" &&
  expect "no order record kept" [ -s "$STATE/orders/slow.example.com.json" ] &&
  expect "live/ written" [ ! -e "$STATE/live/slow.example.com" ] &&
  pass "order still processing at --order-timeout: exit 12, order record kept"
rules ''
mark
issue 0 slow.example.com && contains "$ERR" "resuming" &&
  expect "the resumed order sent newOrder/finalize again" [ "$(sent POST /order-plz)$(sent POST /finalize-order/)" = 00 ] &&
  expect "order record left" [ ! -e "$STATE/orders/slow.example.com.json" ] &&
  verify_cert "$STATE/live/slow.example.com" "$CERT" &&
  pass "a processing order resumed by the next run: issued, no second newOrder or finalize"

# 3. finalize answered 500 after Pebble took the CSR: the agent looks at the order and
#    downloads the certificate; finalize is not sent again.
rules '{"match": "/finalize-order/*", "action": "replace_after", "status": 500, "times": 1}'
mark
issue 0 fin500.example.com && once "finalize 500" && contains "$ERR" "looking at the order" &&
  verify_cert "$STATE/live/fin500.example.com" "$CERT" &&
  pass "finalize 500 after the CA acted: order looked at, 1 finalize, issued"

# 4. finalize never answered (the reply stalls past --http-timeout): the same.
rules '{"match": "/finalize-order/*", "action": "stall", "seconds": 8, "times": 1}'
mark
issue 0 finstall.example.com --http-timeout 2 && once "finalize stalled" &&
  verify_cert "$STATE/live/finstall.example.com" "$CERT" &&
  pass "finalize timed out after the CA acted: order looked at, 1 finalize, issued"

# 5. A stalled POST-as-GET (an authorization) is sent again with a fresh nonce.
rules '{"match": "/authZ/*", "method": "POST", "action": "stall", "seconds": 8, "times": 1}'
mark
issue 0 authzstall.example.com --http-timeout 2 && once "authorization stalled" &&
  expect "the stalled authorization was not fetched again" [ "$(sent POST /authZ/)" -ge 3 ] &&
  pass "a POST-as-GET that timed out was resent, issued"

# 6. newOrder stalls after Pebble created the order: never sent again. (Pebble 2.4 lists
#    no orders for an account, so the agent says so and stops.)
rules '{"match": "/order-plz", "action": "stall", "seconds": 8, "times": 1}'
mark
if issue 12 nostall.example.com --http-timeout 2; then
  contains "$ERR" "not sent again" &&
    expect "newOrder resent" [ "$(sent POST /order-plz)" = 1 ] &&
    pass "newOrder timed out: not resent, exit 12 naming why"
fi

# 7. rateLimited with Retry-After: 7200 on newOrder: the command ends at once with the
#    time to retry (text and JSON), one request; `run` does not try again before it.
rules '{"match": "/order-plz", "action": "status", "status": 429, "retry_after": "7200", "detail": "too many certificates"}'
mark
issue 14 ratelimited.example.com && once_nwo=$(sent POST /order-plz) &&
  expect "newOrder sent $once_nwo times" [ "$once_nwo" = 1 ] &&
  contains "$ERR" "retry after" && expect "took $(($(date +%s) - T0)) s" [ $(($(date +%s) - T0)) -lt 10 ] &&
  pass "rateLimited with Retry-After 7200: exit 14 at once, the retry time given"
mark
run_agent 14 "${P[@]}" --json issue --key "$CERT" -d ratelimited.example.com --http-port "$HTTP" &&
  expect "no retry_at in $(cat "$OUT")" jq -e --arg t "$(date -u -d '+7100 seconds' +%FT%TZ)" \
    '.error.retry_at > $t' "$OUT" >/dev/null &&
  pass "--json: error.retry_at two hours ahead"
rules ''

# 8. ARI: renewalInfo answers 500 (then malformed JSON): renew falls back to the lifetime
#    rule with a warning instead of failing; --force renews.
N=processing.example.com
rules '{"action": "ari", "error_status": 500}'
run_agent 0 "${P[@]}" renew --name "$N" && contains "$ERR" "renewalInfo" && contains "$OUT" "not due until" &&
  pass "renewalInfo 500: lifetime rule, warning, exit 0"
rules '{"action": "ari", "bad_json": true}'
run_agent 0 "${P[@]}" renew --name "$N" && contains "$ERR" "renewalInfo" && contains "$OUT" "not due until" &&
  pass "renewalInfo malformed: lifetime rule, warning, exit 0"
rules '{"action": "ari", "error_status": 404}'
S0=$(serial_of "$STATE/live/$N/cert.pem")
run_agent 0 "${P[@]}" renew --name "$N" --force &&
  expect "not renewed" [ "$(serial_of "$STATE/live/$N/cert.pem")" != "$S0" ] &&
  pass "renewalInfo 404: --force renews anyway"

# The CA's explanationURL is shown with the due date, control characters replaced.
rules '{"action": "ari", "start_in": 86400, "end_in": 172800, "explanationURL": "https://ca.example/why\u001b[2J"}'
run_agent 0 "${P[@]}" renew --name "$N" && contains "$ERR" "see https://ca.example/why?[2J" &&
  pass "ARI explanationURL shown, escaped"

# 9. ARI alreadyReplaced: newOrder with `replaces` answered 409: ordered again once
#    without it; issued.
rules '{"action": "ari", "start_in": -7200, "end_in": -3600}, {"match": "/order-plz", "payload_has": "replaces", "action": "status", "status": 409, "type": "urn:ietf:params:acme:error:alreadyReplaced", "detail": "already replaced"}'
mark
run_agent 0 "${P[@]}" renew --name "$N" && contains "$ERR" "already replaced" &&
  expect "$(sent POST /order-plz) newOrder requests, not 2" [ "$(sent POST /order-plz)" = 2 ] &&
  expect "the second newOrder still had replaces" \
    [ "$(since_mark | jq -r 'select(.path == "/order-plz" and .status == 201) | .jws.payload.replaces // "none"')" = none ] &&
  pass "alreadyReplaced: ordered again once without replaces, renewed"

# 10. #14.5: an authorization for a name the order did not request is refused before any
#     challenge is published or answered.
rules '{"match": "/authZ/*", "method": "POST", "action": "garbage_json", "times": 1, "body": "{\"status\": \"pending\", \"identifier\": {\"type\": \"dns\", \"value\": \"other.example\"}, \"challenges\": [{\"type\": \"http-01\", \"url\": \"'"$PROXY"'/chalZ/x\", \"token\": \"abc\"}]}"}'
mark
issue 13 asked.example.com && contains "$ERR" "'other.example', which this order did not request" &&
  expect "a challenge was answered" [ "$(sent POST /chalZ/)" = 0 ] &&
  pass "authorization for another name: exit 13, no challenge answered"

# 11. A definitive failure after the authorizations were read (the challenge refused):
#     the order's pending authorization is deactivated (RFC 8555 7.5.2).
rules '{"match": "/chalZ/*", "action": "status", "status": 400, "type": "urn:ietf:params:acme:error:malformed", "detail": "no", "times": 1}'
mark
issue 14 deact.example.com &&
  expect "no deactivation: $(since_mark | jq -c 'select(.path // "" | startswith("/authZ/")) | .jws.payload')" \
    [ "$(since_mark | jq -s '[.[] | select(.event == "request" and (.path | startswith("/authZ/")) and (.jws.payload | type) == "object" and .jws.payload.status == "deactivated")] | length')" = 1 ] &&
  pass "failed order: its pending authorization deactivated"

# 12. An invalid order: the CA's error is reported with its instance.
rules '{"match": "/my-order/*", "method": "POST", "action": "garbage_json", "times": 1, "body": "{\"status\": \"invalid\", \"error\": {\"type\": \"urn:ietf:params:acme:error:rejectedIdentifier\", \"detail\": \"policy forbids it\", \"instance\": \"https://ca.example/i/42\"}}"}'
issue 14 invalid.example.com && contains "$ERR" "policy forbids it (see https://ca.example/i/42)" &&
  pass "invalid order: the CA's error and instance reported"

# 13. #14.7: a TLS handshake failure (a plain-HTTP server on the CA's URL) is not retried.
# --account-key: no account is stored for that URL, which would be found first (exit 3).
T0=$(date +%s)
run_agent 12 "$ACME_AGENT" -v --server "https://${CHALLTESTSRV#http://}/dir" --ca-file "$PEBBLE_CA_FILE" \
  --state-dir "$STATE" issue --account-key "$ACCT" --key "$CERT" -d tls.example.com --http-port "$HTTP" &&
  contains "$ERR" "TLS handshake" && lacks "$ERR" "retrying" &&
  expect "took $(($(date +%s) - T0)) s" [ $(($(date +%s) - T0)) -lt 5 ] &&
  pass "TLS handshake failure: exit 12 at once, not retried"

# daemon_next_check CONFIG: starts `run` (the daemon) on CONFIG through the proxy, stops it
# after its first pass and sets NEXT to the time it logged for its next check.
daemon_next_check() {
  "${P[@]}" run --config "$1" >"$WORK/daemon.out" 2>"$WORK/daemon.err" </dev/null &
  DAEMON=$!
  local _
  for _ in $(seq 600); do # 30 s at most
    grep -q "next check at" "$WORK/daemon.err" && break
    kill -0 "$DAEMON" 2>/dev/null || break
    read -rt 0.05 <> <(:) || true
  done
  kill -TERM "$DAEMON" 2>/dev/null; wait "$DAEMON" || true
  NEXT=$(sed -n 's/.*next check at \([0-9TZ:-]*\).*/\1/p' "$WORK/daemon.err" | head -n 1)
  [ -n "$NEXT" ] || fail "the daemon logged no next check: $(tail -c 400 "$WORK/daemon.err")"
}
epoch() { date -d "$1" +%s; }
conf() { printf 'account_key = "%s"\nagree_tos = true\n[[certificate]]\ndomains = ["%s"]\nkey = "%s"\nhttp_port = "%s"\n' \
  "$ACCT" "$1" "$CERT" "$HTTP" >"$WORK/daemon.toml"; }

# 14. `run` (the daemon): after a rateLimited newOrder with Retry-After: 7200 the next
#     check is no earlier (without it, the backoff would try again in a minute).
rules '{"match": "/order-plz", "action": "status", "status": 429, "retry_after": "7200"}'
conf rl-run.example.com
mark
daemon_next_check "$WORK/daemon.toml" &&
  expect "next check at $NEXT, not 2 h ahead of $(date -u +%FT%TZ)" [ "$(epoch "$NEXT")" -ge $(($(date +%s) + 5400)) ] &&
  expect "$(sent POST /order-plz) newOrder requests, not 1" [ "$(sent POST /order-plz)" = 1 ] &&
  pass "run: the next check waits for the CA's Retry-After ($NEXT)"

# 15. renewalInfo's Retry-After (here 120 s, with a window from tomorrow) sets the next
#     check (without it: the window, capped at 6 h). The margins (an hour, 1.5 h) leave
#     room for a clock that is stepped while the test runs.
rules '{"action": "ari", "start_in": 86400, "end_in": 172800, "retry_after": 120}'
conf processing.example.com
daemon_next_check "$WORK/daemon.toml" &&
  expect "next check at $NEXT, not within the hour of $(date -u +%FT%TZ)" [ "$(epoch "$NEXT")" -le $(($(date +%s) + 3600)) ] &&
  pass "run: renewalInfo's Retry-After sets the next check ($NEXT)"
rules ''
finish
