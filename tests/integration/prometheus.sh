#!/usr/bin/env bash
# Prometheus' side, with Prometheus' own tools (Debian prometheus):
# - dist/prometheus as an operator installs it: promtool loads the alert rules and runs
#   their unit tests (acme-agent.test.yml: each alert fires when it should, with the
#   labels and text an operator sees, and stays quiet otherwise);
# - a real Prometheus scrapes the agent's /metrics endpoint (metrics_fixture: the agent's
#   metric set with known values behind the real endpoint) and its HTTP API returns them.
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
start_prometheus "$TARGET"

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
value 'acme_agent_signature_duration_seconds_count{backend="pkcs11"}' 1
value 'acme_agent_build_info{version="fixture"}' 1
# The failed renewal happened when the fixture started: within the last hour.
value "acme_agent_certificate_renewal_failing_since_timestamp_seconds > bool $(($(date +%s) - 3600))" 1
# Every sample of the exposition was ingested (none dropped as unparsable or duplicate).
value 'scrape_samples_scraped{job="acme-agent"} - scrape_samples_post_metric_relabeling{job="acme-agent"}' 0
finish
