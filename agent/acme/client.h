// One ACME server (RFC 8555): the directory, a nonce pool fed by every Replay-Nonce,
// signed POST / POST-as-GET through a keystore::Key, problem documents turned into
// errors, badNonce retried with the nonce that came with the error, bounded polling.
#pragma once

#include "acme/http.h"
#include "keystore/key.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace acme {

using base::Result;

// An ACME problem document (RFC 7807, RFC 8555 §6.7) turned into an error: code
// Errc::server (Errc::protocol for a malformed reply), `where` holds the problem type
// URN, `message` the detail and any subproblems.
base::Error problem_error(long status, const std::string& body);
// True for a request that timed out (the server may or may not have acted on it).
bool timed_out(const base::Error& error);
// The short type of a problem error: "badNonce" for urn:ietf:params:acme:error:badNonce.
std::string problem_type(const base::Error& error);

struct Directory {
    std::string url;
    std::string new_nonce, new_account, new_order, revoke_cert, key_change;
    std::optional<std::string> new_authz, renewal_info;
    std::optional<std::string> terms_of_service;
    bool eab_required = false;
    nlohmann::json profiles;  // meta.profiles, or null
};

// Client::connect's reading of the directory document fetched from `directory_url`:
// newNonce, newAccount and newOrder must be strings on the directory's own origin; the
// other entries are optional. Errc::protocol otherwise. Public for the fuzz target.
Result<Directory> parse_directory(const std::string& directory_url, std::string_view body);

// What the client tells an observer (the daemon's metrics) about its traffic: no body,
// nonce or header, only what a person or a metric may see. `endpoint` is one of
// directory, newNonce, newAccount, account, keyChange, newOrder, order, authz, challenge,
// finalize, certificate, renewalInfo, revokeCert or other (Client::endpoint_of).
struct RequestEvent {
    std::string_view method;  // GET, HEAD, POST
    std::string_view endpoint;
    std::string_view path;       // the URL's path, without scheme, host or query
    std::optional<long> status;  // nullopt: no response (network error, timeout)
    std::chrono::duration<double> took;
};
// A request about to be sent again: `reason` is bad_nonce, rate_limited, server_error,
// network or timeout; `waited` the pause before it, `server_asked` when that was the
// server's Retry-After.
struct RetryEvent {
    std::string_view endpoint;
    std::string_view reason;
    std::chrono::duration<double> waited;
    bool server_asked = false;
};
// Called on the requesting thread (concurrent orders: several at once); empty: nobody.
struct ClientObserver {
    std::function<void(const RequestEvent&)> request;
    std::function<void(const RetryEvent&)> retry;
};

struct ClientOptions {
    HttpOptions http;
    ClientObserver observer;
    int bad_nonce_retries = 20;  // survives a CA that rejects half of all nonces
    std::chrono::seconds retry_after_cap{30};
    std::chrono::seconds poll_deadline{180};
    // How long an order may stay `processing` after finalize (slow CAs take minutes).
    std::chrono::seconds order_deadline{900};
    // 5xx, 429 and dropped connections: retried with jittered exponential backoff (or the
    // server's Retry-After), at most this often and within this time per request.
    int transient_retries = 8;
    std::chrono::seconds retry_deadline{90};
};

// Thread-safe: concurrent orders share one Client. Each request borrows an Http (a curl
// handle with its own keep-alive connection) from a pool that grows to the number of
// requests in flight; the handles share DNS answers and TLS sessions, and every Replay-Nonce
// goes into one pool.
// Which failures post() sends a request again for.
enum class Resend {
    // 5xx, 429 and dropped connections; a POST-as-GET also after a timeout.
    transient,
    // Never (finalize: not idempotent). A failure is returned at once and the caller looks at
    // the real state of what it asked for.
    never,
};

class Client {
  public:
    // Fetches the directory. Errc::network / Errc::protocol.
    static Result<std::unique_ptr<Client>> connect(const std::string& directory_url,
                                                   ClientOptions options);

    [[nodiscard]] const Directory& directory() const { return dir_; }

    // A JWS-signed POST (payload "" = POST-as-GET). `kid` is the account URL, or nullopt
    // to send the key's jwk. Non-2xx answers become problem errors. A Retry-After longer
    // than the cap ends the request at once: the error carries `retry_at`.
    Result<HttpResponse> post(const std::string& url, const keystore::Key& key,
                              const std::optional<std::string>& kid, const std::string& payload,
                              std::size_t max_body = 0, Resend resend = Resend::transient);
    // post() and parse the body as a JSON object.
    Result<nlohmann::json> post_json(const std::string& url, const keystore::Key& key,
                                     const std::optional<std::string>& kid,
                                     const std::string& payload, HttpResponse* response = nullptr,
                                     Resend resend = Resend::transient);

    // An unauthenticated GET (renewalInfo, RFC 9773) of a URL on the server's origin.
    Result<HttpResponse> get(const std::string& url);

    // The wait the server asked for in Retry-After (seconds or an HTTP date), capped;
    // `fallback` when it sent none or garbage.
    std::chrono::milliseconds retry_after(const HttpResponse& r,
                                          std::chrono::milliseconds fallback) const;

    // POST-as-GET `url` until `done(resource)` is true: the first poll at once, then from
    // 10 ms doubling up to 2 s, or the server's Retry-After (capped); Errc::network with
    // "timed out" past `limit` (0: the options' poll deadline).
    Result<nlohmann::json> poll(const std::string& url, const keystore::Key& key,
                                const std::string& kid,
                                const std::function<bool(const nlohmann::json&)>& done,
                                std::chrono::seconds limit = std::chrono::seconds(0));

    // True when `url` shares the directory's scheme, host and port (SECURITY.md rule 6).
    [[nodiscard]] bool same_origin(const std::string& url) const;
    Result<void> check_origin(const std::string& url, const std::string& what) const;
    // scheme://host[:port] of the directory (origin_of).
    [[nodiscard]] const std::string& origin() const { return origin_; }

    // Requests sent and connections opened so far, over every pooled handle.
    [[nodiscard]] unsigned long requests() const;
    [[nodiscard]] long connections() const;
    [[nodiscard]] const ClientOptions& options() const { return options_; }

    // The ACME resource `url` is (RequestEvent::endpoint): the directory's own entries by
    // their URL, the server-made ones (account, order, authz, ...) by their path's words,
    // "other" when neither tells.
    [[nodiscard]] std::string_view endpoint_of(const std::string& url) const;

  private:
    explicit Client(ClientOptions options) : options_(std::move(options)) {}
    // Runs `send(Http&)` on a handle borrowed from the pool.
    template <typename Send>
    auto with_http(Send&& send);
    Result<std::string> nonce();
    std::optional<std::chrono::milliseconds> server_wait(const HttpResponse& r) const;
    // The server's Retry-After when it is longer than the cap: not waited for in process.
    std::optional<std::chrono::milliseconds> long_wait(const HttpResponse& r) const;
    // Runs `send(Http&)` on a pooled handle, retrying transient failures (5xx, 429, network)
    // with backoff within the options' bounds; keeps the nonce of every response.
    template <typename Send>
    Result<HttpResponse> with_retries(std::string_view method, const std::string& url, Send&& send);
    // Tells the observer and the debug log about one request sent at `start`.
    void observe(std::string_view method, const std::string& url, const Result<HttpResponse>& r,
                 std::chrono::steady_clock::time_point start) const;
    void keep_nonce(const HttpResponse& r);

    ClientOptions options_;
    HttpShare share_;           // before the handles: they go first
    mutable std::mutex mutex_;  // guards the pool and nonces_
    std::vector<std::unique_ptr<Http>> https_;
    std::vector<Http*> idle_;
    Directory dir_;  // set once by connect(), read-only afterwards
    std::string origin_;
    std::deque<std::string> nonces_;
};

// Server JSON is untrusted: these read a member without throwing, giving `fallback` when
// it is absent or of another type.
std::string json_string(const nlohmann::json& j, const char* key, const std::string& fallback = "");
bool json_bool(const nlohmann::json& j, const char* key, bool fallback = false);

// A Retry-After value (RFC 9110 §10.2.3: delay-seconds or an HTTP-date) as a wait from
// `now`, not capped (negative dates give 0); nullopt for garbage.
std::optional<std::chrono::milliseconds> parse_retry_after(
    const std::string& value, std::chrono::system_clock::time_point now);

// scheme://host[:port] of an absolute URL, lower-cased scheme and host; "" if not absolute.
std::string origin_of(const std::string& url);
// Errc::protocol (where = `what`) unless `url` is on `origin` (SECURITY.md rule 6).
Result<void> check_origin(const std::string& origin, const std::string& url,
                          const std::string& what);

}  // namespace acme
