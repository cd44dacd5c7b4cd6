// acme::Http against an in-process TLS server on loopback (docs/SECURITY.md rules 5-7). The
// server is OpenSSL on a thread with a CA and leaf made at test time; it listens before
// the constructor returns, so there is nothing to wait for.
#include "acme/http.h"
#include "base/deleter.h"
#include "base/ossl.h"
#include "support/socket.h"
#include "support/temp_dir.h"

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

using base::Deleter;
using PKey = base::ossl::PKey;
using Cert = base::ossl::X509Ptr;
using SslCtx = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX_free>>;
using Ssl = std::unique_ptr<SSL, Deleter<SSL_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO_free>>;

// The server writes to sockets the client may have abandoned (that is the point of the
// body-cap tests); a SIGPIPE would kill the test binary.
const bool kIgnoreSigpipe = [] { return std::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();

Cert make_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca) {
    static long serial = 1;
    Cert cert(X509_new());
    X509* c = cert.get();
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
    X509_gmtime_adj(X509_getm_notBefore(c), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c), 24 * 3600);
    X509_NAME* name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                               -1, -1, 0);
    X509_set_issuer_name(c, issuer != nullptr ? X509_get_subject_name(issuer) : name);
    X509_set_pubkey(c, key);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : c, c, nullptr, nullptr, 0);
    auto add = [&](int nid, const char* value) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
        EXPECT_NE(ext, nullptr) << value;
        X509_add_ext(c, ext, -1);
        X509_EXTENSION_free(ext);
    };
    if (ca) {
        add(NID_basic_constraints, "critical,CA:TRUE");
        add(NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add(NID_basic_constraints, "critical,CA:FALSE");
        add(NID_key_usage, "critical,digitalSignature");
        add(NID_ext_key_usage, "serverAuth");
        // Only the IP: a request to https://localhost must fail host name verification.
        add(NID_subject_alt_name, "IP:127.0.0.1");
    }
    EXPECT_GT(X509_sign(c, issuer_key, EVP_sha256()), 0);
    return cert;
}

// A throwaway test CA, a leaf for 127.0.0.1, and the CA as a PEM file in a temp dir.
struct Pki {
    PKey ca_key{EVP_EC_gen("P-256")};
    PKey leaf_key{EVP_EC_gen("P-256")};
    Cert ca = make_cert(ca_key.get(), "acme-agent test CA", nullptr, ca_key.get(), true);
    Cert leaf = make_cert(leaf_key.get(), "127.0.0.1", ca.get(), ca_key.get(), false);
    testsupport::TempDir dir{"acme-agent-test-http"};
    std::string ca_file = (dir.path() / "ca.pem").string();

    Pki() {
        FILE* f = std::fopen(ca_file.c_str(), "w");
        EXPECT_EQ(PEM_write_X509(f, ca.get()), 1);
        EXPECT_EQ(std::fclose(f), 0);
    }
};

struct Request {
    std::string method;
    std::string target;
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;
};

struct Reply {
    std::string bytes;   // the whole raw response
    bool close = false;  // close the connection after sending it
    bool stall = false;  // send nothing; wait for the client to give up
};

// Serves one connection at a time with keep-alive, so the number of accepted connections
// tells whether the client reused its connection.
class TlsServer {
  public:
    TlsServer(const Pki& pki, std::function<Reply(const Request&)> handler)
        : handler_(std::move(handler)), listener_(testsupport::bind_loopback(/*listen=*/true)) {
        ctx_.reset(SSL_CTX_new(TLS_server_method()));
        SSL_CTX_use_certificate(ctx_.get(), pki.leaf.get());
        SSL_CTX_use_PrivateKey(ctx_.get(), pki.leaf_key.get());
        EXPECT_NE(listener_.port, 0);
        port_ = listener_.port;
        EXPECT_EQ(::pipe2(wake_, O_CLOEXEC), 0);
        thread_ = std::thread([this] { run(); });
    }
    ~TlsServer() {
        stop_ = true;
        [[maybe_unused]] auto n = ::write(wake_[1], "x", 1);
        if (int fd = current_.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
        thread_.join();
        ::close(wake_[0]);
        ::close(wake_[1]);
    }
    TlsServer(const TlsServer&) = delete;
    TlsServer& operator=(const TlsServer&) = delete;

    [[nodiscard]] std::string url(const std::string& path, const char* host = "127.0.0.1") const {
        return "https://" + std::string(host) + ":" + std::to_string(port_) + path;
    }
    [[nodiscard]] int accepted() const { return accepted_; }

  private:
    void run() {
        while (!stop_) {
            pollfd fds[2] = {{listener_.fd.get(), POLLIN, 0}, {wake_[0], POLLIN, 0}};
            if (::poll(fds, 2, -1) < 0 || fds[1].revents != 0) return;
            const int fd = ::accept4(listener_.fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            ++accepted_;
            current_ = fd;
            if (stop_) ::shutdown(fd, SHUT_RDWR);
            serve(fd);
            current_ = -1;
            ::close(fd);
        }
    }

    void serve(int fd) {
        Ssl ssl(SSL_new(ctx_.get()));
        SSL_set_fd(ssl.get(), fd);
        if (SSL_accept(ssl.get()) != 1) return;  // e.g. the client refused our certificate
        std::string buffer;
        while (!stop_) {
            std::size_t end = 0;
            while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
                if (!read_more(ssl.get(), buffer)) return;
            }
            Request req = parse(buffer.substr(0, end));
            buffer.erase(0, end + 4);
            std::size_t length = 0;
            if (auto it = req.headers.find("content-length"); it != req.headers.end()) {
                length = std::stoul(it->second);
            }
            while (buffer.size() < length) {
                if (!read_more(ssl.get(), buffer)) return;
            }
            req.body = buffer.substr(0, length);
            buffer.erase(0, length);
            const Reply reply = handler_(req);
            if (reply.stall) {
                while (read_more(ssl.get(), buffer)) {
                }
                return;
            }
            if (SSL_write(ssl.get(), reply.bytes.data(), static_cast<int>(reply.bytes.size())) <=
                0) {
                return;
            }
            if (reply.close) {
                SSL_shutdown(ssl.get());
                return;
            }
        }
    }

    static bool read_more(SSL* ssl, std::string& buffer) {
        char chunk[4096];
        const int n = SSL_read(ssl, chunk, sizeof chunk);
        if (n <= 0) return false;
        buffer.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    static Request parse(const std::string& head) {
        Request req;
        std::size_t pos = head.find("\r\n");
        const std::string line = head.substr(0, pos);
        const auto sp1 = line.find(' ');
        const auto sp2 = line.find(' ', sp1 + 1);
        req.method = line.substr(0, sp1);
        req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        while (pos != std::string::npos && pos < head.size()) {
            const std::size_t next = head.find("\r\n", pos + 2);
            const std::string h =
                head.substr(pos + 2, next == std::string::npos ? next : next - pos - 2);
            if (const auto colon = h.find(':'); colon != std::string::npos) {
                std::string name = h.substr(0, colon);
                for (char& ch : name)
                    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                std::string value = h.substr(colon + 1);
                value.erase(0, value.find_first_not_of(' '));
                req.headers[name] = value;
            }
            pos = next;
        }
        return req;
    }

    std::function<Reply(const Request&)> handler_;
    SslCtx ctx_;
    testsupport::BoundSocket listener_;
    int wake_[2] = {-1, -1};
    unsigned short port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> current_{-1};
    std::atomic<int> accepted_{0};
    std::thread thread_;
};

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
    const auto refusing = testsupport::bind_loopback(/*listen=*/false);
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
