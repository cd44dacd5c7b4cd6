#!/usr/bin/env bash
# dns-01 end to end against Pebble, with both keys in a SoftHSM token:
# (a) through --dns-hook, lego's exec contract: a hook that publishes the TXT record in
#     pebble-challtestsrv (which Pebble resolves through), for a wildcard and its base name
#     in one order; a failing hook is named with its stderr; the records are cleaned up.
# (b) through --rfc2136 with TSIG: BIND 9 started here as the authoritative server of
#     example.test on a free loopback port, and a second Pebble whose VA resolves through it.
#     A key BIND does not know and a key it grants nothing are refused with clear errors;
#     the TSIG secret never shows in the agent's output.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
FIXTURES=$ACME_AGENT_SOURCE_DIR/tests/integration/dns

for tool in named:bind9 tsig-keygen:bind9 dig:bind9-dnsutils jq:jq curl:curl ss:iproute2; do
  # A missing tool is a failure, never a skip (scripts/install-deps.sh installs them all).
  command -v "${tool%%:*}" >/dev/null ||
    { fail "${tool%%:*} not found (apt-get install -y ${tool#*:} or scripts/install-deps.sh)"; finish; }
done

NAMED_DIR=$WORK/named


setup_hsm
setup_pebble
setup_account

# ---- (a) a hook publishing in pebble-challtestsrv ----
HOOK=$WORK/challtestsrv-hook
DNS_HOOK_LOG=$WORK/hook.log
challtestsrv_hook "$HOOK" "$DNS_HOOK_LOG"
export SECRET_OF_THE_AGENT=1 # must not reach the hook
CERT=$("$ACME_AGENT" key generate --key "$(hsm_key cert-hook)" --type ec-p256)
if run_agent 0 "${AGENT[@]}" issue --key "$CERT" -d example.com -d '*.example.com' --challenge dns-01 \
  --dns-hook "$HOOK"; then
  LIVE=$STATE/live/example.com
  SANS=$(openssl x509 -in "$LIVE/cert.pem" -noout -ext subjectAltName 2>/dev/null || true)
  verify_cert "$LIVE" "$CERT" &&
    expect "both names in the certificate: $SANS" \
      grep -qE 'DNS:example\.com, DNS:\*\.example\.com|DNS:\*\.example\.com, DNS:example\.com' <<<"$SANS" &&
    pass "dns-01 through a hook: wildcard and base name in one order"
  # Two authorizations for one name: two values presented, each cleaned up.
  expect "two presents in $(cat "$DNS_HOOK_LOG")" \
    [ "$(grep -c '^present _acme-challenge\.example\.com\. [A-Za-z0-9_-]\{43\} domain=example\.com$' "$DNS_HOOK_LOG")" = 2 ] || true
  expect "two cleanups in $(cat "$DNS_HOOK_LOG")" \
    [ "$(grep -c '^cleanup _acme-challenge\.example\.com\. ' "$DNS_HOOK_LOG")" = 2 ] || true
  no_txt "${CHALLTESTSRV_DNS%:*}" "${CHALLTESTSRV_DNS##*:}" _acme-challenge.example.com "challtestsrv after cleanup" || true
fi
# SECURITY.md rule 21: fds 0-2 only; PATH, HOME, LANG and its three variables (the shell
# adds PWD), nothing else of the agent's environment.
expect "hook fds: $(tr '\n' ' ' <"$HOOK.fds")" [ "$(sort -n "$HOOK.fds" | tr '\n' ' ')" = "0 1 2 3 " ] &&
  pass "dns-01 hook: fds 0, 1, 2 only"
extra=$(cut -d= -f1 "$HOOK.env" | grep -vxE 'PATH|HOME|LANG|PWD|ACME_AGENT_(DOMAIN|TXT_NAME|TXT_VALUE)' | tr '\n' ' ' || true)
expect "hook environment beyond the documented: $extra" [ -z "$extra" ] && contains "$HOOK.env" "ACME_AGENT_TXT_VALUE=" &&
  pass "dns-01 hook: the documented environment only"
unset SECRET_OF_THE_AGENT

# A failing hook: exit 11 (io), the hook, the action and its stderr named.
printf '#!/bin/sh\necho "provider says: zone not delegated to us" >&2\nexit 4\n' >"$WORK/failing-hook"
chmod 755 "$WORK/failing-hook"
CERT_F=$("$ACME_AGENT" key generate --key "$(hsm_key cert-fail)" --type ec-p256)
run_agent 11 "${AGENT[@]}" issue --key "$CERT_F" -d fails.example.com --challenge dns-01 \
  --dns-hook "$WORK/failing-hook" &&
  contains "$ERR" "$WORK/failing-hook" && contains "$ERR" "present" && contains "$ERR" "exited with status 4" &&
  contains "$ERR" "zone not delegated to us" && pass "a failing hook is named with its stderr (exit 11)"

# A hook that publishes nothing: the CA's dns-01 check fails (exit 14): Pebble does look.
run_agent 14 "${AGENT[@]}" issue --key "$CERT_F" -d nothing.example.com --challenge dns-01 \
  --dns-hook "$(type -P true)" && contains "$ERR" "nothing.example.com" && pass "no record, no certificate"

# ---- (b) RFC 2136 to BIND 9 ----
mkdir -p "$NAMED_DIR"
(umask 077 && tsig-keygen -a hmac-sha256 acme-test >"$NAMED_DIR/acme-test.key" &&
  tsig-keygen -a hmac-sha256 readonly >"$NAMED_DIR/readonly.key" &&
  tsig-keygen -a hmac-sha256 intruder >"$WORK/intruder.key")
# The key acme-test with a secret of its own: BIND knows the name, the signature fails.
sed 's|secret ".*";|secret "'"$(openssl rand -base64 32)"'";|' "$NAMED_DIR/acme-test.key" >"$WORK/forged.key"
chmod 600 "$WORK/forged.key" # TSIG key files must be owner-only
SECRET=$(sed -n 's/.*secret "\(.*\)";.*/\1/p' "$NAMED_DIR/acme-test.key")
cp "$FIXTURES/example.test.zone" "$NAMED_DIR/"

sed -e "s|@DIR@|$NAMED_DIR|g" "$FIXTURES/named.conf.in" >"$NAMED_DIR/named.conf.in"
if start_named "$NAMED_DIR"; then
  NS=127.0.0.1:$NAMED_PORT
  PEBBLE_DNS_SERVER=$NS setup_pebble pebble-bind
  STATE_B=$WORK/state-bind
  B=("$ACME_AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --state-dir "$STATE_B")
  run_agent 0 "${B[@]}" account register --key "$ACCT" --agree-tos

  CERT_B=$("$ACME_AGENT" key generate --key "$(hsm_key cert-bind)" --type ec-p256)
  if run_agent 0 "${B[@]}" -v issue --key "$CERT_B" -d x.example.test -d '*.x.example.test' \
    --challenge dns-01 --rfc2136 "$NS" --tsig-key "$NAMED_DIR/acme-test.key"; then
    SANS=$(openssl x509 -in "$STATE_B/live/x.example.test/cert.pem" -noout -ext subjectAltName 2>/dev/null || true)
    verify_cert "$STATE_B/live/x.example.test" "$CERT_B" &&
      expect "both names in the certificate: $SANS" grep -qF 'DNS:*.x.example.test' <<<"$SANS" &&
      expect "both names in the certificate: $SANS" grep -qF 'DNS:x.example.test' <<<"$SANS" &&
      pass "dns-01 over RFC 2136 + TSIG to BIND: wildcard and base name"
    contains "$ERR" "zone example.test." && contains "$ERR" "key acme-test" || true
    no_txt 127.0.0.1 "$NAMED_PORT" _acme-challenge.x.example.test "BIND after cleanup" || true
    # BIND saw two adds and two exact deletes, each signed with acme-test.
    for what in "adding an RR at '_acme-challenge.x.example.test' TXT" "deleting an RR at _acme-challenge.x.example.test TXT"; do
      expect "BIND's log lacks two updates '$what' by key acme-test" \
        [ "$(grep -cF "/key acme-test: updating zone 'example.test/IN': $what" "$NAMED_DIR/named.log")" = 2 ] || true
    done
  fi
  lacks "$ERR" "$SECRET" || true
  lacks "$OUT" "$SECRET" || true

  # A key BIND knows but grants nothing: REFUSED, exit 14, zone and key named.
  run_agent 14 "${B[@]}" issue --key "$CERT_B" -d y.example.test --challenge dns-01 --rfc2136 "$NS" \
    --tsig-key "$NAMED_DIR/readonly.key" &&
    contains "$ERR" "REFUSED" && contains "$ERR" "example.test." && contains "$ERR" "'readonly'" &&
    pass "a key without a grant is refused (exit 14)"
  # A key BIND does not know: NOTAUTH with BADKEY.
  run_agent 14 "${B[@]}" issue --key "$CERT_B" -d y.example.test --challenge dns-01 --rfc2136 "$NS" \
    --tsig-key "$WORK/intruder.key" &&
    contains "$ERR" "NOTAUTH" && contains "$ERR" "BADKEY" && contains "$ERR" "'intruder'" &&
    pass "an unknown key is refused (exit 14)"
  # The right name with a wrong secret: NOTAUTH with BADSIG, and neither secret printed.
  FORGED=$(sed -n 's/.*secret "\(.*\)";.*/\1/p' "$WORK/forged.key")
  run_agent 14 "${B[@]}" -v issue --key "$CERT_B" -d y.example.test --challenge dns-01 --rfc2136 "$NS" \
    --tsig-key "$WORK/forged.key" &&
    contains "$ERR" "BADSIG" && lacks "$ERR" "$FORGED" && lacks "$ERR" "$SECRET" &&
    pass "a wrong secret is refused and not printed (exit 14)"
  # A name outside every zone BIND serves.
  run_agent 14 "${B[@]}" issue --key "$CERT_B" -d elsewhere.example.org --challenge dns-01 --rfc2136 "$NS" \
    --tsig-key "$NAMED_DIR/acme-test.key" && contains "$ERR" "no zone" && pass "a name outside BIND's zones"
  no_txt 127.0.0.1 "$NAMED_PORT" _acme-challenge.y.example.test "BIND after the refused updates" || true
fi
finish
