// The storage conformance suite over the state dir, plus what only the state dir shows:
// its files, the whole-dir lock, and a dead holder's lease being free at once.
#include "conformance/storage/suite.h"

#include "store/state.h"

#include <sys/stat.h>

#include <filesystem>

namespace storage_conformance {
namespace {

// A fresh dir per test, all removed when the test process exits (a forked child leaves
// by _exit, which runs no destructor).
std::string scratch() {
    struct Made {
        std::vector<std::string> dirs;
        Made() = default;
        Made(const Made&) = delete;
        Made& operator=(const Made&) = delete;
        Made(Made&&) = delete;
        Made& operator=(Made&&) = delete;
        ~Made() {
            for (const auto& d : dirs) std::filesystem::remove_all(d);
        }
    };
    static Made made;
    const std::string dir = std::string(ACME_AGENT_BINARY_DIR) + "/test-scratch/storage-" +
                            std::to_string(::getpid()) + "-" + std::to_string(made.dirs.size());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(std::filesystem::path(dir).parent_path());
    made.dirs.push_back(dir);
    return dir;
}

struct StateDirStorage {
    static std::unique_ptr<Storage> make() {
        auto s = store::StateDir::open(scratch());
        if (!s) ADD_FAILURE() << s.error().describe();
        return s ? std::make_unique<store::StateDir>(std::move(*s)) : nullptr;
    }
    // A forked child shares the parent's open state dir (and its whole-dir lock).
    static Storage& in_child(Storage& s) { return s; }
    static std::vector<std::string> certificate_crash_points() {
        return {"store-partial", "store-swapped"};
    }
    static std::vector<std::string> lease_crash_points() { return {"lease-written"}; }
};

INSTANTIATE_TYPED_TEST_SUITE_P(StateDir, StorageConformance, StateDirStorage);

class StateDirOnly : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = scratch();
        auto s = store::StateDir::open(dir_);
        ASSERT_TRUE(s.has_value()) << s.error().describe();
        state_ = std::make_unique<store::StateDir>(std::move(*s));
    }
    std::string dir_;
    std::unique_ptr<store::StateDir> state_;
};

std::string read(const std::string& path) {
    auto r = base::read_file(path);
    return r ? *r : "<" + r.error().describe() + ">";
}

mode_t mode_of(const std::string& path) {
    struct stat st{};
    return ::lstat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

TEST_F(StateDirOnly, TheFilesAreTheOnesTheStateDirAlwaysHad) {
    const Certificate c = stamped("fmt", 1);
    ASSERT_TRUE(state_->save_certificate("*.example.com", c));
    const std::string live = dir_ + "/live/_wildcard.example.com";
    EXPECT_EQ(read(live + "/cert.pem"), c.cert_pem);
    EXPECT_EQ(read(live + "/chain.pem"), c.chain_pem);
    EXPECT_EQ(read(live + "/fullchain.pem"), c.cert_pem + c.chain_pem);
    EXPECT_EQ(read(live + "/key.uri"), c.key_uri + "\n");
    EXPECT_EQ(read(live + "/renewal.json"), c.renewal + "\n");
    EXPECT_EQ(mode_of(live), 0700U);
    EXPECT_EQ(mode_of(live + "/cert.pem"), 0644U);
    EXPECT_EQ(mode_of(live + "/key.uri"), 0600U);
    EXPECT_EQ(mode_of(live + "/renewal.json"), 0600U);
    // A directory the admin opened up keeps its mode when the record is replaced.
    ASSERT_EQ(::chmod(live.c_str(), 0750), 0);
    ASSERT_TRUE(state_->save_certificate("*.example.com", stamped("fmt", 2)));
    EXPECT_EQ(mode_of(live), 0750U);
    EXPECT_EQ(read(live + "/key.uri"), stamped("fmt", 2).key_uri + "\n");
    std::vector<std::string> entries;
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/live"))
        entries.push_back(e.path().filename());
    EXPECT_EQ(entries, std::vector<std::string>{"_wildcard.example.com"}) << "a staging dir left";

    ASSERT_TRUE(state_->save_order("www.example.com", R"({"order":"u"})"));
    EXPECT_EQ(read(dir_ + "/orders/www.example.com.json"), "{\"order\":\"u\"}\n");
    ASSERT_TRUE(state_->set_deploy_pending("www.example.com", true));
    EXPECT_EQ(read(dir_ + "/orders/www.example.com.deploy-pending"), "www.example.com\n");
}

TEST_F(StateDirOnly, ASecondAgentIsRefusedTheWholeDir) {
    auto second = store::StateDir::open(dir_);
    ASSERT_FALSE(second.has_value());
    EXPECT_EQ(second.error().code, Errc::state);
    EXPECT_NE(second.error().message.find("another acme-agent"), std::string::npos);
}

TEST_F(StateDirOnly, ADeadHoldersLeaseIsFreeAtOnceNotAtExpiry) {
    const int code = in_child([&] {
        auto l = state_->acquire_lease("www.example.com", "doomed", std::chrono::hours(1),
                                       milliseconds{0});
        if (!l) return 1;
        ::_exit(7);  // dies holding it: no release, no destructor
    });
    ASSERT_EQ(code, 7);
    auto l = state_->acquire_lease("www.example.com", "survivor", seconds{30}, milliseconds{0});
    ASSERT_TRUE(l.has_value()) << l.error().describe();
    EXPECT_EQ(l->fence, 2U);
    auto text = read(dir_ + "/leases/www.example.com.json");
    EXPECT_NE(text.find("\"survivor\""), std::string::npos) << text;
}

}  // namespace
}  // namespace storage_conformance
