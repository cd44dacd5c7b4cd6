#include "keystore/jwk.h"

#include "base/ossl.h"

#include <openssl/core_names.h>

#include <nlohmann/json.hpp>

namespace keystore {

namespace ossl = base::ossl;

using base::as_bytes;
using base::base64url_encode;
using base::Bytes;
using base::Errc;
using base::fail;
using base::Result;

namespace {
Bytes bn_param(EVP_PKEY* key, const char* name) {
    BIGNUM* bn = nullptr;
    if (!EVP_PKEY_get_bn_param(key, name, &bn)) return {};
    ossl::Bn owned(bn);
    Bytes out(static_cast<std::size_t>(BN_num_bytes(bn)));
    BN_bn2bin(bn, out.data());  // minimal big-endian: no leading zeros (RFC 7518 §6.3.1)
    return out;
}
}  // namespace

Result<std::string> jwk_json(const Bytes& spki_der) {
    auto key = ossl::pkey_from_spki(spki_der);
    if (!key) return std::unexpected(key.error());
    EVP_PKEY* k = key->get();
    // nlohmann::json objects are ordered maps and dump() writes no whitespace: exactly
    // the RFC 7638 §3.3 canonical form.
    nlohmann::json jwk;
    switch (EVP_PKEY_get_base_id(k)) {
        case EVP_PKEY_EC: {
            char group[64] = {};
            EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           nullptr);
            const std::string g = group;
            std::size_t width = 0;
            if (g == "prime256v1" || g == "P-256") {
                jwk["crv"] = "P-256";
                width = 32;
            } else if (g == "secp384r1" || g == "P-384") {
                jwk["crv"] = "P-384";
                width = 48;
            } else {
                return fail(Errc::unsupported, "JWK", "EC curve " + g + " has no JWS algorithm");
            }
            // Coordinates at full field length (RFC 7518 §6.2.1.2), from the uncompressed point.
            unsigned char point[1 + 2 * 66];
            std::size_t len = 0;
            if (!EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                                 sizeof point, &len) ||
                len != 1 + 2 * width || point[0] != 0x04)
                return fail(Errc::protocol, "JWK", "EC public key is not an uncompressed point");
            jwk["kty"] = "EC";
            jwk["x"] = base64url_encode(std::span(point + 1, width));
            jwk["y"] = base64url_encode(std::span(point + 1 + width, width));
            break;
        }
        case EVP_PKEY_RSA:
            jwk["kty"] = "RSA";
            jwk["n"] = base64url_encode(bn_param(k, OSSL_PKEY_PARAM_RSA_N));
            jwk["e"] = base64url_encode(bn_param(k, OSSL_PKEY_PARAM_RSA_E));
            break;
        default:
            return fail(Errc::unsupported, "JWK", "only EC and RSA public keys are supported");
    }
    return jwk.dump();
}

Result<std::string> jwk_thumbprint(const Bytes& spki_der) {
    auto json = jwk_json(spki_der);
    if (!json) return std::unexpected(json.error());
    return base64url_encode(ossl::digest("SHA256", as_bytes(*json)));
}

}  // namespace keystore
