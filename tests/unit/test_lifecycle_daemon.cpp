// The run daemon's schedule: per-certificate backoff after failures (1 min doubling to 6 h,
// up to a tenth of jitter, never before the CA's Retry-After) and the wait between passes.
#include "lifecycle/daemon.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using lifecycle::Backoff;
using lifecycle::Clock;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(Backoff, DoublesFromAMinuteToSixHours) {
    EXPECT_EQ(Backoff::delay(1), minutes(1));
    EXPECT_EQ(Backoff::delay(2), minutes(2));
    EXPECT_EQ(Backoff::delay(3), minutes(4));
    EXPECT_EQ(Backoff::delay(9), minutes(256));
    EXPECT_EQ(Backoff::delay(10), hours(6));
    EXPECT_EQ(Backoff::delay(50), hours(6));
}

TEST(Backoff, EachFailureWaitsLongerWithBoundedJitterUntilOk) {
    Backoff b(42);
    EXPECT_EQ(b.retry_at("www"), Clock::time_point{});
    for (unsigned n = 1; n <= 12; ++n) {
        const auto before = Clock::now();
        const auto at = b.failed("www");
        const auto after = Clock::now();
        const auto d = Backoff::delay(n);
        EXPECT_GE(at, before + d) << n;
        EXPECT_LE(at, after + d + d / 10) << n;
        EXPECT_EQ(b.retry_at("www"), at);
    }
    EXPECT_EQ(b.retry_at("api"), Clock::time_point{});  // per certificate
    b.ok("www");
    EXPECT_EQ(b.retry_at("www"), Clock::time_point{});
    const auto again = b.failed("www");  // counting starts over
    EXPECT_LE(again, Clock::now() + minutes(1) + seconds(6));
    b.clear();
    EXPECT_EQ(b.retry_at("www"), Clock::time_point{});
}

TEST(Backoff, NeverBeforeTheCasRetryAfter) {
    Backoff b(1);
    const auto later = Clock::now() + hours(3);
    const auto at =
        b.failed("www", std::chrono::duration_cast<seconds>(later.time_since_epoch()).count());
    EXPECT_GE(at, later - seconds(1));
    EXPECT_LE(at, later);
    // A Retry-After in the past does not shorten the backoff.
    const auto at2 = b.failed("www", 0);
    EXPECT_GE(at2, Clock::now() + minutes(2) - seconds(1));
}

TEST(NextWait, UntilTheNextDueAtLeastASecondAtMostSixHoursPlusJitter) {
    std::mt19937 rng{std::random_device{}()};
    const auto now = Clock::now();
    for (int i = 0; i < 200; ++i) {
        const auto soon = lifecycle::next_wait(now + seconds(100), now, rng);
        EXPECT_GE(soon, seconds(100));
        EXPECT_LE(soon, seconds(110));
        const auto past = lifecycle::next_wait(now - hours(1), now, rng);
        EXPECT_EQ(past, seconds(1));
        const auto never = lifecycle::next_wait(Clock::time_point::max(), now, rng);
        EXPECT_GE(never, hours(6));
        EXPECT_LE(never, hours(6) + minutes(5));
    }
}

}  // namespace
