#include "cli/common.h"

#include "cli/exit_codes.h"
#include "lifecycle/batch.h"
#include "lifecycle/certificate.h"
#include "lifecycle/issue.h"

namespace cli {

using lifecycle::kMaxJobs;
using lifecycle::kMinJobs;
using lifecycle::Renewal;

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
json json_of(const lifecycle::BatchItem& b) {
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
std::string text_of(const lifecycle::BatchItem& b) {
    if (b.result) return lifecycle::describe_text(*b.result, b.key_uri) + "\n";
    return b.name + " (" + b.where + "): error: " + b.result.error().describe() + "\n\n";
}

// issue --batch FILE (lifecycle::issue_batch), after the options it excludes.
Result<Output> issue_batch(const Global& g, const CertArgs& a, keystore::Registry& reg) {
    if (!a.key.empty() || !a.domains.empty())
        return fail(Errc::usage, "--batch",
                    "the batch file gives each order's key and names; drop --key and -d");
    if (!a.out.empty())
        return fail(Errc::usage, "--out",
                    "--out holds one certificate; with --batch they go to the state dir");
    if (auto r = check_jobs(a); !r) return std::unexpected(r.error());
    auto items = lifecycle::issue_batch(g, settings(g, a), a, a.batch, a.jobs, reg);
    if (!items) return std::unexpected(items.error());
    Output out;
    out.data = json::array();
    Failures failures;
    for (const auto& item : *items) {
        out.data.push_back(json_of(item));
        out.text += text_of(item);
        if (!item.result) failures.add(item.result.error(), item.where + " " + item.name);
    }
    const std::size_t n = items->size(), failed = failures.count;
    summarize(out,
              "issued " + std::to_string(n - failed) + " of " + std::to_string(n) +
                  (failed ? ", " + std::to_string(failed) + " failed" : ""),
              n, failures);
    return out;
}

// issue: the certificate, and what it took
json json_of(const lifecycle::Issued& i) {
    json j = lifecycle::describe(i.r, i.key_uri);
    j["name"] = i.name;
    j["account"] = i.account;
    j["requests"] = i.requests;
    j["connections"] = i.connections;
    return j;
}
std::string text_of(const lifecycle::Issued& i) {
    return lifecycle::describe_text(i.r, i.key_uri);
}

// enroll: the certificate just issued, or the valid one already there.
json json_of(const lifecycle::Enrolled& e) {
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
std::string text_of(const lifecycle::Enrolled& e) {
    if (!e.issued)
        return e.name + ": enrolled; certificate valid until " + iso_time(e.not_after) +
               ", nothing to do\n";
    return lifecycle::describe_text(*e.issued, e.key_uri);
}

json json_of(const lifecycle::Revoked& r) {
    json j{{"revoked", r.serial}, {"signed_by", r.signed_by}};
    if (r.reason) j["reason"] = *r.reason;
    return j;
}
std::string text_of(const lifecycle::Revoked& r) {
    return "revoked: serial " + r.serial + " (signed by " + r.signed_by + ")\n";
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

Result<Output> issue(const Global& g, const CertArgs& a, keystore::Registry& reg) {
    if (!a.batch.empty()) return issue_batch(g, a, reg);
    if (a.jobs != 1)
        return fail(Errc::usage, "--jobs", "--jobs runs the orders of --batch FILE side by side");
    if (a.domains.empty()) return fail(Errc::usage, "-d", "name at least one domain with -d");
    return rendered(lifecycle::issue(g, settings(g, a), a, a.key, a.domains, reg));
}

Result<Output> enroll(const Global& g, const CertArgs& a, keystore::Registry& reg) {
    if (a.domains.empty()) return fail(Errc::usage, "-d", "name the device with -d");
    return rendered(lifecycle::enroll(g, settings(g, a), a, a.key, a.domains, reg));
}

Result<Output> revoke(const Global& g, const RevokeArgs& a, keystore::Registry& reg) {
    return rendered(lifecycle::revoke(g, {a.cert_file, a.reason, a.with_cert_key, a.key}, a, reg));
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
    auto renewed = lifecycle::renew(g, settings(g, a), a, a.name, a.all, a.jobs, reg);
    if (!renewed) return std::unexpected(renewed.error());
    const auto& [names, results] = *renewed;
    Output out;
    out.data = json::array();
    if (!a.all) {
        out.data.push_back(json_of(*results.front()));
        out.text += text_of(*results.front());
        return out;
    }
    std::size_t done = 0;
    Failures failures;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (results[i]) {
            if (results[i]->issued) ++done;
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
              "renew: " + std::to_string(names.size()) + " certificates, " + std::to_string(done) +
                  " renewed, " + std::to_string(names.size() - done - failures.count) +
                  " not due, " + std::to_string(failures.count) + " failed",
              names.size(), failures);
    return out;
}

}  // namespace cli
