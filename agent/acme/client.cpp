#include "acme/client.h"

#include "base/bytes.h"
#include "base/log.h"
#include "jose/jws.h"

#include <algorithm>
#include <ctime>
#include <random>
#include <thread>

namespace acme {

using base::Errc;
using base::fail;
using nlohmann::json;

namespace {
constexpr std::size_t kMaxNonces = 16;
constexpr std::size_t kMaxNonceLength = 256;

std::optional<std::string> str(const json& j, const char* key) {
    if (j.is_object() && j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
    return std::nullopt;
}
// Faults worth another try: the server is overloaded or restarting, or the connection was
// dropped. A refused connection or a timeout fails at once (a timeout is retried only for a
// request without side effects, see timed_out); so does a TLS handshake or certificate
// failure: it is not temporary (a wrong CA, an old TLS version, an interception proxy).
bool transient(const base::Error& e) {
    if (e.code != Errc::network || !e.native) return false;
    switch (*e.native) {
        case 18:  // CURLE_PARTIAL_FILE
        case 52:  // CURLE_GOT_NOTHING
        case 55:  // CURLE_SEND_ERROR
        case 56:  // CURLE_RECV_ERROR
            return true;
        default:
            return false;
    }
}
std::string utc(std::chrono::system_clock::time_point t) {
    const std::time_t tt = std::chrono::system_clock::to_time_t(t);
    struct tm tm{};
    char buf[32] = {};
    (void)std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
    return buf;
}
// The path of an absolute URL, without its query or fragment: what the debug log shows.
std::string_view path_of(std::string_view url) {
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) return url.substr(0, url.find_first_of("?#"));
    const auto start = url.find('/', scheme_end + 3);
    if (start == std::string_view::npos) return "/";
    const auto end = url.find_first_of("?#", start);
    return url.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}
// The server asked to wait `wait`: the error says until when, and carries it for `run`.
void retry_later(base::Error& e, std::chrono::milliseconds wait) {
    using namespace std::chrono;
    const auto at = system_clock::now() + ceil<seconds>(wait);
    e.retry_at = duration_cast<seconds>(at.time_since_epoch()).count();
    const auto mins = duration_cast<minutes>(wait).count();
    e.message += "; the CA asks to retry after " + utc(at) + " (in " +
                 (mins >= 1 ? std::to_string(mins) + " min"
                            : std::to_string(duration_cast<seconds>(wait).count()) + " s") +
                 ")";
}
bool transient(long status) {
    return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

// Bounded retries of one request: jittered exponential backoff, or the server's wait.
class Retrier {
  public:
    Retrier(const ClientOptions& o, std::string what, std::string_view endpoint)
        : what_(std::move(what)),
          endpoint_(endpoint),
          observer_(o.observer),
          left_(o.transient_retries),
          deadline_(std::chrono::steady_clock::now() + o.retry_deadline) {}

    // After a failure `e`: another try (true, after a wait) when it is worth one.
    // `timeouts_too`: the request has no side effect, so a timeout is retried as well, at
    // most twice (a server that stalls three times in a row is not coming back soon).
    bool again_after(const base::Error& e, bool timeouts_too) {
        if (transient(e)) return again("network", e.message, std::nullopt);
        if (timeouts_too && timed_out(e) && timeouts_++ < 2)
            return again("timeout", e.message, std::nullopt);
        return false;
    }

    // After HTTP `status` (429 or 5xx): another try (true, after the wait) when allowed.
    bool again_after(long status, std::optional<std::chrono::milliseconds> server_wait) {
        return again(status == 429 ? "rate_limited" : "server_error",
                     "HTTP " + std::to_string(status), server_wait);
    }

  private:
    // Waits and returns true when another try is allowed; `reason` as RetryEvent's.
    bool again(std::string_view reason, const std::string& why,
               std::optional<std::chrono::milliseconds> server_wait) {
        using namespace std::chrono;
        if (left_-- <= 0) return false;
        static thread_local std::mt19937 rng{std::random_device{}()};
        const milliseconds jittered(
            std::uniform_int_distribution<long>(backoff_.count() / 2, backoff_.count())(rng));
        const milliseconds wait = server_wait ? *server_wait : jittered;
        backoff_ = std::min(backoff_ * 2, milliseconds(8000));
        if (steady_clock::now() + wait > deadline_) return false;
        base::log::debug(what_ + ": " + why + "; retrying in " + std::to_string(wait.count()) +
                         " ms (" + std::to_string(left_) + " tries left)");
        if (observer_.retry) observer_.retry({endpoint_, reason, wait, server_wait.has_value()});
        std::this_thread::sleep_for(wait);  // the server asked for it, or backoff: nothing to poll
        return true;
    }

    std::string what_;
    std::string_view endpoint_;
    const ClientObserver& observer_;
    int left_;
    std::chrono::steady_clock::time_point deadline_;
    std::chrono::milliseconds backoff_{250};
    int timeouts_ = 0;
};
}  // namespace

std::string json_string(const json& j, const char* key, const std::string& fallback) {
    return str(j, key).value_or(fallback);
}

bool json_bool(const json& j, const char* key, bool fallback) {
    if (j.is_object() && j.contains(key) && j[key].is_boolean()) return j[key].get<bool>();
    return fallback;
}

std::string origin_of(const std::string& url) {
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string::npos) return "";
    const auto host_end = url.find_first_of("/?#", scheme_end + 3);
    std::string origin = base::ascii_lower(url.substr(0, host_end));
    const std::string scheme = origin.substr(0, scheme_end);
    if (scheme == "https" && origin.ends_with(":443")) origin.resize(origin.size() - 4);
    return origin;
}

base::Error problem_error(long status, const std::string& body) {
    auto j = json::parse(body, nullptr, false);
    std::string type = str(j, "type").value_or("");
    std::string detail = str(j, "detail").value_or("");
    if (type.empty() && detail.empty())
        return base::Error{
            Errc::protocol, "HTTP " + std::to_string(status),
            "the server answered " + std::to_string(status) + " without a problem document",
            std::nullopt};
    if (j.contains("subproblems") && j["subproblems"].is_array())
        for (auto& sp : j["subproblems"]) {
            detail += "; " + str(sp, "type").value_or("?");
            if (sp.contains("identifier") && sp["identifier"].is_object())
                detail += " (" + str(sp["identifier"], "value").value_or("") + ")";
            detail += ": " + str(sp, "detail").value_or("");
        }
    if (detail.size() > 2048) detail.resize(2048);
    // RFC 7807 `instance`: where the CA explains this very occurrence.
    if (auto instance = str(j, "instance"); instance && !instance->empty())
        detail += " (see " + instance->substr(0, 300) + ")";
    // Server text starts no line of its own in the agent's output (SECURITY.md rule 19):
    // line breaks become spaces here; every other control character is escaped where the
    // message is printed, and --json carries it as sent.
    for (std::string* s : {&type, &detail})
        std::ranges::replace_if(*s, [](char c) { return c == '\n' || c == '\r'; }, ' ');
    if (type.size() > 300) type.resize(300);
    return base::Error{Errc::server, type, detail, std::nullopt};
}

bool timed_out(const base::Error& e) {
    return e.code == Errc::network && e.native && *e.native == 28;  // CURLE_OPERATION_TIMEDOUT
}

std::string problem_type(const base::Error& error) {
    constexpr std::string_view prefix = "urn:ietf:params:acme:error:";
    if (error.code != Errc::server || !error.where.starts_with(prefix)) return "";
    return error.where.substr(prefix.size());
}

template <typename Send>
auto Client::with_http(Send&& send) {
    Http* h = nullptr;
    {
        std::lock_guard lock(mutex_);
        if (idle_.empty()) {
            https_.push_back(std::make_unique<Http>(options_.http, &share_));
            idle_.push_back(https_.back().get());
        }
        h = idle_.back();  // the most recently used: its connection is the likeliest alive
        idle_.pop_back();
    }
    // NOLINTNEXTLINE(cppcoreguidelines-special-member-functions): an aggregate, never copied
    struct Return {
        Client* c;
        Http* h;
        ~Return() {
            std::lock_guard lock(c->mutex_);
            c->idle_.push_back(h);
        }
    } give_back{this, h};
    return send(*h);
}

unsigned long Client::requests() const {
    std::lock_guard lock(mutex_);
    unsigned long n = 0;
    for (const auto& h : https_) n += h->requests();
    return n;
}

long Client::connections() const {
    std::lock_guard lock(mutex_);
    long n = 0;
    for (const auto& h : https_) n += h->connections();
    return n;
}

Result<Directory> parse_directory(const std::string& directory_url, std::string_view body) {
    auto j = json::parse(body, nullptr, false);
    Directory d;
    d.url = directory_url;
    auto need = [&](const char* key, std::string& out) {
        auto v = str(j, key);
        if (v) out = *v;
        return v.has_value();
    };
    if (j.is_discarded() || !j.is_object() || !need("newNonce", d.new_nonce) ||
        !need("newAccount", d.new_account) || !need("newOrder", d.new_order))
        return fail(Errc::protocol, "directory",
                    directory_url + " is not an ACME directory (no newNonce/newAccount/newOrder)");
    need("revokeCert", d.revoke_cert);
    need("keyChange", d.key_change);
    d.new_authz = str(j, "newAuthz");
    d.renewal_info = str(j, "renewalInfo");
    if (j.contains("meta") && j["meta"].is_object()) {
        const json& meta = j["meta"];
        d.terms_of_service = str(meta, "termsOfService");
        d.eab_required = json_bool(meta, "externalAccountRequired");
        if (meta.contains("profiles")) d.profiles = meta["profiles"];
    }
    // The other entries are checked where they are used (post() and get() refuse any URL
    // off the origin), so a directory with an odd optional entry still works for orders.
    const std::string origin = origin_of(directory_url);
    for (const std::string* u : {&d.new_nonce, &d.new_account, &d.new_order})
        if (origin.empty() || origin_of(*u) != origin)
            return fail(Errc::protocol, "directory entry",
                        "the server sent a URL outside its own origin (" + origin +
                            "): " + u->substr(0, 200));
    return d;
}

Result<std::unique_ptr<Client>> Client::connect(const std::string& directory_url,
                                                ClientOptions options) {
    std::unique_ptr<Client> c(new Client(std::move(options)));
    c->dir_.url = directory_url;  // endpoint_of() names it "directory" already
    auto r = c->with_retries("GET", directory_url, [&](Http& h) { return h.get(directory_url); });
    if (!r) return std::unexpected(r.error());
    if (r->status != 200)
        return fail(Errc::protocol, "directory",
                    directory_url + " answered HTTP " + std::to_string(r->status) +
                        "; is this an ACME directory URL?");
    auto d = parse_directory(directory_url, r->body);
    if (!d) return std::unexpected(d.error());
    c->dir_ = std::move(*d);
    c->origin_ = origin_of(directory_url);
    c->keep_nonce(*r);
    return c;
}

bool Client::same_origin(const std::string& url) const {
    return origin_of(url) == origin_;
}

Result<void> check_origin(const std::string& origin, const std::string& url,
                          const std::string& what) {
    if (!origin.empty() && origin_of(url) == origin) return {};
    return fail(
        Errc::protocol, what,
        "the server sent a URL outside its own origin (" + origin + "): " + url.substr(0, 200));
}

Result<void> Client::check_origin(const std::string& url, const std::string& what) const {
    return acme::check_origin(origin_, url, what);
}

void Client::keep_nonce(const HttpResponse& r) {
    if (!r.replay_nonce || r.replay_nonce->empty() || r.replay_nonce->size() > kMaxNonceLength)
        return;
    // RFC 8555 §6.5.1: a nonce is base64url.
    if (!std::all_of(r.replay_nonce->begin(), r.replay_nonce->end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_'; }))
        return;
    std::lock_guard lock(mutex_);
    nonces_.push_back(*r.replay_nonce);
    if (nonces_.size() > kMaxNonces) nonces_.pop_front();
}

Result<std::string> Client::nonce() {
    for (int tries = 0;; ++tries) {
        {
            std::lock_guard lock(mutex_);
            if (!nonces_.empty()) {
                std::string n = std::move(nonces_.back());  // the newest: likeliest fresh
                nonces_.pop_back();
                return n;
            }
        }
        // Another thread may take the nonce this HEAD brings; then ask again (bounded).
        if (tries == 4) return fail(Errc::protocol, "newNonce", "the server sent no Replay-Nonce");
        auto r =
            with_retries("HEAD", dir_.new_nonce, [&](Http& h) { return h.head(dir_.new_nonce); });
        if (!r) return std::unexpected(r.error());
        if (!r->replay_nonce)
            return fail(Errc::protocol, "newNonce", "the server sent no Replay-Nonce");
    }
}

std::optional<std::chrono::milliseconds> parse_retry_after(
    const std::string& v, std::chrono::system_clock::time_point now) {
    using namespace std::chrono;
    if (!v.empty() && v.size() < 10 && std::ranges::all_of(v, ::isdigit))
        return seconds(std::stol(v));
    struct tm tm{};
    const char* end = strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end != '\0') return std::nullopt;
    return std::max(milliseconds(0),
                    duration_cast<milliseconds>(system_clock::from_time_t(timegm(&tm)) - now));
}

std::optional<std::chrono::milliseconds> Client::server_wait(const HttpResponse& r) const {
    if (!r.retry_after) return std::nullopt;
    auto wait = parse_retry_after(*r.retry_after, std::chrono::system_clock::now());
    if (!wait) return std::nullopt;  // garbage: ignored
    return std::min(
        *wait, std::chrono::duration_cast<std::chrono::milliseconds>(options_.retry_after_cap));
}

std::optional<std::chrono::milliseconds> Client::long_wait(const HttpResponse& r) const {
    if (!r.retry_after) return std::nullopt;
    auto wait = parse_retry_after(*r.retry_after, std::chrono::system_clock::now());
    if (!wait || *wait <= options_.retry_after_cap) return std::nullopt;
    return wait;
}

std::chrono::milliseconds Client::retry_after(const HttpResponse& r,
                                              std::chrono::milliseconds fallback) const {
    return server_wait(r).value_or(fallback);
}

Result<HttpResponse> Client::post(const std::string& url, const keystore::Key& key,
                                  const std::optional<std::string>& kid, const std::string& payload,
                                  std::size_t max_body, Resend resend) {
    if (auto ok = check_origin(url, "request"); !ok) return std::unexpected(ok.error());
    const std::string_view endpoint = endpoint_of(url);
    Retrier retry(options_, "POST " + url, endpoint);
    const bool resend_ok = resend == Resend::transient;
    for (int bad_nonces = 0;;) {
        auto n = nonce();
        if (!n) return std::unexpected(n.error());
        auto jws = jose::sign(key, {url, *n, kid}, payload);
        if (!jws) return std::unexpected(jws.error());
        const auto start = std::chrono::steady_clock::now();
        auto r = with_http(
            [&](Http& h) { return h.post(url, *jws, "application/jose+json", max_body); });
        observe("POST", url, r, start);
        if (!r) {
            // A POST-as-GET has no side effect: after a timeout it is sent again, with a fresh
            // nonce, within the retry deadline.
            if (resend_ok && retry.again_after(r.error(), payload.empty())) continue;
            return std::unexpected(r.error());
        }
        keep_nonce(*r);
        if (r->status >= 200 && r->status < 300) return r;
        base::Error e = problem_error(r->status, r->body);
        if (problem_type(e) == "userActionRequired")  // RFC 8555 §7.3.3: the new terms
            for (const auto& [link, rel] : parse_links(r->links))
                if (rel == "terms-of-service")
                    e.message += "; the CA's terms of service: " + link.substr(0, 300);
        if (problem_type(e) == "badNonce") {
            if (bad_nonces++ < options_.bad_nonce_retries) {
                base::log::debug("badNonce from " + url + "; retrying with the nonce it sent");
                if (options_.observer.retry)
                    options_.observer.retry({endpoint, "bad_nonce", {}, false});
                continue;
            }
            e.message += " (gave up after " + std::to_string(bad_nonces) + " nonces were refused)";
        } else if (transient(r->status) || problem_type(e) == "rateLimited") {
            if (auto wait = long_wait(*r)) {
                retry_later(e, *wait);  // hours, not seconds: end here, say when
                return std::unexpected(std::move(e));
            }
            if (resend_ok) {
                if (retry.again_after(r->status, server_wait(*r))) continue;
                // Out of tries: the last wait the CA asked for goes with the error.
                if (auto wait = server_wait(*r)) retry_later(e, *wait);
            }
        }
        return std::unexpected(std::move(e));
    }
}

template <typename Send>
Result<HttpResponse> Client::with_retries(std::string_view method, const std::string& url,
                                          Send&& send) {
    Retrier retry(options_, std::string(method) + " " + url, endpoint_of(url));
    for (;;) {
        const auto start = std::chrono::steady_clock::now();
        auto r = with_http(send);
        observe(method, url, r, start);
        if (!r) {
            // Only GET and HEAD come here: without side effects, so a timeout is retried too.
            if (retry.again_after(r.error(), true)) continue;
            return r;
        }
        keep_nonce(*r);
        if (transient(r->status) && !long_wait(*r) && retry.again_after(r->status, server_wait(*r)))
            continue;
        return r;
    }
}

Result<HttpResponse> Client::get(const std::string& url) {
    if (auto ok = check_origin(url, "request"); !ok) return std::unexpected(ok.error());
    auto r = with_retries("GET", url, [&](Http& h) { return h.get(url); });
    if (!r) return r;
    if (r->status < 200 || r->status >= 300) {
        base::Error e = problem_error(r->status, r->body);
        if (auto wait = long_wait(*r)) retry_later(e, *wait);
        return std::unexpected(std::move(e));
    }
    return r;
}

std::string_view Client::endpoint_of(const std::string& url) const {
    const std::pair<const std::string*, std::string_view> entries[] = {
        {&dir_.url, "directory"},          {&dir_.new_nonce, "newNonce"},
        {&dir_.new_account, "newAccount"}, {&dir_.new_order, "newOrder"},
        {&dir_.key_change, "keyChange"},   {&dir_.revoke_cert, "revokeCert"}};
    for (const auto& [entry, name] : entries)
        if (!entry->empty() && url == *entry) return name;
    if (dir_.renewal_info && !dir_.renewal_info->empty() && url.starts_with(*dir_.renewal_info))
        return "renewalInfo";
    // The server names the rest (RFC 8555 §7.1); the usual words of Boulder and Pebble paths
    // (/acme/finalize/, /finalize-order/, /authz/, /authZ/, /chall/, /cert/, /acct/,
    // /my-account/, /order/), the most specific first.
    const std::string path = base::ascii_lower(path_of(url));
    const std::pair<std::string_view, std::string_view> words[] = {
        {"finalize", "finalize"}, {"authz", "authz"},        {"chal", "challenge"},
        {"cert", "certificate"},  {"acct", "account"},       {"account", "account"},
        {"order", "order"},       {"renewal", "renewalInfo"}};
    for (const auto& [word, name] : words)
        if (path.find(word) != std::string::npos) return name;
    return "other";
}

void Client::observe(std::string_view method, const std::string& url, const Result<HttpResponse>& r,
                     std::chrono::steady_clock::time_point start) const {
    using namespace std::chrono;
    const duration<double> took = steady_clock::now() - start;
    const std::optional<long> status = r ? std::optional<long>(r->status) : std::nullopt;
    const std::string_view path = path_of(url);
    if (base::log::level() >= base::log::Level::debug)
        base::log::debug(std::string(method) + " " + std::string(path) + " -> " +
                         (status ? std::to_string(*status) : "no response") + " (" +
                         std::to_string(duration_cast<milliseconds>(took).count()) + " ms)");
    if (options_.observer.request)
        options_.observer.request({method, endpoint_of(url), path, status, took});
}

Result<json> Client::post_json(const std::string& url, const keystore::Key& key,
                               const std::optional<std::string>& kid, const std::string& payload,
                               HttpResponse* response, Resend resend) {
    auto r = post(url, key, kid, payload, 0, resend);
    if (!r) return std::unexpected(r.error());
    auto j = json::parse(r->body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return fail(Errc::protocol, url, "the server's answer is not a JSON object");
    if (response) *response = std::move(*r);
    return j;
}

Result<json> Client::poll(const std::string& url, const keystore::Key& key, const std::string& kid,
                          const std::function<bool(const json&)>& done,
                          std::chrono::seconds limit) {
    using namespace std::chrono;
    if (limit.count() == 0) limit = options_.poll_deadline;
    const auto deadline = steady_clock::now() + limit;
    // #20.3: a validation usually completes within tens of ms of the answer, so the first
    // wait is short and grows geometrically; the server's Retry-After, when it gives one,
    // is never undercut; the deadline bounds the total.
    milliseconds backoff(10);
    for (;;) {
        HttpResponse r;
        auto j = post_json(url, key, kid, "", &r);
        if (!j) return j;
        if (done(*j)) return j;
        const milliseconds wait = retry_after(r, backoff);
        if (steady_clock::now() + wait > deadline)
            return fail(Errc::network, url,
                        "timed out after " + std::to_string(limit.count()) +
                            " s waiting for status '" + json_string(*j, "status", "?") +
                            "' to change");
        std::this_thread::sleep_for(wait);  // the server asked us to wait: nothing to poll on
        backoff = std::min(backoff * 2, milliseconds(2000));
    }
}

}  // namespace acme
