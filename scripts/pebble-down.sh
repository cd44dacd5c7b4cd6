#!/usr/bin/env bash
# Usage: pebble-down.sh DIR
#
# Stops the Pebble and pebble-challtestsrv processes that pebble-up.sh started in DIR
# (from DIR/pebble.pid and DIR/challtestsrv.pid): SIGTERM, then SIGKILL if one is
# still there after 5 s. Idempotent: exits 0 when nothing is running.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 1; }
DIR=$1

# running PID NAME: PID is a live (non-zombie) process whose argv[0] is NAME.
running() {
  [ -r "/proc/$1/cmdline" ] || return 1
  grep -qs '^State:[[:space:]]*Z' "/proc/$1/status" && return 1
  local argv0
  argv0=$(tr "\0" "\n" 2>/dev/null <"/proc/$1/cmdline" | head -n 1)
  [ "${argv0##*/}" = "$2" ]
}

for pair in pebble:pebble challtestsrv:pebble-challtestsrv; do
  pidfile="$DIR/${pair%%:*}.pid" name=${pair#*:}
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if [[ $pid =~ ^[0-9]+$ ]] && running "$pid" "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do running "$pid" "$name" || break; sleep 0.1; done
    if running "$pid" "$name"; then
      echo "pebble-down: $name (pid $pid) ignored SIGTERM, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 50); do running "$pid" "$name" || break; sleep 0.1; done
      running "$pid" "$name" && { echo "pebble-down: $name (pid $pid) would not die" >&2; exit 1; }
    fi
  fi
  rm -f "$pidfile"
done
