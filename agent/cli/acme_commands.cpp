#include "cli/common.h"

#include "acme/account.h"
#include "base/files.h"
#include "base/log.h"
#include "cli/exit_codes.h"
#include "lifecycle/batch.h"
#include "lifecycle/certificate.h"
#include "lifecycle/due.h"
#include "lifecycle/parallel.h"
#include "lifecycle/solvers.h"
#include "store/failpoint.h"
#include "x509/cert.h"

#include <algorithm>
#include <cstdio>
#include <future>
#include <random>

namespace cli {

using lifecycle::BatchOrder;
using lifecycle::IssueResult;
using lifecycle::kMaxJobs;
using lifecycle::kMinJobs;
using lifecycle::read_batch;
using lifecycle::Renewal;
using lifecycle::SharedSolvers;

namespace {

// account register | show | update | deactivate | rollover: lifecycle/account.h does them.
json json_of(const lifecycle::Registered& r) {
    return {{"account", r.account}, {"server", r.server}, {"key", r.key}};
}
std::string text_of(const lifecycle::Registered& r) {
    return "account: " + r.account + "\n";
}

json json_of(const lifecycle::AccountShown& r) {
    json j{{"account", r.account},
           {"server", r.server},
           {"key", r.key},
           {"status", r.info.status},
           {"contact", r.info.contacts}};
    if (!r.info.orders.empty()) j["orders"] = r.info.orders;
    if (r.info.contacts_dropped) j["contact_dropped"] = r.info.contacts_dropped;
    return j;
}
std::string text_of(const lifecycle::AccountShown& r) {
    std::string text =
        "account: " + r.account + "\nstatus:  " + r.info.status + "\nkey:     " + r.key + "\n";
    for (const auto& c : r.info.contacts) text += "contact: " + c + "\n";
    if (r.info.contacts_dropped)
        text += "contact: (" + std::to_string(r.info.contacts_dropped) +
                " more not shown: not strings, over " +
                std::to_string(acme::AccountInfo::kMaxContactLength) + " bytes or past " +
                std::to_string(acme::AccountInfo::kMaxContacts) + ")\n";
    return text;
}

json json_of(const lifecycle::AccountUpdated& r) {
    return {{"account", r.account}, {"contact", r.contact}};
}
std::string text_of(const lifecycle::AccountUpdated& r) {
    return "account: " + r.account + " updated\n";
}

json json_of(const lifecycle::Deactivated& r) {
    return {{"account", r.account}, {"status", "deactivated"}};
}
std::string text_of(const lifecycle::Deactivated& r) {
    return "account: " + r.account + " deactivated; the CA will refuse it from now on\n";
}

json json_of(const lifecycle::RolledOver& r) {
    return {{"account", r.account}, {"key", r.key}, {"old_key", r.old_key}};
}
std::string text_of(const lifecycle::RolledOver& r) {
    return "account: " + r.account + " now uses " + r.key + "\n";
}

// A lifecycle result, rendered.
template <class R>
Result<Output> rendered(const Result<R>& r) {
    if (!r) return std::unexpected(r.error());
    return render(*r, json_of, text_of);
}

}  // namespace

Result<Output> account_register(const Global& g, const AccountArgs& a, keystore::Registry& reg) {
    return rendered(lifecycle::register_account(g, a, a.key, reg));
}

Result<Output> account_show(const Global& g, const AccountArgs& a, keystore::Registry& reg) {
    return rendered(lifecycle::show_account(g, a, reg));
}

Result<Output> account_update(const Global& g, const AccountArgs& a, keystore::Registry& reg) {
    return rendered(lifecycle::update_account(g, a, reg));
}

Result<Output> account_deactivate(const Global& g, const AccountArgs& a, keystore::Registry& reg) {
    return rendered(lifecycle::deactivate_account(g, a, reg, [&a](const std::string& url) {
        return confirm(a.yes, "account deactivate",
                       "Deactivate the account " + url +
                           " at the CA? It cannot be undone: the CA will refuse it from then on.");
    }));
}

Result<Output> account_rollover(const Global& g, const AccountArgs& a, keystore::Registry& reg) {
    return rendered(lifecycle::rollover_account(g, a, a.new_key, reg));
}

namespace {

// issue must not silently replace live/NAME when it holds a certificate on another key
// (the old key may be the one a web server is configured with).
Result<void> check_replacement(const CertArgs& a, const store::Storage& state,
                               const std::string& name, const keystore::Key& key) {
    if (a.force) return {};
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

// --jobs N: 1..64.
Result<void> check_jobs(const CertArgs& a) {
    if (a.jobs < kMinJobs || a.jobs > kMaxJobs)
        return fail(Errc::usage, "--jobs",
                    "give between " + std::to_string(kMinJobs) + " and " +
                        std::to_string(kMaxJobs) + " concurrent orders");
    return {};
}

// The JSON entry of an order that failed.
json failure_entry(const std::string& name, const Error& e) {
    return {
        {"name", name}, {"ok", false}, {"exit_code", exit_code(e.code)}, {"error", error_json(e)}};
}

// The summary line of several orders; the first failure, if any, becomes the command's.
void summarize(Output& out, const std::string& line, std::size_t total, const Failures& failures) {
    out.text += line + "\n";
    out.failure = failures.summary(total);
}

// issue --batch: one order's outcome.
struct BatchItem {
    std::string name, where, key_uri;
    std::size_t line;
    const Result<IssueResult>& result;
};
json json_of(const BatchItem& b) {
    json entry;
    if (b.result) {
        entry = lifecycle::describe(*b.result, b.key_uri);
        entry["name"] = b.name;
        entry["ok"] = true;
    } else {
        entry = failure_entry(b.name, b.result.error());
        entry["key"] = b.key_uri;
    }
    entry["line"] = b.line;
    return entry;
}
std::string text_of(const BatchItem& b) {
    if (b.result) return lifecycle::describe_text(*b.result, b.key_uri) + "\n";
    return b.name + " (" + b.where + "): error: " + b.result.error().describe() + "\n\n";
}

// issue --batch FILE: every line checked and every key opened before any order starts,
// then the orders run --jobs at a time on one client, one account and shared responders.
Result<Output> issue_batch(const Global& g, const CertArgs& a, keystore::Registry& reg) {
    if (!a.key.empty() || !a.domains.empty())
        return fail(Errc::usage, "--batch",
                    "the batch file gives each order's key and names; drop --key and -d");
    if (!a.out.empty())
        return fail(Errc::usage, "--out",
                    "--out holds one certificate; with --batch they go to the state dir");
    if (auto r = check_jobs(a); !r) return std::unexpected(r.error());
    auto orders = read_batch(a.batch);
    if (!orders) return std::unexpected(orders.error());
    auto where = [&](const BatchOrder& b) { return a.batch + ":" + std::to_string(b.line); };
    for (auto& b : *orders)
        for (auto& d : b.names)
            if (d.starts_with("*.") && a.challenge != "dns-01")
                return fail(Errc::usage, where(b),
                            "the wildcard " + d + " needs --challenge dns-01");
    if (auto solver = lifecycle::make_solver(a); !solver) return std::unexpected(solver.error());
    if (auto r = lifecycle::check_local(settings(g, a)); !r) return std::unexpected(r.error());
    auto state = store::open_storage(g.state_dir, g.storage);
    if (!state) return std::unexpected(state.error());
    std::vector<keystore::KeyPtr> keys;
    for (auto& b : *orders) {
        auto key = open_signing_key(g, reg, b.key);
        if (key)
            if (auto r = check_replacement(a, **state, b.names.front(), **key); !r)
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
    lifecycle::run_parallel(
        n, a.jobs,
        [&](std::size_t i) {
            results[i] = lifecycle::obtain(settings(g, a), **state, **client, *account, keys[i],
                                           (*orders)[i].names, "", &shared);
        },
        [&](std::size_t i, const char* what) {
            results[i] = fail(Errc::internal, "issue", std::string("internal error: ") + what);
        });

    Output out;
    out.data = json::array();
    Failures failures;
    for (std::size_t i = 0; i < n; ++i) {
        const BatchOrder& b = (*orders)[i];
        const BatchItem item{b.names.front(), where(b), keys[i]->uri().to_string(), b.line,
                             results[i]};
        out.data.push_back(json_of(item));
        out.text += text_of(item);
        if (!results[i]) failures.add(results[i].error(), item.where + " " + item.name);
    }
    const std::size_t failed = failures.count;
    summarize(out,
              "issued " + std::to_string(n - failed) + " of " + std::to_string(n) +
                  (failed ? ", " + std::to_string(failed) + " failed" : ""),
              n, failures);
    base::log::debug("batch: " + std::to_string((*client)->requests()) + " requests over " +
                     std::to_string((*client)->connections()) + " connections");
    return out;
}

}  // namespace

namespace {
// issue: the certificate, and what it took
struct Issued {
    IssueResult r;
    std::string key_uri, name, account;
    unsigned long requests;
    long connections;
};
json json_of(const Issued& i) {
    json j = lifecycle::describe(i.r, i.key_uri);
    j["name"] = i.name;
    j["account"] = i.account;
    j["requests"] = i.requests;
    j["connections"] = i.connections;
    return j;
}
std::string text_of(const Issued& i) {
    return lifecycle::describe_text(i.r, i.key_uri);
}
}  // namespace

Result<Output> issue(const Global& g, const CertArgs& a, keystore::Registry& reg) {
    if (!a.batch.empty()) return issue_batch(g, a, reg);
    if (a.jobs != 1)
        return fail(Errc::usage, "--jobs", "--jobs runs the orders of --batch FILE side by side");
    if (a.domains.empty()) return fail(Errc::usage, "-d", "name at least one domain with -d");
    auto uri = parse_uri(a.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    if (auto solver = lifecycle::make_solver(a); !solver) return std::unexpected(solver.error());
    if (auto r = lifecycle::check_local(settings(g, a)); !r) return std::unexpected(r.error());
    auto state = store::open_storage(g.state_dir, g.storage);
    if (!state) return std::unexpected(state.error());
    // The CA's TLS handshake and directory on another thread while the token loads and
    // logs in (several ms each with SoftHSM): the cold start is the longer of the two, not
    // the sum. Local errors still come first, the key's, then a missing account; returning
    // one waits for connect() to end (its timeouts bound that).
    auto connecting = std::async(std::launch::async, [&g] { return connect(g); });
    auto cert_key = open_signing_key(g, reg, *uri);
    if (!cert_key) return std::unexpected(cert_key.error());
    if (auto r = check_replacement(a, **state, a.domains.front(), **cert_key); !r)
        return std::unexpected(r.error());
    if (auto r = have_account(g, a, **state); !r) return std::unexpected(r.error());
    auto client = connecting.get();
    if (!client) return std::unexpected(client.error());
    auto account = account_for(g, a, reg, **state, **client, true);
    if (!account) return std::unexpected(account.error());
    auto r =
        lifecycle::obtain(settings(g, a), **state, **client, *account, *cert_key, a.domains, "");
    if (!r) return std::unexpected(r.error());
    return render(Issued{std::move(*r), (*cert_key)->uri().to_string(), a.domains.front(),
                         account->url, (*client)->requests(), (*client)->connections()},
                  json_of, text_of);
}

namespace {
// The key at `uri`, generated there (ec-p256) on the first run only.
Result<keystore::KeyPtr> open_or_generate(const Global& g, keystore::Registry& reg,
                                          const keystore::KeyUri& uri, bool& made) {
    auto key = open_signing_key(g, reg, uri);
    if (key || key.error().code != Errc::not_found) return key;
    made = true;
    return reg.generate(uri, keystore::KeyAlgorithm::ec_p256);
}
}  // namespace

namespace {
// enroll: the certificate just issued, or (issued empty) the valid one already there.
struct Enrolled {
    std::string name, key_uri, account;
    std::chrono::system_clock::time_point not_after;  // without `issued`
    std::optional<IssueResult> issued;
    struct NewKeys {
        bool account, device;
    } new_keys;
};
json json_of(const Enrolled& e) {
    if (!e.issued)
        return {{"name", e.name},
                {"enrolled", true},
                {"issued", false},
                {"not_after", iso_time(e.not_after)},
                {"key", e.key_uri}};
    json j = lifecycle::describe(*e.issued, e.key_uri);
    j["name"] = e.name;
    j["enrolled"] = true;
    j["issued"] = true;
    j["account"] = e.account;
    j["new_keys"] = json{{"account", e.new_keys.account}, {"device", e.new_keys.device}};
    return j;
}
std::string text_of(const Enrolled& e) {
    if (!e.issued)
        return e.name + ": enrolled; certificate valid until " + iso_time(e.not_after) +
               ", nothing to do\n";
    return lifecycle::describe_text(*e.issued, e.key_uri);
}
}  // namespace

Result<Output> enroll(const Global& g, const CertArgs& a, keystore::Registry& reg) {
    if (a.domains.empty()) return fail(Errc::usage, "-d", "name the device with -d");
    auto state = store::open_storage(g.state_dir, g.storage);
    if (!state) return std::unexpected(state.error());
    const std::string name = a.domains.front();
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
        a.key.empty() ? "tpm2:path=" + keys + "/" + store::safe_name(name) + ".tss" : a.key,
        "--key");
    if (!device_uri) return std::unexpected(device_uri.error());

    // Later boots: nothing to do while the certificate is there and not due.
    if (auto stored = (*state)->certificate(name); stored && *stored) {
        if (auto leaf = x509::inspect((**stored).cert_pem)) {
            // Before any network: the lifetime rule, never the CA's ARI window.
            if (!lifecycle::due_for_renewal(*leaf, 0, nullptr).due && !a.force) {
                return render(Enrolled{name, (**stored).key_uri, "", leaf->not_after, {}, {}},
                              json_of, text_of);
            }
        }
    }
    if (auto r = lifecycle::check_local(settings(g, a)); !r) return std::unexpected(r.error());
    // An account registered before for this server (account register, an earlier enroll)
    // is the device's account: registering another would replace it in the state dir.
    auto stored_account = (*state)->account(g.server);
    if (!stored_account) return std::unexpected(stored_account.error());
    const bool reuse_account = a.account_key.empty() && stored_account->has_value();
    bool made_account = false, made_device = false;
    AccountChoice ao = static_cast<const AccountChoice&>(a);  // only the account part
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
    auto r =
        lifecycle::obtain(settings(g, a), **state, **client, *account, *device_key, a.domains, "");
    if (!r) return std::unexpected(r.error());
    return render(Enrolled{name,
                           (*device_key)->uri().to_string(),
                           account->url,
                           {},
                           std::move(*r),
                           Enrolled::NewKeys{made_account, made_device}},
                  json_of, text_of);
}

namespace {
// renew: one certificate's renewal (renew --name prints one, --all one per certificate).
json json_of(const Renewal& r) {
    if (!r.issued) return {{"name", r.name}, {"renewed", false}, {"due_at", iso_time(r.due_at)}};
    json j = lifecycle::describe(*r.issued, r.key_uri);
    j["name"] = r.name;
    j["renewed"] = true;
    if (!r.old_key.empty()) j["old_key"] = r.old_key;
    return j;
}
std::string text_of(const Renewal& r) {
    if (!r.issued) return r.name + ": not due until " + iso_time(r.due_at) + "\n";
    std::string text = lifecycle::describe_text(*r.issued, r.key_uri);
    if (!r.old_key.empty())
        text += "the old key is no longer used; delete it with: acme-agent key delete --key '" +
                r.old_key + "'\n";
    return text;
}
}  // namespace

Result<Output> renew(const Global& g, const CertArgs& a, keystore::Registry& reg) {
    if (a.name.empty() == !a.all)
        return fail(Errc::usage, "renew", "give either --name NAME or --all");
    if (auto r = check_jobs(a); !r) return std::unexpected(r.error());
    if (a.jobs > 1 && !a.all)
        return fail(Errc::usage, "--jobs", "--jobs runs the renewals of --all side by side");
    auto state = store::open_storage(g.state_dir, g.storage);
    if (!state) return std::unexpected(state.error());
    std::vector<std::string> names{a.name};
    if (a.all) {
        auto all = (*state)->certificate_names();
        if (!all) return std::unexpected(all.error());
        names = *all;
    }
    if (auto r = have_account(g, a, **state); !r) return std::unexpected(r.error());
    auto client = connect(g);
    if (!client) return std::unexpected(client.error());
    auto account = account_for(g, a, reg, **state, **client, false);
    if (!account) return std::unexpected(account.error());

    Output out;
    out.data = json::array();
    if (!a.all) {
        auto r = lifecycle::renew_one(settings(g, a), reg, **state, **client, *account, a.name);
        if (!r) return std::unexpected(r.error());
        out.data.push_back(json_of(*r));
        out.text += text_of(*r);
        return out;
    }
    // --all: every certificate, --jobs at a time; one that fails does not stop the others.
    std::vector<Result<Renewal>> results(names.size(), std::unexpected(Error{}));
    SharedSolvers shared;
    lifecycle::run_parallel(
        names.size(), a.jobs,
        [&](std::size_t i) {
            results[i] = lifecycle::renew_one(settings(g, a), reg, **state, **client, *account,
                                              names[i], &shared);
        },
        [&](std::size_t i, const char* what) {
            results[i] = fail(Errc::internal, "renew", std::string("internal error: ") + what);
        });
    std::size_t renewed = 0;
    Failures failures;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (results[i]) {
            if (results[i]->issued) ++renewed;
            json entry = json_of(*results[i]);
            entry["ok"] = true;
            out.data.push_back(std::move(entry));
            out.text += text_of(*results[i]);
            continue;
        }
        out.data.push_back(failure_entry(names[i], results[i].error()));
        out.text += names[i] + ": error: " + results[i].error().describe() + "\n";
        failures.add(results[i].error(), names[i]);
    }
    summarize(out,
              "renew: " + std::to_string(names.size()) + " certificates, " +
                  std::to_string(renewed) + " renewed, " +
                  std::to_string(names.size() - renewed - failures.count) + " not due, " +
                  std::to_string(failures.count) + " failed",
              names.size(), failures);
    return out;
}

namespace {
struct Revoked {
    std::string serial, signed_by;
    std::optional<int> reason;
};
json json_of(const Revoked& r) {
    json j{{"revoked", r.serial}, {"signed_by", r.signed_by}};
    if (r.reason) j["reason"] = *r.reason;
    return j;
}
std::string text_of(const Revoked& r) {
    return "revoked: serial " + r.serial + " (signed by " + r.signed_by + ")\n";
}
}  // namespace

Result<Output> revoke(const Global& g, const RevokeArgs& a, keystore::Registry& reg) {
    auto pem = base::read_file(a.cert_file, 1 << 20);
    if (!pem) return std::unexpected(pem.error());
    auto blocks = x509::split_chain(*pem);
    if (!blocks) return fail(Errc::usage, "--cert", a.cert_file + " holds no PEM certificate");
    auto leaf = x509::inspect(blocks->front());
    if (!leaf) return std::unexpected(leaf.error());
    std::optional<int> reason;
    if (!a.reason.empty()) {
        reason = acme::parse_reason(a.reason);
        if (!reason)
            return fail(Errc::usage, "--reason",
                        "unknown reason '" + a.reason +
                            "' (keyCompromise, superseded, cessationOfOperation, "
                            "affiliationChanged, unspecified, or RFC 5280 code)");
    }
    auto state = store::open_storage(g.state_dir, g.storage);
    if (!state) return std::unexpected(state.error());
    auto client = connect(g);
    if (!client) return std::unexpected(client.error());
    std::string signed_by;
    if (a.with_cert_key) {
        auto uri = parse_uri(a.key, "--key");
        if (!uri) return std::unexpected(uri.error());
        auto key = reg.open(*uri);
        if (!key) return std::unexpected(key.error());
        if ((*key)->public_key_der() != leaf->spki)
            return fail(Errc::usage, "--key",
                        "that key is not the key of the certificate in " + a.cert_file);
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
    return render(Revoked{leaf->serial_hex, signed_by, reason}, json_of, text_of);
}

}  // namespace cli
