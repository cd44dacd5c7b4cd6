#include "acme/order.h"

#include "challenge/http01.h"
#include "keystore/jwk.h"
#include "store/failpoint.h"
#include "x509/csr.h"

namespace acme {

using keystore::Errc;
using keystore::fail;
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

}  // namespace

Result<Issued> issue(Client& client, const keystore::Key& account_key, const std::string& kid,
                     const OrderRequest& request, const Progress& progress) {
    json ids = json::array();
    for (const auto& n : request.names)
        ids.push_back({{"type", x509::is_ip_literal(n) ? "ip" : "dns"}, {"value", n}});

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
    Result<json> order = std::unexpected(keystore::Error{});
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

    // Present every pending authorization's challenge first, then answer them all, so the
    // CA validates them in parallel; then wait for each.
    if (!(*order).contains("authorizations") || !(*order)["authorizations"].is_array() ||
        (*order)["authorizations"].size() > 100)
        return fail(Errc::protocol, "order", "the order has no usable authorizations list");
    Cleanup cleanup{request.solver, {}};
    std::vector<std::pair<std::string, std::string>> pending;  // authz URL, identifier
    for (auto& a : (*order)["authorizations"]) {
        if (!a.is_string()) return fail(Errc::protocol, "order", "malformed authorization URL");
        const std::string authz_url = a.get<std::string>();
        auto authz = client.post_json(authz_url, account_key, kid, "");
        if (!authz) return std::unexpected(authz.error());
        const std::string who = describe_identifier(*authz);
        const std::string st = status_of(*authz);
        if (st == "valid") {
            progress("authorization: " + who + " already valid");
            continue;
        }
        if (st != "pending")
            return fail(Errc::server, "authorization " + who,
                        "status '" + st + "': " + challenge_error(*authz));
        const json* chosen = nullptr;
        if ((*authz).contains("challenges") && (*authz)["challenges"].is_array())
            for (auto& ch : (*authz)["challenges"])
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
        if (who == "?")
            return fail(Errc::protocol, "authorization", "no identifier in " + authz_url);
        const std::string value = json_string((*authz)["identifier"], "value");
        if (auto p = request.solver->present(value, token, token + "." + *thumbprint); !p)
            return std::unexpected(p.error());
        cleanup.presented.emplace_back(value, token);
        progress("challenge: " + request.solver->type() + " for " + who + " ready");
        if (auto r = client.post(*ch_url, account_key, kid, "{}"); !r)
            return std::unexpected(r.error());
        pending.emplace_back(authz_url, who);
    }
    store::failpoint("challenges-answered");
    for (auto& [authz_url, who] : pending) {
        auto authz = client.poll(authz_url, account_key, kid, [](const json& j) {
            const std::string s = status_of(j);
            return s != "pending" && s != "processing";
        });
        if (!authz) return std::unexpected(authz.error());
        if (status_of(*authz) != "valid")
            return fail(Errc::server, "authorization " + who,
                        "status '" + status_of(*authz) + "': " + challenge_error(*authz));
        progress("authorization: " + who + " valid");
    }

    order = client.poll(out.order_url, account_key, kid,
                        [](const json& j) { return status_of(j) != "pending"; });
    if (!order) return std::unexpected(order.error());
    if (status_of(*order) != "ready" && status_of(*order) != "valid")
        return fail(Errc::server, "order", "status '" + status_of(*order) + "' instead of ready");

    if (status_of(*order) == "ready") {
        auto csr = x509::make_csr(*request.cert_key, request.names);
        if (!csr) return std::unexpected(csr.error());
        auto finalize = url_field(client, *order, "finalize", "order");
        if (!finalize) return std::unexpected(finalize.error());
        auto fin = client.post_json(*finalize, account_key, kid,
                                    json{{"csr", keystore::base64url_encode(*csr)}}.dump());
        if (!fin) return std::unexpected(fin.error());
        progress("finalize: CSR signed by " + request.cert_key->uri().to_string());
        store::failpoint("finalized");
        order = client.poll(out.order_url, account_key, kid, [](const json& j) {
            const std::string s = status_of(j);
            return s != "processing" && s != "ready";
        });
        if (!order) return std::unexpected(order.error());
        if (status_of(*order) != "valid")
            return fail(Errc::server, "finalize", "order status '" + status_of(*order) + "'");
    }

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

}  // namespace acme
