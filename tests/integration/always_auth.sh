#!/usr/bin/env bash
# Keys that want the PIN before every signature (CKA_ALWAYS_AUTHENTICATE, as smart cards
# and PIV slot 9c keys are): SoftHSM honours it, failing C_Sign with CKR_USER_NOT_LOGGED_IN
# unless C_Login(CKU_CONTEXT_SPECIFIC) follows C_SignInit. The JWS (account key), the CSR
# and a revocation signed by the certificate key all go through that login.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
setup_hsm
setup_pebble

# A key made by another tool (pkcs11-tool) with --always-auth is the account key: every
# JWS of register and issue needs the per-signature login.
P11=(pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label acme --login
  --pin "$(cat "$PIN_FILE")")
"${P11[@]}" --keypairgen --key-type EC:prime256v1 --label acct-aa --id a1 --always-auth \
  --sensitive --usage-sign >"$WORK/p11.out" 2>&1 || fail "pkcs11-tool --keypairgen: $(cat "$WORK/p11.out")"
ACCT=$(hsm_key acct-aa)
run_agent 0 "$ACME_AGENT" --json key show --key "$ACCT" &&
  expect "key show reports always-authenticate for pkcs11-tool's key" \
    jq -e '.properties["always-authenticate"] == "true"' "$OUT" >/dev/null
# pkcs11-tool's key may also decrypt and unwrap, whatever --usage-sign says: accepted here
# with --allow-weak-key (that refusal is cli_keys.sh's), on every command that signs with it.
AGENT+=(--allow-weak-key)
run_agent 0 "${AGENT[@]}" account register --key "$ACCT" --agree-tos && pass "register with an always-authenticate account key"

# key generate --always-auth: the token says so, and so does key show.
CERT=$("$ACME_AGENT" key generate --key "$(hsm_key cert-aa)" --type ec-p384 --always-auth)
"${P11[@]}" --list-objects --type privkey --label cert-aa >"$WORK/objs" 2>&1 ||
  fail "pkcs11-tool --list-objects: $(cat "$WORK/objs")"
contains "$WORK/objs" "always authenticate"
run_agent 0 "$ACME_AGENT" --json key show --key "$CERT" &&
  expect "key show reports always-authenticate" \
    jq -e '.properties["always-authenticate"] == "true"' "$OUT" >/dev/null
# ...and a key made without the flag says false (the property is read, not assumed).
PLAIN=$("$ACME_AGENT" key generate --key "$(hsm_key plain)" --type ec-p256)
run_agent 0 "$ACME_AGENT" --json key show --key "$PLAIN" &&
  expect "key show reports always-authenticate false for a plain key" \
    jq -e '.properties["always-authenticate"] == "false"' "$OUT" >/dev/null

# The CSR signed by the always-authenticate certificate key.
run_agent 0 "${AGENT[@]}" issue --key "$CERT" -d aa.example.com --http-port "$HTTP" &&
  verify_cert "$STATE/live/aa.example.com" "$CERT" && pass "issue with always-authenticate keys"

# A revocation signed by the certificate key itself.
SERIAL=$(serial_of "$STATE/live/aa.example.com/cert.pem")
run_agent 0 "${AGENT[@]}" revoke --cert "$STATE/live/aa.example.com/cert.pem" --with-cert-key \
  --key "$CERT" && pass "revoke --with-cert-key with an always-authenticate key"
status=$(cert_status "$SERIAL")
[[ $status == Revoked* ]] || fail "Pebble says '$status' of the revoked serial"

# Backends without the attribute refuse the flag instead of making a key without it.
run_agent 9 "$ACME_AGENT" key generate --key "file:$WORK/k.pem" --type ec-p256 --always-auth &&
  contains "$ERR" "always-authenticate"
[ ! -e "$WORK/k.pem" ] || fail "a file: key was made without the attribute asked for"

finish
