#include "store/copy.h"

namespace store {

using base::Errc;
using base::fail;

namespace {

bool same(const Certificate& a, const Certificate& b) {
    return a.cert_pem == b.cert_pem && a.chain_pem == b.chain_pem && a.key_uri == b.key_uri &&
           a.renewal == b.renewal;
}

}  // namespace

Result<Copied> copy_state(const Storage& from, Storage& to, bool overwrite) {
    auto servers = from.account_servers();
    if (!servers) return std::unexpected(servers.error());
    auto names = from.certificate_names();
    if (!names) return std::unexpected(names.error());
    auto in_flight = from.order_names();
    if (!in_flight) return std::unexpected(in_flight.error());

    // First every check, then every write: a conflict leaves `to` as it was.
    Copied n;
    std::vector<Account> accounts;
    for (const auto& server : *servers) {
        auto a = from.account(server);
        if (!a) return std::unexpected(a.error());
        if (!*a) continue;
        auto there = to.account(server);
        if (!there) return std::unexpected(there.error());
        if (*there && (*there)->url == (*a)->url && (*there)->key_uri == (*a)->key_uri) {
            ++n.unchanged;
            continue;
        }
        if (*there && !overwrite)
            return fail(Errc::exists, "storage migrate",
                        to.location() + " already has another account for " + server +
                            " (--overwrite replaces it)");
        accounts.push_back(**a);
    }
    std::vector<std::pair<std::string, Certificate>> certs;
    for (const auto& name : *names) {
        auto c = from.certificate(name);
        if (!c) return std::unexpected(c.error());
        if (!*c) continue;
        auto there = to.certificate(name);
        if (!there) return std::unexpected(there.error());
        if (*there && same(**there, **c)) {
            ++n.unchanged;  // saved again, it would look renewed to every node
            continue;
        }
        if (*there && !overwrite)
            return fail(Errc::exists, "storage migrate",
                        to.location() + " already has another certificate " + name +
                            " (--overwrite replaces it)");
        certs.emplace_back(name, std::move(**c));
    }
    std::vector<std::pair<std::string, std::string>> orders;
    for (const auto& name : *in_flight) {
        auto o = from.order(name);
        if (!o) return std::unexpected(o.error());
        if (*o) orders.emplace_back(name, std::move(**o));
    }

    for (const auto& a : accounts) {
        if (auto r = to.save_account(a); !r) return std::unexpected(r.error());
        ++n.accounts;
    }
    for (const auto& [name, cert] : certs) {
        if (auto r = to.save_certificate(name, cert); !r) return std::unexpected(r.error());
        ++n.certificates;
    }
    for (const auto& [name, body] : orders) {
        if (auto r = to.save_order(name, body); !r) return std::unexpected(r.error());
        ++n.orders;
    }
    return n;
}

}  // namespace store
