#!/usr/bin/env bash
# `acme-agent run --config FILE`: two certificates from a TOML config (keys in SoftHSM,
# http-01 against Pebble) issued once, left alone on the next run, renewed when due; the
# deploy hook fires once per new certificate with exactly its six variables, a failing or
# hanging hook costs nothing but is retried (alone) on the next run; a bad config is exit 2
# with FILE:LINE and an untouched state dir; the daemon issues, reloads on SIGHUP (also one
# sent during start-up) and stops on SIGTERM.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
setup_hsm
setup_pebble
A=("${AGENT[@]}")

ACCT=$("$ACME_AGENT" key generate --key "$(hsm_key acct)" --type ec-p256)
K_WEB=$("$ACME_AGENT" key generate --key "$(hsm_key cert-web)" --type ec-p256)
K_API=$("$ACME_AGENT" key generate --key "$(hsm_key cert-api)" --type rsa-2048)

# The hook appends "---" and its ACME_AGENT_* variables; it records its open descriptors
# (ls's own directory fd is 3) and its whole environment; $WORK/hook-mode makes it fail,
# hang or print 100 KB.
HOOKLOG=$WORK/hook.log
cat >"$WORK/hook.sh" <<EOF
#!/bin/sh
{ echo ---; env | grep '^ACME_AGENT_' | sort; } >>"$HOOKLOG"
ls /proc/self/fd >"$WORK/hook-fds"
env >"$WORK/hook-env"
case "\$(cat "$WORK/hook-mode" 2>/dev/null)" in
  fail) echo "hook: cannot reload" >&2; exit 3 ;;
  hang) echo "sleep 59.\$\$" >"$WORK/hook-sleep"; exec sleep 59.\$\$ ;;
  noisy) i=0; while [ \$i -lt 2000 ]; do echo "noise line \$i from the hook ..........................."; i=\$((i+1)); done
         printf 'the end \033]0;title\007\n' ;;
esac
EOF
chmod +x "$WORK/hook.sh"
: >"$HOOKLOG"
hook_runs() { grep -c '^---$' "$HOOKLOG"; }

CONF=$WORK/agent.toml
# conf [EXTRA-FOR-WEB] [MORE-TOML]
conf() {
  cat >"$CONF" <<EOF
# state_dir is overridden by --state-dir on the command line
state_dir = "other-state"
account_key = "$ACCT"
email = "ops@example.com"
agree_tos = true
deploy_hook_timeout = 2

[[certificate]]
name = "web"
domains = ["web.example.com", "www.example.com"]
key = "$K_WEB"
http_port = "$HTTP"
deploy_hook = "$WORK/hook.sh"
${1:-}

[[certificate]]
domains = ["api.example.com"]
key = "$K_API"
http_port = "$HTTP"
deploy_hook = "$WORK/hook.sh"
${2:-}
EOF
}
actions() { jq -c '[.certificates[].action]' "$OUT"; }

# 1. Both issued, the hook once for each with exactly the six variables.
conf
if SECRET_OF_THE_AGENT=1 run_agent 0 "${A[@]}" --json run --config "$CONF" --once; then
  expect "actions $(actions)" [ "$(actions)" = '["issued","issued"]' ]
  verify_cert "$STATE/live/web" "$K_WEB" && verify_cert "$STATE/live/api.example.com" "$K_API" &&
    pass "run --once issues both configured certificates"
  expect "state_dir of the config used despite --state-dir" [ ! -e "$WORK/other-state" ]
  expect "hook runs: $(hook_runs)" [ "$(hook_runs)" = 2 ]
  names=$(grep '^ACME_AGENT_' "$HOOKLOG" | cut -d= -f1 | sort | uniq -c | awk '{print $1 " " $2}' | tr '\n' ' ')
  want="2 ACME_AGENT_CERT 2 ACME_AGENT_CHAIN 2 ACME_AGENT_DOMAINS 2 ACME_AGENT_FULLCHAIN 2 ACME_AGENT_KEY_URI 2 ACME_AGENT_NAME "
  expect "hook variables: $names" [ "$names" = "$want" ]
  contains "$HOOKLOG" "ACME_AGENT_NAME=web"
  contains "$HOOKLOG" "ACME_AGENT_DOMAINS=web.example.com www.example.com"
  contains "$HOOKLOG" "ACME_AGENT_NAME=api.example.com"
  contains "$HOOKLOG" "ACME_AGENT_CERT=$STATE/live/web/cert.pem"
  for f in $(grep -E '^ACME_AGENT_(CERT|CHAIN|FULLCHAIN)=' "$HOOKLOG" | cut -d= -f2); do
    expect "hook path $f missing" [ -s "$f" ]
  done
  lacks "$HOOKLOG" "pin-"
  lacks "$HOOKLOG" "$PIN_FILE"
  contains "$HOOKLOG" "ACME_AGENT_KEY_URI=${TOKEN%%\?*};object=cert-web"
  contains "$HOOKLOG" "module-path="
  expect "deploy-pending left" [ ! -e "$STATE/orders/web.deploy-pending" ]
  pass "deploy hook: once per certificate, six variables, no PIN material"
  # SECURITY.md rule 21: fds 0-2 only (not the CA's TLS connection, curl's socketpair, a
  # token's descriptors); PATH, HOME, LANG and its own variables (the shell adds PWD), not
  # the agent's environment (here SECRET_OF_THE_AGENT).
  expect "hook fds: $(tr '\n' ' ' <"$WORK/hook-fds")" [ "$(sort -n "$WORK/hook-fds" | tr '\n' ' ')" = "0 1 2 3 " ] &&
    pass "deploy hook: fds 0, 1, 2 only"
  extra=$(cut -d= -f1 "$WORK/hook-env" | grep -vxE 'PATH|HOME|LANG|PWD|ACME_AGENT_(NAME|DOMAINS|CERT|CHAIN|FULLCHAIN|KEY_URI)' | tr '\n' ' ' || true)
  expect "hook environment beyond the documented: $extra" [ -z "$extra" ] && contains "$WORK/hook-env" "PATH=" &&
    pass "deploy hook: the documented environment only"
fi

# 2. Nothing to do: nothing issued, no hook.
SERIAL_WEB=$(serial_of "$STATE/live/web/cert.pem")
if run_agent 0 "${A[@]}" --json run --config "$CONF" --once; then
  expect "actions $(actions)" [ "$(actions)" = '["unchanged","unchanged"]' ] &&
    expect "hook ran again" [ "$(hook_runs)" = 2 ] &&
    expect "web reissued" [ "$(serial_of "$STATE/live/web/cert.pem")" = "$SERIAL_WEB" ] &&
    pass "second run --once: nothing issued, no hook"
fi

# 3. renew_before_days longer than the lifetime makes web due: renewed, its hook fires.
conf "renew_before_days = 3650"
if run_agent 0 "${A[@]}" --json run --config "$CONF" --once; then
  expect "actions $(actions)" [ "$(actions)" = '["renewed","unchanged"]' ] &&
    expect "same serial after renewal" [ "$(serial_of "$STATE/live/web/cert.pem")" != "$SERIAL_WEB" ] &&
    verify_cert "$STATE/live/web" "$K_WEB" &&
    expect "hook runs: $(hook_runs)" [ "$(hook_runs)" = 3 ] &&
    expect "hook for web" [ "$(tail -n 6 "$HOOKLOG" | grep '^ACME_AGENT_NAME=')" = ACME_AGENT_NAME=web ] &&
    pass "due certificate renewed by run --once, hook fired"
fi

# 4. A failing hook: the certificate stays, exit 16, the hook (only) runs again next time.
echo fail >"$WORK/hook-mode"
conf "" "[[certificate]]
domains = [\"hookfail.example.com\"]
key = \"$K_API\"
http_port = \"$HTTP\"
deploy_hook = \"$WORK/hook.sh\""
if run_agent 16 "${A[@]}" --json run --config "$CONF" --once; then
  verify_cert "$STATE/live/hookfail.example.com" "$K_API"
  contains "$ERR" "hookfail.example.com: deploy hook exited with status 3"
  contains "$ERR" "hook: cannot reload"
  jq -e '.hooks_failed == 1 and .certificates[2].deploy_hook.ok == false and .certificates[2].action == "issued"' "$OUT" >/dev/null ||
    fail "JSON: $(cat "$OUT")"
  expect "no deploy-pending" [ -f "$STATE/orders/hookfail.example.com.deploy-pending" ] &&
    pass "failing hook: exit 16, reported, certificate stored, retry recorded"
fi
SERIAL_FAIL=$(serial_of "$STATE/live/hookfail.example.com/cert.pem")
# A hanging hook is stopped at deploy_hook_timeout (2 s) and stays pending.
echo hang >"$WORK/hook-mode"
start=$(date +%s)
if run_agent 16 "${A[@]}" run --config "$CONF" --once; then
  contains "$ERR" "deploy hook timed out after 2 s and was killed"
  expect "the hung hook ($(cat "$WORK/hook-sleep")) still runs" bash -c "! ps -eo args= | grep -qxF '$(cat "$WORK/hook-sleep")'" || true
  expect "took $(($(date +%s) - start)) s" [ $(($(date +%s) - start)) -lt 30 ] &&
    pass "hanging hook stopped at its timeout"
fi
# The retry prints 100 KB ending in a terminal escape: logged cut to its last 16 KiB, escaped.
echo noisy >"$WORK/hook-mode"
runs=$(hook_runs)
if run_agent 0 "${A[@]}" --json run --config "$CONF" --once; then
  expect "stderr of $(stat -c %s "$ERR") bytes" [ "$(stat -c %s "$ERR")" -lt 20000 ] &&
    contains "$ERR" "hookfail.example.com: deploy hook: [" && contains "$ERR" "bytes cut]" &&
    contains "$ERR" 'the end \x1b]0;title\x07' && lacks "$ERR" "noise line 0 " &&
    pass "deploy hook output: cut to its bound, escaped"
  expect "actions $(actions)" [ "$(actions)" = '["unchanged","unchanged","unchanged"]' ]
  expect "hook runs $(hook_runs), want $((runs + 1))" [ "$(hook_runs)" = $((runs + 1)) ]
  expect "retried hook's name" [ "$(tail -n 6 "$HOOKLOG" | grep '^ACME_AGENT_NAME=')" = ACME_AGENT_NAME=hookfail.example.com ]
  expect "certificate reissued" [ "$(serial_of "$STATE/live/hookfail.example.com/cert.pem")" = "$SERIAL_FAIL" ]
  expect "deploy-pending stays" [ ! -e "$STATE/orders/hookfail.example.com.deploy-pending" ] &&
    pass "next run retries the hook only"
fi
rm -f "$WORK/hook-mode"
run_agent 0 "${A[@]}" run --config "$CONF" --once &&
  expect "hook ran a third time" [ "$(hook_runs)" = $((runs + 1)) ] && pass "retried hook not run again"

# 4b. `certificates`: the inventory is the stored certificates (serial and notAfter as openssl
# reads them, key URIs without PIN parameters); run's attempts show as the last attempt; a
# missing --name is exit 3; with the CA unreachable it still lists, by the lifetime rule.
CERTS=(api.example.com hookfail.example.com web)
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
end_of() { date -u -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s; }
start_of() { date -u -d "$(openssl x509 -in "$1" -noout -startdate | cut -d= -f2)" +%s; }
# inventory_matches: $OUT lists exactly CERTS, each as its live/NAME/cert.pem says.
inventory_matches() {
  local n c ok=0
  expect "names: $(jq -c '[.[].name]' "$OUT")" [ "$(jq -c '[.[].name]' "$OUT")" = '["api.example.com","hookfail.example.com","web"]' ] || return 1
  for n in "${CERTS[@]}"; do
    c=$STATE/live/$n/cert.pem
    jq -e --arg n "$n" --arg s "$(serial_of "$c" | sed 's/^0*//')" --arg e "$(iso "$(end_of "$c")")" \
      '.[] | select(.name == $n) | .serial == $s and .not_after == $e and .backend == "pkcs11" and
       (.key_uri | contains("module-path=")) and (.days_left | type == "number")' "$OUT" >/dev/null ||
      { fail "certificates: $n: $(jq -c --arg n "$n" '.[] | select(.name == $n)' "$OUT")"; ok=1; }
  done
  # K_WEB without its PIN parameters (pin-source here).
  local want
  want=$(sed -E 's/[?&]pin-(source|value)=[^&]*//g; s/^([^?&]*)&/\1?/' <<<"$K_WEB")
  jq -e --arg k "$want" '.[] | select(.name == "web") | .key_uri == $k' "$OUT" >/dev/null ||
    { fail "web's key_uri: $(jq -c '.[2].key_uri' "$OUT"), want $want"; ok=1; }
  lacks "$OUT" "pin-" && lacks "$OUT" "$PIN_FILE" || ok=1
  return $ok
}
if run_agent 0 "${A[@]}" --json certificates && inventory_matches; then
  expect "web: $(jq -c '.[2]' "$OUT")" jq -e '.[2] | .ca.reachable and .account.url != null and
    .last_attempt.ok == true and .due.rule == "renew_before_days" and
    (.due.why | startswith("3650 days"))' "$OUT" >/dev/null &&
    pass "certificates --json: the stored certificates, keys without PIN, run's last attempt, web's renew_before_days"
fi
run_agent 0 "${A[@]}" certificates --name web &&
  contains "$OUT" "serial:       $(serial_of "$STATE/live/web/cert.pem" | sed 's/^0*//')" &&
  contains "$OUT" "names:        web.example.com, www.example.com" && contains "$OUT" " succeeded" &&
  pass "certificates --name web: text"
run_agent 3 "${A[@]}" certificates --name nope && contains "$ERR" "nope: no certificate of this name" &&
  contains "$ERR" "acme-agent certificates" && pass "certificates --name nope: exit 3 naming the fix"
# A pass that cannot reach the CA is a failed attempt of each certificate.
NOWHERE=("$ACME_AGENT" --server https://127.0.0.1:1/dir --ca-file "$PEBBLE_CA_FILE" --state-dir "$STATE")
run_agent 12 "${NOWHERE[@]}" run --config "$CONF" --once || true
# A tampered record: only its known fields are shown, escaped in the text.
printf '{"at":"2026-01-01T00:00:00Z","ok":false,"extra":"SMUGGLED","error":{"code":"io","message":"\\u001b[31mred\\nfake: line"}}' \
  >"$STATE/attempts/hookfail.example.com.json"
if run_agent 0 "${NOWHERE[@]}" --json certificates && inventory_matches; then
  c=$STATE/live/api.example.com/cert.pem
  due=$(iso $(($(start_of "$c") + ($(end_of "$c") - $(start_of "$c")) * 2 / 3)))
  expect "api: $(jq -c '.[0]' "$OUT")" jq -e --arg due "$due" '.[0] | .ca.reachable == false and
    (.ca.error | length > 0) and .due.rule == "lifetime" and .due.at == $due and
    .last_attempt.ok == false and .last_attempt.error.code == "network" and .account == null' "$OUT" >/dev/null &&
    lacks "$OUT" SMUGGLED && pass "certificates, CA unreachable: listed, due by the lifetime rule, the failed attempt"
fi
run_agent 0 "${NOWHERE[@]}" certificates &&
  contains "$OUT" "did not answer, so the lifetime rule" && contains "$OUT" "(two thirds of its lifetime)" &&
  contains "$OUT" 'failed: \x1b[31mred\x0afake: line' && lacks "$OUT" "SMUGGLED" &&
  expect "a line of its own from the record" [ "$(grep -c '^fake' "$OUT")" = 0 ] &&
  pass "certificates text, CA unreachable: lifetime rule, the record escaped"
# An oversized record (a valid one padded past 64 KiB) is not read: none recorded, the rest
# still shown.
{ printf '{"at":"2026-01-01T00:00:00Z","ok":true}'; head -c 100000 /dev/zero | tr '\0' ' '; } >"$STATE/attempts/web.json"
run_agent 0 "${NOWHERE[@]}" certificates --name web && contains "$OUT" "last attempt: none recorded" &&
  contains "$OUT" "serial:" && pass "certificates: an oversized attempt record is not read"

# 5. Bad configs: exit 2, FILE:LINE, the state dir untouched.
BEFORE=$(tree_digest "$STATE")
BAD=$WORK/bad.toml
conf "colour = \"blue\""
cp "$CONF" "$BAD"
line=$(grep -n '^colour' "$BAD" | cut -d: -f1)
run_agent 2 "${A[@]}" run --config "$BAD" --once &&
  contains "$ERR" "$BAD:$line: unknown key 'colour' in [[certificate]]" && pass "unknown key: exit 2 with FILE:LINE"
conf "" "renew_before_days = \"ten\""
cp "$CONF" "$BAD"
line=$(grep -n '^renew_before_days' "$BAD" | cut -d: -f1)
run_agent 2 "${A[@]}" run --config "$BAD" &&
  contains "$ERR" "$BAD:$line: renew_before_days must be a whole number" && pass "bad value: exit 2 with FILE:LINE"
expect "state dir changed by a bad config" [ "$(tree_digest "$STATE")" = "$BEFORE" ]

# 6. The daemon: issues, reloads on SIGHUP (a new certificate appears), stops on SIGTERM.
K_D1=$("$ACME_AGENT" key generate --key "$(hsm_key cert-d1)" --type ec-p256)
K_D2=$("$ACME_AGENT" key generate --key "$(hsm_key cert-d2)" --type ec-p256)
DSTATE=$WORK/dstate
DCONF=$WORK/daemon.toml
dcert() { printf '[[certificate]]\ndomains = ["%s"]\nkey = "%s"\nhttp_port = "%s"\n' "$1" "$2" "$HTTP"; }
{ printf 'account_key = "%s"\nagree_tos = true\nstate_dir = "dstate"\n' "$ACCT"; dcert d1.example.com "$K_D1"; } >"$DCONF"
"$ACME_AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" run --config "$DCONF" \
  >"$WORK/daemon.out" 2>"$WORK/daemon.err" </dev/null &
DAEMON=$!
DERR=$WORK/daemon.err
# wait_until SECONDS WHAT CMD...: polls CMD until it succeeds while the daemon lives.
wait_until() {
  local secs=$1 what=$2 _
  shift 2
  for _ in $(seq $((secs * 20))); do
    "$@" && return 0
    kill -0 "$DAEMON" 2>/dev/null || break
    read -rt 0.05 <> <(:) || true
  done
  fail "$what; daemon stderr: $(tail -c 600 "$DERR")"
  return 1
}
wait_file() { wait_until "$2" "$1 did not appear" test -s "$1"; }
# stop_daemon: SIGTERM, then the exit code must be 0 within 10 s.
stop_daemon() {
  kill -TERM "$DAEMON" 2>/dev/null
  local _
  for _ in $(seq 200); do
    kill -0 "$DAEMON" 2>/dev/null || break
    read -rt 0.05 <> <(:) || true
  done
  if kill -0 "$DAEMON" 2>/dev/null; then
    fail "daemon still running 10 s after SIGTERM"
    kill -KILL "$DAEMON"
  fi
  local rc=0
  wait "$DAEMON" || rc=$?
  expect "daemon exit $rc after SIGTERM; stderr: $(tail -c 400 "$DERR")" [ "$rc" = 0 ]
}
if wait_file "$DSTATE/live/d1.example.com/cert.pem" 60; then
  verify_cert "$DSTATE/live/d1.example.com" "$K_D1" && pass "daemon issues its certificate"
  # Its attempt shows in `certificates` (polled: a pass may hold the state dir's lock).
  d1_attempt() {
    "$ACME_AGENT" --json --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --state-dir "$DSTATE" \
      certificates --name d1.example.com >"$OUT" 2>"$ERR" </dev/null &&
      jq -e '.[0].last_attempt.ok == true' "$OUT" >/dev/null
  }
  wait_until 10 "no successful attempt in certificates --name d1.example.com" d1_attempt &&
    pass "the daemon's attempt shows in certificates"
  dcert d2.example.com "$K_D2" >>"$DCONF"
  kill -HUP "$DAEMON"
  wait_file "$DSTATE/live/d2.example.com/cert.pem" 60 &&
    verify_cert "$DSTATE/live/d2.example.com" "$K_D2" && pass "SIGHUP reloads the config: new certificate issued"
  contains "$WORK/daemon.err" "reloaded $DCONF"
fi
stop_daemon && pass "SIGTERM: exits 0 promptly"

# 7. A SIGHUP while the daemon is still starting (here: reading its config from a FIFO, which
# blocks until a writer comes) waits for the loop and reloads; it does not kill the daemon.
FIFO=$WORK/fifo.toml
mkfifo "$FIFO"
"$ACME_AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" run --config "$FIFO" \
  >"$WORK/fifo.out" 2>"$WORK/fifo.err" </dev/null &
DAEMON=$!
DERR=$WORK/fifo.err
# Blocked in open(2) on the FIFO: Linux's fs/pipe.c waits in wait_for_partner (inside fifo_open).
opening_fifo() { grep -qxE 'wait_for_partner|fifo_open' "/proc/$DAEMON/wchan" 2>/dev/null; }
if wait_until 10 "the daemon never opened $FIFO" opening_fifo; then
  kill -HUP "$DAEMON"
  # feed: the same two certificates, both already issued (bounded: a dead reader never opens)
  feed() { timeout 10 sh -c 'cat "$1" >"$2"' feed "$DCONF" "$FIFO" || fail "nobody read $FIFO: the SIGHUP killed the daemon"; }
  feed
  # The pending SIGHUP makes the loop read the FIFO again at once.
  if wait_until 30 "no reload after a SIGHUP sent at start" opening_fifo; then
    feed
    wait_until 10 "no 'reloaded' after a SIGHUP sent at start" grep -qF "reloaded $FIFO" "$DERR" &&
      pass "a SIGHUP sent during start-up reloads instead of killing the daemon"
  fi
fi
stop_daemon

# 8. SECURITY.md rule 22: a running agent is not dumpable (the kernel then gives its /proc
# files to root, and its own user cannot read /proc/PID/environ or mem) and has a core
# limit of 0, even when started with an unlimited one. It runs as nobody when the test is
# root, blocked opening a FIFO for its config.
FIFO2=$WORK/fifo2.toml
mkfifo -m 0666 "$FIFO2"
AS_USER=()
[ "$(id -u)" != 0 ] || AS_USER=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
(ulimit -c unlimited 2>/dev/null || true; exec "${AS_USER[@]}" "$ACME_AGENT" run --config "$FIFO2") \
  >"$WORK/fifo2.out" 2>"$WORK/fifo2.err" </dev/null &
DAEMON=$!
DERR=$WORK/fifo2.err
not_dumpable() { [ "$(cat "/proc/$DAEMON/comm" 2>/dev/null)" = acme-agent ] && [ "$(stat -c %u "/proc/$DAEMON/environ")" = 0 ]; }
if wait_until 10 "the agent's /proc/PID/environ stays its user's (dumpable)" not_dumpable; then
  expect "its own user reads its environ" bash -c "! ${AS_USER[*]} cat /proc/$DAEMON/environ >/dev/null 2>&1" &&
    expect "core limit: $(grep 'core file' "/proc/$DAEMON/limits")" grep -qE '^Max core file size +0 +0 ' "/proc/$DAEMON/limits" &&
    pass "a running agent is not dumpable, its core limit 0"
fi
timeout 10 sh -c ': >"$1"' feed "$FIFO2" || true # an empty config: it exits 2
wait "$DAEMON" 2>/dev/null || true
finish
