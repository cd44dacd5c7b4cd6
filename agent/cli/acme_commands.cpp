#include "cli/common.h"

#include "acme/account.h"
#include "acme/order.h"
#include "challenge/solver.h"
#include "keystore/log.h"

namespace cli {

Result<Output> account_register(const Options& o, keystore::Registry& reg) {
    auto uri = parse_uri(o.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto state = store::StateDir::open(o.state_dir);
    if (!state) return std::unexpected(state.error());
    auto key = reg.open(*uri);
    if (!key) return std::unexpected(key.error());
    auto client = connect(o);
    if (!client) return std::unexpected(client.error());
    auto url = acme::register_account(**client, **key, {o.emails, o.agree_tos});
    if (!url) return std::unexpected(url.error());
    if (auto r = state->save_account({o.server, *url, (*key)->uri().to_string()}); !r)
        return std::unexpected(r.error());
    Output out;
    out.data = {{"account", *url}, {"server", o.server}, {"key", (*key)->uri().to_string()}};
    out.text = "account: " + *url + "\n";
    return out;
}

Result<Output> account_show(const Options& o, keystore::Registry& reg) {
    auto state = store::StateDir::open(o.state_dir);
    if (!state) return std::unexpected(state.error());
    auto client = connect(o);
    if (!client) return std::unexpected(client.error());
    auto ctx = account_for(o, reg, *state, **client, false);
    if (!ctx) return std::unexpected(ctx.error());
    auto acct = acme::fetch_account(**client, *ctx->key, ctx->url);
    if (!acct) return std::unexpected(acct.error());
    Output out;
    out.data = {{"account", ctx->url}, {"server", o.server}, {"key", ctx->key->uri().to_string()},
                {"status", acct->value("status", "")}, {"contact", acct->value("contact", json::array())}};
    out.text = "account: " + ctx->url + "\nstatus:  " + acct->value("status", "") +
               "\nkey:     " + ctx->key->uri().to_string() + "\n";
    for (auto& c : out.data["contact"])
        if (c.is_string()) out.text += "contact: " + c.get<std::string>() + "\n";
    return out;
}

Result<Output> issue(const Options& o, keystore::Registry& reg) {
    if (o.domains.empty()) return fail(Errc::usage, "-d", "name at least one domain with -d");
    for (auto& d : o.domains)
        if (d.starts_with("*.") && o.challenge != "dns-01")
            return fail(Errc::usage, "-d", "the wildcard " + d + " needs --challenge dns-01");
    if (o.challenge != "http-01")
        return fail(Errc::unsupported, "--challenge", o.challenge + " is not available in this build");
    auto uri = parse_uri(o.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto state = store::StateDir::open(o.state_dir);
    if (!state) return std::unexpected(state.error());
    auto cert_key = reg.open(*uri);
    if (!cert_key) return std::unexpected(cert_key.error());
    auto client = connect(o);
    if (!client) return std::unexpected(client.error());
    auto account = account_for(o, reg, *state, **client, true);
    if (!account) return std::unexpected(account.error());
    if (account->key->public_key_der() == (*cert_key)->public_key_der())
        return fail(Errc::usage, "--key",
                    "the certificate key is the account key; use a separate key for each");

    auto solver = o.webroot.empty() ? challenge::make_http01_server(o.http_port)
                                    : challenge::make_http01_webroot(o.webroot);
    acme::OrderRequest req{o.domains, cert_key->get(), solver.get()};
    auto issued = acme::issue(**client, *account->key, account->url, req,
                              [](const std::string& line) { keystore::log::info(line); });
    if (!issued) return std::unexpected(issued.error());

    store::Certificate cert{issued->cert_pem, issued->chain_pem, (*cert_key)->uri().to_string()};
    if (!o.out.empty())
        if (auto r = store::StateDir::write_pems(o.out, cert); !r) return std::unexpected(r.error());
    if (auto r = state->save_certificate(o.domains.front(), cert); !r) return std::unexpected(r.error());

    const std::string where = o.out.empty() ? state->path() + "/live/" + store::safe_name(o.domains.front()) : o.out;
    Output out;
    out.data = {{"name", o.domains.front()},
                {"domains", issued->leaf.names},
                {"serial", issued->leaf.serial_hex},
                {"subject", issued->leaf.subject},
                {"issuer", issued->leaf.issuer},
                {"not_before", iso_time(issued->leaf.not_before)},
                {"not_after", iso_time(issued->leaf.not_after)},
                {"key", (*cert_key)->uri().to_string()},
                {"order", issued->order_url},
                {"account", account->url},
                {"directory", where},
                {"requests", (*client)->requests()},
                {"connections", (*client)->connections()}};
    std::string names;
    for (auto& n : issued->leaf.names) names += (names.empty() ? "" : ", ") + n;
    out.text = "certificate: " + where + "/cert.pem\n" + "subject:     " + issued->leaf.subject + "\n" +
               "names:       " + names + "\n" + "issuer:      " + issued->leaf.issuer + "\n" +
               "valid:       " + iso_time(issued->leaf.not_before) + " .. " + iso_time(issued->leaf.not_after) + "\n" +
               "serial:      " + issued->leaf.serial_hex + "\n" +
               "key:         " + (*cert_key)->uri().to_string() + "\n";
    return out;
}

}  // namespace cli
