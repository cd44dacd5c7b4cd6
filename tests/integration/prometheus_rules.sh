#!/usr/bin/env bash
# dist/prometheus as an operator installs it: Prometheus' own promtool (Debian prometheus)
# loads the alert rules and runs their unit tests (acme-agent.test.yml: each alert fires
# when it should, with the labels and text an operator sees, and stays quiet otherwise).
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
finish
