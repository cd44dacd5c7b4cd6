// Pure logic behind issue #21: Retry-After parsing (RFC 9110 §10.2.3), the ARI window clamp
// (RFC 9773, issue #14.4) and identifier normalisation (RFC 5952 for IPv6).
#include "acme/certificate.h"
#include "acme/client.h"
#include "acme/order.h"

#include <gtest/gtest.h>

namespace {

using namespace std::chrono;
using acme::parse_retry_after;

const system_clock::time_point kNow = system_clock::from_time_t(1'700'000'000);  // 2023-11-14

TEST(RetryAfter, DelaySeconds) {
    EXPECT_EQ(parse_retry_after("0", kNow), milliseconds(0));
    EXPECT_EQ(parse_retry_after("30", kNow), seconds(30));
    // Hours: not capped here; the client decides whether to wait or end the command.
    EXPECT_EQ(parse_retry_after("7200", kNow), hours(2));
    EXPECT_EQ(parse_retry_after("86400", kNow), hours(24));
}

TEST(RetryAfter, HttpDate) {
    // 1700000000 is Tue, 14 Nov 2023 22:13:20 GMT.
    EXPECT_EQ(parse_retry_after("Tue, 14 Nov 2023 23:13:20 GMT", kNow), hours(1));
    EXPECT_EQ(parse_retry_after("Tue, 14 Nov 2023 22:13:20 GMT", kNow), milliseconds(0));
    // A date in the past is "now", never negative.
    EXPECT_EQ(parse_retry_after("Mon, 13 Nov 2023 22:13:20 GMT", kNow), milliseconds(0));
}

TEST(RetryAfter, GarbageIsIgnored) {
    for (const char* v : {"", "soon-ish", "-5", "1.5", "12345678901", "Tue, 14 Nov 2023",
                          "Tue, 14 Nov 2023 23:13:20 GMT trailing"})
        EXPECT_FALSE(parse_retry_after(v, kNow)) << v;
}

TEST(AriClamp, WindowAfterExpiryMovesInsideTheLifetime) {
    // issue #14.4: a window in 2040 for a certificate that expires in 90 days.
    const auto nb = kNow, na = kNow + days(90);
    acme::RenewalWindow w{kNow + days(365 * 17), kNow + days(365 * 17 + 1), "", std::nullopt};
    const auto c = acme::clamp_window(w, nb, na);
    EXPECT_EQ(c.start, na - days(9));
    EXPECT_EQ(c.end, na - days(9));
    EXPECT_LE(c.start, c.end);
}

TEST(AriClamp, EndAfterExpiryStartInside) {
    const auto nb = kNow, na = kNow + days(90);
    acme::RenewalWindow w{kNow + days(60), kNow + days(100), "", std::nullopt};
    const auto c = acme::clamp_window(w, nb, na);
    EXPECT_EQ(c.start, kNow + days(60));
    EXPECT_EQ(c.end, na - days(9));
}

TEST(AriClamp, WindowInsideIsKept) {
    const auto nb = kNow, na = kNow + days(90);
    acme::RenewalWindow w{kNow + days(55), kNow + days(60), "https://ca.example/why", std::nullopt};
    const auto c = acme::clamp_window(w, nb, na);
    EXPECT_EQ(c.start, w.start);
    EXPECT_EQ(c.end, w.end);
    EXPECT_EQ(c.explanation_url, w.explanation_url);
}

TEST(Identifiers, Ipv6InRfc5952Form) {
    EXPECT_EQ(acme::normalize_identifier("2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
    EXPECT_EQ(acme::normalize_identifier("2001:0db8:0000:0000:0001:0000:0000:0001"),
              "2001:db8::1:0:0:1");  // the first of two equal zero runs
    EXPECT_EQ(acme::normalize_identifier("2001:db8:0:1:1:1:1:1"),
              "2001:db8:0:1:1:1:1:1");  // one zero field is not shortened
    EXPECT_EQ(acme::normalize_identifier("0:0:0:0:0:0:0:1"), "::1");
}

TEST(Identifiers, OthersLowerCased) {
    EXPECT_EQ(acme::normalize_identifier("WWW.Example.COM"), "www.example.com");
    EXPECT_EQ(acme::normalize_identifier("*.Example.com"), "*.example.com");
    EXPECT_EQ(acme::normalize_identifier("192.0.2.1"), "192.0.2.1");
}

}  // namespace
