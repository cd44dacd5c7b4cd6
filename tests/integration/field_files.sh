#!/usr/bin/env bash
# Issue #14 items 1, 2, 10, 11 as a user meets them (SECURITY.md rules 17, 18): symlinks
# where the agent writes (webroot, --out, the state dir's children), a state dir of another
# user, secret and config files others could read or change, pin-value on the command
# line, a PIN file ending in a newline, and relative paths that a later renew from cwd /
# must still find. One Pebble and one token for all of it.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
SECRET_PIN=pin-Field-2718
SOFTHSM_PIN=$SECRET_PIN setup_hsm
A=$ACME_AGENT
MOD=$ACME_AGENT_PKCS11_MODULE
key_with() { echo "pkcs11:token=acme;object=$1?module-path=$MOD&$2"; }
mode() { stat -c %a "$1"; }
# A directory the agent must never touch: 0700 and empty, checked after each attempt.
ELSEWHERE=$WORK/elsewhere
mkdir -m 700 "$ELSEWHERE"
untouched() { expect "$1: $ELSEWHERE was touched" test "$(mode "$ELSEWHERE")" = 700 -a -z "$(ls -A "$ELSEWHERE")"; }

# ---- secrets (no CA needed) ----
PROBE=$("$A" key generate --key "$(hsm_key probe)" --type ec-p256)
# pin-value on the command line: refused, exit 2, the fix named, the PIN never echoed.
run_agent 2 "$A" key show --key "$(key_with probe "pin-value=$SECRET_PIN")" &&
  contains "$ERR" "pin-source=file:" && lacks "$ERR" "$SECRET_PIN" && lacks "$OUT" "$SECRET_PIN" &&
  pass "pin-value on the command line is refused, naming pin-source=file:"
# PIN files: another user's, a symlink, a FIFO: refused on the opened file.
cp "$PIN_FILE" "$WORK/nobody.pin" && chown nobody "$WORK/nobody.pin"
run_agent 2 "$A" key show --key "$(key_with probe "pin-source=file:$WORK/nobody.pin")" &&
  contains "$ERR" "is owned by uid $(id -u nobody)" && contains "$ERR" "chown" &&
  pass "a PIN file owned by another user is refused"
ln -s "$PIN_FILE" "$WORK/link.pin"
run_agent 2 "$A" key show --key "$(key_with probe "pin-source=file:$WORK/link.pin")" &&
  contains "$ERR" "$WORK/link.pin" && contains "$ERR" "symlink" && pass "a symlinked PIN file is refused"
# A PIN file ending in a newline: works, warned once (PKCS#11 consumers read it raw).
printf '%s\n' "$SECRET_PIN" >"$WORK/nl.pin" && chmod 600 "$WORK/nl.pin"
run_agent 0 "$A" key show --key "$(key_with probe "pin-source=file:$WORK/nl.pin")" &&
  expect "one newline warning: $(cat "$ERR")" [ "$(grep -c 'ends in a newline' "$ERR")" = 1 ] &&
  contains "$ERR" "printf '%s'" && lacks "$ERR" "$SECRET_PIN" && pass "a PIN file with a newline is warned about"
run_agent 0 "$A" key show --key "$PROBE" && lacks "$ERR" "newline" && pass "no warning for a PIN file without one"
# file: keys: a 0644 one and another user's are refused; the agent's own (0600) works.
run_agent 0 "$A" key generate --key "file:$WORK/soft.pem" --type ec-p256
run_agent 0 "$A" key show --key "file:$WORK/soft.pem"
chmod 644 "$WORK/soft.pem"
run_agent 2 "$A" key show --key "file:$WORK/soft.pem" && contains "$ERR" "chmod 600 $WORK/soft.pem" &&
  pass "a file: key others can read is refused"

# ---- the CA ----
setup_pebble
setup_account
A=("${AGENT[@]}")
S=("$ACME_AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE") # with a --state-dir of its own
# EAB and TSIG key files others can read: refused, with the fix.
printf 'c2VjcmV0LWtleS1mb3ItZWFi' >"$WORK/eab.key" && chmod 644 "$WORK/eab.key"
run_agent 2 "${S[@]}" --state-dir "$WORK/state-eab" account register --key "$ACCT" --agree-tos \
  --eab-kid kid-1 --eab-hmac-key "$WORK/eab.key" && contains "$ERR" "chmod 600 $WORK/eab.key" &&
  pass "an EAB key file others can read is refused"
(umask 077 && printf 'key "k" {\n algorithm hmac-sha256;\n secret "c2VjcmV0";\n};\n' >"$WORK/tsig.key")
chmod 640 "$WORK/tsig.key"
CERT=$("$ACME_AGENT" key generate --key "$(hsm_key cert)" --type ec-p256)
run_agent 2 "${A[@]}" issue --key "$CERT" -d tsig.example.com --challenge dns-01 \
  --rfc2136 127.0.0.1:9 --tsig-key "$WORK/tsig.key" && contains "$ERR" "chmod 600 $WORK/tsig.key" &&
  pass "a TSIG key file others can read is refused"

# Webroot: a .well-known or acme-challenge that is a symlink is refused, never followed.
mkdir -p "$WORK/www1" "$WORK/www2/.well-known"
ln -s "$ELSEWHERE" "$WORK/www1/.well-known"
ln -s "$ELSEWHERE" "$WORK/www2/.well-known/acme-challenge"
for w in www1/.well-known www2/.well-known/acme-challenge; do
  run_agent 2 "${A[@]}" issue --key "$CERT" -d "${w%%/*}.example.com" --webroot "$WORK/${w%%/*}" &&
    contains "$ERR" "$WORK/$w" && contains "$ERR" "symlink" && untouched "webroot $w" &&
    pass "webroot: a symlinked $w is refused"
done

# --out: an existing 0700 dir keeps its mode; a symlinked one is refused.
mkdir -m 700 "$WORK/out700"
run_agent 0 "${A[@]}" issue --key "$CERT" -d out.example.com --http-port "$HTTP" --out "$WORK/out700" &&
  verify_cert "$WORK/out700" "$CERT" && expect "--out mode $(mode "$WORK/out700")" [ "$(mode "$WORK/out700")" = 700 ] &&
  pass "--out: an existing 0700 directory keeps its mode"
ln -s "$ELSEWHERE" "$WORK/outlink"
run_agent 2 "${A[@]}" issue --key "$CERT" -d outlink.example.com --http-port "$HTTP" --out "$WORK/outlink" &&
  contains "$ERR" "$WORK/outlink" && contains "$ERR" "symlink" && untouched "--out symlink" &&
  pass "--out: a symlinked directory is refused"

# State dir: another user's is refused; a symlinked child is refused, its target untouched.
mkdir -m 700 "$WORK/state-nobody" && chown nobody "$WORK/state-nobody"
run_agent 15 "${S[@]}" --state-dir "$WORK/state-nobody" issue --key "$CERT" -d n.example.com \
  --http-port "$HTTP" && contains "$ERR" "owned by uid $(id -u nobody)" &&
  expect "files in another user's state dir" [ -z "$(ls -A "$WORK/state-nobody")" ] &&
  pass "a state dir owned by another user is refused"
mkdir -m 700 "$WORK/state-link" && ln -s "$ELSEWHERE" "$WORK/state-link/accounts"
run_agent 2 "${S[@]}" --state-dir "$WORK/state-link" account register --key "$ACCT" --agree-tos &&
  contains "$ERR" "$WORK/state-link/accounts" && contains "$ERR" "symlink" && untouched "state dir accounts" &&
  pass "a symlinked accounts/ in the state dir is refused"

# Config files: group-writable or another user's: refused (their deploy_hook runs as us);
# a pin-value only in an owner-only file.
PV_KEY=$("$ACME_AGENT" key generate --key "$(hsm_key pv)" --type ec-p256)
config() {
  printf 'server = "%s"\nca_file = "%s"\nstate_dir = "%s"\naccount_key = "%s"\n' \
    "$PEBBLE_URL" "$PEBBLE_CA_FILE" "$STATE" "$ACCT"
  printf '[[certificate]]\ndomains = ["pv.example.com"]\nkey = "%s"\nhttp_port = "%s"\n' "$1" "$HTTP"
}
# run records each attempt in the state dir, but never in another user's.
config "$CERT" >"$WORK/sn.toml"
run_agent 15 "$ACME_AGENT" --state-dir "$WORK/state-nobody" run --once --config "$WORK/sn.toml" &&
  contains "$ERR" "owned by uid $(id -u nobody)" &&
  expect "files in another user's state dir: $(ls -A "$WORK/state-nobody")" [ -z "$(ls -A "$WORK/state-nobody")" ] &&
  pass "run --once: no attempt recorded in another user's state dir"
config "$CERT" >"$WORK/gw.toml" && chmod 664 "$WORK/gw.toml"
run_agent 2 "$ACME_AGENT" run --once --config "$WORK/gw.toml" && contains "$ERR" "chmod go-w" &&
  pass "a group-writable config file is refused"
config "$CERT" >"$WORK/nobody.toml" && chown nobody "$WORK/nobody.toml"
run_agent 2 "$ACME_AGENT" run --once --config "$WORK/nobody.toml" && contains "$ERR" "owned by uid" &&
  pass "a config file owned by another user is refused"
PV_URI="${PV_KEY%%\?*}?module-path=$MOD&pin-value=$SECRET_PIN"
config "$PV_URI" >"$WORK/pv.toml" && chmod 644 "$WORK/pv.toml"
run_agent 2 "$ACME_AGENT" run --once --config "$WORK/pv.toml" && contains "$ERR" "chmod 600" &&
  lacks "$ERR" "$SECRET_PIN" && pass "a pin-value in a config others can read is refused"
chmod 600 "$WORK/pv.toml"
run_agent 0 "$ACME_AGENT" run --once --config "$WORK/pv.toml" &&
  verify_cert "$STATE/live/pv.example.com" "${PV_KEY}" && lacks "$ERR" "$SECRET_PIN" &&
  lacks "$STATE/live/pv.example.com/key.uri" "$SECRET_PIN" &&
  pass "a pin-value in an owner-only config file works, and is not stored"

# Relative paths, issued in one directory, renewed from / (as cron and systemd do).
mkdir -p "$WORK/rel"
(
  cd "$WORK/rel"
  cp "$PIN_FILE" hsm.pin
  run_agent 0 "${S[@]}" --state-dir st account register --agree-tos \
    --key "pkcs11:token=acme;object=acct?module-path=$MOD&pin-source=file:hsm.pin" &&
    run_agent 0 "$ACME_AGENT" key generate --key file:key.pem --type ec-p256 &&
    run_agent 0 "${S[@]}" --state-dir st issue --key file:key.pem -d rel.example.com \
      --http-port "$HTTP" --out out
) || fail "relative paths: issue"
contains "$WORK/rel/st/live/rel.example.com/key.uri" "file:$WORK/rel/key.pem" &&
  contains "$(ls "$WORK"/rel/st/accounts/*.json)" "pin-source=file:$WORK/rel/hsm.pin" &&
  expect "--out not made absolute" [ -f "$WORK/rel/out/cert.pem" ] &&
  expect "created --out mode" [ "$(mode "$WORK/rel/out")" = 755 ] &&
  pass "relative paths are stored absolute"
(cd / && run_agent 0 "${S[@]}" --state-dir "$WORK/rel/st" renew --name rel.example.com --force) &&
  verify_cert "$WORK/rel/st/live/rel.example.com" "file:$WORK/rel/key.pem" &&
  pass "renew from / finds the key, the PIN file and the account"
finish
