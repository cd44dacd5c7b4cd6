#!/usr/bin/env bash
# Usage: postgres-setup.sh DIR
#
# A throwaway PostgreSQL 15 cluster for tests and the fleet demo: initdb in DIR/data, a
# server on a free loopback port (scripts/ports.sh) with TLS (its own CA in DIR/ca.pem, a
# server certificate for localhost and 127.0.0.1), password authentication (scram-sha-256)
# over TCP, a role `acme_agent` owning a database `acme`, its password in DIR/pgpass
# (mode 0600, libpq's passfile format, any database). The superuser `postgres` connects
# without a password over the Unix socket in DIR/sock (tests create databases that way). Waits until the server accepts connections and
# prints shell lines for eval (also written to DIR/env; the URL alone is in DIR/url):
#   eval "$(scripts/postgres-setup.sh build/pg)"   ...   scripts/postgres-down.sh build/pg
# which export
#   ACME_AGENT_PG_URL   postgresql://acme_agent@localhost:PORT/acme?passfile=...&sslmode=
#                       verify-full&sslrootcert=...  (no password in it)
#   ACME_AGENT_PG_PORT, ACME_AGENT_PG_DIR
# PostgreSQL refuses to run as root: as root the cluster runs as the `postgres` user (DIR
# is made traversable and the data dir is handed to it). Rerunning on a DIR whose server
# is running fails; remove DIR to start over.
# Optional: POSTGRES_SETUP_TIMEOUT=seconds (default 30).
set -euo pipefail

die() { echo "postgres-setup: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 DIR"
BIN=/usr/lib/postgresql/15/bin
[ -x "$BIN/initdb" ] || die "$BIN/initdb not found (apt-get install -y postgresql-15)"
for tool in openssl:openssl ss:iproute2 setpriv:util-linux; do
  command -v "${tool%%:*}" >/dev/null || die "${tool%%:*} not found (apt-get install -y ${tool#*:})"
done
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/ports.sh"
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
TIMEOUT=${POSTGRES_SETUP_TIMEOUT:-30}
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "POSTGRES_SETUP_TIMEOUT must be a positive number of seconds"

as_db=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || die "no postgres user (apt-get install -y postgresql-15)"
  as_db=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  # postgres must reach DIR: every ancestor traversable (no listing needed).
  d=$DIR
  while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
fi
if [ -f "$DIR/data/postmaster.pid" ] && "${as_db[@]}" "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
  die "PostgreSQL already running for $DIR; run postgres-down.sh $DIR first"
fi
rm -rf "$DIR/data" "$DIR/sock" "$DIR/tls" "$DIR/env"
mkdir -m 0700 "$DIR/data" "$DIR/tls"
mkdir -m 0755 "$DIR/sock"

# The password: random, never in argv (initdb and psql read it from files / stdin).
umask 077
PASSWORD=$(openssl rand -hex 16)
printf '%s\n' "$(openssl rand -hex 16)" >"$DIR/superuser.pw"

# TLS: a CA and a server certificate for localhost / 127.0.0.1 (sslmode=verify-full).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=acme-agent test PostgreSQL CA" -keyout "$DIR/ca.key" -out "$DIR/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$DIR/tls/server.key" -out "$DIR/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$DIR/server.ext"
openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
  -days 2 -extfile "$DIR/server.ext" -out "$DIR/tls/server.crt" 2>/dev/null
chmod 0644 "$DIR/ca.pem"
if [ ${#as_db[@]} -gt 0 ]; then
  chown -R postgres:postgres "$DIR/data" "$DIR/sock" "$DIR/tls"
  chown postgres "$DIR/superuser.pw"
fi
"${as_db[@]}" "$BIN/initdb" -D "$DIR/data" -U postgres --pwfile="$DIR/superuser.pw" \
  --auth-local=trust --auth-host=scram-sha-256 >"$DIR/initdb.log" 2>&1 ||
  { tail -n 20 "$DIR/initdb.log" >&2; die "initdb failed"; }

for attempt in 1 2 3 4; do # the first try plus up to 3 retries on a port race
  reserve_port PORT $$ || die "no free port"
  if "${as_db[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/data/server.log" -w -t "$TIMEOUT" \
    -o "-p $PORT -k $DIR/sock -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file=$DIR/tls/server.crt -c ssl_key_file=$DIR/tls/server.key -c fsync=off" \
    start >"$DIR/pg_ctl.log" 2>&1; then
    break
  fi
  if [ $attempt -lt 4 ] && grep -qs "already in use" "$DIR/data/server.log"; then
    echo "postgres-setup: port $PORT was taken meanwhile, retrying" >&2
    continue
  fi
  tail -n 20 "$DIR/data/server.log" >&2 || true
  die "pg_ctl start failed"
done
PID=$(head -n 1 "$DIR/data/postmaster.pid")
hand_over_ports $$ "$PID" "$PORT"

# The agent's role and database; the password goes over stdin.
"${as_db[@]}" "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR/sock" -p "$PORT" -U postgres -d postgres \
  -v pw="$PASSWORD" >/dev/null <<'SQL' || die "cannot create the role and database"
CREATE ROLE acme_agent LOGIN PASSWORD :'pw';
CREATE DATABASE acme OWNER acme_agent;
SQL
printf 'localhost:%s:*:acme_agent:%s\n127.0.0.1:%s:*:acme_agent:%s\n' \
  "$PORT" "$PASSWORD" "$PORT" "$PASSWORD" >"$DIR/pgpass"
chmod 0600 "$DIR/pgpass"

URL="postgresql://acme_agent@localhost:$PORT/acme?passfile=$DIR/pgpass&sslmode=verify-full&sslrootcert=$DIR/ca.pem"
ENV_LINE="export ACME_AGENT_PG_URL=$(printf %q "$URL") ACME_AGENT_PG_PORT=$PORT ACME_AGENT_PG_DIR=$(printf %q "$DIR")"
echo "$ENV_LINE" >"$DIR/env"
printf '%s\n' "$URL" >"$DIR/url"
echo "postgres-setup: ready on 127.0.0.1:$PORT (pid $PID)" >&2
echo "$ENV_LINE"
