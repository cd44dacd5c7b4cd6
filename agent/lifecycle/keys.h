// Opening the keys a certificate or an account signs with, whatever backend the caller's
// keystore::Registry knows (the composition root in cli/ fills it).
#pragma once

#include "base/error.h"
#include "keystore/keystore.h"
#include "lifecycle/settings.h"

#include <string>
#include <vector>

namespace lifecycle {

// Parses a key URI given to `option` (a command line option or a config key); errors name it.
base::Result<keystore::KeyUri> parse_uri(const std::string& text, const char* option);

// What makes a hardware key unfit to be an account or certificate key (empty: nothing):
// a PKCS#11 key that is extractable, not sensitive, or may decrypt/unwrap; a TPM key
// without fixedTPM or fixedParent. file: keys are software by choice and never weak here.
base::Result<std::vector<std::string>> weaknesses(const keystore::Key& key);

// Opens the account or certificate key at `uri`: refused (Errc::usage, naming the
// attribute) when weaknesses() finds one, unless `allow_weak` (--allow-weak-key).
base::Result<keystore::KeyPtr> open_signing_key(keystore::Registry& reg,
                                                const keystore::KeyUri& uri, bool allow_weak);

// The stored certificates (in g's storage) whose key is `key`, for `key delete` to name:
// none when the storage is a state dir that does not exist (it is not made).
base::Result<std::vector<std::string>> certificates_using(const Globals& g,
                                                          const keystore::Key& key);

}  // namespace lifecycle
