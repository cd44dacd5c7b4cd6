#!/usr/bin/env bash
# Crash safety: the process is stopped (ACME_AGENT_FAILPOINT) at every step of an issue
# and of a renewal with --new-key; the rerun resumes and finishes with no second key, no
# second account, no temp file, and a certificate that is whole.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
setup_hsm
setup_pebble
setup_account
ACCOUNT=$(cat "$STATE"/accounts/*.json)
keys() { "$ACME_AGENT" key list --key "$TOKEN" | wc -l; }
no_temp() { expect "temp files left: $(find "$STATE" -name '*.tmp.*')" [ -z "$(find "$STATE" -name '*.tmp.*')" ]; }
whole() {  # live/NAME is absent, or complete and consistent
  local d=$STATE/live/$1
  [ -e "$d/cert.pem" ] || return 0
  expect "$1: fullchain is not cert + chain" cmp -s "$d/fullchain.pem" <(cat "$d/cert.pem" "$d/chain.pem")
}

i=0
for fp in order-created challenges-answered finalized downloaded store-partial stored; do
  i=$((i + 1))
  CERT=$("$ACME_AGENT" key generate --key "$(hsm_key "c$i")" --type ec-p256)
  NAME=crash$i.example.com
  KEYS=$(keys)
  ACME_AGENT_FAILPOINT=$fp run_agent 86 "${AGENT[@]}" issue --key "$CERT" -d "$NAME" --http-port "$HTTP" || continue
  no_temp
  whole "$NAME"
  run_agent 0 "${AGENT[@]}" issue --key "$CERT" -d "$NAME" --http-port "$HTTP" || continue
  # After challenges-answered the dead responder fails validation: a clean restart is right.
  case $fp in order-created|finalized|downloaded) contains "$ERR" "order: resuming" ;; esac
  verify_cert "$STATE/live/$NAME" "$CERT" && whole "$NAME" && no_temp
  expect "a key was made by the rerun" [ "$(keys)" -eq "$KEYS" ]
  expect "the account changed" [ "$(cat "$STATE"/accounts/*.json)" = "$ACCOUNT" ]
  expect "order record left" [ ! -e "$STATE/orders/$NAME.json" ]
  pass "stopped at $fp: the rerun finished the same order, one key, one account"
done

# renew --new-key stopped after recording the new key's URI, after generating it, and
# while writing the new certificate: what is left in live/ is one whole certificate whose
# key.uri is its key; the rerun uses that one new key; exactly one key more than before.
for fp in new-key-recorded new-key-generated store-partial; do
  KEYS=$(keys)
  ACME_AGENT_FAILPOINT=$fp run_agent 86 "${AGENT[@]}" renew --name crash1.example.com --force --new-key || continue
  whole crash1.example.com &&
    verify_cert "$STATE/live/crash1.example.com" "$(cat "$STATE/live/crash1.example.com/key.uri")" || continue
  run_agent 0 "${AGENT[@]}" renew --name crash1.example.com --force --new-key || continue
  expect "keys: $KEYS before, $(keys) after" [ "$(keys)" -eq $((KEYS + 1)) ]
  verify_cert "$STATE/live/crash1.example.com" "$(cat "$STATE/live/crash1.example.com/key.uri")" && no_temp \
    && pass "renew --new-key stopped at $fp: one new key"
done
finish
