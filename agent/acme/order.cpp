#include "acme/order.h"

#include "base/bytes.h"
#include "base/log.h"
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

// The error inside an invalid authorization's challenges, as text.
std::string challenge_error(const Authorization& authz) {
    for (const auto& ch : authz.challenges)
        if (ch.error) return ch.error->type + ": " + ch.error->detail;
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

// Server text in a message: bounded, every control character (newlines too) escaped.
std::string printable(const std::string& s, std::size_t max = 300) {
    return base::printable(std::string_view(s).substr(0, max), base::Lines::escape);
}

// The CA's `error` of an invalid order (RFC 8555 §7.1.3), with its instance.
std::string order_error(const Order& order) {
    if (!order.error) return "no error given";
    const Problem& e = *order.error;
    std::string text = printable(e.type) + ": " + printable(e.detail, 1024);
    if (!e.instance.empty()) text += " (see " + printable(e.instance) + ")";
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

// An order's identifiers in the same form (a wildcard as sent in newOrder: "*.name").
Wanted identifiers_of(const Order& order) {
    Wanted got;
    for (const auto& id : order.identifiers) {
        const std::string v = normalize_identifier(id.value);
        if (id.type == "dns" && v.starts_with("*."))
            got.emplace("dns", v.substr(2), true);
        else
            got.emplace(id.type, v, false);
    }
    return got;
}

// A state an order can be continued from.
bool usable(OrderStatus s) {
    return s != OrderStatus::invalid;
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

Certifier::Certifier(Client& client, const keystore::Key& account_key, std::string kid,
                     Progress progress)
    : client_(client),
      account_key_(account_key),
      kid_(std::move(kid)),
      progress_(std::move(progress)) {}

Result<Order> Certifier::fetch_order(const std::string& url) {
    auto j = client_.post_json(url, account_key_, kid_, "");
    if (!j) return std::unexpected(j.error());
    return parse_order(client_.origin(), *j);
}

// newOrder timed out: the CA may have created the order. Look for it in the account's
// orders list (RFC 8555 §7.1.2.1) rather than ordering again; a CA without one gets a
// clear error and no second order.
Result<PlacedOrder> Certifier::find_created(const std::vector<std::string>& names,
                                            const base::Error& why) {
    const Wanted wanted = wanted_identifiers(names);
    const std::string tail =
        "; the CA may have created the order, so it is not sent again: run the command again "
        "later (an unused order expires by itself)";
    auto account = client_.post_json(kid_, account_key_, kid_, "");
    if (!account) return fail(Errc::network, "newOrder", why.message + tail);
    auto list_url = json_string(*account, "orders");
    if (list_url.empty() || !client_.same_origin(list_url))
        return fail(Errc::network, "newOrder",
                    why.message + "; the CA offers no list of the account's orders" + tail);
    auto list = client_.post_json(list_url, account_key_, kid_, "");
    if (!list || !(*list).contains("orders") || !(*list)["orders"].is_array())
        return fail(Errc::network, "newOrder", why.message + tail);
    const json& urls = (*list)["orders"];
    // The newest orders come last in practice; look at no more than 20.
    for (std::size_t i = urls.size(), seen = 0; i-- > 0 && seen < 20; ++seen) {
        if (!urls[i].is_string() || !client_.same_origin(urls[i].get<std::string>())) continue;
        auto o = fetch_order(urls[i].get<std::string>());
        if (!o || !usable(o->status)) continue;
        if (identifiers_of(*o) == wanted) return PlacedOrder{urls[i].get<std::string>(), *o};
    }
    return fail(Errc::network, "newOrder", why.message + tail);
}

Result<PlacedOrder> Certifier::create(const OrderRequest& request) {
    json ids = json::array();
    for (const auto& n : request.names) {
        const std::string id = normalize_identifier(n);
        ids.push_back({{"type", x509::is_ip_literal(id) ? "ip" : "dns"}, {"value", id}});
    }
    json new_order{{"identifiers", ids}};
    if (!request.profile.empty()) {
        const json& offered = client_.directory().profiles;
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

    HttpResponse created;
    const std::string& new_order_url = client_.directory().new_order;
    auto order = client_.post_json(new_order_url, account_key_, kid_, new_order.dump(), &created);
    if (!order && problem_type(order.error()) == "alreadyReplaced" &&
        new_order.contains("replaces")) {
        // RFC 9773 §5: the certificate already has a successor (an earlier run, another
        // client). Once more without `replaces`, or no renewal would ever succeed.
        progress_(
            "order: the CA says the certificate was already replaced; ordering "
            "without 'replaces'");
        new_order.erase("replaces");
        order = client_.post_json(new_order_url, account_key_, kid_, new_order.dump(), &created);
    }
    if (!order && timed_out(order.error())) {
        auto found = find_created(request.names, order.error());
        if (!found) return std::unexpected(found.error());
        progress_("order: newOrder timed out; found the order it created");
        progress_("order: " + found->url + " (" + std::string(to_string(found->order.status)) +
                  ")");
        return found;
    }
    if (!order) return std::unexpected(order.error());
    if (!created.location) return fail(Errc::protocol, "newOrder", "no Location for the new order");
    if (auto ok = client_.check_origin(*created.location, "order"); !ok)
        return std::unexpected(ok.error());
    auto parsed = parse_order(client_.origin(), *order);
    if (!parsed) return std::unexpected(parsed.error());
    PlacedOrder placed{*created.location, std::move(*parsed)};
    progress_("order: " + placed.url + " (" + std::string(to_string(placed.order.status)) + ")");
    return placed;
}

Result<PlacedOrder> Certifier::place_order(const OrderRequest& request) {
    std::optional<PlacedOrder> placed;
    if (!request.resume_url.empty() && client_.same_origin(request.resume_url)) {
        // An order the CA no longer has, or one it gave up, is ordered afresh.
        auto order = fetch_order(request.resume_url);
        if (order && usable(order->status)) {
            placed = PlacedOrder{request.resume_url, std::move(*order)};
            progress_("order: resuming " + placed->url + " (" +
                      std::string(to_string(placed->order.status)) + ")");
        }
    }
    if (!placed) {
        auto created = create(request);
        if (!created) return std::unexpected(created.error());
        placed = std::move(*created);
    }
    if (request.on_order)
        if (auto r = request.on_order(placed->url); !r) return std::unexpected(r.error());
    store::failpoint("order-created");
    return std::move(*placed);
}

void Certifier::deactivate(const std::vector<std::string>& authz_urls) {
    for (const auto& url : authz_urls) {
        // Best effort, one try each: the run has failed already and must not linger.
        auto r = client_.post_json(url, account_key_, kid_, json{{"status", "deactivated"}}.dump(),
                                   nullptr, Resend::never);
        if (r) progress_("authorization: deactivated " + url);
    }
}

Result<void> Certifier::solve_authorizations(PlacedOrder& placed,
                                             const std::vector<std::string>& names,
                                             challenge::Solver& solver) {
    std::vector<std::string> pending_authz;
    auto solved = solve(placed, names, solver, pending_authz);
    // A failure the next run cannot resume from (not a network fault, not a wait the CA
    // asked for) ends the order: its pending authorizations are given up, so that the CA
    // does not keep them, and their validation attempts, around.
    if (!solved && solved.error().code != Errc::network && !solved.error().retry_at)
        deactivate(pending_authz);
    return solved;
}

Result<void> Certifier::solve(PlacedOrder& placed, const std::vector<std::string>& names,
                              challenge::Solver& solver, std::vector<std::string>& pending_authz) {
    if (placed.order.status != OrderStatus::pending) return {};
    auto thumbprint = keystore::jwk_thumbprint(account_key_.public_key_der());
    if (!thumbprint) return std::unexpected(thumbprint.error());
    const Wanted wanted = wanted_identifiers(names);

    // Every authorization is read and checked before any solver runs: the CA must not
    // make the agent publish a challenge for a name it did not ask for.
    std::vector<std::pair<std::string, Authorization>> authzs;
    for (const auto& authz_url : placed.order.authorizations) {
        auto j = client_.post_json(authz_url, account_key_, kid_, "");
        if (!j) return std::unexpected(j.error());
        auto authz = parse_authorization(client_.origin(), *j);
        if (!authz) return std::unexpected(authz.error());
        const std::tuple<std::string, std::string, bool> key{
            authz->identifier.type, normalize_identifier(authz->identifier.value), authz->wildcard};
        if (!wanted.contains(key))
            return fail(Errc::protocol, "authorization",
                        "the CA asks to validate '" + printable(authz->name()) +
                            "', which this order did not request; nothing was published");
        if (authz->status == AuthorizationStatus::pending) pending_authz.push_back(authz_url);
        authzs.emplace_back(authz_url, std::move(*authz));
    }

    // Present every pending authorization's challenge first, then answer them all, so
    // the CA validates them in parallel; then wait for each.
    Cleanup cleanup{&solver, {}};
    struct Answered {
        std::string authz_url, who, token;
    };
    std::vector<Answered> answered;
    for (const auto& [authz_url, authz] : authzs) {
        const std::string who = printable(authz.name());
        if (authz.status == AuthorizationStatus::valid) {
            progress_("authorization: " + who + " already valid");
            continue;
        }
        if (authz.status != AuthorizationStatus::pending)
            return fail(
                Errc::server, "authorization " + who,
                "status '" + std::string(to_string(authz.status)) + "': " + challenge_error(authz));
        const Challenge* chosen = authz.challenge(solver.type());
        if (!chosen)
            return fail(Errc::server, "authorization " + who,
                        "the CA offers no " + solver.type() + " challenge for it");
        const std::string& value = authz.identifier.value;
        if (auto p = solver.present(value, chosen->token, chosen->token + "." + *thumbprint); !p)
            return std::unexpected(p.error());
        cleanup.presented.emplace_back(value, chosen->token);
        progress_("challenge: " + solver.type() + " for " + who + " ready");
        if (auto r = client_.post(chosen->url, account_key_, kid_, "{}"); !r)
            return std::unexpected(r.error());
        answered.push_back({authz_url, who, chosen->token});
    }
    store::failpoint("challenges-answered");
    for (const auto& [authz_url, who, token] : answered) {
        // #20.3: when the agent's own responder serves the token, the CA is validating
        // now: the first poll goes out then, or after 50 ms (the fixed wait this replaced)
        // when it has not: a CA that validates without asking us (authorization reuse, a
        // test CA's always-valid mode, a validation cache) costs no more than before.
        // Without a responder: at once.
        (void)solver.wait_served(token, std::chrono::milliseconds(50));
        auto j = client_.poll(authz_url, account_key_, kid_, [](const json& a) {
            const std::string s = status_of(a);
            return s != "pending" && s != "processing";
        });
        if (!j) return std::unexpected(j.error());
        auto authz = parse_authorization(client_.origin(), *j);
        if (!authz) return std::unexpected(authz.error());
        if (authz->status != AuthorizationStatus::valid)
            return fail(Errc::server, "authorization " + who,
                        "status '" + std::string(to_string(authz->status)) +
                            "': " + challenge_error(*authz));
        progress_("authorization: " + who + " valid");
    }
    pending_authz.clear();  // all valid: nothing left to give up

    auto j = client_.poll(placed.url, account_key_, kid_,
                          [](const json& o) { return status_of(o) != "pending"; });
    if (!j) return std::unexpected(j.error());
    auto order = parse_order(client_.origin(), *j);
    if (!order) return std::unexpected(order.error());
    placed.order = std::move(*order);
    return {};
}

Result<void> Certifier::finalize(PlacedOrder& placed, const keystore::Key& cert_key,
                                 const std::vector<std::string>& names) {
    if (placed.order.status == OrderStatus::ready) {
        auto csr = x509::make_csr(cert_key, names);
        if (!csr) return std::unexpected(csr.error());
        const std::string payload = json{{"csr", base::base64url_encode(*csr)}}.dump();
        // finalize is not idempotent: after a failure (5xx, timeout, a dropped connection)
        // the CA may have taken the CSR anyway. Look at the order and carry on from its real
        // state; send the CSR again only while the order is still `ready`.
        for (int attempt = 1;; ++attempt) {
            auto fin = client_.post_json(placed.order.finalize, account_key_, kid_, payload,
                                         nullptr, Resend::never);
            if (fin) {
                auto order = parse_order(client_.origin(), *fin);
                if (!order) return std::unexpected(order.error());
                placed.order = std::move(*order);
                break;
            }
            const base::Error& failed = fin.error();
            if (failed.retry_at) return std::unexpected(failed);  // the CA said when: then
            progress_("finalize: " + printable(failed.describe()) + "; looking at the order");
            auto now = fetch_order(placed.url);
            if (!now) return std::unexpected(failed);
            if (now->status == OrderStatus::processing || now->status == OrderStatus::valid) {
                progress_("finalize: the CA accepted the CSR (order " +
                          std::string(to_string(now->status)) + ")");
                placed.order = std::move(*now);
                break;
            }
            const std::string type = problem_type(failed);
            const bool temporary = failed.code == Errc::network || failed.code == Errc::protocol ||
                                   type == "serverInternal" || type == "rateLimited";
            if (now->status != OrderStatus::ready || !temporary || attempt == 3) {
                if (now->status == OrderStatus::invalid)
                    return fail(Errc::server, "order", "invalid: " + order_error(*now));
                return std::unexpected(failed);
            }
            // Still ready: the CA did not take it; a short pause, then once more.
            std::this_thread::sleep_for(std::chrono::seconds(attempt));
        }
        progress_("finalize: CSR signed by " + cert_key.uri().to_string());
        store::failpoint("finalized");
    }
    if (placed.order.status == OrderStatus::processing ||
        placed.order.status == OrderStatus::ready) {
        // Slow CAs keep an order `processing` for minutes; the record of it stays until the
        // certificate is stored, so a run that gives up here resumes it later.
        auto j = client_.poll(
            placed.url, account_key_, kid_,
            [](const json& o) {
                const std::string s = status_of(o);
                return s != "processing" && s != "ready";
            },
            client_.options().order_deadline);
        if (!j) {
            base::Error e = j.error();
            if (e.code == Errc::network)
                e.message +=
                    "; the order is kept and the next run resumes it (--order-timeout "
                    "sets how long to wait)";
            return std::unexpected(std::move(e));
        }
        auto order = parse_order(client_.origin(), *j);
        if (!order) return std::unexpected(order.error());
        placed.order = std::move(*order);
    }
    if (placed.order.status == OrderStatus::invalid)
        return fail(Errc::server, "order", "invalid: " + order_error(placed.order));
    if (placed.order.status != OrderStatus::valid)
        return fail(
            Errc::server, "order",
            "status '" + std::string(to_string(placed.order.status)) + "' instead of valid");
    return {};
}

Result<Issued> Certifier::download(const PlacedOrder& placed, const keystore::Key& cert_key,
                                   const std::string& preferred_chain) {
    if (placed.order.status != OrderStatus::valid || !placed.order.certificate)
        return fail(Errc::protocol, "order", "the server's order has no certificate");
    auto chain = download_certificate(client_, account_key_, kid_, *placed.order.certificate,
                                      cert_key.public_key_der(), preferred_chain);
    if (!chain) return std::unexpected(chain.error());
    Issued out{placed.url, std::move(chain->cert_pem), std::move(chain->chain_pem),
               std::move(chain->leaf)};
    store::failpoint("downloaded");
    progress_("download: certificate serial " + out.leaf.serial_hex);
    return out;
}

Result<Issued> issue(Client& client, const keystore::Key& account_key, const std::string& kid,
                     const OrderRequest& request, const Progress& progress) {
    Certifier steps(client, account_key, kid, progress);
    auto placed = steps.place_order(request);
    if (!placed) return std::unexpected(placed.error());
    const auto ours = [&request]() -> Result<void> {
        return request.still_ours ? request.still_ours() : Result<void>{};
    };
    if (auto r = ours(); !r) return std::unexpected(r.error());
    if (auto solved = steps.solve_authorizations(*placed, request.names, *request.solver); !solved)
        return std::unexpected(solved.error());
    store::failpoint("authorizations-valid");
    if (auto r = ours(); !r) return std::unexpected(r.error());
    if (auto valid = steps.finalize(*placed, *request.cert_key, request.names); !valid)
        return std::unexpected(valid.error());
    return steps.download(*placed, *request.cert_key, request.preferred_chain);
}

}  // namespace acme
