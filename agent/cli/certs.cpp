#include "cli/certs.h"

#include "acme/order.h"
#include "base/bytes.h"
#include "base/log.h"
#include "challenge/solver.h"
#include "store/failpoint.h"

#include <algorithm>
#include <cstdio>
#include <random>

namespace cli {

namespace {
// The challenge settings of a certificate, as kept in live/NAME/renewal.json.
json renewal_record(const Options& o, const std::vector<std::string>& domains) {
    json r{{"server", o.server}, {"domains", domains}, {"challenge", o.challenge}};
    auto put = [&](const char* k, const std::string& v) {
        if (!v.empty()) r[k] = v;
    };
    if (o.challenge == "http-01") {
        if (o.webroot.empty()) put("http_port", o.http_port);
        put("webroot", o.webroot);
    }
    if (o.challenge == "tls-alpn-01") put("tls_alpn_port", o.tls_alpn_port);
    if (o.challenge == "dns-01") {
        put("dns_hook", o.dns_hook);
        put("rfc2136", o.rfc2136);
        put("tsig_key", o.tsig_key);
    }
    put("profile", o.profile);
    put("preferred_chain", o.preferred_chain);
    return r;
}

// Options for renewing: the stored settings, unless given on this command line.
Options with_renewal_record(const Options& given, const json& r) {
    Options o = given;
    auto take = [&](const char* k, std::string& field, const std::string& dflt) {
        if (field == dflt) field = acme::json_string(r, k, dflt);
    };
    take("challenge", o.challenge, "http-01");
    take("http_port", o.http_port, "80");
    take("webroot", o.webroot, "");
    take("tls_alpn_port", o.tls_alpn_port, "443");
    take("dns_hook", o.dns_hook, "");
    take("rfc2136", o.rfc2136, "");
    take("tsig_key", o.tsig_key, "");
    take("profile", o.profile, "");
    take("preferred_chain", o.preferred_chain, "");
    return o;
}

}  // namespace

Result<std::unique_ptr<challenge::Solver>> make_solver(const Options& o) {
    if (o.challenge == "http-01")
        return o.webroot.empty() ? challenge::make_http01_server(o.http_port)
                                 : challenge::make_http01_webroot(o.webroot);
    if (o.challenge == "tls-alpn-01") return challenge::make_tls_alpn01(o.tls_alpn_port);
    if (o.challenge == "dns-01") {
        if (!o.dns_hook.empty() && !o.rfc2136.empty())
            return fail(Errc::usage, "--dns-hook", "choose either --dns-hook or --rfc2136");
        if (!o.dns_hook.empty()) return challenge::make_dns01_hook(o.dns_hook);
        if (!o.rfc2136.empty()) {
            if (o.tsig_key.empty())
                return fail(Errc::usage, "--rfc2136", "RFC 2136 updates need --tsig-key FILE");
            return challenge::make_dns01_rfc2136(o.rfc2136, o.tsig_key);
        }
        return fail(Errc::usage, "--challenge",
                    "dns-01 needs --dns-hook CMD or --rfc2136 SERVER --tsig-key FILE");
    }
    return fail(Errc::usage, "--challenge",
                "unknown challenge '" + o.challenge + "' (http-01, dns-01, tls-alpn-01)");
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

Result<challenge::Solver*> SharedSolvers::get(const Options& o) {
    std::string key;
    if (o.challenge == "http-01" && o.webroot.empty()) key = "http-01 " + o.http_port;
    if (o.challenge == "tls-alpn-01") key = "tls-alpn-01 " + o.tls_alpn_port;
    if (key.empty()) return nullptr;
    std::lock_guard lock(mutex_);
    auto& slot = solvers_[key];
    if (!slot) {
        // Before the first order on this port: it can be bound (nothing of ours listens yet).
        if (auto r = check_local(o); !r) return std::unexpected(r.error());
        auto made = make_solver(o);
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

Result<IssueResult> obtain(const Options& o, store::StateDir& state, acme::Client& client,
                           const AccountCtx& account, const keystore::KeyPtr& cert_key,
                           const std::vector<std::string>& domains, const std::string& replaces,
                           SharedSolvers* shared) {
    for (const auto& d : domains)
        if (d.starts_with("*.") && o.challenge != "dns-01")
            return fail(Errc::usage, "-d", "the wildcard " + d + " needs --challenge dns-01");
    if (account.key->public_key_der() == cert_key->public_key_der())
        return fail(Errc::usage, "--key",
                    "the certificate key is the account key; use a separate key for each");
    std::optional<SharedSolvers::Claim> claim;
    if (shared) claim.emplace(*shared, domains);
    std::unique_ptr<challenge::Solver> own;
    challenge::Solver* solver = nullptr;
    if (shared) {
        auto s = shared->get(o);
        if (!s) return std::unexpected(s.error());
        solver = *s;
    }
    if (!solver) {
        auto made = make_solver(o);
        if (!made) return std::unexpected(made.error());
        own = std::move(*made);
        solver = own.get();
    }
    // A crashed run's order for the same names and key is continued, not ordered again.
    const std::string name = o.name.empty() ? domains.front() : o.name;
    const std::string key_uri = cert_key->uri().to_string();
    std::string resume;
    if (auto rec = state.order(name); rec && *rec) {
        auto j = json::parse(**rec, nullptr, false);
        if (acme::json_string(j, "key") == key_uri && j.contains("domains") &&
            j["domains"] == json(domains))
            resume = acme::json_string(j, "order");
    }
    auto record = [&](const std::string& url) {
        return state.save_order(
            name, json{{"order", url}, {"key", key_uri}, {"domains", domains}}.dump(2));
    };
    acme::OrderRequest req{domains,  cert_key.get(),    solver, o.profile,
                           replaces, o.preferred_chain, resume, record};
    // Orders running side by side (--jobs) tag their progress lines with the name.
    const std::string tag = o.jobs > 1 ? name + ": " : "";
    auto issued = acme::issue(client, *account.key, account.url, req,
                              [&tag](const std::string& line) { base::log::info(tag + line); });
    if (!issued) {
        // A refused or broken order is over: forget it, leaving the state as it was. After a
        // network fault, or when the CA asked to wait, the record stays, so that the next run
        // resumes the order.
        if (issued.error().code != Errc::network && !issued.error().retry_at)
            (void)state.remove_order(name);
        return std::unexpected(issued.error());
    }
    store::Certificate cert{issued->cert_pem, issued->chain_pem, cert_key->uri().to_string(),
                            renewal_record(o, domains).dump(2)};
    if (!o.out.empty())
        if (auto r = store::StateDir::write_pems(o.out, cert); !r)
            return std::unexpected(r.error());
    if (auto r = state.save_certificate(name, cert); !r) return std::unexpected(r.error());
    store::failpoint("stored");
    if (auto r = state.remove_order(name); !r) return std::unexpected(r.error());
    return IssueResult{std::move(*issued),
                       o.out.empty() ? state.path() + "/live/" + store::safe_name(name) : o.out};
}

json stored_record(const store::Certificate& c) {
    auto record = json::parse(c.renewal.empty() ? "{}" : c.renewal, nullptr, false);
    return record.is_object() ? record : json::object();
}

std::vector<std::string> stored_domains(const json& record, const x509::CertInfo& leaf) {
    if (!record.contains("domains") || !record["domains"].is_array()) return leaf.names;
    std::vector<std::string> domains;
    for (const auto& d : record["domains"])
        if (d.is_string()) domains.push_back(d.get<std::string>());
    return domains;
}

json describe(const IssueResult& r, const std::string& key_uri) {
    const auto& leaf = r.issued.leaf;
    return {{"name", leaf.names.empty() ? "" : leaf.names.front()},
            {"domains", leaf.names},
            {"serial", leaf.serial_hex},
            {"subject", leaf.subject},
            {"issuer", leaf.issuer},
            {"not_before", iso_time(leaf.not_before)},
            {"not_after", iso_time(leaf.not_after)},
            {"key", key_uri},
            {"order", r.issued.order_url},
            {"directory", r.where}};
}

std::string describe_text(const IssueResult& r, const std::string& key_uri) {
    const auto& leaf = r.issued.leaf;
    std::string names;
    for (const auto& n : leaf.names) names += (names.empty() ? "" : ", ") + n;
    return "certificate: " + r.where + "/cert.pem\n" + "subject:     " + leaf.subject + "\n" +
           "names:       " + names + "\n" + "issuer:      " + leaf.issuer + "\n" +
           "valid:       " + iso_time(leaf.not_before) + " .. " + iso_time(leaf.not_after) + "\n" +
           "serial:      " + leaf.serial_hex + "\n" + "key:         " + key_uri + "\n";
}

Result<Due> due_for_renewal(acme::Client& client, const x509::CertInfo& leaf,
                            unsigned before_days) {
    const auto now = std::chrono::system_clock::now();
    if (before_days > 0) {
        const auto at = leaf.not_after - std::chrono::hours(24) * before_days;
        return Due{now >= at, at, std::to_string(before_days) + " days before it expires", {}};
    }
    auto window = acme::renewal_info(client, leaf);
    if (!window)
        base::log::warning("renewalInfo: " + window.error().describe() +
                           "; using the certificate's lifetime instead");
    if (window && *window) {
        const auto span = (*window)->end - (*window)->start;
        unsigned spread = 0;
        for (auto b : leaf.serial_der) spread = spread * 31 + b;
        const auto at = (*window)->start + span * (spread % 1000) / 1000;
        std::string why = "the CA's renewal window (ARI)";
        if (const auto& u = (*window)->explanation_url; !u.empty()) {
            std::string shown;  // server text: no control characters, bounded
            for (unsigned char c : u.substr(0, 300))
                shown += (c < 0x20 || c == 0x7f) ? '?' : char(c);
            why += ", see " + shown;
        }
        return Due{now >= at, at, why, (*window)->check_again};
    }
    const auto at = leaf.not_before + (leaf.not_after - leaf.not_before) * 2 / 3;
    return Due{now >= at, at, "two thirds of its lifetime", {}};
}

namespace {

// A fresh location for the replacement of `old` (--new-key): a new label or file name.
Result<keystore::KeyUri> successor(const keystore::KeyUri& old) {
    keystore::KeyUri next = old;
    // "-r" + the time and a random part in hex: unique even for two renewals in one second.
    std::random_device rd;
    char suffix[32];
    (void)std::snprintf(
        suffix, sizeof suffix, "-r%llx%04x",
        static_cast<unsigned long long>(std::chrono::duration_cast<std::chrono::seconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count()),
        rd() & 0xffffu);
    const std::string stamp = suffix;
    auto strip = [](std::string base) {
        if (auto p = base.rfind("-r");
            p != std::string::npos && p + 2 < base.size() &&
            std::all_of(base.begin() + static_cast<long>(p) + 2, base.end(), ::isxdigit))
            base.resize(p);
        return base;
    };
    if (old.scheme() == "pkcs11") {
        next.set_path_attr("object", strip(old.path_attr("object").value_or("key")) + stamp);
        next.erase_path_attr("id");
        return next;
    }
    if (auto path = old.path_attr("path")) {
        std::string p = *path;
        std::string ext;
        if (auto dot = p.rfind('.');
            dot != std::string::npos && p.find('/', dot) == std::string::npos) {
            ext = p.substr(dot);
            p.resize(dot);
        }
        next.set_path_attr("path", strip(p) + stamp + ext);
        return next;
    }
    return fail(Errc::unsupported, "--new-key",
                "cannot choose a new location for " + old.to_string() +
                    "; generate a key and use issue --key");
}

}  // namespace

Result<Renewal> renew_one(const Options& o, keystore::Registry& reg, store::StateDir& state,
                          acme::Client& client, const AccountCtx& account, const std::string& name,
                          SharedSolvers* shared) {
    auto stored = state.certificate(name);
    if (!stored) return std::unexpected(stored.error());
    if (!*stored)
        return fail(Errc::not_found, "renew",
                    "no certificate named '" + name + "' in " + state.path());
    auto leaf = x509::inspect((*stored)->cert_pem);
    if (!leaf) return std::unexpected(leaf.error());
    const json record = stored_record(**stored);
    Options ro = with_renewal_record(o, record);
    ro.name = name;  // stored back under the name it has, whatever its first domain
    const std::vector<std::string> domains = stored_domains(record, *leaf);
    // --force renews whatever the CA's renewal window says (or whether it answers).
    auto due = o.force ? Result<Due>(Due{true, std::chrono::system_clock::now(), "--force", {}})
                       : due_for_renewal(client, *leaf, o.renew_before_days);
    if (!due) return std::unexpected(due.error());
    if (!o.force && !due->due) {
        base::log::info("renew: " + name + " not due until " + iso_time(due->at) + " (" + due->why +
                        ")");
        return Renewal{{{"name", name}, {"renewed", false}, {"due_at", iso_time(due->at)}},
                       name + ": not due until " + iso_time(due->at) + "\n"};
    }
    // Due: what this machine needs for the order is checked before newOrder. A shared
    // responder (renew --all) may be listening for another order: SharedSolvers::get
    // probes its port once, before the first order on it.
    if (auto r = check_local(ro, shared == nullptr); !r) return std::unexpected(r.error());
    auto old_uri = parse_uri((*stored)->key_uri, "key.uri");
    if (!old_uri) return std::unexpected(old_uri.error());
    Result<keystore::KeyPtr> key = std::unexpected(Error{});
    if (o.renew_new_key) {
        // The new key's URI is recorded before it is generated: a rerun after a crash
        // finds (or makes) that one key, never a second.
        std::optional<keystore::KeyUri> next;
        bool recorded = false;  // a crashed run chose this location (and may have made the key)
        if (auto rec = state.order(name); rec && *rec) {
            auto j = json::parse(**rec, nullptr, false);
            if (auto k = acme::json_string(j, "key"); !k.empty() && k != (*stored)->key_uri)
                if (auto u = keystore::KeyUri::parse(k)) {
                    next = *u;
                    recorded = true;
                }
        }
        if (!next) {
            auto made = successor(*old_uri);
            if (!made) return std::unexpected(made.error());
            next = *made;
            if (auto r = state.save_order(name, json{{"key", next->to_string()}}.dump(2)); !r)
                return std::unexpected(r.error());
        }
        store::failpoint("new-key-recorded");
        if (recorded) key = open_signing_key(o, reg, *next);
        if (!recorded || (!key && key.error().code == Errc::not_found)) {
            auto old_key = reg.open(*old_uri);
            key = reg.generate(*next,
                               old_key ? (*old_key)->algorithm() : keystore::KeyAlgorithm::ec_p256);
            if (key) {
                // Record the full URI (the backend may add an id) for the order.
                if (auto r =
                        state.save_order(name, json{{"key", (*key)->uri().to_string()}}.dump(2));
                    !r)
                    return std::unexpected(r.error());
            }
            store::failpoint("new-key-generated");
        }
    } else {
        key = open_signing_key(o, reg, *old_uri);
    }
    if (!key) return std::unexpected(key.error());
    const std::string replaces = client.directory().renewal_info && !leaf->aki.empty()
                                     ? acme::ari_cert_id(leaf->aki, leaf->serial_der)
                                     : "";
    auto r = obtain(ro, state, client, account, *key, domains, replaces, shared);
    if (!r) return std::unexpected(r.error());
    json entry = describe(*r, (*key)->uri().to_string());
    entry["name"] = name;
    entry["renewed"] = true;
    std::string text = describe_text(*r, (*key)->uri().to_string());
    if (o.renew_new_key) {
        entry["old_key"] = old_uri->to_string();
        text += "the old key is no longer used; delete it with: acme-agent key delete --key '" +
                old_uri->to_string() + "'\n";
    }
    return Renewal{std::move(entry), std::move(text)};
}

}  // namespace cli
