#!/usr/bin/env bash
# Soak (labels integration;slow): tests/soak/soak.cpp issues SOAK_COUNT (300) certificates in
# one process against Pebble with PEBBLE_VA_ALWAYS_VALID=1, the account key in SoftHSM and
# the certificate keys taking turns: three SoftHSM keys (ec-p256, ec-p384, rsa-2048) and a
# TPM key on swtpm. The token is reached through tests/tools/p11shim, which forwards to
# SoftHSM and counts open sessions (SoftHSM reports none). The driver fails when open
# descriptors, PKCS#11 sessions or TPM transient objects after issuance 50 ever differ from
# their value at 50, or RSS grows by more than SOAK_RSS_KIB; it prints the samples.
source "$ACME_AGENT_SOURCE_DIR/tests/integration/lib.sh"
: "${SOAK_DRIVER:?set by CTest}" "${P11SHIM:?set by CTest}"
export PEBBLE_VA_NOSLEEP=1 PEBBLE_VA_ALWAYS_VALID=1
setup_hsm
setup_tpm
setup_pebble
A=$ACME_AGENT

# through_shim URI: the same key, its module the shim.
through_shim() { echo "${1/module-path=$ACME_AGENT_PKCS11_MODULE/module-path=$P11SHIM}"; }
ACCT=$("$A" key generate --key "$(hsm_key soak-acct)" --type ec-p256)
KEYS=()
for t in ec-p256 ec-p384 rsa-2048; do
  KEYS+=("$(through_shim "$("$A" key generate --key "$(hsm_key "soak-$t")" --type "$t")")")
done
run_agent 0 "$A" key generate --key "tpm2:path=$WORK/soak.tss" --type ec-p256 && KEYS+=("$(cat "$OUT")")
[ "${#KEYS[@]}" = 4 ] || { fail "could not make the keys"; finish; }

START=$SECONDS
rc=0
SOAK_SERVER=$PEBBLE_URL SOAK_CA_FILE=$PEBBLE_CA_FILE SOAK_STATE_DIR=$STATE \
  SOAK_HTTP_PORT=127.0.0.1:$PEBBLE_HTTP_PORT SOAK_ACCOUNT_KEY=$(through_shim "$ACCT") \
  SOAK_CERT_KEYS="${KEYS[*]}" SOAK_SHIM=$P11SHIM \
  "$SOAK_DRIVER" >"$WORK/soak.out" 2>"$WORK/soak.err" </dev/null || rc=$?
cat "$WORK/soak.out"
echo "soak: $((SECONDS - START)) s"
[ "$rc" = 0 ] || fail "the soak driver exited $rc: $(head -c 2000 "$WORK/soak.err")"
N=${SOAK_COUNT:-300}
expect "$N certificates in the state dir" [ "$(ls "$STATE/live" | wc -l)" = "$N" ]
# The last ones were made by the TPM key and a SoftHSM key: both verify and carry the key.
[ "$rc" = 0 ] && verify_cert "$STATE/live/soak-$N.example.com" "${KEYS[$((N % 4))]}" &&
  verify_cert "$STATE/live/soak-$((N - 1)).example.com" "${KEYS[$(((N - 1) % 4))]}" &&
  pass "$N issuances in one process; descriptors, sessions and TPM objects flat after 50"
finish
