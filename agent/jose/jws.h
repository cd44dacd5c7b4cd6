// JWS in the flattened JSON serialization as ACME uses it (RFC 7515 §7.2.2, RFC 8555 §6.2):
// protected {alg, nonce, url, jwk | kid}, signed through a keystore::Key.
#pragma once

#include "keystore/key.h"

#include <functional>
#include <optional>
#include <string>

namespace jose {

using base::Result;

struct Header {
    std::string url;                   // exactly as the server gave it (SECURITY.md rule 4)
    std::optional<std::string> nonce;  // absent only for the inner JWS of a keyChange
    std::optional<std::string> kid;    // the account URL; when absent the key's jwk is sent
};

// `payload` is the JSON text to send, or "" for POST-as-GET (RFC 8555 §6.3).
// Returns the JWS as a JSON object text.
Result<std::string> sign(const keystore::Key& key, const Header& header,
                         const std::string& payload);

// An HS256 JWS (the inner JWS of External Account Binding, RFC 8555 §7.3.4): protected
// {alg: HS256, kid, url}; `mac` computes HMAC-SHA256 with the EAB key, wherever it lives.
Result<std::string> sign_hs256(
    const std::string& kid, const std::string& url, const std::string& payload,
    const std::function<Result<base::Bytes>(std::span<const std::uint8_t>)>& mac);

// The signing input: ASCII(BASE64URL(protected) || '.' || BASE64URL(payload)).
std::string signing_input(const std::string& protected_b64, const std::string& payload_b64);

}  // namespace jose
