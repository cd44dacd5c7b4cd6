#!/usr/bin/env bash
# One issuance end to end with both keys in a second PKCS#11 implementation: tpm2-pkcs11
# (keys inside swtpm, behind tpm2-abrmd; scripts/tpm2-pkcs11-setup.sh), an EC account key
# and an RSA certificate key (RSA signs there with CKM_SHA256_RSA_PKCS: docs/hsm.md's
# compatibility table). The certificate verifies against Pebble's root and carries the
# token key's public key; the keys say they are sensitive, never extractable, sign only.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
trap '"$SCRIPTS/tpm2-pkcs11-down.sh" "$WORK/tpm2" >/dev/null 2>&1; cleanup' EXIT
run_setup "ACME_AGENT_TPM2_PKCS11_TOKEN_URI TPM2_PKCS11_STORE" "$SCRIPTS/tpm2-pkcs11-setup.sh" "$WORK/tpm2" tpm
[ "$TPM2_PKCS11_TCTI" = tabrmd:bus_type=session ] || { fail "TPM2_PKCS11_TCTI=$TPM2_PKCS11_TCTI"; finish; }
setup_pebble
T=$ACME_AGENT_TPM2_PKCS11_TOKEN_URI
key() { echo "${T/\?/;object=$1?}"; }

run_agent 0 "$ACME_AGENT" key generate --key "$(key acct)" --type ec-p256 && ACCT=$(cat "$OUT")
run_agent 0 "$ACME_AGENT" key generate --key "$(key www)" --type rsa-2048 && CERT=$(cat "$OUT")
for k in "$ACCT" "$CERT"; do
  run_agent 0 "$ACME_AGENT" --json key show --key "$k" &&
    expect "$k: $(jq -c .properties "$OUT")" jq -e '.properties | .sensitive == "true" and
      .extractable == "false" and ."never-extractable" == "true" and .usage == "sign" and
      .manufacturer == "IBM"' "$OUT" >/dev/null
done
run_agent 0 "${AGENT[@]}" account register --key "$ACCT" --agree-tos &&
  run_agent 0 "${AGENT[@]}" issue --key "$CERT" -d tpm2pkcs11.example.com --http-port "$HTTP" &&
  verify_cert "$STATE/live/tpm2pkcs11.example.com" "$CERT" &&
  pass "tpm2-pkcs11: EC account key and RSA certificate key in the TPM, certificate issued"
finish
