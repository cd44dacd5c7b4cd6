#!/usr/bin/env bash
# Pebble rejecting half of all nonces (PEBBLE_WFE_NONCEREJECT=50): 20 issuances, 20
# certificates — every badNonce is retried with the nonce that came with the error.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=50
setup_hsm
setup_pebble
setup_account
CERT=$("$ACME_AGENT" key generate --key "$(hsm_key cert)" --type ec-p256)
ok=0 retries=0
for i in $(seq 20); do
  run_agent 0 "${AGENT[@]}" -v issue --key "$CERT" -d "n$i.example.com" --http-port "127.0.0.1:$PEBBLE_HTTP_PORT" \
    && [ -s "$STATE/live/n$i.example.com/cert.pem" ] && ok=$((ok + 1))
  retries=$((retries + $(grep -c "badNonce" "$ERR" || true)))
done
expect "only $ok of 20 issued" [ "$ok" -eq 20 ] && pass "20 of 20 issuances with half the nonces rejected"
verify_cert "$STATE/live/n20.example.com" "$CERT"
[ "$retries" -ge 20 ] && pass "$retries badNonce retries logged at -v" || fail "only $retries badNonce retries: the knob did not take"
finish
