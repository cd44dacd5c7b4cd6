#!/usr/bin/env bash
# End to end against Pebble with both keys inside a SoftHSM token: EC and RSA account
# keys x EC and RSA certificate keys, several names, an IP identifier, the built-in
# responder and a webroot; account reuse. Every certificate verifies against Pebble's
# root and carries the token key's public key.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
setup_hsm
setup_pebble
A=("${AGENT[@]}")

n=0
for acct_type in ec-p256 rsa-2048; do
  ACCT=$("$ACME_AGENT" key generate --key "$(hsm_key "acct-$acct_type")" --type "$acct_type")
  rm -rf "$STATE"
  run_agent 0 "${A[@]}" account register --key "$ACCT" --agree-tos --email ops@example.com || continue
  contains "$OUT" "account: ${PEBBLE_URL%/dir}/my-account/"
  for cert_type in ec-p256 ec-p384 rsa-2048; do
    n=$((n + 1))
    CERT=$("$ACME_AGENT" key generate --key "$(hsm_key "cert-$n")" --type "$cert_type")
    NAME=m$n.example.com
    run_agent 0 "${A[@]}" --json issue --key "$CERT" -d "$NAME" -d "www.$NAME" --http-port "$HTTP" || continue
    jq -e --arg n "$NAME" '.domains == [$n, "www." + $n]' "$OUT" >/dev/null || fail "names in $(cat "$OUT")"
    verify_cert "$STATE/live/$NAME" "$CERT" && pass "$acct_type account, $cert_type certificate key"
    # no private key material anywhere in the state dir
    if grep -rlq "PRIVATE KEY" "$STATE"; then fail "a private key in the state dir"; fi
  done
done

# An IP identifier (RFC 8738) and --out.
CERT=$("$ACME_AGENT" key generate --key "$(hsm_key cert-ip)" --type ec-p256)
run_agent 0 "${A[@]}" issue --key "$CERT" -d 127.0.0.1 --http-port "$HTTP" --out "$WORK/out-ip" \
  && verify_cert "$WORK/out-ip" "$CERT" \
  && SAN=$(openssl x509 -in "$WORK/out-ip/cert.pem" -noout -ext subjectAltName) \
  && expect "IP SAN: $SAN" [ "$(tail -n +2 <<<"$SAN" | tr -d ' ')" = "IPAddress:127.0.0.1" ] \
  && pass "IP identifier, --out"
[ "$(stat -c %a "$STATE")" = 700 ] || fail "state dir mode $(stat -c %a "$STATE")"
[ "$(cat "$STATE/live/127.0.0.1/key.uri")" = "$CERT" ] || fail "key.uri"

# The second issue reuses the stored account: same account URL, nothing registered.
CERT2=$("$ACME_AGENT" key generate --key "$(hsm_key cert-reuse)" --type ec-p256)
FIRST=$(jq -r .url "$STATE"/accounts/*.json)
run_agent 0 "${A[@]}" --json issue --key "$CERT2" -d reuse.example.com --http-port "$HTTP" \
  && expect "another account: $(jq -r .account "$OUT")" [ "$(jq -r .account "$OUT")" = "$FIRST" ] && lacks "$ERR" "registered" && pass "stored account reused"

# Webroot: a plain static server (python3 -m http.server) serves the directory.
mkdir -p "$WORK/www"
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/www" "$PEBBLE_HTTP_PORT" >/dev/null 2>&1 &
WEB_PID=$!
wait_port "$PEBBLE_HTTP_PORT" "$WEB_PID"
CERT3=$("$ACME_AGENT" key generate --key "$(hsm_key cert-webroot)" --type ec-p256)
run_agent 0 "${A[@]}" issue --key "$CERT3" -d webroot.example.com --webroot "$WORK/www" \
  && verify_cert "$STATE/live/webroot.example.com" "$CERT3" \
  && expect "challenge directories left: $(find "$WORK/www")" [ -z "$(ls -A "$WORK/www")" ] && pass "webroot, the challenge directories it made removed"
# An existing .well-known keeps its mode and stays; only acme-challenge (made here) goes.
mkdir -m 750 "$WORK/www/.well-known"
run_agent 0 "${A[@]}" issue --key "$CERT3" -d webroot2.example.com --webroot "$WORK/www" \
  && verify_cert "$STATE/live/webroot2.example.com" "$CERT3" \
  && expect ".well-known: $(stat -c %a "$WORK/www/.well-known"), $(ls -A "$WORK/www/.well-known")" \
    test "$(stat -c %a "$WORK/www/.well-known")" = 750 -a -z "$(ls -A "$WORK/www/.well-known")" \
  && pass "webroot: an existing .well-known keeps its mode and stays"
finish
