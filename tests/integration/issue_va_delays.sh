#!/usr/bin/env bash
# Pebble's own validation delays (PEBBLE_VA_NOSLEEP unset: 0-5 s per challenge) and a
# fresh account registered by issue itself: issuance completes, polling is bounded and
# backs off (requests per certificate stay small).
source "$(dirname "$0")/lib.sh"
unset PEBBLE_VA_NOSLEEP
setup_hsm
setup_pebble
ACCT=$("$ACME_AGENT" key generate --key "$(hsm_key acct)" --type rsa-2048)
CERT=$("$ACME_AGENT" key generate --key "$(hsm_key cert)" --type ec-p256)
# Without --agree-tos Pebble's terms (meta.termsOfService) are shown and nothing registered.
run_agent 2 "${AGENT[@]}" issue --account-key "$ACCT" --key "$CERT" -d a.example.com -d b.example.com \
  --http-port "127.0.0.1:$PEBBLE_HTTP_PORT" && contains "$ERR" "pass --agree-tos" && contains "$ERR" "terms"
[ -e "$STATE/accounts" ] && fail "an account was recorded without --agree-tos"
run_agent 0 "${AGENT[@]}" --json issue --account-key "$ACCT" --agree-tos --key "$CERT" -d a.example.com \
  -d b.example.com --http-port "127.0.0.1:$PEBBLE_HTTP_PORT" \
  && verify_cert "$STATE/live/a.example.com" "$CERT" && pass "issued despite validation delays"
req=$(jq .requests "$OUT")
[ "$req" -le 60 ] && pass "$req requests for a two-name order with delays" || fail "$req requests: polling too tight"
[ "$(jq .connections "$OUT")" -eq 1 ] && pass "one TLS connection for the whole run" || fail "connections $(jq .connections "$OUT")"
finish
