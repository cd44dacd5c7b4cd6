#!/usr/bin/env bash
# Faults Pebble cannot make, injected by tests/tools/fault_proxy.py between the agent and
# Pebble: 503/500/429 with and without Retry-After, a server that never recovers, a garbage
# Retry-After, a reset connection, a 1 byte/s trickle, an oversized body, malformed JSON,
# missing Replay-Nonce, foreign URLs, a private key inside the chain; and Pebble itself
# rejecting 99 % of nonces. Each ends as documented (README exit codes: 12 network,
# 13 protocol, 14 CA refused), in bounded time, and never leaves a second key, a temp file,
# a partial certificate or a changed state dir behind (beyond, once an order exists, its
# intent record orders/NAME.json, which a rerun resumes: checked too).
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 # no stray badNonce: exact request counts
setup_hsm
setup_pebble

# --- the proxy --------------------------------------------------------------------------
start_proxy 900
ORIGIN=$PROXY

# since_mark: the proxy log lines written since the last `mark`.
mark() { MARK=$(wc -l <"$PLOG"); T0=$(date +%s.%N); }
since_mark() { tail -n +"$((MARK + 1))" "$PLOG"; }
# requests METHOD PATH-PREFIX [STATUS]: how many such requests the proxy saw since mark.
requests() {
  since_mark | jq -s --arg m "$1" --arg p "$2" --arg s "${3:-}" \
    '[.[] | select(.event == "request" and .method == $m and (.path | startswith($p))
      and ($s == "" or (.status | tostring) == $s))] | length'
}
elapsed() { awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN { printf "%.1f", a - b }'; }
within() { awk -v e="$(elapsed)" -v s="$1" 'BEGIN { exit !(e <= s) }'; }
keys() { "$ACME_AGENT" --json key list --key "$TOKEN" | jq length; }

ACCT=$("$ACME_AGENT" key generate --key "$(hsm_key acct)" --type ec-p256)
CERT=$("$ACME_AGENT" key generate --key "$(hsm_key cert)" --type ec-p256)
run_agent 0 "${P[@]}" account register --key "$ACCT" --agree-tos || finish
contains "$OUT" "account: $PROXY/my-account/" # Pebble builds its URLs from the Host header
KEYS=$(keys)

# digest_except NAME: tree_digest of the state dir without orders/NAME.json.
digest_except() { tree_digest "$STATE" "./orders/$(basename "$1").json"; }
# clean_failure WHAT NAME [order-kept]: after a failed run: the state dir as before, no
# temp files, no live/NAME, no new key on the token. With order-kept, a failure after the
# order was created may leave the intent record orders/NAME.json (docs/SECURITY.md rule 15: a
# rerun resumes that order); it must then name an order on $ORIGIN, the key and the names.
clean_failure() {
  local bad=0 rec=$STATE/orders/$2.json
  if [ "${3:-}" = order-kept ] && [ -e "$rec" ]; then
    [ "$(digest_except "$2")" = "$BEFORE" ] || { fail "$1: the state dir changed beyond orders/$2.json"; bad=1; }
    jq -e --arg p "$ORIGIN/" --arg k "$CERT" --arg n "$2" \
      '(.order | startswith($p)) and .key == $k and .domains == [$n]' "$rec" >/dev/null ||
      { fail "$1: orders/$2.json: $(cat "$rec")"; bad=1; }
  else
    [ "$(tree_digest "$STATE")" = "$BEFORE" ] || { fail "$1: the state dir changed"; bad=1; }
  fi
  [ -z "$(find "$STATE" -name '*.tmp.*')" ] || { fail "$1: temp files left: $(find "$STATE" -name '*.tmp.*')"; bad=1; }
  [ ! -e "$STATE/live/$2" ] || { fail "$1: live/$2 was written"; bad=1; }
  [ "$(keys)" = "$KEYS" ] || { fail "$1: the token holds $(keys) keys, not $KEYS"; bad=1; }
  return $bad
}
# clean_success WHAT NAME: a complete, verifying certificate; no temp files, no order
# record left, no new key.
clean_success() {
  local f bad=0
  for f in cert.pem chain.pem fullchain.pem key.uri; do
    [ -s "$STATE/live/$2/$f" ] || { fail "$1: live/$2/$f missing"; bad=1; }
  done
  verify_cert "$STATE/live/$2" "$CERT" || bad=1
  [ -z "$(find "$STATE" -name '*.tmp.*')" ] || { fail "$1: temp files left"; bad=1; }
  [ ! -e "$STATE/orders/$2.json" ] || { fail "$1: orders/$2.json left behind"; bad=1; }
  [ "$(keys)" = "$KEYS" ] || { fail "$1: the token holds $(keys) keys, not $KEYS"; bad=1; }
  return $bad
}
# issue_ok WHAT NAME [AGENT OPTIONS...]: issuance through the proxy succeeds.
issue_ok() {
  local what=$1 name=$2; shift 2
  run_agent 0 "${P[@]}" "$@" issue --key "$CERT" -d "$name" --http-port "$HTTP" && clean_success "$what" "$name"
}
# issue_fails EXIT WHAT NAME [order-kept] [AGENT OPTIONS...]: issuance fails with EXIT,
# cleanly (see clean_failure).
issue_fails() {
  local want=$1 what=$2 name=$3 kept=; shift 3
  [ "${1:-}" = order-kept ] && { kept=$1; shift; }
  BEFORE=$(tree_digest "$STATE")
  [ -n "$kept" ] && BEFORE=$(digest_except "$name")
  run_agent "$want" "${P[@]}" "$@" issue --key "$CERT" -d "$name" --http-port "$HTTP" || { clean_failure "$what" "$name" "$kept"; return 1; }
  clean_failure "$what" "$name" "$kept"
}
# gaps_at_least SECONDS METHOD PATH: there was a retry of METHOD PATH, and every one came
# >= SECONDS after the answer before it (Retry-After honoured).
gaps_at_least() {
  since_mark | jq -s -e --argjson s "$1" --arg m "$2" --arg p "$3" \
    '[.[] | select(.event == "request" and .method == $m and .path == $p) | .t] as $t
     | ($t | length) >= 2 and ([range(1; $t | length) | $t[.] - $t[. - 1]] | all(. >= $s))' >/dev/null
}

NEWORDER='"match": "/order-plz", "method": "POST"'

# 1. 503 + Retry-After: 1 on newOrder, twice: retried after the wait, issued; -v tells.
rules "{$NEWORDER, \"action\": \"status\", \"status\": 503, \"retry_after\": \"1\", \"times\": 2}"
mark
if issue_ok "503 twice" r503.example.com -v; then
  expect "newOrder attempts: $(requests POST /order-plz)" [ "$(requests POST /order-plz)" = 3 ] &&
    expect "Retry-After: 1 not waited for" gaps_at_least 0.9 POST /order-plz &&
    expect "-v shows no retry: $(head -c 600 "$ERR")" [ "$(grep -c 503 "$ERR")" -ge 2 ] &&
    pass "503 with Retry-After twice: waited, retried, issued"
fi

# 2. 500 twice, then 429 rateLimited with Retry-After: 1 twice: retried, issued.
rules "{$NEWORDER, \"action\": \"status\", \"status\": 500, \"times\": 2}"
mark
issue_ok "500 twice" r500.example.com &&
  expect "newOrder attempts: $(requests POST /order-plz)" [ "$(requests POST /order-plz)" = 3 ] &&
  pass "500 twice: retried, issued"
rules "{$NEWORDER, \"action\": \"status\", \"status\": 429, \"type\": \"urn:ietf:params:acme:error:rateLimited\", \"retry_after\": \"1\", \"times\": 2}"
mark
issue_ok "429 twice" r429.example.com &&
  expect "newOrder attempts: $(requests POST /order-plz)" [ "$(requests POST /order-plz)" = 3 ] &&
  expect "Retry-After: 1 not waited for" gaps_at_least 0.9 POST /order-plz &&
  pass "429 rateLimited with Retry-After twice: waited, retried, issued"

# 3. 503 forever, asking for an hour each time: the agent caps the wait and gives up on its
# own deadline (exit 14, or 12), well inside 120 s; nothing stored.
rules "{$NEWORDER, \"action\": \"status\", \"status\": 503, \"retry_after\": \"3600\"}"
mark
BEFORE=$(tree_digest "$STATE")
rc=0
timeout 150 "${P[@]}" issue --key "$CERT" -d never.example.com --http-port "$HTTP" >"$OUT" 2>"$ERR" </dev/null || rc=$?
took=$(elapsed)
case $rc in
  12 | 14) if within 120; then pass "503 forever: exit $rc after $took s, $(requests POST /order-plz) attempts"
    else fail "503 forever: gave up only after $took s"; fi ;;
  124) fail "503 forever: still running after 150 s (no retry deadline)" ;;
  *) fail "503 forever: exit $rc, expected 14 or 12: $(head -c 600 "$ERR")" ;;
esac
clean_failure "503 forever" never.example.com || true

# 4. A garbage Retry-After ("soon-ish") is ignored: the agent's own backoff, then issued.
rules "{$NEWORDER, \"action\": \"retry_after_garbage\", \"times\": 2}"
mark
issue_ok "garbage Retry-After" soonish.example.com &&
  expect "newOrder attempts: $(requests POST /order-plz)" [ "$(requests POST /order-plz)" = 3 ] &&
  expect "took $(elapsed) s" within 60 && pass "garbage Retry-After ignored, issued"

# 5. The connection reset (TCP RST, no answer) on newOrder. Once: libcurl itself resends
# a request whose reused connection died before any answer, on a new connection. Twice:
# the second reset reaches the agent, which retries (-v says so). Always: exit 12, bounded.
rules "{$NEWORDER, \"action\": \"reset\", \"times\": 1}"
mark
issue_ok "reset once" reset1.example.com &&
  expect "newOrder attempts: $(requests POST /order-plz)" [ "$(requests POST /order-plz)" = 2 ] &&
  pass "connection reset once on newOrder: resent on a new connection, issued"
rules "{$NEWORDER, \"action\": \"reset\", \"times\": 2}"
mark
issue_ok "reset twice" reset2.example.com -v &&
  expect "newOrder attempts: $(requests POST /order-plz)" [ "$(requests POST /order-plz)" = 3 ] &&
  expect "-v shows no retry after the reset: $(head -c 600 "$ERR")" grep -q "retrying" "$ERR" &&
  pass "connection reset twice on newOrder: the agent retried, issued"
rules "{$NEWORDER, \"action\": \"reset\"}"
mark
issue_fails 12 "reset forever" reset3.example.com &&
  expect "reset forever: gave up after $(elapsed) s" within 120 &&
  pass "connection reset on every newOrder: exit 12 after $(elapsed) s, $(requests POST /order-plz) attempts"

# 6. The directory at 1 byte/s: the timeout (--http-timeout 5) ends each try; a GET has no
# side effect, so it is tried three times in all (issue #21), then exit 12 in 15-30 s.
rules '{"match": "/dir", "method": "GET", "action": "trickle"}'
mark
if issue_fails 12 "trickle" trickle.example.com --http-timeout 5; then
  expect "trickle: gave up after $(elapsed) s, not within 35 s" within 35 &&
    expect "trickle: $(requests GET /dir) tries, not 3" [ "$(requests GET /dir)" = 3 ] &&
    pass "1 byte/s directory: 3 tries, exit 12 after $(elapsed) s"
fi

# 7. A JSON body over 64 KiB without Content-Length, chunked (newOrder) or ending at
# close (directory): exit 13, "larger than".
rules "{$NEWORDER, \"action\": \"oversize\", \"size\": 70000, \"framing\": \"chunked\"}"
issue_fails 13 "oversized chunked" big.example.com && contains "$ERR" "larger than" &&
  pass "oversized chunked newOrder answer: exit 13"
rules '{"match": "/dir", "method": "GET", "action": "oversize", "size": 70000, "framing": "close"}'
issue_fails 13 "oversized close-delimited" big.example.com && contains "$ERR" "larger than" &&
  pass "oversized close-delimited directory: exit 13"

# 8. Malformed JSON as the newOrder answer (201, Location and nonce intact): exit 13.
rules "{$NEWORDER, \"action\": \"garbage_json\"}"
issue_fails 13 "malformed JSON" garbage.example.com && pass "malformed JSON on newOrder: exit 13"

# 9. No Replay-Nonce on any answer but newNonce's: a HEAD newNonce before each POST, issued.
rules '{"match": "*", "exclude": ["/nonce-plz"], "action": "drop_nonce"}'
mark
if issue_ok "no Replay-Nonce" nononce.example.com; then
  heads=$(requests HEAD /nonce-plz) posts=$(requests POST /)
  expect "$heads HEAD newNonce for $posts POSTs" [ "$heads" -ge "$posts" ] &&
    pass "no Replay-Nonce in answers: $heads HEAD newNonce for $posts POSTs, issued"
fi
# ... and none from newNonce either: a clear exit 13.
rules '{"match": "*", "action": "drop_nonce"}'
issue_fails 13 "no nonce at all" nononce2.example.com && contains "$ERR" "Replay-Nonce" &&
  pass "no Replay-Nonce anywhere: exit 13"

# 10. URLs outside the directory's origin: in the order body, in an authorization's
# challenges, in the order's Location header: exit 13, nothing followed there.
rules "{$NEWORDER, \"action\": \"offorigin\"}"
issue_fails 13 "foreign order URLs" evil1.example.com order-kept && contains "$ERR" "outside its own origin" &&
  pass "foreign URLs in the order: exit 13"
rules '{"match": "/authZ/*", "method": "POST", "action": "offorigin"}'
issue_fails 13 "foreign challenge URL" evil2.example.com order-kept && contains "$ERR" "outside its own origin" &&
  pass "foreign challenge URL: exit 13"
rules "{$NEWORDER, \"action\": \"offorigin\", \"headers\": true}"
issue_fails 13 "foreign Location" evil3.example.com && contains "$ERR" "outside its own origin" &&
  pass "foreign order Location: exit 13"

# 11. A PRIVATE KEY block appended to the certificate download: exit 13, nothing stored.
rules '{"match": "/certZ/*", "method": "POST", "action": "chain_private_key"}'
issue_fails 13 "key in chain" keyinchain.example.com order-kept && contains "$ERR" "not a certificate" &&
  pass "PRIVATE KEY block in the chain: exit 13, nothing stored"
if grep -rlq "PRIVATE KEY" "$STATE"; then fail "a private key in the state dir"; fi

# The proxy without rules: a protocol violation ended that order (its record was removed,
# the state left as it was), so the rerun orders afresh and stores a clean certificate.
rules ''
mark
issue_ok "rerun" keyinchain.example.com &&
  lacks "$ERR" resuming &&
  expect "orders/keyinchain.example.com.json kept" [ ! -e "$STATE/orders/keyinchain.example.com.json" ] &&
  expect "new orders: $(requests POST /order-plz)" [ "$(requests POST /order-plz)" = 1 ] &&
  pass "rerun after the key-in-chain failure: a fresh order, issued"
issue_ok "after the faults" clean.example.com && pass "the proxy without rules: issued"

# 11b. Server text is data (SECURITY.md rule 19): a problem document whose type and detail
# carry an OSC window title, a BEL and a screen clear. stderr holds no raw ESC or BEL, the
# escapes shown as \x1b; --json is valid JSON carrying the text as sent.
EVIL='\u001b]0;pwned\u0007\u001b[2J'
ACCOUNT_POST='"match": "/my-account/*", "method": "POST"'
no_raw_controls() { ! LC_ALL=C grep -q $'[\x1b\x07]' "$1"; }
rules "{$ACCOUNT_POST, \"action\": \"status\", \"status\": 403, \"type\": \"urn:ietf:params:acme:error:unauthorized$EVIL\", \"detail\": \"evil $EVIL end\"}"
if run_agent 14 "${P[@]}" account show; then
  expect "raw ESC/BEL on stderr: $(od -c "$ERR" | head -n 5)" no_raw_controls "$ERR" &&
    contains "$ERR" 'evil \x1b]0;pwned\x07\x1b[2J end' && pass "a problem detail's terminal escapes are shown escaped"
fi
if run_agent 14 "${P[@]}" --json account show; then
  expect "raw ESC/BEL on stderr (--json)" no_raw_controls "$ERR"
  jq -e '.error.message == "evil \u001b]0;pwned\u0007\u001b[2J end"' "$OUT" >/dev/null &&
    pass "--json: valid JSON carrying the detail as sent" || fail "--json: $(head -c 400 "$OUT")"
fi
# ...and a line break in a detail starts no line that looks like the agent's own.
rules "{$ACCOUNT_POST, \"action\": \"status\", \"status\": 403, \"type\": \"urn:ietf:params:acme:error:unauthorized\", \"detail\": \"denied\\nacme-agent: certificate issued\\r\\nok\"}"
if run_agent 14 "${P[@]}" account show; then
  expect "a server line break began a line of its own: $(cat "$ERR")" \
    bash -c '! grep -q "^acme-agent: certificate issued" "$1" && ! grep -q "^ok" "$1"' _ "$ERR" &&
    contains "$ERR" "denied acme-agent: certificate issued" && pass "a problem detail's line breaks start no line"
fi

# 11c. Echoed server data is copied with bounds (SECURITY.md rule 20): an account object
# whose contact is 3000 nested arrays (once 18 MB of --json), then 40 contacts, one of 1000
# bytes and a number: account show keeps the strings, 16 at most, and says what it dropped.
rules "{$ACCOUNT_POST, \"action\": \"json_set\", \"nest\": {\"field\": \"contact\", \"depth\": 3000}}"
if run_agent 0 "${P[@]}" --json account show; then
  expect "account show --json wrote $(stat -c %s "$OUT") bytes" [ "$(stat -c %s "$OUT")" -lt 4096 ] &&
    jq -e '.contact == [] and .contact_dropped == 1 and .status == "valid"' "$OUT" >/dev/null &&
    pass "a nested contact array is dropped, not echoed" || fail "nested contact: $(head -c 400 "$OUT")"
fi
CONTACTS=$(jq -nc '[range(40) | "mailto:c\(.)@example.com"] + ["mailto:" + ("x" * 1000) + "@example.com", 7]')
rules "{$ACCOUNT_POST, \"action\": \"json_set\", \"set\": {\"contact\": $CONTACTS, \"orders\": {\"evil\": 1}}}"
if run_agent 0 "${P[@]}" --json account show; then
  jq -e '(.contact | length) == 16 and .contact[0] == "mailto:c0@example.com" and .contact_dropped == 26
    and (has("orders") | not)' "$OUT" >/dev/null &&
    pass "contacts: 16 strings kept, 26 dropped and counted" || fail "contacts: $(head -c 600 "$OUT")"
fi
run_agent 0 "${P[@]}" account show &&
  expect "contact lines: $(grep -c '^contact: mailto' "$OUT")" [ "$(grep -c '^contact: mailto' "$OUT")" = 16 ] &&
  contains "$OUT" "contact: (26 more not shown" && lacks "$OUT" "xxxxxxxxxx" && pass "account show text: bounded contacts"
rules ''
kill "$PROXY_PID" 2>/dev/null || true

# 12. Pebble itself rejecting 99 % of nonces (no proxy): the agent gives up (exit 14,
# badNonce) in bounded time, state as before that run; a Pebble at 5 % then works.
export PEBBLE_WFE_NONCEREJECT=99
setup_pebble pebble99
HTTP=127.0.0.1:$PEBBLE_HTTP_PORT ORIGIN=${PEBBLE_URL%/dir}
BEFORE=$(tree_digest "$STATE")
T0=$(date +%s.%N)
rc=0
# registration alone passes 21 tries with p = 1 - 0.99^21 (19 %); then issuance cannot.
"${AGENT[@]}" account register --key "$ACCT" --agree-tos >"$OUT" 2>"$ERR" </dev/null || rc=$?
if [ "$rc" = 0 ]; then # (a newOrder that gets through leaves its intent record)
  BEFORE=$(digest_except n99.example.com)
  timeout 150 "${AGENT[@]}" issue --key "$CERT" -d n99.example.com --http-port "$HTTP" >"$OUT" 2>"$ERR" </dev/null || rc=$?
fi
if [ "$rc" = 14 ] && contains "$ERR" "badNonce"; then
  if within 120; then pass "99 % nonces rejected: exit 14 (badNonce) after $(elapsed) s"; else fail "99 %: took $(elapsed) s"; fi
else
  fail "99 % nonces rejected: exit $rc, expected 14: $(head -c 600 "$ERR")"
fi
clean_failure "99 % nonces rejected" n99.example.com order-kept || true
export PEBBLE_WFE_NONCEREJECT=5
setup_pebble pebble5
HTTP=127.0.0.1:$PEBBLE_HTTP_PORT
run_agent 0 "${AGENT[@]}" account register --key "$ACCT" --agree-tos &&
  run_agent 0 "${AGENT[@]}" issue --key "$CERT" -d n5.example.com --http-port "$HTTP" &&
  clean_success "5 % nonces rejected" n5.example.com && pass "then a Pebble at 5 %: issued"
finish
