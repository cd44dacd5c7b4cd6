#!/usr/bin/env bash
# Runs CTest on a build dir and counts what ran:
#   scripts/ctest.sh BUILD_DIR [CTEST ARGS...]
# Prints "tests: N run, F failed, S skipped" and each skipped test with its reason, and
# exits 1 when a test failed or when one skipped unexpectedly: no skip is silent. A skip is
# expected only
#   - for a test whose output says "no IPv6 loopback" (the GoogleTest IPv6 cases), when
#     this host really cannot bind ::1;
#   - for a test whose name matches ACME_AGENT_ALLOWED_SKIPS (a Python regular expression;
#     unset: nothing), which whoever runs CI sets on purpose.
# The JUnit report CTest writes is kept in BUILD_DIR/Testing/junit.xml; the count line is
# also appended to the file ACME_AGENT_TEST_SUMMARY when set (scripts/test.sh's table).
# JOBS (default: nproc) tests run at once, each with a 900 s timeout.
set -uo pipefail
dir=$(cd "${1:?usage: scripts/ctest.sh BUILD_DIR [CTEST ARGS...]}" && pwd) || exit 1
shift
junit=$dir/Testing/junit.xml
mkdir -p "$dir/Testing"
rm -f "$junit"
rc=0
ctest --test-dir "$dir" -j"${JOBS:-$(nproc)}" --output-on-failure --timeout 900 --no-tests=error \
  --output-junit "$junit" "$@" || rc=$?
[ -s "$junit" ] || { echo "tests: CTest wrote no report ($junit); exit $rc" >&2; exit 1; }

# Can this host bind the IPv6 loopback? (what the skipping GoogleTest cases need)
ipv6=yes
python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null || ipv6=no

python3 - "$junit" "$ipv6" "${ACME_AGENT_ALLOWED_SKIPS:-}" "${ACME_AGENT_TEST_SUMMARY:-}" <<'EOF' || rc=1
import re, sys
import xml.etree.ElementTree as ET
junit, ipv6, allowed, summary = sys.argv[1:5]
cases = ET.parse(junit).getroot().iter("testcase")
run = failed = 0
skipped, unexpected = [], []
for c in cases:
    status = c.get("status")
    out = c.findtext("system-out") or ""
    if status == "fail":
        run += 1; failed += 1
    elif status == "run":
        run += 1
    else:  # notrun / disabled: skipped, or not found
        sk = c.find("skipped")
        why = (sk.get("message") if sk is not None else None) or status
        # GoogleTest prints "FILE:LINE: Skipped" and the reason on the next line.
        m = re.search(r": Skipped\n(.+)|^(SKIP: .*)$|\[  SKIPPED \] *(.*)", out, re.M)
        if m: why += ": " + next((g for g in m.groups() if g), "").strip()
        name = c.get("name")
        ok = (ipv6 == "no" and "no IPv6 loopback" in out) or \
             (allowed and re.search(allowed, name) is not None)
        skipped.append((name, why, ok))
        if not ok: unexpected.append(name)
line = (f"{run} run, {failed} failed, {len(skipped)} skipped"
        + (f" ({len(unexpected)} unexpected)" if unexpected else ""))
print("tests: " + line)
if summary:  # for scripts/test.sh's table
    with open(summary, "a") as f: f.write(line + "\n")
for name, why, ok in skipped:
    print(f"  skipped{'' if ok else ' UNEXPECTEDLY'}: {name}: {why}")
if unexpected:
    print("an unexpected skip fails the run: install what the test needs "
          "(scripts/install-deps.sh), or allow it with ACME_AGENT_ALLOWED_SKIPS='REGEX'",
          file=sys.stderr)
sys.exit(1 if unexpected else 0)
EOF
[ "$rc" -eq 0 ] || exit 1
