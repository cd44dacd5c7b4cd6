#!/usr/bin/env bash
# The key commands against a fresh SoftHSM token: every error a user will hit gets its
# message and exit code, the token stays untouched, and the PIN never shows.
source "$(dirname "$0")/lib.sh"
SECRET_PIN=pin-Secret-4711
SOFTHSM_PIN=$SECRET_PIN setup_hsm
A=$ACME_AGENT

run_agent 0 "$A" key generate --key "$(hsm_key acct)" --type ec-p256 && contains "$OUT" "object=acct;id=%"
ACCT=$(cat "$OUT")
run_agent 0 "$A" --json key show --key "$ACCT"
for kv in '"sensitive": "true"' '"always-sensitive": "true"' '"extractable": "false"' \
          '"never-extractable": "true"' '"usage": "sign"' '"private-value-readable": "false"'; do
  contains "$OUT" "$kv"
done
jq -e '.jwk_thumbprint | length == 43' "$OUT" >/dev/null || fail "thumbprint"
jq -e '.weak == [] and .allow_weak_key == false' "$OUT" >/dev/null || fail "a generated key shown as weak: $(jq -c .weak "$OUT")"
pass "generate + show report a sensitive, non-extractable, sign-only key"

LIST_BEFORE=$("$A" key list --key "$TOKEN")

# Existing label: exit 4, nothing changed.
run_agent 4 "$A" key generate --key "$(hsm_key acct)" --type rsa-2048 && contains "$ERR" "already holds an object with object=acct"
# Unknown algorithm: exit 2 naming the choices.
run_agent 2 "$A" key generate --key "$(hsm_key other)" --type ec-p521 && contains "$ERR" "unknown algorithm 'ec-p521'"
# Malformed URIs: exit 2 naming the attribute.
run_agent 2 "$A" key show --key "pkcs11:token=acme;colour=blue" && contains "$ERR" "unknown path attribute 'colour'"
run_agent 2 "$A" key show --key "pkcs11:token=a;token=b" && contains "$ERR" "attribute 'token' is repeated"
run_agent 2 "$A" key show --key "pkcs11:object=%4" && contains "$ERR" "percent-escape"
run_agent 2 "$A" key show --key "ldap:x" && contains "$ERR" "unknown scheme 'ldap:'"
# Token not found: exit 5, the tokens that are there listed.
run_agent 5 "$A" key list --key "${TOKEN/token=acme/token=nope}" && contains "$ERR" "tokens present: 'acme'"
# A module that will not load: exit 6.
run_agent 6 "$A" key list --key "pkcs11:token=acme?module-path=/nonexistent/libnothing.so&pin-source=file:$PIN_FILE" \
  && contains "$ERR" "cannot load /nonexistent/libnothing.so"
# Missing key: exit 3.
run_agent 3 "$A" key show --key "$(hsm_key nosuchkey)" && contains "$ERR" "no private key with object=nosuchkey"
# A PIN file others can read: exit 2, told how to fix it.
cp "$PIN_FILE" "$WORK/loose.pin"; chmod 644 "$WORK/loose.pin"
run_agent 2 "$A" key list --key "pkcs11:token=acme?module-path=$ACME_AGENT_PKCS11_MODULE&pin-source=file:$WORK/loose.pin" \
  && contains "$ERR" "chmod 600"
# Wrong PIN: exit 7, said once.
printf 'wrong-pin' >"$WORK/wrong.pin"; chmod 600 "$WORK/wrong.pin"
run_agent 7 "$A" key show --key "pkcs11:token=acme;object=acct?module-path=$ACME_AGENT_PKCS11_MODULE&pin-source=file:$WORK/wrong.pin" \
  && contains "$ERR" "wrong PIN for token 'acme'"
# No PIN source and no terminal: exit 2, told where a PIN comes from.
run_agent 2 "$A" key show --key "pkcs11:token=acme;object=acct?module-path=$ACME_AGENT_PKCS11_MODULE" \
  && contains "$ERR" "pin-source=file:PATH"
# pin-value on the command line (ps shows it to everyone): exit 2, the fix named, never echoed.
run_agent 2 "$A" key show --key "pkcs11:token=acme;object=acct?module-path=$ACME_AGENT_PKCS11_MODULE&pin-value=$SECRET_PIN" \
  && contains "$ERR" "pin-source=file:" && lacks "$OUT" "$SECRET_PIN" && lacks "$ERR" "$SECRET_PIN"
# --json errors carry the code.
run_agent 5 "$A" --json key list --key "${TOKEN/token=acme/token=nope}" && jq -e '.error.code == "token_absent"' "$OUT" >/dev/null \
  || fail "json error"

[ "$LIST_BEFORE" = "$("$A" key list --key "$TOKEN")" ] || fail "the token changed after failed commands"
pass "each error has its message and exit code; the token is untouched"

# The PIN never appears in anything printed (all outputs of this test so far).
"$A" -v key show --key "$ACCT" >"$WORK/v.out" 2>&1
for f in "$WORK"/v.out "$OUT" "$ERR"; do lacks "$f" "$SECRET_PIN"; done

# A key made elsewhere that can leave the token and decrypt: shown as weak, refused as an
# account or certificate key (before any request: the server is unreachable on purpose)
# unless --allow-weak-key, before or after the command.
pkcs11-tool --module "$ACME_AGENT_PKCS11_MODULE" --login --pin "$SECRET_PIN" --keypairgen \
  --key-type EC:prime256v1 --label weak --id 7e --usage-sign --usage-decrypt --extractable >"$WORK/p11.out" 2>&1 ||
  fail "pkcs11-tool: $(cat "$WORK/p11.out")"
WEAK="pkcs11:token=acme;object=weak?module-path=$ACME_AGENT_PKCS11_MODULE&pin-source=file:$PIN_FILE"
run_agent 0 "$A" --json key show --key "$WEAK" &&
  expect "key show --json weak: $(jq -c .weak "$OUT")" jq -e '.weak == ["extractable", "may decrypt", "may unwrap"]' "$OUT" >/dev/null
run_agent 0 "$A" key show --key "$WEAK" && contains "$OUT" "extractable, may decrypt, may unwrap (refused as an account or certificate key without --allow-weak-key)"
run_agent 0 "$A" key show --key "$WEAK" --allow-weak-key --json &&
  expect "allow_weak_key recorded" jq -e '.allow_weak_key == true' "$OUT" >/dev/null
NOWHERE=(--server https://127.0.0.1:1/dir --state-dir "$STATE")
run_agent 2 "$A" "${NOWHERE[@]}" issue --key "$WEAK" -d weak.example.com --http-port 127.0.0.1:0 &&
  contains "$ERR" "weak key: extractable, may decrypt" && contains "$ERR" "--allow-weak-key"
run_agent 2 "$A" "${NOWHERE[@]}" account register --key "$WEAK" --agree-tos && contains "$ERR" "weak key"
# With the override the key is accepted: the next step (no account stored) fails instead.
run_agent 3 "$A" "${NOWHERE[@]}" issue --key "$WEAK" -d weak.example.com --http-port 127.0.0.1:0 --allow-weak-key &&
  contains "$ERR" "no account"
pass "a weak token key: named in key show, refused unless --allow-weak-key"

# delete: irreversible, so not without a terminal unless --yes; then it is gone
run_agent 2 "$A" key delete --key "$ACCT" && contains "$ERR" "--yes"
run_agent 0 "$A" key show --key "$ACCT"
run_agent 0 "$A" key delete --key "$ACCT" --yes
run_agent 3 "$A" key show --key "$ACCT"
# help on every command
for c in "" "key" "key generate" "key list" "key show" "key delete" "account" "account register" \
         "account show" "issue"; do
  # shellcheck disable=SC2086
  run_agent 0 "$A" $c --help && contains "$OUT" "Usage" || fail "--help of '$c'"
done
run_agent 0 "$A" --version && grep -q "^acme-agent " "$OUT" || fail "--version: $(cat "$OUT")"
pass "delete, --help, --version"
finish
