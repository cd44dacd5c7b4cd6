// JWS: the RFC 7515 A.2 RS256 known answer through a file: key, and jose::sign() as an
// ACME server sees it (RFC 8555 §6.2).
#include "jose/jws.h"

#include "base/ossl.h"
#include "keystore/ecdsa.h"
#include "keystore/file_backend.h"
#include "keystore/jwk.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

namespace {

using base::Bytes;
using keystore::KeyAlgorithm;
using keystore::KeyUri;
using nlohmann::json;

using testsupport::TempDir;

Bytes decode(std::string_view b64) {
    auto d = base::base64url_decode(b64);
    return d ? *d : Bytes{};
}

std::string decode_text(std::string_view b64) {
    const Bytes b = decode(b64);
    return std::string(b.begin(), b.end());
}

KeyUri file_uri(const std::filesystem::path& p) {
    auto uri = KeyUri::parse("file:" + p.string());
    return uri ? *uri : KeyUri{};
}

// ---------------------------------------------------------------------------------------
// RFC 7515 Appendix A.2: RSASSA-PKCS1-v1_5 with SHA-256.

constexpr std::string_view kA2N =
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-"
    "4qPCJrcS2mJPMEzP1Pt0Bm4d4Ql"
    "L-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-"
    "bSf63kpaSHSXndS5z5rexMdbBYU"
    "sLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNm"
    "oudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
constexpr std::string_view kA2E = "AQAB";
constexpr std::string_view kA2D =
    "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoA"
    "Je46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_"
    "V51gfpRL"
    "I9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_"
    "jTj3ccPDVZFD9"
    "pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ";
constexpr std::string_view kA2P =
    "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_"
    "Py5PJdT"
    "JNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc";
constexpr std::string_view kA2Q =
    "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_"
    "Y"
    "wD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc";
constexpr std::string_view kA2Dp =
    "BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-"
    "FOKnu1R6Hs"
    "JeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0";
constexpr std::string_view kA2Dq =
    "h_96-mK1R_"
    "7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-"
    "NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU";
constexpr std::string_view kA2Qi =
    "IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_"
    "QJQ3ydy5cY7YIBi"
    "87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U";
constexpr std::string_view kA2SigningInput =
    "eyJhbGciOiJSUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlf"
    "Q";
constexpr std::string_view kA2Signature =
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_"
    "O8W2Fp5juj"
    "Gbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_"
    "nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7"
    "K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-"
    "eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8n"
    "p6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

// The A.2.1 key as a PKCS#8 PEM, "" on failure.
std::string rfc7515_a2_private_key_pem() {
    struct Param {
        const char* name;
        std::string_view b64;
    };
    const Param params[] = {
        {OSSL_PKEY_PARAM_RSA_N, kA2N},          {OSSL_PKEY_PARAM_RSA_E, kA2E},
        {OSSL_PKEY_PARAM_RSA_D, kA2D},          {OSSL_PKEY_PARAM_RSA_FACTOR1, kA2P},
        {OSSL_PKEY_PARAM_RSA_FACTOR2, kA2Q},    {OSSL_PKEY_PARAM_RSA_EXPONENT1, kA2Dp},
        {OSSL_PKEY_PARAM_RSA_EXPONENT2, kA2Dq}, {OSSL_PKEY_PARAM_RSA_COEFFICIENT1, kA2Qi},
    };
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    std::vector<BIGNUM*> bns;
    for (const auto& p : params) {
        const Bytes b = decode(p.b64);
        bns.push_back(BN_bin2bn(b.data(), static_cast<int>(b.size()), nullptr));
        OSSL_PARAM_BLD_push_BN(bld, p.name, bns.back());
    }
    OSSL_PARAM* ossl_params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
    EVP_PKEY* key = nullptr;
    std::string pem;
    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, ossl_params) == 1) {
        BIO* bio = BIO_new(BIO_s_mem());
        if (PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1) {
            char* data = nullptr;
            const long len = BIO_get_mem_data(bio, &data);
            pem.assign(data, static_cast<std::size_t>(len));
        }
        BIO_free(bio);
    }
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(ossl_params);
    OSSL_PARAM_BLD_free(bld);
    for (auto* bn : bns) BN_free(bn);
    return pem;
}

TEST(Jws, Rfc7515A2Rs256KnownAnswerThroughAFileKey) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const std::string pem = rfc7515_a2_private_key_pem();
    ASSERT_NE(pem.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
    const auto path = dir.path() / "rfc7515-a2.pem";
    {
        std::ofstream out(path);
        out << pem;
    }
    std::filesystem::permissions(
        path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

    auto store = keystore::make_file_keystore();
    auto key = store->open(file_uri(path));
    ASSERT_TRUE(key) << key.error().describe();
    EXPECT_EQ((*key)->algorithm(), KeyAlgorithm::rsa_2048);
    EXPECT_EQ(keystore::jws_alg((*key)->algorithm()), "RS256");

    // The public half is the RFC's (n, e).
    auto jwk = keystore::jwk_json((*key)->public_key_der());
    ASSERT_TRUE(jwk) << jwk.error().describe();
    EXPECT_EQ(*jwk, R"({"e":"AQAB","kty":"RSA","n":")" + std::string(kA2N) + "\"}");

    // RSASSA-PKCS1-v1_5 is deterministic: the signature is the RFC's, byte for byte.
    auto sig = (*key)->sign(base::as_bytes(kA2SigningInput));
    ASSERT_TRUE(sig) << sig.error().describe();
    EXPECT_EQ(sig->size(), 256u);
    EXPECT_EQ(base::base64url_encode(*sig), kA2Signature);

    // And the RFC's signature verifies with the public key.
    EXPECT_TRUE(keystore::verify_jws_signature(
        (*key)->public_key_der(), base::as_bytes(kA2SigningInput), decode(kA2Signature)));
}

TEST(Jws, SigningInputIsProtectedDotPayload) {
    EXPECT_EQ(jose::signing_input("eyJhbGciOiJSUzI1NiJ9",
                                  "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
                                  "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ"),
              kA2SigningInput);
    EXPECT_EQ(jose::signing_input("abc", ""), "abc.");
}

// RFC 7515 Appendix A.3 (ES256): the verifier used below accepts the RFC's r||s signature,
// and rejects it once one bit changes.
TEST(Jws, Rfc7515A3Es256SignatureVerifies) {
    const Bytes x = decode("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU");
    const Bytes y = decode("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0");
    ASSERT_EQ(x.size(), 32u);
    ASSERT_EQ(y.size(), 32u);
    Bytes point{0x04};
    point.insert(point.end(), x.begin(), x.end());
    point.insert(point.end(), y.begin(), y.end());
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>("P-256"), 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
    EVP_PKEY* pkey = nullptr;
    ASSERT_EQ(EVP_PKEY_fromdata_init(ctx), 1);
    ASSERT_EQ(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
    EVP_PKEY_CTX_free(ctx);
    auto spki = base::ossl::spki_of(pkey);
    EVP_PKEY_free(pkey);
    ASSERT_TRUE(spki);

    const std::string input =
        "eyJhbGciOiJFUzI1NiJ9."
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cn"
        "VlfQ";
    Bytes sig = decode(
        "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q");
    ASSERT_EQ(sig.size(), 64u);
    EXPECT_TRUE(keystore::verify_jws_signature(*spki, base::as_bytes(input), sig));
    sig[10] ^= 0x01;
    EXPECT_FALSE(keystore::verify_jws_signature(*spki, base::as_bytes(input), sig));
}

// ---------------------------------------------------------------------------------------
// jose::sign() with generated file: keys.

struct AlgCase {
    KeyAlgorithm alg;
    std::string_view jws_alg;
    std::size_t sig_size;
};

void PrintTo(const AlgCase& c, std::ostream* os) {
    *os << keystore::algorithm_name(c.alg);
}

class JwsSign : public testing::TestWithParam<AlgCase> {
  protected:
    void SetUp() override {
        ASSERT_FALSE(dir_.path().empty());
        store_ = keystore::make_file_keystore();
        auto key = store_->generate(file_uri(dir_.path() / "key.pem"), GetParam().alg);
        ASSERT_TRUE(key) << key.error().describe();
        key_ = *key;
    }

    // The JWS as the server parses it: exactly protected, payload and signature, with a
    // signature that verifies over protected.payload.
    json sign_and_check(const jose::Header& header, const std::string& payload) {
        auto text = jose::sign(*key_, header, payload);
        EXPECT_TRUE(text) << text.error().describe();
        if (!text) return {};
        const json jws = json::parse(*text);
        EXPECT_TRUE(jws.is_object());
        EXPECT_EQ(jws.size(), 3u) << *text;
        const std::string p = jws.at("protected");
        const std::string pl = jws.at("payload");
        const std::string s = jws.at("signature");
        EXPECT_TRUE(base::base64url_decode(p)) << p;
        EXPECT_TRUE(base::base64url_decode(pl)) << pl;
        const Bytes sig = decode(s);
        EXPECT_EQ(sig.size(), GetParam().sig_size);
        EXPECT_EQ(decode_text(pl), payload);
        EXPECT_TRUE(keystore::verify_jws_signature(key_->public_key_der(),
                                                   base::as_bytes(p + "." + pl), sig));
        // and not over anything else
        EXPECT_FALSE(keystore::verify_jws_signature(key_->public_key_der(),
                                                    base::as_bytes(p + "." + pl + "x"), sig));
        return jws;
    }

    TempDir dir_;
    std::unique_ptr<keystore::Keystore> store_;
    keystore::KeyPtr key_;
};

TEST_P(JwsSign, ProtectedHeaderWithJwkWhenNoKid) {
    const jose::Header header{"https://ca.example/acme/new-account", "nonce-abc_123", std::nullopt};
    const json jws = sign_and_check(header, R"({"termsOfServiceAgreed":true})");
    ASSERT_TRUE(jws.is_object());
    const std::string protected_text = decode_text(jws.at("protected").get<std::string>());
    auto jwk = keystore::jwk_json(key_->public_key_der());
    ASSERT_TRUE(jwk);
    // Exactly these members: alg, jwk (the key's RFC 7638 form), nonce, url.
    EXPECT_EQ(protected_text,
              R"({"alg":")" + std::string(GetParam().jws_alg) + R"(","jwk":)" + *jwk +
                  R"(,"nonce":"nonce-abc_123","url":"https://ca.example/acme/new-account"})");
    const json prot = json::parse(protected_text);
    EXPECT_FALSE(prot.contains("kid"));
    EXPECT_EQ(prot.at("jwk"), json::parse(*jwk));
}

TEST_P(JwsSign, ProtectedHeaderWithKidHasNoJwk) {
    const jose::Header header{"https://ca.example/acme/order/1", "n2",
                              "https://ca.example/acme/acct/42"};
    const json jws =
        sign_and_check(header, R"({"identifiers":[{"type":"dns","value":"a.example"}]})");
    ASSERT_TRUE(jws.is_object());
    const json prot = json::parse(decode_text(jws.at("protected").get<std::string>()));
    EXPECT_EQ(prot, (json{{"alg", std::string(GetParam().jws_alg)},
                          {"kid", "https://ca.example/acme/acct/42"},
                          {"nonce", "n2"},
                          {"url", "https://ca.example/acme/order/1"}}));
    EXPECT_FALSE(prot.contains("jwk"));
}

TEST_P(JwsSign, PostAsGetHasEmptyPayload) {
    const jose::Header header{"https://ca.example/acme/authz/7", "n3",
                              "https://ca.example/acme/acct/42"};
    const json jws = sign_and_check(header, "");
    ASSERT_TRUE(jws.is_object());
    EXPECT_EQ(jws.at("payload"), "");  // not "e30" ({}), not absent (RFC 8555 §6.3)
}

TEST_P(JwsSign, NoNonceMeansNoNonceMember) {
    // The inner JWS of a key change (RFC 8555 §7.3.5) has no nonce.
    const jose::Header header{"https://ca.example/acme/key-change", std::nullopt, std::nullopt};
    const json jws = sign_and_check(header, R"({"account":"x"})");
    ASSERT_TRUE(jws.is_object());
    const json prot = json::parse(decode_text(jws.at("protected").get<std::string>()));
    EXPECT_FALSE(prot.contains("nonce"));
    EXPECT_EQ(prot.at("url"), "https://ca.example/acme/key-change");
    EXPECT_EQ(prot.at("alg"), std::string(GetParam().jws_alg));
}

TEST_P(JwsSign, UrlAndNonceAreSentExactlyAsGiven) {
    const std::string url = "https://ca.example:14000/acme/chall/a%2Fb?x=1&y=\"q\"";
    const std::string nonce = "ABC-def_123.~";
    const jose::Header header{url, nonce, "https://ca.example/acme/acct/1"};
    const json jws = sign_and_check(header, "{}");
    ASSERT_TRUE(jws.is_object());
    const json prot = json::parse(decode_text(jws.at("protected").get<std::string>()));
    EXPECT_EQ(prot.at("url"), url);
    EXPECT_EQ(prot.at("nonce"), nonce);
}

TEST_P(JwsSign, SignaturesOfTheSameInputAllVerify) {
    const jose::Header header{"https://ca.example/acme/new-order", "n",
                              "https://ca.example/acme/acct/1"};
    for (int i = 0; i < 20; ++i) sign_and_check(header, "{\"i\":" + std::to_string(i) + "}");
}

INSTANTIATE_TEST_SUITE_P(Algorithms, JwsSign,
                         testing::Values(AlgCase{KeyAlgorithm::ec_p256, "ES256", 64},
                                         AlgCase{KeyAlgorithm::ec_p384, "ES384", 96},
                                         AlgCase{KeyAlgorithm::rsa_2048, "RS256", 256}),
                         [](const testing::TestParamInfo<AlgCase>& param_info) {
                             return std::string(
                                 keystore::algorithm_name(param_info.param.alg) == "ec-p256"
                                     ? "EcP256"
                                 : keystore::algorithm_name(param_info.param.alg) == "ec-p384"
                                     ? "EcP384"
                                     : "Rsa2048");
                         });

}  // namespace
