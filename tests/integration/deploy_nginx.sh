#!/usr/bin/env bash
# docs/deploy-nginx.md, run: nginx serves a certificate issued by Pebble to acme-agent with
# the key still inside SoftHSM (OpenSSL pkcs11 engine), curl verifying the chain against
# Pebble's root. The nginx configs are the doc's template blocks. Single process works;
# the same with forked workers fails with "Object handle invalid"; workers work when the
# token sits behind `p11-kit server`. Then a TPM key (swtpm, behind tpm2-abrmd) served by
# `openssl s_server -provider tpm2`. The PIN comes from a 0600 file: never in argv or logs.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
DOC=$ACME_AGENT_SOURCE_DIR/docs/deploy-nginx.md
for tool in nginx p11-kit setpriv tpm2-abrmd dbus-daemon tpm2_getrandom; do
  command -v "$tool" >/dev/null || { fail "$tool not found (scripts/install-deps.sh)"; finish; }
done
[ -f /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so ] || { fail "apt-get install libengine-pkcs11-openssl"; finish; }
CLIENT_MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
NAME=www.example.com

PIDS=()
stop_all() { # our own processes, by pid; then lib.sh's cleanup
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  cleanup
}
trap stop_all EXIT

# A PIN that cannot turn up in a log by chance (the default 1234 matched an nginx pid).
SOFTHSM_PIN=pin-Nginx-$RANDOM$RANDOM setup_hsm
setup_pebble
PORT=$PEBBLE_TLS_PORT # reserved by pebble-up and unused here (http-01 only)
# URIs without module-path (libp11's engine refuses it): the engine and the agent both use
# p11-kit's proxy, which finds SoftHSM through Debian's system registration (docs: step
# 1; p11-kit ignores user configs as root, and nginx starts as root here).
unset ACME_AGENT_PKCS11_MODULE
[ -f /usr/share/p11-kit/modules/softhsm2.module ] || fail "SoftHSM is not registered with p11-kit (softhsm2 package)"
BARE=$(sed 's/module-path=[^&]*&//' <<<"$TOKEN")
[[ $BARE != *module-path* ]] || fail "cannot strip module-path from $TOKEN"

KEY=$("$ACME_AGENT" key generate --key "${BARE/\?/;object=www?}" --type ec-p256)
run_agent 0 "${AGENT[@]}" issue --account-key "$("$ACME_AGENT" key generate --key "${BARE/\?/;object=acct?}" --type ec-p256)" \
  --agree-tos --key "$KEY" -d "$NAME" --http-port "127.0.0.1:$PEBBLE_HTTP_PORT" --out "$WORK/site" || finish
verify_cert "$WORK/site" "$KEY" || finish
curl -fsS --cacert "$PEBBLE_CA_FILE" "$PEBBLE_MGMT/roots/0" >"$WORK/root.pem"

# template NAME: the doc's block after "<!-- template: NAME -->", placeholders filled.
template() {
  local t
  t=$(awk -v want="<!-- template: $1 -->" '$0 == want { f = 1; next }
    f && /^```/ { if (body) exit; body = 1; next } f && body' "$DOC")
  [ -n "$t" ] || { fail "no template $1 in $DOC"; return 1; }
  t=${t//@PORT@/"$PORT"}; t=${t//@NAME@/"$NAME"}; t=${t//@FULLCHAIN@/"$FULLCHAIN"}
  t=${t//@KEY_URI@/"$KEY_URI"}; t=${t//@CLIENT_MODULE@/"$CLIENT_MODULE"}
  printf '%s\n' "$t"
}

# conf DIR TEMPLATE: nginx's prefix DIR with logs/, tmp/ and the template as nginx.conf.
conf() { mkdir -p "$1/logs" "$1/tmp" && template "$2" >"$1/nginx.conf"; }
# start_nginx DIR [RUNNER...]: nginx in the foreground; sets NGINX_PID, waits for PORT.
start_nginx() {
  local dir=$1; shift
  "$@" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" </dev/null >"$dir/stdout" 2>&1 &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  wait_port "$PORT" "$NGINX_PID" || { fail "nginx: $(tail -n 5 "$dir/logs/error.log")"; return 1; }
}
stop_nginx() { kill "$NGINX_PID" 2>/dev/null; wait "$NGINX_PID" 2>/dev/null || true; }

# fetch OUT: one HTTPS request, the chain verified against Pebble's root; OUT.certs holds
# the certificates the server sent.
fetch() {
  curl -fsS --max-time 10 --cacert "$WORK/root.pem" --resolve "$NAME:$PORT:127.0.0.1" \
    -w '%{certs}' -o "$1" "https://$NAME:$PORT/" >"$1.certs" 2>"$1.err"
}
# served_key_is URI CERTS: the leaf the server sent carries the key's public key.
served_key_is() {
  openssl x509 -in "$2" -noout -pubkey | openssl pkey -pubin -outform DER >"$WORK/served.der"
  "$ACME_AGENT" --json key show --key "$1" | jq -r .public_key_pem | openssl pkey -pubin -outform DER >"$WORK/want.der"
  cmp -s "$WORK/served.der" "$WORK/want.der"
}
# same_leaf A B: the first certificates in A and B are the same (swtpm serves one client:
# while tpm2-abrmd holds it, the agent cannot ask the TPM for the public key).
same_leaf() { [ "$(openssl x509 -in "$1" -outform DER | sha256sum)" = "$(openssl x509 -in "$2" -outform DER | sha256sum)" ]; }
no_pin_in() { # DIR PID: the PIN in no log under DIR and not in the process's argv
  local pin
  pin=$(cat "$PIN_FILE")
  local rc=0 argv
  grep -rqF -- "$pin" "$1/logs" || rc=$? # 1: absent; 2: unreadable, which proves nothing
  [ "$rc" -eq 1 ] || fail "the PIN is in $1/logs, or they cannot be read (grep exit $rc)"
  argv=$(tr '\0' ' ' <"/proc/$2/cmdline") && [ -n "$argv" ] || { fail "cannot read the argv of pid $2"; return; }
  [[ $argv != *"$pin"* ]] || fail "the PIN is in nginx's argv"
}

FULLCHAIN=$WORK/site/fullchain.pem
KEY_URI=$KEY

# 1. Single process (3a): works.
N1=$WORK/nginx-single
if conf "$N1" nginx-hsm-single.conf && start_nginx "$N1"; then
  no_pin_in "$N1" "$NGINX_PID"
  fetch "$WORK/r1" && contains "$WORK/r1" "served with a key inside the token" \
    && expect "nginx serves another key" served_key_is "$KEY" "$WORK/r1.certs" \
    && fetch "$WORK/r1b" && pass "nginx, master_process off: key in SoftHSM, chain verifies against Pebble's root" \
    || fail "single process: $(cat "$WORK/r1.err") $(tail -n 3 "$N1/logs/error.log")"
  stop_nginx
fi

# 2. The same config with forked workers: the handshake fails, as the doc says.
N2=$WORK/nginx-forked
conf "$N2" nginx-hsm-single.conf && sed -i 's/^master_process off;.*/master_process on;/' "$N2/nginx.conf"
if start_nginx "$N2"; then
  if fetch "$WORK/r2"; then
    fail "nginx with workers served a SoftHSM key: update docs/deploy-nginx.md (3a)"
  else
    contains "$N2/logs/error.log" "Object handle invalid" && pass "with master_process on the workers fail: Object handle invalid"
  fi
fi
stop_nginx

# 3. Workers behind p11-kit server (3b): nginx entirely as nobody, two workers.
N3=$WORK/nginx-workers
SOCK=$WORK/p11-kit.sock
p11-kit server -f -n "$SOCK" --provider /usr/lib/softhsm/libsofthsm2.so "pkcs11:token=acme" \
  </dev/null >"$WORK/p11-kit-server.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do [ -S "$SOCK" ] && break; read -rt 0.05 <> <(:) || true; done
[ -S "$SOCK" ] || fail "p11-kit server did not start: $(cat "$WORK/p11-kit-server.out")"
chown nobody "$SOCK" && chmod 600 "$SOCK"
# what nobody may read: the PIN (a copy, 0400), the certificate, the prefix
install -o nobody -m 0400 "$PIN_FILE" "$WORK/nobody.pin"
KEY_URI=${KEY/pin-source=file:*/pin-source=file:$WORK/nobody.pin}
install -o nobody -m 0644 "$FULLCHAIN" "$WORK/nobody-fullchain.pem"
FULLCHAIN=$WORK/nobody-fullchain.pem
template pkcs11-client.cnf >"$WORK/pkcs11-client.cnf"
conf "$N3" nginx-hsm-workers.conf && chown -R nobody "$N3"
if P11_KIT_SERVER_ADDRESS=unix:path=$SOCK OPENSSL_CONF=$WORK/pkcs11-client.cnf \
  start_nginx "$N3" setpriv --reuid=nobody --regid=nogroup --clear-groups; then
  ok=1
  for i in 1 2 3 4 5 6; do
    fetch "$WORK/r3-$i" && contains "$WORK/r3-$i" "served by a worker" || { ok=0; fail "workers: $(cat "$WORK/r3-$i.err")"; }
  done
  served_key_is "$KEY" "$WORK/r3-1.certs" || { ok=0; fail "workers serve another key"; }
  workers=$(pgrep -P "$NGINX_PID" -d ' ' || true)
  [ "$(wc -w <<<"$workers")" = 2 ] || { ok=0; fail "expected 2 workers, got '$workers'"; }
  # every request was served by a worker (the access log's first field is its pid)
  awk '{ print $1 }' "$N3/logs/access.log" | sort -u >"$WORK/served-by"
  while read -r p; do [[ " $workers " == *" $p "* ]] || { ok=0; fail "request served by pid $p, not a worker"; }; done <"$WORK/served-by"
  lacks "$N3/logs/error.log" "[crit]" || ok=0
  no_pin_in "$N3" "$NGINX_PID"
  [ "$ok" = 1 ] && pass "nginx with 2 workers as nobody, token behind p11-kit server: $(wc -l <"$N3/logs/access.log") requests served"
  stop_nginx
fi

# 4. TPM: a TSS2 key file made by acme-agent, served by openssl s_server -provider tpm2.
setup_tpm
run_agent 0 "$ACME_AGENT" key generate --key "tpm2:path=$WORK/www.tss" --type ec-p256 && TPM_KEY=$(cat "$OUT")
run_agent 0 "${AGENT[@]}" issue --key "$TPM_KEY" -d tpm.example.com --http-port "127.0.0.1:$PEBBLE_HTTP_PORT" \
  && verify_cert "$STATE/live/tpm.example.com" "$TPM_KEY" || finish
# A resource manager in front of swtpm (3 object slots): tpm2-abrmd on a private D-Bus.
# It prints its address once it listens (the socket file exists earlier, from bind(): an
# abrmd that connects then is refused and exits, as a CI run showed).
dbus-daemon --session --nofork --address="unix:path=$WORK/dbus.sock" --print-address=3 \
  3>"$WORK/dbus.address" </dev/null >"$WORK/dbus.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do [ -s "$WORK/dbus.address" ] && break; read -rt 0.05 <> <(:) || true; done
[ -s "$WORK/dbus.address" ] || fail "dbus-daemon did not start: $(cat "$WORK/dbus.log")"
BUS=com.intel.tss2.Tabrmd.acme$$
DBUS_SESSION_BUS_ADDRESS=unix:path=$WORK/dbus.sock tpm2-abrmd --session --allow-root --dbus-name="$BUS" \
  --tcti="$ACME_AGENT_TCTI" </dev/null >"$WORK/abrmd.log" 2>&1 &
PIDS+=($!)
export DBUS_SESSION_BUS_ADDRESS=unix:path=$WORK/dbus.sock
export TPM2OPENSSL_TCTI="tabrmd:bus_type=session,bus_name=$BUS"
for _ in $(seq 200); do
  tpm2_getrandom -T "$TPM2OPENSSL_TCTI" 4 >/dev/null 2>&1 && break
  read -rt 0.05 <> <(:) || true
done
tpm2_getrandom -T "$TPM2OPENSSL_TCTI" 4 >/dev/null 2>&1 || fail "tpm2-abrmd not ready: $(cat "$WORK/abrmd.log")"
# shellcheck disable=SC2034 # KEY_FILE is used by the eval below
KEY_FILE=$WORK/www.tss
LIVE=$STATE/live/tpm.example.com
NAME=tpm.example.com
# The command exactly as docs/deploy-nginx.md shows it:
SSERVER='openssl s_server -provider tpm2 -provider default -key "$KEY_FILE" -cert "$LIVE/cert.pem" -cert_chain "$LIVE/chain.pem" -accept "127.0.0.1:$PORT" -www'
grep -qF -- "    $SSERVER" "$DOC" || fail "docs/deploy-nginx.md no longer shows: $SSERVER"
eval "exec $SSERVER" </dev/null >"$WORK/s_server.log" 2>&1 &
SPID=$!
PIDS+=("$SPID")
if wait_port "$PORT" "$SPID"; then
  fetch "$WORK/r4" && contains "$WORK/r4" "s_server" && same_leaf "$WORK/r4.certs" "$LIVE/cert.pem" \
    && fetch "$WORK/r4b" && pass "openssl s_server -provider tpm2: key in the TPM, chain verifies against Pebble's root" \
    || fail "s_server: $(cat "$WORK/r4.err") $(head -c 400 "$WORK/s_server.log")"
fi
finish
