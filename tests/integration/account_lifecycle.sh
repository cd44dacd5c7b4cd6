#!/usr/bin/env bash
# The account and certificate lifecycle with every key in SoftHSM: revocation signed by
# the account key and by the certificate's own key, key roll-over HSM -> HSM (then the old
# key is refused and the new one works), contact update, deactivation (then issuing fails
# clearly), and External Account Binding with the MAC key in a file and inside the token.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
setup_hsm
setup_pebble
key() { "$ACME_AGENT" key generate --key "$(hsm_key "$1")" --type "${2:-ec-p256}"; }
ACCT=$(key acct)
run_agent 0 "${AGENT[@]}" account register --key "$ACCT" --agree-tos --email a@example.com
ACCOUNT_JSON=$(cat "$STATE"/accounts/*.json)

# enroll on a machine that has an account: the account is used, not replaced by a new one
# (its default account key would be a TPM key; there is no TPM here).
EN=$(key en)
run_agent 0 "${AGENT[@]}" --json enroll -d enroll.example.com --key "$EN" --http-port "$HTTP" &&
  expect "enroll used another account: $(cat "$OUT")" \
    jq -e --arg u "$(jq -r .url <<<"$ACCOUNT_JSON")" '.account == $u and .new_keys.account == false' "$OUT" >/dev/null &&
  expect "the stored account changed" [ "$(cat "$STATE"/accounts/*.json)" = "$ACCOUNT_JSON" ] &&
  pass "enroll reuses the account registered before"

# Revocation by the account key.
C1=$(key c1)
run_agent 0 "${AGENT[@]}" issue --key "$C1" -d r1.example.com --http-port "$HTTP"
S1=$(serial_of "$STATE/live/r1.example.com/cert.pem")
# issue for a name already in live/ with another key: refused, the command that does it named.
C1B=$(key c1b)
run_agent 2 "${AGENT[@]}" issue --key "$C1B" -d r1.example.com --http-port "$HTTP" &&
  contains "$ERR" "renew --name r1.example.com --new-key" && contains "$ERR" "--force" &&
  expect "live/r1.example.com replaced" [ "$(serial_of "$STATE/live/r1.example.com/cert.pem")" = "$S1" ] &&
  pass "issue does not silently replace a certificate on another key"
[ "$(cert_status "$S1")" = "Valid " ] || fail "fresh certificate not Valid: $(cert_status "$S1")"
run_agent 0 "${AGENT[@]}" revoke --cert "$STATE/live/r1.example.com/cert.pem" \
  && expect "Pebble says $(cert_status "$S1")" [ "$(cert_status "$S1" | cut -d' ' -f1)" = Revoked ] \
  && pass "revoked with the account key"
# Revocation by the certificate's own key (in the token), with a reason.
C2=$(key c2 rsa-2048)
run_agent 0 "${AGENT[@]}" issue --key "$C2" -d r2.example.com --http-port "$HTTP"
S2=$(serial_of "$STATE/live/r2.example.com/cert.pem")
run_agent 2 "${AGENT[@]}" revoke --cert "$STATE/live/r2.example.com/cert.pem" --with-cert-key --key "$C1" \
  && contains "$ERR" "not the key of the certificate"
run_agent 2 "${AGENT[@]}" revoke --cert "$STATE/live/r2.example.com/cert.pem" --reason nonsense \
  && contains "$ERR" "unknown reason"
run_agent 0 "${AGENT[@]}" revoke --cert "$STATE/live/r2.example.com/cert.pem" --with-cert-key --key "$C2" \
  --reason keyCompromise && expect "Pebble says $(cert_status "$S2")" [ "$(cert_status "$S2")" = "Revoked 1" ] \
  && pass "revoked with the certificate's own key"
# Revoking twice: the CA says alreadyRevoked, which is what was asked for: exit 0, said
# plainly (issue #21); a reason Let's Encrypt refuses is warned about.
run_agent 0 "${AGENT[@]}" revoke --cert "$STATE/live/r2.example.com/cert.pem" --with-cert-key --key "$C2" \
  --reason 3 && contains "$ERR" "already revoked" && contains "$ERR" "Let's Encrypt accepts only" \
  && pass "revoked twice: exit 0, 'already revoked'; reason 3 warned about"

# Contacts.
run_agent 0 "${AGENT[@]}" account update --email b@example.com --email c@example.com
run_agent 0 "${AGENT[@]}" --json account show && jq -e '.contact == ["mailto:b@example.com","mailto:c@example.com"]' "$OUT" >/dev/null \
  && pass "contacts updated" || fail "contacts: $(cat "$OUT")"

# Roll-over to another token key: the state follows only after the CA confirmed.
ACCT_URL=$(jq -r .url "$STATE"/accounts/*.json)
NEW=$(key acct-new ec-p384)
run_agent 0 "${AGENT[@]}" account rollover --new-key "$NEW" && contains "$OUT" "now uses"
[ "$(jq -r .key "$STATE"/accounts/*.json)" = "$NEW" ] || fail "state does not name the new key"
[ "$(jq -r .url "$STATE"/accounts/*.json)" = "$ACCT_URL" ] || fail "account URL changed"
C3=$(key c3)
run_agent 0 "${AGENT[@]}" issue --key "$C3" -d after-rollover.example.com --http-port "$HTTP" && pass "new key works"
run_agent 3 "${AGENT[@]}" account show --account-key "$ACCT" && contains "$ERR" "no account for this key" \
  && pass "old key refused by the CA"
run_agent 2 "${AGENT[@]}" account rollover --new-key "$NEW" && contains "$ERR" "current key"

# key delete of a key a certificate uses: not without a terminal unless --yes, and named;
# on a terminal it asks (y/N).
run_agent 2 "${AGENT[@]}" key delete --key "$C3" && contains "$ERR" "--yes" && contains "$ERR" "after-rollover.example.com"
run_agent 0 "${AGENT[@]}" key show --key "$C3"
DELETE=$(printf '%q ' "${AGENT[@]}" key delete --key "$C3")
rc=0; printf 'n\n' | script -qec "$DELETE" /dev/null >"$WORK/tty.out" 2>&1 || rc=$?
expect "answer n: exit $rc" [ "$rc" = 2 ] && contains "$WORK/tty.out" "after-rollover.example.com" &&
  contains "$WORK/tty.out" "[y/N]" && run_agent 0 "${AGENT[@]}" key show --key "$C3"
rc=0; printf 'y\n' | script -qec "$DELETE" /dev/null >"$WORK/tty.out" 2>&1 || rc=$?
expect "answer y: exit $rc: $(cat "$WORK/tty.out")" [ "$rc" = 0 ] && run_agent 3 "${AGENT[@]}" key show --key "$C3" &&
  pass "key delete asks on a terminal, names the certificates using the key, refuses without one"

# Deactivation: final, so not without a terminal unless --yes; issuing afterwards fails
# with the CA's reason.
run_agent 2 "${AGENT[@]}" account deactivate && contains "$ERR" "--yes"
run_agent 0 "${AGENT[@]}" --json account show && expect "account not valid: $(cat "$OUT")" jq -e '.status == "valid"' "$OUT" >/dev/null
run_agent 0 "${AGENT[@]}" account deactivate --yes && contains "$OUT" "deactivated"
C4=$(key c4)
run_agent 14 "${AGENT[@]}" issue --key "$C4" -d dead.example.com --http-port "$HTTP" \
  && contains "$ERR" "deactivated" && pass "a deactivated account cannot issue"
[ ! -e "$STATE/live/dead.example.com" ] || fail "certificate dir written for a refused order"

# External Account Binding on a Pebble that requires it.
MAC=$(openssl rand 32 | basenc --base64url | tr -d '=\n')
printf '%s' "$MAC" >"$WORK/eab.key"; chmod 600 "$WORK/eab.key"
PEBBLE_EAB_KEYS="kid-1=$MAC" setup_pebble pebble-eab
E1=$(key eab1)
run_agent 2 "${AGENT[@]}" account register --key "$E1" --agree-tos && contains "$ERR" "External Account Binding"
run_agent 14 "${AGENT[@]}" account register --key "$E1" --agree-tos --eab-kid kid-unknown --eab-hmac-key "$WORK/eab.key"
run_agent 0 "${AGENT[@]}" account register --key "$E1" --agree-tos --eab-kid kid-1 --eab-hmac-key "$WORK/eab.key" \
  && pass "EAB with the MAC key in a file"
lacks "$ERR" "$MAC"
# The same key with its '=' padding, as some CAs hand it out: accepted (issue #21).
printf '%s=\n' "$MAC" >"$WORK/eab-padded.key"; chmod 600 "$WORK/eab-padded.key"
E3=$(key eab3)
run_agent 0 "$ACME_AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --state-dir "$WORK/state-eab3" \
  account register --key "$E3" --agree-tos --eab-kid kid-1 --eab-hmac-key "$WORK/eab-padded.key" \
  && pass "EAB MAC key with '=' padding accepted"
# ... and with the MAC key inside the token, where it is sensitive and never leaves.
run_agent 0 "$ACME_AGENT" key import-hmac --key "$(hsm_key eab-mac)" --from "$WORK/eab.key"
HMAC_URI=$(cat "$OUT")
run_agent 4 "$ACME_AGENT" key import-hmac --key "$(hsm_key eab-mac)" --from "$WORK/eab.key"
E2=$(key eab2)
rm -rf "$STATE"
run_agent 0 "${AGENT[@]}" account register --key "$E2" --agree-tos --eab-kid kid-1 --eab-hmac-key "$HMAC_URI" \
  && pass "EAB with the HMAC computed inside the token"
# The read must fail because the token refuses the value, not because pkcs11-tool could not
# log in or find the object (that would prove nothing).
if pkcs11-tool --module "$ACME_AGENT_PKCS11_MODULE" --login --pin "$(cat "$PIN_FILE")" --read-object \
  --type secrkey --label eab-mac >/dev/null 2>"$WORK/read.err"; then
  fail "the HMAC key value could be read from the token"
else
  contains "$WORK/read.err" "CKR_ATTRIBUTE_SENSITIVE" && pass "the HMAC key's value stays in the token (sensitive)"
fi
finish
