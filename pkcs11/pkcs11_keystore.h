// pkcs11: keys on a PKCS#11 token (RFC 7512 URIs). Keys are generated on the token with
// an explicit template (sensitive, non-extractable, sign-only; SECURITY.md rule 10) and
// are only ever asked to sign. One module load and one login per process; sessions are
// pooled, so a Key may sign from several threads at once.
#pragma once

#include "keystore/keystore.h"

#include <memory>

namespace pkcs11 {

std::unique_ptr<keystore::Keystore> make_keystore();

}  // namespace pkcs11
