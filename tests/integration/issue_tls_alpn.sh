#!/usr/bin/env bash
# tls-alpn-01 end to end against Pebble (RFC 8737, RFC 8738 §6): the built-in responder on
# the port Pebble's VA dials, EC and RSA certificate keys inside a SoftHSM token, several
# names in one order, an IP identifier, a --jobs batch whose orders share a name. Every certificate verifies against Pebble's root and
# carries the token key; the responder listens only while the issue runs; a busy port is an
# I/O error (exit 11) that names it.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1 PEBBLE_AUTHZREUSE=0
setup_hsm
setup_pebble
setup_account ec-p256 --email ops@example.com

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$PEBBLE_TLS_PORT") 2>/dev/null; }
san() { openssl x509 -in "$1" -noout -ext subjectAltName | tail -n +2 | tr -d ' '; }

for cert_type in ec-p256 rsa-2048; do
  CERT=$("$ACME_AGENT" key generate --key "$(hsm_key "cert-$cert_type")" --type "$cert_type")
  NAME=alpn-$cert_type.example.com
  run_agent 0 "${AGENT[@]}" issue --key "$CERT" -d "$NAME" --challenge tls-alpn-01 --tls-alpn-port "127.0.0.1:$PEBBLE_TLS_PORT" || continue
  verify_cert "$STATE/live/$NAME" "$CERT" \
    && expect "SANs: $(san "$STATE/live/$NAME/cert.pem")" [ "$(san "$STATE/live/$NAME/cert.pem")" = "DNS:$NAME" ] \
    && pass "tls-alpn-01, $cert_type certificate key"
  if listening; then fail "the tls-alpn-01 responder still listens after the issue"; fi
done

# Several names in one order: one listener, one validation certificate per SNI name.
CERT=$("$ACME_AGENT" key generate --key "$(hsm_key cert-multi)" --type ec-p256)
run_agent 0 "${AGENT[@]}" issue --key "$CERT" -d multi.example.com -d www.multi.example.com --challenge tls-alpn-01 --tls-alpn-port "127.0.0.1:$PEBBLE_TLS_PORT" \
  && verify_cert "$STATE/live/multi.example.com" "$CERT" \
  && expect "SANs: $(san "$STATE/live/multi.example.com/cert.pem")" \
    [ "$(san "$STATE/live/multi.example.com/cert.pem")" = "DNS:multi.example.com,DNS:www.multi.example.com" ] \
  && pass "two names in one order"

# An IP identifier: Pebble sends SNI 1.0.0.127.in-addr.arpa and wants an iPAddress SAN.
CERT=$("$ACME_AGENT" key generate --key "$(hsm_key cert-ip)" --type ec-p256)
run_agent 0 "${AGENT[@]}" issue --key "$CERT" -d 127.0.0.1 --challenge tls-alpn-01 --tls-alpn-port "127.0.0.1:$PEBBLE_TLS_PORT" \
  && verify_cert "$STATE/live/127.0.0.1" "$CERT" \
  && expect "SANs: $(san "$STATE/live/127.0.0.1/cert.pem")" [ "$(san "$STATE/live/127.0.0.1/cert.pem")" = "IPAddress:127.0.0.1" ] \
  && pass "IP identifier over tls-alpn-01"

# A batch whose orders share a name, 3 at a time: the responder answers a name with one
# certificate, so orders sharing one take turns (each gets its own authorization here:
# PEBBLE_AUTHZREUSE=0); every certificate is issued.
BATCH=$WORK/shared.txt
for i in 1 2 3 4; do
  K=$("$ACME_AGENT" key generate --key "$(hsm_key "cert-shared-$i")" --type ec-p256)
  echo "$K s$i.example.com $([ "$i" = 4 ] || echo Shared.example.com)"
done >"$BATCH"
if run_agent 0 "${AGENT[@]}" issue --batch "$BATCH" --jobs 3 --challenge tls-alpn-01 --tls-alpn-port "127.0.0.1:$PEBBLE_TLS_PORT"; then
  ok=0
  for i in 1 2 3 4; do
    verify_cert "$STATE/live/s$i.example.com" "$(cut -d' ' -f1 <(sed -n "${i}p" "$BATCH"))" && ok=$((ok + 1))
  done
  expect "$ok of 4 verified" [ "$ok" = 4 ] && pass "a batch whose orders share a name, --jobs 3"
fi

# No private key material anywhere in the state dir (the throwaway keys never leave memory).
if grep -rlq "PRIVATE KEY" "$STATE"; then fail "a private key in the state dir"; fi

# The port is taken: exit 11 (I/O) naming ADDR:PORT, nothing written.
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
print("up", flush=True); time.sleep(600)' "$PEBBLE_TLS_PORT" >"$WORK/busy.out" 2>&1 &
WEB_PID=$!
for _ in $(seq 200); do
  grep -qs up "$WORK/busy.out" && break
  kill -0 "$WEB_PID" 2>/dev/null || break
  read -rt 0.05 <> <(:) || true
done
grep -qs up "$WORK/busy.out" || fail "could not occupy port $PEBBLE_TLS_PORT: $(cat "$WORK/busy.out")"
CERT=$("$ACME_AGENT" key generate --key "$(hsm_key cert-busy)" --type ec-p256)
run_agent 11 "${AGENT[@]}" issue --key "$CERT" -d busy.example.com --challenge tls-alpn-01 --tls-alpn-port "127.0.0.1:$PEBBLE_TLS_PORT" \
  && contains "$ERR" "127.0.0.1:$PEBBLE_TLS_PORT" && contains "$ERR" "in use" \
  && expect "a certificate for busy.example.com" [ ! -e "$STATE/live/busy.example.com" ] && pass "busy port: exit 11, the port named"
kill "$WEB_PID" 2>/dev/null
wait "$WEB_PID" 2>/dev/null || true
WEB_PID=
finish
