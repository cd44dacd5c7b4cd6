#!/usr/bin/env bash
# Usage: bench/fleet.sh   (env: N=200, ROUNDS=2, DEADLINE=900 s per case, BUILD=<repo>/build-bench,
#                          RESULTS=bench/results-fleet.txt, KEY_PER_CERT=1)
#
# Issue 17: N stored certificates, all due, renewed by one `run` daemon against three `run`
# daemons sharing one PostgreSQL 15 and one SoftHSM token behind `p11-kit server`, with a
# real HAProxy round-robining Pebble's http-01 port over the nodes' responders (the shape of
# tests/integration/fleet_nodes.sh). Throughput, database round trips per certificate,
# the CPU each component spent, and checks that fail the bench loudly.
#
# The certificates: N keys in the token, N certificates issued once ("the seed") by a first
# Pebble whose certificates live one day, kept in a state dir. Each case gets a fresh
# database (`storage migrate` of the seed) and a fresh Pebble (default validity, 5 years),
# and its nodes' config says renew_before_days = 2: every seeded certificate is due at once,
# every renewed one is not, so each is renewed exactly once (a real renewal: lease, look
# again, order, store, fan-out), and nothing loops. KEY_PER_CERT=0 is a diagnostic, not the
# measure: one key for every certificate, to see what SoftHSM's search through 2N objects
# costs (bench/README.md).
#
# A case runs from the daemons' start until every node has installed every renewed
# certificate and run its deploy hook for it. Reported per case:
#   renewed_s  start to the last renewal stored (max(updated_at) in the database)
#   done_s     start to the last node's last deploy hook (polled every 0.1 s)
#   trips      statements the agents ran in the case's database, from pg_stat_statements
#              (every statement the agent sends is a separate libpq call without a
#              pipeline, so a statement is one round trip; counted by the server itself,
#              only the agents' role, only that database, nothing of the bench's psql)
#   CPU        per component, from /proc (a process and its children, reaped ones included)
# The cases alternate (round 1: 1 then 3 nodes, round 2: 3 then 1, ...).
# Dies when a certificate is missing anywhere, Pebble saw other than N orders or issuances,
# a certificate was stored twice, a copy differs from the database, or a hook ran twice.
set -euo pipefail

source "$(dirname "$0")/lib.sh" fleet 200
ROUNDS=${ROUNDS:-2}
DEADLINE=${DEADLINE:-900}
KEY_PER_CERT=${KEY_PER_CERT:-1}
[[ $KEY_PER_CERT == [01] ]] || die "KEY_PER_CERT must be 1 (a key per certificate) or 0 (one key for all)"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer: '$ROUNDS'"
[[ $DEADLINE =~ ^[1-9][0-9]*$ ]] || die "DEADLINE must be a positive number of seconds: '$DEADLINE'"
need haproxy:haproxy psql:postgresql-client-15 p11-kit:p11-kit-modules pgrep:procps python3:python3 \
  md5sum:coreutils
P11_CLIENT=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
[ -f "$P11_CLIENT" ] || die "$P11_CLIENT not found (apt-get install -y p11-kit-modules)"
source "$ROOT/scripts/ports.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

DAEMONS=() HAPROXY_PID='' P11_SERVER_PID=
cleanup() {
  local d
  for d in "${DAEMONS[@]}"; do kill -TERM "$d" 2>/dev/null || true; done
  [ -z "$HAPROXY_PID" ] || kill "$HAPROXY_PID" 2>/dev/null || true
  [ -z "$P11_SERVER_PID" ] || kill -TERM -- "-$P11_SERVER_PID" 2>/dev/null || true
  for d in "$WORK"/pebble-seed "$WORK"/r*/pebble; do
    [ -f "$d/pebble.pid" ] && "$ROOT/scripts/pebble-down.sh" "$d" >/dev/null 2>&1
  done
  "$ROOT/scripts/postgres-down.sh" "$WORK/pg" >/dev/null 2>&1 || true
}
trap cleanup EXIT
# wait_until SECONDS WHAT FILE CMD...: polls CMD every 0.1 s; after SECONDS dies naming WHAT
# and the end of FILE (as it is then).
wait_until() {
  local end=$((SECONDS + $1)) what=$2 file=$3
  shift 3
  until "$@"; do
    [ $SECONDS -lt $end ] || die "$what: $(tail -c 600 "$file" 2>/dev/null)"
    read -rt 0.1 <> <(:) || true
  done
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
export PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0
say "token, $N certificate keys, PostgreSQL 15 with pg_stat_statements"
eval "$("$ROOT/scripts/softhsm-setup.sh" "$WORK/hsm" acme 2>"$WORK/softhsm.log")"
key() { echo "${ACME_AGENT_TOKEN_URI/\?/;object=$1?}"; }
# The same key through p11-kit's client module: how every agent here reaches the token.
net() { echo "${1/module-path=$ACME_AGENT_PKCS11_MODULE/module-path=$P11_CLIENT}"; }
ACCT=$(net "$("$AGENT" key generate --key "$(key acct)" --type ec-p256)")
KEYS=()
if [ "$KEY_PER_CERT" = 1 ]; then
  for i in $(seq "$N"); do KEYS[i]=$(net "$("$AGENT" key generate --key "$(key "c$i")" --type ec-p256)"); done
else # the diagnostic: one key for all, so the token holds 4 objects instead of 2N + 2
  shared=$(net "$("$AGENT" key generate --key "$(key c)" --type ec-p256)")
  for i in $(seq "$N"); do KEYS[i]=$shared; done
fi

eval "$("$ROOT/scripts/postgres-setup.sh" "$WORK/pg" 2>"$WORK/pg-setup.log")"
as_db=()
[ "$(id -u)" -ne 0 ] || as_db=(setpriv --reuid=postgres --regid=postgres --init-groups --)
sql() { psql -X -qAt -v ON_ERROR_STOP=1 -h "$WORK/pg/sock" -p "$ACME_AGENT_PG_PORT" -U postgres -d "${DB:-postgres}" -c "$1"; }
sql "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" >/dev/null
"${as_db[@]}" /usr/lib/postgresql/15/bin/pg_ctl -D "$WORK/pg/data" -m fast -w -t 30 restart \
  >"$WORK/pg-restart.log" 2>&1 || die "PostgreSQL did not restart: $(tail -5 "$WORK/pg-restart.log")"
sql "CREATE EXTENSION pg_stat_statements" >/dev/null
PG_PID=$(head -n 1 "$WORK/pg/data/postmaster.pid")
AGENT_ROLE=$(sql "SELECT oid FROM pg_roles WHERE rolname = 'acme_agent'")

# The nodes share the token through p11-kit server, as they would a network HSM.
P11_SOCK=$WORK/p11-kit.sock
setsid p11-kit server -f -n "$P11_SOCK" --provider "$ACME_AGENT_PKCS11_MODULE" "pkcs11:token=acme" \
  >"$WORK/p11-kit-server.out" 2>&1 &
P11_SERVER_PID=$!
export P11_KIT_SERVER_ADDRESS=unix:path=$P11_SOCK
wait_until 10 "p11-kit server did not start" "$WORK/p11-kit-server.out" test -S "$P11_SOCK"

say "seeding: $N certificates from a Pebble whose certificates live one day"
eval "$(PEBBLE_CERT_VALIDITY_SECONDS=86400 "$ROOT/scripts/pebble-up.sh" "$WORK/pebble-seed" 2>"$WORK/pebble-seed.log")"
SEED=("$AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" --state-dir "$WORK/seed")
"${SEED[@]}" account register --key "$ACCT" --agree-tos >"$WORK/seed-register.log" 2>&1 ||
  die "account register failed: $(tail -n 5 "$WORK/seed-register.log")"
for i in $(seq "$N"); do echo "${KEYS[i]} c$i.fleet.example"; done >"$WORK/seed.batch"
"${SEED[@]}" -q issue --batch "$WORK/seed.batch" --jobs 4 --http-port "127.0.0.1:$PEBBLE_HTTP_PORT" \
  >"$WORK/seed.out" 2>&1 </dev/null || die "seeding failed: $(tail -n 5 "$WORK/seed.out")"
"$ROOT/scripts/pebble-down.sh" "$WORK/pebble-seed" >/dev/null 2>&1

# CPU ticks of PID and its children: its own and its reaped children's (utime, stime,
# cutime, cstime) plus each live child's own.
ticks_of() { # PID [own]: the fields of /proc/PID/stat after "(comm) "
  local s f
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  s=${s##*) }
  read -r -a f <<<"$s"
  if [ "${2:-}" = own ]; then echo $((f[11] + f[12])); else echo $((f[11] + f[12] + f[13] + f[14])); fi
}
tree_ticks() {
  local total child
  total=$(ticks_of "$1")
  for child in $(pgrep -P "$1" || true); do total=$((total + $(ticks_of "$child" own))); done
  echo "$total"
}
busy_ticks() { # the whole machine: all CPUs' non-idle ticks (other users' work included)
  local user nice system rest more
  read -r _ user nice system _ _ rest </proc/stat # cpu user nice system idle iowait irq softirq steal
  read -r -a more <<<"$rest"
  echo $((user + nice + system + more[0] + more[1] + more[2]))
}

# run_case ROUND K: K daemons renew the N certificates on a fresh database and Pebble.
run_case() {
  local r=$1 k=$2 dir=$WORK/r$1-n$2 db=fleet_r$1_n$2 n port i
  local names=(a b c d e f g h) nodes=() pids=() ports=() url
  nodes=("${names[@]:0:k}")
  mkdir -p "$dir"
  sql "CREATE DATABASE $db OWNER acme_agent" >/dev/null
  url=${ACME_AGENT_PG_URL/\/acme\?//$db?}
  "$AGENT" storage migrate --from "$WORK/seed" --to "$url" >"$dir/migrate.out" 2>&1 ||
    die "storage migrate failed: $(tail -n 5 "$dir/migrate.out")"
  [ "$(DB=$db sql "SELECT count(*) FROM certificates WHERE generation = 1")" -eq "$N" ] ||
    die "the case's database does not hold the $N seeded certificates"
  eval "$("$ROOT/scripts/pebble-up.sh" "$dir/pebble" 2>"$dir/pebble-up.log")"
  {
    printf 'global\n  maxconn 1024\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n'
    printf 'frontend http01\n  bind 127.0.0.1:%s\n  default_backend nodes\nbackend nodes\n  balance roundrobin\n' "$PEBBLE_HTTP_PORT"
  } >"$dir/haproxy.cfg"
  for n in "${nodes[@]}"; do
    reserve_port port $$ || die "no free port for node $n"
    ports+=("$port")
    printf '  server %s 127.0.0.1:%s\n' "$n" "$port" >>"$dir/haproxy.cfg"
    # shellcheck disable=SC2016 # $ACME_AGENT_NAME is the hook's, at its run
    printf '#!/bin/sh\necho "$ACME_AGENT_NAME" >>"%s"\n' "$dir/deployed-$n" >"$dir/hook-$n"
    chmod 755 "$dir/hook-$n"
    : >"$dir/deployed-$n"
    {
      printf 'account_key = "%s"\nagree_tos = true\nstate_dir = "%s"\nstorage = "%s"\n' "$ACCT" "$dir/node-$n" "$url"
      for i in $(seq "$N"); do
        printf '[[certificate]]\ndomains = ["c%s.fleet.example"]\nkey = "%s"\nhttp_port = "127.0.0.1:%s"\nrenew_before_days = 2\ndeploy_hook = "%s"\n' \
          "$i" "${KEYS[i]}" "$port" "$dir/hook-$n"
      done
    } >"$dir/node-$n.toml"
  done
  haproxy -c -f "$dir/haproxy.cfg" >"$dir/haproxy.check" 2>&1 || die "haproxy -c: $(cat "$dir/haproxy.check")"
  haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.out" 2>&1 &
  HAPROXY_PID=$!
  wait_until 10 "haproxy did not listen" "$dir/haproxy.out" listening "$PEBBLE_HTTP_PORT"

  sql "SELECT pg_stat_statements_reset()" >/dev/null
  local pebble_pid load0 t0 b0 tb0 pg0 p110 pb0 t_done
  pebble_pid=$(cat "$dir/pebble/pebble.pid")
  load0=$(cut -d' ' -f1 /proc/loadavg)
  tb0=$EPOCHREALTIME b0=$(busy_ticks) pg0=$(tree_ticks "$PG_PID") p110=$(tree_ticks "$P11_SERVER_PID") pb0=$(tree_ticks "$pebble_pid")
  say "round $r: $k node(s) renewing $N certificates"
  t0=$EPOCHREALTIME
  for n in "${nodes[@]}"; do
    ACME_AGENT_NODE=node-$n "$AGENT" --server "$PEBBLE_URL" --ca-file "$PEBBLE_CA_FILE" \
      run --config "$dir/node-$n.toml" >"$dir/node-$n.out" 2>"$dir/node-$n.err" </dev/null &
    pids+=($!)
    DAEMONS+=($!)
  done
  all_deployed() {
    local n p
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || die "a daemon exited: $(tail -c 600 "$dir"/node-*.err)"; done
    # A failed certificate waits a minute or more (the daemon's backoff): not a throughput.
    ! grep -q ': error: ' "$dir"/node-*.err || die "round $r, $k node(s): $(grep -h ': error: ' "$dir"/node-*.err | head -n 3)"
    for n in "${nodes[@]}"; do [ "$(wc -l <"$dir/deployed-$n")" -ge "$N" ] || return 1; done
  }
  wait_until "$DEADLINE" "not every node deployed every certificate within $DEADLINE s (hooks run: $dir/deployed-*)" \
    "$dir/node-${nodes[0]}.err" all_deployed
  t_done=$EPOCHREALTIME
  # The CPU up to here, while the daemons still run (their hooks are reaped children).
  local b1 tb1 pg1 p111 pb1 hap agents=0 p rc
  tb1=$EPOCHREALTIME b1=$(busy_ticks) pg1=$(tree_ticks "$PG_PID") p111=$(tree_ticks "$P11_SERVER_PID") pb1=$(tree_ticks "$pebble_pid")
  hap=$(tree_ticks "$HAPROXY_PID")
  for p in "${pids[@]}"; do agents=$((agents + $(tree_ticks "$p"))); done
  local load1
  load1=$(cut -d' ' -f1 /proc/loadavg)
  for p in "${pids[@]}"; do kill -TERM "$p"; done
  for p in "${pids[@]}"; do
    rc=0
    wait "$p" || rc=$?
    [ "$rc" -eq 0 ] || die "a daemon exited $rc after SIGTERM: $(tail -c 600 "$dir"/node-*.err)"
  done
  DAEMONS=()
  kill "$HAPROXY_PID" && wait "$HAPROXY_PID" 2>/dev/null || true
  HAPROXY_PID=

  # The checks: one order and one certificate per name at the CA, one new certificate per
  # name in the database, every node's copy that one, every node's hook once per name.
  local orders issued stored twice copies hooks
  orders=$(grep -c 'Added order' "$dir/pebble/pebble.log" || true)
  issued=$(grep -c 'Issued certificate serial' "$dir/pebble/pebble.log" || true)
  [ "$orders" -eq "$N" ] && [ "$issued" -eq "$N" ] ||
    die "round $r, $k node(s): Pebble saw $orders orders and issued $issued certificates for $N names"
  stored=$(DB=$db sql "SELECT count(*) FROM certificates WHERE generation = 2")
  twice=$(DB=$db sql "SELECT count(*) FROM certificates WHERE generation > 2")
  [ "$stored" -eq "$N" ] && [ "$twice" -eq 0 ] ||
    die "round $r, $k node(s): $stored of $N certificates renewed once, $twice more than once"
  DB=$db sql "SELECT md5(cert_pem) || '  ' || name FROM certificates ORDER BY name" >"$dir/db.md5"
  for n in "${nodes[@]}"; do
    copies=$( (cd "$dir/node-$n/live" && md5sum -- */cert.pem) | sed 's|/cert.pem$||' | sort -k2)
    [ "$copies" = "$(sort -k2 "$dir/db.md5")" ] || die "round $r: node $n's copies differ from the database"
    hooks=$(sort "$dir/deployed-$n" | uniq | wc -l)
    [ "$hooks" -eq "$N" ] && [ "$(wc -l <"$dir/deployed-$n")" -eq "$N" ] ||
      die "round $r: node $n ran $(wc -l <"$dir/deployed-$n") hooks for $hooks names"
  done

  local renewed_s done_s trips per_node
  renewed_s=$(awk -v a="$t0" -v b="$(DB=$db sql "SELECT extract(epoch FROM max(updated_at)) FROM certificates")" 'BEGIN { printf "%.2f", b - a }')
  done_s=$(awk -v a="$t0" -v b="$t_done" 'BEGIN { printf "%.2f", b - a }')
  local dbid
  dbid=$(sql "SELECT oid FROM pg_database WHERE datname = '$db'")
  trips=$(sql "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE dbid = $dbid AND userid = $AGENT_ROLE")
  sql "SELECT calls, regexp_replace(left(query, 90), '\s+', ' ', 'g') FROM pg_stat_statements
       WHERE dbid = $dbid AND userid = $AGENT_ROLE ORDER BY calls DESC" >"$dir/statements.txt"
  per_node=$(for n in "${nodes[@]}"; do grep -c ': renewed$' "$dir/node-$n.err" || true; done | paste -sd/)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$k" "$renewed_s" "$done_s" "$trips" \
    "$agents" "$((pb1 - pb0))" "$((pg1 - pg0))" "$((p111 - p110))" "$hap" "$(awk -v t="$((b1 - b0))" -v a="$tb0" -v b="$tb1" -v hz="$(getconf CLK_TCK)" -v c="$(nproc)" 'BEGIN { printf "%.0f", 100 * t / hz / (b - a) / c }')" \
    "$load0" "$load1" "$per_node" >>"$WORK/runs.tsv"
  say "round $r, $k node(s): renewed in $renewed_s s, all deployed at $done_s s, $trips statements"
  "$ROOT/scripts/pebble-down.sh" "$dir/pebble" >/dev/null 2>&1
}

: >"$WORK/runs.tsv"
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then order=(1 3); else order=(3 1); fi
  for k in "${order[@]}"; do run_case "$r" "$k"; done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "acme-agent fleet: $N due certificates renewed by 1 vs 3 run daemons (bench/fleet.sh), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "host: $(nproc) CPUs, $(uname -r); load average at start: $LOAD_START, at end: $LOAD_END"
  echo "acme-agent $(git -C "$ROOT" rev-parse --short HEAD)$([ -z "$(git -C "$ROOT" status --porcelain -- agent base keystore pkcs11 2>/dev/null)" ] || echo ' + uncommitted changes') ($AGENT); Pebble $(dpkg-query -W -f '${Version}' pebble 2>/dev/null || echo '?') (VA nosleep, no nonce rejection); PostgreSQL $(sql 'SHOW server_version' | cut -d' ' -f1) (fsync off); SoftHSM $(dpkg-query -W -f '${Version}' softhsm2 2>/dev/null || echo '?') behind p11-kit server $(dpkg-query -W -f '${Version}' p11-kit 2>/dev/null || echo '?'); HAProxy $(haproxy -v | head -n 1 | cut -d' ' -f3)"
  echo "$ROUNDS rounds, the cases alternating; each case a fresh database and Pebble, the same seeded certificates; $([ "$KEY_PER_CERT" = 1 ] && echo "a key per certificate ($N)" || echo "ONE key for all $N certificates (the diagnostic KEY_PER_CERT=0)")"
  python3 - "$WORK/runs.tsv" "$N" "$(getconf CLK_TCK)" "$(nproc)" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
n, tck, cpus = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print()
print(f"{'round':>5} {'nodes':>5} {'renewed_s':>9} {'certs/s':>7} {'done_s':>7} {'trips/cert':>10} "
      f"{'renewed by':>12} {'load':>11}   CPU ms/cert: agents pebble postgres p11-kit haproxy | machine busy")
for r in rows:
    rnd, k, ren, done, trips, ag, pb, pg, p11, hap, busy, l0, l1, per = r
    ren, done = float(ren), float(done)
    ms = lambda t: int(t) * 1000 / tck / n
    print(f"{rnd:>5} {k:>5} {ren:>9.2f} {n / ren:>7.2f} {done:>7.2f} {int(trips) / n:>10.1f} {per:>12} "
          f"{l0:>5}-{l1:<5}   {ms(ag):6.1f} {ms(pb):6.1f} {ms(pg):8.1f} {ms(p11):7.1f} {ms(hap):7.1f} | "
          f"{busy:>3} % of {cpus} CPUs")
med = {}
for k in sorted({r[1] for r in rows}, key=int):
    med[k] = statistics.median(float(r[2]) for r in rows if r[1] == k)
print()
for k, m in med.items():
    print(f"{k} node(s): median {m:.2f} s to renew {n}: {n / m:.2f} certificates/s; "
          f"{statistics.median(int(r[4]) for r in rows if r[1] == k) / n:.1f} round trips per certificate")
if "1" in med and "3" in med:
    s = med["1"] / med["3"]
    print(f"speed-up of 3 nodes over 1: {s:.2f}x (issue 17's target: >= 2x: {'met' if s >= 2 else 'MISSED'})")
print()
print("CPU bound: all components' CPU per certificate over the CPUs, the fastest these cases could go on")
print("this machine if nothing else ran (case: CPU ms per certificate -> certificates/s at most):")
for k in med:
    cpu = statistics.median(sum(int(x) for x in r[5:10]) * 1000 / tck / n for r in rows if r[1] == k)
    print(f"  {k} node(s): {cpu:.1f} ms -> {cpus * 1000 / cpu:.1f}/s")
PY
  # Where a renewal's time goes, from the daemons' own log lines (ms timestamps): each phase's
  # median over every renewal of the case's kind (all rounds, all nodes). "between" is from
  # one renewal's end to the node's next one starting: reading and checking the next
  # certificate, and in the fleet the certificates skipped as busy and those installed
  # from other nodes (copy and hook) in between.
  python3 - "$WORK" <<'PY'
import datetime, glob, os, re, statistics, sys
steps = [("lease, key, new order", "order"), ("authorization, publish", "ready"),
         ("validation (3 fetches)", "valid"), ("CSR signed", "csr"), ("issued, downloaded", "dl"),
         ("stored, copied", "hook"), ("deploy hook", "renewed")]
def kind(msg):
    for pat, k in ((r"run: \S+: due \(", "due"), (r"order: ", "order"), (r"challenge: .* ready$", "ready"),
                   (r"authorization: \S+ valid$", "valid"), (r"finalize: CSR signed", "csr"),
                   (r"download: certificate serial", "dl"), (r"run: \S+: deploy hook$", "hook"),
                   (r"run: \S+: renewed$", "renewed")):
        if re.match(pat, msg):
            return k
per = {}
for case in sorted(glob.glob(os.path.join(sys.argv[1], "r*-n*"))):
    k = case.rsplit("-n", 1)[1]
    for log in glob.glob(os.path.join(case, "node-*.err")):
        cur, last_end = {}, None
        for line in open(log):
            m = re.match(r"(\S+)Z \w+ \[(\S+)\] (.*)$", line.rstrip("\n"))
            if not m or not (what := kind(m[3])):
                continue
            t = datetime.datetime.fromisoformat(m[1]).timestamp() * 1000
            if what == "due":
                cur = {"due": t}
                if last_end is not None:
                    per.setdefault(k, {}).setdefault("between", []).append(t - last_end)
            elif cur:
                cur[what] = t
            if what == "renewed" and cur:
                prev = "due"
                for name, step in steps:
                    if step in cur and prev in cur:
                        per.setdefault(k, {}).setdefault(name, []).append(cur[step] - cur[prev])
                    prev = step
                last_end, cur = t, {}
print()
print("where a renewal's time goes: ms, median over the renewals (the daemons' log timestamps)")
names = [s for s, _ in steps] + ["between"]
print(f"{'':26}" + "".join(f"{k + ' node(s)':>12}" for k in sorted(per, key=int)))
for s in names:
    print(f"{s:26}" + "".join(f"{statistics.median(per[k].get(s, [0])):12.1f}" for k in sorted(per, key=int)))
print(f"{'sum of the medians':26}" + "".join(f"{sum(statistics.median(per[k].get(s, [0])) for s in names):12.1f}" for k in sorted(per, key=int)))
PY
} | tee "$RESULTS"
