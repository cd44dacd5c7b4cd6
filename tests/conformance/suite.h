// The keystore conformance suite: ONE set of typed tests that every backend must pass.
// A backend fixture type B provides:
//   static void set_up(); static void tear_down();   // per test suite (start hardware, ...)
//   static keystore::Keystore& store();
//   static keystore::KeyUri uri(const std::string& name);   // a fresh key location
//   static keystore::KeyUri container();       // what list() lists (token, dir)
//   static std::map<std::string, std::string> expected_properties();
//   static std::vector<keystore::KeyAlgorithm> algorithms();
//   static constexpr bool hardware;            // keys report extractable false (file: true)
#pragma once

#include "base/ossl.h"
#include "keystore/ecdsa.h"
#include "x509/csr.h"

#include <gtest/gtest.h>
#include <openssl/x509.h>

#include <atomic>
#include <string>

namespace conformance {

inline std::string unique_name(const std::string& base) {
    static std::atomic<int> n{0};
    return base + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

template <typename B>
class KeystoreConformance : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { B::set_up(); }
    static void TearDownTestSuite() { B::tear_down(); }

    keystore::KeyPtr make(keystore::KeyAlgorithm alg, const std::string& base = "key") {
        auto key = B::store().generate(B::uri(unique_name(base)), alg);
        EXPECT_TRUE(key.has_value()) << (key ? "" : key.error().describe());
        return key ? *key : nullptr;
    }
};

TYPED_TEST_SUITE_P(KeystoreConformance);

TYPED_TEST_P(KeystoreConformance, GeneratesEveryAlgorithmAndReopensIt) {
    for (auto alg : TypeParam::algorithms()) {
        SCOPED_TRACE(std::string(keystore::algorithm_name(alg)));
        auto key = this->make(alg);
        ASSERT_TRUE(key);
        EXPECT_EQ(key->algorithm(), alg);
        auto pub = base::ossl::pkey_from_spki(key->public_key_der());
        ASSERT_TRUE(pub.has_value());
        EXPECT_EQ(EVP_PKEY_get_base_id(pub->get()),
                  keystore::is_ec(alg) ? EVP_PKEY_EC : EVP_PKEY_RSA);
        // The printed URI opens the same key again.
        auto again = keystore::KeyUri::parse(key->uri().to_string());
        ASSERT_TRUE(again.has_value());
        auto reopened = TypeParam::store().open(*again);
        ASSERT_TRUE(reopened.has_value()) << reopened.error().describe();
        EXPECT_EQ((*reopened)->public_key_der(), key->public_key_der());
        EXPECT_EQ((*reopened)->algorithm(), alg);
    }
}

TYPED_TEST_P(KeystoreConformance, TenThousandEcSignaturesAreFixedWidthAndVerify) {
    for (auto alg : {keystore::KeyAlgorithm::ec_p256, keystore::KeyAlgorithm::ec_p384}) {
        SCOPED_TRACE(std::string(keystore::algorithm_name(alg)));
        auto key = this->make(alg, "ecsig");
        ASSERT_TRUE(key);
        const std::size_t width = 2 * keystore::ec_field_size(alg);
        int bad = 0;
        for (int i = 0; i < 10'000; ++i) {
            const std::string msg = "message " + std::to_string(i);
            auto sig = key->sign(base::as_bytes(msg));
            ASSERT_TRUE(sig.has_value()) << sig.error().describe();
            if (sig->size() != width ||
                !keystore::verify_jws_signature(key->public_key_der(), base::as_bytes(msg), *sig))
                ++bad;
        }
        EXPECT_EQ(bad, 0);
    }
}

TYPED_TEST_P(KeystoreConformance, RsaSignaturesVerify) {
    auto key = this->make(keystore::KeyAlgorithm::rsa_2048, "rsasig");
    ASSERT_TRUE(key);
    for (int i = 0; i < 50; ++i) {
        const std::string msg = "rsa message " + std::to_string(i);
        auto sig = key->sign(base::as_bytes(msg));
        ASSERT_TRUE(sig.has_value()) << sig.error().describe();
        EXPECT_EQ(sig->size(), 256u);
        EXPECT_TRUE(
            keystore::verify_jws_signature(key->public_key_der(), base::as_bytes(msg), *sig));
    }
    // A signature over another message does not verify: the check above can fail.
    auto sig = key->sign(base::as_bytes("one"));
    ASSERT_TRUE(sig.has_value());
    EXPECT_FALSE(
        keystore::verify_jws_signature(key->public_key_der(), base::as_bytes("two"), *sig));
}

TYPED_TEST_P(KeystoreConformance, RefusesToGenerateOverAnExistingKey) {
    const auto uri = TypeParam::uri(unique_name("dup"));
    auto first = TypeParam::store().generate(uri, keystore::KeyAlgorithm::ec_p256);
    ASSERT_TRUE(first.has_value()) << first.error().describe();
    auto second = TypeParam::store().generate(uri, keystore::KeyAlgorithm::ec_p256);
    ASSERT_FALSE(second.has_value());
    EXPECT_EQ(second.error().code, base::Errc::exists) << second.error().describe();
    // The first key is untouched.
    auto reopened = TypeParam::store().open((*first)->uri());
    ASSERT_TRUE(reopened.has_value());
    EXPECT_EQ((*reopened)->public_key_der(), (*first)->public_key_der());
}

TYPED_TEST_P(KeystoreConformance, CsrVerifiesAndCarriesTheKeysPublicKey) {
    for (auto alg : {keystore::KeyAlgorithm::ec_p256, keystore::KeyAlgorithm::rsa_2048}) {
        auto key = this->make(alg, "csr");
        ASSERT_TRUE(key);
        auto der = x509::make_csr(*key, {"www.example.org", "192.0.2.7"});
        ASSERT_TRUE(der.has_value()) << der.error().describe();
        const unsigned char* p = der->data();
        base::ossl::X509Req req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der->size())));
        ASSERT_TRUE(req);
        auto pub = base::ossl::pkey_from_spki(key->public_key_der());
        ASSERT_TRUE(pub.has_value());
        EXPECT_EQ(X509_REQ_verify(req.get(), pub->get()), 1);
        auto in_csr = base::ossl::spki_of(X509_REQ_get0_pubkey(req.get()));
        ASSERT_TRUE(in_csr.has_value());
        EXPECT_EQ(*in_csr, key->public_key_der());
    }
}

TYPED_TEST_P(KeystoreConformance, ListsAndDestroysKeys) {
    auto key = this->make(keystore::KeyAlgorithm::ec_p256, "listed");
    ASSERT_TRUE(key);
    auto listed = TypeParam::store().list(TypeParam::container());
    ASSERT_TRUE(listed.has_value()) << listed.error().describe();
    bool found = false;
    for (auto& k : *listed) found |= k.uri.to_string() == key->uri().to_string();
    EXPECT_TRUE(found);
    ASSERT_TRUE(TypeParam::store().destroy(key->uri()).has_value());
    auto gone = TypeParam::store().open(key->uri());
    ASSERT_FALSE(gone.has_value());
    EXPECT_EQ(gone.error().code, base::Errc::not_found) << gone.error().describe();
}

// Every backend says how its keys are protected (no skip: a software backend must say it
// is one): hardware keys sensitive and sign-only, file keys extractable.
TYPED_TEST_P(KeystoreConformance, KeysReportTheirProtection) {
    auto key = this->make(keystore::KeyAlgorithm::ec_p256, "props");
    ASSERT_TRUE(key);
    auto props = key->properties();
    ASSERT_TRUE(props.has_value()) << props.error().describe();
    std::map<std::string, std::string> p;
    for (const auto& kp : *props) p[kp.name] = kp.value;
    const auto expected = TypeParam::expected_properties();
    ASSERT_FALSE(expected.empty()) << "the backend fixture expects no property";
    for (auto& [name, want] : expected) EXPECT_EQ(p[name], want) << name;
    EXPECT_EQ(p["extractable"], TypeParam::hardware ? "false" : "true");
}

REGISTER_TYPED_TEST_SUITE_P(KeystoreConformance, GeneratesEveryAlgorithmAndReopensIt,
                            TenThousandEcSignaturesAreFixedWidthAndVerify, RsaSignaturesVerify,
                            RefusesToGenerateOverAnExistingKey,
                            CsrVerifiesAndCarriesTheKeysPublicKey, ListsAndDestroysKeys,
                            KeysReportTheirProtection);

}  // namespace conformance
