#!/usr/bin/env bash
# lib.sh's own checks can fail: a set-up script that fails or sets nothing ends the test,
# a TCTI that is not this test's swtpm is refused, nothing is inherited from the caller's
# environment, and contains/lacks/expect count a failure. Each case runs lib.sh in a bash
# of its own with fake set-up scripts (no server starts here).
source "$(dirname "$0")/lib.sh"
LIB=$ACME_AGENT_SOURCE_DIR/tests/integration/lib.sh
FAKE=$WORK/fake-scripts
mkdir -p "$FAKE"
cp "$SCRIPTS/ports.sh" "$FAKE/"

# child EXPECTED_RC 'BASH CODE' [ENV...]: runs CODE after sourcing lib.sh with SCRIPTS
# pointed at $FAKE; its output in $OUT.
child() {
  local want=$1 code=$2 rc=0
  shift 2
  env "$@" bash -c "source '$LIB'; SCRIPTS='$FAKE'; $code" >"$OUT" 2>&1 || rc=$?
  [ "$rc" -eq "$want" ] || { fail "exit $rc, expected $want: $code: $(head -c 600 "$OUT")"; return 1; }
}
# fake NAME 'BODY': the set-up script NAME in $FAKE.
fake() { printf '#!/usr/bin/env bash\n%s\n' "$2" >"$FAKE/$1"; chmod +x "$FAKE/$1"; }

# ---- a failing set-up script stops the test (eval "$(script)" used to go on) ----
fake swtpm-setup.sh 'echo "swtpm-setup: swtpm exited" >&2; exit 3'
child 1 'setup_tpm; echo REACHED' && contains "$OUT" "set-up failed" && contains "$OUT" "exited 3" &&
  contains "$OUT" "swtpm-setup: swtpm exited" && lacks "$OUT" REACHED &&
  pass "setup_tpm: a failing swtpm-setup.sh ends the test with its message"
fake softhsm-setup.sh 'exit 1'
child 1 'setup_hsm; echo REACHED' && contains "$OUT" "exited 1" && lacks "$OUT" REACHED &&
  pass "setup_hsm: a failing softhsm-setup.sh ends the test"
fake pebble-up.sh 'echo "pebble-up: a process exited during startup" >&2; exit 1'
child 1 'setup_pebble; echo REACHED' && contains "$OUT" "a process exited during startup" && lacks "$OUT" REACHED &&
  pass "setup_pebble: a failing pebble-up.sh ends the test"
# exit 0 but the variables it must set are missing
fake pebble-up.sh 'echo "export PEBBLE_URL=https://127.0.0.1:1/dir"'
child 1 'setup_pebble; echo REACHED' && contains "$OUT" "did not set PEBBLE_DIR" && lacks "$OUT" REACHED &&
  pass "setup_pebble: a script that sets too little ends the test"

# ---- a TCTI that is not this test's swtpm is refused ----
fake swtpm-setup.sh 'echo "export ACME_AGENT_TCTI=device:/dev/tpmrm0 TPM2TOOLS_TCTI=device:/dev/tpmrm0 TPM2OPENSSL_TCTI=device:/dev/tpmrm0 SWTPM_DIR=$1"'
child 1 'setup_tpm; echo REACHED' && contains "$OUT" "refusing to run" && contains "$OUT" "device:/dev/tpmrm0" &&
  lacks "$OUT" REACHED && pass "setup_tpm: a real TPM's TCTI is refused"
# a swtpm TCTI on a port nothing of ours serves
fake swtpm-setup.sh 'T=swtpm:host=127.0.0.1,port=1; echo "export ACME_AGENT_TCTI=$T TPM2TOOLS_TCTI=$T TPM2OPENSSL_TCTI=$T SWTPM_DIR=$1"'
child 1 'setup_tpm; echo REACHED' && contains "$OUT" "is not served by this test's swtpm" && lacks "$OUT" REACHED &&
  pass "setup_tpm: a swtpm TCTI this test did not start is refused"
# the tools pointed elsewhere than the agent
fake swtpm-setup.sh 'T=swtpm:host=127.0.0.1,port=1; echo "export ACME_AGENT_TCTI=$T TPM2TOOLS_TCTI=device:/dev/tpmrm0 TPM2OPENSSL_TCTI=$T SWTPM_DIR=$1"'
child 1 'setup_tpm; echo REACHED' && contains "$OUT" "the tools' TCTI" && lacks "$OUT" REACHED &&
  pass "setup_tpm: tools on another TPM than the agent are refused"

# ---- nothing inherited from the caller ----
child 0 'for v in ACME_AGENT_TCTI TPM2TOOLS_TCTI TPM2OPENSSL_TCTI SOFTHSM2_CONF ACME_AGENT_PKCS11_MODULE ACME_AGENT_SERVER ACME_AGENT_STATE_DIR PEBBLE_URL PEBBLE_HTTP_PORT CHALLTESTSRV; do echo "$v=${!v-unset}"; done' \
  ACME_AGENT_TCTI=device:/dev/tpmrm0 TPM2TOOLS_TCTI=device:/dev/tpmrm0 TPM2OPENSSL_TCTI=device:/dev/tpmrm0 \
  SOFTHSM2_CONF=/etc/softhsm/softhsm2.conf ACME_AGENT_PKCS11_MODULE=/usr/lib/real.so \
  ACME_AGENT_SERVER=https://acme-v02.api.letsencrypt.org/directory ACME_AGENT_STATE_DIR=/var/lib/acme-agent \
  PEBBLE_URL=https://127.0.0.1:14000/dir PEBBLE_HTTP_PORT=5002 CHALLTESTSRV=http://127.0.0.1:8055 &&
  expect "a variable was inherited: $(grep -v '=unset$' "$OUT")" [ "$(grep -c '=unset$' "$OUT")" -eq 10 ] &&
  pass "lib.sh: no TCTI, token, module, server, state dir or Pebble inherited from the caller"

# ---- the check helpers count a failure (each line run in a child: its FAILURES is its own) ----
printf 'abc\n' >"$WORK/f"
child 1 "contains '$WORK/f' xyz; finish" && contains "$OUT" "lacks 'xyz'" && pass "contains fails on a missing string"
child 1 "lacks '$WORK/f' abc; finish" && contains "$OUT" "contains 'abc'" && pass "lacks fails on a present string"
child 1 "lacks '$WORK/no-such-file' abc; finish" && contains "$OUT" "cannot read $WORK/no-such-file" &&
  pass "lacks fails on a file it cannot read (no proof of absence)"
child 0 "lacks '$WORK/f' xyz; finish" && pass "lacks passes on an absent string"
child 1 "expect 'the probe' false; finish" && contains "$OUT" "FAIL: the probe" && pass "expect fails on a failing command"
child 1 "run_agent 0 false; finish" && contains "$OUT" "exit 1, expected 0" && pass "run_agent fails on another exit code"

# no_txt: a DNS server that does not answer is no proof that a record is gone.
child 1 "no_txt 127.0.0.1 1 _acme-challenge.example.test 'the probe'; finish" &&
  contains "$OUT" "the probe: 127.0.0.1#1 gave no answer" && pass "no_txt fails when the server does not answer"

finish
