#!/usr/bin/env bash
# Usage: swtpm-down.sh DIR
#
# Stops the swtpm that swtpm-setup.sh started for DIR (DIR/swtpm.pid): SIGTERM, then
# SIGKILL if it is still there after 5 s. DIR/state is kept. Idempotent: exits 0 when
# nothing is running.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 1; }
DIR=$1
pidfile="$DIR/swtpm.pid"

# running PID: a live (non-zombie) process whose argv[0] is swtpm. A zombie counts as
# gone: in some sandboxes PID 1 never reaps the orphaned daemon.
running() {
  [ -r "/proc/$1/cmdline" ] || return 1
  grep -qs '^State:[[:space:]]*Z' "/proc/$1/status" && return 1
  local argv0
  argv0=$(tr '\0' '\n' 2>/dev/null <"/proc/$1/cmdline" | head -n 1)
  [ "${argv0##*/}" = swtpm ]
}

# wait_gone PID: polls for up to 5 s.
wait_gone() {
  local deadline=$((SECONDS + 5))
  while [ $SECONDS -lt $deadline ]; do
    running "$1" || return 0
    sleep 0.05
  done
  ! running "$1"
}

[ -f "$pidfile" ] || exit 0
pid=$(cat "$pidfile" 2>/dev/null || true)
if [[ $pid =~ ^[0-9]+$ ]] && running "$pid"; then
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid"; then
    echo "swtpm-down: swtpm (pid $pid) ignored SIGTERM, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" || { echo "swtpm-down: swtpm (pid $pid) would not die" >&2; exit 1; }
  fi
fi
rm -f "$pidfile"
