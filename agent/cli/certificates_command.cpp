// `acme-agent certificates [--name N]`: what the agent manages, from its storage (the state
// dir or --storage): each certificate's names, key, serial, validity, when it is due and
// why, the last renewal attempt `run` recorded and the account. The CA is only asked for
// its ARI window: when it does not answer, the lifetime rule is shown and the command
// still succeeds.
#include "base/log.h"
#include "cli/common.h"
#include "lifecycle/attempts.h"
#include "lifecycle/deploy_hook.h"
#include "lifecycle/due.h"
#include "x509/cert.h"

#include <sys/stat.h>

#include <cmath>
#include <map>

namespace cli {

namespace {

using Clock = std::chrono::system_clock;

// Text from storage or the CA, for one line of the text output.
std::string shown(std::string_view s) {
    return base::printable(s, base::Lines::escape);
}

struct Inventory {
    json certificates = json::array();
    std::string text;
};

json json_of(const Inventory& inv) {
    return inv.certificates;
}
std::string text_of(const Inventory& inv) {
    return inv.text;
}

// The CA of each server, connected at most once; null (and why) when it does not answer.
class Cas {
  public:
    explicit Cas(const Global& g) : g_(g) {}
    acme::Client* client(const std::string& server, std::string& why) {
        auto it = clients_.find(server);
        if (it == clients_.end()) {
            Global gs = g_;
            gs.server = server;
            it = clients_.emplace(server, connect(gs)).first;
        }
        if (it->second) return it->second->get();
        why = it->second.error().describe();
        return nullptr;
    }

  private:
    const Global& g_;
    std::map<std::string, Result<std::unique_ptr<acme::Client>>> clients_;
};

// When `leaf` is due, by the lifecycle's rule: the renew_before_days it was ordered with,
// else the CA's ARI window when it answers, else the lifetime rule with `offline` saying why
// the CA was not asked.
struct DueView {
    lifecycle::Due due;
    unsigned days = 0;  // the stored renew_before_days, which wins over ARI
    bool ari = false;
    std::string offline;
};
DueView due_of(Cas& cas, const std::string& server, const x509::CertInfo& leaf,
               unsigned renew_before_days) {
    DueView v{};
    acme::Client* client = cas.client(server, v.offline);
    lifecycle::AriSource ari;
    if (client)
        ari = [&]() -> Result<std::optional<acme::RenewalWindow>> {
            auto w = acme::renewal_info(*client, leaf);
            if (!w)
                v.offline = w.error().describe();
            else
                v.ari = w->has_value();
            return w;
        };
    v.days = renew_before_days;
    v.due = lifecycle::due_for_renewal(leaf, renew_before_days, ari);
    return v;
}

// The CA a certificate is shown against: --server when given, else the one it was issued
// from (its renewal record), else the default.
std::string server_of(const Global& g, const json& record) {
    if (g.server_given) return g.server;
    if (auto it = record.find("server"); it != record.end() && it->is_string())
        return it->get<std::string>();
    return g.server;
}

std::string attempt_text(const json& a) {
    if (a["ok"].get<bool>()) return a["at"].get<std::string>() + " succeeded";
    const json& e = a["error"];
    std::string why = e.contains("message") ? e["message"].get<std::string>() : "?";
    if (e.contains("where")) why = e["where"].get<std::string>() + ": " + why;
    return a["at"].get<std::string>() + " failed: " + why;
}

// One stored certificate as an inventory entry, and its lines in `text`.
Result<json> describe_one(const Global& g, const store::Storage& storage, const std::string& name,
                          Cas& cas, std::string& text) {
    auto stored = storage.certificate(name);
    if (!stored) return std::unexpected(stored.error());
    if (!*stored)
        return fail(Errc::not_found, name,
                    "no certificate of this name in " + storage.location() +
                        " (`acme-agent certificates` lists them)");
    auto leaf = x509::inspect((*stored)->cert_pem);
    if (!leaf) return std::unexpected(leaf.error());
    const json record = lifecycle::stored_record(**stored);
    const std::string server = server_of(g, record);
    const std::string key_uri = lifecycle::without_pin((*stored)->key_uri);
    const std::string backend = key_uri.substr(0, key_uri.find(':'));
    const auto days_left = static_cast<long>(
        std::floor(std::chrono::duration<double>(leaf->not_after - Clock::now()).count() / 86400));
    const DueView d = due_of(cas, server, *leaf, lifecycle::stored_renew_before_days(record));

    json entry{{"name", name},
               {"domains", lifecycle::stored_domains(record, *leaf)},
               {"key_uri", key_uri},
               {"backend", backend},
               {"serial", leaf->serial_hex},
               {"not_before", iso_time(leaf->not_before)},
               {"not_after", iso_time(leaf->not_after)},
               {"days_left", days_left},
               {"due",
                {{"at", iso_time(d.due.at)},
                 {"now", d.due.due},
                 {"rule", d.days  ? "renew_before_days"
                          : d.ari ? "ari"
                                  : "lifetime"},
                 {"why", d.due.why}}},
               {"ca",
                {{"server", server},
                 {"reachable", d.offline.empty()},
                 {"error", d.offline.empty() ? json(nullptr) : json(d.offline)}}}};
    auto attempt = lifecycle::last_attempt(g.state_dir, name);
    entry["last_attempt"] = attempt ? *attempt : json(nullptr);
    auto account = storage.account(server);
    if (account && *account)
        entry["account"] = {{"server", server}, {"url", (*account)->url}};
    else
        entry["account"] = nullptr;

    std::string domains;
    for (const auto& n : entry["domains"])
        domains += (domains.empty() ? "" : ", ") + n.get<std::string>();
    text += shown(name) + "\n";
    text += "  names:        " + shown(domains) + "\n";
    text += "  key:          " + shown(key_uri) + " (" + shown(backend) + ")\n";
    text += "  serial:       " + leaf->serial_hex + "\n";
    text += "  not after:    " + iso_time(leaf->not_after) + " (" + std::to_string(days_left) +
            " days left)\n";
    text += "  due:          " + iso_time(d.due.at) + (d.due.due ? ", now" : "") + " (" +
            shown(d.due.why) + ")\n";
    if (!d.offline.empty())
        text += "  CA:           " + shown(server) +
                (d.days ? " did not answer: " : " did not answer, so the lifetime rule: ") +
                shown(d.offline) + "\n";
    text += "  last attempt: " + (attempt ? shown(attempt_text(*attempt)) : "none recorded") + "\n";
    text += "  account:      " +
            (entry["account"].is_null() ? "none stored for " + shown(server)
                                        : shown((*account)->url) + " at " + shown(server)) +
            "\n";
    return entry;
}

}  // namespace

Result<Output> certificates(const Global& g, const CertArgs& a, keystore::Registry& /*reg*/) {
    Inventory inv;
    // A state dir that does not exist has no certificates; opening it would make it.
    struct stat st{};
    if (g.storage.empty() && ::stat(g.state_dir.c_str(), &st) != 0) {
        if (!a.name.empty())
            return fail(Errc::not_found, a.name,
                        "no state dir " + g.state_dir +
                            ", so no certificates (give the agent's --state-dir or --storage)");
        inv.text = "no certificates in " + g.state_dir + "\n";
        return render(inv, json_of, text_of);
    }
    auto storage = store::open_storage(g.state_dir, g.storage);
    if (!storage) return std::unexpected(storage.error());
    std::vector<std::string> names;
    if (!a.name.empty()) {
        names.push_back(a.name);
    } else {
        auto all = (*storage)->certificate_names();
        if (!all) return std::unexpected(all.error());
        names = std::move(*all);
    }
    Cas cas(g);
    for (const auto& name : names) {
        auto entry = describe_one(g, **storage, name, cas, inv.text);
        if (!entry) {
            if (!a.name.empty()) return std::unexpected(entry.error());
            // One unreadable certificate does not hide the others.
            inv.certificates.push_back({{"name", name}, {"error", error_json(entry.error())}});
            inv.text += shown(name) + "\n  error: " + entry.error().describe() + "\n";
            continue;
        }
        inv.certificates.push_back(std::move(*entry));
    }
    if (names.empty()) inv.text = "no certificates in " + (*storage)->location() + "\n";
    return render(inv, json_of, text_of);
}

}  // namespace cli
