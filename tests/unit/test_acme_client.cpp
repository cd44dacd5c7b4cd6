// acme::Client against the in-process fake CA (fake_ca.h): the nonce pool, badNonce retry,
// Retry-After, and the origin checks of SECURITY.md rule 6.
#include "acme/client.h"
#include "keystore/file_backend.h"
#include "support/fake_ca.h"

#include <gtest/gtest.h>

#include <chrono>

namespace {

using base::Errc;
using testsupport::FakeCa;
using testsupport::problem_reply;
using testsupport::Reply;
using testsupport::Request;

class ClientTest : public ::testing::Test {
  protected:
    void SetUp() override {
        store_ = keystore::make_file_keystore();
        auto uri =
            keystore::KeyUri::parse("file:" + (ca.pki().dir.path() / "account.pem").string());
        ASSERT_TRUE(uri);
        auto key = store_->generate(*uri, keystore::KeyAlgorithm::ec_p256);
        ASSERT_TRUE(key) << key.error().describe();
        key_ = *key;
        options.http.ca_file = ca.pki().ca_file;
    }

    std::unique_ptr<acme::Client> connect() {
        auto c = acme::Client::connect(ca.directory_url(), options);
        EXPECT_TRUE(c) << c.error().describe();
        return c ? std::move(*c) : nullptr;
    }

    [[nodiscard]] std::string kid() const { return ca.url("/account/1"); }

    FakeCa ca;
    acme::ClientOptions options;
    std::unique_ptr<keystore::Keystore> store_;
    keystore::KeyPtr key_;
};

TEST_F(ClientTest, OneNewNonceThenEachAnswersNonce) {
    auto client = connect();
    ASSERT_TRUE(client);
    for (int i = 0; i < 3; ++i) {
        auto r = client->post_json(kid(), *key_, kid(), "");
        ASSERT_TRUE(r) << r.error().describe();
        EXPECT_EQ((*r)["status"], "valid");
    }
    // The pool is fed by every Replay-Nonce: a HEAD newNonce only for the first POST.
    EXPECT_EQ(ca.count("HEAD /nonce"), 1);
    EXPECT_EQ(ca.nonces_used(), (std::vector<std::string>{"nonce1", "nonce2", "nonce3"}));
}

TEST_F(ClientTest, AMalformedReplayNonceIsNotUsed) {
    ca.intercept = [&](const Request& r) -> std::optional<Reply> {
        if (r.method != "POST") return std::nullopt;
        return testsupport::http_reply(200, R"({"status":"valid"})",
                                       "Replay-Nonce: bad nonce/+=\r\n");
    };
    auto client = connect();
    ASSERT_TRUE(client);
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(client->post_json(kid(), *key_, kid(), ""));
    EXPECT_EQ(ca.count("HEAD /nonce"), 2);  // RFC 8555 6.5.1: base64url only
}

TEST_F(ClientTest, BadNonceIsRetriedWithTheNonceThatCameWithIt) {
    int refused = 0;
    ca.intercept = [&](const Request& r) -> std::optional<Reply> {
        if (r.method == "POST" && refused < 2) {
            ++refused;
            return problem_reply(400, "badNonce", "try again",
                                 "Replay-Nonce: " + ca.fresh_nonce() + "\r\n");
        }
        return std::nullopt;
    };
    auto client = connect();
    ASSERT_TRUE(client);
    auto r = client->post_json(kid(), *key_, kid(), "");
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(ca.count("POST /account/1"), 3);
    EXPECT_EQ(ca.count("HEAD /nonce"), 1);  // the retries took the nonces of the errors
}

TEST_F(ClientTest, BadNonceRetriesAreBounded) {
    ca.intercept = [&](const Request& r) -> std::optional<Reply> {
        if (r.method != "POST") return std::nullopt;
        return problem_reply(400, "badNonce", "never",
                             "Replay-Nonce: " + ca.fresh_nonce() + "\r\n");
    };
    options.bad_nonce_retries = 2;
    auto client = connect();
    ASSERT_TRUE(client);
    auto r = client->post_json(kid(), *key_, kid(), "");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::server);
    EXPECT_EQ(acme::problem_type(r.error()), "badNonce");
    EXPECT_NE(r.error().message.find("gave up after 3 nonces were refused"), std::string::npos)
        << r.error().message;
    EXPECT_EQ(ca.count("POST /account/1"), 3);
}

TEST_F(ClientTest, RetryAfterIsWaitedForThenTheRequestSentAgain) {
    int busy = 0;
    ca.intercept = [&](const Request& r) -> std::optional<Reply> {
        if (r.method == "POST" && busy++ == 0)
            return problem_reply(503, "serverInternal", "busy",
                                 "Retry-After: 1\r\nReplay-Nonce: " + ca.fresh_nonce() + "\r\n");
        return std::nullopt;
    };
    auto client = connect();
    ASSERT_TRUE(client);
    const auto start = std::chrono::steady_clock::now();
    auto r = client->post_json(kid(), *key_, kid(), "");
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(950));
    EXPECT_EQ(ca.count("POST /account/1"), 2);
}

TEST_F(ClientTest, ARetryAfterPastTheCapEndsTheRequestAndSaysWhen) {
    ca.intercept = [&](const Request& r) -> std::optional<Reply> {
        if (r.method != "POST") return std::nullopt;
        return problem_reply(429, "rateLimited", "slow down",
                             "Retry-After: 3600\r\nReplay-Nonce: " + ca.fresh_nonce() + "\r\n");
    };
    auto client = connect();
    ASSERT_TRUE(client);
    const auto before = std::chrono::system_clock::now();
    auto r = client->post_json(kid(), *key_, kid(), "");
    ASSERT_FALSE(r);
    EXPECT_EQ(ca.count("POST /account/1"), 1);  // not waited for in process
    ASSERT_TRUE(r.error().retry_at);
    const auto at =
        std::chrono::system_clock::time_point(std::chrono::seconds(*r.error().retry_at));
    EXPECT_GE(at, before + std::chrono::seconds(3599));
    EXPECT_NE(r.error().message.find("the CA asks to retry after"), std::string::npos);
}

TEST_F(ClientTest, RetryAfterForms) {
    using namespace std::chrono;
    const auto now = system_clock::from_time_t(1'700'000'000);  // Tue, 14 Nov 2023 22:13:20 GMT
    EXPECT_EQ(acme::parse_retry_after("120", now), milliseconds(120'000));
    EXPECT_EQ(acme::parse_retry_after("Tue, 14 Nov 2023 22:14:20 GMT", now), milliseconds(60'000));
    EXPECT_EQ(acme::parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now), milliseconds(0));
    EXPECT_EQ(acme::parse_retry_after("soon", now), std::nullopt);
    EXPECT_EQ(acme::parse_retry_after("-1", now), std::nullopt);
}

TEST_F(ClientTest, NoRequestLeavesForAnotherOrigin) {
    auto client = connect();
    ASSERT_TRUE(client);
    const auto sent = ca.requests().size();
    for (const std::string& url :
         {std::string("https://evil.example/acme/order/1"), ca.url("/order/1", "localhost"),
          "http" + ca.url("/x").substr(5), std::string("/relative")}) {
        auto r = client->post(url, *key_, kid(), "");
        ASSERT_FALSE(r) << url;
        EXPECT_EQ(r.error().code, Errc::protocol) << url;
        EXPECT_NE(r.error().message.find("outside its own origin"), std::string::npos);
        EXPECT_FALSE(client->get(url)) << url;
    }
    EXPECT_EQ(ca.requests().size(), sent);
    EXPECT_TRUE(client->same_origin(ca.url("/anything?x=1")));
    EXPECT_EQ(acme::origin_of("HTTPS://CA.Example:443/dir"), "https://ca.example");
    EXPECT_EQ(acme::origin_of("https://ca.example:8443/dir"), "https://ca.example:8443");
}

TEST_F(ClientTest, ADirectoryPointingElsewhereIsRefused) {
    ca.intercept = [&](const Request& r) -> std::optional<Reply> {
        if (r.target != "/dir") return std::nullopt;
        return testsupport::http_reply(200, nlohmann::json{{"newNonce", ca.url("/nonce")},
                                                           {"newAccount", ca.url("/account")},
                                                           {"newOrder", "https://evil.example/o"}}
                                                .dump());
    };
    auto c = acme::Client::connect(ca.directory_url(), options);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, Errc::protocol);
    EXPECT_NE(c.error().message.find("outside its own origin"), std::string::npos);
}

}  // namespace
