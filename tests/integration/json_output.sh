#!/usr/bin/env bash
# docs/json.md holds: each command's --json document has the fields the page lists, stdout
# is one JSON document and nothing else, and a failure prints {"error": {...}} with the
# exit code's name.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
setup_hsm
setup_pebble
A=("${AGENT[@]}" --json)
# has FIELDS...: $OUT is one JSON object (or a non-empty array of them) with every field.
has() {
  local f
  for f in "$@"; do
    jq -e --arg f "$f" 'if type == "array" then length > 0 and all(.[]; has($f)) else has($f) end' "$OUT" >/dev/null ||
      { fail "no \"$f\" in $(head -c 300 "$OUT")"; return 1; }
  done
}
ACCT=$(hsm_key acct) CERT=$(hsm_key cert)
run_agent 0 "${A[@]}" key generate --key "$ACCT" --type ec-p256 && has uri algorithm && pass "key generate"
run_agent 0 "${A[@]}" key generate --key "$CERT" --type ec-p384 && has uri algorithm
run_agent 0 "${A[@]}" key list --key "$TOKEN" && has uri algorithm &&
  expect "key list is an array of 2" [ "$(jq length "$OUT")" = 2 ] && pass "key list"
run_agent 0 "${A[@]}" key show --key "$CERT" && has uri algorithm jwk_thumbprint properties public_key_pem &&
  expect "properties is an object" jq -e '.properties | type == "object"' "$OUT" >/dev/null && pass "key show"
run_agent 0 "${A[@]}" account register --key "$ACCT" --agree-tos && has account server key && pass "account register"
run_agent 0 "${A[@]}" account show && has account server key status contact && pass "account show"
# Global options also after the command.
run_agent 0 "${AGENT[@]}" account show --json && has account server key status contact && pass "account show --json"
run_agent 0 "${A[@]}" issue --key "$CERT" -d json.example.com --http-port "127.0.0.1:$PEBBLE_HTTP_PORT" &&
  has name domains serial subject issuer not_before not_after key order directory account requests connections &&
  expect "serial is lower-case hex" jq -e '.serial | test("^[0-9a-f]+$")' "$OUT" >/dev/null &&
  expect "times are ISO 8601 UTC" jq -e '.not_after | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")' "$OUT" >/dev/null &&
  pass "issue"
run_agent 0 "${A[@]}" renew --all && has name renewed due_at && pass "renew (not due)"
run_agent 0 "${A[@]}" certificates &&
  has name domains key_uri backend serial not_before not_after days_left due ca last_attempt account &&
  expect "certificates' due and ca: $(jq -c '.[0] | {due, ca}' "$OUT")" jq -e '.[0] |
    (.due | has("at") and has("now") and has("rule") and has("why")) and
    (.ca | has("server") and has("reachable") and has("error"))' "$OUT" >/dev/null && pass "certificates"
# A port that cannot be bound (Pebble's own) is found before newOrder, in renew --all too.
BUSY=${PEBBLE_URL#https://}; BUSY=${BUSY%/dir}
run_agent 11 "${A[@]}" renew --all --force --http-port "$BUSY" && lacks "$ERR" "order: https" &&
  expect "renew --all entry: $(cat "$OUT")" jq -e '.[0].ok == false and .[0].error.code == "io"' "$OUT" >/dev/null &&
  pass "renew --all: a busy port is found before any order"
run_agent 0 "${A[@]}" revoke --cert "$STATE/live/json.example.com/cert.pem" --reason keyCompromise &&
  has revoked signed_by reason && pass "revoke"
# A failure: the error object on stdout, the code named as docs/json.md lists it.
run_agent 5 "${A[@]}" key show --key "${TOKEN/token=acme/token=nosuch}" &&
  expect "error object: $(cat "$OUT")" jq -e '.error.code == "token_absent" and (.error.message | length > 0)' "$OUT" >/dev/null &&
  pass "an error as {\"error\": {...}}"
# A parser error too.
run_agent 2 "${A[@]}" key shwo --key "$CERT" &&
  expect "parser error object: $(cat "$OUT")" jq -e '.error.code == "usage" and (.error.message | contains("did you mean"))' "$OUT" >/dev/null &&
  pass "a parser error as {\"error\": {...}}"
finish
