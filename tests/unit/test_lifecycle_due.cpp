// When a certificate is due for renewal (lifecycle::due_for_renewal, the one rule of renew,
// enroll and run): renew_before_days wins, else the CA's ARI window at a point spread by the
// serial, else two thirds of the lifetime; a failed renewalInfo falls back to the lifetime.
#include "lifecycle/due.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using std::chrono::hours;
using Clock = std::chrono::system_clock;

// A 90-day certificate issued at `issued`.
x509::CertInfo leaf(Clock::time_point issued, base::Bytes serial = {0x01, 0x02}) {
    x509::CertInfo c;
    c.serial_der = std::move(serial);
    c.not_before = issued;
    c.not_after = issued + hours(24 * 90);
    return c;
}

const Clock::time_point kIssued = Clock::time_point(std::chrono::seconds(1'800'000'000));

lifecycle::AriSource no_ari() {
    return [] { return base::Result<std::optional<acme::RenewalWindow>>(std::nullopt); };
}

TEST(Due, LifetimeThirdWithoutAri) {
    const auto c = leaf(kIssued);
    const auto at = kIssued + hours(24 * 60);
    for (const lifecycle::AriSource& ari : {no_ari(), lifecycle::AriSource{}}) {
        auto before = lifecycle::due_for_renewal(c, 0, ari, at - hours(1));
        EXPECT_FALSE(before.due);
        EXPECT_EQ(before.at, at);
        EXPECT_EQ(before.why, "two thirds of its lifetime");
        EXPECT_FALSE(before.check_again);
        EXPECT_TRUE(lifecycle::due_for_renewal(c, 0, ari, at).due);
    }
}

TEST(Due, RenewBeforeDaysWinsAndAsksNoCa) {
    const auto c = leaf(kIssued);
    bool asked = false;
    auto ari = [&]() -> base::Result<std::optional<acme::RenewalWindow>> {
        asked = true;
        return acme::RenewalWindow{kIssued, kIssued + hours(1), "", std::nullopt};
    };
    auto d = lifecycle::due_for_renewal(c, 30, ari, kIssued + hours(24 * 59));
    EXPECT_FALSE(asked);
    EXPECT_FALSE(d.due);
    EXPECT_EQ(d.at, c.not_after - hours(24 * 30));
    EXPECT_EQ(d.why, "30 days before it expires");
    EXPECT_TRUE(lifecycle::due_for_renewal(c, 30, ari, kIssued + hours(24 * 60)).due);
}

TEST(Due, InsideTheAriWindowSpreadBySerial) {
    const auto start = kIssued + hours(24 * 10);
    const auto end = start + hours(1000);
    const Clock::time_point again = kIssued + hours(5);
    auto ari = [&]() -> base::Result<std::optional<acme::RenewalWindow>> {
        return acme::RenewalWindow{start, end, "https://ca.example/why\n\x7f", again};
    };
    // serial 01 02: spread = 1 * 31 + 2 = 33, so 33/1000 of the window.
    auto d = lifecycle::due_for_renewal(leaf(kIssued), 0, ari, kIssued);
    EXPECT_FALSE(d.due);
    EXPECT_EQ(d.at, start + hours(33));
    EXPECT_EQ(d.why, "the CA's renewal window (ARI), see https://ca.example/why??");
    EXPECT_EQ(d.check_again, again);
    EXPECT_TRUE(lifecycle::due_for_renewal(leaf(kIssued), 0, ari, start + hours(33)).due);
    // Another serial, another point in the same window.
    auto other = lifecycle::due_for_renewal(leaf(kIssued, {0x07}), 0, ari, kIssued);
    EXPECT_EQ(other.at, start + hours(7));
}

TEST(Due, AriFailureFallsBackToTheLifetime) {
    auto ari = []() -> base::Result<std::optional<acme::RenewalWindow>> {
        return base::fail(base::Errc::network, "renewalInfo", "connection refused");
    };
    auto d = lifecycle::due_for_renewal(leaf(kIssued), 0, ari, kIssued);
    EXPECT_FALSE(d.due);
    EXPECT_EQ(d.at, kIssued + hours(24 * 60));
    EXPECT_EQ(d.why, "two thirds of its lifetime");
}

}  // namespace
