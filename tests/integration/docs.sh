#!/usr/bin/env bash
# The how-tos in docs/ run as written: every ```sh block of docs/hsm.md,
# docs/troubleshooting.md, docs/tpm.md and docs/dns.md, in order, in one bash per page (set -euo pipefail), with the page's
# variables pointed at what this test starts: Pebble, a SoftHSM token store, swtpm, BIND
# (configured with the page's own ```conf block). Then what a reader would check: the
# certificates verify against Pebble's root and carry the keys the pages made.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
DOCS=$ACME_AGENT_SOURCE_DIR/docs
FIXTURES=$ACME_AGENT_SOURCE_DIR/tests/integration/dns

# acme-agent as a reader has it: on PATH.
mkdir -p "$WORK/bin" "$WORK/home"
ln -s "$ACME_AGENT" "$WORK/bin/acme-agent"
export PATH=$WORK/bin:$PATH HOME=$WORK/home
unset ACME_AGENT_PKCS11_MODULE ACME_AGENT_TCTI

# doc_block PAGE LANG: the page's ```LANG blocks; for sh, each followed by `doc_step N`, a
# function of this test's that may act between two blocks (start BIND once its key exists).
doc_blocks() {
  awk -v lang="$2" '
    /^```/ { if (inside) { inside = 0; if (lang == "sh") print "doc_step " ++n; next }
             if ($0 == "```" lang) { inside = 1; next } }
    inside { print }' "$1"
}
# run_doc PAGE: runs the page's sh blocks in a bash of their own (BIND, when a step starts
# it, stops with that bash); the output in $WORK/PAGE.log.
doc_step() { :; }
run_doc() {
  local page=$1 name
  name=$(basename "$page" .md)
  {
    declare -f doc_step start_named stop_named fail
    echo "SCRIPTS='$SCRIPTS' WORK='$WORK' FAILURES=0; source \"\$SCRIPTS/ports.sh\"; trap stop_named EXIT"
    doc_blocks "$page" sh
  } >"$WORK/$name.sh"
  if bash -euo pipefail "$WORK/$name.sh" >"$WORK/$name.log" 2>&1; then
    pass "docs/$name.md runs as written"
  else
    fail "docs/$name.md: $(tail -n 15 "$WORK/$name.log")"
    return 1
  fi
}

setup_pebble
export ACME_AGENT_SERVER=$PEBBLE_URL ACME_AGENT_CA_FILE=$PEBBLE_CA_FILE
export ACME_AGENT_STATE_DIR=$WORK/state CONF_DIR=$WORK/etc HTTP_PORT=127.0.0.1:$PEBBLE_HTTP_PORT
# An empty SoftHSM token store: the page makes the token.
mkdir -p "$WORK/softhsm/tokens"
export SOFTHSM2_CONF=$WORK/softhsm/softhsm2.conf
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
  "$WORK/softhsm/tokens" >"$SOFTHSM2_CONF"
# p11-kit reads the user's module configs: the page registers SoftHSM as "the vendor's".
export P11_MODULES_DIR=$HOME/.config/pkcs11/modules VENDOR_MODULE=/usr/lib/softhsm/libsofthsm2.so

# ---- docs/hsm.md ----
export DOMAIN=hsm.docs.example
if run_doc "$DOCS/hsm.md"; then
  verify_cert "$ACME_AGENT_STATE_DIR/live/$DOMAIN" "$(cat "$ACME_AGENT_STATE_DIR/live/$DOMAIN/key.uri")" &&
    pass "hsm.md: the certificate verifies and carries the token's key"
  expect "hsm.md: key show says never-extractable" grep -qE 'never-extractable: +true' "$WORK/hsm.log" &&
    expect "hsm.md: the token's keys listed through p11-kit (no module-path)" \
      grep -q '^ec-p256 *pkcs11:token=acme;object=www;.*?pin-source=' "$WORK/hsm.log" &&
    expect "hsm.md: the PIN file is 0600" [ "$(stat -c %a "$CONF_DIR/hsm.pin")" = 600 ] &&
    expect "hsm.md: the PIN file ends in a newline (nginx's engine would send it)" \
      [ "$(tail -c 1 "$CONF_DIR/hsm.pin" | od -An -c | tr -d ' ')" != '\n' ] &&
    lacks "$WORK/hsm.log" "ends in a newline" &&
    pass "hsm.md: key show, key list through p11-kit, the PIN file"
fi

# ---- docs/troubleshooting.md: the errors it shows are the ones a reader gets ----
if run_doc "$ACME_AGENT_SOURCE_DIR/docs/troubleshooting.md"; then
  L=$WORK/troubleshooting.log
  contains "$L" "no-such-token" && contains "$L" "exit 5" && contains "$L" "exit 6" &&
    contains "$L" "no-such-module.so" && contains "$L" "exit 7" && lacks "$L" "0000" &&
    pass "troubleshooting.md: token absent 5, module 6, wrong PIN 7, the PIN never shown"
fi

# ---- docs/tpm.md ----
setup_tpm
export DOMAIN=tpm.docs.example KEY_DIR=$WORK/tpm-keys ACME_AGENT_STATE_DIR=$WORK/state-tpm
if run_doc "$DOCS/tpm.md"; then
  verify_cert "$ACME_AGENT_STATE_DIR/live/$DOMAIN" "tpm2:path=$KEY_DIR/www.tss" &&
    pass "tpm.md: the certificate verifies and carries the TPM key"
  # key show, the provider's view of the key file and the certificate: one public key.
  awk -v d="$WORK" '/BEGIN PUBLIC KEY/ { n++; on = 1 } on { print > (d "/pub" n ".pem") }
                    /END PUBLIC KEY/ { on = 0 }' "$WORK/tpm.log"
  expect "tpm.md: openssl -provider tpm2 reads the key file as the certificate's key" \
    cmp -s "$WORK/pub1.pem" "$WORK/pub2.pem" &&
    expect "tpm.md: the certificate's key differs from the key file's" cmp -s "$WORK/pub2.pem" "$WORK/pub3.pem" &&
    pass "tpm.md: the key file works with openssl's tpm2 provider"
  verify_cert "$ACME_AGENT_STATE_DIR/live/sensor-7.$DOMAIN" "tpm2:path=$ACME_AGENT_STATE_DIR/keys/sensor-7.$DOMAIN.tss" &&
    pass "tpm.md: enroll made the device key and its certificate"
  contains "$WORK/tpm.log" "nothing to do" && pass "tpm.md: the second enroll does nothing"
fi

# ---- docs/dns.md: BIND with the page's conf block, a Pebble resolving through it ----
export ACME_AGENT_STATE_DIR=$WORK/state-dns ZONE=example.test TSIG_KEY=$WORK/named/acme-agent.key
export HOOK=$WORK/bin/acme-dns-hook CERT_KEY="pkcs11:token=acme;object=wild?pin-source=file:$CONF_DIR/hsm.pin"
mkdir -p "$WORK/named"
cp "$FIXTURES/example.test.zone" "$WORK/named/"
{
  sed -n '/^options {/,/^controls/p' "$FIXTURES/named.conf.in" | sed "s|@DIR@|$WORK/named|g"
  doc_blocks "$DOCS/dns.md" conf | sed -e "s|/etc/bind/acme-agent.key|$TSIG_KEY|" \
    -e "s|/var/lib/bind/example.com.zone|$WORK/named/example.test.zone|" -e 's|"example.com"|"example.test"|'
} >"$WORK/named/named.conf.in"
# After the page's second block (the TSIG key exists): BIND, a Pebble whose VA asks it, an
# account there for the page's orders.
doc_step() {
  [ "$1" = 2 ] || return 0
  start_named "$WORK/named" || return 1
  local up # a failing pebble-up.sh stops the page here (eval "$(...)" would go on)
  up=$(PEBBLE_DNS_SERVER=127.0.0.1:$NAMED_PORT "$SCRIPTS/pebble-up.sh" "$WORK/pebble-bind") || return 1
  eval "$up"
  export ACME_AGENT_SERVER=$PEBBLE_URL ACME_AGENT_CA_FILE=$PEBBLE_CA_FILE DNS_SERVER=127.0.0.1:$NAMED_PORT
  acme-agent -q account register --agree-tos \
    --key "pkcs11:token=acme;object=account?pin-source=file:$CONF_DIR/hsm.pin"
}
if run_doc "$DOCS/dns.md"; then
  eval "$(cat "$WORK/pebble-bind/env")"
  SANS=$(openssl x509 -in "$ACME_AGENT_STATE_DIR/live/example.test/cert.pem" -noout -ext subjectAltName)
  verify_cert "$ACME_AGENT_STATE_DIR/live/example.test" "$CERT_KEY" &&
    expect "dns.md: both names ($SANS)" grep -qF 'DNS:*.example.test' <<<"$SANS" &&
    pass "dns.md: RFC 2136 order for the zone and its wildcard"
  verify_cert "$ACME_AGENT_STATE_DIR/live/hook.example.test" "$CERT_KEY" && pass "dns.md: the nsupdate hook"
fi
finish
