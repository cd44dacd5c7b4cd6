// lifecycle/issue: issue, issue --batch, enroll and revoke as a library, against the
// in-process fake CA (fake_ca.h) with file: keys, a state dir and a dns-01 hook that does
// nothing (the fake CA validates a challenge when it is answered).
#include "keystore/file_backend.h"
#include "lifecycle/issue.h"
#include "store/open.h"
#include "support/fake_ca.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

namespace {

using base::Errc;
using testsupport::FakeCa;

class Issue : public testing::Test {
  protected:
    void SetUp() override {
        reg_.add("file", [] {
            return base::Result<std::unique_ptr<keystore::Keystore>>(
                keystore::make_file_keystore());
        });
        g_.server = ca_.directory_url();
        g_.ca_file = ca_.pki().ca_file;
        g_.state_dir = (tmp_.path() / "state").string();
        s_.server = g_.server;
        s_.challenge = "dns-01";
        s_.dns_hook = tmp_.script("hook", "exit 0\n").string();
        a_.account_key = key("account.pem");
        a_.agree_tos = true;
    }

    // A new file: key's URI.
    std::string key(const std::string& file) {
        const std::string uri = "file:" + (tmp_.path() / file).string();
        auto k = reg_.generate(*keystore::KeyUri::parse(uri), keystore::KeyAlgorithm::ec_p256);
        EXPECT_TRUE(k) << k.error().describe();
        return uri;
    }

    FakeCa ca_;
    testsupport::TempDir tmp_{"acme-agent-test-issue"};
    keystore::Registry reg_;
    lifecycle::Globals g_;
    lifecycle::Settings s_;
    lifecycle::AccountChoice a_;
};

TEST_F(Issue, IssuesAndRefusesToReplaceACertificateOnAnotherKeyUnlessForced) {
    const std::string k1 = key("www1.pem");
    auto r = lifecycle::issue(g_, s_, a_, k1, {"www.example", "example"}, reg_);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->name, "www.example");
    EXPECT_EQ(r->key_uri, k1);
    EXPECT_EQ(r->account, ca_.url("/account/1"));
    EXPECT_GT(r->requests, 0u);

    const std::string k2 = key("www2.pem");
    auto refused = lifecycle::issue(g_, s_, a_, k2, {"www.example"}, reg_);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::usage);
    EXPECT_NE(refused.error().message.find("holds a certificate for another key"),
              std::string::npos);
    EXPECT_EQ(ca_.count("POST /new-order"), 1);
    s_.force = true;
    EXPECT_TRUE(lifecycle::issue(g_, s_, a_, k2, {"www.example"}, reg_));

    auto no_key = lifecycle::issue(g_, s_, a_, "", {"a.example"}, reg_);
    ASSERT_FALSE(no_key);
    EXPECT_EQ(no_key.error().where, "--key");
}

TEST_F(Issue, BatchChecksEveryLineFirstThenRunsTheOrders) {
    const std::string batch = (tmp_.path() / "orders.txt").string();
    tmp_.write("orders.txt",
               key("a.pem") + " a.example\n# comment\n" + key("b.pem") + " b.example c.example\n");
    // One job: the fake CA serves one connection at a time.
    auto items = lifecycle::issue_batch(g_, s_, a_, batch, 1, reg_);
    ASSERT_TRUE(items) << items.error().describe();
    ASSERT_EQ(items->size(), 2u);
    EXPECT_EQ((*items)[0].name, "a.example");
    EXPECT_EQ((*items)[1].where, batch + ":3");
    EXPECT_EQ((*items)[1].line, 3u);
    for (const auto& i : *items) EXPECT_TRUE(i.result) << i.result.error().describe();

    tmp_.write("orders.txt", key("c.pem") + " *.example\n");
    s_.challenge = "http-01";
    auto wildcard = lifecycle::issue_batch(g_, s_, a_, batch, 1, reg_);
    ASSERT_FALSE(wildcard);
    EXPECT_EQ(wildcard.error().where, batch + ":1");
    s_.challenge = "dns-01";

    tmp_.write("orders.txt", a_.account_key + " d.example\n");
    auto same = lifecycle::issue_batch(g_, s_, a_, batch, 1, reg_);
    ASSERT_FALSE(same);
    EXPECT_NE(same.error().message.find("the certificate key is the account key"),
              std::string::npos);
    EXPECT_EQ(ca_.count("POST /new-order"), 2) << "no order for a batch with a bad line";
}

TEST_F(Issue, EnrollGeneratesKeysOnceAndThenHasNothingToDo) {
    a_.account_key = "file:" + (tmp_.path() / "new-account.pem").string();
    const std::string device = "file:" + (tmp_.path() / "device.pem").string();
    auto first = lifecycle::enroll(g_, s_, a_, device, {"dev.example"}, reg_);
    ASSERT_TRUE(first) << first.error().describe();
    ASSERT_TRUE(first->issued);
    EXPECT_TRUE(first->new_keys.account);
    EXPECT_TRUE(first->new_keys.device);
    EXPECT_EQ(first->key_uri, device);

    auto again = lifecycle::enroll(g_, s_, a_, device, {"dev.example"}, reg_);
    ASSERT_TRUE(again) << again.error().describe();
    EXPECT_FALSE(again->issued) << "valid and not due: nothing to do";
    EXPECT_EQ(again->key_uri, device);
    EXPECT_EQ(ca_.count("POST /new-order"), 1);
}

TEST_F(Issue, RevokeChecksTheCertificateReasonAndKeyBeforeAsking) {
    lifecycle::RevokeRequest req;
    req.cert_file = tmp_.write("empty.pem", "no PEM here\n").string();
    auto no_pem = lifecycle::revoke(g_, req, a_, reg_);
    ASSERT_FALSE(no_pem);
    EXPECT_EQ(no_pem.error().where, "--cert");

    const std::string k = key("r.pem");
    auto issued = lifecycle::issue(g_, s_, a_, k, {"r.example"}, reg_);
    ASSERT_TRUE(issued) << issued.error().describe();
    req.cert_file = tmp_.write("r-cert.pem", issued->r.issued.cert_pem).string();
    req.reason = "becauseISaidSo";
    auto reason = lifecycle::revoke(g_, req, a_, reg_);
    ASSERT_FALSE(reason);
    EXPECT_EQ(reason.error().where, "--reason");

    req.reason = "superseded";
    req.with_cert_key = true;
    req.key = key("other.pem");
    auto wrong = lifecycle::revoke(g_, req, a_, reg_);
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error().where, "--key");
    EXPECT_NE(wrong.error().message.find("not the key of the certificate"), std::string::npos);
}

}  // namespace
