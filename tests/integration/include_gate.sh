#!/usr/bin/env bash
# scripts/check-includes.sh is the CI gate for the layer rule (docs/ARCHITECTURE.md): the
# real tree passes, and each kind of violation planted in a copy of the sources fails it with
# one line naming the file, the line, the include and the rule. Seconds, no build.
source "$(dirname "$0")/lib.sh"

TREE=$WORK/tree
GATE=$SCRIPTS/check-includes.sh

# gate EXPECTED_RC [DIR]: runs the gate on DIR (default the copy); output in $OUT.
gate() {
  local want=$1 rc=0
  bash "$GATE" "${2:-$TREE}" >"$OUT" 2>&1 || rc=$?
  [ "$rc" = "$want" ] || { fail "check-includes exited $rc, expected $want: $(head -c 600 "$OUT")"; return 1; }
}
# plant FILE LINE: a fresh copy of the sources with LINE appended to FILE (a new file
# replaces the copy, so nothing is ever written through a link into the real tree).
plant() {
  rm -rf "$TREE"
  mkdir -p "$TREE"
  (cd "$ACME_AGENT_SOURCE_DIR" && cp -RL base keystore pkcs11 tpm agent "$TREE/")
  { cat "$TREE/$1"; echo "$2"; } >"$TREE/$1.planted"
  mv -f "$TREE/$1.planted" "$TREE/$1"
}

gate 0 "$ACME_AGENT_SOURCE_DIR" && contains "$OUT" "0 violation(s)" && pass "the repository holds the rule"

plant agent/acme/client.cpp '#include "pkcs11/module.h"'
gate 1 && contains "$OUT" 'agent/acme/client.cpp:' &&
  contains "$OUT" '#include "pkcs11/module.h": agent/acme/ never includes pkcs11/: only agent/cli/, the composition root, knows the backends' &&
  contains "$OUT" "1 violation(s)" && pass "agent/acme including pkcs11/ fails, naming file, include and rule"

plant agent/store/state.h '#  include "agent/cli/common.h"'
gate 1 && contains "$OUT" 'agent/store/state.h:' && contains "$OUT" 'agent/store/ never includes cli/' &&
  pass "a part including cli/ (spelt agent/cli/, indented) fails"

plant agent/challenge/dns01.cpp '#include "tpm/tpm_keystore.h"'
gate 1 && contains "$OUT" 'agent/challenge/ never includes tpm/' && pass "agent/challenge including tpm/ fails"

plant base/log.cpp '#include "keystore/key.h"'
gate 1 && contains "$OUT" 'base/log.cpp:' && contains "$OUT" 'base/ includes nothing of the project' &&
  pass "base/ including keystore/ fails"

plant keystore/jwk.cpp '#include "jose/jws.h"'
gate 1 && contains "$OUT" 'keystore/ includes only base/' && pass "keystore/ including the agent fails"

plant tpm/connection.cpp '#include "pkcs11/module.h"'
gate 1 && contains "$OUT" 'tpm/ includes only base/ and keystore/' && pass "tpm/ including pkcs11/ fails"

plant keystore/key.h '#include <openssl/evp.h>'
gate 1 && contains "$OUT" 'keystore/key.h:' && contains "$OUT" '#include <openssl/evp.h>: keystore/ public headers include no OpenSSL' &&
  pass "a keystore/ public header including OpenSSL fails"

# What the rule allows stays allowed.
plant agent/cli/common.cpp '#include "tpm/tpm_keystore.h"'
gate 0 && pass "agent/cli/ (the composition root) may include a backend"
plant pkcs11/module.cpp '#include "keystore/key_uri.h"'
gate 0 && pass "pkcs11/ may include keystore/"
plant keystore/ecdsa.cpp '#include <openssl/evp.h>'
gate 0 && pass "a keystore/ source file may include OpenSSL"

finish
