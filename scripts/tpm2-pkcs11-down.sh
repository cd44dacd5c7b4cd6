#!/usr/bin/env bash
# Usage: tpm2-pkcs11-down.sh DIR
# Stops what tpm2-pkcs11-setup.sh started for DIR: tpm2-abrmd, its D-Bus daemon and swtpm.
# The store in DIR/store is kept. Idempotent.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 1; }
DIR=$1
for name in abrmd dbus; do
  pid=$(cat "$DIR/$name.pid" 2>/dev/null || true)
  [ -n "$pid" ] || continue
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$DIR/$name.pid"
done
"$(cd "$(dirname "$0")" && pwd)/swtpm-down.sh" "$DIR/swtpm"
