// The boundary every private-key operation goes through. A Key answers only
// "who am I" (algorithm, public key, URI, properties) and "sign this"; it never
// hands out private key material, whatever the backend.
#pragma once

#include "base/bytes.h"
#include "base/error.h"
#include "keystore/algorithm.h"
#include "keystore/key_uri.h"

#include <memory>
#include <span>
#include <string>
#include <vector>

namespace keystore {

// One fact the hardware reports about a key, e.g. {"sensitive", "true"}.
struct KeyProperty {
    std::string name;
    std::string value;
};

class Key {
  public:
    virtual ~Key() = default;

    [[nodiscard]] virtual KeyAlgorithm algorithm() const = 0;
    // SubjectPublicKeyInfo, DER.
    [[nodiscard]] virtual const base::Bytes& public_key_der() const = 0;
    // The key's full URI (no PIN value).
    [[nodiscard]] virtual const KeyUri& uri() const = 0;
    // Signs `message` (hashed on the host with SHA-256 for ES256/RS256, SHA-384 for ES384)
    // and returns the JWS form (RFC 7518 §3): ECDSA as fixed-width r||s (64 or 96 bytes),
    // RSA as PKCS#1 v1.5. Safe to call from several threads at once.
    [[nodiscard]] virtual base::Result<base::Bytes> sign(
        std::span<const std::uint8_t> message) const = 0;
    // What the backend reports about the key: sensitive, extractable, usage, backend, ...
    [[nodiscard]] virtual base::Result<std::vector<KeyProperty>> properties() const = 0;
};

using KeyPtr = std::shared_ptr<const Key>;

}  // namespace keystore
