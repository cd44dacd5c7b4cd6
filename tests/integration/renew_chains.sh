#!/usr/bin/env bash
# Renewal and chains: not due by lifetime -> nothing happens; --renew-before-days and
# --force renew with the stored challenge settings; --new-key makes a fresh token key
# (new label) and keeps the old one; --all; alternate roots: --preferred-chain picks the
# chain by its top issuer's CN and the full chain verifies.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1 PEBBLE_ALTERNATE_ROOTS=1 PEBBLE_CHAIN_LENGTH=3
setup_hsm
setup_pebble
key() { "$ACME_AGENT" key generate --key "$(hsm_key "$1")" --type "${2:-ec-p256}"; }
ACCT=$(key acct)
run_agent 0 "${AGENT[@]}" account register --key "$ACCT" --agree-tos
C1=$(key web)
run_agent 0 "${AGENT[@]}" issue --key "$C1" -d web.example.com -d www.web.example.com --http-port "$HTTP"
LIVE=$STATE/live/web.example.com
S0=$(serial_of "$LIVE/cert.pem")
expect "renewal.json keeps the challenge settings" jq -e --arg p "$HTTP" '.http_port == $p and .challenge == "http-01"' "$LIVE/renewal.json" >/dev/null

# Pebble's 5-year certificate is not due: nothing is ordered, nothing changes.
BEFORE=$(tree_digest "$STATE")
run_agent 0 "${AGENT[@]}" --json renew --name web.example.com \
  && expect "renewed although not due" jq -e '.[0].renewed == false' "$OUT" >/dev/null \
  && expect "state changed" [ "$(tree_digest "$STATE")" = "$BEFORE" ] && pass "not due: left alone"

# Due by a renew-before window: renewed with the stored settings (no challenge flags given).
run_agent 0 "${AGENT[@]}" --json renew --name web.example.com --renew-before-days 100000 \
  && expect "not renewed" jq -e '.[0].renewed == true' "$OUT" >/dev/null
S1=$(serial_of "$LIVE/cert.pem")
expect "same serial after renewal" [ "$S1" != "$S0" ] && verify_cert "$LIVE" "$C1" \
  && expect "names lost" [ "$(openssl x509 -in "$LIVE/cert.pem" -noout -ext subjectAltName | tail -1 | tr -d ' ')" = "DNS:web.example.com,DNS:www.web.example.com" ] \
  && pass "renewed inside the renew-before window, same names, same key"

# --force --new-key: a fresh key with a new label; the old key stays until deleted.
run_agent 0 "${AGENT[@]}" --json renew --name web.example.com --force --new-key
NEWKEY=$(cat "$LIVE/key.uri")
expect "the key did not change" [ "$NEWKEY" != "$C1" ] && expect "old key not reported" jq -e --arg k "$C1" '.[0].old_key == $k' "$OUT" >/dev/null
case $NEWKEY in *"object=web-r"*) ;; *) fail "new key label: $NEWKEY" ;; esac
verify_cert "$LIVE" "$NEWKEY" && pass "--new-key: certificate on a fresh token key"
run_agent 0 "$ACME_AGENT" key show --key "$C1" && pass "the old key is kept"

# --all renews every certificate that is due (here: forced).
C2=$(key other)
run_agent 0 "${AGENT[@]}" issue --key "$C2" -d other.example.com --http-port "$HTTP"
run_agent 0 "${AGENT[@]}" --json renew --all --force \
  && expect "--all did not renew both" jq -e 'length == 2 and all(.renewed)' "$OUT" >/dev/null && pass "--all"
run_agent 3 "${AGENT[@]}" renew --name nosuch.example.com && contains "$ERR" "no certificate named"
run_agent 2 "${AGENT[@]}" renew && contains "$ERR" "--name NAME or --all"

# Alternate chains: pick the chain that ends under the second root by its CN.
curl -fsS --cacert "$PEBBLE_CA_FILE" "$PEBBLE_MGMT/roots/1" >"$WORK/root1.pem"
ALT_CN=$(openssl x509 -in "$WORK/root1.pem" -noout -subject -nameopt multiline | sed -n 's/ *commonName *= //p')
C3=$(key chain)
run_agent 0 "${AGENT[@]}" issue --key "$C3" -d chain.example.com --http-port "$HTTP" --preferred-chain "$ALT_CN"
CH=$STATE/live/chain.example.com
TOP_ISSUER=$(openssl crl2pkcs7 -nocrl -certfile "$CH/chain.pem" | openssl pkcs7 -print_certs -noout |
  sed -n 's/^issuer=.*CN = //p' | tail -1)
expect "top issuer $TOP_ISSUER, wanted $ALT_CN" [ "$TOP_ISSUER" = "$ALT_CN" ]
expect "chain length" [ "$(grep -c BEGIN "$CH/chain.pem")" -ge 2 ]
openssl verify -CAfile "$WORK/root1.pem" -untrusted "$CH/chain.pem" "$CH/cert.pem" >/dev/null && pass "preferred chain picked and verifies" \
  || fail "the preferred chain does not verify against $ALT_CN"
# An unknown preferred issuer: the default chain.
C4=$(key chain2)
run_agent 0 "${AGENT[@]}" issue --key "$C4" -d chain2.example.com --http-port "$HTTP" --preferred-chain "No Such CA" \
  && verify_cert "$STATE/live/chain2.example.com" "$C4" && pass "unknown preferred chain: the default one"
# Profiles: Pebble 2.4 offers none.
run_agent 2 "${AGENT[@]}" issue --key "$C4" -d p.example.com --http-port "$HTTP" --profile shortlived \
  && contains "$ERR" "offers no certificate profiles"
finish
