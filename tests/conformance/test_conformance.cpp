// The conformance suite on the file: backend and on pkcs11: over a fresh SoftHSM token,
// plus what only PKCS#11 can show: the attributes read back with C_GetAttributeValue.
#include "conformance/pkcs11_token.h"
#include "conformance/suite.h"

#include "keystore/ecdsa.h"
#include "keystore/file_backend.h"
#include "keystore/mac.h"
#include "pkcs11/module.h"
#include "pkcs11/pkcs11_keystore.h"
#include "support/process.h"
#include "support/temp_dir.h"

#include <filesystem>
#include <map>

namespace conformance {
namespace {

using keystore::KeyAlgorithm;

using testsupport::scratch_dir;

const std::vector<KeyAlgorithm> kAll{KeyAlgorithm::ec_p256, KeyAlgorithm::ec_p384,
                                     KeyAlgorithm::rsa_2048, KeyAlgorithm::rsa_3072,
                                     KeyAlgorithm::rsa_4096};

struct FileBackend {
    static inline std::string dir;
    static inline std::unique_ptr<keystore::Keystore> ks;
    static void set_up() {
        if (ks) return;
        dir = scratch_dir("file-keys");
        ks = keystore::make_file_keystore();
    }
    static keystore::Keystore& store() { return *ks; }
    static keystore::KeyUri uri(const std::string& name) {
        return *keystore::KeyUri::parse("file:" + dir + "/" + name + ".pem");
    }
    static keystore::KeyUri container() { return *keystore::KeyUri::parse("file:" + dir); }
    static std::vector<KeyAlgorithm> algorithms() { return kAll; }
    static std::map<std::string, std::string> expected_properties() {
        return {{"backend", "file (software key, not hardware)"},
                {"extractable", "true"},
                {"sensitive", "false"}};
    }
    static void tear_down() {}
    static constexpr bool hardware = false;
};

struct SoftHsmBackend : Pkcs11Token<SoftHsmBackend> {
    static void set_up() {
        if (ks) return;
        if (token_uri.empty()) {
            const std::string dir = scratch_dir("softhsm");
            auto o =
                testsupport::run({std::string(ACME_AGENT_SOURCE_DIR) + "/scripts/softhsm-setup.sh",
                                  dir, "conformance"});
            ASSERT_EQ(o.code, 0) << o.err;
            testsupport::apply_exports(o.out);
            token_uri = std::getenv("ACME_AGENT_TOKEN_URI");
        }
        ks = pkcs11::make_keystore();
    }
    // Close sessions and finalize the module while SoftHSM is still alive (not at exit).
    static void tear_down() { ks.reset(); }
    static std::vector<KeyAlgorithm> algorithms() { return kAll; }
    static std::map<std::string, std::string> expected_properties() {
        return {{"sensitive", "true"},    {"always-sensitive", "true"},
                {"extractable", "false"}, {"never-extractable", "true"},
                {"token-object", "true"}, {"private", "true"},
                {"usage", "sign"},        {"private-value-readable", "false"}};
    }
    static constexpr bool hardware = true;
};

using Backends = ::testing::Types<FileBackend, SoftHsmBackend>;
INSTANTIATE_TYPED_TEST_SUITE_P(All, KeystoreConformance, Backends);

// ---- PKCS#11 only: what the token itself says, through its own API -------------------

class SoftHsmAttributes : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { SoftHsmBackend::set_up(); }
    static void TearDownTestSuite() { SoftHsmBackend::tear_down(); }
};

TEST_F(SoftHsmAttributes, GeneratedKeysAreSensitiveNeverExtractableSignOnly) {
    for (auto alg : {KeyAlgorithm::ec_p256, KeyAlgorithm::rsa_2048}) {
        auto key = SoftHsmBackend::store().generate(SoftHsmBackend::uri(unique_name("attrs")), alg);
        ASSERT_TRUE(key.has_value()) << key.error().describe();
        auto module = pkcs11::Module::get(std::getenv("ACME_AGENT_PKCS11_MODULE"));
        ASSERT_TRUE(module.has_value());
        CK_FUNCTION_LIST* fn = (*module)->fn();
        CK_ULONG n = 0;
        ASSERT_EQ(fn->C_GetSlotList(CK_TRUE, nullptr, &n), CKR_OK);
        std::vector<CK_SLOT_ID> slots(n);
        ASSERT_EQ(fn->C_GetSlotList(CK_TRUE, slots.data(), &n), CKR_OK);
        CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
        ASSERT_EQ(fn->C_OpenSession(slots[0], CKF_SERIAL_SESSION, nullptr, nullptr, &s), CKR_OK);
        // The backend's login is shared by every session of the process.
        const std::string id = *(*key)->uri().path_attr("id");
        CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
        CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls},
                               {CKA_ID, const_cast<char*>(id.data()), id.size()}};
        ASSERT_EQ(fn->C_FindObjectsInit(s, tmpl, 2), CKR_OK);
        CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
        CK_ULONG found = 0;
        ASSERT_EQ(fn->C_FindObjects(s, &h, 1, &found), CKR_OK);
        fn->C_FindObjectsFinal(s);
        ASSERT_EQ(found, 1u);

        struct Want {
            CK_ATTRIBUTE_TYPE type;
            CK_BBOOL value;
            const char* name;
        };
        const Want wants[] = {{CKA_TOKEN, CK_TRUE, "CKA_TOKEN"},
                              {CKA_PRIVATE, CK_TRUE, "CKA_PRIVATE"},
                              {CKA_SENSITIVE, CK_TRUE, "CKA_SENSITIVE"},
                              {CKA_ALWAYS_SENSITIVE, CK_TRUE, "CKA_ALWAYS_SENSITIVE"},
                              {CKA_EXTRACTABLE, CK_FALSE, "CKA_EXTRACTABLE"},
                              {CKA_NEVER_EXTRACTABLE, CK_TRUE, "CKA_NEVER_EXTRACTABLE"},
                              {CKA_SIGN, CK_TRUE, "CKA_SIGN"},
                              {CKA_DECRYPT, CK_FALSE, "CKA_DECRYPT"},
                              {CKA_UNWRAP, CK_FALSE, "CKA_UNWRAP"},
                              {CKA_DERIVE, CK_FALSE, "CKA_DERIVE"}};
        for (const auto& w : wants) {
            CK_BBOOL v = 2;
            CK_ATTRIBUTE a{w.type, &v, sizeof v};
            ASSERT_EQ(fn->C_GetAttributeValue(s, h, &a, 1), CKR_OK) << w.name;
            EXPECT_EQ(v, w.value) << w.name;
        }
        // The private value itself cannot be read.
        for (CK_ATTRIBUTE_TYPE t : {CKA_VALUE, CKA_PRIVATE_EXPONENT}) {
            unsigned char buf[1024];
            CK_ATTRIBUTE a{t, buf, sizeof buf};
            const CK_RV rv = fn->C_GetAttributeValue(s, h, &a, 1);
            EXPECT_NE(rv, CKR_OK);
            EXPECT_EQ(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
        }
        fn->C_CloseSession(s);
    }
}

TEST_F(SoftHsmAttributes, ConcurrentSigningFromSeveralThreads) {
    auto key = SoftHsmBackend::store().generate(SoftHsmBackend::uri(unique_name("threads")),
                                                KeyAlgorithm::ec_p256);
    ASSERT_TRUE(key.has_value());
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    threads.reserve(4);
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 500; ++i) {
                const std::string msg = std::to_string(t) + ":" + std::to_string(i);
                auto sig = (*key)->sign(base::as_bytes(msg));
                if (!sig || !keystore::verify_jws_signature((*key)->public_key_der(),
                                                            base::as_bytes(msg), *sig))
                    ++bad;
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(bad.load(), 0);
}

// A new key never shadows an object of another class on the token: generate and
// import_hmac share one refusal, which names what is there and what to do instead.
TEST_F(SoftHsmAttributes, NewKeysAndSecretsNeverShadowAnObjectOfAnotherClass) {
    auto* macs = dynamic_cast<keystore::MacKeystore*>(&SoftHsmBackend::store());
    ASSERT_NE(macs, nullptr);
    const std::string name = unique_name("shadow");
    auto key = SoftHsmBackend::store().generate(SoftHsmBackend::uri(name), KeyAlgorithm::ec_p256);
    ASSERT_TRUE(key.has_value()) << key.error().describe();
    auto mac = macs->import_hmac(SoftHsmBackend::uri(name), base::Secret(std::string(32, 'k')));
    ASSERT_FALSE(mac.has_value());
    EXPECT_EQ(mac.error().code, base::Errc::exists);
    EXPECT_NE(mac.error().message.find("already holds an object with object=" + name +
                                       "; choose another object= label or delete it"),
              std::string::npos)
        << mac.error().message;

    const std::string secret = unique_name("shadow-secret");
    auto stored =
        macs->import_hmac(SoftHsmBackend::uri(secret), base::Secret(std::string(32, 'k')));
    ASSERT_TRUE(stored.has_value()) << stored.error().describe();
    auto over =
        SoftHsmBackend::store().generate(SoftHsmBackend::uri(secret), KeyAlgorithm::ec_p256);
    ASSERT_FALSE(over.has_value());
    EXPECT_EQ(over.error().code, base::Errc::exists);
    EXPECT_NE(over.error().message.find("already holds an object with object=" + secret),
              std::string::npos)
        << over.error().message;
    // The key that was there is untouched and still signs.
    auto reopened = SoftHsmBackend::store().open(SoftHsmBackend::uri(name));
    ASSERT_TRUE(reopened.has_value()) << reopened.error().describe();
    EXPECT_TRUE((*reopened)->sign(base::as_bytes(std::string("still here"))).has_value());
}

}  // namespace
}  // namespace conformance
