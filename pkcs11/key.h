// Internal to pkcs11/. A signing key on a token: its public half read back as a
// SubjectPublicKeyInfo, a key pair generated with the template SECURITY.md rule 10 asks
// for, and Pkcs11Key, which signs through the token's session pool.
#pragma once

#include "base/bytes.h"
#include "base/error.h"
#include "keystore/keystore.h"
#include "pkcs11/token.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace pkcs11 {

// The algorithm and SubjectPublicKeyInfo of private key object `priv`: from the public key
// object with the same CKA_ID (EC) or the private key's public parts (RSA).
Result<std::pair<keystore::KeyAlgorithm, base::Bytes>> public_key_of(CK_FUNCTION_LIST* fn,
                                                                     CK_SESSION_HANDLE s,
                                                                     CK_OBJECT_HANDLE priv,
                                                                     const base::Bytes& id);

// Generates a key pair of `alg` labelled `label` with CKA_ID `id`: sensitive,
// non-extractable, sign-only (SECURITY.md rule 10), CKA_ALWAYS_AUTHENTICATE when asked.
// What the token says it made is checked; a key that is not what was asked for is destroyed.
// Returns the private key's handle.
Result<CK_OBJECT_HANDLE> generate_key_pair(const Token& token, CK_SESSION_HANDLE s,
                                           keystore::KeyAlgorithm alg, const std::string& label,
                                           base::Bytes id, const keystore::KeyOptions& options);

class Pkcs11Key final : public keystore::Key {
  public:
    Pkcs11Key(std::shared_ptr<Token> token, keystore::KeyUri uri, keystore::KeyAlgorithm alg,
              base::Bytes spki, base::Bytes id, bool always_authenticate)
        : token_(std::move(token)),
          uri_(std::move(uri)),
          alg_(alg),
          spki_(std::move(spki)),
          id_(std::move(id)),
          always_authenticate_(always_authenticate) {}

    [[nodiscard]] keystore::KeyAlgorithm algorithm() const override { return alg_; }
    [[nodiscard]] const base::Bytes& public_key_der() const override { return spki_; }
    [[nodiscard]] const keystore::KeyUri& uri() const override { return uri_; }
    [[nodiscard]] Result<base::Bytes> sign(std::span<const std::uint8_t> message) const override;
    [[nodiscard]] Result<std::vector<keystore::KeyProperty>> properties() const override;

  private:
    // One signature over the host-side digest (with the DigestInfo prefix for RSA; the
    // message itself when the token hashes), `rv` set to the CK_RV of a failed call for the
    // caller's recovery decision.
    Result<base::Bytes> sign_once(std::span<const std::uint8_t> message,
                                  const base::Bytes& digest_info, CK_RV* rv_out) const;
    // Object handles are looked up once per token generation: they stay valid across
    // sessions of one application, but a token may renumber after a reconnect, and a
    // lookup by CKA_ID costs one find on the token.
    Result<CK_OBJECT_HANDLE> private_handle(CK_SESSION_HANDLE s) const;

    std::shared_ptr<Token> token_;
    keystore::KeyUri uri_;
    keystore::KeyAlgorithm alg_;
    base::Bytes spki_;
    base::Bytes id_;
    bool always_authenticate_;
    mutable std::atomic<bool> rsa_on_token_{false};  // CKM_SHA256_RSA_PKCS: see sign()
    mutable std::mutex mutex_;
    mutable CK_OBJECT_HANDLE handle_ = CK_INVALID_HANDLE;
    mutable std::uint64_t handle_generation_ = 0;
};

}  // namespace pkcs11
