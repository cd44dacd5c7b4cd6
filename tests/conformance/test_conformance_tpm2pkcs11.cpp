// The conformance suite on a second PKCS#11 implementation: tpm2-pkcs11 (keys inside a
// TPM, reached through Cryptoki) on swtpm behind tpm2-abrmd, started for this process by
// scripts/tpm2-pkcs11-setup.sh. The same pkcs11 backend as SoftHSM's, so every difference
// between the two tokens that the agent has to handle shows here (docs/hsm.md's
// compatibility table).
#include "conformance/pkcs11_token.h"
#include "conformance/suite.h"

#include "pkcs11/pkcs11_keystore.h"
#include "support/process.h"
#include "support/temp_dir.h"

#include <filesystem>
#include <map>

namespace conformance {
namespace {

using keystore::KeyAlgorithm;

struct Tpm2Pkcs11Backend : Pkcs11Token<Tpm2Pkcs11Backend> {
    static inline std::string dir;
    static void set_up() {
        if (ks) return;
        if (token_uri.empty()) {
            dir = testsupport::scratch_dir("tpm2-pkcs11");
            auto o = testsupport::run(
                {std::string(ACME_AGENT_SOURCE_DIR) + "/scripts/tpm2-pkcs11-setup.sh", dir, "tpm"});
            ASSERT_EQ(o.code, 0) << o.err;
            testsupport::apply_exports(o.out);
            const char* uri = std::getenv("ACME_AGENT_TPM2_PKCS11_TOKEN_URI");
            ASSERT_NE(uri, nullptr) << "tpm2-pkcs11-setup.sh set no token URI: " << o.out;
            token_uri = uri;
            // The guard every TPM test has: the token's TPM is the swtpm the script started
            // behind its own abrmd (and expected_properties() wants the simulator's maker).
            const char* tcti = std::getenv("TPM2_PKCS11_TCTI");
            ASSERT_TRUE(tcti && std::string(tcti) == "tabrmd:bus_type=session");
        }
        ks = pkcs11::make_keystore();
    }
    static void tear_down() {
        ks.reset();
        if (!dir.empty())
            testsupport::run(
                {std::string(ACME_AGENT_SOURCE_DIR) + "/scripts/tpm2-pkcs11-down.sh", dir});
        token_uri.clear();
    }
    // swtpm makes RSA up to 3072 bits.
    static std::vector<KeyAlgorithm> algorithms() {
        return {KeyAlgorithm::ec_p256, KeyAlgorithm::ec_p384, KeyAlgorithm::rsa_2048,
                KeyAlgorithm::rsa_3072};
    }
    static std::map<std::string, std::string> expected_properties() {
        return {{"sensitive", "true"},    {"always-sensitive", "true"},
                {"extractable", "false"}, {"never-extractable", "true"},
                {"token-object", "true"}, {"private", "true"},
                {"usage", "sign"},        {"private-value-readable", "false"},
                {"manufacturer", "IBM"}};
    }
    static constexpr bool hardware = true;
};

using Backends = ::testing::Types<Tpm2Pkcs11Backend>;
INSTANTIATE_TYPED_TEST_SUITE_P(Tpm2Pkcs11, KeystoreConformance, Backends);

}  // namespace
}  // namespace conformance
