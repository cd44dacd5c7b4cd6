// The storage conformance suite: ONE set of typed tests that every store::Storage passes.
// An implementation's fixture type S provides:
//   static std::unique_ptr<store::Storage> make();   // a fresh, empty store
//   static store::Storage& in_child(store::Storage& s);
//       // what a forked child uses to reach the same store (the state dir: the handle it
//       // inherited; a database: a connection of its own)
//   static std::vector<std::string> certificate_crash_points();
//       // failpoints (store/failpoint.h) inside save_certificate
//   static std::vector<std::string> lease_crash_points();   // inside acquire_lease
#pragma once

#include "store/storage.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace storage_conformance {

using base::Errc;
using std::chrono::milliseconds;
using std::chrono::seconds;
using store::Certificate;
using store::Storage;

// A record whose four parts all say who wrote it and when: a torn one is seen at once.
inline Certificate stamped(const std::string& who, int n) {
    const std::string tag = who + "#" + std::to_string(n);
    // Large enough that a write is more than one page.
    return {"-----CERT " + tag + "-----\n" + std::string(6000, 'c') + "\n",
            "-----CHAIN " + tag + "-----\n" + std::string(9000, 'h') + "\n", "pkcs11:object=" + tag,
            R"({"tag":")" + tag + R"("})"};
}

// The writer's tag when `c` is one stamped() record, else "" (a mix or garbage).
inline std::string tag_of(const Certificate& c) {
    const auto p = c.key_uri.find('=');
    if (p == std::string::npos) return "";
    const std::string tag = c.key_uri.substr(p + 1);
    const auto n = tag.find('#');
    if (n == std::string::npos) return "";
    int round = 0;
    const auto [end, ec] = std::from_chars(tag.data() + n + 1, tag.data() + tag.size(), round);
    if (ec != std::errc() || end != tag.data() + tag.size()) return "";
    const Certificate want = stamped(tag.substr(0, n), round);
    return c.cert_pem == want.cert_pem && c.chain_pem == want.chain_pem && c.renewal == want.renewal
               ? tag
               : "";
}

// Runs `body` in a forked child, which exits with what body returns (or 86 at a
// failpoint); returns the child's exit code, or -1 when it did not exit.
inline int in_child(const std::function<int()>& body, const std::string& failpoint = "") {
    const pid_t pid = ::fork();
    if (pid == 0) {
        if (!failpoint.empty()) ::setenv("ACME_AGENT_FAILPOINT", failpoint.c_str(), 1);
        ::_exit(body());
    }
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

// Counters shared with forked children (an anonymous shared mapping).
struct Shared {
    std::atomic<int> holders{0};
    std::atomic<int> overlaps{0};
    std::atomic<std::uint64_t> last_fence{0};
    std::atomic<int> fence_regressions{0};
    std::atomic<int> grants{0};
};
inline Shared* make_shared_counters() {
    void* p =
        ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : new (p) Shared;
}

template <typename S>
class StorageConformance : public ::testing::Test {
  protected:
    void SetUp() override {
        store_ = S::make();
        ASSERT_TRUE(store_);
    }
    Storage& store() { return *store_; }
    std::unique_ptr<Storage> store_;
};

TYPED_TEST_SUITE_P(StorageConformance);

TYPED_TEST_P(StorageConformance, AccountsRoundTrip) {
    Storage& s = this->store();
    const std::string a = "https://ca.example/dir", b = "https://other.example:14000/dir";
    auto none = s.account(a);
    ASSERT_TRUE(none.has_value()) << none.error().describe();
    EXPECT_FALSE(*none);
    ASSERT_TRUE(s.save_account({a, "https://ca.example/acct/1", "pkcs11:object=acct-a"}));
    ASSERT_TRUE(s.save_account({b, "https://other.example/acct/9", "file:/k/b.pem"}));
    auto got = s.account(a);
    ASSERT_TRUE(got && *got);
    EXPECT_EQ((*got)->server, a);
    EXPECT_EQ((*got)->url, "https://ca.example/acct/1");
    EXPECT_EQ((*got)->key_uri, "pkcs11:object=acct-a");
    ASSERT_TRUE(s.save_account({a, "https://ca.example/acct/2", "pkcs11:object=acct-a2"}));
    got = s.account(a);
    ASSERT_TRUE(got && *got);
    EXPECT_EQ((*got)->url, "https://ca.example/acct/2");
    EXPECT_EQ((*got)->key_uri, "pkcs11:object=acct-a2");
    ASSERT_TRUE(s.remove_account(a));
    ASSERT_TRUE(s.remove_account(a));  // removing what is gone is no error
    got = s.account(a);
    ASSERT_TRUE(got.has_value());
    EXPECT_FALSE(*got);
    got = s.account(b);
    ASSERT_TRUE(got && *got);
    EXPECT_EQ((*got)->url, "https://other.example/acct/9");
    auto servers = s.account_servers();
    ASSERT_TRUE(servers.has_value()) << servers.error().describe();
    EXPECT_EQ(*servers, std::vector<std::string>{b});
    ASSERT_TRUE(s.save_account({a, "https://ca.example/acct/3", "pkcs11:object=acct-a3"}));
    servers = s.account_servers();
    ASSERT_TRUE(servers.has_value());
    EXPECT_EQ(*servers, (std::vector<std::string>{a, b}));
}

TYPED_TEST_P(StorageConformance, CertificatesRoundTrip) {
    Storage& s = this->store();
    auto none = s.certificate("www.example.com");
    ASSERT_TRUE(none.has_value()) << none.error().describe();
    EXPECT_FALSE(*none);
    auto names = s.certificate_names();
    ASSERT_TRUE(names && names->empty());
    const Certificate one = stamped("one", 1);
    ASSERT_TRUE(s.save_certificate("www.example.com", one));
    ASSERT_TRUE(s.save_certificate("api.example.com", stamped("api", 1)));
    auto got = s.certificate("www.example.com");
    ASSERT_TRUE(got) << got.error().describe();
    ASSERT_TRUE(*got) << "absent";
    EXPECT_EQ((*got)->cert_pem, one.cert_pem);
    EXPECT_EQ((*got)->chain_pem, one.chain_pem);
    EXPECT_EQ((*got)->key_uri, one.key_uri);
    EXPECT_EQ((*got)->renewal, one.renewal);
    names = s.certificate_names();
    ASSERT_TRUE(names.has_value());
    EXPECT_EQ(*names, (std::vector<std::string>{"api.example.com", "www.example.com"}));
    // Replaced whole; an empty renewal record keeps the stored one.
    Certificate two = stamped("two", 2);
    two.renewal.clear();
    ASSERT_TRUE(s.save_certificate("www.example.com", two));
    got = s.certificate("www.example.com");
    ASSERT_TRUE(got && *got);
    EXPECT_EQ((*got)->cert_pem, two.cert_pem);
    EXPECT_EQ((*got)->chain_pem, two.chain_pem);
    EXPECT_EQ((*got)->key_uri, two.key_uri);
    EXPECT_EQ((*got)->renewal, one.renewal);
    // A wildcard's name is stored.
    ASSERT_TRUE(s.save_certificate("*.example.net", stamped("wild", 1)));
    got = s.certificate("*.example.net");
    ASSERT_TRUE(got && *got);
    EXPECT_EQ(tag_of(**got), "wild#1");
    names = s.certificate_names();
    ASSERT_TRUE(names.has_value());
    EXPECT_EQ(names->size(), 3U);
    // Read together (renew --all): what certificate() gives for each, in the order asked,
    // absent ones too, under the names as listed or as given.
    auto all = s.certificates({"www.example.com", "missing.example.com", (*names)[0],
                               "*.example.net", "www.example.com"});
    ASSERT_TRUE(all) << all.error().describe();
    ASSERT_EQ(all->size(), 5U);
    ASSERT_TRUE((*all)[0] && (*all)[2] && (*all)[3] && (*all)[4]);
    EXPECT_FALSE((*all)[1]);
    EXPECT_EQ((*all)[0]->cert_pem, two.cert_pem);
    EXPECT_EQ((*all)[0]->key_uri, two.key_uri);
    EXPECT_EQ((*all)[0]->renewal, one.renewal);
    EXPECT_EQ((*all)[2]->cert_pem, s.certificate((*names)[0])->value().cert_pem);
    EXPECT_EQ(tag_of(*(*all)[3]), "wild#1");
    EXPECT_EQ((*all)[4]->chain_pem, two.chain_pem);
    auto bad = s.certificates({"www.example.com", "../x"});
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, base::Errc::usage);
    auto empty = s.certificates({});
    ASSERT_TRUE(empty && empty->empty());
}

TYPED_TEST_P(StorageConformance, OrdersAndDeployPendingRoundTrip) {
    Storage& s = this->store();
    auto none = s.order("www.example.com");
    ASSERT_TRUE(none.has_value());
    EXPECT_FALSE(*none);
    auto in_flight = s.order_names();
    ASSERT_TRUE(in_flight && in_flight->empty());
    const std::string rec = R"({"order":"https://ca.example/order/1","key":"pkcs11:object=k"})";
    ASSERT_TRUE(s.save_order("www.example.com", rec));
    ASSERT_TRUE(s.save_order("api.example.com", rec));
    auto got = s.order("www.example.com");
    ASSERT_TRUE(got && *got);
    EXPECT_EQ(**got, rec);
    in_flight = s.order_names();
    ASSERT_TRUE(in_flight.has_value()) << in_flight.error().describe();
    EXPECT_EQ(*in_flight, (std::vector<std::string>{"api.example.com", "www.example.com"}));
    ASSERT_TRUE(s.remove_order("api.example.com"));
    ASSERT_TRUE(s.remove_order("www.example.com"));
    in_flight = s.order_names();
    ASSERT_TRUE(in_flight && in_flight->empty());
    ASSERT_TRUE(s.remove_order("www.example.com"));
    got = s.order("www.example.com");
    ASSERT_TRUE(got.has_value());
    EXPECT_FALSE(*got);

    EXPECT_FALSE(s.deploy_pending("www.example.com"));
    ASSERT_TRUE(s.set_deploy_pending("www.example.com", true));
    EXPECT_TRUE(s.deploy_pending("www.example.com"));
    EXPECT_FALSE(s.deploy_pending("api.example.com"));
    ASSERT_TRUE(s.set_deploy_pending("www.example.com", false));
    ASSERT_TRUE(s.set_deploy_pending("www.example.com", false));
    EXPECT_FALSE(s.deploy_pending("www.example.com"));
}

TYPED_TEST_P(StorageConformance, ConcurrentThreadsNeverTearOrLoseARecord) {
    Storage& s = this->store();
    constexpr int writers = 3, rounds = 6;
    std::atomic<bool> done{false};
    std::atomic<int> torn{0}, reads{0};
    std::thread reader([&] {
        while (!done) {
            auto c = s.certificate("shared.example.com");
            if (!c) {
                ++torn;
                ADD_FAILURE() << c.error().describe();
            } else if (*c && tag_of(**c).empty()) {
                ++torn;
            }
            ++reads;
        }
    });
    std::vector<std::thread> threads;
    threads.reserve(writers);
    for (int w = 0; w < writers; ++w)
        threads.emplace_back([&s, w] {
            const std::string who = "t" + std::to_string(w);
            for (int i = 0; i < rounds; ++i) {
                EXPECT_TRUE(s.save_certificate("shared.example.com", stamped(who, i)));
                EXPECT_TRUE(s.save_certificate(who + ".example.com", stamped(who, i)));
                EXPECT_TRUE(
                    s.save_order(who + ".example.com", "{\"n\":" + std::to_string(i) + "}"));
                EXPECT_TRUE(
                    s.save_account({"https://" + who + ".ca/dir", "u" + std::to_string(i), "k"}));
            }
        });
    for (auto& t : threads) t.join();
    done = true;
    reader.join();
    EXPECT_EQ(torn, 0) << "of " << reads << " reads";
    for (int w = 0; w < writers; ++w) {
        const std::string who = "t" + std::to_string(w);
        auto c = s.certificate(who + ".example.com");
        ASSERT_TRUE(c && *c);
        EXPECT_EQ(tag_of(**c), who + "#" + std::to_string(rounds - 1));
        auto o = s.order(who + ".example.com");
        ASSERT_TRUE(o && *o);
        EXPECT_EQ(**o, "{\"n\":" + std::to_string(rounds - 1) + "}");
        auto a = s.account("https://" + who + ".ca/dir");
        ASSERT_TRUE(a && *a);
        EXPECT_EQ((*a)->url, "u" + std::to_string(rounds - 1));
    }
    auto last = s.certificate("shared.example.com");
    ASSERT_TRUE(last && *last);
    EXPECT_FALSE(tag_of(**last).empty());
    auto names = s.certificate_names();
    ASSERT_TRUE(names.has_value());
    EXPECT_EQ(names->size(), static_cast<std::size_t>(writers + 1));
}

TYPED_TEST_P(StorageConformance, ConcurrentProcessesNeverTearOrLoseARecord) {
    Storage& s = this->store();
    constexpr int writers = 3, rounds = 5;
    std::vector<pid_t> pids;
    for (int w = 0; w < writers; ++w) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            Storage& mine = TypeParam::in_child(s);
            const std::string who = "p" + std::to_string(w);
            int bad = 0;
            for (int i = 0; i < rounds; ++i) {
                bad += !mine.save_certificate("shared.example.com", stamped(who, i));
                bad += !mine.save_certificate(who + ".example.com", stamped(who, i));
            }
            ::_exit(bad == 0 ? 0 : 1);
        }
        ASSERT_GT(pid, 0);
        pids.push_back(pid);
    }
    int torn = 0, reads = 0, alive = writers;
    while (alive > 0) {
        auto c = s.certificate("shared.example.com");
        ASSERT_TRUE(c.has_value()) << c.error().describe();
        if (*c && tag_of(**c).empty()) ++torn;
        ++reads;
        for (auto& pid : pids) {
            int status = 0;
            if (pid > 0 && ::waitpid(pid, &status, WNOHANG) == pid) {
                EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                pid = 0;
                --alive;
            }
        }
    }
    EXPECT_EQ(torn, 0) << "of " << reads << " reads";
    for (int w = 0; w < writers; ++w) {
        const std::string who = "p" + std::to_string(w);
        auto c = s.certificate(who + ".example.com");
        ASSERT_TRUE(c && *c);
        EXPECT_EQ(tag_of(**c), who + "#" + std::to_string(rounds - 1));
    }
}

TYPED_TEST_P(StorageConformance, CrashInACertificateWriteLeavesTheOldOrTheNewRecord) {
    Storage& s = this->store();
    int n = 0;
    for (const auto& point : TypeParam::certificate_crash_points()) {
        SCOPED_TRACE(point);
        const std::string name = "crash" + std::to_string(++n) + ".example.com";
        ASSERT_TRUE(s.save_certificate(name, stamped("old", n)));
        const int code = in_child(
            [&] {
                auto r = TypeParam::in_child(s).save_certificate(name, stamped("new", n));
                return r ? 0 : 1;
            },
            point);
        EXPECT_EQ(code, 86) << "the child did not stop at the failpoint";
        auto c = s.certificate(name);
        ASSERT_TRUE(c) << c.error().describe();
        ASSERT_TRUE(*c) << "the record is gone";
        const std::string tag = tag_of(**c);
        EXPECT_TRUE(tag == "old#" + std::to_string(n) || tag == "new#" + std::to_string(n))
            << "a mix: " << (*c)->key_uri;
        auto names = s.certificate_names();
        ASSERT_TRUE(names.has_value());
        EXPECT_EQ(names->size(), static_cast<std::size_t>(n)) << "a half-written record is listed";
        // The next write finishes over whatever the crash left.
        ASSERT_TRUE(s.save_certificate(name, stamped("after", n)));
        c = s.certificate(name);
        ASSERT_TRUE(c && *c);
        EXPECT_EQ(tag_of(**c), "after#" + std::to_string(n));
    }
    // A first write that crashed leaves no record at all.
    for (const auto& point : TypeParam::certificate_crash_points()) {
        SCOPED_TRACE(point);
        const std::string name = "first-" + point + ".example.com";
        const int code = in_child(
            [&] {
                return TypeParam::in_child(s).save_certificate(name, stamped("new", 0)) ? 0 : 1;
            },
            point);
        EXPECT_EQ(code, 86);
        auto c = s.certificate(name);
        ASSERT_TRUE(c.has_value()) << c.error().describe();
        if (*c) {
            EXPECT_EQ(tag_of(**c), "new#0");
        }
    }
}

TYPED_TEST_P(StorageConformance, ALeaseHasOneHolderAndEveryGrantAHigherFence) {
    Storage& s = this->store();
    auto a = s.acquire_lease("www.example.com", "node-a", seconds{10}, milliseconds{0});
    ASSERT_TRUE(a.has_value()) << a.error().describe();
    EXPECT_EQ(a->owner, "node-a");
    EXPECT_GT(a->expires, store::Clock::now() + seconds{5});
    EXPECT_TRUE(s.check_lease(*a));
    auto b = s.acquire_lease("www.example.com", "node-b", seconds{10}, milliseconds{0});
    ASSERT_FALSE(b.has_value());
    EXPECT_EQ(b.error().code, Errc::state);
    EXPECT_NE(b.error().describe().find("node-a"), std::string::npos) << b.error().describe();
    // Another certificate's lease is independent.
    auto other = s.acquire_lease("api.example.com", "node-b", seconds{10}, milliseconds{0});
    ASSERT_TRUE(other.has_value()) << other.error().describe();
    ASSERT_TRUE(s.release_lease(*a));
    EXPECT_FALSE(s.check_lease(*a)) << "a released lease still checks as held";
    b = s.acquire_lease("www.example.com", "node-b", seconds{10}, milliseconds{0});
    ASSERT_TRUE(b.has_value()) << b.error().describe();
    EXPECT_GT(b->fence, a->fence);
    EXPECT_TRUE(s.check_lease(*b));
    ASSERT_TRUE(s.release_lease(*a));  // a lost lease's release leaves the holder alone
    EXPECT_TRUE(s.check_lease(*b));
    ASSERT_TRUE(s.release_lease(*b));
    auto c = s.acquire_lease("www.example.com", "node-a", seconds{10}, milliseconds{0});
    ASSERT_TRUE(c.has_value());
    EXPECT_GT(c->fence, b->fence);
}

TYPED_TEST_P(StorageConformance, AWaiterGetsTheLeaseOnRelease) {
    Storage& s = this->store();
    auto a = s.acquire_lease("www.example.com", "node-a", seconds{30}, milliseconds{0});
    ASSERT_TRUE(a.has_value());
    std::atomic<bool> released{false};
    const auto start = std::chrono::steady_clock::now();
    std::thread waiter([&] {
        auto b = s.acquire_lease("www.example.com", "node-b", seconds{30}, seconds{5});
        ASSERT_TRUE(b.has_value()) << b.error().describe();
        EXPECT_TRUE(released) << "granted while node-a held it";
        EXPECT_GT(b->fence, a->fence);
        EXPECT_TRUE(s.check_lease(*b));
    });
    released = true;
    ASSERT_TRUE(s.release_lease(*a));
    waiter.join();
    EXPECT_LT(std::chrono::steady_clock::now() - start, seconds{5})
        << "the waiter waited for its bound";
}

TYPED_TEST_P(StorageConformance, AnExpiredLeaseIsTakenOverAndItsHolderLearnsIt) {
    Storage& s = this->store();
    auto a = s.acquire_lease("www.example.com", "node-a", milliseconds{200}, milliseconds{0});
    ASSERT_TRUE(a.has_value());
    // node-a stays alive and keeps its handle; its lease runs out.
    auto b = s.acquire_lease("www.example.com", "node-b", seconds{30}, seconds{10});
    ASSERT_TRUE(b.has_value()) << b.error().describe();
    EXPECT_GE(store::Clock::now(), a->expires);
    EXPECT_GT(b->fence, a->fence);
    auto lost = s.check_lease(*a);
    ASSERT_FALSE(lost.has_value());
    EXPECT_EQ(lost.error().code, Errc::state);
    auto extended = s.extend_lease(*a, seconds{30});
    ASSERT_FALSE(extended.has_value()) << "an expired lease was extended";
    EXPECT_EQ(extended.error().code, Errc::state);
    ASSERT_TRUE(s.release_lease(*a));
    EXPECT_TRUE(s.check_lease(*b));
}

TYPED_TEST_P(StorageConformance, AnExtendedLeaseIsNotTakenOver) {
    Storage& s = this->store();
    // A second for the extend to come in time on a loaded machine.
    auto a = s.acquire_lease("www.example.com", "node-a", seconds{1}, milliseconds{0});
    ASSERT_TRUE(a.has_value());
    ASSERT_TRUE(s.extend_lease(*a, seconds{30}));
    EXPECT_GT(a->expires, store::Clock::now() + seconds{20});
    // Past the first expiry, the lease is still node-a's.
    auto b = s.acquire_lease("www.example.com", "node-b", seconds{30}, milliseconds{1200});
    ASSERT_FALSE(b.has_value());
    EXPECT_EQ(b.error().code, Errc::state);
    EXPECT_TRUE(s.check_lease(*a));
}

TYPED_TEST_P(StorageConformance, ThreadsAndProcessesNeverHoldALeaseAtOnce) {
    Storage& s = this->store();
    Shared* shared = make_shared_counters();
    ASSERT_NE(shared, nullptr);
    auto work = [shared](Storage& st, const std::string& who, int rounds) {
        int bad = 0;
        for (int i = 0; i < rounds; ++i) {
            auto l = st.acquire_lease("contended.example.com", who, seconds{30}, seconds{20});
            if (!l) {
                ++bad;
                continue;
            }
            if (shared->holders.fetch_add(1) != 0) shared->overlaps.fetch_add(1);
            if (l->fence <= shared->last_fence.load()) shared->fence_regressions.fetch_add(1);
            shared->last_fence = l->fence;
            bad += !st.check_lease(*l);
            shared->grants.fetch_add(1);
            shared->holders.fetch_sub(1);
            bad += !st.release_lease(*l);
        }
        return bad;
    };
    constexpr int procs = 2, threads = 2, rounds = 10;
    std::vector<pid_t> pids;
    for (int p = 0; p < procs; ++p) {
        const pid_t pid = ::fork();
        if (pid == 0) ::_exit(work(TypeParam::in_child(s), "proc" + std::to_string(p), rounds));
        ASSERT_GT(pid, 0);
        pids.push_back(pid);
    }
    std::vector<std::thread> ts;
    ts.reserve(threads);
    std::atomic<int> bad{0};
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] { bad += work(s, "thread" + std::to_string(t), rounds); });
    for (auto& t : ts) t.join();
    for (auto pid : pids) {
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    EXPECT_EQ(bad, 0);
    EXPECT_EQ(shared->overlaps.load(), 0);
    EXPECT_EQ(shared->fence_regressions.load(), 0);
    EXPECT_EQ(shared->grants.load(), (procs + threads) * rounds);
    ::munmap(shared, sizeof(Shared));
}

TYPED_TEST_P(StorageConformance, ACrashedHoldersLeaseIsTakenOver) {
    Storage& s = this->store();
    std::vector<std::string> points = TypeParam::lease_crash_points();
    points.emplace_back("");  // the holder dies holding it
    for (const auto& point : points) {
        SCOPED_TRACE(point.empty() ? "holder died" : point);
        const std::string name = "dead-" + std::to_string(points.size()) + point + ".example.com";
        const int code = in_child(
            [&] {
                auto l = TypeParam::in_child(s).acquire_lease(name, "doomed", milliseconds{500},
                                                              milliseconds{0});
                return l ? 7 : 1;
            },
            point);
        EXPECT_EQ(code, point.empty() ? 7 : 86);
        auto l = s.acquire_lease(name, "survivor", seconds{30}, seconds{10});
        ASSERT_TRUE(l.has_value()) << l.error().describe();
        EXPECT_TRUE(s.check_lease(*l));
        EXPECT_GE(l->fence, 1U);
    }
}

TYPED_TEST_P(StorageConformance, BadNamesAreRefusedAndNothingIsStored) {
    Storage& s = this->store();
    const std::vector<std::string> bad{"",
                                       "a/b",
                                       "/etc",
                                       "..",
                                       "../x",
                                       "x/..",
                                       "a..b",
                                       "www.example.com\n",
                                       "tab\there",
                                       std::string(store::max_name_length + 1, 'a'),
                                       std::string(4096, 'b')};
    const Certificate c = stamped("bad", 1);
    for (const auto& name : bad) {
        SCOPED_TRACE(name.size() > 40 ? std::to_string(name.size()) + " characters" : name);
        auto usage = [](const auto& r) { return !r.has_value() && r.error().code == Errc::usage; };
        EXPECT_TRUE(usage(s.save_certificate(name, c)));
        EXPECT_TRUE(usage(s.certificate(name)));
        EXPECT_TRUE(usage(s.save_order(name, "{}")));
        EXPECT_TRUE(usage(s.order(name)));
        EXPECT_TRUE(usage(s.remove_order(name)));
        EXPECT_TRUE(usage(s.set_deploy_pending(name, true)));
        EXPECT_FALSE(s.deploy_pending(name));
        EXPECT_TRUE(usage(s.acquire_lease(name, "node", seconds{1}, milliseconds{0})));
    }
    auto names = s.certificate_names();
    ASSERT_TRUE(names.has_value());
    EXPECT_TRUE(names->empty());
    // The longest name, and a wildcard of it, are stored.
    const std::string longest(store::max_name_length, 'x');
    const std::string wild = "*." + std::string(store::max_name_length - 2, 'y');
    for (const auto& name : {longest, wild}) {
        ASSERT_TRUE(s.save_certificate(name, c)) << name.size();
        ASSERT_TRUE(s.save_order(name, "{}"));
        ASSERT_TRUE(s.set_deploy_pending(name, true));
        EXPECT_TRUE(s.deploy_pending(name));
        auto got = s.certificate(name);
        ASSERT_TRUE(got && *got);
        auto l = s.acquire_lease(name, "node", seconds{1}, milliseconds{0});
        ASSERT_TRUE(l.has_value()) << l.error().describe();
    }
    // Servers: none, or too long; lease terms: no owner, no time.
    auto usage = [](const auto& r) { return !r.has_value() && r.error().code == Errc::usage; };
    const std::string long_server = "https://" + std::string(store::max_server_length, 's');
    EXPECT_TRUE(usage(s.save_account({"", "u", "k"})));
    EXPECT_TRUE(usage(s.save_account({long_server, "u", "k"})));
    EXPECT_TRUE(usage(s.account(long_server)));
    EXPECT_TRUE(usage(s.remove_account(long_server)));
    EXPECT_TRUE(usage(s.acquire_lease("www.example.com", "", seconds{1}, milliseconds{0})));
    EXPECT_TRUE(
        usage(s.acquire_lease("www.example.com", "node", milliseconds{0}, milliseconds{0})));
}

REGISTER_TYPED_TEST_SUITE_P(
    StorageConformance, AccountsRoundTrip, CertificatesRoundTrip, OrdersAndDeployPendingRoundTrip,
    ConcurrentThreadsNeverTearOrLoseARecord, ConcurrentProcessesNeverTearOrLoseARecord,
    CrashInACertificateWriteLeavesTheOldOrTheNewRecord, ALeaseHasOneHolderAndEveryGrantAHigherFence,
    AWaiterGetsTheLeaseOnRelease, AnExpiredLeaseIsTakenOverAndItsHolderLearnsIt,
    AnExtendedLeaseIsNotTakenOver, ThreadsAndProcessesNeverHoldALeaseAtOnce,
    ACrashedHoldersLeaseIsTakenOver, BadNamesAreRefusedAndNothingIsStored);

}  // namespace storage_conformance
