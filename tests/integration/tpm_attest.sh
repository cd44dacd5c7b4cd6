#!/usr/bin/env bash
# key attest (issue #19 item 5) on swtpm provisioned like a chip from the factory: an EK
# certificate from a local CA (swtpm_setup --create-ek-cert with swtpm_localca) and the
# CA's intermediate in the EK chain NV index 0x01c00100. The evidence is checked by
# tpm_attest_verify.py, a verifier that shares no code with the agent: certInfo's magic,
# type, nonce and certified name, the AK's signature, the key's fixedTPM / fixedParent /
# sensitiveDataOrigin, the EK chain to the CA's root. Negative: a wrong nonce, a tampered
# certInfo, a key and an AK from another TPM. Bad input: exit 2 (usage), a non-TPM key
# exit 9 (unsupported).
source "$(dirname "$0")/lib.sh"
VERIFY=(python3 "$(dirname "$0")/tpm_attest_verify.py")
A=$ACME_AGENT
CA=$WORK/ca

# provision_tpm: a new TPM state in $WORK/swtpm/state with an EK certificate from $CA,
# then swtpm on it (setup_tpm) and the CA's intermediate in the EK chain index.
mkdir -p "$CA"
cat >"$WORK/localca.conf" <<EOF
statedir = $CA
signingkey = $CA/signkey.pem
issuercert = $CA/issuercert.pem
certserial = $CA/certserial
EOF
cat >"$WORK/swtpm_setup.conf" <<EOF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $WORK/localca.conf
create_certs_tool_options = /etc/swtpm-localca.options
active_pcr_banks = sha256
EOF
provision_tpm() {
  rm -rf "$WORK/swtpm" && mkdir -p "$WORK/swtpm/state"
  swtpm_setup --tpm2 --tpmstate "$WORK/swtpm/state" --create-ek-cert --create-platform-cert \
    --config "$WORK/swtpm_setup.conf" >"$WORK/swtpm_setup.log" 2>&1 ||
    { fail "swtpm_setup: $(tail -n 5 "$WORK/swtpm_setup.log")"; finish; }
  setup_tpm
  openssl x509 -in "$CA/issuercert.pem" -outform DER -out "$WORK/issuer.der"
  tpm2_nvdefine 0x01c00100 -C o -s "$(stat -c %s "$WORK/issuer.der")" \
    -a "ownerwrite|ownerread|authread|no_da" >/dev/null &&
    tpm2_nvwrite 0x01c00100 -C o -i "$WORK/issuer.der" ||
    { fail "cannot write the EK chain index"; finish; }
}
provision_tpm
ROOT=$CA/swtpm-localca-rootca-cert.pem
NONCE=$(openssl rand -hex 32)

run_agent 0 "$A" key generate --key "tpm2:path=$WORK/dev.tss" --type ec-p256 && DEV=$(cat "$OUT")
run_agent 0 "$A" --json key show --key "$DEV" &&
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["public_key_pem"], end="")' "$OUT" >"$WORK/dev.pub"

# CBOR to a file: every check passes; the AK is recorded as a registry would at enrollment.
run_agent 0 "$A" key attest --key "$DEV" --nonce "$NONCE" --out "$WORK/dev.cbor" &&
  contains "$OUT" "wrote $WORK/dev.cbor (cbor" && contains "$OUT" "EK certificate from NV 0x01c00002"
if out=$("${VERIFY[@]}" "$WORK/dev.cbor" --nonce "$NONCE" --ca "$ROOT" --expect-key "$WORK/dev.pub" \
  --save-ak "$WORK/ak.enrolled" 2>&1); then
  expect "EK cert + intermediate in x5c: $out" grep -q 'ek-chain=2' <<<"$out" &&
    pass "CBOR evidence verifies: nonce, certified name, AK signature, attributes, EK chain"
else
  fail "CBOR evidence does not verify: $out"
fi

# Nothing left loaded: swtpm has 3 object slots and no resource manager here.
left=$(tpm2_getcap handles-transient)
expect "transient objects left in the TPM: $left" test -z "$left" && pass "no transient object left (AK flushed)"

# JSON (--format json), an RSA key at a persistent handle with an auth value (HMAC session).
printf 'key-secret' >"$WORK/key.auth" && chmod 600 "$WORK/key.auth"
run_agent 0 "$A" key generate --key "tpm2:handle=0x81000020?pin-source=file:$WORK/key.auth" \
  --type rsa-2048 && RSA=$(cat "$OUT")
run_agent 0 "$A" key attest --key "$RSA" --nonce "$NONCE" --format json --out "$WORK/rsa.json"
out=$("${VERIFY[@]}" "$WORK/rsa.json" --nonce "$NONCE" --ca "$ROOT" --expect-ak "$WORK/ak.enrolled" 2>&1) &&
  pass "JSON evidence for an RSA key with an auth value verifies ($out)" ||
  fail "JSON evidence does not verify: $out"

# stdout: --json carries attObj (base64url CBOR, the device-attest challenge's field).
run_agent 0 "$A" --json key attest --key "$DEV" --nonce "$NONCE" &&
  contains "$OUT" '"ek_certificate": "0x01c00002"' &&
  python3 -c 'import json,sys,base64; s=json.load(open(sys.argv[1]))["attObj"]; sys.stdout.buffer.write(base64.urlsafe_b64decode(s+"="*(-len(s)%4)))' \
    "$OUT" >"$WORK/stdout.cbor" &&
  out=$("${VERIFY[@]}" "$WORK/stdout.cbor" --nonce "$NONCE" --ca "$ROOT" 2>&1) &&
  pass "--json attObj verifies" || fail "--json attObj: ${out:-no attObj}"

# Negative cases: each must fail verification, for the reason named.
refused() { # refused WHAT REASON VERIFY-ARGS...
  local what=$1 reason=$2 out
  shift 2
  if out=$("${VERIFY[@]}" "$@" 2>&1); then fail "$what verified: $out"
  elif grep -qF -- "$reason" <<<"$out"; then pass "$what: refused ($out)"
  else fail "$what: refused for another reason than '$reason': $out"; fi
}
refused "a wrong nonce" "not our nonce" "$WORK/dev.cbor" --nonce "$(openssl rand -hex 32)" --ca "$ROOT"
# The last byte of certInfo (the end of the certified qualifiedName) flipped; CBOR length
# and framing stay as they were.
python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); i=b.index(b"\x68certInfo")+9
n=int.from_bytes(b[i+1:i+3],"big") if b[i]==0x59 else b[i]-0x40 if b[i]<0x58 else b[i+1]
s=i+(3 if b[i]==0x59 else 2 if b[i]==0x58 else 1); b[s+n-1]^=1; open(sys.argv[2],"wb").write(b)' \
  "$WORK/dev.cbor" "$WORK/tampered.cbor"
refused "a tampered certInfo" "sig does not verify" "$WORK/tampered.cbor" --nonce "$NONCE" --ca "$ROOT"

# Bad input: usage errors before the TPM is asked; a non-TPM key: unsupported.
for bad in zz "" "$(printf '%0130d' 0)" 123; do
  run_agent 2 "$A" key attest --key "$DEV" --nonce "$bad" && contains "$ERR" "--nonce"
done
pass "a nonce that is not hex, empty, over 64 bytes or odd: exit 2"
run_agent 0 "$A" key generate --key "file:$WORK/soft.pem" --type ec-p256
run_agent 9 "$A" key attest --key "file:$WORK/soft.pem" --nonce "$NONCE" &&
  contains "$ERR" "give a tpm2: key" && pass "a file: key: exit 9, naming tpm2:"

# Another TPM (a new state: other seeds, its own EK certificate from the same CA). Its
# evidence is a valid TPM's, but not for the enrolled device's key or AK; the first TPM's
# key file does not load here at all.
"$SCRIPTS/swtpm-down.sh" "$WORK/swtpm" >/dev/null
provision_tpm
run_agent 0 "$A" key generate --key "tpm2:path=$WORK/other.tss" --type ec-p256 && OTHER=$(cat "$OUT")
run_agent 0 "$A" key attest --key "$OTHER" --nonce "$NONCE" --out "$WORK/other.cbor"
out=$("${VERIFY[@]}" "$WORK/other.cbor" --nonce "$NONCE" --ca "$ROOT" 2>&1) &&
  pass "the other TPM's own evidence verifies ($out)" || fail "other TPM: $out"
refused "another TPM's key for the enrolled key" "not the expected key" "$WORK/other.cbor" \
  --nonce "$NONCE" --ca "$ROOT" --expect-key "$WORK/dev.pub"
refused "another TPM's AK for the enrolled AK" "not the one enrolled" "$WORK/other.cbor" \
  --nonce "$NONCE" --ca "$ROOT" --expect-ak "$WORK/ak.enrolled"
run_agent 10 "$A" key attest --key "$DEV" --nonce "$NONCE" &&
  contains "$ERR" "loads only in the TPM that made it" && pass "the first TPM's key file: exit 10 here"

# A provisioned endorsement hierarchy (tpm2_changeauth -c e): no try without its password
# (exit 2 naming endorsement-auth-source), a wrong one is exit 7, then the evidence with
# the right one from a 0600 file.
printf 'endorse-pass' >"$WORK/e.auth" && chmod 600 "$WORK/e.auth"
tpm2_changeauth -c e endorse-pass
run_agent 2 "$A" key attest --key "$OTHER" --nonce "$NONCE" && contains "$ERR" "endorsement-auth-source"
printf 'wrong' >"$WORK/e.wrong" && chmod 600 "$WORK/e.wrong"
run_agent 7 "$A" key attest --key "$OTHER?endorsement-auth-source=file:$WORK/e.wrong" --nonce "$NONCE" &&
  contains "$ERR" "wrong endorsement password"
run_agent 0 "$A" key attest --key "$OTHER?endorsement-auth-source=file:$WORK/e.auth" --nonce "$NONCE" \
  --out "$WORK/other2.cbor" &&
  out=$("${VERIFY[@]}" "$WORK/other2.cbor" --nonce "$NONCE" --ca "$ROOT" 2>&1) &&
  pass "endorsement password: asked for, then used from endorsement-auth-source" ||
  fail "endorsement password: ${out:-}"

finish
