#!/usr/bin/env bash
# TPM 2.0 (swtpm) end to end: the account key at a persistent handle, the device key in a
# TSS2 key file; issuance from Pebble; the key file signs with openssl's tpm2 provider and
# that signature verifies under the certificate's public key. Mixed: account key in SoftHSM
# and certificate key in the TPM, and the other way round. enroll twice -> one key, same
# certificate; enroll after the certificate was removed -> a new certificate, same key.
# swtpm stopped -> a clear error and its exit code, key files intact.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
setup_hsm
setup_tpm
setup_pebble
HTTP=127.0.0.1:$PEBBLE_HTTP_PORT
A=$ACME_AGENT

run_agent 0 "$A" key generate --key "tpm2:handle=0x81000010" --type ec-p384 && ACCT=$(cat "$OUT")
run_agent 0 "$A" key generate --key "tpm2:path=$WORK/device.tss" --type ec-p256 && DEV=$(cat "$OUT")
run_agent 4 "$A" key generate --key "tpm2:path=$WORK/device.tss" --type ec-p256
run_agent 0 "$A" --json key show --key "$DEV"
for kv in '"fixedTPM": "true"' '"sign": "true"' '"decrypt": "false"' '"sensitiveDataOrigin": "true"'; do contains "$OUT" "$kv"; done
run_agent 0 "${AGENT[@]}" account register --key "$ACCT" --agree-tos
run_agent 0 "${AGENT[@]}" issue --key "$DEV" -d device1.example.com --http-port "$HTTP" \
  && verify_cert "$STATE/live/device1.example.com" "$DEV" && pass "TPM account key (handle) + TPM device key (file)"

# The key file is a standard TSS2 key: openssl's tpm2 provider signs with it.
printf 'hello from the TPM' >"$WORK/msg"
openssl x509 -in "$STATE/live/device1.example.com/cert.pem" -noout -pubkey >"$WORK/cert-pub.pem"
if TPM2OPENSSL_TCTI=$ACME_AGENT_TCTI openssl pkeyutl -provider tpm2 -provider default -sign -inkey "$WORK/device.tss" \
     -rawin -digest sha256 -in "$WORK/msg" -out "$WORK/sig" 2>"$WORK/ossl.err"; then
  openssl pkeyutl -verify -pubin -inkey "$WORK/cert-pub.pem" -rawin -digest sha256 -in "$WORK/msg" -sigfile "$WORK/sig" \
    >/dev/null && pass "the TSS2 file signs with openssl -provider tpm2; verifies under the certificate" \
    || fail "openssl's signature does not verify under the certificate's key"
else
  fail "openssl -provider tpm2 cannot sign with the key file: $(cat "$WORK/ossl.err")"
fi

# Mixed: account in SoftHSM, certificate key in the TPM ...
HSM_ACCT=$("$A" key generate --key "$(hsm_key acct)" --type ec-p256)
run_agent 0 "$A" key generate --key "tpm2:path=$WORK/mixed1.tss" --type rsa-2048 && M1=$(cat "$OUT")
run_agent 0 "${AGENT[@]}" issue --account-key "$HSM_ACCT" --agree-tos --key "$M1" -d mixed1.example.com --http-port "$HTTP" \
  && verify_cert "$STATE/live/mixed1.example.com" "$M1" && pass "SoftHSM account, TPM certificate key"
# ... and the other way round.
M2=$("$A" key generate --key "$(hsm_key mixed2)" --type ec-p256)
run_agent 0 "${AGENT[@]}" issue --account-key "$ACCT" --key "$M2" -d mixed2.example.com --http-port "$HTTP" \
  && verify_cert "$STATE/live/mixed2.example.com" "$M2" && pass "TPM account, SoftHSM certificate key"

# Roll-over from a key in the HSM to a key in the TPM: the old key is refused after it.
R1=$("$A" key generate --key "$(hsm_key roll-from)" --type ec-p256)
run_agent 0 "$A" key generate --key "tpm2:path=$WORK/roll-to.tss" --type ec-p256 && R2=$(cat "$OUT")
run_agent 0 "${AGENT[@]}" account register --key "$R1" --agree-tos
run_agent 0 "${AGENT[@]}" account rollover --new-key "$R2"
R3=$("$A" key generate --key "$(hsm_key after-roll)" --type ec-p256)
run_agent 0 "${AGENT[@]}" issue --key "$R3" -d rolled.example.com --http-port "$HTTP" \
  && run_agent 3 "${AGENT[@]}" account show --account-key "$R1" && pass "roll-over HSM -> TPM; the old key is refused"

# enroll: first boot makes the keys and the certificate; later boots do nothing.
E=("$A" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --state-dir "$WORK/device-state")
run_agent 0 "${E[@]}" --json enroll -d sensor-7.example.com --agree-tos --http-port "$HTTP" \
  && expect "first enroll made no keys" jq -e '.issued and .new_keys.account and .new_keys.device' "$OUT" >/dev/null
KEYFILE=$WORK/device-state/keys/sensor-7.example.com.tss
SUM=$(sha256sum "$KEYFILE" "$WORK/device-state/keys/account.tss")
CERT1=$(cat "$WORK/device-state/live/sensor-7.example.com/cert.pem")
run_agent 0 "${E[@]}" --json enroll -d sensor-7.example.com --agree-tos --http-port "$HTTP" \
  && expect "second enroll issued" jq -e '.issued == false' "$OUT" >/dev/null && contains "$OUT" "not_after"
expect "a key changed" [ "$(sha256sum "$KEYFILE" "$WORK/device-state/keys/account.tss")" = "$SUM" ]
expect "the certificate changed" [ "$(cat "$WORK/device-state/live/sensor-7.example.com/cert.pem")" = "$CERT1" ]
expect "more key files" [ "$(ls "$WORK/device-state/keys" | wc -l)" -eq 2 ]
pass "enroll twice: one key, same certificate"
rm -rf "$WORK/device-state/live/sensor-7.example.com"
run_agent 0 "${E[@]}" --json enroll -d sensor-7.example.com --agree-tos --http-port "$HTTP" \
  && expect "no new certificate" jq -e '.issued and (.new_keys.device | not) and (.new_keys.account | not)' "$OUT" >/dev/null \
  && verify_cert "$WORK/device-state/live/sensor-7.example.com" "tpm2:path=$KEYFILE" \
  && pass "certificate removed: a new one for the same device key"
expect "the key file changed" [ "$(sha256sum "$KEYFILE" "$WORK/device-state/keys/account.tss")" = "$SUM" ]

# A key made with tpm2-tools without fixedTPM/fixedParent (it can be duplicated to another
# TPM): shown as weak, refused as a certificate key (before any request) unless
# --allow-weak-key.
(cd "$WORK" && tpm2_createprimary -C o -c prim.ctx && tpm2_evictcontrol -C o -c prim.ctx 0x81000020 &&
  tpm2_flushcontext -t && tpm2_create -C 0x81000020 -G ecc256:ecdsa-sha256 -u weak.pub -r weak.priv \
    -a "sign|userwithauth|sensitivedataorigin" && tpm2_flushcontext -t &&
  tpm2_encodeobject -C 0x81000020 -u weak.pub -r weak.priv -o weak.tss) >"$WORK/tpm2-tools.log" 2>&1 ||
  fail "tpm2-tools: $(cat "$WORK/tpm2-tools.log")"
: >"$WORK/empty.auth" && chmod 600 "$WORK/empty.auth"
WEAK="tpm2:path=$WORK/weak.tss?pin-source=file:$WORK/empty.auth"
run_agent 0 "$A" --json key show --key "$WEAK" &&
  expect "weak: $(jq -c .weak "$OUT")" jq -e '.weak == ["fixedTPM is not set", "fixedParent is not set"]' "$OUT" >/dev/null
run_agent 2 "${AGENT[@]}" issue --key "$WEAK" -d weak.example.com --http-port "$HTTP" && contains "$ERR" "fixedTPM is not set"
run_agent 0 "${AGENT[@]}" issue --key "$WEAK" -d weak.example.com --http-port "$HTTP" --allow-weak-key &&
  pass "a TPM key without fixedTPM/fixedParent: refused unless --allow-weak-key"

# swtpm gone: its own exit code and message; key files intact.
"$SCRIPTS/swtpm-down.sh" "$WORK/swtpm" >/dev/null
BEFORE=$(sha256sum "$WORK/device.tss")
run_agent 6 "$A" key show --key "$DEV" && contains "$ERR" "swtpm"
run_agent 6 "${AGENT[@]}" issue --key "$DEV" -d gone.example.com --http-port "$HTTP"
expect "the key file changed after the TPM vanished" [ "$(sha256sum "$WORK/device.tss")" = "$BEFORE" ]
pass "TPM gone: exit 6, key files intact"
finish
