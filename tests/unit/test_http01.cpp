// The built-in http-01 responder over real loopback sockets (docs/SECURITY.md rules 8 and 16).
#include "challenge/http01.h"
#include "support/socket.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using base::Errc;
using challenge::Http01Responder;

constexpr const char* kToken = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
constexpr const char* kKeyAuth =
    "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";

using base::Fd;
using testsupport::read_all;

// Reads time out after 10 s so a broken responder fails the test instead of hanging it.
Fd connect_to(unsigned short port, bool v6 = false) {
    Fd s = testsupport::connect_to(port, v6, 10);
    EXPECT_TRUE(s) << "cannot connect to port " << port << ": " << std::strerror(errno);
    return s;
}

std::string roundtrip(unsigned short port, const std::string& request, bool v6 = false) {
    const Fd s = connect_to(port, v6);
    EXPECT_TRUE(testsupport::send_all(s, request));
    return read_all(s);
}

std::string get(unsigned short port, const std::string& target) {
    return roundtrip(port, "GET " + target + " HTTP/1.1\r\nHost: example.org\r\n\r\n");
}

std::string status_line(const std::string& reply) {
    return reply.substr(0, reply.find("\r\n"));
}

std::string body_of(const std::string& reply) {
    const auto end = reply.find("\r\n\r\n");
    return end == std::string::npos ? "" : reply.substr(end + 4);
}

std::unique_ptr<Http01Responder> start_loopback() {
    auto r = Http01Responder::start("127.0.0.1:0");
    EXPECT_TRUE(r) << r.error().describe();
    return r ? std::move(*r) : nullptr;
}

const std::string kPath = std::string("/.well-known/acme-challenge/") + kToken;

TEST(ValidToken, AcceptsOnlyBase64urlAlphabet) {
    EXPECT_TRUE(challenge::valid_token(kToken));
    EXPECT_TRUE(challenge::valid_token("a-b_C9"));
    for (const char* bad :
         {"", ".", "..", "../x", "a/b", "a b", "a?b", "a%2e", "a.b", "a=", "a\r\n", "\xc3\xa4"}) {
        EXPECT_FALSE(challenge::valid_token(bad)) << bad;
    }
}

TEST(Http01, AddRejectsInvalidToken) {
    auto r = start_loopback();
    ASSERT_TRUE(r);
    auto added = r->add("../../etc/passwd", "x");
    ASSERT_FALSE(added);
    EXPECT_EQ(added.error().code, Errc::protocol);
    EXPECT_FALSE(r->add("", "x"));
}

TEST(Http01, ServesExactTokenPath) {
    auto r = start_loopback();
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->add(kToken, kKeyAuth));
    const std::string reply = get(r->port(), kPath);
    EXPECT_EQ(status_line(reply), "HTTP/1.1 200 OK");
    EXPECT_NE(reply.find("\r\nContent-Type: text/plain\r\n"), std::string::npos) << reply;
    EXPECT_NE(reply.find("\r\nConnection: close\r\n"), std::string::npos) << reply;
    EXPECT_NE(reply.find("\r\nContent-Length: " + std::to_string(std::strlen(kKeyAuth)) + "\r\n"),
              std::string::npos);
    EXPECT_EQ(body_of(reply), kKeyAuth);
}

// issue #20.3: the agent polls the CA once its responder has served the token.
TEST(Http01, WaitServedTellsWhenTheTokenWasFetched) {
    auto r = start_loopback();
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->add(kToken, kKeyAuth));
    EXPECT_FALSE(r->wait_served(kToken, std::chrono::milliseconds(20)));
    EXPECT_EQ(status_line(get(r->port(), "/.well-known/acme-challenge/other")),
              "HTTP/1.1 404 Not Found");
    EXPECT_FALSE(r->wait_served(kToken, std::chrono::milliseconds(20)));  // not that one
    EXPECT_EQ(status_line(get(r->port(), kPath)), "HTTP/1.1 200 OK");
    EXPECT_TRUE(r->wait_served(kToken, std::chrono::milliseconds(0)));
    r->remove(kToken);
    EXPECT_FALSE(r->wait_served(kToken, std::chrono::milliseconds(0)));
}

// Fleet mode: a token another node published is served through the lookup; the lookup is
// asked only for well-formed tokens on the exact path, and what it does not know stays 404.
TEST(Http01, ATokenNotAddedHereIsLookedUp) {
    auto r = start_loopback();
    ASSERT_TRUE(r);
    std::vector<std::string> asked;
    std::mutex m;
    r->set_lookup([&](const std::string& token) -> std::optional<std::string> {
        const std::lock_guard lock(m);
        asked.push_back(token);
        if (token == kToken) return std::string(kKeyAuth);
        return std::nullopt;
    });
    const std::string reply = get(r->port(), kPath);
    EXPECT_EQ(status_line(reply), "HTTP/1.1 200 OK");
    EXPECT_EQ(body_of(reply), kKeyAuth);
    EXPECT_TRUE(r->wait_served(kToken, std::chrono::milliseconds(0)));
    EXPECT_EQ(status_line(get(r->port(), "/.well-known/acme-challenge/other")),
              "HTTP/1.1 404 Not Found");
    EXPECT_EQ(status_line(get(r->port(), "/.well-known/acme-challenge/a%2Fb")),
              "HTTP/1.1 404 Not Found");
    EXPECT_EQ(status_line(get(r->port(), "/other/path")), "HTTP/1.1 404 Not Found");
    // A token added here wins without asking.
    ASSERT_TRUE(r->add("local", "local.thumbprint"));
    EXPECT_EQ(body_of(get(r->port(), "/.well-known/acme-challenge/local")), "local.thumbprint");
    const std::lock_guard lock(m);
    EXPECT_EQ(asked, (std::vector<std::string>{kToken, "other"}));
}

TEST(Http01, UnknownAndRemovedTokensAre404) {
    auto r = start_loopback();
    ASSERT_TRUE(r);
    EXPECT_EQ(status_line(get(r->port(), kPath)), "HTTP/1.1 404 Not Found");
    ASSERT_TRUE(r->add(kToken, kKeyAuth));
    EXPECT_EQ(status_line(get(r->port(), "/.well-known/acme-challenge/other")),
              "HTTP/1.1 404 Not Found");
    r->remove(kToken);
    const std::string reply = get(r->port(), kPath);
    EXPECT_EQ(status_line(reply), "HTTP/1.1 404 Not Found");
    EXPECT_EQ(reply.find(kKeyAuth), std::string::npos);
}

TEST(Http01, OnlyTheExactPathMatches) {
    auto r = start_loopback();
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->add(kToken, kKeyAuth));
    const std::string t = kToken;
    for (const std::string& target :
         {kPath + "?x=1", kPath + "#f", kPath + "/", kPath + "x", kPath + "%20", "/x" + kPath,
          "/.well-known/acme-challenge//" + t, "/.well-known/acme-challenge/../acme-challenge/" + t,
          "/.WELL-KNOWN/acme-challenge/" + t, "http://example.org" + kPath,
          "/.well-known/acme-challenge/" + t.substr(1), std::string("/.well-known/acme-challenge/"),
          std::string("/.well-known/acme-challenge")}) {
        const std::string reply = get(r->port(), target);
        EXPECT_EQ(status_line(reply), "HTTP/1.1 404 Not Found") << target;
        EXPECT_EQ(reply.find(kKeyAuth), std::string::npos) << target;
    }
}

TEST(Http01, OtherMethodsAre405) {
    auto r = start_loopback();
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->add(kToken, kKeyAuth));
    for (const char* method : {"POST", "HEAD", "PUT", "DELETE", "get"}) {
        const std::string reply =
            roundtrip(r->port(), std::string(method) + " " + kPath + " HTTP/1.1\r\n\r\n");
        EXPECT_EQ(status_line(reply), "HTTP/1.1 405 Method Not Allowed") << method;
        EXPECT_NE(reply.find("\r\nAllow: GET\r\n"), std::string::npos);
        EXPECT_EQ(reply.find(kKeyAuth), std::string::npos);
    }
}

TEST(Http01, MalformedRequestLineIs400) {
    auto r = start_loopback();
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->add(kToken, kKeyAuth));
    for (const std::string& line :
         {"GET " + kPath, "GET  " + kPath + " HTTP/1.1", "GET " + kPath + " HTTP/1.1 x",
          "GET " + kPath + " SPDY/3", std::string("")}) {
        EXPECT_EQ(status_line(roundtrip(r->port(), line + "\r\n\r\n")), "HTTP/1.1 400 Bad Request")
            << line;
    }
}

TEST(Http01, OversizedRequestHeadIsRefused) {
    auto r = start_loopback();
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->add(kToken, kKeyAuth));
    // A valid request line followed by more than 8 KiB of header and no end of head.
    const std::string request =
        "GET " + kPath + " HTTP/1.1\r\nX-Pad: " + std::string(9000, 'a') + "\r\n";
    const std::string reply = roundtrip(r->port(), request);
    EXPECT_EQ(status_line(reply), "HTTP/1.1 431 Request Header Fields Too Large");
    EXPECT_EQ(reply.find(kKeyAuth), std::string::npos);
}

TEST(Http01, RequestSplitAcrossReadsIsServed) {
    auto r = start_loopback();
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->add(kToken, kKeyAuth));
    const Fd s = connect_to(r->port());
    const std::string request = "GET " + kPath + " HTTP/1.1\r\nHost: x\r\n\r\n";
    for (char c : request) ASSERT_TRUE(testsupport::send_all(s, std::string(1, c)));
    EXPECT_EQ(body_of(read_all(s)), kKeyAuth);
}

TEST(Http01, MalformedSpecIsUsageError) {
    for (const char* spec :
         {"", "abc", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:123456", "127.0.0.1:-1", "[::1",
          "[::1]", "[::1]80", "[]:80", "::1:80", "localhost:80", "999.1.1.1:80", "127.0.0.1:8o"}) {
        auto r = Http01Responder::start(spec);
        ASSERT_FALSE(r) << spec;
        EXPECT_EQ(r.error().code, Errc::usage) << spec;
    }
}

TEST(Http01, PortInUseIsIoErrorNamingThePort) {
    const auto busy = testsupport::bind_loopback(/*listen=*/true);
    ASSERT_NE(busy.port, 0) << std::strerror(errno);
    const std::string port = std::to_string(busy.port);

    auto r = Http01Responder::start("127.0.0.1:" + port);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::io);
    const std::string text = r.error().describe();
    EXPECT_NE(text.find("127.0.0.1:" + port), std::string::npos) << text;
    EXPECT_NE(text.find("in use"), std::string::npos) << text;
}

TEST(Http01, ServesOverIpv6) {
    auto r = Http01Responder::start("[::1]:0");
    if (!r) GTEST_SKIP() << "no IPv6 loopback: " << r.error().describe();
    ASSERT_TRUE((*r)->add(kToken, kKeyAuth));
    const std::string reply =
        roundtrip((*r)->port(), "GET " + kPath + " HTTP/1.1\r\nHost: [::1]\r\n\r\n", true);
    EXPECT_EQ(status_line(reply), "HTTP/1.1 200 OK");
    EXPECT_EQ(body_of(reply), kKeyAuth);
}

TEST(Http01, IdleConnectionsDoNotBlockARealRequest) {
    auto r = start_loopback();
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->add(kToken, kKeyAuth));
    std::vector<Fd> idle;
    for (int i = 0; i < 14; ++i) {
        idle.push_back(connect_to(r->port()));
        // Half of them start a request and never finish it (slowloris).
        if (i % 2 == 1) {
            ASSERT_TRUE(testsupport::send_all(idle.back(), "GET " + kPath + " HTTP/1.1\r\nHost:"));
        }
    }
    const auto start = std::chrono::steady_clock::now();
    const std::string reply = get(r->port(), kPath);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(body_of(reply), kKeyAuth);
    // Well under the 5 s per-connection deadline: the real request did not wait for them.
    EXPECT_LT(elapsed, std::chrono::seconds(2));
}

TEST(Http01, IdleConnectionsAreDroppedAtTheDeadline) {
    auto r = start_loopback();
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->add(kToken, kKeyAuth));
    // Fill every slot; the extra request waits in the backlog until the idle ones expire.
    std::vector<Fd> idle;
    idle.reserve(16);
    for (int i = 0; i < 16; ++i) idle.push_back(connect_to(r->port()));
    const auto start = std::chrono::steady_clock::now();
    const std::string reply = get(r->port(), kPath);
    EXPECT_EQ(body_of(reply), kKeyAuth);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(9));
    // The server closed the idle ones: reading gives EOF, not the 10 s client timeout.
    for (const Fd& s : idle) EXPECT_EQ(read_all(s), "");
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(9));
}

TEST(Http01, AddAndRemoveWhileServing) {
    auto r = start_loopback();
    ASSERT_TRUE(r);
    std::atomic<bool> stop{false};
    std::thread churn([&] {
        for (int i = 0; !stop; ++i) {
            const std::string t = "tok" + std::to_string(i % 50);
            ASSERT_TRUE(r->add(t, t + ".thumb"));
            r->remove("tok" + std::to_string((i + 25) % 50));
        }
    });
    ASSERT_TRUE(r->add(kToken, kKeyAuth));
    for (int i = 0; i < 50; ++i) EXPECT_EQ(body_of(get(r->port(), kPath)), kKeyAuth);
    stop = true;
    churn.join();
}

TEST(Http01, DestructorStopsListeningEvenWithOpenConnections) {
    auto r = start_loopback();
    ASSERT_TRUE(r);
    const unsigned short port = r->port();
    const Fd idle = connect_to(port);
    const auto start = std::chrono::steady_clock::now();
    r.reset();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
    EXPECT_EQ(read_all(idle), "");

    EXPECT_FALSE(testsupport::connect_to(port));
    // And the port can be taken again at once (SO_REUSEADDR).
    auto again = Http01Responder::start("127.0.0.1:" + std::to_string(port));
    EXPECT_TRUE(again) << again.error().describe();
}

}  // namespace
