#!/usr/bin/env bash
# Prints LOW-HIGH, the range the test scripts pick server ports from: outside the kernel's
# ephemeral range, so that no outgoing connection, nor its TIME_WAIT, holds a port a
# server is about to bind (swtpm's TCTI opens a connection per TPM command: tens of
# thousands in a test run).
read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
if [ "$lo" -gt 11000 ]; then
  echo "10000-$((lo - 1))"
elif [ "$hi" -lt 64000 ]; then
  echo "$((hi + 1))-65535"
else
  echo "20000-60000"  # no room outside: take our chances, the callers retry on a clash
fi
