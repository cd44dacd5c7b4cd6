// The typed ACME resources (resources.h) on hostile input, and each step of acme::issue
// (order.h's Certifier) against the in-process fake CA (fake_ca.h).
#include "acme/order.h"
#include "acme/resources.h"
#include "keystore/file_backend.h"
#include "keystore/jwk.h"
#include "support/fake_ca.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace {

using base::Errc;
using nlohmann::json;
using testsupport::FakeCa;
using testsupport::problem_reply;
using testsupport::Reply;
using testsupport::Request;

// Records what it was asked to publish and take down.
class RecordingSolver : public challenge::Solver {
  public:
    explicit RecordingSolver(std::string type) : type_(std::move(type)) {}
    [[nodiscard]] std::string type() const override { return type_; }
    base::Result<void> present(const std::string& identifier, const std::string& token,
                               const std::string& key_authorization) override {
        presented.push_back(identifier + " " + token + " " + key_authorization);
        return {};
    }
    void cleanup(const std::string& identifier, const std::string& token) override {
        cleaned.push_back(identifier + " " + token);
    }
    std::vector<std::string> presented, cleaned;

  private:
    std::string type_;
};

class AcmeTest : public ::testing::Test {
  protected:
    void SetUp() override {
        store_ = keystore::make_file_keystore();
        account_key_ = generate("account.pem");
        cert_key_ = generate("cert.pem");
        ASSERT_TRUE(account_key_ && cert_key_);
        acme::ClientOptions options;
        options.http.ca_file = ca.pki().ca_file;
        auto c = acme::Client::connect(ca.directory_url(), options);
        ASSERT_TRUE(c) << c.error().describe();
        client_ = std::move(*c);
    }

    keystore::KeyPtr generate(const std::string& file) {
        auto uri = keystore::KeyUri::parse("file:" + (ca.pki().dir.path() / file).string());
        EXPECT_TRUE(uri);
        auto key = store_->generate(*uri, keystore::KeyAlgorithm::ec_p256);
        EXPECT_TRUE(key) << key.error().describe();
        return key ? *key : nullptr;
    }

    acme::Certifier certifier() {
        return {*client_, *account_key_, ca.url("/account/1"),
                [this](const std::string& line) { progress.push_back(line); }};
    }

    acme::OrderRequest request(std::vector<std::string> names) {
        acme::OrderRequest r;
        r.names = std::move(names);
        r.cert_key = cert_key_.get();
        r.solver = &solver;
        r.on_order = [this](const std::string& url) -> base::Result<void> {
            recorded.push_back(url);
            return {};
        };
        return r;
    }

    [[nodiscard]] bool said(const std::string& text) const {
        return std::ranges::any_of(progress,
                                   [&](const std::string& line) { return line.contains(text); });
    }

    FakeCa ca;
    std::unique_ptr<keystore::Keystore> store_;
    keystore::KeyPtr account_key_, cert_key_;
    std::unique_ptr<acme::Client> client_;
    RecordingSolver solver{"http-01"};
    std::vector<std::string> progress, recorded;
};

// --- resources.h: every field checked -------------------------------------------------

class Resources : public AcmeTest {
  protected:
    json order() const {
        return {{"status", "pending"},
                {"identifiers", {{{"type", "dns"}, {"value", "a.example"}}}},
                {"authorizations", {ca.url("/authz/0")}},
                {"finalize", ca.url("/finalize/0")}};
    }
    json authz() const {
        return {{"identifier", {{"type", "dns"}, {"value", "a.example"}}},
                {"status", "pending"},
                {"challenges",
                 {{{"type", "http-01"},
                   {"url", ca.url("/chal/0/0")},
                   {"status", "pending"},
                   {"token", "tok_0123456789abcdef0123456789abcdef"}}}}};
    }
    // The error parsing `j` gives: Errc::protocol, its message.
    template <typename Parse>
    std::string refused(Parse parse, const json& j) {
        auto r = parse(client_->origin(), j);
        EXPECT_FALSE(r) << j.dump();
        if (r) return "";
        EXPECT_EQ(r.error().code, Errc::protocol) << r.error().describe();
        return r.error().message;
    }
};

TEST_F(Resources, AnOrderAndAnAuthorizationAsTheRfcShowsThem) {
    json o = order();
    o["status"] = "valid";
    o["certificate"] = ca.url("/cert/0");
    o["expires"] = "2026-12-31T00:00:00Z";  // fields the agent does not use are ignored
    auto parsed = acme::parse_order(client_->origin(), o);
    ASSERT_TRUE(parsed) << parsed.error().describe();
    EXPECT_EQ(parsed->status, acme::OrderStatus::valid);
    EXPECT_EQ(parsed->authorizations, std::vector<std::string>{ca.url("/authz/0")});
    EXPECT_EQ(parsed->certificate, ca.url("/cert/0"));
    EXPECT_EQ(parsed->identifiers.at(0).value, "a.example");

    json a = authz();
    a["wildcard"] = true;
    a["challenges"].push_back({{"type", "dns-account-01"},  // a type the agent does not know
                               {"url", ca.url("/chal/0/1")},
                               {"status", "pending"}});
    auto pa = acme::parse_authorization(client_->origin(), a);
    ASSERT_TRUE(pa) << pa.error().describe();
    EXPECT_EQ(pa->name(), "*.a.example");
    ASSERT_EQ(pa->challenges.size(), 2u);
    EXPECT_EQ(pa->challenges[0].type, acme::ChallengeType::http01);
    EXPECT_EQ(pa->challenges[1].type, acme::ChallengeType::other);
    EXPECT_EQ(pa->challenges[1].type_name, "dns-account-01");
    EXPECT_EQ(pa->challenge("http-01"), pa->challenges.data());
    EXPECT_EQ(pa->challenge("tls-alpn-01"), nullptr);
}

TEST_F(Resources, AnInvalidOrderIsReadForItsErrorAlone) {
    const json o{{"status", "invalid"},
                 {"error",
                  {{"type", "urn:ietf:params:acme:error:rejectedIdentifier"},
                   {"detail", std::string(5000, 'd')}}}};
    auto parsed = acme::parse_order(client_->origin(), o);
    ASSERT_TRUE(parsed) << parsed.error().describe();
    EXPECT_EQ(parsed->status, acme::OrderStatus::invalid);
    ASSERT_TRUE(parsed->error);
    EXPECT_EQ(parsed->error->detail.size(), 1024u);  // cut, not refused
}

TEST_F(Resources, HostileOrdersNameTheField) {
    auto parse = [](const std::string& o, const json& j) { return acme::parse_order(o, j); };
    EXPECT_EQ(refused(parse, json::array()), "the server's order is not a JSON object");
    json o = order();
    o["status"] = "done";
    EXPECT_EQ(refused(parse, o), "the server's order has an unknown status 'done'");
    o = order();
    o["status"] = 1;
    EXPECT_EQ(refused(parse, o), "the server's order has a status that is not a string");
    o = order();
    o["status"] = "ready";
    o.erase("finalize");
    EXPECT_EQ(refused(parse, o), "the server's order has no finalize");
    o = order();
    o.erase("authorizations");
    EXPECT_EQ(refused(parse, o), "the server's order has no authorizations");
    o = order();
    o["finalize"] = "https://evil.example/finalize";
    EXPECT_NE(refused(parse, o).find("outside its own origin"), std::string::npos);
    o = order();
    o["authorizations"] = {42};
    EXPECT_EQ(refused(parse, o), "the server's order has a malformed authorization URL");
    o = order();
    o["authorizations"] = {"https://evil.example/authz"};
    EXPECT_NE(refused(parse, o).find("outside its own origin"), std::string::npos);
    o = order();
    o["authorizations"] = json::array();
    for (int i = 0; i < 101; ++i) o["authorizations"].push_back(ca.url("/authz/0"));
    EXPECT_EQ(refused(parse, o), "the server's order has more than 100 authorizations");
    o = order();
    o["status"] = "valid";  // and no certificate
    EXPECT_EQ(refused(parse, o), "the server's order has no certificate");
    o = order();
    o["finalize"] = ca.url("/" + std::string(3000, 'f'));
    EXPECT_EQ(refused(parse, o), "the server's order has a finalize longer than 2048 bytes");
    o = order();
    o["error"] = "broken";
    EXPECT_EQ(refused(parse, o), "the server's order has an error that is not a JSON object");
    o = order();
    o["identifiers"][0]["value"] = std::string(300, 'a');
    EXPECT_EQ(refused(parse, o), "the server's order identifier has a value longer than 255 bytes");
}

TEST_F(Resources, HostileAuthorizationsNameTheField) {
    auto parse = [](const std::string& o, const json& j) {
        return acme::parse_authorization(o, j);
    };
    json a = authz();
    a.erase("identifier");
    EXPECT_EQ(refused(parse, a), "the server's authorization has no identifier");
    a = authz();
    a["identifier"] = "a.example";
    EXPECT_EQ(refused(parse, a), "the server's authorization identifier is not a JSON object");
    a = authz();
    a["wildcard"] = "yes";
    EXPECT_EQ(refused(parse, a),
              "the server's authorization has a wildcard that is not true/false");
    a = authz();
    a["challenges"] = json::object();
    EXPECT_EQ(refused(parse, a), "the server's authorization has a challenges that is not a list");
    a = authz();
    a["challenges"][0]["token"] = "../../etc/passwd";
    EXPECT_EQ(refused(parse, a), "the server's challenge has a malformed token");
    a = authz();
    a["challenges"][0].erase("token");
    EXPECT_EQ(refused(parse, a), "the server's challenge has no token");
    a = authz();
    a["challenges"][0]["url"] = "https://evil.example/chal";
    EXPECT_NE(refused(parse, a).find("outside its own origin"), std::string::npos);
    a = authz();
    a["challenges"][0]["url"] = "";  // found by fuzz_acme_resources
    EXPECT_EQ(refused(parse, a), "the server's challenge has an empty url");
    a = authz();
    a["status"] = "pending\u001b[2J";
    EXPECT_EQ(refused(parse, a),
              "the server's authorization has an unknown status 'pending\\x1b[2J'");
}

// --- the steps ------------------------------------------------------------------------

TEST_F(AcmeTest, PlaceOrderCreatesAndRecordsTheOrder) {
    auto steps = certifier();
    auto placed = steps.place_order(request({"A.example", "b.example"}));
    ASSERT_TRUE(placed) << placed.error().describe();
    EXPECT_EQ(placed->url, ca.url("/order/0"));
    EXPECT_EQ(placed->order.status, acme::OrderStatus::pending);
    EXPECT_EQ(placed->order.authorizations.size(), 2u);
    EXPECT_EQ(recorded, std::vector<std::string>{ca.url("/order/0")});
    EXPECT_EQ(ca.order(0).identifiers[0]["value"], "a.example");  // sent in lower case
    EXPECT_TRUE(said("order: " + ca.url("/order/0") + " (pending)"));
}

TEST_F(AcmeTest, PlaceOrderResumesAUsableOrderAndReplacesAGoneOne) {
    const std::string url = ca.make_order({"a.example"});
    auto r = request({"a.example"});
    r.resume_url = url;
    auto steps = certifier();
    auto placed = steps.place_order(r);
    ASSERT_TRUE(placed) << placed.error().describe();
    EXPECT_EQ(placed->url, url);
    EXPECT_EQ(ca.count("POST /new-order"), 0);
    EXPECT_TRUE(said("order: resuming " + url + " (pending)"));

    // An order the CA gave up on is ordered afresh.
    ca.failing.insert("a.example");
    auto solved = steps.solve_authorizations(*placed, r.names, solver);
    ASSERT_FALSE(solved);
    ASSERT_EQ(ca.order(0).status, "invalid");
    auto again = steps.place_order(r);
    ASSERT_TRUE(again) << again.error().describe();
    EXPECT_EQ(again->url, ca.url("/order/1"));
    EXPECT_EQ(ca.count("POST /new-order"), 1);
}

TEST_F(AcmeTest, PlaceOrderOrdersAgainWithoutReplacesWhenAlreadyReplaced) {
    ca.intercept = [&](const Request& req) -> std::optional<Reply> {
        if (req.target == "/new-order" && ca.count("POST /new-order") == 1)
            return problem_reply(409, "alreadyReplaced", "has a successor",
                                 "Replay-Nonce: " + ca.fresh_nonce() + "\r\n");
        return std::nullopt;
    };
    auto r = request({"a.example"});
    r.replaces = "aki.serial";
    auto placed = certifier().place_order(r);
    ASSERT_TRUE(placed) << placed.error().describe();
    EXPECT_EQ(ca.count("POST /new-order"), 2);
    EXPECT_TRUE(said("already replaced; ordering without 'replaces'"));
}

TEST_F(AcmeTest, PlaceOrderFindsTheOrderATimedOutNewOrderCreated) {
    std::string created;
    ca.intercept = [&](const Request& req) -> std::optional<Reply> {
        if (req.target != "/new-order") return std::nullopt;
        created = ca.make_order({"a.example"});
        return Reply{"", false, true};  // the CA created it, the answer never comes
    };
    client_.reset();  // the test server serves one connection at a time
    acme::ClientOptions options;
    options.http.ca_file = ca.pki().ca_file;
    options.http.total_timeout = std::chrono::milliseconds(500);
    auto slow = acme::Client::connect(ca.directory_url(), options);
    ASSERT_TRUE(slow) << slow.error().describe();
    acme::Certifier steps(**slow, *account_key_, ca.url("/account/1"),
                          [this](const std::string& line) { progress.push_back(line); });
    auto placed = steps.place_order(request({"a.example"}));
    ASSERT_TRUE(placed) << placed.error().describe();
    EXPECT_EQ(placed->url, created);
    EXPECT_EQ(ca.count("POST /new-order"), 1);  // not sent twice
    EXPECT_EQ(recorded, std::vector<std::string>{created});
    EXPECT_TRUE(said("order: newOrder timed out; found the order it created"));
}

TEST_F(AcmeTest, PlaceOrderRefusesForeignUrlsBeforeRecordingAnything) {
    ca.tamper = [&](const std::string& path, json& j) {
        if (path == "/new-order") j["authorizations"] = {"https://evil.example/authz/0"};
    };
    auto placed = certifier().place_order(request({"a.example"}));
    ASSERT_FALSE(placed);
    EXPECT_EQ(placed.error().code, Errc::protocol);
    EXPECT_NE(placed.error().message.find("outside its own origin"), std::string::npos);
    EXPECT_TRUE(recorded.empty());
}

TEST_F(AcmeTest, SolvePresentsAnswersAndTakesDownEveryChallenge) {
    ca.valid_already.insert("c.example");
    auto r = request({"a.example", "*.b.example", "c.example"});
    auto steps = certifier();
    auto placed = steps.place_order(r);
    ASSERT_TRUE(placed) << placed.error().describe();
    auto solved = steps.solve_authorizations(*placed, r.names, solver);
    ASSERT_TRUE(solved) << solved.error().describe();
    EXPECT_EQ(placed->order.status, acme::OrderStatus::ready);

    auto thumbprint = keystore::jwk_thumbprint(account_key_->public_key_der());
    ASSERT_TRUE(thumbprint);
    const std::string t0 = ca.authz(0).token, t1 = ca.authz(1).token;
    EXPECT_EQ(solver.presented,
              (std::vector<std::string>{"a.example " + t0 + " " + t0 + "." + *thumbprint,
                                        "b.example " + t1 + " " + t1 + "." + *thumbprint}));
    EXPECT_EQ(solver.cleaned, (std::vector<std::string>{"a.example " + t0, "b.example " + t1}));
    EXPECT_FALSE(ca.authz(2).answered);
    EXPECT_TRUE(said("authorization: c.example already valid"));
    EXPECT_TRUE(said("authorization: *.b.example valid"));
}

TEST_F(AcmeTest, SolvePublishesNothingForANameTheOrderDidNotRequest) {
    ca.tamper = [&](const std::string& path, json& j) {
        if (path == "/authz/1") j["identifier"]["value"] = "other.example";
    };
    auto r = request({"a.example", "b.example"});
    auto steps = certifier();
    auto placed = steps.place_order(r);
    ASSERT_TRUE(placed);
    auto solved = steps.solve_authorizations(*placed, r.names, solver);
    ASSERT_FALSE(solved);
    EXPECT_EQ(solved.error().code, Errc::protocol);
    EXPECT_NE(solved.error().message.find("'other.example', which this order did not request"),
              std::string::npos);
    EXPECT_TRUE(solver.presented.empty());
    EXPECT_EQ(ca.authz(0).status, "deactivated");  // given up: the order cannot go on
}

TEST_F(AcmeTest, AFailedValidationNamesTheIdentifierAndGivesUpTheRest) {
    ca.failing.insert("a.example");
    auto r = request({"a.example", "b.example"});
    auto steps = certifier();
    auto placed = steps.place_order(r);
    ASSERT_TRUE(placed);
    auto solved = steps.solve_authorizations(*placed, r.names, solver);
    ASSERT_FALSE(solved);
    EXPECT_EQ(solved.error().code, Errc::server);
    EXPECT_EQ(solved.error().where, "authorization a.example");
    EXPECT_EQ(solved.error().message,
              "status 'invalid': urn:ietf:params:acme:error:connection: could not connect");
    EXPECT_EQ(solver.cleaned.size(), 2u);
    EXPECT_EQ(ca.count("POST /authz/"), 2 + 1 + 2);  // read, a.example polled, both given up
    EXPECT_TRUE(said("authorization: deactivated " + ca.url("/authz/0")));
}

TEST_F(AcmeTest, NoChallengeOfTheSolversTypeIsAServerError) {
    ca.challenge_types = {"dns-01", "some-future-01"};
    auto r = request({"a.example"});
    auto steps = certifier();
    auto placed = steps.place_order(r);
    ASSERT_TRUE(placed);
    auto solved = steps.solve_authorizations(*placed, r.names, solver);
    ASSERT_FALSE(solved);
    EXPECT_EQ(solved.error().code, Errc::server);
    EXPECT_EQ(solved.error().message, "the CA offers no http-01 challenge for it");
}

TEST_F(AcmeTest, FinalizeWaitsForAProcessingOrder) {
    ca.processing_polls = 2;
    auto r = request({"a.example"});
    auto steps = certifier();
    auto placed = steps.place_order(r);
    ASSERT_TRUE(placed);
    ASSERT_TRUE(steps.solve_authorizations(*placed, r.names, solver));
    auto valid = steps.finalize(*placed, *cert_key_, r.names);
    ASSERT_TRUE(valid) << valid.error().describe();
    EXPECT_EQ(placed->order.status, acme::OrderStatus::valid);
    EXPECT_EQ(ca.count("POST /finalize/0"), 1);
    EXPECT_TRUE(said("finalize: CSR signed by file:"));
}

TEST_F(AcmeTest, FinalizeDoesNotSendTheCsrAgainWhenTheCaTookIt) {
    auto r = request({"a.example"});
    auto steps = certifier();
    auto placed = steps.place_order(r);
    ASSERT_TRUE(placed);
    ASSERT_TRUE(steps.solve_authorizations(*placed, r.names, solver));
    ca.finalize_errors = 1;  // takes the CSR, then answers 500
    auto valid = steps.finalize(*placed, *cert_key_, r.names);
    ASSERT_TRUE(valid) << valid.error().describe();
    EXPECT_EQ(ca.count("POST /finalize/0"), 1);
    EXPECT_TRUE(said("finalize: the CA accepted the CSR (order valid)"));
}

TEST_F(AcmeTest, FinalizeReportsAnInvalidOrderWithTheCasError) {
    auto r = request({"a.example"});
    auto steps = certifier();
    auto placed = steps.place_order(r);
    ASSERT_TRUE(placed);
    placed->order.status = acme::OrderStatus::invalid;
    placed->order.error = acme::Problem{"urn:ietf:params:acme:error:badCSR", "no", "https://x/1"};
    auto valid = steps.finalize(*placed, *cert_key_, r.names);
    ASSERT_FALSE(valid);
    EXPECT_EQ(valid.error().code, Errc::server);
    EXPECT_EQ(valid.error().message,
              "invalid: urn:ietf:params:acme:error:badCSR: no (see https://x/1)");
}

TEST_F(AcmeTest, DownloadChecksTheLeafKey) {
    auto r = request({"a.example"});
    auto steps = certifier();
    auto placed = steps.place_order(r);
    ASSERT_TRUE(placed);
    ASSERT_TRUE(steps.solve_authorizations(*placed, r.names, solver));
    ASSERT_TRUE(steps.finalize(*placed, *cert_key_, r.names));
    // Another key than the one in the CSR: refused, nothing returned.
    auto wrong = steps.download(*placed, *account_key_, "");
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error().code, Errc::protocol);
    auto issued = steps.download(*placed, *cert_key_, "");
    ASSERT_TRUE(issued) << issued.error().describe();
    EXPECT_EQ(issued->order_url, placed->url);
    EXPECT_EQ(issued->leaf.spki, cert_key_->public_key_der());
    EXPECT_NE(issued->chain_pem.find("BEGIN CERTIFICATE"), std::string::npos);
}

TEST_F(AcmeTest, IssueIsTheStepsInARow) {
    auto issued = acme::issue(*client_, *account_key_, ca.url("/account/1"),
                              request({"a.example", "b.example"}),
                              [this](const std::string& line) { progress.push_back(line); });
    ASSERT_TRUE(issued) << issued.error().describe();
    EXPECT_EQ(issued->order_url, ca.url("/order/0"));
    EXPECT_EQ(recorded, std::vector<std::string>{ca.url("/order/0")});
    ASSERT_GE(progress.size(), 6u);
    EXPECT_EQ(progress.front(), "order: " + ca.url("/order/0") + " (pending)");
    EXPECT_TRUE(progress.back().starts_with("download: certificate serial "));
    EXPECT_EQ(ca.count("POST /new-order"), 1);
    EXPECT_EQ(ca.count("POST /chal/"), 2);
    EXPECT_EQ(ca.count("POST /finalize/"), 1);
    EXPECT_EQ(ca.count("POST /cert/"), 1);
}

}  // namespace
