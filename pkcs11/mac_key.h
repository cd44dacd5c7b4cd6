// Internal to pkcs11/. An HMAC key on a token (the EAB MAC key, RFC 8555 §7.3.4): stored
// once as a sensitive, non-extractable, sign-only secret, then only asked to MAC.
#pragma once

#include "base/bytes.h"
#include "base/error.h"
#include "keystore/mac.h"
#include "pkcs11/token.h"

#include <memory>
#include <span>
#include <string>

namespace pkcs11 {

// Creates the generic secret `key` on the token, labelled `label` with CKA_ID `id`, with
// every attribute explicit (sensitive, non-extractable, sign-only).
Result<void> create_mac_key(const Token& token, CK_SESSION_HANDLE s, const std::string& label,
                            base::Bytes id, const base::Secret& key);

class Pkcs11MacKey final : public keystore::MacKey {
  public:
    Pkcs11MacKey(std::shared_ptr<Token> token, base::Bytes id)
        : token_(std::move(token)), id_(std::move(id)) {}
    [[nodiscard]] Result<base::Bytes> hmac_sha256(
        std::span<const std::uint8_t> data) const override;

  private:
    std::shared_ptr<Token> token_;
    base::Bytes id_;
};

}  // namespace pkcs11
