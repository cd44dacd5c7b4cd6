#!/usr/bin/env bash
# Usage: postgres-down.sh DIR — stops the cluster postgres-setup.sh DIR started (fast
# shutdown; immediate when that does not end it). Nothing to do when it is not running.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 1; }
BIN=/usr/lib/postgresql/15/bin
DATA=$1/data
[ -f "$DATA/postmaster.pid" ] || exit 0
as_db=()
[ "$(id -u)" -ne 0 ] || as_db=(setpriv --reuid=postgres --regid=postgres --init-groups --)
"${as_db[@]}" "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 10 stop >/dev/null 2>&1 ||
  "${as_db[@]}" "$BIN/pg_ctl" -D "$DATA" -m immediate -w -t 10 stop >/dev/null 2>&1 ||
  [ ! -f "$DATA/postmaster.pid" ] || { echo "postgres-down: cannot stop the server in $DATA" >&2; exit 1; }
