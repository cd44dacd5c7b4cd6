#!/usr/bin/env bash
# Usage: swtpm-setup.sh DIR
#
# Starts a TPM 2.0 simulator (swtpm) with its state in DIR/state on a free loopback
# port pair P (commands) and P+1 (control), both reserved while it runs (scripts/ports.sh),
# waits until it answers, and prints one shell line for eval (also written to DIR/env):
#   eval "$(scripts/swtpm-setup.sh build/swtpm)"   ...   scripts/swtpm-down.sh build/swtpm
# which sets ACME_AGENT_TCTI, TPM2TOOLS_TCTI and TPM2OPENSSL_TCTI to
# swtpm:host=127.0.0.1,port=P.
#
# DIR/state survives a restart (persistent handles, the owner seed), so rerunning on the
# same DIR gives the same TPM; remove DIR to start from a fresh one. The process id is in
# DIR/swtpm.pid and its log in DIR/swtpm.log.
# Optional: SWTPM_PORT=P (no random choice, no retry), SWTPM_SETUP_TIMEOUT=seconds
# (default 20).
set -euo pipefail

die() { echo "swtpm-setup: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 DIR"
for tool in swtpm:swtpm ss:iproute2 shuf:coreutils setsid:util-linux flock:util-linux; do
  command -v "${tool%%:*}" >/dev/null || die "${tool%%:*} not found (apt-get install -y ${tool#*:})"
done
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/ports.sh"
mkdir -p "$1/state"
DIR=$(cd "$1" && pwd)
chmod 700 "$DIR/state"
TIMEOUT=${SWTPM_SETUP_TIMEOUT:-20}
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "SWTPM_SETUP_TIMEOUT must be a positive number of seconds"
if [ -n "${SWTPM_PORT:-}" ]; then
  if ! [[ $SWTPM_PORT =~ ^[1-9][0-9]{0,4}$ ]] || [ "$SWTPM_PORT" -ge 65535 ]; then
    die "SWTPM_PORT must be a port number below 65535"
  fi
fi

# alive PID: a live swtpm process (pid_alive: scripts/ports.sh).
alive() {
  pid_alive "$1" || return 1
  [ "$(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | head -n 1 | xargs -r basename)" = swtpm ]
}

if [ -f "$DIR/swtpm.pid" ] && alive "$(cat "$DIR/swtpm.pid" 2>/dev/null)"; then
  die "swtpm already running for $DIR (pid $(cat "$DIR/swtpm.pid")); run swtpm-down.sh $DIR first"
fi
rm -f "$DIR/swtpm.pid" "$DIR/env"

for attempt in 1 2 3 4; do # the first try plus up to 3 retries on a port race
  if [ -n "${SWTPM_PORT:-}" ]; then PORT=$SWTPM_PORT; else reserve_port PORT $$ pair || die "no free port pair"; fi
  : >"$DIR/swtpm.log"
  # --daemon: swtpm binds both sockets before it forks, so a port taken in the meantime
  # shows as a non-zero exit here; the pid file is written by the daemon itself.
  if setsid swtpm socket --tpm2 --daemon \
    --tpmstate "dir=$DIR/state,mode=0600" \
    --server "type=tcp,port=$PORT,bindaddr=127.0.0.1" \
    --ctrl "type=tcp,port=$((PORT + 1)),bindaddr=127.0.0.1" \
    --flags not-need-init,startup-clear \
    --pid "file=$DIR/swtpm.pid" \
    --log "file=$DIR/swtpm.log,level=1" </dev/null >>"$DIR/swtpm.log" 2>&1; then
    status=started
  else
    status="swtpm exited: $(tail -n 3 "$DIR/swtpm.log" | tr '\n' ' ')"
  fi

  if [ "$status" = started ]; then
    deadline=$((SECONDS + TIMEOUT))
    status="not listening on 127.0.0.1:$PORT after ${TIMEOUT}s"
    while [ $SECONDS -lt $deadline ]; do
      pid=$(cat "$DIR/swtpm.pid" 2>/dev/null || true)
      if [ -n "$pid" ] && ! alive "$pid"; then status="swtpm (pid $pid) exited during startup"; break; fi
      if [ -n "$pid" ] && [ -n "$(ss -Htln "sport = :$PORT")" ] &&
        [ -n "$(ss -Htln "sport = :$((PORT + 1))")" ]; then
        status=ready
        break
      fi
      sleep 0.05
    done
  fi
  [ "$status" = ready ] && break

  "$HERE/swtpm-down.sh" "$DIR" >&2 || true
  if [ -z "${SWTPM_PORT:-}" ] && [ $attempt -lt 4 ] && grep -qsi "in use" "$DIR/swtpm.log"; then
    echo "swtpm-setup: port $PORT or $((PORT + 1)) was taken meanwhile, retrying" >&2
    continue
  fi
  echo "--- tail of $DIR/swtpm.log ---" >&2
  tail -n 20 "$DIR/swtpm.log" >&2 || true
  die "$status"
done

hand_over_ports $$ "$(cat "$DIR/swtpm.pid")" "$PORT" $((PORT + 1))
TCTI="swtpm:host=127.0.0.1,port=$PORT"
ENV_LINE="export ACME_AGENT_TCTI=$TCTI TPM2TOOLS_TCTI=$TCTI TPM2OPENSSL_TCTI=$TCTI SWTPM_DIR=$(printf %q "$DIR")"
echo "$ENV_LINE" >"$DIR/env"
echo "swtpm-setup: ready on 127.0.0.1:$PORT (pid $(cat "$DIR/swtpm.pid"))" >&2
echo "$ENV_LINE"
