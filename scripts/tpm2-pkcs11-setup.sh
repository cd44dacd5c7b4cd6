#!/usr/bin/env bash
# Usage: tpm2-pkcs11-setup.sh DIR [LABEL]
#
# A PKCS#11 token inside a TPM, for tests: a fresh swtpm (scripts/swtpm-setup.sh DIR/swtpm),
# a private D-Bus session bus and tpm2-abrmd in front of it (tpm2-pkcs11 needs a resource
# manager: on a bare swtpm, `tpm2_ptool addtoken` fails with TPM_RC_OBJECT_MEMORY), and a
# tpm2-pkcs11 store in DIR/store with one token LABEL (default tpm) whose user PIN is in
# DIR/LABEL.pin (0600, no newline). Prints one line for eval (also in DIR/env) that sets
# DBUS_SESSION_BUS_ADDRESS, TPM2_PKCS11_STORE, TPM2_PKCS11_TCTI, TPM2TOOLS_TCTI,
# ACME_AGENT_TPM2_PKCS11_MODULE and ACME_AGENT_TPM2_PKCS11_TOKEN_URI (the token's URI with
# module-path and pin-source). Stop everything with scripts/tpm2-pkcs11-down.sh DIR.
set -euo pipefail

die() { echo "tpm2-pkcs11-setup: $*" >&2; exit 1; }
[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 DIR [LABEL]"
MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so
for tool in tpm2_ptool:libtpm2-pkcs11-tools tpm2-abrmd:tpm2-abrmd dbus-daemon:dbus tpm2_getrandom:tpm2-tools; do
  command -v "${tool%%:*}" >/dev/null || die "${tool%%:*} not found (apt-get install -y ${tool#*:})"
done
[ -f "$MODULE" ] || die "$MODULE not found (apt-get install -y libtpm2-pkcs11-1)"
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
[[ $DIR != *\'* ]] || die "DIR must not contain a single quote"
LABEL=${2:-tpm}
[[ $LABEL =~ ^[A-Za-z0-9_-]{1,32}$ ]] || die "LABEL: letters, digits, - and _ only"

SWTPM_ENV=$("$HERE/swtpm-setup.sh" "$DIR/swtpm") || die "swtpm did not start"
eval "$SWTPM_ENV"
[ -n "${ACME_AGENT_TCTI:-}" ] || die "swtpm-setup.sh set no TCTI"

# A private session bus: nothing else on the machine sees this abrmd.
rm -f "$DIR/bus"
setsid dbus-daemon --session --nofork --print-address=3 3>"$DIR/bus" </dev/null >"$DIR/dbus.log" 2>&1 &
echo $! >"$DIR/dbus.pid"
for _ in $(seq 200); do [ -s "$DIR/bus" ] && break; sleep 0.05; done
[ -s "$DIR/bus" ] || die "dbus-daemon did not start: $(cat "$DIR/dbus.log")"
export DBUS_SESSION_BUS_ADDRESS=$(head -n 1 "$DIR/bus")

setsid tpm2-abrmd --session --allow-root --tcti="$ACME_AGENT_TCTI" </dev/null >"$DIR/abrmd.log" 2>&1 &
echo $! >"$DIR/abrmd.pid"
TCTI=tabrmd:bus_type=session
ready=
for _ in $(seq 200); do
  if tpm2_getrandom -T "$TCTI" 4 >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$(cat "$DIR/abrmd.pid")" 2>/dev/null || break
  sleep 0.05
done
[ -n "$ready" ] || die "tpm2-abrmd did not answer: $(tail -n 5 "$DIR/abrmd.log")"

export TPM2_PKCS11_STORE=$DIR/store TPM2_PKCS11_TCTI=$TCTI TPM2TOOLS_TCTI=$TCTI # tpm2_ptool runs tpm2-tools
mkdir -p "$TPM2_PKCS11_STORE"
chmod 700 "$TPM2_PKCS11_STORE"
PIN=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
SOPIN=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
tpm2_ptool init >"$DIR/ptool.log" 2>&1 || die "tpm2_ptool init: $(tail -n 5 "$DIR/ptool.log")"
tpm2_ptool addtoken --pid=1 --label="$LABEL" --userpin="$PIN" --sopin="$SOPIN" >>"$DIR/ptool.log" 2>&1 ||
  die "tpm2_ptool addtoken: $(tail -n 5 "$DIR/ptool.log")"
(umask 077 && printf '%s' "$PIN" >"$DIR/$LABEL.pin")

URI="pkcs11:token=$LABEL?module-path=$MODULE&pin-source=file:$DIR/$LABEL.pin"
q() { printf "'%s'" "$1"; } # single quotes: also read by tests/support/process.h
ENV_LINE="export DBUS_SESSION_BUS_ADDRESS=$(q "$DBUS_SESSION_BUS_ADDRESS") TPM2_PKCS11_STORE=$(q "$TPM2_PKCS11_STORE") TPM2_PKCS11_TCTI=$TCTI TPM2TOOLS_TCTI=$TCTI ACME_AGENT_TPM2_PKCS11_MODULE=$MODULE ACME_AGENT_TPM2_PKCS11_TOKEN_URI=$(q "$URI")"
echo "$ENV_LINE" >"$DIR/env"
echo "tpm2-pkcs11-setup: token '$LABEL' ready (abrmd pid $(cat "$DIR/abrmd.pid"))" >&2
echo "$ENV_LINE"
