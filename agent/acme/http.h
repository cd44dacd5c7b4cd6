// HTTPS transport for the ACME client over libcurl: one handle reused for every request
// (keep-alive, one TLS connection, the trust store loaded once), bounded everything
// (SECURITY.md rules 5-7). An Http is not thread-safe: one per thread at a time; several
// may share DNS answers and TLS sessions through an HttpShare.
#pragma once

#include "base/error.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace acme {

using base::Result;

struct HttpOptions {
    std::string ca_file;  // extra trust anchor (PEM) for test CAs; empty: system store only
    std::size_t max_body = 64 * 1024;  // cap enforced in the write callback
    std::chrono::milliseconds connect_timeout{10'000};
    std::chrono::milliseconds total_timeout{60'000};
    long low_speed_bytes = 1;     // abort when below this many bytes/s ...
    long low_speed_seconds = 15;  // ... for this long
    std::string user_agent = "acme-agent";
};

struct HttpResponse {
    long status = 0;
    std::string body;
    std::string content_type;  // lower-cased media type, parameters dropped
    std::optional<std::string> location;
    std::optional<std::string> replay_nonce;
    std::optional<std::string> retry_after;  // raw header value
    std::vector<std::string> links;          // every Link header value, raw
};

// What several Http handles (one per worker thread) share: the DNS cache and TLS sessions
// (so a second connection resumes instead of a full handshake). Thread-safe.
class HttpShare {
  public:
    HttpShare();
    ~HttpShare();
    HttpShare(const HttpShare&) = delete;
    HttpShare& operator=(const HttpShare&) = delete;

  private:
    friend class Http;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

class Http {
  public:
    // `share`, when given, must outlive this Http.
    explicit Http(HttpOptions options, HttpShare* share = nullptr);
    ~Http();
    Http(const Http&) = delete;
    Http& operator=(const Http&) = delete;

    // Errc::network for connect/TLS/timeouts (message says which, and suggests --ca-file
    // on a certificate verification failure); Errc::protocol when the body exceeds the cap
    // (`max_body` overrides the default for this request) or a header is oversized.
    // Redirects are never followed; only https:// URLs are accepted (Errc::usage).
    Result<HttpResponse> get(const std::string& url, std::size_t max_body = 0);
    Result<HttpResponse> head(const std::string& url);
    Result<HttpResponse> post(const std::string& url, const std::string& body,
                              const std::string& content_type = "application/jose+json",
                              std::size_t max_body = 0);

    // Requests sent and connections opened since construction (for benchmarks / -v).
    [[nodiscard]] unsigned long requests() const { return requests_; }
    [[nodiscard]] long connections() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    unsigned long requests_ = 0;
};

// Parses a Link header value list into (url, rel) pairs: `<url>;rel="up", <url2>;rel=alternate`.
std::vector<std::pair<std::string, std::string>> parse_links(
    const std::vector<std::string>& values);

}  // namespace acme
