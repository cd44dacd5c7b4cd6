#!/usr/bin/env bash
# pkcs11: URIs without module-path go through p11-kit's proxy module, so every token the
# system has registered with p11-kit is found. SoftHSM is registered for this test only,
# in a user config under a scratch HOME (~/.config/pkcs11/modules/*.module, see
# pkcs11.conf(5)); ACME_AGENT_PKCS11_MODULE is unset. p11-kit ignores user configs in a
# process running as root, so the agent runs as nobody here. key generate, key list,
# account register and an issuance from Pebble all run with URIs that name no module.
# Keeping SoftHSM out of the proxy in the same user config makes the token vanish
# (exit 5): the agent really asks p11-kit, not SoftHSM directly.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
setup_hsm # exports SOFTHSM2_CONF: the proxy loads SoftHSM in the agent's process
unset ACME_AGENT_PKCS11_MODULE
export HOME=$WORK/home
MODULES=$HOME/.config/pkcs11/modules
mkdir -p "$MODULES" "$STATE"
chmod 700 "$STATE"
# Same file name as Debian's /usr/share/p11-kit/modules/softhsm2.module, so this user file
# replaces it (and registers SoftHSM where no system file exists).
printf 'module: /usr/lib/softhsm/libsofthsm2.so\n' >"$MODULES/softhsm2.module"
chown -R nobody "$WORK/hsm" "$HOME" "$STATE"
printf '#!/bin/sh\nexec setpriv --reuid=nobody --regid=nogroup --clear-groups %q "$@"\n' "$ACME_AGENT" >"$WORK/agent"
chmod 755 "$WORK/agent"
ACME_AGENT=$WORK/agent # also for lib.sh's verify_cert
setup_pebble

# The token URI without module-path: pkcs11:token=acme?pin-source=file:...
BARE=$(sed 's/module-path=[^&]*&//' <<<"$TOKEN")
[[ $BARE == *module-path* || $BARE != *pin-source=file:* ]] && fail "cannot strip module-path from $TOKEN"
key() { echo "${BARE/\?/;object=$1?}"; }

run_agent 0 "$ACME_AGENT" key generate --key "$(key acct)" --type ec-p256 && ACCT=$(cat "$OUT")
run_agent 0 "$ACME_AGENT" key generate --key "$(key www)" --type ec-p256 && CERT=$(cat "$OUT")
for k in "$ACCT" "$CERT"; do
  [[ $k == pkcs11:token=acme\;* && $k != *module-path* ]] || fail "generated URI: $k"
done
run_agent 0 "$ACME_AGENT" --json key list --key "$BARE" \
  && jq -e '[.. | strings | select(test("object=www;"))] | length > 0' "$OUT" >/dev/null \
  && jq -e '[.. | strings | select(test("object=acct;"))] | length > 0' "$OUT" >/dev/null \
  && pass "key generate + key list through p11-kit's proxy" || fail "key list: $(head -c 400 "$OUT")"

run_agent 0 "${AGENT[@]}" account register --key "$ACCT" --agree-tos \
  && run_agent 0 "${AGENT[@]}" issue --key "$CERT" -d p11kit.example.com --http-port "127.0.0.1:$PEBBLE_HTTP_PORT" \
  && verify_cert "$STATE/live/p11kit.example.com" "$CERT" \
  && expect "key.uri is not the generated URI" [ "$(cat "$STATE/live/p11kit.example.com/key.uri")" = "$CERT" ] \
  && pass "account + certificate keys without module-path; issued by Pebble"

# The same URIs with SoftHSM kept out of the proxy ("disable-in: p11-kit-proxy",
# pkcs11.conf(5)): the token is gone, and the message says which tokens there are.
printf 'module: /usr/lib/softhsm/libsofthsm2.so\ndisable-in: p11-kit-proxy\n' >"$MODULES/softhsm2.module"
run_agent 5 "$ACME_AGENT" key list --key "$BARE" && contains "$ERR" "tokens present" \
  && lacks "$ERR" "'acme'" && pass "unregistered from p11-kit -> token absent (exit 5)"
finish
