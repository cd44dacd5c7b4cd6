// lifecycle/attempts: the last renewal attempt `run` records per certificate and
// `certificates` shows: what is written, and that a record is read back bounded, with only
// the fields the agent writes, and as "none" when missing or not ours.
#include "lifecycle/attempts.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <string>

namespace {

using base::Errc;
using nlohmann::json;

class Attempts : public testing::Test {
  protected:
    testsupport::TempDir tmp_{"acme-agent-test-attempts"};
    std::string state_ = (tmp_.path() / "state").string();
};

TEST_F(Attempts, NoneRecordedWithoutAStateDirOrARecord) {
    EXPECT_FALSE(lifecycle::last_attempt(state_, "www.example.com"));
    ASSERT_TRUE(lifecycle::record_attempt(state_, "other.example.com", nullptr));
    EXPECT_FALSE(lifecycle::last_attempt(state_, "www.example.com"));
}

TEST_F(Attempts, RecordsSuccessAndFailureOwnerOnly) {
    ASSERT_TRUE(lifecycle::record_attempt(state_, "www.example.com", nullptr));
    auto ok = lifecycle::last_attempt(state_, "www.example.com");
    ASSERT_TRUE(ok);
    EXPECT_TRUE((*ok)["ok"].get<bool>());
    EXPECT_FALSE(ok->contains("error"));
    EXPECT_EQ((*ok)["at"].get<std::string>().size(), 20u) << *ok;  // 2026-12-07T14:00:00Z

    struct stat st{};
    ASSERT_EQ(::stat(state_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    const std::string file = state_ + "/attempts/www.example.com.json";
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);

    const base::Error e{Errc::network, "newOrder", "connection refused", std::nullopt};
    ASSERT_TRUE(lifecycle::record_attempt(state_, "www.example.com", &e));
    auto failed = lifecycle::last_attempt(state_, "www.example.com");
    ASSERT_TRUE(failed);
    EXPECT_FALSE((*failed)["ok"].get<bool>());
    EXPECT_EQ((*failed)["error"]["where"], "newOrder");
    EXPECT_EQ((*failed)["error"]["message"], "connection refused");
}

TEST_F(Attempts, RefusesANameThatIsNotAFileName) {
    auto r = lifecycle::record_attempt(state_, "../escape", nullptr);
    ASSERT_FALSE(r);
    EXPECT_FALSE(std::filesystem::exists(tmp_.path() / "escape.json"));
}

TEST_F(Attempts, ReadsOnlyTheFieldsItWritesBounded) {
    const std::string long_message(10000, 'x');
    tmp_.write("state/attempts/a.json",
               json{{"at", "2026-12-07T14:00:00Z"},
                    {"ok", false},
                    {"extra", "not shown"},
                    {"error", {{"message", long_message}, {"code", "network"}, {"secret", "s"}}}}
                   .dump(),
               0600);
    auto a = lifecycle::last_attempt(state_, "a");
    ASSERT_TRUE(a);
    EXPECT_FALSE(a->contains("extra"));
    EXPECT_FALSE((*a)["error"].contains("secret"));
    EXPECT_EQ((*a)["error"]["code"], "network");
    EXPECT_EQ((*a)["error"]["message"].get<std::string>().size(), 4096u);
}

TEST_F(Attempts, NoneForARecordThatIsNotOne) {
    tmp_.write("state/attempts/a.json", "not json", 0600);
    tmp_.write("state/attempts/b.json", json{{"at", 1}, {"ok", true}}.dump(), 0600);
    tmp_.write("state/attempts/c.json", json{{"at", "2026-12-07T14:00:00Z"}}.dump(), 0600);
    tmp_.write("state/attempts/d.json", std::string(70 * 1024, ' '), 0600);
    for (const char* name : {"a", "b", "c", "d"})
        EXPECT_FALSE(lifecycle::last_attempt(state_, name)) << name;
}

}  // namespace
