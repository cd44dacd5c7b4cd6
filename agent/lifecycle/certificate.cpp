#include "lifecycle/certificate.h"

#include "acme/order.h"
#include "base/log.h"
#include "lifecycle/due.h"
#include "lifecycle/fleet.h"
#include "lifecycle/keys.h"
#include "lifecycle/parallel.h"
#include "store/failpoint.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <random>

namespace lifecycle {

namespace {
// The challenge settings of a certificate, as kept in live/NAME/renewal.json.
json renewal_record(const Settings& s, const std::vector<std::string>& domains) {
    json r{{"server", s.server}, {"domains", domains}, {"challenge", s.challenge}};
    auto put = [&](const char* k, const std::string& v) {
        if (!v.empty()) r[k] = v;
    };
    if (s.challenge == "http-01") {
        if (s.webroot.empty()) put("http_port", s.http_port);
        put("webroot", s.webroot);
    }
    if (s.challenge == "tls-alpn-01") put("tls_alpn_port", s.tls_alpn_port);
    if (s.challenge == "dns-01") {
        put("dns_hook", s.dns_hook);
        put("rfc2136", s.rfc2136);
        put("tsig_key", s.tsig_key);
    }
    put("profile", s.profile);
    put("preferred_chain", s.preferred_chain);
    if (s.renew_before_days) r["renew_before_days"] = s.renew_before_days;
    return r;
}

// Settings for renewing: the stored ones, unless given (not the default) by the caller.
Settings with_renewal_record(const Settings& given, const json& r) {
    Settings s = given;
    const config::CertificateSettings dflt;
    auto take = [&](const char* k, std::string& field, const std::string& d) {
        if (field == d) field = acme::json_string(r, k, d);
    };
    take("challenge", s.challenge, dflt.challenge);
    take("http_port", s.http_port, dflt.http_port);
    take("webroot", s.webroot, dflt.webroot);
    take("tls_alpn_port", s.tls_alpn_port, dflt.tls_alpn_port);
    take("dns_hook", s.dns_hook, dflt.dns_hook);
    take("rfc2136", s.rfc2136, dflt.rfc2136);
    take("tsig_key", s.tsig_key, dflt.tsig_key);
    take("profile", s.profile, dflt.profile);
    take("preferred_chain", s.preferred_chain, dflt.preferred_chain);
    if (s.renew_before_days == dflt.renew_before_days)
        s.renew_before_days = stored_renew_before_days(r);
    return s;
}

}  // namespace

Result<IssueResult> obtain(const Settings& s, store::Storage& state, acme::Client& client,
                           const Account& account, const keystore::KeyPtr& cert_key,
                           const std::vector<std::string>& domains, const std::string& replaces,
                           SharedSolvers* shared, const HeldLease* held) {
    for (const auto& d : domains)
        if (d.starts_with("*.") && s.challenge != "dns-01")
            return fail(Errc::usage, "-d", "the wildcard " + d + " needs --challenge dns-01");
    if (account.key->public_key_der() == cert_key->public_key_der())
        return fail(Errc::usage, "--key",
                    "the certificate key is the account key; use a separate key for each");
    const std::string name = s.name.empty() ? domains.front() : s.name;
    // One agent at a time orders a certificate (a renewal took the lease before deciding), before a
    // responder takes a port that the agent holding it is answering on.
    std::unique_ptr<HeldLease> own_lease;
    if (!held) {
        auto taken = HeldLease::take(state, name);
        if (!taken) return std::unexpected(taken.error());
        own_lease = std::move(*taken);
        held = own_lease.get();
    }
    std::optional<SharedSolvers::Claim> claim;
    if (shared) claim.emplace(*shared, domains);
    std::unique_ptr<challenge::Solver> own;
    challenge::Solver* solver = nullptr;
    auto* fleet = dynamic_cast<store::PgStorage*>(&state);
    const bool publish = fleet && published_kind(s);
    if (shared && !(publish && s.publish_only)) {
        auto got = shared->get(s);
        if (!got) return std::unexpected(got.error());
        solver = *got;
    }
    if (!solver && !(publish && s.publish_only)) {
        auto made = make_solver(s);
        if (!made) return std::unexpected(made.error());
        own = std::move(*made);
        solver = own.get();
    }
    // Fleet mode: every node's responder can answer, whichever the CA reaches.
    std::unique_ptr<challenge::Solver> published;
    if (publish) {
        published = publishing(*fleet, s.challenge, solver);
        solver = published.get();
    }
    // A crashed run's order for the same names and key is continued, not ordered again.
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
    acme::OrderRequest req{domains,   cert_key.get(), solver,
                           s.profile, replaces,       s.preferred_chain,
                           resume,    record,         [held] { return held->check(); }};
    // Orders running side by side (--jobs) tag their progress lines with the name.
    const std::string tag = s.tag_progress ? name + ": " : "";
    auto issued = acme::issue(client, *account.key, account.url, req,
                              [&tag](const std::string& line) { base::log::info(tag + line); });
    if (!issued) {
        // A refused or broken order is over: forget it, leaving the state as it was. After a
        // network fault, or when the CA asked to wait, the record stays, so that the next run
        // resumes the order. Without the lease the record is another agent's to keep.
        if (issued.error().code != Errc::network && !issued.error().retry_at && held->check())
            (void)state.remove_order(name);
        return std::unexpected(issued.error());
    }
    store::Certificate cert{issued->cert_pem, issued->chain_pem, cert_key->uri().to_string(),
                            renewal_record(s, domains).dump(2)};
    if (!s.out.empty())
        if (auto r = store::StateDir::write_pems(s.out, cert); !r)
            return std::unexpected(r.error());
    // A lease lost meanwhile (cut off from a shared store): another agent may hold it now.
    if (auto r = held->check(); !r) return std::unexpected(r.error());
    if (auto r = state.save_certificate(name, cert); !r) return std::unexpected(r.error());
    store::failpoint("stored");
    if (auto r = state.remove_order(name); !r) return std::unexpected(r.error());
    return IssueResult{std::move(*issued),
                       s.out.empty() ? state.certificate_location(name) : s.out};
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

unsigned stored_renew_before_days(const json& record) {
    const auto it = record.find("renew_before_days");
    if (it == record.end() || !it->is_number_unsigned()) return 0;
    const auto days = it->get<std::uint64_t>();
    return days <= 3650 ? static_cast<unsigned>(days) : 0;
}

Result<LookedAgain> look_again(const store::Storage& state, const std::string& name,
                               const std::optional<store::Certificate>& before) {
    auto now = state.certificate(name);
    if (!now) return std::unexpected(now.error());
    const bool changed =
        now->has_value() != before.has_value() || (*now && (*now)->cert_pem != before->cert_pem);
    return LookedAgain{std::move(*now), changed};
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

// The key a renewal with --new-key puts the certificate on. Its URI is recorded before it
// is generated: a rerun after a crash finds (or makes) that one key, never a second.
Result<keystore::KeyPtr> fresh_key(const Settings& s, keystore::Registry& reg,
                                   store::Storage& state, const std::string& name,
                                   const store::Certificate& stored, const keystore::KeyUri& old) {
    Result<keystore::KeyPtr> key = std::unexpected(Error{});
    std::optional<keystore::KeyUri> next;
    bool recorded = false;  // a crashed run chose this location (and may have made the key)
    if (auto rec = state.order(name); rec && *rec) {
        auto j = json::parse(**rec, nullptr, false);
        if (auto k = acme::json_string(j, "key"); !k.empty() && k != stored.key_uri)
            if (auto u = keystore::KeyUri::parse(k)) {
                next = *u;
                recorded = true;
            }
    }
    if (!next) {
        auto made = successor(old);
        if (!made) return std::unexpected(made.error());
        next = *made;
        if (auto r = state.save_order(name, json{{"key", next->to_string()}}.dump(2)); !r)
            return std::unexpected(r.error());
    }
    store::failpoint("new-key-recorded");
    if (recorded) key = open_signing_key(reg, *next, s.allow_weak_key);
    if (!recorded || (!key && key.error().code == Errc::not_found)) {
        auto old_key = reg.open(old);
        key = reg.generate(*next,
                           old_key ? (*old_key)->algorithm() : keystore::KeyAlgorithm::ec_p256);
        if (key) {
            // Record the full URI (the backend may add an id) for the order.
            if (auto r = state.save_order(name, json{{"key", (*key)->uri().to_string()}}.dump(2));
                !r)
                return std::unexpected(r.error());
        }
        store::failpoint("new-key-generated");
    }
    return key;
}

}  // namespace

namespace {
// renew_one with the record `stored` as just read.
Result<Renewal> renew_stored(const Settings& s, keystore::Registry& reg, store::Storage& state,
                             acme::Client& client, const Account& account, const std::string& name,
                             const std::optional<store::Certificate>* stored,
                             SharedSolvers* shared) {
    if (!*stored)
        return fail(Errc::not_found, "renew",
                    "no certificate named '" + name + "' in " + state.location());
    auto leaf = x509::inspect((*stored)->cert_pem);
    if (!leaf) return std::unexpected(leaf.error());
    const json record = stored_record(**stored);
    Settings rs = with_renewal_record(s, record);
    rs.name = name;  // stored back under the name it has, whatever its first domain
    const std::vector<std::string> domains = stored_domains(record, *leaf);
    // --force renews whatever the CA's renewal window says (or whether it answers).
    auto due = s.force ? Result<Due>(Due{true, std::chrono::system_clock::now(), "--force", {}})
                       : due_for_renewal(client, *leaf, rs.renew_before_days);
    if (!due) return std::unexpected(due.error());
    if (!s.force && !due->due) {
        base::log::info("renew: " + name + " not due until " + iso_time(due->at) + " (" + due->why +
                        ")");
        return Renewal{name, std::nullopt, due->at, "", ""};
    }
    // Due: take the lease, then look again (another agent may just have renewed it).
    auto lease = HeldLease::take(state, name);
    if (!lease) return std::unexpected(lease.error());
    auto again = look_again(state, name, *stored);
    if (!again) return std::unexpected(again.error());
    if (again->changed) {
        base::log::info("renew: " + name + " was renewed meanwhile by another agent");
        return Renewal{name, std::nullopt, due->at, "", ""};
    }
    // What this machine needs for the order is checked before newOrder. A shared
    // responder (renew --all) may be listening for another order: SharedSolvers::get
    // probes its port once, before the first order on it.
    if (auto r = check_local(rs, shared == nullptr); !r) return std::unexpected(r.error());
    if ((*stored)->key_uri.empty()) return fail(Errc::usage, "key.uri", "a key URI is required");
    auto old_uri = keystore::KeyUri::parse((*stored)->key_uri);
    if (!old_uri) {
        Error e = old_uri.error();
        e.where = "key.uri";
        return std::unexpected(e);
    }
    auto key = s.new_key ? fresh_key(s, reg, state, name, **stored, *old_uri)
                         : open_signing_key(reg, *old_uri, s.allow_weak_key);
    if (!key) return std::unexpected(key.error());
    auto r = obtain(rs, state, client, account, *key, domains, replaces_id(client, *leaf), shared,
                    lease->get());
    if (!r) return std::unexpected(r.error());
    return Renewal{
        name, std::move(*r), {}, (*key)->uri().to_string(), s.new_key ? old_uri->to_string() : ""};
}
}  // namespace

Result<Renewal> renew_one(const Settings& s, keystore::Registry& reg, store::Storage& state,
                          acme::Client& client, const Account& account, const std::string& name,
                          SharedSolvers* shared) {
    auto stored = state.certificate(name);
    if (!stored) return std::unexpected(stored.error());
    return renew_stored(s, reg, state, client, account, name, &*stored, shared);
}

std::vector<Result<Renewal>> renew_each(const Settings& s, keystore::Registry& reg,
                                        store::Storage& state, acme::Client& client,
                                        const Account& account,
                                        const std::vector<std::string>& names, unsigned jobs) {
    constexpr std::size_t kBatch = 500;  // records in memory at a time
    std::vector<Result<Renewal>> results(names.size(), std::unexpected(base::Error{}));
    SharedSolvers shared;
    for (std::size_t first = 0; first < names.size(); first += kBatch) {
        const std::vector<std::string> batch(
            names.begin() + static_cast<long>(first),
            names.begin() + static_cast<long>(std::min(first + kBatch, names.size())));
        auto stored = state.certificates(batch);
        run_parallel(
            batch.size(), jobs,
            [&](std::size_t i) {
                results[first + i] = stored ? renew_stored(s, reg, state, client, account, batch[i],
                                                           &(*stored)[i], &shared)
                                            : Result<Renewal>(std::unexpected(stored.error()));
            },
            [&](std::size_t i, const char* what) {
                results[first + i] =
                    fail(Errc::internal, "renew", std::string("internal error: ") + what);
            });
    }
    return results;
}

}  // namespace lifecycle
