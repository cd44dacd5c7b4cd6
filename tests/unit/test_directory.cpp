// acme::parse_directory: what Client::connect accepts as an ACME directory (RFC 8555
// §7.1.1). The fuzz target (tests/fuzz/fuzz_acme_directory.cpp) drives the same function.
#include "acme/client.h"

#include <gtest/gtest.h>

namespace {

const char* kPebble = R"({
  "keyChange": "https://127.0.0.1:14000/rollover-account-key",
  "meta": {"externalAccountRequired": false,
           "profiles": {"default": "The profile you know and love"},
           "termsOfService": "data:text/plain,Do%20what%20thou%20wilt"},
  "newAccount": "https://127.0.0.1:14000/sign-me-up",
  "newNonce": "https://127.0.0.1:14000/nonce-plz",
  "newOrder": "https://127.0.0.1:14000/order-plz",
  "renewalInfo": "https://127.0.0.1:14000/draft-ietf-acme-ari-03/renewalInfo",
  "revokeCert": "https://127.0.0.1:14000/revoke-cert"
})";

TEST(Directory, ReadsEveryEntry) {
    auto d = acme::parse_directory("https://127.0.0.1:14000/dir", kPebble);
    ASSERT_TRUE(d.has_value()) << d.error().describe();
    EXPECT_EQ(d->url, "https://127.0.0.1:14000/dir");
    EXPECT_EQ(d->new_nonce, "https://127.0.0.1:14000/nonce-plz");
    EXPECT_EQ(d->new_account, "https://127.0.0.1:14000/sign-me-up");
    EXPECT_EQ(d->new_order, "https://127.0.0.1:14000/order-plz");
    EXPECT_EQ(d->revoke_cert, "https://127.0.0.1:14000/revoke-cert");
    EXPECT_EQ(d->key_change, "https://127.0.0.1:14000/rollover-account-key");
    EXPECT_EQ(d->renewal_info, "https://127.0.0.1:14000/draft-ietf-acme-ari-03/renewalInfo");
    EXPECT_FALSE(d->new_authz.has_value());
    EXPECT_EQ(d->terms_of_service, "data:text/plain,Do%20what%20thou%20wilt");
    EXPECT_FALSE(d->eab_required);
    EXPECT_TRUE(d->profiles.contains("default"));
}

TEST(Directory, RefusesAnEntryOffTheOrigin) {
    for (const char* dir : {"https://127.0.0.1:14001/dir", "https://localhost:14000/dir"}) {
        auto d = acme::parse_directory(dir, kPebble);
        ASSERT_FALSE(d.has_value()) << dir;
        EXPECT_EQ(d.error().code, base::Errc::protocol);
        EXPECT_NE(d.error().message.find("outside its own origin"), std::string::npos)
            << d.error().message;
    }
}

TEST(Directory, DefaultPortAndCaseAreTheSameOrigin) {
    auto d = acme::parse_directory(
        "https://ACME.example/dir",
        R"({"newNonce":"https://acme.example:443/n","newAccount":"https://acme.example/a",
            "newOrder":"HTTPS://Acme.Example/o"})");
    EXPECT_TRUE(d.has_value()) << (d ? "" : d.error().describe());
}

TEST(Directory, RefusesWhatIsNoDirectory) {
    for (const char* body : {"", "[]", "null", "{", R"({"newNonce":"https://a.example/n"})",
                             R"({"newNonce":1,"newAccount":"https://a.example/a",
                                 "newOrder":"https://a.example/o"})"}) {
        auto d = acme::parse_directory("https://a.example/dir", body);
        ASSERT_FALSE(d.has_value()) << body;
        EXPECT_EQ(d.error().code, base::Errc::protocol);
        EXPECT_NE(d.error().message.find("is not an ACME directory"), std::string::npos);
    }
}

}  // namespace
