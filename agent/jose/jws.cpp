#include "jose/jws.h"

#include "keystore/jwk.h"

#include <nlohmann/json.hpp>

namespace jose {

using base::base64url_encode;

std::string signing_input(const std::string& protected_b64, const std::string& payload_b64) {
    return protected_b64 + "." + payload_b64;
}

Result<std::string> sign(const keystore::Key& key, const Header& header,
                         const std::string& payload) {
    nlohmann::json prot;
    prot["alg"] = keystore::jws_alg(key.algorithm());
    if (header.nonce) prot["nonce"] = *header.nonce;
    prot["url"] = header.url;
    if (header.kid) {
        prot["kid"] = *header.kid;
    } else {
        auto jwk = keystore::jwk_json(key.public_key_der());
        if (!jwk) return std::unexpected(jwk.error());
        prot["jwk"] = nlohmann::json::parse(*jwk);
    }
    const std::string p64 = base64url_encode(prot.dump());
    const std::string b64 = base64url_encode(payload);
    auto sig = key.sign(base::as_bytes(signing_input(p64, b64)));
    if (!sig) return std::unexpected(sig.error());
    nlohmann::json jws{{"protected", p64}, {"payload", b64}, {"signature", base64url_encode(*sig)}};
    return jws.dump();
}

Result<std::string> sign_hs256(
    const std::string& kid, const std::string& url, const std::string& payload,
    const std::function<Result<base::Bytes>(std::span<const std::uint8_t>)>& mac) {
    const nlohmann::json prot{{"alg", "HS256"}, {"kid", kid}, {"url", url}};
    const std::string p64 = base64url_encode(prot.dump());
    const std::string b64 = base64url_encode(payload);
    auto sig = mac(base::as_bytes(signing_input(p64, b64)));
    if (!sig) return std::unexpected(sig.error());
    return nlohmann::json{
        {"protected", p64}, {"payload", b64}, {"signature", base64url_encode(*sig)}}
        .dump();
}

}  // namespace jose
