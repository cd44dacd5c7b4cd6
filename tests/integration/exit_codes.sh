#!/usr/bin/env bash
# The command line a first-time user meets, without any server: the exit codes README.md,
# docs/troubleshooting.md and the man page list are the ones `acme-agent --help` prints
# (agent/cli/exit_codes.cpp); parser errors look like every other error (prefix, a "did
# you mean" for a mistyped command, JSON on stdout with --json); global options work after
# the command; a missing account is exit 3 before any request; help text is ASCII (help2man
# turned a section sign into "??").
source "$(dirname "$0")/lib.sh"
A=$ACME_AGENT
SRC=$ACME_AGENT_SOURCE_DIR

# The table --help prints: "CODE|MEANING" lines.
"$A" --help >"$WORK/help.txt"
sed -n '/^Exit codes:$/,/^[^ ]/s/^  \([0-9][0-9]*\)  *\(.*\)$/\1|\2/p' "$WORK/help.txt" >"$WORK/codes.txt"
expect "--help lists 18 exit codes: $(cat "$WORK/codes.txt")" [ "$(wc -l <"$WORK/codes.txt")" -eq 18 ]
# README's "### Exit codes" table, backquotes dropped (as the man page's EXIT STATUS gets it).
awk '/^#+ /{ on = ($0 == "### Exit codes") } on' "$SRC/README.md" |
  sed -n 's/^| \([0-9][0-9]*\) | \(.*\) |$/\1|\2/p' | tr -d '`' >"$WORK/readme.txt"
diff "$WORK/codes.txt" "$WORK/readme.txt" >"$WORK/diff.txt" &&
  pass "README's exit code table is the one --help prints" ||
  fail "README.md '### Exit codes' differs from acme-agent --help: $(cat "$WORK/diff.txt")"
# Every code docs/troubleshooting.md explains exists.
for code in $(sed -n 's/^| \([0-9][0-9]*\) | .*|$/\1/p' "$SRC/docs/troubleshooting.md" | sort -un); do
  grep -q "^$code|" "$WORK/codes.txt" || fail "docs/troubleshooting.md explains exit $code, which does not exist"
done
# Every code the code can return is documented (the enum in exit_codes.h).
for code in $(sed -n 's/^ *k[A-Za-z]* = \([0-9]*\),.*$/\1/p' "$SRC/agent/cli/exit_codes.h"); do
  grep -q "^$code|" "$WORK/codes.txt" || fail "exit code $code of exit_codes.h is not in --help"
done
pass "troubleshooting.md and exit_codes.h agree with the table"

# The man page (built with the default target): ASCII only, the ENVIRONMENT it reads,
# the deploy-pending file where it is.
MAN=$ACME_AGENT_BINARY_DIR/man/acme-agent.1
if [ -f "$MAN" ]; then
  lacks "$MAN" "??"
  for v in ACME_AGENT_SERVER ACME_AGENT_CA_FILE ACME_AGENT_STATE_DIR ACME_AGENT_TCTI; do
    sed -n '/^\.SH ENVIRONMENT/,/^\.SH /p' "$MAN" | grep -q "^\.B $v$" || fail "man ENVIRONMENT lacks $v"
  done
  contains "$MAN" "orders/NAME.deploy-pending" && lacks "$MAN" "live/NAME/deploy-pending" &&
    pass "man page: no mangled characters, ENVIRONMENT complete"
else
  fail "no man page at $MAN (help2man installed? build the default target)"
fi
# Every command's --help is ASCII (what help2man copies into the man page).
for c in "" key "key generate" "key list" "key show" "key delete" "key import-hmac" account \
         "account register" "account show" "account update" "account deactivate" "account rollover" \
         issue renew enroll revoke run; do
  # shellcheck disable=SC2086
  "$A" $c --help >"$WORK/h.txt"
  LC_ALL=C grep -qP '[^\x00-\x7f]' "$WORK/h.txt" && fail "'acme-agent $c --help' has non-ASCII text: $(LC_ALL=C grep -P '[^\x00-\x7f]' "$WORK/h.txt")"
done
pass "every --help is ASCII"

# Parser errors: the prefix, a suggestion for a mistyped command, exit 2.
run_agent 2 "$A" isue -d x.example.com &&
  contains "$ERR" "acme-agent: error: unknown command 'isue'; did you mean 'issue'?"
run_agent 2 "$A" key gen --key file:x && contains "$ERR" "acme-agent: error: key: unknown command 'gen'; did you mean 'generate'?"
run_agent 2 "$A" issue --no-such-option && contains "$ERR" "acme-agent: error: issue: " && contains "$ERR" "--no-such-option"
# ... and with --json (before or after the command) the error is JSON on stdout.
run_agent 2 "$A" --json acount show &&
  expect "parser error as JSON: $(cat "$OUT")" jq -e '.error.code == "usage" and (.error.message | contains("did you mean '"'"'account'"'"'"))' "$OUT" >/dev/null
run_agent 2 "$A" issue --bogus --json &&
  expect "parser error as JSON: $(cat "$OUT")" jq -e '.error.code == "usage"' "$OUT" >/dev/null
pass "parser errors: prefix, did you mean, JSON"

# Global options after the command; no account: exit 3 (README), before any request (the
# server is unreachable on purpose: a request would be exit 12).
NOWHERE=https://127.0.0.1:1/dir
run_agent 3 "$A" account show --json --server "$NOWHERE" --state-dir "$STATE" &&
  expect "JSON not_found: $(cat "$OUT")" jq -e '.error.code == "not_found"' "$OUT" >/dev/null &&
  contains "$ERR" "account register"
mkdir -m 700 "$WORK/keys"
run_agent 0 "$A" key generate --key "file:$WORK/keys/cert.pem" --type ec-p256
run_agent 3 "$A" --server "$NOWHERE" --state-dir "$STATE" issue --key "file:$WORK/keys/cert.pem" \
  -d x.example.com --http-port 127.0.0.1:0 && contains "$ERR" "account register" &&
  pass "global options after the command; no account is exit 3 before any request"
finish
