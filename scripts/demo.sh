#!/usr/bin/env bash
# The main job, on a fresh Debian 12 machine: install what is missing, build, make a
# fresh SoftHSM token, start a local Pebble CA, generate the account key and the
# certificate key INSIDE the token, register, issue a certificate over http-01, show it
# together with the token's own word that the key is sensitive and never extractable,
# then stop Pebble. Key types: ACCOUNT_KEY_TYPE / CERT_KEY_TYPE (default ec-p256).
# ACME_AGENT=BINARY uses that build instead of building; DEMO_DIR (default build/demo) is
# where the token, Pebble and the state dir go (tests/integration/quickstart.sh sets both).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${ACME_AGENT:-}" ]; then
  bash scripts/build.sh
  ACME_AGENT=$PWD/build/agent/acme-agent
fi
A=$ACME_AGENT
WORK=${DEMO_DIR:-$PWD/build/demo}
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'scripts/pebble-down.sh "$WORK/pebble" >/dev/null 2>&1 || true' EXIT

step() { printf '\n== %s\n' "$*"; }
step "a fresh SoftHSM token"
eval "$(scripts/softhsm-setup.sh "$WORK/hsm" demo 2>/dev/null)"
echo "$ACME_AGENT_TOKEN_URI"
step "a local Pebble ACME CA"
eval "$(PEBBLE_VA_NOSLEEP=1 scripts/pebble-up.sh "$WORK/pebble" 2>/dev/null)"
echo "$PEBBLE_URL"
AGENT=("$A" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --state-dir "$WORK/state")

step "keys generated inside the token"
ACCOUNT_KEY=$("$A" key generate --key "${ACME_AGENT_TOKEN_URI/\?/;object=account?}" --type "${ACCOUNT_KEY_TYPE:-ec-p256}")
CERT_KEY=$("$A" key generate --key "${ACME_AGENT_TOKEN_URI/\?/;object=www?}" --type "${CERT_KEY_TYPE:-ec-p256}")
echo "account key:     $ACCOUNT_KEY"
echo "certificate key: $CERT_KEY"

step "account"
"${AGENT[@]}" account register --key "$ACCOUNT_KEY" --agree-tos --email admin@demo.example
step "issue over http-01"
"${AGENT[@]}" issue --key "$CERT_KEY" -d demo.example -d www.demo.example --http-port "127.0.0.1:$PEBBLE_HTTP_PORT"

step "the certificate"
CERT=$WORK/state/live/demo.example/cert.pem
openssl x509 -in "$CERT" -noout -subject -issuer -dates -ext subjectAltName
echo "key: $(cat "$WORK/state/live/demo.example/key.uri")"
curl -fsS --cacert "$PEBBLE_CA_FILE" "$PEBBLE_MGMT/roots/0" >"$WORK/root.pem"
openssl verify -CAfile "$WORK/root.pem" -untrusted "$WORK/state/live/demo.example/chain.pem" "$CERT"

step "what the token says about the certificate key"
"$A" key show --key "$CERT_KEY" | grep -E '^(algorithm|token|sensitive|always-sensitive|extractable|never-extractable|usage|private-value-readable):'
step "done: Pebble stopped; files in $WORK/state/live/demo.example/"
