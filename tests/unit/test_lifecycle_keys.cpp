// lifecycle/keys: key URIs named by their option, and which stored certificates use a key
// (what `key delete` names before destroying it), with file: keys and a state dir.
#include "keystore/file_backend.h"
#include "lifecycle/keys.h"
#include "store/open.h"
#include "support/tls_server.h"

#include <gtest/gtest.h>

#include <openssl/pem.h>

#include <filesystem>
#include <string>

namespace {

using base::Errc;

using testsupport::pem_of;

TEST(Keys, ParseUriNamesTheOption) {
    auto empty = lifecycle::parse_uri("", "--new-key");
    ASSERT_FALSE(empty);
    EXPECT_EQ(empty.error().code, Errc::usage);
    EXPECT_EQ(empty.error().where, "--new-key");
    EXPECT_EQ(empty.error().message, "a key URI is required");
    auto bad = lifecycle::parse_uri("pkcs11:object=%zz", "--account-key");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().where, "--account-key");
    auto good = lifecycle::parse_uri("file:/keys/a.pem", "--key");
    ASSERT_TRUE(good);
    EXPECT_EQ(good->scheme(), "file");
}

TEST(Keys, CertificatesUsingAKey) {
    const testsupport::Pki pki;
    testsupport::TempDir tmp("acme-agent-test-keys");
    lifecycle::Globals g;
    g.state_dir = (tmp.path() / "state").string();
    // The test PKI's leaf key as a file: key, and another key.
    const std::string leaf_file = (tmp.path() / "leaf.pem").string();
    {
        FILE* f = std::fopen(leaf_file.c_str(), "w");
        ASSERT_NE(f, nullptr);
        PEM_write_PrivateKey(f, pki.leaf_key.get(), nullptr, nullptr, 0, nullptr, nullptr);
        ASSERT_EQ(std::fclose(f), 0);
        ::chmod(leaf_file.c_str(), 0600);
    }
    auto files = keystore::make_file_keystore();
    auto leaf_key = files->open(*keystore::KeyUri::parse("file:" + leaf_file));
    ASSERT_TRUE(leaf_key) << leaf_key.error().describe();
    auto other =
        files->generate(*keystore::KeyUri::parse("file:" + (tmp.path() / "o.pem").string()),
                        keystore::KeyAlgorithm::ec_p256);
    ASSERT_TRUE(other) << other.error().describe();

    auto none = lifecycle::certificates_using(g, **leaf_key);
    ASSERT_TRUE(none) << none.error().describe();
    EXPECT_TRUE(none->empty());
    EXPECT_FALSE(std::filesystem::exists(g.state_dir)) << "no state dir is made";

    {
        auto s = store::open_storage(g.state_dir, "");
        ASSERT_TRUE(s) << s.error().describe();
        const std::string pem = pem_of(pki.leaf.get());
        ASSERT_TRUE((*s)->save_certificate("www", {pem, "", "file:" + leaf_file, "{}"}));
        ASSERT_TRUE((*s)->save_certificate("api", {pem, "", "file:" + leaf_file, "{}"}));
        ASSERT_TRUE((*s)->save_certificate("ca", {pem_of(pki.ca.get()), "", "file:/x.pem", "{}"}));
    }
    auto users = lifecycle::certificates_using(g, **leaf_key);
    ASSERT_TRUE(users) << users.error().describe();
    EXPECT_EQ(*users, (std::vector<std::string>{"api", "www"}));
    auto unused = lifecycle::certificates_using(g, **other);
    ASSERT_TRUE(unused);
    EXPECT_TRUE(unused->empty());
}

}  // namespace
