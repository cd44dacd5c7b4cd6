// The worker pool that runs several orders (issue --batch, renew --all: --jobs), and the
// name claims that keep two orders for one name from running side by side.
#include "base/bytes.h"
#include "lifecycle/parallel.h"
#include "lifecycle/solvers.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

TEST(Parallel, RunParallelTakesEachIndexOnceOnAtMostJobsThreads) {
    for (unsigned jobs : {1u, 3u, 8u}) {
        constexpr std::size_t kCount = 40;
        std::vector<std::atomic<int>> taken(kCount);
        std::atomic<int> running{0};
        std::atomic<int> peak{0};
        std::mutex m;
        std::set<std::thread::id> threads;
        lifecycle::run_parallel(
            kCount, jobs,
            [&](std::size_t i) {
                const int now = ++running;
                int p = peak.load();
                while (now > p && !peak.compare_exchange_weak(p, now)) {
                }
                {
                    std::lock_guard lock(m);
                    threads.insert(std::this_thread::get_id());
                }
                ++taken[i];
                std::this_thread::yield();
                --running;
            },
            [](std::size_t, const char* what) { FAIL() << what; });
        for (std::size_t i = 0; i < kCount; ++i) EXPECT_EQ(taken[i].load(), 1) << i;
        EXPECT_LE(peak.load(), static_cast<int>(jobs));
        EXPECT_LE(threads.size(), jobs);
        if (jobs == 1) {
            EXPECT_EQ(*threads.begin(), std::this_thread::get_id());
        }
    }
}

TEST(Parallel, AnExceptionInOneOrderDoesNotStopTheOthers) {
    std::vector<int> done(10, 0);
    std::vector<std::string> errors(10);
    lifecycle::run_parallel(
        10, 4,
        [&](std::size_t i) {
            if (i == 3) throw std::runtime_error("boom");
            done[i] = 1;
        },
        [&](std::size_t i, const char* what) { errors[i] = what; });
    for (std::size_t i = 0; i < 10; ++i) EXPECT_EQ(done[i], i == 3 ? 0 : 1) << i;
    EXPECT_EQ(errors[3], "boom");
}

}  // namespace

// Orders sharing a name (any case, a wildcard and its base) never hold it at the same time,
// under contention from 8 threads, and none of them waits forever.
TEST(Claims, ClaimsKeepOrdersThatShareANameApart) {
    lifecycle::SharedSolvers shared;
    const std::vector<std::vector<std::string>> orders = {
        {"a.example", "Shared.example"},
        {"*.shared.example"},
        {"b.example", "A.EXAMPLE"},
        {"b.example"},
        {"c.example"},
        {"c.example", "b.example"},
    };
    std::mutex m;
    std::map<std::string, int> holders;  // name -> orders holding it now
    int overlaps = 0;
    auto base = [](std::string n) {
        if (n.starts_with("*.")) n.erase(0, 2);
        return base::ascii_lower(n);
    };
    std::vector<std::jthread> threads;
    threads.reserve(8);
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 300; ++i) {
                const auto& names = orders[(t + i) % orders.size()];
                const lifecycle::SharedSolvers::Claim claim(shared, names);
                {
                    std::lock_guard lock(m);
                    for (const auto& n : names)
                        if (++holders[base(n)] > 1) ++overlaps;
                }
                std::this_thread::yield();
                std::lock_guard lock(m);
                for (const auto& n : names) --holders[base(n)];
            }
        });
    threads.clear();  // joins
    EXPECT_EQ(overlaps, 0);
}

// An order whose names are free does not wait for one holding other names.
TEST(Claims, ClaimsOnOtherNamesDoNotWait) {
    lifecycle::SharedSolvers shared;
    const lifecycle::SharedSolvers::Claim held(shared, {"a.example", "www.a.example"});
    bool done = false;
    std::jthread([&] {
        const lifecycle::SharedSolvers::Claim other(shared, {"b.example", "*.c.example"});
        done = true;
    }).join();
    EXPECT_TRUE(done);
}
