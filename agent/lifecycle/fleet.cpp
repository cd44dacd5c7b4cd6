#include "lifecycle/fleet.h"

#include "base/files.h"
#include "base/log.h"
#include "challenge/http01.h"
#include "challenge/tls_alpn01.h"
#include "store/state.h"

#include <chrono>

namespace lifecycle {

using base::Errc;
using base::Result;

namespace {

// How long a published challenge stays answerable: longer than any order waits for its
// validation (config::CertificateSettings' order timeout), withdrawn at cleanup anyway.
constexpr std::chrono::minutes kPublished{15};

class Publishing final : public challenge::Solver {
  public:
    Publishing(store::PgStorage& pg, std::string type, challenge::Solver* inner)
        : pg_(pg), type_(std::move(type)), inner_(inner) {}
    std::string type() const override { return type_; }
    Result<void> present(const std::string& identifier, const std::string& token,
                         const std::string& key_authorization) override {
        if (inner_)
            if (auto r = inner_->present(identifier, token, key_authorization); !r) return r;
        return pg_.publish_challenge(type_, token, identifier, key_authorization, kPublished);
    }
    void cleanup(const std::string& identifier, const std::string& token) override {
        if (auto r = pg_.withdraw_challenge(type_, token, identifier); !r)
            base::log::warning("fleet: " + r.error().describe() +
                               " (the challenge expires by itself)");
        if (inner_) inner_->cleanup(identifier, token);
    }
    bool wait_served(const std::string& token, std::chrono::milliseconds max) override {
        return inner_ && inner_->wait_served(token, max);
    }

  private:
    store::PgStorage& pg_;
    std::string type_;
    challenge::Solver* inner_;
};

// A lookup that fails (the database unreachable for a moment) answers "not here": the CA
// tries again, or the order fails and is retried; it never gets a wrong answer.
std::optional<std::string> looked_up(const Result<std::optional<std::string>>& r) {
    if (!r) {
        base::log::warning("fleet responder: " + r.error().describe());
        return std::nullopt;
    }
    return *r;
}

}  // namespace

bool published_kind(const config::CertificateSettings& s) {
    return (s.challenge == "http-01" && s.webroot.empty()) || s.challenge == "tls-alpn-01";
}

std::unique_ptr<challenge::Solver> publishing(store::PgStorage& pg, std::string type,
                                              challenge::Solver* inner) {
    return std::make_unique<Publishing>(pg, std::move(type), inner);
}

struct FleetResponders::Port {
    std::unique_ptr<challenge::Http01Responder> http;
    std::unique_ptr<challenge::TlsAlpn01Responder> tls;
};

FleetResponders::FleetResponders(std::string url) : url_(std::move(url)) {}
FleetResponders::~FleetResponders() = default;

Result<void> FleetResponders::serve(const config::CertificateSettings& s) {
    if (!published_kind(s)) return {};
    const bool http = s.challenge == "http-01";
    const std::string key = (http ? "http " : "tls ") + (http ? s.http_port : s.tls_alpn_port);
    const std::lock_guard lock(mutex_);
    if (ports_.contains(key)) return {};
    if (!pg_) {
        auto pg = store::PgStorage::open(url_);
        if (!pg) return std::unexpected(pg.error());
        pg_ = std::move(*pg);
    }
    store::PgStorage* pg = pg_.get();
    auto port = std::make_unique<Port>();
    if (http) {
        auto r = challenge::Http01Responder::start(s.http_port);
        if (!r) return std::unexpected(r.error());
        (*r)->set_lookup([pg](const std::string& token) {
            return looked_up(pg->challenge("http-01", token, ""));
        });
        port->http = std::move(*r);
    } else {
        auto r = challenge::TlsAlpn01Responder::start(s.tls_alpn_port);
        if (!r) return std::unexpected(r.error());
        (*r)->set_lookup(
            [pg](const std::string& name) -> std::optional<std::pair<std::string, std::string>> {
                auto value = looked_up(pg->challenge("tls-alpn-01", "", name));
                if (!value) return std::nullopt;
                return std::pair{name, *value};
            });
        port->tls = std::move(*r);
    }
    base::log::info("fleet: answering every node's " + s.challenge + " challenges on " +
                    (http ? s.http_port : s.tls_alpn_port));
    ports_.emplace(key, std::move(port));
    return {};
}

bool copy_current(const std::string& dir, const store::Certificate& cert) {
    auto have = base::read_file(dir + "/cert.pem");
    auto chain = base::read_file(dir + "/chain.pem");
    return have && chain && *have == cert.cert_pem && *chain == cert.chain_pem;
}

Result<void> write_copy(const std::string& dir, const store::Certificate& cert) {
    const auto slash = dir.find_last_of('/');
    if (slash != std::string::npos && slash > 0)
        if (auto parent = base::Dir::open(dir.substr(0, slash), base::Create::yes, 0755); !parent)
            return std::unexpected(parent.error());
    return store::StateDir::write_pems(dir, cert);
}

}  // namespace lifecycle
