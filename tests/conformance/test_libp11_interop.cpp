// Interoperability with libp11, the PKCS#11 layer of the OpenSSL ecosystem (the engine
// nginx loads): keys acme-agent generates on a SoftHSM token are found through libp11's
// own API with the public key acme-agent reports; libp11 verifies acme-agent's signatures,
// and acme-agent's view of the key verifies libp11's. The two never share the module in
// one moment: acme-agent's keystore is torn down (its module finalized) before libp11
// loads it, as two programs on one token would.
#include "base/ossl.h"
#include "keystore/ecdsa.h"
#include "pkcs11/pkcs11_keystore.h"
#include "support/process.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <libp11.h>
#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace {

using base::Bytes;
using keystore::KeyAlgorithm;

struct Made {
    std::string label;
    KeyAlgorithm alg;
    Bytes spki;
    std::string message;
    Bytes signature;  // JWS form
};

std::string read_all(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// A JWS-form signature as OpenSSL's EVP verify wants it (DER for ECDSA).
Bytes evp_form(KeyAlgorithm alg, const Bytes& jws) {
    if (!keystore::is_ec(alg)) return jws;
    auto der = keystore::ecdsa_raw_to_der(jws);
    return der ? *der : Bytes{};
}

TEST(Libp11Interop, KeysSignaturesAndPublicKeysAgreeBothWays) {
    const std::string dir = testsupport::scratch_dir("libp11");
    auto o = testsupport::run(
        {std::string(ACME_AGENT_SOURCE_DIR) + "/scripts/softhsm-setup.sh", dir, "interop"});
    ASSERT_EQ(o.code, 0) << o.err;
    testsupport::apply_exports(o.out);
    const char* token_uri = std::getenv("ACME_AGENT_TOKEN_URI");
    const char* module = std::getenv("ACME_AGENT_PKCS11_MODULE");
    ASSERT_TRUE(token_uri && module);
    const std::string pin = read_all(dir + "/interop.pin");
    ASSERT_FALSE(pin.empty());

    // 1. acme-agent makes the keys and signs.
    std::vector<Made> made;
    {
        auto ks = pkcs11::make_keystore();
        for (auto alg : {KeyAlgorithm::ec_p256, KeyAlgorithm::ec_p384, KeyAlgorithm::rsa_2048}) {
            Made m{std::string("interop-") + std::string(keystore::algorithm_name(alg)),
                   alg,
                   {},
                   "signed by acme-agent with " + std::string(keystore::algorithm_name(alg)),
                   {}};
            auto uri = *keystore::KeyUri::parse(token_uri);
            uri.set_path_attr("object", m.label);
            auto key = ks->generate(uri, alg);
            ASSERT_TRUE(key.has_value()) << key.error().describe();
            m.spki = (*key)->public_key_der();
            auto sig = (*key)->sign(base::as_bytes(m.message));
            ASSERT_TRUE(sig.has_value()) << sig.error().describe();
            m.signature = *sig;
            made.push_back(std::move(m));
        }
    }  // the keystore and its module are gone here

    // 2. libp11 on the same token.
    const std::unique_ptr<PKCS11_CTX, base::Deleter<PKCS11_CTX_free>> ctx(PKCS11_CTX_new());
    ASSERT_TRUE(ctx);
    ASSERT_EQ(PKCS11_CTX_load(ctx.get(), module), 0);
    PKCS11_SLOT* slots = nullptr;
    unsigned int nslots = 0;
    ASSERT_EQ(PKCS11_enumerate_slots(ctx.get(), &slots, &nslots), 0);
    PKCS11_SLOT* slot = nullptr;
    for (unsigned int i = 0; i < nslots; ++i)
        if (slots[i].token && std::string(slots[i].token->label) == "interop") slot = &slots[i];
    ASSERT_NE(slot, nullptr) << "libp11 does not see the token 'interop'";
    ASSERT_EQ(PKCS11_open_session(slot, 0), 0);
    ASSERT_EQ(PKCS11_login(slot, 0, pin.c_str()), 0);
    PKCS11_KEY* keys = nullptr;
    unsigned int nkeys = 0;
    ASSERT_EQ(PKCS11_enumerate_keys(slot->token, &keys, &nkeys), 0);

    for (const auto& m : made) {
        SCOPED_TRACE(m.label);
        PKCS11_KEY* key = nullptr;
        for (unsigned int i = 0; i < nkeys; ++i)
            if (keys[i].label && m.label == keys[i].label) key = &keys[i];
        ASSERT_NE(key, nullptr) << "libp11 finds no private key labelled " << m.label;

        // The public key libp11 reads is the one acme-agent reports.
        base::ossl::PKey pub(PKCS11_get_public_key(key));
        ASSERT_TRUE(pub);
        auto spki = base::ossl::spki_of(pub.get());
        ASSERT_TRUE(spki.has_value());
        EXPECT_EQ(*spki, m.spki);

        // libp11's public key verifies acme-agent's signature (and not another message's).
        for (const std::string& msg : {m.message, m.message + "!"}) {
            const base::ossl::MdCtx v(EVP_MD_CTX_new());
            const Bytes sig = evp_form(m.alg, m.signature);
            ASSERT_EQ(
                EVP_DigestVerifyInit(v.get(), nullptr,
                                     m.alg == KeyAlgorithm::ec_p384 ? EVP_sha384() : EVP_sha256(),
                                     nullptr, pub.get()),
                1);
            const int ok =
                EVP_DigestVerify(v.get(), sig.data(), sig.size(),
                                 reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
            EXPECT_EQ(ok, msg == m.message ? 1 : 0) << msg;
        }

        // libp11 signs with the token key; acme-agent's public key verifies it.
        base::ossl::PKey priv(PKCS11_get_private_key(key));
        ASSERT_TRUE(priv);
        const std::string msg = "signed by libp11";
        const base::ossl::MdCtx s(EVP_MD_CTX_new());
        const EVP_MD* md = m.alg == KeyAlgorithm::ec_p384 ? EVP_sha384() : EVP_sha256();
        ASSERT_EQ(EVP_DigestSignInit(s.get(), nullptr, md, nullptr, priv.get()), 1);
        size_t len = 0;
        ASSERT_EQ(EVP_DigestSign(s.get(), nullptr, &len,
                                 reinterpret_cast<const unsigned char*>(msg.data()), msg.size()),
                  1);
        Bytes der(len);
        ASSERT_EQ(EVP_DigestSign(s.get(), der.data(), &len,
                                 reinterpret_cast<const unsigned char*>(msg.data()), msg.size()),
                  1);
        der.resize(len);
        Bytes jws = der;
        if (keystore::is_ec(m.alg)) {
            auto raw = keystore::ecdsa_der_to_raw(der, keystore::ec_field_size(m.alg));
            ASSERT_TRUE(raw.has_value());
            jws = *raw;
        }
        EXPECT_TRUE(keystore::verify_jws_signature(m.spki, base::as_bytes(msg), jws));
    }
    PKCS11_release_all_slots(ctx.get(), slots, nslots);
    PKCS11_CTX_unload(ctx.get());
}

}  // namespace
