#!/usr/bin/env bash
# issue --batch FILE --jobs N and renew --all --jobs N against Pebble, keys in SoftHSM:
# a 12-order batch on 4 workers issues every certificate (each verifies, each on its own
# token key); a bad line fails the whole batch before any order (exit 2, FILE:LINE, state
# untouched); an order the CA refuses fails alone (the others are issued, the exit code is
# the failure's); renew --all --jobs 4 --force renews everything.
source "$(dirname "$0")/lib.sh"
export PEBBLE_VA_NOSLEEP=1
setup_hsm
setup_pebble
A=("${AGENT[@]}")
setup_account

N=12
BATCH=$WORK/orders.txt
{
  echo "# $N certificates, two names each"
  for i in $(seq "$N"); do
    type=ec-p256
    [ $((i % 4)) = 0 ] && type=rsa-2048
    KEY[i]=$("$ACME_AGENT" key generate --key "$(hsm_key "cert-$i")" --type "$type")
    [ $((i % 5)) = 0 ] && echo
    echo "${KEY[i]}	b$i.example.com www.b$i.example.com   # order $i"
  done
} >"$BATCH"

# A bad line: the batch is refused before any order starts, naming FILE:LINE.
BAD=$WORK/bad.txt
awk 'NR == 7 { print "pkcs11:token=acme;object=nosuch;bogus=1 x.example.com"; next } { print }' "$BATCH" >"$BAD"
BEFORE=$(tree_digest "$STATE")
run_agent 2 "${A[@]}" issue --batch "$BAD" --jobs 4 --http-port "$HTTP" &&
  contains "$ERR" "$BAD:7: bad key URI" &&
  expect "state changed after a bad line" [ "$(tree_digest "$STATE")" = "$BEFORE" ] &&
  expect "a certificate was written" [ ! -e "$STATE/live" ] && pass "bad line: exit 2 with FILE:LINE, nothing issued"
# A key that is not in the token: refused before any order too, exit 3 (not found).
sed '4s/object=cert-[0-9]*/object=missing/' "$BATCH" >"$BAD"
run_agent 3 "${A[@]}" issue --batch "$BAD" --http-port "$HTTP" && contains "$ERR" "$BAD:4" &&
  expect "a certificate was written" [ ! -e "$STATE/live" ] && pass "missing key: exit 3 with FILE:LINE, nothing issued"
run_agent 2 "${A[@]}" issue --batch "$BATCH" --jobs 65 --http-port "$HTTP" && contains "$ERR" "--jobs"
run_agent 2 "${A[@]}" issue --batch "$BATCH" --key "${KEY[1]}" --http-port "$HTTP" && contains "$ERR" "drop --key"
run_agent 2 "${A[@]}" issue --key "${KEY[1]}" -d b1.example.com --jobs 2 --http-port "$HTTP" && contains "$ERR" "--batch"

# The batch, 4 at a time.
if run_agent 0 "${A[@]}" --json issue --batch "$BATCH" --jobs 4 --http-port "$HTTP"; then
  expect "not $N results in order: $(head -c 400 "$OUT")" \
    jq -e --argjson n "$N" 'length == $n and all(.ok) and ([.[].name] == [range(1; $n + 1) | "b\(.).example.com"])' "$OUT" >/dev/null
  ok=0
  : >"$WORK/pubkeys"
  for i in $(seq "$N"); do
    verify_cert "$STATE/live/b$i.example.com" "${KEY[i]}" || continue
    [ "$(cat "$STATE/live/b$i.example.com/key.uri")" = "${KEY[i]}" ] || { fail "key.uri of b$i"; continue; }
    openssl x509 -in "$STATE/live/b$i.example.com/cert.pem" -noout -pubkey | sha256sum >>"$WORK/pubkeys"
    ok=$((ok + 1))
  done
  expect "keys not distinct" [ "$(sort -u "$WORK/pubkeys" | wc -l)" = "$N" ] &&
    expect "only $ok of $N verified" [ "$ok" = "$N" ] && pass "batch of $N with --jobs 4: every certificate verifies, each on its own key"
  expect "orders left in the state dir" [ -z "$(ls -A "$STATE/orders" 2>/dev/null)" ]
fi
# Text output: the summary line.
cp "$BATCH" "$WORK/again.txt"
run_agent 0 "${A[@]}" issue --batch "$WORK/again.txt" --jobs 3 --http-port "$HTTP" &&
  contains "$OUT" "issued $N of $N" && pass "text summary"

# One order the CA refuses: the others are issued; the exit code is the refusal's (14).
MIX=$WORK/mixed.txt
for i in 1 2 3 4; do
  M[i]=$("$ACME_AGENT" key generate --key "$(hsm_key "mix-$i")" --type ec-p256)
done
printf '%s\n' "${M[1]} m1.example.com" "${M[2]} m2.example.com" "${M[3]} bad_name!.example.com" \
  "${M[4]} m4.example.com" >"$MIX"
if run_agent 14 "${A[@]}" --json issue --batch "$MIX" --jobs 4 --http-port "$HTTP"; then
  expect "results: $(head -c 600 "$OUT")" jq -e 'length == 4 and ([.[].ok] == [true, true, false, true])
    and .[2].line == 3 and .[2].exit_code == 14 and (.[2].error.where | startswith("urn:ietf:params:acme:error:"))' "$OUT" >/dev/null &&
    contains "$ERR" "1 of 4 failed; the first: $MIX:3 bad_name!.example.com" &&
    verify_cert "$STATE/live/m1.example.com" "${M[1]}" && verify_cert "$STATE/live/m2.example.com" "${M[2]}" &&
    verify_cert "$STATE/live/m4.example.com" "${M[4]}" &&
    expect "a directory for the refused name" [ ! -e "$STATE/live/bad_name!.example.com" ] &&
    pass "one refused order: the other 3 issued, exit 14"
fi

# renew --all --jobs 4 --force: every certificate renewed.
TOTAL=$((N + 3))
declare -A SERIAL
for d in "$STATE"/live/*/; do SERIAL[$(basename "$d")]=$(serial_of "$d/cert.pem"); done
if run_agent 0 "${A[@]}" --json renew --all --jobs 4 --force --http-port "$HTTP"; then
  expect "renew results: $(head -c 400 "$OUT")" jq -e --argjson n "$TOTAL" 'length == $n and all(.renewed)' "$OUT" >/dev/null
  changed=0
  for d in "$STATE"/live/*/; do
    name=$(basename "$d")
    [ "$(serial_of "$d/cert.pem")" != "${SERIAL[$name]}" ] && changed=$((changed + 1))
  done
  expect "only $changed of $TOTAL certificates renewed" [ "$changed" = "$TOTAL" ] &&
    verify_cert "$STATE/live/b5.example.com" "${KEY[5]}" && pass "renew --all --jobs 4 --force renewed all $TOTAL"
fi
run_agent 2 "${A[@]}" renew --name b1.example.com --jobs 2 && contains "$ERR" "--all"
# A name that is a path, not a certificate: exit 2, the rule named.
run_agent 2 "${A[@]}" renew --name ../b1.example.com && contains "$ERR" "holds '/'"
finish
