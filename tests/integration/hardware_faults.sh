#!/usr/bin/env bash
# Hardware faults during issue, each with its own exit code and message, the state dir
# untouched and no key made in place of a missing one:
# (a) a token that is not there: exit 5, the tokens present listed;
# (b) the token removed mid-run (its directory moved away while the dns-01 hook waits on
#     a fifo): exit 5, the order record cleared; with the token back the same command
#     issues with the same keys;
# (c) a module that fails: not a PKCS#11 module, C_Initialize failing (exit 6, the module
#     named), C_Sign failing with CKR_DEVICE_ERROR at the CSR (exit 10);
# (d) a locked user PIN (exit 8) and a wrong one (exit 7), C_Login reached at most once;
# (f) TPM dictionary-attack lockout (max-tries 1): a wrong auth value exit 7 and the TPM's
#     failure counter up by exactly one, then even the right one exit 8 with the way out
#     (tpm2_dictionarylockout --clear-lockout), which works;
# (g) a provisioned TPM (owner password set): key generate without owner-auth-source says
#     what is missing (exit 2) before any try (the lockout counter unchanged); with it the
#     key is made and issues; a wrong owner password exit 7 (swtpm does not count owner
#     auth failures toward the lockout: measured, the counter stays);
# (e) swtpm gone mid-run: exit 10, key file intact; swtpm back on the same state: issues.
# (h) a network HSM (the token behind `p11-kit server`, reached through p11-kit-client.so)
#     restarted mid-run: the agent opens new sessions, logs in again and finishes; a server
#     that stays away gives exit 5 naming the token, and the same command issues later.
# SoftHSM 2.6 never locks a PIN nor fails C_Initialize / C_Sign, so (c) and (d) go through
# tests/tools/p11shim, a module forwarding to SoftHSM that injects those answers.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
# How long a token that lost its sessions is waited for (default 30 s): short here, where
# tokens go away on purpose.
export ACME_AGENT_TOKEN_WAIT=2
SHIM=$ACME_AGENT_BINARY_DIR/tests/tools/libp11shim.so
[ -f "$SHIM" ] || { fail "$SHIM not built (cmake --build BUILD --target p11shim)"; finish; }
setup_hsm
setup_tpm
setup_pebble
A=$ACME_AGENT

ACCT=$("$A" key generate --key "$(hsm_key acct)" --type ec-p256)
CERT=$("$A" key generate --key "$(hsm_key cert)" --type ec-p256)
run_agent 0 "${AGENT[@]}" account register --key "$ACCT" --agree-tos

# What must not change: the state dir, and the objects in the token.
objects() { "$A" --json key list --key "$TOKEN" | jq -c '[.[].uri] | sort'; }
OBJECTS=$(objects)
[ "$(jq length <<<"$OBJECTS")" = 2 ] || fail "key list: $OBJECTS"
STATE0=$(tree_digest "$STATE")
untouched() {
  expect "$1: the state dir changed: $(find "$STATE" -type f)" [ "$(tree_digest "$STATE")" = "$STATE0" ] &&
    expect "$1: the token's keys changed: $(objects)" [ "$(objects)" = "$OBJECTS" ]
}
# via_shim URI: the same key, reached through the shim module.
via_shim() { echo "${1/module-path=$ACME_AGENT_PKCS11_MODULE/module-path=$SHIM}"; }

# ---- (a) a token that is not there ----
NOTOKEN=${CERT/token=acme/token=nosuch}
run_agent 5 "${AGENT[@]}" issue --key "$NOTOKEN" -d a.example.com --http-port "$HTTP" &&
  contains "$ERR" "no token matches 'token=nosuch'" && contains "$ERR" "tokens present: 'acme'" &&
  untouched "token missing" && pass "(a) token missing: exit 5, tokens present listed, nothing made"

# ---- (c) a module that fails ----
# (awk reads to the end: an early exit would kill ldconfig with SIGPIPE, failing the
# pipeline under pipefail, and set -e would end the test without a word)
NOTMOD=$(/sbin/ldconfig -p | awk '$1 == "libz.so.1" && !found {print $NF; found = 1}') # a shared library, not a module
[ -n "$NOTMOD" ] || fail "no libz.so.1 found by ldconfig -p"
run_agent 6 "${AGENT[@]}" issue --key "${CERT/module-path=$ACME_AGENT_PKCS11_MODULE/module-path=$NOTMOD}" \
  -d c.example.com --http-port "$HTTP" && contains "$ERR" "$NOTMOD is not a PKCS#11 module" &&
  untouched "not a module" && pass "(c) a library that is not a PKCS#11 module: exit 6, named"
run_agent 6 env P11SHIM_INIT_RV=0x30 "${AGENT[@]}" issue --key "$(via_shim "$CERT")" -d c.example.com \
  --http-port "$HTTP" && contains "$ERR" "module $SHIM failed to initialise: CKR_DEVICE_ERROR" &&
  untouched "C_Initialize fails" && pass "(c) C_Initialize fails: exit 6, the module named"
# C_Sign fails at the CSR, after the order was validated.
run_agent 10 env P11SHIM_SIGN_OK=0 P11SHIM_LOG="$WORK/shim.log" "${AGENT[@]}" issue --key "$(via_shim "$CERT")" \
  -d c.example.com --http-port "$HTTP" && contains "$ERR" "C_Sign" && contains "$ERR" "CKR_DEVICE_ERROR" &&
  expect "C_Sign not reached: $(cat "$WORK/shim.log" 2>/dev/null)" grep -q '^C_Sign 0x30$' "$WORK/shim.log" &&
  untouched "C_Sign fails" && pass "(c) C_Sign fails with CKR_DEVICE_ERROR at the CSR: exit 10, order forgotten"

# ---- (d) a locked PIN, a wrong PIN ----
rm -f "$WORK/shim.log"
run_agent 8 env P11SHIM_PIN_LOCKED=1 P11SHIM_LOG="$WORK/shim.log" "${AGENT[@]}" issue --key "$(via_shim "$CERT")" \
  -d d.example.com --http-port "$HTTP" && contains "$ERR" "is locked; unlock it with the SO PIN" &&
  expect "C_Login tried on a token that says its PIN is locked" [ ! -s "$WORK/shim.log" ] &&
  untouched "PIN locked" && pass "(d) token flags the PIN locked: exit 8, no C_Login"
# A token that answers C_Login with CKR_PIN_LOCKED without flagging it first.
run_agent 8 env P11SHIM_LOGIN_RV=0xa4 P11SHIM_LOG="$WORK/shim.log" "${AGENT[@]}" issue \
  --account-key "$(via_shim "$ACCT")" --key "$(via_shim "$CERT")" -d d.example.com --http-port "$HTTP" &&
  contains "$ERR" "CKR_PIN_LOCKED" &&
  expect "C_Login calls: $(cat "$WORK/shim.log")" [ "$(grep -c '^C_Login' "$WORK/shim.log")" = 1 ] &&
  untouched "C_Login says locked" && pass "(d) C_Login answers CKR_PIN_LOCKED: exit 8, tried once"
rm -f "$WORK/shim.log"
printf 'not-the-pin' >"$WORK/wrong.pin"
chmod 600 "$WORK/wrong.pin"
WRONG=$(via_shim "${CERT/pin-source=file:$PIN_FILE/pin-source=file:$WORK/wrong.pin}")
run_agent 7 env P11SHIM_LOG="$WORK/shim.log" "${AGENT[@]}" issue --account-key "$(via_shim "${ACCT/pin-source=file:$PIN_FILE/pin-source=file:$WORK/wrong.pin}")" \
  --key "$WRONG" -d d.example.com --http-port "$HTTP" && contains "$ERR" "wrong PIN for token 'acme' (not retried" &&
  expect "C_Login calls: $(cat "$WORK/shim.log")" [ "$(cat "$WORK/shim.log")" = "C_Login 0xa0" ] &&
  lacks "$ERR" "not-the-pin" && untouched "wrong PIN" && pass "(d) wrong PIN: exit 7, one C_Login for two keys"

# A dns-01 hook that publishes in pebble-challtestsrv, then (on present) says so on the fifo
# $WORK/ready and waits for a line on $WORK/go: the test acts while the agent waits.
challtestsrv_hook "$WORK/challtestsrv-hook"
cat >"$WORK/pause-hook" <<EOF
#!/bin/sh
set -eu
"$WORK/challtestsrv-hook" "\$@"
[ "\$1" != present ] || { echo presented >"$WORK/ready"; read -r _ <"$WORK/go"; }
EOF
chmod 755 "$WORK/pause-hook"
# paused_issue EXPECTED_EXIT ACTION ARGS...: issue ARGS with the pausing hook (PAUSE_HOOK, by
# default the one above); ACTION (a function) runs while the agent waits for its challenge
# to be answered.
paused_issue() {
  local want=$1 action=$2 rc=0 pid
  shift 2
  rm -f "$WORK/ready" "$WORK/go"
  mkfifo "$WORK/ready" "$WORK/go"
  exec 3<>"$WORK/ready" 4<>"$WORK/go" # opened both ways: neither side blocks on open
  "${AGENT[@]}" issue --challenge dns-01 --dns-hook "${PAUSE_HOOK:-$WORK/pause-hook}" "$@" >"$OUT" 2>"$ERR" </dev/null &
  pid=$!
  if read -rt 60 -u 3 _; then "$action"; else fail "the hook was not called: $(cat "$ERR")"; fi
  echo go >&4
  wait "$pid" || rc=$?
  exec 3<&- 4<&-
  [ "$rc" = "$want" ] || { fail "exit $rc, expected $want: issue $*; stderr ends: $(tail -c 800 "$ERR")"; return 1; }
}

# ---- (b) the token removed mid-run ----
TOKDIR=$(find "$WORK/hsm/tokens" -mindepth 1 -maxdepth 1 -type d)
remove_token() { mv "$TOKDIR" "$WORK/hsm/token-away"; }
paused_issue 5 remove_token --key "$CERT" -d removed.example.com &&
  contains "$ERR" "token 'acme' (serial" && contains "$ERR" "is no longer in slot" && contains "$ERR" "reinsert it" &&
  pass "(b) token removed mid-run: exit 5 ($(grep -o 'C_[A-Za-z]*' "$ERR" | head -n1))"
mv "$WORK/hsm/token-away" "$TOKDIR"
untouched "token removed"
run_agent 0 "${AGENT[@]}" issue --key "$CERT" -d removed.example.com --challenge dns-01 \
  --dns-hook "$WORK/challtestsrv-hook" &&
  verify_cert "$STATE/live/removed.example.com" "$CERT" &&
  expect "the token's keys changed: $(objects)" [ "$(objects)" = "$OBJECTS" ] &&
  pass "(b) token back: the rerun issues with the same key, no second key"
STATE0=$(tree_digest "$STATE")

# ---- (h) a network HSM restarted mid-run ----
restart_p11_server() { stop_p11_server; start_p11_server; }
start_p11_server
# Its own state dir and account, both keys through the network HSM: every JWS after the
# pause (challenge, polls, finalize, download) and the CSR need the restarted server.
SAVED=("${AGENT[@]}")
AGENT=("$ACME_AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --state-dir "$WORK/state-h")
run_agent 0 "${AGENT[@]}" account register --key "$(net "$ACCT")" --agree-tos
paused_issue 0 restart_p11_server --key "$(net "$CERT")" -d h.example.com &&
  verify_cert "$WORK/state-h/live/h.example.com" "$CERT" &&
  pass "(h) network HSM restarted mid-run: new sessions, a new login, the certificate issued"
paused_issue 5 stop_p11_server --key "$(net "$CERT")" -d h2.example.com &&
  contains "$ERR" "token 'acme'" && contains "$ERR" "did not come back within 2 s" &&
  pass "(h) network HSM gone: exit 5 naming the token and the time waited"
start_p11_server
run_agent 0 "${AGENT[@]}" issue --key "$(net "$CERT")" -d h2.example.com --http-port "$HTTP" &&
  verify_cert "$WORK/state-h/live/h2.example.com" "$CERT" && pass "(h) network HSM back: the same command issues"
# issue --batch --jobs 4: the server restarts while the first order's challenge is
# presented; the other three workers are mid-order with sessions open (waiting for the shared
# solver, which presents one challenge at a time). Every worker opens new sessions, logs in
# again and finishes its certificate.
cat >"$WORK/pause-once-hook" <<HOOK
#!/bin/sh
set -eu
"$WORK/challtestsrv-hook" "\$@"
if [ "\$1" = present ] && mkdir "$WORK/paused-once" 2>/dev/null; then
  echo presented >"$WORK/ready"; read -r _ <"$WORK/go"
fi
HOOK
chmod 755 "$WORK/pause-once-hook"
for i in 1 2 3 4; do echo "$(net "$CERT") hb$i.example.com"; done >"$WORK/batch-h"
if PAUSE_HOOK=$WORK/pause-once-hook paused_issue 0 restart_p11_server --batch "$WORK/batch-h" --jobs 4; then
  issued=0
  for i in 1 2 3 4; do
    verify_cert "$WORK/state-h/live/hb$i.example.com" "$CERT" && issued=$((issued + 1))
  done
  expect "issued $issued of 4" [ "$issued" -eq 4 ] && contains "$OUT" "issued 4 of 4" &&
    pass "(h) network HSM restarted under issue --batch --jobs 4: all four certificates issued"
fi
# run: the daemon outlives a restart of the network HSM without a restart of its own; the
# certificate that a SIGHUP adds afterwards is signed through new sessions and a new login.
HCONF=$WORK/daemon-h.toml
hcert() {
  printf '[[certificate]]\ndomains = ["%s"]\nkey = "%s"\nchallenge = "dns-01"\ndns_hook = "%s"\n' \
    "$1" "$(net "$CERT")" "$WORK/challtestsrv-hook"
}
{ printf 'account_key = "%s"\nagree_tos = true\nstate_dir = "%s"\n' "$(net "$ACCT")" "$WORK/state-h"; hcert hd1.example.com; } >"$HCONF"
"$ACME_AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" run --config "$HCONF" \
  >"$WORK/daemon-h.out" 2>"$WORK/daemon-h.err" </dev/null &
HDAEMON=$!
# wait_live NAME: its certificate appears while the daemon lives (60 s at most).
wait_live() {
  local _
  for _ in $(seq 1200); do
    [ -s "$WORK/state-h/live/$1/cert.pem" ] && return 0
    kill -0 "$HDAEMON" 2>/dev/null || break
    read -rt 0.05 <> <(:) || true
  done
  fail "$1 was not issued by the daemon: $(tail -c 600 "$WORK/daemon-h.err")"
  return 1
}
if wait_live hd1.example.com; then
  restart_p11_server
  hcert hd2.example.com >>"$HCONF"
  kill -HUP "$HDAEMON"
  wait_live hd2.example.com && verify_cert "$WORK/state-h/live/hd2.example.com" "$CERT" &&
    expect "the daemon exited: $(tail -c 400 "$WORK/daemon-h.err")" kill -0 "$HDAEMON" &&
    pass "(h) run: the daemon outlives a network HSM restart and issues through it afterwards"
fi
kill -TERM "$HDAEMON" 2>/dev/null || true
rc=0
wait "$HDAEMON" || rc=$?
expect "daemon exit $rc after SIGTERM: $(tail -c 400 "$WORK/daemon-h.err")" [ "$rc" -eq 0 ]
stop_p11_server
unset P11_KIT_SERVER_ADDRESS
AGENT=("${SAVED[@]}")
STATE0=$(tree_digest "$STATE")

# ---- (f) TPM dictionary-attack lockout ----
printf 'right-auth' >"$WORK/right.auth"
printf 'wrong-auth' >"$WORK/wrong.auth"
chmod 600 "$WORK/right.auth" "$WORK/wrong.auth"
run_agent 0 "$A" key generate --key "tpm2:path=$WORK/dev.tss?pin-source=file:$WORK/right.auth" --type ec-p256
DEV="tpm2:path=$WORK/dev.tss"
tpm_var() { echo $(($(tpm2_getcap properties-variable | awk -v p="$1:" '$1 == p {print $2}'))); }
lockout_counter() { tpm_var TPM2_PT_LOCKOUT_COUNTER; }
DA_DEFAULTS=("--max-tries=$(tpm_var TPM2_PT_MAX_AUTH_FAIL)" "--recovery-time=$(tpm_var TPM2_PT_LOCKOUT_INTERVAL)"
  "--lockout-recovery-time=$(tpm_var TPM2_PT_LOCKOUT_RECOVERY)")
tpm2_dictionarylockout --setup-parameters --max-tries=1 --recovery-time=600 --lockout-recovery-time=600 >/dev/null
TRIES=$(lockout_counter)
run_agent 7 "${AGENT[@]}" issue --key "$DEV?pin-source=file:$WORK/wrong.auth" -d f.example.com --http-port "$HTTP" &&
  contains "$ERR" "wrong auth value for the TPM key (not retried" &&
  expect "lockout counter $TRIES -> $(lockout_counter)" [ "$(lockout_counter)" = $((TRIES + 1)) ] &&
  untouched "wrong TPM auth" && pass "(f) wrong TPM auth value: exit 7, one failure counted"
run_agent 8 "${AGENT[@]}" issue --key "$DEV?pin-source=file:$WORK/right.auth" -d f.example.com --http-port "$HTTP" &&
  contains "$ERR" "dictionary-attack lockout" && contains "$ERR" "tpm2_dictionarylockout --clear-lockout" &&
  contains "$ERR" "the next try is allowed in at most 600 s" &&
  untouched "TPM lockout" && pass "(f) TPM in lockout: exit 8, even with the right auth, the way out named"
tpm2_dictionarylockout --clear-lockout >/dev/null
# Back to the defaults: a TPM counts a shutdown that was not orderly (swtpm killed, below)
# as one failed authorization, which with max-tries 1 would lock it out again.
tpm2_dictionarylockout --setup-parameters "${DA_DEFAULTS[@]}" >/dev/null
run_agent 0 "${AGENT[@]}" issue --key "$DEV?pin-source=file:$WORK/right.auth" -d f.example.com --http-port "$HTTP" &&
  verify_cert "$STATE/live/f.example.com" "$DEV?pin-source=file:$WORK/right.auth" &&
  pass "(f) after tpm2_dictionarylockout --clear-lockout the same key issues"
STATE0=$(tree_digest "$STATE")

# ---- (g) a provisioned TPM: an owner password ----
printf 'owner-pass' >"$WORK/owner.auth"
printf 'not-the-owner' >"$WORK/owner-wrong.auth"
chmod 600 "$WORK/owner.auth" "$WORK/owner-wrong.auth"
tpm2_changeauth -c owner owner-pass
TRIES=$(lockout_counter)
run_agent 2 "$A" key generate --key "tpm2:path=$WORK/own.tss" --type ec-p256 &&
  contains "$ERR" "owner-auth-source=file:" &&
  expect "(g) no owner auth given: the lockout counter moved $TRIES -> $(lockout_counter)" \
    [ "$(lockout_counter)" = "$TRIES" ] &&
  expect "(g) a key file was left behind" [ ! -e "$WORK/own.tss" ] &&
  pass "(g) owner password set, none given: exit 2 naming owner-auth-source, no try spent"
run_agent 7 "$A" key generate --key "tpm2:path=$WORK/own.tss?owner-auth-source=file:$WORK/owner-wrong.auth" --type ec-p256 &&
  contains "$ERR" "wrong owner password" &&
  pass "(g) a wrong owner password: exit 7, named"
OWN="tpm2:path=$WORK/own.tss?owner-auth-source=file:$WORK/owner.auth"
run_agent 0 "$A" key generate --key "$OWN" --type ec-p256 &&
  run_agent 0 "${AGENT[@]}" issue --key "$OWN" -d g.example.com --http-port "$HTTP" &&
  verify_cert "$STATE/live/g.example.com" "$OWN" &&
  pass "(g) with owner-auth-source the key is made under the owner hierarchy and issues"
tpm2_changeauth -c owner -p owner-pass
tpm2_dictionarylockout --clear-lockout >/dev/null
STATE0=$(tree_digest "$STATE")

# ---- (e) swtpm gone mid-run ----
KEYSUM=$(sha256sum "$WORK/dev.tss")
stop_tpm() { "$SCRIPTS/swtpm-down.sh" "$WORK/swtpm" >/dev/null; }
paused_issue 10 stop_tpm --key "$DEV?pin-source=file:$WORK/right.auth" -d e.example.com &&
  contains "$ERR" "lost the connection to the TPM" && untouched "swtpm gone" &&
  expect "the key file changed" [ "$(sha256sum "$WORK/dev.tss")" = "$KEYSUM" ] &&
  pass "(e) swtpm gone mid-run: exit 10, state and key file untouched"
setup_tpm # the same TPM state, maybe on another port
run_agent 0 "${AGENT[@]}" issue --key "$DEV?pin-source=file:$WORK/right.auth" -d e.example.com --http-port "$HTTP" &&
  verify_cert "$STATE/live/e.example.com" "$DEV?pin-source=file:$WORK/right.auth" &&
  pass "(e) swtpm back: the same key file issues"
finish
