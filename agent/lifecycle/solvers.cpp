#include "lifecycle/solvers.h"

#include "base/bytes.h"
#include "challenge/listener.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace lifecycle {

using base::Errc;
using base::Error;
using base::fail;
using base::Result;

Result<std::unique_ptr<challenge::Solver>> make_solver(const config::CertificateSettings& s) {
    if (s.challenge == "http-01")
        return s.webroot.empty() ? challenge::make_http01_server(s.http_port)
                                 : challenge::make_http01_webroot(s.webroot);
    if (s.challenge == "tls-alpn-01") return challenge::make_tls_alpn01(s.tls_alpn_port);
    if (s.challenge == "dns-01") {
        if (!s.dns_hook.empty() && !s.rfc2136.empty())
            return fail(Errc::usage, "--dns-hook", "choose either --dns-hook or --rfc2136");
        if (!s.dns_hook.empty()) return challenge::make_dns01_hook(s.dns_hook);
        if (!s.rfc2136.empty()) {
            if (s.tsig_key.empty())
                return fail(Errc::usage, "--rfc2136", "RFC 2136 updates need --tsig-key FILE");
            return challenge::make_dns01_rfc2136(s.rfc2136, s.tsig_key);
        }
        return fail(Errc::usage, "--challenge",
                    "dns-01 needs --dns-hook CMD or --rfc2136 SERVER --tsig-key FILE");
    }
    return fail(Errc::usage, "--challenge",
                "unknown challenge '" + s.challenge + "' (http-01, dns-01, tls-alpn-01)");
}

namespace {
// A directory the agent may create files in: `dir` itself, else its nearest existing parent.
Result<void> writable_dir(const std::string& dir, const char* option) {
    std::string d = dir;
    struct stat st{};
    while (::stat(d.c_str(), &st) != 0) {
        if (errno != ENOENT)
            return fail(Errc::io, option, "cannot use " + dir + ": " + std::strerror(errno));
        const auto slash = d.find_last_of('/', d.size() > 1 ? d.size() - 2 : 0);
        d = slash == std::string::npos ? "." : slash == 0 ? "/" : d.substr(0, slash);
    }
    if (!S_ISDIR(st.st_mode)) return fail(Errc::io, option, d + " is not a directory");
    if (::access(d.c_str(), W_OK | X_OK) != 0)
        return fail(Errc::io, option,
                    "cannot write to " + d + ": " + std::strerror(errno) +
                        "; choose a directory this user can write, or fix its permissions");
    return {};
}
}  // namespace

Result<void> check_local(const Settings& s, bool ports) {
    if (s.challenge == "http-01" && !s.webroot.empty()) {
        struct stat st{};
        if (::stat(s.webroot.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            return fail(Errc::io, "--webroot",
                        s.webroot +
                            " is not a directory; give the document root your web "
                            "server serves for http://NAME/");
        if (auto r = writable_dir(s.webroot, "--webroot"); !r) return r;
    }
    if (!s.out.empty())
        if (auto r = writable_dir(s.out, "--out"); !r) return r;
    if (!ports) return {};
    // Bound and closed again: the responder binds for real at its first challenge. A port
    // that cannot be bound says what to do instead.
    const auto probe = [](const std::string& port, const char* kind, const char* flag,
                          const char* advice) -> Result<void> {
        auto l = challenge::listen_on(port, kind);
        if (l) return {};
        Error e = l.error();
        if (e.code != Errc::io) return std::unexpected(e);
        e.where = flag;
        e.message += std::string("; nothing was sent to the CA. ") + advice;
        return std::unexpected(e);
    };
    if (s.challenge == "http-01" && s.webroot.empty())
        return probe(s.http_port, "http-01", "--http-port",
                     "When a web server holds the port, give --webroot DIR to answer through it, "
                     "or stop it for the time of the order; else give another --http-port "
                     "[ADDR:]PORT (the CA connects to port 80; ports below 1024 need root or "
                     "CAP_NET_BIND_SERVICE)");
    if (s.challenge == "tls-alpn-01")
        return probe(s.tls_alpn_port, "tls-alpn-01", "--tls-alpn-port",
                     "Stop the program holding the port for the time of the order, use "
                     "--challenge http-01 or dns-01, or give another --tls-alpn-port [ADDR:]PORT");
    return {};
}

namespace {
// One solver used by several threads: its calls one at a time.
class Serialized final : public challenge::Solver {
  public:
    explicit Serialized(std::unique_ptr<challenge::Solver> inner) : inner_(std::move(inner)) {}
    std::string type() const override { return inner_->type(); }
    Result<void> present(const std::string& identifier, const std::string& token,
                         const std::string& key_authorization) override {
        std::lock_guard lock(mutex_);
        return inner_->present(identifier, token, key_authorization);
    }
    void cleanup(const std::string& identifier, const std::string& token) override {
        std::lock_guard lock(mutex_);
        inner_->cleanup(identifier, token);
    }
    // Not serialized: it waits, and the responder is thread-safe and stays up while this
    // caller's token is live (it was presented and not yet cleaned up).
    bool wait_served(const std::string& token, std::chrono::milliseconds max) override {
        return inner_->wait_served(token, max);
    }

  private:
    std::mutex mutex_;
    std::unique_ptr<challenge::Solver> inner_;
};
}  // namespace

Result<challenge::Solver*> SharedSolvers::get(const Settings& s) {
    std::string key;
    if (s.challenge == "http-01" && s.webroot.empty()) key = "http-01 " + s.http_port;
    if (s.challenge == "tls-alpn-01") key = "tls-alpn-01 " + s.tls_alpn_port;
    if (key.empty()) return nullptr;
    std::lock_guard lock(mutex_);
    auto& slot = solvers_[key];
    if (!slot) {
        // Before the first order on this port: it can be bound (nothing of ours listens yet).
        if (auto r = check_local(s); !r) return std::unexpected(r.error());
        auto made = make_solver(s);
        if (!made) return std::unexpected(made.error());
        slot = std::make_unique<Serialized>(std::move(*made));
    }
    return slot.get();
}

SharedSolvers::Claim::Claim(SharedSolvers& owner, const std::vector<std::string>& domains)
    : owner_(owner) {
    for (const std::string& d : domains)
        names_.push_back(base::ascii_lower(d.starts_with("*.") ? d.substr(2) : d));
    std::unique_lock lock(owner_.mutex_);
    owner_.released_.wait(lock, [&] {
        return std::ranges::none_of(
            names_, [&](const std::string& n) { return owner_.claimed_.contains(n); });
    });
    owner_.claimed_.insert(names_.begin(), names_.end());
}

SharedSolvers::Claim::~Claim() {
    {
        std::lock_guard lock(owner_.mutex_);
        for (const auto& n : names_) owner_.claimed_.erase(n);
    }
    owner_.released_.notify_all();
}

}  // namespace lifecycle
