#!/usr/bin/env bash
# scripts/ctest.sh, which runs CTest for scripts/test.sh and scripts/coverage.sh, counts
# tests run, failed and skipped, and fails on a skip nobody allowed: on a tiny CMake
# project of its own (no agent build involved, a few seconds).
source "$(dirname "$0")/lib.sh"
P=$WORK/proj
mkdir -p "$P"
# project 'CMAKE LINES': a project whose tests are the given add_test lines.
project() {
  printf 'cmake_minimum_required(VERSION 3.25)\nproject(p NONE)\nenable_testing()\n%s\n' "$1" >"$P/CMakeLists.txt"
  rm -rf "$P/b"
  cmake -S "$P" -B "$P/b" >/dev/null
}
# gate EXPECTED_RC [ENV...]: scripts/ctest.sh on it; output in $OUT.
gate() {
  local want=$1 rc=0
  shift
  env "$@" bash "$SCRIPTS/ctest.sh" "$P/b" >"$OUT" 2>&1 || rc=$?
  [ "$rc" -eq "$want" ] || { fail "ctest.sh exited $rc, expected $want ($*): $(head -c 800 "$OUT")"; return 1; }
}
PASSING='add_test(NAME ok1 COMMAND true)
add_test(NAME ok2 COMMAND true)'
SKIPPING='add_test(NAME tool_missing COMMAND sh -c "echo SKIP: dig not found; exit 77")
set_tests_properties(tool_missing PROPERTIES SKIP_RETURN_CODE 77)'
IPV6='add_test(NAME v6 COMMAND sh -c "echo \"[  SKIPPED ] no IPv6 loopback: EADDRNOTAVAIL\"")
set_tests_properties(v6 PROPERTIES SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")'

project "$PASSING"
gate 0 && contains "$OUT" "tests: 2 run, 0 failed, 0 skipped" && pass "counts what ran"

project "$PASSING
add_test(NAME broken COMMAND false)"
gate 1 && contains "$OUT" "tests: 3 run, 1 failed, 0 skipped" && pass "a failed test fails the run, counted"

project "$PASSING
$SKIPPING"
gate 1 && contains "$OUT" "2 run, 0 failed, 1 skipped (1 unexpected)" &&
  contains "$OUT" "skipped UNEXPECTEDLY: tool_missing" && contains "$OUT" "SKIP: dig not found" &&
  pass "an unexpected skip fails the run, named with its reason"
gate 0 ACME_AGENT_ALLOWED_SKIPS='^tool_missing$' && contains "$OUT" "skipped: tool_missing" &&
  lacks "$OUT" UNEXPECTEDLY && pass "ACME_AGENT_ALLOWED_SKIPS allows a named skip, still counted"

# The IPv6 cases may skip only where the host has no IPv6 loopback.
project "$PASSING
$IPV6"
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
  gate 1 && contains "$OUT" "skipped UNEXPECTEDLY: v6" && pass "an IPv6 skip on a host with IPv6 fails the run"
else
  gate 0 && contains "$OUT" "1 skipped" && lacks "$OUT" UNEXPECTEDLY && pass "an IPv6 skip on a host without IPv6 is expected, counted"
fi

# No tests at all is no pass.
project ''
gate 1 && pass "a run without tests fails"

# The count reaches scripts/test.sh's table.
project "$PASSING"
gate 0 ACME_AGENT_TEST_SUMMARY="$WORK/summary" && expect "summary file: $(cat "$WORK/summary" 2>&1)" \
  grep -qx "2 run, 0 failed, 0 skipped" "$WORK/summary" && pass "the count goes to ACME_AGENT_TEST_SUMMARY"
finish
