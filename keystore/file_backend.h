// file: keys — a SOFTWARE backend for machines without hardware (and for tests).
// The private key is a PEM (PKCS#8) file, mode 0600, and is read into process memory:
// it gives none of the hardware guarantees of pkcs11: or tpm2: keys.
#pragma once

#include "keystore/keystore.h"

#include <memory>

namespace keystore {

std::unique_ptr<Keystore> make_file_keystore();

}  // namespace keystore
