// Test support: an in-process HTTPS server on loopback for tests of the ACME client.
// OpenSSL on a thread with a CA and leaf made at test time; it listens before the
// constructor returns, so there is nothing to wait for. Header-only, so that a test links
// only the library it tests (plus OpenSSL::SSL).
#pragma once

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
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

namespace testsupport {

using base::Deleter;
using PKey = base::ossl::PKey;
using Cert = base::ossl::X509Ptr;
using SslCtx = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX_free>>;
using Ssl = std::unique_ptr<SSL, Deleter<SSL_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO_free>>;

// A certificate as PEM text.
inline std::string pem_of(X509* cert) {
    Bio bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(bio.get(), cert);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return {data, static_cast<std::size_t>(len)};
}

// The server writes to sockets the client may have abandoned (that is the point of the
// body-cap tests); a SIGPIPE would kill the test binary.
inline const bool kIgnoreSigpipe = [] { return std::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();

inline Cert make_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca) {
    static std::atomic<long> serial{1};
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
    TempDir dir{"acme-agent-test-http"};
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
        : handler_(std::move(handler)), listener_(bind_loopback(/*listen=*/true)) {
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
    BoundSocket listener_;
    int wake_[2] = {-1, -1};
    unsigned short port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> current_{-1};
    std::atomic<int> accepted_{0};
    std::thread thread_;
};

}  // namespace testsupport
