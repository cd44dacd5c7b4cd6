// Certificate signing requests signed through a keystore::Key (the key never leaves it).
#pragma once

#include "keystore/key.h"

#include <string>
#include <vector>

namespace x509 {

using base::Result;

// A PKCS#10 CSR (DER) for `names` (DNS names, or IPv4/IPv6 literals as IP SANs) with the
// Key's public key, signed by the Key: ecdsa-with-SHA256/384 or sha256WithRSAEncryption.
// The first DNS name (if it fits, 64 chars) is also the subject CN.
Result<base::Bytes> make_csr(const keystore::Key& key, const std::vector<std::string>& names);

// True when `name` is an IPv4 or IPv6 literal (an "ip" identifier, RFC 8738).
bool is_ip_literal(const std::string& name);

}  // namespace x509
