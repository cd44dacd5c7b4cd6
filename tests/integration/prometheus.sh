#!/usr/bin/env bash
# Prometheus' side, with Prometheus' own tools (Debian prometheus):
# - dist/prometheus as an operator installs it: promtool loads the alert rules and runs
#   their unit tests (acme-agent.test.yml: each alert fires when it should, with the
#   labels and text an operator sees, and stays quiet otherwise);
# - a real Prometheus scrapes the agent's /metrics endpoint (metrics_fixture: the agent's
#   metric set with known values behind the real endpoint) and its HTTP API returns them;
# - it scrapes a `run --metrics` daemon too, which issues one certificate from Pebble and
#   fails another (its http-01 port is taken), then renews the first: expiry, renewals, ACME requests and
#   signatures as Prometheus sees them; `promtool check metrics` on the daemon's exposition;
#   the daemon's log lines (time, level, certificate); --log-level and --log-format.
source "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || { fail "promtool missing (scripts/install-deps.sh installs prometheus)"; finish; }
DIST=$ACME_AGENT_SOURCE_DIR/dist/prometheus

promtool check rules "$DIST/acme-agent.rules.yml" >"$WORK/check.out" 2>&1 &&
  pass "promtool check rules" || fail "promtool check rules: $(cat "$WORK/check.out")"
# promtool resolves rule_files relative to the test file.
for t in "$DIST"/*.test.yml; do
  promtool test rules "$t" >"$WORK/test.out" 2>&1 &&
    pass "promtool test rules $(basename "$t")" || fail "promtool test rules $t: $(cat "$WORK/test.out")"
done

# The scrape.
NOT_AFTER=1893456000 # 2030-01-01
"$ACME_AGENT_BINARY_DIR/tests/tools/metrics_fixture" "$NOT_AFTER" >"$WORK/fixture.out" 2>"$WORK/fixture.err" &
WEB_PID=$! # cleanup stops it
for _ in $(seq 200); do
  grep -q '^ready ' "$WORK/fixture.out" 2>/dev/null && break
  kill -0 "$WEB_PID" 2>/dev/null || break
  read -rt 0.05 <> <(:) || true
done
TARGET=$(sed -n 's/^ready //p' "$WORK/fixture.out")
[ -n "$TARGET" ] || { fail "metrics_fixture did not start: $(cat "$WORK/fixture.err")"; finish; }

# The daemon: "good" issues from Pebble; "bad" wants its http-01 responder on the port the
# fixture holds, so each of its attempts fails before anything is sent to the CA.
export PEBBLE_VA_NOSLEEP=1
setup_hsm
setup_pebble
ACCT=$("$ACME_AGENT" key generate --key "$(hsm_key acct)" --type ec-p256)
K_GOOD=$("$ACME_AGENT" key generate --key "$(hsm_key cert-good)" --type ec-p256)
DCONF=$WORK/daemon.toml
printf '%s\n' "account_key = \"$ACCT\"" 'agree_tos = true' 'state_dir = "dstate"' \
  '[[certificate]]' 'name = "good"' 'domains = ["good.example.com"]' "key = \"$K_GOOD\"" \
  "http_port = \"$HTTP\"" \
  '[[certificate]]' 'name = "bad"' 'domains = ["bad.example.com"]' "key = \"$K_GOOD\"" \
  "http_port = \"$TARGET\"" >"$DCONF"
DERR=$WORK/daemon.err
"$ACME_AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" run --config "$DCONF" \
  --metrics 127.0.0.1:0 >"$WORK/daemon.out" 2>"$DERR" </dev/null &
DAEMON=$!
trap 'kill "$DAEMON" 2>/dev/null || true; cleanup' EXIT
GOOD=$WORK/dstate/live/good
for _ in $(seq 1200); do # 60 s at most
  [ -s "$GOOD/cert.pem" ] && grep -q 'run: bad: error' "$DERR" && break
  kill -0 "$DAEMON" 2>/dev/null || break
  read -rt 0.05 <> <(:) || true
done
DTARGET=$(sed -n 's|.*run: metrics at http://\([^/]*\)/metrics$|\1|p' "$DERR" | head -n 1)
[ -s "$GOOD/cert.pem" ] && [ -n "$DTARGET" ] ||
  { fail "the daemon did not issue or serve metrics: $(tail -c 800 "$DERR")"; finish; }
start_prometheus "$TARGET" "$DTARGET"

# value QUERY WANT: Prometheus returns WANT for QUERY.
value() {
  local v
  prom_value v "$1" || return 0
  expect "$1 is $2 as scraped, not $v" [ "$v" = "$2" ]
}
value 'up{job="acme-agent"}' 1
value 'acme_agent_certificate_expiry_timestamp_seconds{certificate="www.example.org"}' "$NOT_AFTER"
value 'acme_agent_certificate_not_before_timestamp_seconds{certificate="www.example.org"}' $((NOT_AFTER - 90 * 86400))
value 'acme_agent_renewals_total{certificate="www.example.org",result="failure"}' 1
value 'acme_agent_renewals_total{certificate="www.example.org",result="success"}' 0
value "acme_agent_signature_duration_seconds_count{backend=\"pkcs11\",instance=\"$TARGET\"}" 1
value 'acme_agent_build_info{version="fixture"}' 1
# The failed renewal happened when the fixture started: within the last hour.
value "acme_agent_certificate_renewal_failing_since_timestamp_seconds > bool $(($(date +%s) - 3600))" 1
# Every sample of the exposition was ingested (none dropped as unparsable or duplicate).
value 'scrape_samples_scraped{job="acme-agent"} - scrape_samples_post_metric_relabeling{job="acme-agent"}' 0

# The daemon, as Prometheus sees it: the stored certificate's notAfter, one successful
# issue, the failures of "bad" in the failure metrics, the ACME traffic and the token's
# signatures.
NOT_AFTER_GOOD=$(date -u -d "$(openssl x509 -in "$GOOD/cert.pem" -noout -enddate | cut -d= -f2)" +%s)
value "acme_agent_certificate_expiry_timestamp_seconds{certificate=\"good\",instance=\"$DTARGET\"}" "$NOT_AFTER_GOOD"
value 'acme_agent_renewals_total{certificate="good",result="success"}' 1
value 'acme_agent_renewals_total{certificate="good",result="failure"}' 0
value 'acme_agent_renewals_total{certificate="bad",result="failure"} >= bool 1' 1
value 'acme_agent_renewals_total{certificate="bad",result="success"}' 0
value "acme_agent_certificate_last_renewal_failure_timestamp_seconds{certificate=\"bad\"} > bool $(($(date +%s) - 3600))" 1
value 'acme_agent_certificate_renewal_failing_since_timestamp_seconds{certificate="bad"} > bool 0' 1
value 'acme_agent_certificate_last_renewal_success_timestamp_seconds{certificate="bad"}' 0
value 'acme_agent_acme_requests_total{endpoint="newOrder",status="201"}' 1
value 'acme_agent_acme_requests_total{endpoint="finalize",status="200"}' 1
value 'acme_agent_acme_requests_total{endpoint="directory",status="200"} >= bool 1' 1
value "acme_agent_signatures_total{backend=\"pkcs11\",instance=\"$DTARGET\"} >= bool 4" 1
value "sum(acme_agent_signature_errors_total{instance=\"$DTARGET\"})" 0
value "acme_agent_build_info{instance=\"$DTARGET\"}" 1
if curl -fsS "http://$DTARGET/metrics" >"$WORK/daemon.metrics" &&
  promtool check metrics <"$WORK/daemon.metrics" >"$WORK/check-metrics.out" 2>&1; then
  pass "promtool check metrics: the daemon's exposition"
else
  fail "promtool check metrics: $(head -c 600 "$WORK/check-metrics.out")"
fi
lacks "$WORK/daemon.metrics" "pin-source" && lacks "$WORK/daemon.metrics" "$PEBBLE_URL"

# Its log: each line with the time (UTC, ms), the level and the certificate it is about.
if grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z info \[good\] run: good: issued$' "$DERR" &&
  grep -Eq '^[0-9T:.-]{23}Z warning \[bad\] run: bad: error: .*Address already in use' "$DERR"; then
  pass "daemon log lines carry time, level and certificate"
else
  fail "daemon log lines: $(head -c 800 "$DERR")"
fi
# A renewal as Prometheus sees it: renew_before_days longer than any lifetime (reloaded by
# SIGHUP) makes "good" due at once; taken out again once it was renewed, so that the daemon
# settles. Then the success counter has grown past 1 and the expiry is the settled
# certificate's notAfter.
OLD_SERIAL=$(serial_of "$GOOD/cert.pem")
cp "$DCONF" "$WORK/daemon.toml.orig"
sed -i 's/^name = "good"$/name = "good"\nrenew_before_days = 3650/' "$DCONF"
kill -HUP "$DAEMON"
for _ in $(seq 1200); do # 60 s at most
  [ "$(serial_of "$GOOD/cert.pem")" != "$OLD_SERIAL" ] && break
  kill -0 "$DAEMON" 2>/dev/null || break
  read -rt 0.05 <> <(:) || true
done
cp "$WORK/daemon.toml.orig" "$DCONF"
kill -HUP "$DAEMON"
if expect "good was not renewed: $(tail -c 600 "$DERR")" [ "$(serial_of "$GOOD/cert.pem")" != "$OLD_SERIAL" ]; then
  # Settled: the reload was logged after the last renewal.
  for _ in $(seq 1200); do
    [ "$(grep -c 'run: reloaded' "$DERR")" -ge 2 ] && break
    read -rt 0.05 <> <(:) || true
  done
  NOT_AFTER_NEW=$(date -u -d "$(openssl x509 -in "$GOOD/cert.pem" -noout -enddate | cut -d= -f2)" +%s)
  # Filters, not bools: each query is empty (and waited for) until a scrape has it.
  prom_value renewals 'acme_agent_renewals_total{certificate="good",result="success"} >= 2' &&
    prom_value expiry "acme_agent_certificate_expiry_timestamp_seconds{certificate=\"good\",instance=\"$DTARGET\"} == $NOT_AFTER_NEW" &&
    pass "a renewal by the daemon: $renewals successes counted, the new certificate's expiry scraped"
fi
kill -TERM "$DAEMON"
rc=0
wait "$DAEMON" || rc=$?
expect "daemon exit $rc after SIGTERM" [ "$rc" = 0 ]

# --log-level / --log-format: JSON lines (also the final error), each request at debug
# (method, path, status, time: no body, nonce or PIN); a bad value is exit 2 naming its
# option.
D=("$ACME_AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE")
json_lines() {
  if jq -e . "$ERR" >/dev/null 2>&1 && [ "$(grep -vc '^{' "$ERR")" = 0 ]; then
    pass "--log-format json: every stderr line of $1 is a JSON object"
  else
    fail "--log-format json: not JSON lines from $1: $(head -c 600 "$ERR")"
  fi
}
if run_agent 11 "${D[@]}" --log-format json run --config "$DCONF" --once; then
  json_lines "run --once"
  jq -e -s 'any(.[]; .level == "error" and (.message | test("^1 of 2 certificates failed")))' "$ERR" >/dev/null ||
    fail "no JSON error line for the failed run: $(head -c 600 "$ERR")"
fi
if run_agent 0 "${D[@]}" --state-dir "$WORK/dstate" --log-level debug --log-format json account show; then
  json_lines "account show"
  if jq -e -s 'any(.[]; .level == "debug" and (.message | test("^GET /dir -> 200 \\([0-9]+ ms\\)$")))' "$ERR" >/dev/null &&
    jq -e -s 'any(.[]; .level == "debug" and (.message | test("^POST /[^ ?]+ -> 200 \\([0-9]+ ms\\)$")))' "$ERR" >/dev/null &&
    jq -e -s 'any(.[]; .level == "debug" and (.message | test("^sign: pkcs11 ec-p256 ok \\([0-9]+ ms\\)$")))' "$ERR" >/dev/null; then
    pass "--log-level debug: each request (method, path, status, time) and signer call"
  else
    fail "no request lines at debug: $(head -c 800 "$ERR")"
  fi
  lacks "$ERR" "pin-source" && lacks "$ERR" '"protected"'
fi
# An explicit level wins over -v: no debug line.
run_agent 11 "${D[@]}" -v --log-level warn run --config "$DCONF" --once && lacks "$ERR" "debug: "
run_agent 2 "$ACME_AGENT" --log-level loud key show --key "$K_GOOD" && contains "$ERR" "--log-level: 'loud' is not a level"
run_agent 2 "$ACME_AGENT" --log-format xml key show --key "$K_GOOD" && contains "$ERR" "--log-format: 'xml' is not a format"
run_agent 2 "$ACME_AGENT" run --config "$DCONF" --once --metrics 9464 && contains "$ERR" "--metrics: "
finish
