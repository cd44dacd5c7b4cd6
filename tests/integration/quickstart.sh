#!/usr/bin/env bash
# The README's first Quick start command, scripts/demo.sh, on this build: it issues a
# certificate from a fresh Pebble with both keys in a fresh SoftHSM token and shows it.
source "$(dirname "$0")/lib.sh"
LOG=$WORK/demo.log
if DEMO_DIR=$WORK/demo bash "$SCRIPTS/demo.sh" >"$LOG" 2>&1; then
  LIVE=$WORK/demo/state/live/demo.example
  contains "$LOG" "subject=CN = demo.example" && contains "$LOG" "DNS:www.demo.example" &&
    contains "$LOG" "$LIVE/cert.pem: OK" && expect "the demo shows never-extractable: true" \
    grep -qE '^never-extractable: +true' "$LOG" && pass "demo.sh: certificate shown, verified, key never extractable"
  # The certificate carries the token's key (Pebble, and with it its root, is gone: the
  # demo's own `openssl verify` against that root is checked above).
  export SOFTHSM2_CONF=$WORK/demo/hsm/softhsm2.conf
  "$ACME_AGENT" --json key show --key "$(cat "$LIVE/key.uri")" | jq -r .public_key_pem | openssl pkey -pubin >"$WORK/key.pem"
  openssl x509 -in "$LIVE/cert.pem" -noout -pubkey | openssl pkey -pubin >"$WORK/cert-key.pem"
  expect "the certificate's key is the token's" cmp -s "$WORK/key.pem" "$WORK/cert-key.pem" &&
    pass "demo.sh: the certificate carries the token's key"
  PID=$(cat "$WORK/demo/pebble/pebble.pid" 2>/dev/null || true)
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then fail "demo.sh left Pebble running"; fi
else
  fail "scripts/demo.sh failed: $(tail -n 20 "$LOG")"
fi
finish
