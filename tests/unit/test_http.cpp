// acme::Http against an in-process TLS server on loopback (docs/SECURITY.md rules 5-7). The
// server is OpenSSL on a thread with a CA and leaf made at test time; it listens before
// the constructor returns, so there is nothing to wait for.
#include "acme/http.h"
#include "base/deleter.h"
#include "support/tls_server.h"

#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fcntl.h>

#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

namespace {

using base::Errc;

using namespace testsupport;  // Pki, TlsServer, Request, Reply

Reply ok(const std::string& body, const std::string& extra = "",
         const std::string& method = "GET") {
    return {"HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra +
                "\r\n" + (method == "HEAD" ? "" : body),
            false, false};
}

constexpr std::size_t kBig = 100 * 1024;  // over the 64 KiB default cap

Reply route(const Request& req) {
    if (req.target == "/hello") return ok("hello", "Content-Type: text/plain\r\n", req.method);
    if (req.target == "/echo") {
        auto ct = req.headers.find("content-type");
        return ok(
            req.method + "\n" + (ct == req.headers.end() ? "-" : ct->second) + "\n" + req.body, "",
            req.method);
    }
    if (req.target == "/headers") {
        return ok("{}",
                  "replay-nonce:   nonce-1   \r\n"
                  "Location: https://example.org/acme/order/1\r\n"
                  "Retry-After: 30\r\n"
                  "Content-Type: Application/Problem+JSON ; charset=utf-8\r\n"
                  "Link: <https://example.org/dir>;rel=\"index\"\r\n"
                  "LINK: <https://example.org/alt/1>; rel=alternate, "
                  "<https://example.org/alt/2>;rel=\"alternate\"\r\n",
                  req.method);
    }
    if (req.target == "/continue") {
        return {
            "HTTP/1.1 100 Continue\r\nReplay-Nonce: early\r\nLink: <x>;rel=\"up\"\r\n\r\n"
            "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nLocation: /final\r\n\r\nok",
            false, false};
    }
    if (req.target == "/big-close") {
        return {"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + std::string(kBig, 'a'), true,
                false};
    }
    if (req.target == "/big-chunked") {
        std::string out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (std::size_t sent = 0; sent < kBig; sent += 4096)
            out += "1000\r\n" + std::string(4096, 'b') + "\r\n";
        out += "0\r\n\r\n";
        return {out, false, false};
    }
    if (req.target == "/big-length") return ok(std::string(kBig, 'c'), "", req.method);
    if (req.target == "/fat-headers") {
        std::string extra;
        for (int i = 0; i < 20; ++i)
            extra += "X-Pad-" + std::to_string(i) + ": " + std::string(1000, 'p') + "\r\n";
        return ok("x", extra, req.method);
    }
    if (req.target == "/redirect") {
        return {"HTTP/1.1 302 Found\r\nLocation: /hello\r\nContent-Length: 0\r\n\r\n", false,
                false};
    }
    if (req.target == "/stall") return {"", false, true};
    return {"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false, false};
}

class HttpTest : public ::testing::Test {
  protected:
    Pki pki;
    TlsServer server{pki, route};

    acme::HttpOptions trusting() const {
        acme::HttpOptions o;
        o.ca_file = pki.ca_file;
        return o;
    }
};

TEST_F(HttpTest, GetReusesOneConnection) {
    acme::Http http(trusting());
    for (int i = 0; i < 3; ++i) {
        auto r = http.get(server.url("/hello"));
        ASSERT_TRUE(r) << r.error().describe();
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->body, "hello");
        EXPECT_EQ(r->content_type, "text/plain");
    }
    EXPECT_EQ(http.requests(), 3u);
    EXPECT_EQ(http.connections(), 1);
    EXPECT_EQ(server.accepted(), 1);
}

TEST_F(HttpTest, SwitchingMethodsOnTheReusedHandle) {
    acme::Http http(trusting());
    auto h = http.head(server.url("/echo"));
    ASSERT_TRUE(h) << h.error().describe();
    EXPECT_EQ(h->body, "");
    auto g = http.get(server.url("/echo"));
    ASSERT_TRUE(g) << g.error().describe();
    EXPECT_EQ(g->body, "GET\n-\n");
    auto p = http.post(server.url("/echo"), R"({"a":1})");
    ASSERT_TRUE(p) << p.error().describe();
    EXPECT_EQ(p->body, "POST\napplication/jose+json\n{\"a\":1}");
    auto g2 = http.get(server.url("/echo"));
    ASSERT_TRUE(g2) << g2.error().describe();
    EXPECT_EQ(g2->body, "GET\n-\n");
    auto p2 = http.post(server.url("/echo"), "", "text/plain");
    ASSERT_TRUE(p2) << p2.error().describe();
    EXPECT_EQ(p2->body, "POST\ntext/plain\n");
    auto h2 = http.head(server.url("/big-length"));  // announces 100 KiB, sends none
    ASSERT_TRUE(h2) << h2.error().describe();
    EXPECT_EQ(h2->body, "");
    EXPECT_EQ(http.connections(), 1);
    EXPECT_EQ(http.requests(), 6u);
}

TEST_F(HttpTest, CapturesHeadersOfTheFinalResponseOnly) {
    acme::Http http(trusting());
    auto r = http.get(server.url("/headers"));
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->replay_nonce, "nonce-1");
    EXPECT_EQ(r->location, "https://example.org/acme/order/1");
    EXPECT_EQ(r->retry_after, "30");
    EXPECT_EQ(r->content_type, "application/problem+json");
    ASSERT_EQ(r->links.size(), 2u);
    const auto links = acme::parse_links(r->links);
    using L = std::vector<std::pair<std::string, std::string>>;
    EXPECT_EQ(links, (L{{"https://example.org/dir", "index"},
                        {"https://example.org/alt/1", "alternate"},
                        {"https://example.org/alt/2", "alternate"}}));

    // The next response on the same handle starts from nothing.
    auto next = http.get(server.url("/hello"));
    ASSERT_TRUE(next) << next.error().describe();
    EXPECT_FALSE(next->replay_nonce);
    EXPECT_FALSE(next->location);
    EXPECT_FALSE(next->retry_after);
    EXPECT_TRUE(next->links.empty());

    // Headers of a 1xx interim response are not the final response's.
    auto c = http.get(server.url("/continue"));
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->status, 201);
    EXPECT_EQ(c->body, "ok");
    EXPECT_FALSE(c->replay_nonce);
    EXPECT_TRUE(c->links.empty());
    EXPECT_EQ(c->location, "/final");
    EXPECT_EQ(http.connections(), 1);
}

TEST_F(HttpTest, RedirectIsNotFollowed) {
    acme::Http http(trusting());
    auto r = http.get(server.url("/redirect"));
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->status, 302);
    EXPECT_EQ(r->location, "/hello");
    EXPECT_EQ(r->body, "");
}

TEST_F(HttpTest, UntrustedCertificateSuggestsCaFile) {
    acme::Http http(acme::HttpOptions{});  // system store only: the test CA is unknown
    auto r = http.get(server.url("/hello"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::network);
    const std::string text = r.error().describe();
    EXPECT_NE(text.find("not trusted"), std::string::npos) << text;
    EXPECT_NE(text.find("--ca-file"), std::string::npos) << text;
    EXPECT_NE(text.find("127.0.0.1"), std::string::npos) << text;
}

TEST_F(HttpTest, HostNameIsVerified) {
    acme::Http http(trusting());  // trusted CA, but the leaf names only 127.0.0.1
    auto r = http.get(server.url("/hello", "localhost"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::network);
    EXPECT_NE(r.error().describe().find("not trusted"), std::string::npos) << r.error().describe();
}

TEST_F(HttpTest, PlainHttpIsRefused) {
    acme::Http http(trusting());
    for (const char* url :
         {"http://127.0.0.1/hello", "ftp://127.0.0.1/x", "127.0.0.1/x", "file:///etc/passwd"}) {
        auto r = http.get(url);
        ASSERT_FALSE(r) << url;
        EXPECT_EQ(r.error().code, Errc::usage) << url;
        EXPECT_NE(r.error().describe().find("https://"), std::string::npos) << url;
    }
    EXPECT_FALSE(http.post("http://127.0.0.1/x", "{}"));
    EXPECT_FALSE(http.head("http://127.0.0.1/x"));
    EXPECT_EQ(http.requests(), 0u);
    EXPECT_EQ(server.accepted(), 0);
}

TEST_F(HttpTest, BodyOverTheCapIsRefused) {
    acme::Http http(trusting());
    for (const char* path : {"/big-close", "/big-chunked", "/big-length"}) {
        auto r = http.get(server.url(path));
        ASSERT_FALSE(r) << path;
        EXPECT_EQ(r.error().code, Errc::protocol) << path;
        EXPECT_NE(r.error().describe().find("response body larger than 65536 bytes"),
                  std::string::npos)
            << r.error().describe();
    }
    // A per-request cap lifts the limit; a POST obeys its own cap too.
    auto big = http.get(server.url("/big-chunked"), 2 * kBig);
    ASSERT_TRUE(big) << big.error().describe();
    EXPECT_EQ(big->body.size(), kBig);
    auto small = http.post(server.url("/echo"), std::string(100, 'x'), "text/plain", 16);
    ASSERT_FALSE(small);
    EXPECT_EQ(small.error().code, Errc::protocol);
    // The handle is still usable after an aborted transfer.
    auto after = http.get(server.url("/hello"));
    ASSERT_TRUE(after) << after.error().describe();
    EXPECT_EQ(after->body, "hello");
}

TEST_F(HttpTest, OversizedHeadersAreRefused) {
    acme::Http http(trusting());
    auto r = http.get(server.url("/fat-headers"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::protocol);
    EXPECT_NE(r.error().describe().find("headers larger than"), std::string::npos)
        << r.error().describe();
}

TEST_F(HttpTest, TotalTimeoutIsANetworkError) {
    acme::HttpOptions o = trusting();
    o.total_timeout = std::chrono::milliseconds(300);
    acme::Http http(o);
    auto r = http.get(server.url("/stall"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::network);
    EXPECT_NE(r.error().describe().find("timed out"), std::string::npos) << r.error().describe();
}

TEST(Http, ConnectionRefusedIsANetworkErrorNamingTheHost) {
    // A bound socket that does not listen holds the port: connecting to it is refused.
    const auto refusing = bind_loopback(/*listen=*/false);
    ASSERT_NE(refusing.port, 0);
    const std::string hostport = "127.0.0.1:" + std::to_string(refusing.port);

    acme::Http http(acme::HttpOptions{});
    auto r = http.get("https://" + hostport + "/dir");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::network);
    EXPECT_NE(r.error().describe().find("cannot connect to " + hostport), std::string::npos)
        << r.error().describe();
}

TEST(Http, UnreadableOrEmptyCaFileIsReported) {
    acme::HttpOptions o;
    o.ca_file = "/nonexistent/ca.pem";
    acme::Http missing(o);
    auto r = missing.get("https://127.0.0.1:1/");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::io);
    EXPECT_NE(r.error().describe().find("/nonexistent/ca.pem"), std::string::npos);

    o.ca_file = "/dev/null";
    acme::Http empty(o);
    auto e = empty.get("https://127.0.0.1:1/");
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, Errc::usage);
}

TEST(ParseLinks, HandlesListsQuotingAndWhitespace) {
    using L = std::vector<std::pair<std::string, std::string>>;
    EXPECT_EQ(acme::parse_links({}), L{});
    EXPECT_EQ(acme::parse_links({"<https://a/1>;rel=\"up\""}), (L{{"https://a/1", "up"}}));
    EXPECT_EQ(acme::parse_links({"  < https://a/1 > ; REL = up ,<https://a/2>;rel=alternate  "}),
              (L{{"https://a/1", "up"}, {"https://a/2", "alternate"}}));
    // Commas inside the URL and inside quoted parameters do not split links.
    EXPECT_EQ(
        acme::parse_links({"<https://a/x,y>; title=\"a, b\"; rel=\"index\", <https://a/z>;rel=up"}),
        (L{{"https://a/x,y", "index"}, {"https://a/z", "up"}}));
    // Several relation types in one rel; only the first rel counts; case folded.
    EXPECT_EQ(acme::parse_links({"<https://a/1>; rel=\"Alternate up\"; rel=index"}),
              (L{{"https://a/1", "alternate"}, {"https://a/1", "up"}}));
    // No rel: ignored. Malformed entries are skipped without losing the next one.
    EXPECT_EQ(acme::parse_links({"<https://a/1>; title=x", "garbage, <https://a/2>;rel=up",
                                 "<https://a/3> junk, <https://a/4>;rel=\"up\"",
                                 "<https://a/5>;rel=\"unterminated", "<https://a/6"}),
              (L{{"https://a/2", "up"}, {"https://a/4", "up"}}));
    // Escapes inside quoted strings.
    EXPECT_EQ(acme::parse_links({R"(<https://a/1>; title="q\"x,"; rel="up")"}),
              (L{{"https://a/1", "up"}}));
}

}  // namespace
