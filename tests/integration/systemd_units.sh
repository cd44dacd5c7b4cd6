#!/usr/bin/env bash
# The systemd units as `cmake --install` lays them out (a staged tree under $WORK/root):
# `systemd-analyze verify` accepts the service and the timer without a single warning,
# including the man page their Documentation= names; the sandbox scores "OK" or better in
# `systemd-analyze security`; the service runs `acme-agent run --config ... --once`, a
# command the installed binary knows; that command accepts the example config.
#
# systemd-analyze verify checks that ExecStart's binary exists and is executable, as an
# absolute path on this machine (its --root= needs a whole systemd tree, not a staged
# install). So the service is verified as a copy whose ExecStart names the staged binary;
# that is the only line that differs, and the test checks so.
source "$(dirname "$0")/lib.sh"
command -v systemd-analyze >/dev/null || { fail "systemd-analyze missing (apt-get install systemd)"; finish; }

[ -f "$ACME_AGENT_BINARY_DIR/man/acme-agent.1.gz" ] ||
  { fail "no man page in the build dir: build the default target (cmake --build BUILD)"; finish; }
ROOT=$WORK/root
DESTDIR=$ROOT cmake --install "$ACME_AGENT_BINARY_DIR" --prefix /usr >"$WORK/install.log" 2>&1 ||
  { fail "cmake --install: $(tail -n 5 "$WORK/install.log")"; finish; }
UNITS=$ROOT/usr/lib/systemd/system
BIN=$ROOT/usr/bin/acme-agent
for f in "$UNITS/acme-agent.service" "$UNITS/acme-agent.timer" "$BIN" \
  "$ROOT/usr/share/man/man1/acme-agent.1.gz"; do
  [ -e "$f" ] || fail "not installed: ${f#"$ROOT"}"
done
[ "$FAILURES" -eq 0 ] || finish

# The copy to verify: ExecStart points at the staged binary, nothing else changes.
CHECK=$WORK/units
mkdir -p "$CHECK"
sed "s|^ExecStart=/usr/bin/acme-agent |ExecStart=$BIN |" "$UNITS/acme-agent.service" >"$CHECK/acme-agent.service"
cp "$UNITS/acme-agent.timer" "$CHECK/"
changed=$(diff "$UNITS/acme-agent.service" "$CHECK/acme-agent.service" | grep -c '^>' || true)
expect "the service's ExecStart is not /usr/bin/acme-agent ($changed lines rewritten)" [ "$changed" = 1 ] || true

# verify [FILES...]: systemd-analyze verify's exit status and everything it printed.
# MANPATH: Documentation=man:acme-agent(1) must resolve to the staged man page.
verify() {
  local rc=0
  MANPATH=$ROOT/usr/share/man systemd-analyze verify "$@" >"$WORK/verify.out" 2>&1 || rc=$?
  VERIFY_RC=$rc
}
verify "$CHECK/acme-agent.service" "$CHECK/acme-agent.timer"
if [ "$VERIFY_RC" -eq 0 ] && [ ! -s "$WORK/verify.out" ]; then
  pass "systemd-analyze verify: service and timer clean (man page found)"
else
  fail "systemd-analyze verify (exit $VERIFY_RC): $(cat "$WORK/verify.out")"
fi

# The check itself is live: a misspelt setting is a warning, a missing man page an error.
sed 's/^ProtectSystem=/ProtectSytem=/' "$CHECK/acme-agent.service" >"$WORK/typo.service"
verify "$WORK/typo.service"
expect "a misspelt key went unnoticed" grep -q "Unknown key 'ProtectSytem'" "$WORK/verify.out" &&
  pass "verify catches a misspelt setting"
sed 's|^Documentation=.*|Documentation=man:acme-agent-nonexistent(1)|' "$CHECK/acme-agent.service" >"$WORK/noman.service"
verify "$WORK/noman.service"
expect "a missing man page went unnoticed" [ -s "$WORK/verify.out" ] && pass "verify checks the man page"

# Hardening: exposure 0 (locked down) .. 10 (UNSAFE); below 3 is "OK".
if systemd-analyze security --offline=yes --man=no --threshold=30 "$CHECK/acme-agent.service" \
  >"$WORK/security.out" 2>&1; then
  pass "$(grep -o 'Overall exposure level.*' "$WORK/security.out")"
else
  fail "exposure above 3.0: $(tail -n 3 "$WORK/security.out")"
fi
for setting in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
  StateDirectory=acme-agent "LoadCredential=hsm.pin:/etc/acme-agent/hsm.pin" "DeviceAllow=/dev/tpmrm0 rw" \
  "ReadWritePaths=-/var/lib/softhsm/tokens" Type=oneshot LimitCORE=0; do
  grep -qxF "$setting" "$UNITS/acme-agent.service" || fail "service lacks $setting"
done
for setting in Persistent=true RandomizedDelaySec=12h WantedBy=timers.target; do
  grep -qxF "$setting" "$UNITS/acme-agent.timer" || fail "timer lacks $setting"
done
# The timer fires twice a day.
systemd-analyze calendar --iterations=3 "$(sed -n 's/^OnCalendar=//p' "$UNITS/acme-agent.timer")" \
  >"$WORK/calendar.out" 2>&1 || fail "OnCalendar: $(cat "$WORK/calendar.out")"
expect "OnCalendar is not twice a day: $(cat "$WORK/calendar.out")" \
  [ "$(grep -Eo '[0-9]{2}:[0-9]{2}:[0-9]{2}' "$WORK/calendar.out" | sort -u | tr '\n' ' ')" = "00:00:00 12:00:00 " ] || true

# The command line the service runs exists in the installed binary.
EXEC=$(sed -n 's/^ExecStart=//p' "$UNITS/acme-agent.service")
expect "ExecStart: $EXEC" [ "$EXEC" = "/usr/bin/acme-agent run --config /etc/acme-agent/config.toml --once" ] || true
run_agent 0 "$BIN" run --help && contains "$OUT" "--config" && contains "$OUT" "--once" &&
  pass "the installed acme-agent has run --config FILE --once"

# The example config: the installed binary's `run` reads all of it (an unknown key or a bad
# value would be exit 2 naming FILE:LINE before anything is done) and gets as far as the
# network: the CA here is a closed port.
EXAMPLE=$ROOT/usr/share/doc/acme-agent/config.example.toml
NOCA=(--server https://127.0.0.1:1/dir --state-dir "$STATE")
run_agent 12 "$BIN" "${NOCA[@]}" run --config "$EXAMPLE" --once && contains "$ERR" "cannot connect to 127.0.0.1:1" &&
  lacks "$ERR" "config.example.toml:" && pass "run --once accepts config.example.toml (stops at the network)"
sed 's/^agree_tos =/agree_to =/' "$EXAMPLE" >"$WORK/bad.toml"
run_agent 2 "$BIN" "${NOCA[@]}" run --config "$WORK/bad.toml" --once && contains "$ERR" "bad.toml:" &&
  pass "the same config with a misspelt key is refused"
finish
