#include "lifecycle/inventory.h"

#include "acme/certificate.h"
#include "lifecycle/account.h"
#include "lifecycle/attempts.h"
#include "lifecycle/certificate.h"
#include "lifecycle/deploy_hook.h"
#include "store/open.h"
#include "x509/cert.h"

#include <cmath>
#include <map>

namespace lifecycle {

namespace {

using base::Errc;
using base::fail;
using Clock = std::chrono::system_clock;

// The CA of each server, connected at most once; null (and why) when it does not answer.
class Cas {
  public:
    explicit Cas(const Globals& g) : g_(g) {}
    acme::Client* client(const std::string& server, std::string& why) {
        auto it = clients_.find(server);
        if (it == clients_.end()) {
            Globals gs = g_;
            gs.server = server;
            it = clients_.emplace(server, connect(gs)).first;
        }
        if (it->second) return it->second->get();
        why = it->second.error().describe();
        return nullptr;
    }

  private:
    const Globals& g_;
    std::map<std::string, Result<std::unique_ptr<acme::Client>>> clients_;
};

// When `leaf` is due, by the lifecycle's rule: the renew_before_days it was ordered with,
// else the CA's ARI window when it answers, else the lifetime rule with e.ca_error saying
// why the CA was not asked.
void judge_due(Cas& cas, const x509::CertInfo& leaf, unsigned renew_before_days,
               InventoryEntry& e) {
    acme::Client* client = cas.client(e.server, e.ca_error);
    bool ari_window = false;
    AriSource ari;
    if (client)
        ari = [&]() -> Result<std::optional<acme::RenewalWindow>> {
            auto w = acme::renewal_info(*client, leaf);
            if (!w)
                e.ca_error = w.error().describe();
            else
                ari_window = w->has_value();
            return w;
        };
    e.due = due_for_renewal(leaf, renew_before_days, ari);
    e.rule = renew_before_days ? "renew_before_days" : ari_window ? "ari" : "lifetime";
}

// The CA a certificate is judged against: the given server, else the one it was issued
// from (its renewal record), else the default.
std::string server_of(const Globals& g, bool server_given, const json& record) {
    if (server_given) return g.server;
    if (auto it = record.find("server"); it != record.end() && it->is_string())
        return it->get<std::string>();
    return g.server;
}

Result<InventoryEntry> entry_of(const Globals& g, bool server_given, const store::Storage& storage,
                                const std::string& name, Cas& cas) {
    auto stored = storage.certificate(name);
    if (!stored) return std::unexpected(stored.error());
    if (!*stored)
        return fail(Errc::not_found, name,
                    "no certificate of this name in " + storage.location() +
                        " (`acme-agent certificates` lists them)");
    auto leaf = x509::inspect((*stored)->cert_pem);
    if (!leaf) return std::unexpected(leaf.error());
    const json record = stored_record(**stored);
    InventoryEntry e;
    e.server = server_of(g, server_given, record);
    e.key_uri = without_pin((*stored)->key_uri);
    e.backend = e.key_uri.substr(0, e.key_uri.find(':'));
    e.domains = stored_domains(record, *leaf);
    e.serial = leaf->serial_hex;
    e.not_before = leaf->not_before;
    e.not_after = leaf->not_after;
    e.days_left = static_cast<long>(
        std::floor(std::chrono::duration<double>(leaf->not_after - Clock::now()).count() / 86400));
    judge_due(cas, *leaf, stored_renew_before_days(record), e);
    e.last_attempt = last_attempt(g.state_dir, name);
    if (auto account = storage.account(e.server); account && *account) e.account = (*account)->url;
    return e;
}

}  // namespace

Result<Inventory> inventory(const Globals& g, const std::string& only, bool server_given) {
    if (store::storage_absent(g.state_dir, g.storage)) {
        if (!only.empty())
            return fail(Errc::not_found, only,
                        "no state dir " + g.state_dir +
                            ", so no certificates (give the agent's --state-dir or --storage)");
        return Inventory{g.state_dir, {}};
    }
    auto storage = store::open_storage(g.state_dir, g.storage);
    if (!storage) return std::unexpected(storage.error());
    std::vector<std::string> names;
    if (!only.empty()) {
        names.push_back(only);
    } else {
        auto all = (*storage)->certificate_names();
        if (!all) return std::unexpected(all.error());
        names = std::move(*all);
    }
    Inventory inv{(*storage)->location(), {}};
    Cas cas(g);
    for (const auto& name : names) {
        auto entry = entry_of(g, server_given, **storage, name, cas);
        if (!entry && !only.empty()) return std::unexpected(entry.error());
        inv.items.push_back({name, std::move(entry)});
    }
    return inv;
}

}  // namespace lifecycle
