// Where a PIN or auth value comes from (SECURITY.md rules 11, 18): the URI's pin-source
// (a file, owner-only, read by read_secret_file), an interactive prompt on the terminal, or
// the URI's pin-value from an owner-only config file. Never argv or the environment.
#pragma once

#include "base/bytes.h"
#include "keystore/key_uri.h"

namespace keystore {

// `what` names the secret in the prompt and in errors, e.g. "PIN for token 'acme'".
// Returns an empty Secret when the URI names no source and no terminal is available and
// `required` is false.
base::Result<base::Secret> resolve_pin(const KeyUri& uri, std::string_view what,
                                       bool required = true);

}  // namespace keystore
