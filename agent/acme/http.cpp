#include "acme/http.h"

#include "base/bytes.h"
#include "base/deleter.h"
#include "base/files.h"
#include "base/log.h"
#include "base/ossl.h"

#include <curl/curl.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <sstream>
#include <string_view>

namespace acme {

using base::Errc;
using base::Error;
using base::fail;

namespace {

constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
constexpr const char* kSystemCertDir = "/etc/ssl/certs";

using CurlEasy = std::unique_ptr<CURL, base::Deleter<curl_easy_cleanup>>;
using CurlSlist = std::unique_ptr<curl_slist, base::Deleter<curl_slist_free_all>>;
using CurlUrl = std::unique_ptr<CURLU, base::Deleter<curl_url_cleanup>>;
using CurlString = std::unique_ptr<char, base::Deleter<curl_free>>;

// curl_global_init is process-wide state; libcurl 7.88 still wants it done once, before
// the first handle, and never undone while handles may live (so no cleanup at exit).
void global_init_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        const base::log::TraceSpan trace("curl global init");
        curl_global_init(CURL_GLOBAL_DEFAULT);
    });
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::ranges::equal(a, b, [](unsigned char x, unsigned char y) {
               return std::tolower(x) == std::tolower(y);
           });
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// The test CA of --ca-file, parsed once. It is added to each TLS context's store, next to
// the system roots, which are looked up by hash in /etc/ssl/certs only when a chain needs
// one: reading and parsing the whole system bundle costs ~50 ms of CPU per process.
Result<std::vector<base::ossl::X509Ptr>> load_extra_roots(const std::string& ca_file) {
    const base::log::TraceSpan trace("trust store: read --ca-file");
    auto pem = base::read_file(ca_file, 16 << 20);  // a bundle of every public root is < 1 MiB
    if (!pem) return fail(Errc::io, "--ca-file " + ca_file, "cannot read the CA file");
    base::ossl::Bio bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
    std::vector<base::ossl::X509Ptr> roots;
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr))
        roots.emplace_back(cert);
    ERR_clear_error();
    if (roots.empty())
        return fail(Errc::usage, "--ca-file " + ca_file, "the file holds no PEM certificate");
    return roots;
}

std::string url_host(const std::string& url) {
    CurlUrl u(curl_url());
    if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return url;
    char* raw = nullptr;
    if (curl_url_get(u.get(), CURLUPART_HOST, &raw, 0) != CURLUE_OK) return url;
    CurlString host(raw);
    std::string out = host.get();
    char* raw_port = nullptr;
    if (curl_url_get(u.get(), CURLUPART_PORT, &raw_port, 0) == CURLUE_OK) {
        CurlString port(raw_port);
        out += ':';
        out += port.get();
    }
    return out;
}

Result<void> check_url(const std::string& url) {
    if (!starts_with_nocase(url, "https://")) {
        return fail(Errc::usage, url, "only https:// URLs are allowed");
    }
    CurlUrl u(curl_url());
    if (!u) return fail(Errc::internal, "curl_url", "out of memory");
    if (auto rc = curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0); rc != CURLUE_OK) {
        return fail(Errc::usage, url, std::string("malformed URL: ") + curl_url_strerror(rc));
    }
    return {};
}

}  // namespace

struct HttpShare::Impl {
    CURLSH* handle = nullptr;
    std::mutex locks[CURL_LOCK_DATA_LAST];

    static void lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
        static_cast<Impl*>(user)->locks[data].lock();
    }
    static void unlock(CURL*, curl_lock_data data, void* user) {
        static_cast<Impl*>(user)->locks[data].unlock();
    }
};

HttpShare::HttpShare() : impl_(std::make_unique<Impl>()) {
    global_init_once();
    impl_->handle = curl_share_init();
    if (!impl_->handle) return;  // each Http then works alone
    curl_share_setopt(impl_->handle, CURLSHOPT_LOCKFUNC, &Impl::lock);
    curl_share_setopt(impl_->handle, CURLSHOPT_UNLOCKFUNC, &Impl::unlock);
    curl_share_setopt(impl_->handle, CURLSHOPT_USERDATA, impl_.get());
    curl_share_setopt(impl_->handle, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(impl_->handle, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
}

HttpShare::~HttpShare() {
    if (impl_->handle) curl_share_cleanup(impl_->handle);
}

struct Http::Impl {
    HttpOptions options;
    CurlEasy handle;
    char error_buffer[CURL_ERROR_SIZE] = {};
    std::optional<Error> setup_error;  // the constructor cannot return it; every request does
    std::vector<base::ossl::X509Ptr> extra_roots;  // --ca-file, added to every TLS context
    long connections = 0;

    // Per-request state, reset by begin().
    CurlSlist headers;
    HttpResponse response;
    std::size_t body_cap = 0;
    std::size_t header_bytes = 0;
    bool body_overflow = false;
    bool header_overflow = false;

    explicit Impl(HttpOptions o) : options(std::move(o)) {}

    template <typename T>
    void set(CURLoption opt, T value) {
        // Setting a known option on a valid handle fails only on out-of-memory. Rather than
        // check every call, the first failure poisons the handle and every request reports it.
        if (auto rc = curl_easy_setopt(handle.get(), opt, value); rc != CURLE_OK && !setup_error) {
            setup_error = Error{Errc::internal, "curl_easy_setopt", curl_easy_strerror(rc),
                                static_cast<std::uint64_t>(rc)};
        }
    }

    void configure() {
        set(CURLOPT_ERRORBUFFER, error_buffer);
        set(CURLOPT_PROTOCOLS_STR, "https");
        set(CURLOPT_REDIR_PROTOCOLS_STR, "https");
        set(CURLOPT_FOLLOWLOCATION, 0L);
        set(CURLOPT_SSL_VERIFYPEER, 1L);
        set(CURLOPT_SSL_VERIFYHOST, 2L);
        set(CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));  // #14.7: 1.2 minimum
        set(CURLOPT_NOSIGNAL, 1L);
        set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count()));
        set(CURLOPT_TIMEOUT_MS, static_cast<long>(options.total_timeout.count()));
        set(CURLOPT_LOW_SPEED_LIMIT, options.low_speed_bytes);
        set(CURLOPT_LOW_SPEED_TIME, options.low_speed_seconds);
        set(CURLOPT_USERAGENT, options.user_agent.c_str());
        set(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);  // a proxy's CONNECT reply is not ours
        set(CURLOPT_WRITEFUNCTION, &Impl::on_body);
        set(CURLOPT_WRITEDATA, this);
        set(CURLOPT_HEADERFUNCTION, &Impl::on_header);
        set(CURLOPT_HEADERDATA, this);
        set(CURLOPT_CAINFO, nullptr);
        set(CURLOPT_CAPATH, kSystemCertDir);
        if (!options.ca_file.empty()) {
            auto roots = load_extra_roots(options.ca_file);
            if (!roots) {
                setup_error = roots.error();
                return;
            }
            extra_roots = std::move(*roots);
            set(CURLOPT_SSL_CTX_FUNCTION, &Impl::on_ssl_ctx);
            set(CURLOPT_SSL_CTX_DATA, this);
        }
    }

    static CURLcode on_ssl_ctx(CURL*, void* ssl_ctx, void* user) {
        const base::log::TraceSpan trace("trust store: TLS context");
        auto* self = static_cast<Impl*>(user);
        X509_STORE* store = SSL_CTX_get_cert_store(static_cast<SSL_CTX*>(ssl_ctx));
        for (auto& cert : self->extra_roots) X509_STORE_add_cert(store, cert.get());
        ERR_clear_error();  // a duplicate add is harmless
        return CURLE_OK;
    }

    static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
        auto* self = static_cast<Impl*>(user);
        const std::size_t len = size * n;
        if (len > self->body_cap - self->response.body.size()) {
            self->body_overflow = true;
            return 0;  // CURLE_WRITE_ERROR
        }
        self->response.body.append(data, len);
        return len;
    }

    static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
        auto* self = static_cast<Impl*>(user);
        const std::size_t len = size * n;
        self->header_bytes += len;
        if (self->header_bytes > kMaxHeaderBytes) {
            self->header_overflow = true;
            return 0;
        }
        self->header_line(std::string_view(data, len));
        return len;
    }

    void header_line(std::string_view line) {
        if (starts_with_nocase(line, "HTTP/")) {
            // A new status line (after a 1xx): only the final response's headers count.
            std::string body = std::move(response.body);
            response = HttpResponse{};
            response.body = std::move(body);
            return;
        }
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) return;
        const std::string_view name = trim(line.substr(0, colon));
        std::string value(trim(line.substr(colon + 1)));
        if (iequals(name, "replay-nonce")) {
            response.replay_nonce = std::move(value);
        } else if (iequals(name, "location")) {
            response.location = std::move(value);
        } else if (iequals(name, "retry-after")) {
            response.retry_after = std::move(value);
        } else if (iequals(name, "content-type")) {
            response.content_type = base::ascii_lower(
                trim(std::string_view(value).substr(0, std::min(value.find(';'), value.size()))));
        } else if (iequals(name, "link")) {
            response.links.push_back(std::move(value));
        }
    }

    void begin(std::size_t max_body, bool head = false) {
        headers.reset();
        response = HttpResponse{};
        body_cap = max_body != 0 ? max_body : options.max_body;
        header_bytes = 0;
        body_overflow = false;
        header_overflow = false;
        error_buffer[0] = '\0';
        // Known lengths are refused before the body arrives; unknown ones by on_body. A HEAD
        // reply announces the length of a body it does not send, so it is not capped.
        set(CURLOPT_MAXFILESIZE_LARGE, head ? curl_off_t{0} : static_cast<curl_off_t>(body_cap));
    }

    Result<HttpResponse> perform(const char* method, const std::string& url) {
        if (setup_error) return std::unexpected(*setup_error);
        set(CURLOPT_URL, url.c_str());
        // cppcheck-suppress knownConditionTrueFalse ; set() fills setup_error when it fails
        if (setup_error) return std::unexpected(*setup_error);
        const std::int64_t trace_start = base::log::trace_now();
        const CURLcode rc = curl_easy_perform(handle.get());
        if (trace_start != 0) trace_request(trace_start, method, url);
        long opened = 0;
        if (curl_easy_getinfo(handle.get(), CURLINFO_NUM_CONNECTS, &opened) == CURLE_OK) {
            connections += opened;
        }
        // The POST body belongs to the caller; never leave a dangling pointer behind. (This
        // also flips the handle to POST; every entry point sets its own method first.)
        set(CURLOPT_POSTFIELDS, static_cast<const char*>(nullptr));
        headers.reset();
        set(CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
        if (rc != CURLE_OK) return transfer_error(rc, method, url);
        curl_easy_getinfo(handle.get(), CURLINFO_RESPONSE_CODE, &response.status);
        return std::move(response);
    }

    // For ACME_AGENT_TRACE: curl's own split of the request (microseconds from its start):
    // connected, TLS done, ready to send, STARTTRANSFER, done. On localhost the server's
    // time is about sent..total (for a POST, STARTTRANSFER marks the upload's start).
    void trace_request(std::int64_t start_us, const char* method, const std::string& url) {
        std::string what = std::string("http ") + method + " " + url;
        for (const auto& [name, info] : {std::pair{"connect", CURLINFO_CONNECT_TIME_T},
                                         std::pair{"tls", CURLINFO_APPCONNECT_TIME_T},
                                         std::pair{"sent", CURLINFO_PRETRANSFER_TIME_T},
                                         std::pair{"first_byte", CURLINFO_STARTTRANSFER_TIME_T},
                                         std::pair{"total", CURLINFO_TOTAL_TIME_T}}) {
            curl_off_t us = 0;
            (void)curl_easy_getinfo(handle.get(), info, &us);
            what += std::string(" ") + name + "=" + std::to_string(us);
        }
        base::log::trace(start_us, what);
    }

    std::unexpected<Error> transfer_error(CURLcode rc, const char* method,
                                          const std::string& url) const {
        const std::string where = std::string(method) + " " + url;
        const std::string host = url_host(url);
        const std::string detail = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc);
        const auto native = static_cast<std::uint64_t>(rc);
        if (body_overflow || rc == CURLE_FILESIZE_EXCEEDED) {
            return fail(Errc::protocol, where,
                        "response body larger than " + std::to_string(body_cap) + " bytes");
        }
        if (header_overflow) {
            return fail(
                Errc::protocol, where,
                "response headers larger than " + std::to_string(kMaxHeaderBytes) + " bytes");
        }
        switch (rc) {
            case CURLE_PEER_FAILED_VERIFICATION:
            case CURLE_SSL_CACERT_BADFILE:
            case CURLE_SSL_ISSUER_ERROR:
            case CURLE_SSL_INVALIDCERTSTATUS:
            case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
                return fail(Errc::network, where,
                            "the server's certificate for " + host + " is not trusted (" + detail +
                                "); for a server with a test CA pass --ca-file PEM",
                            native);
            case CURLE_COULDNT_RESOLVE_HOST:
                return fail(Errc::network, where, "cannot resolve " + host + ": " + detail, native);
            case CURLE_COULDNT_CONNECT:
                return fail(Errc::network, where, "cannot connect to " + host + ": " + detail,
                            native);
            case CURLE_OPERATION_TIMEDOUT:
                return fail(Errc::network, where, "timed out talking to " + host + ": " + detail,
                            native);
            case CURLE_SSL_CONNECT_ERROR:
                return fail(Errc::network, where,
                            "TLS handshake with " + host + " failed: " + detail, native);
            case CURLE_UNSUPPORTED_PROTOCOL:
            case CURLE_URL_MALFORMAT:
                return fail(Errc::usage, where, detail, native);
            case CURLE_OUT_OF_MEMORY:
                return fail(Errc::internal, where, detail, native);
            default:
                return fail(Errc::network, where, host + ": " + detail, native);
        }
    }
};

Http::Http(HttpOptions options, HttpShare* share)
    : impl_(std::make_unique<Impl>(std::move(options))) {
    global_init_once();
    impl_->handle.reset(curl_easy_init());
    if (!impl_->handle) {
        impl_->setup_error =
            Error{Errc::internal, "curl_easy_init", "cannot create a handle", std::nullopt};
        return;
    }
    impl_->configure();
    if (share && share->impl_->handle) impl_->set(CURLOPT_SHARE, share->impl_->handle);
}

Http::~Http() = default;

long Http::connections() const {
    return impl_->connections;
}

Result<HttpResponse> Http::get(const std::string& url, std::size_t max_body) {
    if (auto ok = check_url(url); !ok) return std::unexpected(ok.error());
    impl_->begin(max_body);
    impl_->set(CURLOPT_NOBODY, 0L);
    impl_->set(CURLOPT_HTTPGET, 1L);
    ++requests_;
    return impl_->perform("GET", url);
}

Result<HttpResponse> Http::head(const std::string& url) {
    if (auto ok = check_url(url); !ok) return std::unexpected(ok.error());
    impl_->begin(0, true);
    impl_->set(CURLOPT_HTTPGET, 1L);
    impl_->set(CURLOPT_NOBODY, 1L);
    ++requests_;
    return impl_->perform("HEAD", url);
}

Result<HttpResponse> Http::post(const std::string& url, const std::string& body,
                                const std::string& content_type, std::size_t max_body) {
    if (auto ok = check_url(url); !ok) return std::unexpected(ok.error());
    impl_->begin(max_body);
    curl_slist* list = curl_slist_append(nullptr, ("Content-Type: " + content_type).c_str());
    if (list != nullptr) {
        // No "Expect: 100-continue" round trip: ACME bodies are small. Accept-Language:
        // RFC 8555 §6.1 asks for it, and problem details come back in English.
        for (const char* h : {"Expect:", "Accept-Language: en"})
            if (curl_slist* more = curl_slist_append(list, h)) list = more;
    }
    impl_->headers.reset(list);
    if (!impl_->headers) return fail(Errc::internal, "curl_slist_append", "out of memory");
    impl_->set(CURLOPT_NOBODY, 0L);
    impl_->set(CURLOPT_POST, 1L);
    impl_->set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    impl_->set(CURLOPT_POSTFIELDS, body.c_str());
    impl_->set(CURLOPT_HTTPHEADER, impl_->headers.get());
    ++requests_;
    return impl_->perform("POST", url);
}

// RFC 8288 §3: link-value = "<" URI-Reference ">" *( OWS ";" OWS link-param ), several per
// field separated by commas. Commas may appear inside <...> and quoted strings, so this is
// a small scanner rather than a split. Malformed entries are skipped up to the next comma.
std::vector<std::pair<std::string, std::string>> parse_links(
    const std::vector<std::string>& values) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const std::string& value : values) {
        std::string_view s = value;
        std::size_t i = 0;
        auto skip_ws = [&] {
            while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
        };
        auto skip_to_next = [&] {
            bool quoted = false;
            for (; i < s.size(); ++i) {
                if (quoted && s[i] == '\\') {
                    ++i;
                } else if (s[i] == '"') {
                    quoted = !quoted;
                } else if (!quoted && s[i] == ',') {
                    ++i;
                    return;
                }
            }
        };
        while (i < s.size()) {
            skip_ws();
            if (i < s.size() && s[i] == ',') {
                ++i;
                continue;
            }
            if (i >= s.size()) break;
            if (s[i] != '<') {
                skip_to_next();
                continue;
            }
            const std::size_t close = s.find('>', i + 1);
            if (close == std::string_view::npos) break;
            const std::string url(trim(s.substr(i + 1, close - i - 1)));
            i = close + 1;
            std::optional<std::string> rel;
            bool bad = false;
            for (;;) {
                skip_ws();
                if (i >= s.size() || s[i] == ',') break;
                if (s[i] != ';') {
                    bad = true;
                    break;
                }
                ++i;
                skip_ws();
                const std::size_t name_start = i;
                while (i < s.size() && s[i] != '=' && s[i] != ';' && s[i] != ',' &&
                       !is_space(s[i])) {
                    ++i;
                }
                const std::string_view name = s.substr(name_start, i - name_start);
                skip_ws();
                std::string param;
                if (i < s.size() && s[i] == '=') {
                    ++i;
                    skip_ws();
                    if (i < s.size() && s[i] == '"') {
                        ++i;
                        bool closed = false;
                        for (; i < s.size(); ++i) {
                            if (s[i] == '\\' && i + 1 < s.size()) {
                                param += s[++i];
                            } else if (s[i] == '"') {
                                ++i;
                                closed = true;
                                break;
                            } else {
                                param += s[i];
                            }
                        }
                        if (!closed) {
                            bad = true;
                            break;
                        }
                    } else {
                        const std::size_t start = i;
                        while (i < s.size() && s[i] != ';' && s[i] != ',' && !is_space(s[i])) ++i;
                        param = s.substr(start, i - start);
                    }
                }
                // §3.3: occurrences of rel after the first are ignored.
                if (!rel && iequals(name, "rel")) rel = std::move(param);
            }
            if (bad) {
                skip_to_next();
                continue;
            }
            if (!rel) continue;
            // §3.3: rel may hold several space-separated types, compared case-insensitively.
            std::istringstream types(*rel);
            for (std::string type; types >> type;) out.emplace_back(url, base::ascii_lower(type));
        }
    }
    return out;
}

}  // namespace acme
