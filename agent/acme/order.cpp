#include "acme/order.h"

#include "base/bytes.h"
#include "base/log.h"
#include "challenge/http01.h"
#include "keystore/jwk.h"
#include "store/failpoint.h"
#include "x509/csr.h"

#include <arpa/inet.h>

#include <set>
#include <thread>
#include <tuple>

namespace acme {

using base::Errc;
using base::fail;
using nlohmann::json;

namespace {

std::string status_of(const json& j) {
    return json_string(j, "status");
}

std::string describe_identifier(const json& authz) {
    if (!authz.contains("identifier") || !authz["identifier"].is_object()) return "?";
    std::string v = json_string(authz["identifier"], "value", "?");
    if (json_bool(authz, "wildcard")) v = "*." + v;
    return v;
}

// The error inside an invalid authorization's challenges, as text.
std::string challenge_error(const json& authz) {
    if (authz.contains("challenges") && authz["challenges"].is_array())
        for (const auto& ch : authz["challenges"])
            if (ch.is_object() && ch.contains("error") && ch["error"].is_object()) {
                const json& e = ch["error"];
                return json_string(e, "type") + ": " + json_string(e, "detail");
            }
    return "no detail given";
}

// Takes every presented challenge down again, whatever happens.
// NOLINTNEXTLINE(cppcoreguidelines-special-member-functions): an aggregate, never copied
struct Cleanup {
    challenge::Solver* solver;
    std::vector<std::pair<std::string, std::string>> presented;
    ~Cleanup() {
        for (const auto& [id, token] : presented) solver->cleanup(id, token);
    }
};

Result<std::string> url_field(const Client& client, const json& j, const char* key,
                              const std::string& what) {
    if (!j.contains(key) || !j[key].is_string())
        return fail(Errc::protocol, what, std::string("the server's ") + what + " has no " + key);
    std::string url = j[key].get<std::string>();
    if (auto ok = client.check_origin(url, what); !ok) return std::unexpected(ok.error());
    return url;
}

// Server text in a message: bounded, every control character (newlines too) escaped.
std::string printable(const std::string& s, std::size_t max = 300) {
    return base::printable(std::string_view(s).substr(0, max), base::Lines::escape);
}

// The CA's `error` of an invalid order (RFC 8555 §7.1.3), with its instance.
std::string order_error(const json& order) {
    if (!order.contains("error") || !order["error"].is_object()) return "no error given";
    const json& e = order["error"];
    std::string text =
        printable(json_string(e, "type")) + ": " + printable(json_string(e, "detail"), 1024);
    if (auto inst = json_string(e, "instance"); !inst.empty())
        text += " (see " + printable(inst) + ")";
    return text;
}

// What the order asked for, as (type, lower-case value, wildcard) of each identifier.
using Wanted = std::set<std::tuple<std::string, std::string, bool>>;

Wanted wanted_identifiers(const std::vector<std::string>& names) {
    Wanted out;
    for (const auto& n : names) {
        const std::string id = normalize_identifier(n);
        if (x509::is_ip_literal(id))
            out.emplace("ip", id, false);
        else if (id.starts_with("*."))
            out.emplace("dns", id.substr(2), true);
        else
            out.emplace("dns", id, false);
    }
    return out;
}

// After a definitive failure the order's pending authorizations are given up (RFC 8555
// §7.5.2), so that the CA does not keep them, and their validation attempts, around.
void deactivate(Client& client, const keystore::Key& account_key, const std::string& kid,
                const std::vector<std::string>& authz_urls, const Progress& progress) {
    for (const auto& url : authz_urls) {
        // Best effort, one try each: the run has failed already and must not linger.
        auto r = client.post_json(url, account_key, kid, json{{"status", "deactivated"}}.dump(),
                                  nullptr, Resend::never);
        if (r) progress("authorization: deactivated " + url);
    }
}

}  // namespace

std::string normalize_identifier(const std::string& name) {
    unsigned char buf[16];
    char text[INET6_ADDRSTRLEN] = {};
    if (name.find(':') != std::string::npos && inet_pton(AF_INET6, name.c_str(), buf) == 1 &&
        inet_ntop(AF_INET6, buf, text, sizeof text))
        return text;  // RFC 5952: lower case, longest zero run as "::", no leading zeros
    return base::ascii_lower(name);
}

namespace {

// newOrder timed out: the CA may have created the order. Look for it in the account's
// orders list (RFC 8555 §7.1.2.1) rather than ordering again; a CA without one gets a
// clear error and no second order.
Result<std::pair<std::string, json>> find_created_order(Client& client,
                                                        const keystore::Key& account_key,
                                                        const std::string& kid,
                                                        const Wanted& wanted,
                                                        const base::Error& why) {
    const std::string tail =
        "; the CA may have created the order, so it is not sent again: run the command again "
        "later (an unused order expires by itself)";
    auto account = client.post_json(kid, account_key, kid, "");
    if (!account) return fail(Errc::network, "newOrder", why.message + tail);
    auto list_url = json_string(*account, "orders");
    if (list_url.empty() || !client.same_origin(list_url))
        return fail(Errc::network, "newOrder",
                    why.message + "; the CA offers no list of the account's orders" + tail);
    auto list = client.post_json(list_url, account_key, kid, "");
    if (!list || !(*list).contains("orders") || !(*list)["orders"].is_array())
        return fail(Errc::network, "newOrder", why.message + tail);
    const json& urls = (*list)["orders"];
    // The newest orders come last in practice; look at no more than 20.
    for (std::size_t i = urls.size(), seen = 0; i-- > 0 && seen < 20; ++seen) {
        if (!urls[i].is_string() || !client.same_origin(urls[i].get<std::string>())) continue;
        auto o = client.post_json(urls[i].get<std::string>(), account_key, kid, "");
        if (!o) continue;
        const std::string st = status_of(*o);
        if (st != "pending" && st != "ready" && st != "processing" && st != "valid") continue;
        Wanted got;
        if ((*o).contains("identifiers") && (*o)["identifiers"].is_array())
            for (const auto& id : (*o)["identifiers"]) {
                const std::string v = normalize_identifier(json_string(id, "value"));
                if (json_string(id, "type") == "dns" && v.starts_with("*."))
                    got.emplace("dns", v.substr(2), true);
                else
                    got.emplace(json_string(id, "type"), v, false);
            }
        if (got == wanted) return std::pair{urls[i].get<std::string>(), *o};
    }
    return fail(Errc::network, "newOrder", why.message + tail);
}

Result<Issued> issue_order(Client& client, const keystore::Key& account_key, const std::string& kid,
                           const OrderRequest& request, const Progress& progress,
                           std::vector<std::string>& pending_authz) {
    json ids = json::array();
    for (const auto& n : request.names) {
        const std::string id = normalize_identifier(n);
        ids.push_back({{"type", x509::is_ip_literal(id) ? "ip" : "dns"}, {"value", id}});
    }
    const Wanted wanted = wanted_identifiers(request.names);

    json new_order{{"identifiers", ids}};
    if (!request.profile.empty()) {
        const json& offered = client.directory().profiles;
        if (!offered.is_object())
            return fail(Errc::usage, "--profile", "the CA offers no certificate profiles");
        if (!offered.contains(request.profile)) {
            std::string names;
            for (const auto& [name, _] : offered.items())
                names += (names.empty() ? "" : ", ") + name;
            return fail(Errc::usage, "--profile",
                        "the CA offers no profile '" + request.profile + "'; it offers: " + names);
        }
        new_order["profile"] = request.profile;
    }
    if (!request.replaces.empty()) new_order["replaces"] = request.replaces;
    Issued out;
    Result<json> order = std::unexpected(base::Error{});
    if (!request.resume_url.empty() && client.same_origin(request.resume_url)) {
        order = client.post_json(request.resume_url, account_key, kid, "");
        const std::string st = order ? status_of(*order) : "";
        if (st == "pending" || st == "ready" || st == "processing" || st == "valid") {
            out.order_url = request.resume_url;
            progress("order: resuming " + out.order_url + " (" + st + ")");
        }
    }
    if (out.order_url.empty()) {
        HttpResponse created;
        order = client.post_json(client.directory().new_order, account_key, kid, new_order.dump(),
                                 &created);
        if (!order && problem_type(order.error()) == "alreadyReplaced" &&
            new_order.contains("replaces")) {
            // RFC 9773 §5: the certificate already has a successor (an earlier run, another
            // client). Once more without `replaces`, or no renewal would ever succeed.
            progress(
                "order: the CA says the certificate was already replaced; ordering "
                "without 'replaces'");
            new_order.erase("replaces");
            order = client.post_json(client.directory().new_order, account_key, kid,
                                     new_order.dump(), &created);
        }
        if (!order && timed_out(order.error())) {
            auto found = find_created_order(client, account_key, kid, wanted, order.error());
            if (!found) return std::unexpected(found.error());
            created.location = found->first;
            order = std::move(found->second);
            progress("order: newOrder timed out; found the order it created");
        }
        if (!order) return std::unexpected(order.error());
        if (!created.location)
            return fail(Errc::protocol, "newOrder", "no Location for the new order");
        out.order_url = *created.location;
        if (auto ok = client.check_origin(out.order_url, "order"); !ok)
            return std::unexpected(ok.error());
        progress("order: " + out.order_url + " (" + status_of(*order) + ")");
    }
    if (request.on_order)
        if (auto r = request.on_order(out.order_url); !r) return std::unexpected(r.error());
    store::failpoint("order-created");

    auto thumbprint = keystore::jwk_thumbprint(account_key.public_key_der());
    if (!thumbprint) return std::unexpected(thumbprint.error());

    // Only a pending order needs its authorizations: a resumed order the CA is processing
    // (or has issued) goes straight to waiting for its certificate.
    if (status_of(*order) == "pending") {
        if (!(*order).contains("authorizations") || !(*order)["authorizations"].is_array() ||
            (*order)["authorizations"].size() > 100)
            return fail(Errc::protocol, "order", "the order has no usable authorizations list");
        // Every authorization is read and checked before any solver runs: the CA must not
        // make the agent publish a challenge for a name it did not ask for.
        std::vector<std::pair<std::string, json>> authzs;
        for (auto& a : (*order)["authorizations"]) {
            if (!a.is_string()) return fail(Errc::protocol, "order", "malformed authorization URL");
            const std::string authz_url = a.get<std::string>();
            auto authz = client.post_json(authz_url, account_key, kid, "");
            if (!authz) return std::unexpected(authz.error());
            if (!(*authz).contains("identifier") || !(*authz)["identifier"].is_object())
                return fail(Errc::protocol, "authorization", "no identifier in " + authz_url);
            const json& id = (*authz)["identifier"];
            const std::tuple<std::string, std::string, bool> key{
                json_string(id, "type"), normalize_identifier(json_string(id, "value")),
                json_bool(*authz, "wildcard")};
            if (!wanted.contains(key))
                return fail(Errc::protocol, "authorization",
                            "the CA asks to validate '" + printable(describe_identifier(*authz)) +
                                "', which this order did not request; nothing was published");
            if (status_of(*authz) == "pending") pending_authz.push_back(authz_url);
            authzs.emplace_back(authz_url, std::move(*authz));
        }

        // Present every pending authorization's challenge first, then answer them all, so
        // the CA validates them in parallel; then wait for each.
        Cleanup cleanup{request.solver, {}};
        struct Answered {
            std::string authz_url, who, token;
        };
        std::vector<Answered> pending;
        for (auto& [authz_url, authz] : authzs) {
            const std::string who = printable(describe_identifier(authz));
            const std::string st = status_of(authz);
            if (st == "valid") {
                progress("authorization: " + who + " already valid");
                continue;
            }
            if (st != "pending")
                return fail(Errc::server, "authorization " + who,
                            "status '" + printable(st) + "': " + challenge_error(authz));
            const json* chosen = nullptr;
            if (authz.contains("challenges") && authz["challenges"].is_array())
                for (auto& ch : authz["challenges"])
                    if (ch.is_object() && json_string(ch, "type") == request.solver->type())
                        chosen = &ch;
            if (!chosen)
                return fail(Errc::server, "authorization " + who,
                            "the CA offers no " + request.solver->type() + " challenge for it");
            const std::string token = json_string(*chosen, "token");
            if (!challenge::valid_token(token))
                return fail(Errc::protocol, "authorization " + who, "malformed challenge token");
            auto ch_url = url_field(client, *chosen, "url", "challenge");
            if (!ch_url) return std::unexpected(ch_url.error());
            const std::string value = json_string(authz["identifier"], "value");
            if (auto p = request.solver->present(value, token, token + "." + *thumbprint); !p)
                return std::unexpected(p.error());
            cleanup.presented.emplace_back(value, token);
            progress("challenge: " + request.solver->type() + " for " + who + " ready");
            if (auto r = client.post(*ch_url, account_key, kid, "{}"); !r)
                return std::unexpected(r.error());
            pending.push_back({authz_url, who, token});
        }
        store::failpoint("challenges-answered");
        for (auto& [authz_url, who, token] : pending) {
            // #20.3: when the agent's own responder serves the token, the CA is validating
            // now: the first poll goes out then, or after 50 ms (the fixed wait this replaced)
            // when it has not: a CA that validates without asking us (authorization reuse, a
            // test CA's always-valid mode, a validation cache) costs no more than before.
            // Without a responder: at once.
            (void)request.solver->wait_served(token, std::chrono::milliseconds(50));
            auto authz = client.poll(authz_url, account_key, kid, [](const json& j) {
                const std::string s = status_of(j);
                return s != "pending" && s != "processing";
            });
            if (!authz) return std::unexpected(authz.error());
            if (status_of(*authz) != "valid")
                return fail(
                    Errc::server, "authorization " + who,
                    "status '" + printable(status_of(*authz)) + "': " + challenge_error(*authz));
            progress("authorization: " + who + " valid");
        }
        pending_authz.clear();  // all valid: nothing left to give up

        order = client.poll(out.order_url, account_key, kid,
                            [](const json& j) { return status_of(j) != "pending"; });
        if (!order) return std::unexpected(order.error());
    }

    if (status_of(*order) == "ready") {
        auto csr = x509::make_csr(*request.cert_key, request.names);
        if (!csr) return std::unexpected(csr.error());
        auto finalize = url_field(client, *order, "finalize", "order");
        if (!finalize) return std::unexpected(finalize.error());
        const std::string payload = json{{"csr", base::base64url_encode(*csr)}}.dump();
        // finalize is not idempotent: after a failure (5xx, timeout, a dropped connection)
        // the CA may have taken the CSR anyway. Look at the order and carry on from its real
        // state; send the CSR again only while the order is still `ready`.
        for (int attempt = 1;; ++attempt) {
            auto fin =
                client.post_json(*finalize, account_key, kid, payload, nullptr, Resend::never);
            if (fin) {
                order = std::move(fin);
                break;
            }
            const base::Error failed = fin.error();
            if (failed.retry_at) return std::unexpected(failed);  // the CA said when: then
            progress("finalize: " + printable(failed.describe()) + "; looking at the order");
            auto now = client.post_json(out.order_url, account_key, kid, "");
            if (!now) return std::unexpected(failed);
            const std::string st = status_of(*now);
            if (st == "processing" || st == "valid") {
                progress("finalize: the CA accepted the CSR (order " + st + ")");
                order = std::move(now);
                break;
            }
            const std::string type = problem_type(failed);
            const bool temporary = failed.code == Errc::network || failed.code == Errc::protocol ||
                                   type == "serverInternal" || type == "rateLimited";
            if (st != "ready" || !temporary || attempt == 3) {
                if (st == "invalid")
                    return fail(Errc::server, "order", "invalid: " + order_error(*now));
                return std::unexpected(failed);
            }
            // Still ready: the CA did not take it; a short pause, then once more.
            std::this_thread::sleep_for(std::chrono::seconds(attempt));
        }
        progress("finalize: CSR signed by " + request.cert_key->uri().to_string());
        store::failpoint("finalized");
    }
    if (status_of(*order) == "processing" || status_of(*order) == "ready") {
        // Slow CAs keep an order `processing` for minutes; the record of it stays until the
        // certificate is stored, so a run that gives up here resumes it later.
        order = client.poll(
            out.order_url, account_key, kid,
            [](const json& j) {
                const std::string s = status_of(j);
                return s != "processing" && s != "ready";
            },
            client.options().order_deadline);
        if (!order) {
            base::Error e = order.error();
            if (e.code == Errc::network)
                e.message +=
                    "; the order is kept and the next run resumes it (--order-timeout "
                    "sets how long to wait)";
            return std::unexpected(std::move(e));
        }
    }
    if (status_of(*order) == "invalid")
        return fail(Errc::server, "order", "invalid: " + order_error(*order));
    if (status_of(*order) != "valid")
        return fail(Errc::server, "order",
                    "status '" + printable(status_of(*order)) + "' instead of valid");

    auto cert_url = url_field(client, *order, "certificate", "order");
    if (!cert_url) return std::unexpected(cert_url.error());
    auto chain = download_certificate(client, account_key, kid, *cert_url,
                                      request.cert_key->public_key_der(), request.preferred_chain);
    if (!chain) return std::unexpected(chain.error());
    out.cert_pem = std::move(chain->cert_pem);
    out.chain_pem = std::move(chain->chain_pem);
    out.leaf = std::move(chain->leaf);
    store::failpoint("downloaded");
    progress("download: certificate serial " + out.leaf.serial_hex);
    return out;
}

}  // namespace

Result<Issued> issue(Client& client, const keystore::Key& account_key, const std::string& kid,
                     const OrderRequest& request, const Progress& progress) {
    std::vector<std::string> pending_authz;
    auto issued = issue_order(client, account_key, kid, request, progress, pending_authz);
    // A failure the next run cannot resume from (not a network fault, not a wait the CA
    // asked for) ends the order: its pending authorizations are given up.
    if (!issued && issued.error().code != Errc::network && !issued.error().retry_at)
        deactivate(client, account_key, kid, pending_authz, progress);
    return issued;
}

}  // namespace acme
