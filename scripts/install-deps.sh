#!/usr/bin/env bash
# Installs every Debian 12 package that acme-agent's build, tests and demo need.
# Idempotent: installs only what is missing and says nothing when all is present.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config git
  libssl-dev libp11-dev libcurl4-openssl-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libtss2-dev libldns-dev libtoml11-dev
  # quality gates: formatting, static analysis, coverage (clang 14 cannot parse <expected>)
  clang-19 clang-format-19 clang-tidy-19 libclang-rt-19-dev cppcheck gcovr
  # install and packaging: man page from --help
  help2man man-db dpkg-dev systemd
  # hardware stand-ins and their tools
  softhsm2 opensc p11-kit
  swtpm swtpm-tools tpm2-tools tpm2-openssl
  # a TPM resource manager for TLS servers on swtpm (openssl s_server -provider tpm2)
  tpm2-abrmd libtss2-tcti-tabrmd0 dbus
  # a second PKCS#11 implementation: keys in the TPM through tpm2-pkcs11 (conformance suite)
  libtpm2-pkcs11-1 libtpm2-pkcs11-tools
  # the CA, and an authoritative DNS server for dns-01 over RFC 2136
  pebble bind9 bind9-dnsutils
  # deployment: nginx serving with the key inside the HSM through the pkcs11 engine
  nginx libengine-pkcs11-openssl
  # fleet mode: shared state in PostgreSQL (libpq), a load balancer in front of the nodes
  postgresql-15 libpq-dev haproxy
  # used by tests, the demo and the benchmarks' plot
  openssl curl ca-certificates jq python3 iproute2 gnuplot-nox
  # the benchmarks: bench/floor.py (also in the CTest smoke bench.e2e_smoke), coldstart.sh
  python3-cryptography strace
  # metrics: promtool checks the /metrics exposition and unit-tests the alert rules
  prometheus
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
