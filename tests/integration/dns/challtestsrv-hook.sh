#!/bin/sh
# A dns-01 hook with lego's exec contract (present|cleanup FQDN VALUE) that publishes the
# TXT record in pebble-challtestsrv through its management API ($CHALLTESTSRV). Each call
# is appended to $DNS_HOOK_LOG when that is set.
set -eu
action=$1 fqdn=$2 value=$3
[ -z "${DNS_HOOK_LOG:-}" ] || echo "$action $fqdn $value domain=$ACME_AGENT_DOMAIN" >>"$DNS_HOOK_LOG"
case $action in
  present) body=$(jq -nc --arg h "$fqdn" --arg v "$value" '{host: $h, value: $v}')
           curl -fsS -d "$body" "$CHALLTESTSRV/set-txt" ;;
  cleanup) body=$(jq -nc --arg h "$fqdn" '{host: $h}')
           curl -fsS -d "$body" "$CHALLTESTSRV/clear-txt" ;;
  *) echo "unknown action $action" >&2; exit 2 ;;
esac
