#!/usr/bin/env bash
# Usage: softhsm-setup.sh DIR [LABEL [PIN [SO_PIN]]]
#
# Creates a private SoftHSMv2 token store in DIR and a token labelled LABEL (default
# "acme") in it, unless DIR already has one with that label (rerunning is safe).
# PIN/SO_PIN default to 1234/5678; the environment variables SOFTHSM_PIN and
# SOFTHSM_SO_PIN take precedence over the arguments, so PINs need not be in argv.
# SOFTHSM_MODULE overrides the PKCS#11 module (/usr/lib/softhsm/libsofthsm2.so).
#
# Writes DIR/softhsm2.conf, DIR/tokens/ and DIR/LABEL.pin (mode 0600), then prints
# shell lines for eval (nothing else goes to stdout, and the PIN is never printed):
#   eval "$(scripts/softhsm-setup.sh build/hsm)"
set -euo pipefail

die() { echo "softhsm-setup: $*" >&2; exit 1; }

if [ $# -lt 1 ] || [ $# -gt 4 ]; then die "usage: $0 DIR [LABEL [PIN [SO_PIN]]]"; fi
LABEL=${2:-acme}
PIN=${SOFTHSM_PIN:-${3:-1234}}
SO_PIN=${SOFTHSM_SO_PIN:-${4:-5678}}
MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

command -v softhsm2-util >/dev/null || die "softhsm2-util not found (apt-get install -y softhsm2)"
[ -f "$MODULE" ] || die "PKCS#11 module $MODULE not found (apt-get install -y softhsm2, or set SOFTHSM_MODULE)"
[[ $LABEL =~ ^[A-Za-z0-9._-]{1,32}$ ]] || die "label must be 1-32 characters of [A-Za-z0-9._-]: '$LABEL'"
for p in "$PIN" "$SO_PIN"; do
  if [ ${#p} -lt 4 ] || [ ${#p} -gt 255 ] || [[ $p == *$'\n'* ]]; then
    die "PINs must be 4-255 characters without newlines"
  fi
done

mkdir -p "$1/tokens"
DIR=$(cd "$1" && pwd)
export SOFTHSM2_CONF="$DIR/softhsm2.conf"
cat >"$SOFTHSM2_CONF" <<EOF
directories.tokendir = $DIR/tokens
objectstore.backend = file
log.level = ERROR
EOF

# True when a token in this DIR already carries LABEL (labels are space-padded).
has_token() {
  softhsm2-util --show-slots 2>/dev/null | awk -v want="$LABEL" '
    /^[[:space:]]*Label:/ { sub(/^[[:space:]]*Label:[[:space:]]*/, ""); sub(/[[:space:]]+$/, "")
                            if ($0 == want) found = 1 }
    END { exit !found }'
}

if has_token; then
  echo "softhsm-setup: token '$LABEL' already exists in $DIR/tokens" >&2
  if [ -f "$DIR/$LABEL.pin" ] && [ "$(cat "$DIR/$LABEL.pin")" != "$PIN" ]; then
    die "token '$LABEL' exists but $DIR/$LABEL.pin holds a different PIN; remove $DIR to start over"
  fi
else
  # softhsm2-util accepts PINs only in argv or from a terminal.
  softhsm2-util --init-token --free --label "$LABEL" --pin "$PIN" --so-pin "$SO_PIN" >&2 \
    || die "softhsm2-util --init-token failed for label '$LABEL' in $DIR/tokens"
  has_token || die "token '$LABEL' not visible after initialisation"
fi

# Write the PIN file under umask 077 and move it into place: never world-readable.
(
  umask 077
  tmp=$(mktemp "$DIR/.$LABEL.pin.XXXXXX")
  printf '%s' "$PIN" >"$tmp"
  mv -f "$tmp" "$DIR/$LABEL.pin"
)

# Percent-encode a path for a PKCS#11 URI query value (RFC 7512).
uri_path() {
  local LC_ALL=C s=$1 out='' c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in
      [A-Za-z0-9._~/-]) out+=$c ;;
      *) out+=$(printf '%%%02X' "'$c") ;;
    esac
  done
  printf '%s' "$out"
}

printf 'export SOFTHSM2_CONF=%q\n' "$SOFTHSM2_CONF"
printf 'export ACME_AGENT_PKCS11_MODULE=%q\n' "$MODULE"
printf "export ACME_AGENT_TOKEN_URI='pkcs11:token=%s?module-path=%s&pin-source=file:%s'\n" \
  "$LABEL" "$(uri_path "$MODULE")" "$(uri_path "$DIR/$LABEL.pin")"
