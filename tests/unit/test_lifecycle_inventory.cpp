// lifecycle/inventory: the stored certificates as `acme-agent certificates` shows them,
// judged against the in-process fake CA (fake_ca.h, which has no ARI) or a CA that does
// not answer, with a state dir holding a leaf of the test PKI.
#include "lifecycle/attempts.h"
#include "lifecycle/inventory.h"
#include "store/open.h"
#include "support/fake_ca.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

#include <openssl/pem.h>

#include <filesystem>
#include <string>

namespace {

using base::Errc;
using nlohmann::json;
using testsupport::FakeCa;

using testsupport::pem_of;

class Inventory : public testing::Test {
  protected:
    void SetUp() override {
        g_.server = ca_.directory_url();
        g_.ca_file = ca_.pki().ca_file;
        g_.state_dir = (tmp_.path() / "state").string();
    }

    // Stores the test PKI's leaf as `name` with the renewal record `renewal`.
    void store(const std::string& name, const json& renewal, std::string pem = "") {
        if (pem.empty()) pem = pem_of(ca_.pki().leaf.get());
        auto s = store::open_storage(g_.state_dir, "");
        ASSERT_TRUE(s) << s.error().describe();
        ASSERT_TRUE((*s)->save_certificate(
            name, {pem, "", "pkcs11:token=t;object=www?pin-source=file:/etc/pin", renewal.dump()}));
    }

    FakeCa ca_;
    testsupport::TempDir tmp_{"acme-agent-test-inventory"};
    lifecycle::Globals g_;
};

TEST_F(Inventory, NoStateDirHoldsNoCertificatesAndIsNotMade) {
    auto inv = lifecycle::inventory(g_, "", false);
    ASSERT_TRUE(inv) << inv.error().describe();
    EXPECT_TRUE(inv->items.empty());
    EXPECT_EQ(inv->location, g_.state_dir);
    EXPECT_FALSE(std::filesystem::exists(g_.state_dir));
    auto one = lifecycle::inventory(g_, "www.example.com", false);
    ASSERT_FALSE(one);
    EXPECT_EQ(one.error().code, Errc::not_found);
    EXPECT_NE(one.error().message.find("no state dir " + g_.state_dir), std::string::npos);
}

TEST_F(Inventory, DescribesACertificateByTheLifetimeRuleWhenTheCaHasNoAri) {
    store("www", {{"domains", {"www.example.com", "example.com"}}});
    auto inv = lifecycle::inventory(g_, "", false);
    ASSERT_TRUE(inv) << inv.error().describe();
    ASSERT_EQ(inv->items.size(), 1u);
    EXPECT_EQ(inv->items[0].name, "www");
    ASSERT_TRUE(inv->items[0].entry) << inv->items[0].entry.error().describe();
    const lifecycle::InventoryEntry& e = *inv->items[0].entry;
    EXPECT_EQ(e.domains, (std::vector<std::string>{"www.example.com", "example.com"}));
    EXPECT_EQ(e.key_uri, "pkcs11:token=t;object=www") << "no PIN source shown";
    EXPECT_EQ(e.backend, "pkcs11");
    EXPECT_FALSE(e.serial.empty());
    EXPECT_LT(e.not_before, e.not_after);
    EXPECT_EQ(e.rule, "lifetime");
    EXPECT_TRUE(e.ca_error.empty()) << e.ca_error;
    EXPECT_EQ(e.server, g_.server);
    EXPECT_FALSE(e.last_attempt);
    EXPECT_FALSE(e.account);
}

TEST_F(Inventory, StoredRenewBeforeDaysWinsAndAnUnansweringCaIsSaid) {
    store("www", {{"renew_before_days", 30}, {"server", "https://127.0.0.1:1/directory"}});
    ASSERT_TRUE(lifecycle::record_attempt(g_.state_dir, "www", nullptr));
    auto inv = lifecycle::inventory(g_, "www", false);
    ASSERT_TRUE(inv) << inv.error().describe();
    ASSERT_EQ(inv->items.size(), 1u);
    ASSERT_TRUE(inv->items[0].entry);
    const lifecycle::InventoryEntry& e = *inv->items[0].entry;
    EXPECT_EQ(e.server, "https://127.0.0.1:1/directory") << "the CA it was issued from";
    EXPECT_EQ(e.rule, "renew_before_days");
    EXPECT_TRUE(e.due.due) << "a leaf of days is due 30 days before it ends";
    EXPECT_FALSE(e.ca_error.empty());
    ASSERT_TRUE(e.last_attempt);
    EXPECT_TRUE((*e.last_attempt)["ok"].get<bool>());

    // A given server wins over the stored one.
    auto given = lifecycle::inventory(g_, "www", true);
    ASSERT_TRUE(given && given->items[0].entry);
    EXPECT_EQ(given->items[0].entry->server, g_.server);
    EXPECT_TRUE(given->items[0].entry->ca_error.empty());
}

TEST_F(Inventory, AnUnreadableCertificateDoesNotHideTheOthers) {
    store("bad", json::object(), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    store("good", json::object());
    auto s = store::open_storage(g_.state_dir, "");
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->save_account({g_.server, ca_.url("/account/1"), "file:/k.pem"}));
    s->reset();
    auto inv = lifecycle::inventory(g_, "", false);
    ASSERT_TRUE(inv) << inv.error().describe();
    ASSERT_EQ(inv->items.size(), 2u);
    EXPECT_EQ(inv->items[0].name, "bad");
    EXPECT_FALSE(inv->items[0].entry);
    ASSERT_TRUE(inv->items[1].entry);
    EXPECT_EQ(inv->items[1].entry->account, ca_.url("/account/1"));

    auto only_bad = lifecycle::inventory(g_, "bad", false);
    EXPECT_FALSE(only_bad);
    auto missing = lifecycle::inventory(g_, "missing", false);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, Errc::not_found);
    EXPECT_EQ(missing.error().where, "missing");
}

}  // namespace
