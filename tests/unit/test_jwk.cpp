// JWK export (RFC 7517/7518 §6) and the RFC 7638 thumbprint of SubjectPublicKeyInfo keys.
#include "keystore/jwk.h"

#include "base/ossl.h"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace {

using base::Bytes;
using base::Errc;

using PKey = base::ossl::PKey;

Bytes spki_of(EVP_PKEY* key) {
    const int len = i2d_PUBKEY(key, nullptr);
    if (len <= 0) return {};
    Bytes out(static_cast<std::size_t>(len));
    unsigned char* p = out.data();
    i2d_PUBKEY(key, &p);
    return out;
}

Bytes decode(std::string_view b64) {
    auto d = base::base64url_decode(b64);
    return d ? *d : Bytes{};
}

// An RSA public key from its base64url n and e.
PKey rsa_public_key(std::string_view n_b64, std::string_view e_b64) {
    const Bytes n = decode(n_b64), e = decode(e_b64);
    BIGNUM* bn_n = BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr);
    BIGNUM* bn_e = BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr);
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e);
    OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
    EVP_PKEY* key = nullptr;
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
        key = nullptr;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return PKey(key);
}

PKey ec_key(const char* curve) {
    return PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
}

// The affine coordinates of an EC key at full field width.
std::pair<Bytes, Bytes> ec_coordinates(EVP_PKEY* key, std::size_t width) {
    BIGNUM *x = nullptr, *y = nullptr;
    EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x);
    EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y);
    Bytes bx(width), by(width);
    BN_bn2binpad(x, bx.data(), static_cast<int>(width));
    BN_bn2binpad(y, by.data(), static_cast<int>(width));
    BN_free(x);
    BN_free(y);
    return {bx, by};
}

std::size_t significant_bytes(EVP_PKEY* key, const char* param) {
    BIGNUM* bn = nullptr;
    EVP_PKEY_get_bn_param(key, param, &bn);
    const int n = BN_num_bytes(bn);
    BN_free(bn);
    return static_cast<std::size_t>(n);
}

// RFC 7638 §3.1.
constexpr std::string_view kRfc7638N =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
    "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
    "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
    "bFTWhAI4vMQFh6"
    "WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

TEST(Jwk, Rfc7638ThumbprintExample) {
    PKey key = rsa_public_key(kRfc7638N, "AQAB");
    ASSERT_TRUE(key);
    ASSERT_EQ(EVP_PKEY_get_bits(key.get()), 2048);
    const Bytes spki = spki_of(key.get());

    auto json = keystore::jwk_json(spki);
    ASSERT_TRUE(json) << json.error().describe();
    EXPECT_EQ(*json,
              std::string(R"({"e":"AQAB","kty":"RSA","n":")") + std::string(kRfc7638N) + "\"}");

    auto thumbprint = keystore::jwk_thumbprint(spki);
    ASSERT_TRUE(thumbprint) << thumbprint.error().describe();
    EXPECT_EQ(*thumbprint, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

TEST(Jwk, ThumbprintIsSha256OfTheJwkJson) {
    PKey key = ec_key("P-256");
    ASSERT_TRUE(key);
    const Bytes spki = spki_of(key.get());
    auto json = keystore::jwk_json(spki);
    auto thumbprint = keystore::jwk_thumbprint(spki);
    ASSERT_TRUE(json);
    ASSERT_TRUE(thumbprint);
    unsigned char md[32];
    unsigned int len = 0;
    ASSERT_EQ(EVP_Digest(json->data(), json->size(), md, &len, EVP_sha256(), nullptr), 1);
    EXPECT_EQ(*thumbprint, base::base64url_encode(std::span<const std::uint8_t>(md, len)));
    EXPECT_EQ(thumbprint->size(), 43u);
}

TEST(Jwk, EcP256IsCanonicalJson) {
    PKey key = ec_key("P-256");
    ASSERT_TRUE(key);
    auto [x, y] = ec_coordinates(key.get(), 32);
    auto json = keystore::jwk_json(spki_of(key.get()));
    ASSERT_TRUE(json) << json.error().describe();
    // Members in lexicographic order, no whitespace, only the required ones (RFC 7638 §3.2).
    EXPECT_EQ(*json, R"({"crv":"P-256","kty":"EC","x":")" + base::base64url_encode(x) +
                         R"(","y":")" + base::base64url_encode(y) + "\"}");
}

// RFC 7518 §6.2.1.2: x and y are the full field length, leading zero bytes included.
void expect_full_width_coordinates(const char* curve, std::string_view crv, std::size_t width) {
    bool short_x = false, short_y = false;
    for (int i = 0; i < 20000 && !(short_x && short_y); ++i) {
        PKey key = ec_key(curve);
        ASSERT_TRUE(key);
        const bool sx = significant_bytes(key.get(), OSSL_PKEY_PARAM_EC_PUB_X) < width;
        const bool sy = significant_bytes(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y) < width;
        if ((!sx || short_x) && (!sy || short_y)) continue;  // nothing new to test
        short_x = short_x || sx;
        short_y = short_y || sy;
        auto json = keystore::jwk_json(spki_of(key.get()));
        ASSERT_TRUE(json) << json.error().describe();
        const auto jwk = nlohmann::json::parse(*json);
        const auto [x, y] = ec_coordinates(key.get(), width);
        EXPECT_EQ(jwk.at("crv"), crv);
        const std::string jx = jwk.at("x"), jy = jwk.at("y");
        EXPECT_EQ(jx.size(), (width * 4 + 2) / 3) << jx;
        EXPECT_EQ(jy.size(), (width * 4 + 2) / 3) << jy;
        EXPECT_EQ(decode(jx), x);
        EXPECT_EQ(decode(jy), y);
        if (sx) {
            EXPECT_EQ(decode(jx).at(0), 0) << "x has a leading zero byte";
        }
        if (sy) {
            EXPECT_EQ(decode(jy).at(0), 0) << "y has a leading zero byte";
        }
    }
    EXPECT_TRUE(short_x) << "no key with a short x coordinate found";
    EXPECT_TRUE(short_y) << "no key with a short y coordinate found";
}

TEST(Jwk, EcP256CoordinatesWithLeadingZeroAreStill43Chars) {
    expect_full_width_coordinates("P-256", "P-256", 32);
}

TEST(Jwk, EcP384CoordinatesAre64Chars) {
    PKey key = ec_key("P-384");
    ASSERT_TRUE(key);
    auto json = keystore::jwk_json(spki_of(key.get()));
    ASSERT_TRUE(json) << json.error().describe();
    const auto jwk = nlohmann::json::parse(*json);
    const auto [x, y] = ec_coordinates(key.get(), 48);
    EXPECT_EQ(jwk.size(), 4u);
    EXPECT_EQ(jwk.at("kty"), "EC");
    EXPECT_EQ(jwk.at("crv"), "P-384");
    EXPECT_EQ(jwk.at("x").get<std::string>().size(), 64u);
    EXPECT_EQ(jwk.at("y").get<std::string>().size(), 64u);
    EXPECT_EQ(decode(jwk.at("x").get<std::string>()), x);
    EXPECT_EQ(decode(jwk.at("y").get<std::string>()), y);
}

TEST(Jwk, EcP384CoordinatesWithLeadingZeroAreStill64Chars) {
    expect_full_width_coordinates("P-384", "P-384", 48);
}

TEST(Jwk, RsaModulusHasNoLeadingZeroByte) {
    PKey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
    ASSERT_TRUE(key);
    const Bytes spki = spki_of(key.get());
    auto json = keystore::jwk_json(spki);
    ASSERT_TRUE(json) << json.error().describe();
    const auto jwk = nlohmann::json::parse(*json);
    EXPECT_EQ(jwk.size(), 3u);
    EXPECT_EQ(jwk.at("kty"), "RSA");
    EXPECT_EQ(jwk.at("e"), "AQAB");
    // The DER INTEGER of a 2048-bit modulus has a 0x00 sign byte (257 bytes); the JWK's
    // n is the unsigned value, exactly 256 bytes (RFC 7518 §6.3.1.1).
    const std::string n = jwk.at("n");
    EXPECT_EQ(n.size(), 342u);
    const Bytes nb = decode(n);
    ASSERT_EQ(nb.size(), 256u);
    EXPECT_NE(nb[0], 0);
    EXPECT_GE(nb[0], 0x80);

    BIGNUM* bn = nullptr;
    ASSERT_EQ(EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_N, &bn), 1);
    Bytes expected(static_cast<std::size_t>(BN_num_bytes(bn)));
    BN_bn2bin(bn, expected.data());
    BN_free(bn);
    EXPECT_EQ(nb, expected);
    EXPECT_EQ(*json, R"({"e":"AQAB","kty":"RSA","n":")" + n + "\"}");
}

TEST(Jwk, RsaExponentOtherThan65537) {
    // e = 3 -> "Aw"; the thumbprint input changes with it.
    PKey key = rsa_public_key(kRfc7638N, "Aw");
    ASSERT_TRUE(key);
    auto json = keystore::jwk_json(spki_of(key.get()));
    ASSERT_TRUE(json) << json.error().describe();
    EXPECT_EQ(*json,
              std::string(R"({"e":"Aw","kty":"RSA","n":")") + std::string(kRfc7638N) + "\"}");
    auto thumbprint = keystore::jwk_thumbprint(spki_of(key.get()));
    ASSERT_TRUE(thumbprint);
    EXPECT_NE(*thumbprint, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

TEST(Jwk, UnsupportedKeyTypesAndCurves) {
    struct Case {
        const char* name;
        PKey key;
    };
    Case cases[] = {
        {"Ed25519", PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"))},
        {"X25519", PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"))},
        {"P-521", ec_key("P-521")},
        {"secp256k1", ec_key("secp256k1")},
    };
    for (auto& c : cases) {
        SCOPED_TRACE(c.name);
        ASSERT_TRUE(c.key);
        const Bytes spki = spki_of(c.key.get());
        ASSERT_FALSE(spki.empty());
        auto json = keystore::jwk_json(spki);
        ASSERT_FALSE(json) << *json;
        EXPECT_EQ(json.error().code, Errc::unsupported);
        auto thumbprint = keystore::jwk_thumbprint(spki);
        ASSERT_FALSE(thumbprint);
        EXPECT_EQ(thumbprint.error().code, Errc::unsupported);
    }
}

TEST(Jwk, GarbageIsNotASubjectPublicKeyInfo) {
    for (const Bytes& der : {Bytes{}, Bytes{0x30, 0x00}, Bytes{0x01, 0x02, 0x03}}) {
        auto json = keystore::jwk_json(der);
        ASSERT_FALSE(json);
        EXPECT_EQ(json.error().code, Errc::protocol);
    }
    // A truncated real SPKI.
    PKey key = ec_key("P-256");
    ASSERT_TRUE(key);
    Bytes spki = spki_of(key.get());
    spki.pop_back();
    EXPECT_FALSE(keystore::jwk_json(spki));
}

}  // namespace
