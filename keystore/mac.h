// Optional keystore ability: HMAC keys held by the backend (the EAB MAC key inside a
// PKCS#11 token, RFC 8555 §7.3.4). A backend that has it also implements MacKeystore.
#pragma once

#include "base/bytes.h"
#include "keystore/key_uri.h"

#include <memory>
#include <span>

namespace keystore {

class MacKey {
  public:
    virtual ~MacKey() = default;
    // HMAC-SHA256 of `data`, computed by the backend; the key never leaves it.
    [[nodiscard]] virtual base::Result<base::Bytes> hmac_sha256(
        std::span<const std::uint8_t> data) const = 0;
};

class MacKeystore {
  public:
    virtual ~MacKeystore() = default;
    // Stores `key` as a sensitive, non-extractable, sign-only secret key (Errc::exists if an
    // object with that label or id is there).
    virtual base::Result<KeyUri> import_hmac(const KeyUri& uri, const base::Secret& key) = 0;
    virtual base::Result<std::unique_ptr<MacKey>> open_mac(const KeyUri& uri) = 0;
};

}  // namespace keystore
