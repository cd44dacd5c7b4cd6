// lifecycle/account: which account a command signs with (stored, found again, registered),
// EAB from a MAC key file, and the account operations, against the in-process fake CA
// (fake_ca.h) with file: keys and a state dir.
#include "base/bytes.h"
#include "keystore/file_backend.h"
#include "lifecycle/account.h"
#include "store/open.h"
#include "support/fake_ca.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

namespace {

using base::Errc;
using nlohmann::json;
using testsupport::FakeCa;
using testsupport::problem_reply;
using testsupport::Reply;
using testsupport::Request;

// The payload of a request's flattened JWS ({} when it has none).
json payload_of(const Request& r) {
    auto jws = json::parse(r.body, nullptr, false);
    if (!jws.is_object()) return json::object();
    auto bytes = base::base64url_decode(jws.value("payload", ""));
    if (!bytes || bytes->empty()) return json::object();
    return json::parse(std::string(bytes->begin(), bytes->end()), nullptr, false);
}

class Account : public testing::Test {
  protected:
    void SetUp() override {
        reg_.add("file", [] {
            return base::Result<std::unique_ptr<keystore::Keystore>>(
                keystore::make_file_keystore());
        });
        g_.server = ca_.directory_url();
        g_.ca_file = ca_.pki().ca_file;
        g_.state_dir = (tmp_.path() / "state").string();
        key_ = generate("account.pem");
        // The fake CA knows every key; a key is new to it only when a test says so.
        ca_.intercept = [this](const Request& r) -> std::optional<Reply> {
            if (auto ua = r.headers.find("user-agent"); ua != r.headers.end())
                user_agents_.insert(ua->second);
            const json p = payload_of(r);
            if (r.target == "/account" && p.is_object()) {
                if (p.contains("onlyReturnExisting") && unknown_)
                    return problem_reply(400, "accountDoesNotExist", "no such account");
                if (p.contains("termsOfServiceAgreed")) registered_.push_back(p);
            }
            if (r.target == "/account/1" && p.is_object() && p.value("status", "") == "deactivated")
                return testsupport::http_reply(200, json{{"status", "deactivated"}}.dump());
            return std::nullopt;
        };
    }

    std::string generate(const std::string& file) {
        const std::string uri = "file:" + (tmp_.path() / file).string();
        auto key = reg_.generate(*keystore::KeyUri::parse(uri), keystore::KeyAlgorithm::ec_p256);
        EXPECT_TRUE(key) << key.error().describe();
        return uri;
    }

    std::unique_ptr<store::Storage> storage() {
        auto s = store::open_storage(g_.state_dir, "");
        EXPECT_TRUE(s) << s.error().describe();
        return s ? std::move(*s) : nullptr;
    }

    // The account stored for the fake CA ("" when none), in `state` when it is open (the
    // state dir is locked while a Storage holds it).
    std::string stored_key(store::Storage* state = nullptr) {
        std::unique_ptr<store::Storage> own;
        if (!state) state = (own = storage()).get();
        auto a = state->account(g_.server);
        return a && *a ? (*a)->key_uri : "";
    }

    std::size_t posts_to(const std::string& path) const {
        const auto log = ca_.requests();
        return static_cast<std::size_t>(std::count(log.begin(), log.end(), "POST " + path));
    }

    FakeCa ca_;
    testsupport::TempDir tmp_{"acme-agent-test-account"};
    keystore::Registry reg_;
    lifecycle::Globals g_;
    std::string key_;
    bool unknown_ = false;
    std::vector<json> registered_;
    std::set<std::string> user_agents_;
};

TEST_F(Account, WithoutAStoredAccountOrAKeyNamesAccountRegister) {
    {
        auto state = storage();
        auto r = lifecycle::have_account(g_, {}, *state);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, Errc::not_found);
        EXPECT_NE(r.error().message.find("acme-agent account register --key URI --agree-tos"),
                  std::string::npos);
        lifecycle::AccountChoice with_key;
        with_key.account_key = key_;
        EXPECT_TRUE(lifecycle::have_account(g_, with_key, *state));
    }
    auto s = lifecycle::open_session(g_, {}, reg_, true);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, Errc::not_found);
    EXPECT_TRUE(ca_.requests().empty()) << "checked before the first request";
}

TEST_F(Account, RegistersAndStoresTheAccountThenUsesTheStoredOne) {
    g_.user_agent = "acme-agent/9.9";
    auto reg = lifecycle::register_account(g_, {{}, {"ops@example.com"}, true, "", ""}, key_, reg_);
    ASSERT_TRUE(reg) << reg.error().describe();
    EXPECT_EQ(reg->account, ca_.url("/account/1"));
    EXPECT_EQ(reg->server, g_.server);
    EXPECT_EQ(reg->key, key_);
    EXPECT_EQ(stored_key(), key_);
    ASSERT_EQ(registered_.size(), 1u);
    EXPECT_EQ(registered_[0]["contact"], json::array({"mailto:ops@example.com"}));

    // The stored account is used as it is: no lookup at the CA.
    auto s = lifecycle::open_session(g_, {}, reg_, false);
    ASSERT_TRUE(s) << s.error().describe();
    EXPECT_EQ(s->account.url, ca_.url("/account/1"));
    EXPECT_EQ(posts_to("/account"), 1u);
    EXPECT_EQ(user_agents_, std::set<std::string>{"acme-agent/9.9"});
}

TEST_F(Account, FindsAnAccountAgainOrRegistersOnlyWhenAllowed) {
    lifecycle::AccountChoice a;
    a.account_key = key_;
    auto state = storage();
    auto client = lifecycle::connect(g_);
    ASSERT_TRUE(client) << client.error().describe();
    auto found = lifecycle::account_for(g_, a, reg_, *state, **client, false);
    ASSERT_TRUE(found) << found.error().describe();
    EXPECT_EQ(found->url, ca_.url("/account/1"));
    EXPECT_TRUE(registered_.empty());
    EXPECT_EQ(stored_key(state.get()), key_);

    unknown_ = true;
    a.account_key = generate("other.pem");
    auto refused = lifecycle::account_for(g_, a, reg_, *state, **client, false);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::not_found);
    EXPECT_NE(refused.error().message.find("account register"), std::string::npos);
    EXPECT_EQ(stored_key(state.get()), key_) << "nothing stored";

    a.agree_tos = true;
    auto made = lifecycle::account_for(g_, a, reg_, *state, **client, true);
    ASSERT_TRUE(made) << made.error().describe();
    EXPECT_EQ(registered_.size(), 1u);
    EXPECT_EQ(stored_key(state.get()), a.account_key);
}

TEST_F(Account, EabFromAnOwnerOnlyFileSignsTheRegistration) {
    lifecycle::AccountChoice a;
    a.eab_kid = "kid-1";
    auto half = lifecycle::eab_from(a, reg_);
    ASSERT_FALSE(half);
    EXPECT_EQ(half.error().code, Errc::usage);
    EXPECT_EQ(half.error().where, "--eab-kid");

    a.eab_hmac_key = tmp_.write("eab.key", "c2VjcmV0LWtleQ==\n", 0600).string();
    auto eab = lifecycle::eab_from(a, reg_);
    ASSERT_TRUE(eab) << eab.error().describe();
    ASSERT_TRUE(eab->has_value());
    EXPECT_EQ((*eab)->kid, "kid-1");

    a.agree_tos = true;
    ASSERT_TRUE(lifecycle::register_account(g_, a, key_, reg_));
    ASSERT_EQ(registered_.size(), 1u);
    ASSERT_TRUE(registered_[0].contains("externalAccountBinding")) << registered_[0];
    auto header = base::base64url_decode(
        registered_[0]["externalAccountBinding"]["protected"].get<std::string>());
    ASSERT_TRUE(header);
    EXPECT_EQ(json::parse(std::string(header->begin(), header->end()))["kid"], "kid-1");

    lifecycle::AccountChoice none;
    auto no_eab = lifecycle::eab_from(none, reg_);
    ASSERT_TRUE(no_eab);
    EXPECT_FALSE(no_eab->has_value());
}

TEST_F(Account, MacKeyFileMustBeOwnerOnlyAndBase64url) {
    const auto good = tmp_.write("mac.key", "c2VjcmV0LWtleQ==\n", 0600);
    auto secret = lifecycle::read_mac_key_file("file:" + good.string());
    ASSERT_TRUE(secret) << secret.error().describe();
    EXPECT_EQ(secret->reveal(), "secret-key");

    const auto shared = tmp_.write("shared.key", "c2VjcmV0LWtleQ\n", 0644);
    EXPECT_FALSE(lifecycle::read_mac_key_file(shared.string()));

    const auto bad = tmp_.write("bad.key", "not base64url!\n", 0600);
    auto r = lifecycle::read_mac_key_file(bad.string());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::usage);
    EXPECT_EQ(r.error().message, bad.string() + " does not hold a base64url MAC key");
}

TEST_F(Account, ShowUpdateDeactivateAndRollover) {
    ASSERT_TRUE(lifecycle::register_account(g_, {{}, {}, true, "", ""}, key_, reg_));

    auto shown = lifecycle::show_account(g_, {}, reg_);
    ASSERT_TRUE(shown) << shown.error().describe();
    EXPECT_EQ(shown->account, ca_.url("/account/1"));
    EXPECT_EQ(shown->info.status, "valid");
    EXPECT_EQ(shown->key, key_);

    auto no_email = lifecycle::update_account(g_, {}, reg_);
    ASSERT_FALSE(no_email);
    EXPECT_EQ(no_email.error().where, "--email");
    auto updated = lifecycle::update_account(g_, {{}, {"new@example.com"}, false, "", ""}, reg_);
    ASSERT_TRUE(updated) << updated.error().describe();
    EXPECT_EQ(updated->contact, std::vector<std::string>{"new@example.com"});

    // Not confirmed: nothing is sent.
    const std::size_t before = posts_to("/account/1");
    std::string asked;
    auto refused = lifecycle::deactivate_account(g_, {}, reg_, [&](const std::string& url) {
        asked = url;
        return base::fail(Errc::usage, "account deactivate", "not confirmed");
    });
    ASSERT_FALSE(refused);
    EXPECT_EQ(asked, ca_.url("/account/1"));
    EXPECT_EQ(posts_to("/account/1"), before);
    auto done = lifecycle::deactivate_account(
        g_, {}, reg_, [](const std::string&) { return base::Result<void>{}; });
    ASSERT_TRUE(done) << done.error().describe();
    EXPECT_EQ(posts_to("/account/1"), before + 1);

    // The current key is not a new one; nothing changes.
    auto same = lifecycle::rollover_account(g_, {}, key_, reg_);
    ASSERT_FALSE(same);
    EXPECT_EQ(same.error().where, "--new-key");
    EXPECT_EQ(stored_key(), key_);
    auto bad_uri = lifecycle::rollover_account(g_, {}, "", reg_);
    ASSERT_FALSE(bad_uri);
    EXPECT_EQ(bad_uri.error().where, "--new-key");
}

}  // namespace
