#!/usr/bin/env bash
# ACME Renewal Information (RFC 9773) through tests/tools/fault_proxy.py, which adds
# renewalInfo to Pebble's directory and answers it. The CertID the agent asks about is
# base64url(AKI keyIdentifier) "." base64url(serial DER content octets), computed here
# with openssl. A window in the future leaves every certificate alone (due inside that
# window); a window in the past renews each one, with "replaces": CertID in its newOrder.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
setup_hsm
setup_pebble

# ari_window START END: the proxy serves renewalInfo with this suggestedWindow (RFC 3339).
ari_window() { rules "{\"action\": \"ari\", \"start\": \"$1\", \"end\": \"$2\"}"; }
at() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
ari_window "$(at '+1 day')" "$(at '+2 days')"
start_proxy 600
mark() { MARK=$(wc -l <"$PLOG"); }
since_mark() { tail -n +"$((MARK + 1))" "$PLOG"; }

# cert_id PEM: the RFC 9773 CertID, from openssl's view of the certificate.
b64url_hex() { printf '%b' "$(sed 's/../\\x&/g' <<<"$1")" | basenc --base64url -w0 | tr -d =; }
cert_id() {
  local aki serial
  aki=$(openssl x509 -in "$1" -noout -ext authorityKeyIdentifier | sed 1d | tr -d ' \n' | sed 's/^keyid://; s/://g')
  serial=$(openssl x509 -in "$1" -noout -serial | cut -d= -f2)
  [ $((${#serial} % 2)) = 0 ] || serial=0$serial
  case ${serial:0:1} in [89A-Fa-f]) serial=00$serial ;; esac # DER INTEGER: a sign byte
  [ -n "$aki" ] && echo "$(b64url_hex "$aki").$(b64url_hex "$serial")"
}

ACCT=$("$ACME_AGENT" key generate --key "$(hsm_key acct)" --type ec-p256)
run_agent 0 "${P[@]}" account register --key "$ACCT" --agree-tos || finish
expect "no renewalInfo in the proxied directory" jq -e '.renewalInfo == "'"$PROXY"'/renewal-info/"' \
  <(curl -fsS --cacert "$PEBBLE_CA_FILE" "$PROXY/dir") >/dev/null

# Two certificates. (Pebble's serials are random positive 63-bit numbers, so their high
# bit is never set: the 00 sign byte in a CertID is left to the unit tests.)
declare -A KEY ID
for i in 1 2; do
  NAME=ari$i.example.com
  KEY[$NAME]=$("$ACME_AGENT" key generate --key "$(hsm_key "cert$i")" --type ec-p256)
  run_agent 0 "${P[@]}" issue --key "${KEY[$NAME]}" -d "$NAME" --http-port "$HTTP" || finish
  ID[$NAME]=$(cert_id "$STATE/live/$NAME/cert.pem")
  [ -n "${ID[$NAME]}" ] || fail "no AKI in $NAME's certificate"
done
NAMES=("${!KEY[@]}")

# asked_ids: the CertIDs the proxy was asked about since mark, sorted.
asked_ids() { since_mark | jq -r 'select(.event == "ari") | .certid' | sort; }
want_ids() { for n in "${NAMES[@]}"; do echo "${ID[$n]}"; done | sort; }

# A window from tomorrow to the day after: not due, due inside the window, untouched.
START=$(at '+1 day') END=$(at '+2 days')
ari_window "$START" "$END"
BEFORE=$(tree_digest "$STATE")
mark
run_agent 0 "${P[@]}" --json renew --all &&
  expect "renewed before the window: $(cat "$OUT")" jq -e 'length > 0 and all(.renewed == false)' "$OUT" >/dev/null &&
  expect "due outside the window [$START, $END]: $(jq -c 'map(.due_at)' "$OUT")" \
    jq -e --arg s "$START" --arg e "$END" 'all(.due_at >= $s and .due_at <= $e)' "$OUT" >/dev/null &&
  expect "asked about $(asked_ids | tr '\n' ' '), wanted $(want_ids | tr '\n' ' ')" [ "$(asked_ids)" = "$(want_ids)" ] &&
  expect "state changed" [ "$(tree_digest "$STATE")" = "$BEFORE" ] &&
  expect "an order although nothing is due" [ "$(since_mark | jq -s '[.[] | select(.path == "/order-plz")] | length')" = 0 ] &&
  pass "ARI window in the future: ${#NAMES[@]} certificates not renewed, due inside the window"
# One name: the same, and JSON says so.
run_agent 0 "${P[@]}" --json renew --name "${NAMES[0]}" &&
  expect "renewed: $(cat "$OUT")" jq -e '.[0].renewed == false' "$OUT" >/dev/null && pass "renew --name: not due"
# `certificates` shows the same rule: the CA's window, the same due time as renew's.
run_agent 0 "${P[@]}" --json certificates &&
  expect "certificates' due: $(jq -c 'map(.due)' "$OUT")" jq -e --arg s "$START" --arg e "$END" \
    'length == 2 and all(.due.rule == "ari" and .ca.reachable and .due.at >= $s and .due.at <= $e and
     .due.now == false and (.due.why | contains("ARI")))' "$OUT" >/dev/null &&
  pass "certificates: due inside the CA's ARI window"

# A window that closed an hour ago: renewed, each newOrder "replaces" its CertID.
ari_window "$(at '-2 hours')" "$(at '-1 hour')"
mark
declare -A OLD_SERIAL
for n in "${NAMES[@]}"; do OLD_SERIAL[$n]=$(serial_of "$STATE/live/$n/cert.pem"); done
N0=${NAMES[0]}
run_agent 0 "${P[@]}" --json renew --name "$N0" &&
  expect "not renewed: $(cat "$OUT")" jq -e '.[0].renewed == true' "$OUT" >/dev/null &&
  expect "asked about $(asked_ids)" [ "$(asked_ids)" = "${ID[$N0]}" ] &&
  expect "newOrder replaces $(since_mark | jq -c 'select(.path == "/order-plz") | .jws.payload')" \
    [ "$(since_mark | jq -r 'select(.path == "/order-plz" and .status == 201) | .jws.payload.replaces')" = "${ID[$N0]}" ] &&
  expect "same serial" [ "$(serial_of "$STATE/live/$N0/cert.pem")" != "${OLD_SERIAL[$N0]}" ] &&
  verify_cert "$STATE/live/$N0" "${KEY[$N0]}" &&
  pass "ARI window in the past: renew --name renewed, CertID ${ID[$N0]} in renewalInfo and in replaces"
# The rest with --all (the renewed one is asked about with its new CertID, and renewed again).
ID[$N0]=$(cert_id "$STATE/live/$N0/cert.pem")
OLD_SERIAL[$N0]=$(serial_of "$STATE/live/$N0/cert.pem")
mark
run_agent 0 "${P[@]}" --json renew --all &&
  expect "not all renewed: $(cat "$OUT")" jq -e 'length > 0 and all(.renewed)' "$OUT" >/dev/null &&
  expect "asked about $(asked_ids | tr '\n' ' '), wanted $(want_ids | tr '\n' ' ')" [ "$(asked_ids)" = "$(want_ids)" ] &&
  expect "replaces $(since_mark | jq -r 'select(.path == "/order-plz" and .status == 201) | .jws.payload.replaces' | sort | tr '\n' ' ')" \
    [ "$(since_mark | jq -r 'select(.path == "/order-plz" and .status == 201) | .jws.payload.replaces' | sort)" = "$(want_ids)" ] &&
  pass "ARI window in the past: renew --all renewed ${#NAMES[@]}, each newOrder replaces its CertID"
for n in "${NAMES[@]}"; do
  expect "$n: same serial" [ "$(serial_of "$STATE/live/$n/cert.pem")" != "${OLD_SERIAL[$n]}" ]
  verify_cert "$STATE/live/$n" "${KEY[$n]}"
done
[ -z "$(find "$STATE" -name '*.tmp.*')" ] || fail "temp files left"

# Profiles offered in meta.profiles (the proxy adds them to Pebble's directory): the chosen
# one is sent in newOrder; one the CA does not offer is refused before anything is sent.
rules '{"action": "ari", "start": "2000-01-01T00:00:00Z", "end": "2000-01-02T00:00:00Z", "profiles": {"classic": "the usual", "shortlived": "6 days"}}'
PK=$("$ACME_AGENT" key generate --key "$(hsm_key profiled)" --type ec-p256)
mark
run_agent 0 "${P[@]}" issue --key "$PK" -d profiled.example.com --http-port "127.0.0.1:$PEBBLE_HTTP_PORT" --profile shortlived &&
  expect "newOrder without the profile: $(since_mark | jq -c 'select(.path == "/order-plz") | .jws.payload')" \
    [ "$(since_mark | jq -r 'select(.path == "/order-plz" and .status == 201) | .jws.payload.profile')" = shortlived ] &&
  pass "--profile shortlived sent in newOrder"
run_agent 2 "${P[@]}" issue --key "$PK" -d profiled2.example.com --http-port "127.0.0.1:$PEBBLE_HTTP_PORT" --profile tiny &&
  contains "$ERR" "it offers: classic, shortlived" && pass "an unknown profile is refused, the offered ones named"
finish
