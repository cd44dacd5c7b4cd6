#include "lifecycle/issue.h"

#include "acme/account.h"
#include "acme/certificate.h"
#include "base/files.h"
#include "base/log.h"
#include "lifecycle/batch.h"
#include "lifecycle/due.h"
#include "lifecycle/keys.h"
#include "lifecycle/parallel.h"
#include "lifecycle/solvers.h"
#include "store/open.h"
#include "x509/cert.h"

#include <future>

namespace lifecycle {

namespace {

// issue must not silently replace live/NAME when it holds a certificate on another key
// (the old key may be the one a web server is configured with).
Result<void> check_replacement(const Settings& s, const store::Storage& state,
                               const std::string& name, const keystore::Key& key) {
    if (s.force) return {};
    auto stored = state.certificate(name);
    if (!stored) return std::unexpected(stored.error());
    if (!*stored) return {};
    auto leaf = x509::inspect((*stored)->cert_pem);
    if (!leaf || leaf->spki == key.public_key_der()) return {};
    return fail(Errc::usage, "issue",
                state.certificate_location(name) + " holds a certificate for another key (" +
                    (*stored)->key_uri +
                    "); to move it to a new key run 'acme-agent renew --name " + name +
                    " --new-key', to replace it with this key give --force");
}

// The key at `uri`, generated there (ec-p256) on the first run only.
Result<keystore::KeyPtr> open_or_generate(const Globals& g, keystore::Registry& reg,
                                          const keystore::KeyUri& uri, bool& made) {
    auto key = open_signing_key(reg, uri, g.allow_weak_key);
    if (key || key.error().code != Errc::not_found) return key;
    made = true;
    return reg.generate(uri, keystore::KeyAlgorithm::ec_p256);
}

}  // namespace

Result<std::vector<BatchItem>> issue_batch(const Globals& g, const Settings& s,
                                           const AccountChoice& a, const std::string& file,
                                           unsigned jobs, keystore::Registry& reg) {
    auto orders = read_batch(file);
    if (!orders) return std::unexpected(orders.error());
    auto where = [&](const BatchOrder& b) { return file + ":" + std::to_string(b.line); };
    for (auto& b : *orders)
        for (auto& d : b.names)
            if (d.starts_with("*.") && s.challenge != "dns-01")
                return fail(Errc::usage, where(b),
                            "the wildcard " + d + " needs --challenge dns-01");
    if (auto solver = make_solver(s); !solver) return std::unexpected(solver.error());
    if (auto r = check_local(s); !r) return std::unexpected(r.error());
    auto state = store::open_storage(g.state_dir, g.storage);
    if (!state) return std::unexpected(state.error());
    std::vector<keystore::KeyPtr> keys;
    for (auto& b : *orders) {
        auto key = open_signing_key(reg, b.key, g.allow_weak_key);
        if (key)
            if (auto r = check_replacement(s, **state, b.names.front(), **key); !r)
                key = std::unexpected(r.error());
        if (!key) {
            Error e = key.error();
            e.where = where(b) + (e.where.empty() ? "" : ": " + e.where);
            return std::unexpected(e);
        }
        keys.push_back(std::move(*key));
    }
    if (auto r = have_account(g, a, **state); !r) return std::unexpected(r.error());
    auto client = connect(g);
    if (!client) return std::unexpected(client.error());
    auto account = account_for(g, a, reg, **state, **client, true);
    if (!account) return std::unexpected(account.error());
    for (std::size_t i = 0; i < keys.size(); ++i)
        if (keys[i]->public_key_der() == account->key->public_key_der())
            return fail(Errc::usage, where((*orders)[i]),
                        "the certificate key is the account key; use a separate key for each");

    const std::size_t n = orders->size();
    std::vector<Result<IssueResult>> results(n, std::unexpected(Error{}));
    SharedSolvers shared;
    run_parallel(
        n, jobs,
        [&](std::size_t i) {
            results[i] =
                obtain(s, **state, **client, *account, keys[i], (*orders)[i].names, "", &shared);
        },
        [&](std::size_t i, const char* what) {
            results[i] = fail(Errc::internal, "issue", std::string("internal error: ") + what);
        });
    std::vector<BatchItem> items;
    for (std::size_t i = 0; i < n; ++i) {
        const BatchOrder& b = (*orders)[i];
        items.push_back(
            {b.names.front(), where(b), keys[i]->uri().to_string(), b.line, std::move(results[i])});
    }
    base::log::debug("batch: " + std::to_string((*client)->requests()) + " requests over " +
                     std::to_string((*client)->connections()) + " connections");
    return items;
}

Result<Issued> issue(const Globals& g, const Settings& s, const AccountChoice& a,
                     const std::string& key, const std::vector<std::string>& domains,
                     keystore::Registry& reg) {
    auto uri = parse_uri(key, "--key");
    if (!uri) return std::unexpected(uri.error());
    if (auto solver = make_solver(s); !solver) return std::unexpected(solver.error());
    if (auto r = check_local(s); !r) return std::unexpected(r.error());
    auto state = store::open_storage(g.state_dir, g.storage);
    if (!state) return std::unexpected(state.error());
    // The CA's TLS handshake and directory on another thread while the token loads and
    // logs in (several ms each with SoftHSM): the cold start is the longer of the two, not
    // the sum. Local errors still come first, the key's, then a missing account; returning
    // one waits for connect() to end (its timeouts bound that).
    auto connecting = std::async(std::launch::async, [&g] { return connect(g); });
    auto cert_key = open_signing_key(reg, *uri, g.allow_weak_key);
    if (!cert_key) return std::unexpected(cert_key.error());
    if (auto r = check_replacement(s, **state, domains.front(), **cert_key); !r)
        return std::unexpected(r.error());
    if (auto r = have_account(g, a, **state); !r) return std::unexpected(r.error());
    auto client = connecting.get();
    if (!client) return std::unexpected(client.error());
    auto account = account_for(g, a, reg, **state, **client, true);
    if (!account) return std::unexpected(account.error());
    auto r = obtain(s, **state, **client, *account, *cert_key, domains, "");
    if (!r) return std::unexpected(r.error());
    return Issued{std::move(*r), (*cert_key)->uri().to_string(), domains.front(),
                  account->url,  (*client)->requests(),          (*client)->connections()};
}

Result<Renewed> renew(const Globals& g, const Settings& s, const AccountChoice& a,
                      const std::string& name, bool all, unsigned jobs, keystore::Registry& reg) {
    auto session = open_session(g, a, reg, false);
    if (!session) return std::unexpected(session.error());
    auto& [state, client, account] = *session;
    Renewed out{{name}, {}};
    if (!all) {
        out.results.push_back(renew_one(s, reg, *state, *client, account, name));
        if (!out.results.back()) return std::unexpected(out.results.back().error());
        return out;
    }
    auto names = state->certificate_names();
    if (!names) return std::unexpected(names.error());
    out.names = std::move(*names);
    out.results = renew_each(s, reg, *state, *client, account, out.names, jobs);
    return out;
}

Result<Enrolled> enroll(const Globals& g, const Settings& s, const AccountChoice& a,
                        const std::string& key, const std::vector<std::string>& domains,
                        keystore::Registry& reg) {
    auto state = store::open_storage(g.state_dir, g.storage);
    if (!state) return std::unexpected(state.error());
    const std::string& name = domains.front();
    // The TPM key files stay on this machine, in the state dir, whatever the storage.
    std::optional<store::StateDir> keys_home;
    auto* dir = dynamic_cast<store::StateDir*>(state->get());
    if (!dir) {
        auto opened = store::StateDir::open(g.state_dir);
        if (!opened) return std::unexpected(opened.error());
        dir = &keys_home.emplace(std::move(*opened));
    }
    auto key_dir = dir->key_dir();
    if (!key_dir) return std::unexpected(key_dir.error());
    const std::string& keys = *key_dir;
    auto account_uri =
        parse_uri(a.account_key.empty() ? "tpm2:path=" + keys + "/account.tss" : a.account_key,
                  "--account-key");
    if (!account_uri) return std::unexpected(account_uri.error());
    auto device_uri = parse_uri(
        key.empty() ? "tpm2:path=" + keys + "/" + store::safe_name(name) + ".tss" : key, "--key");
    if (!device_uri) return std::unexpected(device_uri.error());

    // Later boots: nothing to do while the certificate is there and not due.
    if (auto stored = (*state)->certificate(name); stored && *stored) {
        if (auto leaf = x509::inspect((**stored).cert_pem)) {
            // Before any network: the lifetime rule, never the CA's ARI window.
            if (!due_for_renewal(*leaf, 0, nullptr).due && !s.force)
                return Enrolled{name, (**stored).key_uri, "", leaf->not_after, {}, {}};
        }
    }
    if (auto r = check_local(s); !r) return std::unexpected(r.error());
    // An account registered before for this server (account register, an earlier enroll)
    // is the device's account: registering another would replace it in the state dir.
    auto stored_account = (*state)->account(g.server);
    if (!stored_account) return std::unexpected(stored_account.error());
    const bool reuse_account = a.account_key.empty() && stored_account->has_value();
    bool made_account = false, made_device = false;
    AccountChoice ao = a;
    if (!reuse_account) {
        auto account_key = open_or_generate(g, reg, *account_uri, made_account);
        if (!account_key) return std::unexpected(account_key.error());
        ao.account_key = (*account_key)->uri().to_string();
    } else {
        base::log::info("enroll: using the account registered before, " + (*stored_account)->url);
    }
    auto device_key = open_or_generate(g, reg, *device_uri, made_device);
    if (!device_key) return std::unexpected(device_key.error());
    auto client = connect(g);
    if (!client) return std::unexpected(client.error());
    auto account = account_for(g, ao, reg, **state, **client, true);
    if (!account) return std::unexpected(account.error());
    auto r = obtain(s, **state, **client, *account, *device_key, domains, "");
    if (!r) return std::unexpected(r.error());
    return Enrolled{name,          (*device_key)->uri().to_string(),
                    account->url,  {},
                    std::move(*r), Enrolled::NewKeys{made_account, made_device}};
}

Result<Revoked> revoke(const Globals& g, const RevokeRequest& req, const AccountChoice& a,
                       keystore::Registry& reg) {
    auto pem = base::read_file(req.cert_file, 1 << 20);
    if (!pem) return std::unexpected(pem.error());
    auto blocks = x509::split_chain(*pem);
    if (!blocks) return fail(Errc::usage, "--cert", req.cert_file + " holds no PEM certificate");
    auto leaf = x509::inspect(blocks->front());
    if (!leaf) return std::unexpected(leaf.error());
    std::optional<int> reason;
    if (!req.reason.empty()) {
        reason = acme::parse_reason(req.reason);
        if (!reason)
            return fail(Errc::usage, "--reason",
                        "unknown reason '" + req.reason +
                            "' (keyCompromise, superseded, cessationOfOperation, "
                            "affiliationChanged, unspecified, or RFC 5280 code)");
    }
    auto state = store::open_storage(g.state_dir, g.storage);
    if (!state) return std::unexpected(state.error());
    auto client = connect(g);
    if (!client) return std::unexpected(client.error());
    std::string signed_by;
    if (req.with_cert_key) {
        auto uri = parse_uri(req.key, "--key");
        if (!uri) return std::unexpected(uri.error());
        auto key = reg.open(*uri);
        if (!key) return std::unexpected(key.error());
        if ((*key)->public_key_der() != leaf->spki)
            return fail(Errc::usage, "--key",
                        "that key is not the key of the certificate in " + req.cert_file);
        if (auto r = acme::revoke(**client, **key, std::nullopt, leaf->der, reason); !r)
            return std::unexpected(r.error());
        signed_by = (*key)->uri().to_string();
    } else {
        auto account = account_for(g, a, reg, **state, **client, false);
        if (!account) return std::unexpected(account.error());
        if (auto r = acme::revoke(**client, *account->key, account->url, leaf->der, reason); !r)
            return std::unexpected(r.error());
        signed_by = account->url;
    }
    return Revoked{leaf->serial_hex, signed_by, reason};
}

}  // namespace lifecycle
