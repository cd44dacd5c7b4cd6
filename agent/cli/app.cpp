#include "cli/app.h"

#include "acme/account.h"
#include "acme/order.h"
#include "challenge/solver.h"
#include "cli/exit_codes.h"
#include "keystore/file_backend.h"
#include "keystore/jwk.h"
#include "keystore/log.h"
#include "keystore/ossl.h"
#include "pkcs11/pkcs11_keystore.h"
#include "store/state.h"
#include "x509/csr.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <openssl/pem.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#ifndef ACME_AGENT_VERSION
#define ACME_AGENT_VERSION "dev"
#endif

namespace cli {

using keystore::Errc;
using keystore::Error;
using keystore::fail;
using keystore::Result;
using nlohmann::json;

namespace {

constexpr const char* kDefaultServer = "https://acme-v02.api.letsencrypt.org/directory";

struct Options {
    std::string server = kDefaultServer;
    std::string ca_file;
    std::string state_dir = "/var/lib/acme-agent";
    bool json_out = false;
    int verbose = 0;
    bool quiet = false;

    std::string key;
    std::string type;
    std::string account_key;
    std::vector<std::string> emails;
    bool agree_tos = false;
    std::vector<std::string> domains;
    std::string challenge = "http-01";
    std::string http_port = "80";
    std::string webroot;
    std::string out;
};

// What a command returns: JSON for --json, and the text a person reads.
struct Output {
    json data = json::object();
    std::string text;
};

keystore::Registry make_registry() {
    keystore::Registry r;
    r.add("file", [] { return Result<std::unique_ptr<keystore::Keystore>>(keystore::make_file_keystore()); });
    r.add("pkcs11", [] { return Result<std::unique_ptr<keystore::Keystore>>(pkcs11::make_keystore()); });
    return r;
}

Result<keystore::KeyUri> parse_uri(const std::string& text, const char* option) {
    if (text.empty()) return fail(Errc::usage, option, "a key URI is required");
    auto uri = keystore::KeyUri::parse(text);
    if (!uri) {
        Error e = uri.error();
        e.where = std::string(option);
        return std::unexpected(e);
    }
    if (uri->query_attr("pin-value"))
        keystore::log::warning("a PIN given as pin-value is visible in the process list; use "
                               "pin-source=file:PATH");
    return uri;
}

std::string pem_public_key(const keystore::Bytes& spki) {
    auto pkey = keystore::ossl::pkey_from_spki(spki);
    if (!pkey) return "";
    keystore::ossl::Bio bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_PUBKEY(bio.get(), pkey->get());
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

std::string iso_time(std::chrono::system_clock::time_point t) {
    const std::time_t tt = std::chrono::system_clock::to_time_t(t);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&tt));
    return buf;
}

// ---- key commands -----------------------------------------------------------------

Result<Output> key_generate(const Options& o, keystore::Registry& reg) {
    auto uri = parse_uri(o.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto alg = keystore::parse_algorithm(o.type);
    if (!alg)
        return fail(Errc::usage, "--type",
                    "unknown algorithm '" + o.type + "'; choose one of " +
                        std::string(keystore::algorithm_names()));
    auto key = reg.generate(*uri, *alg);
    if (!key) return std::unexpected(key.error());
    Output out;
    out.data = {{"uri", (*key)->uri().to_string()}, {"algorithm", keystore::algorithm_name(*alg)}};
    out.text = (*key)->uri().to_string() + "\n";
    return out;
}

Result<Output> key_list(const Options& o, keystore::Registry& reg) {
    auto uri = parse_uri(o.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto ks = reg.keystore_for(*uri);
    if (!ks) return std::unexpected(ks.error());
    auto keys = (*ks)->list(*uri);
    if (!keys) return std::unexpected(keys.error());
    Output out;
    out.data = json::array();
    for (auto& k : *keys) {
        out.data.push_back({{"uri", k.uri.to_string()}, {"algorithm", keystore::algorithm_name(k.algorithm)}});
        out.text += std::string(keystore::algorithm_name(k.algorithm)) + "  " + k.uri.to_string() + "\n";
    }
    return out;
}

Result<Output> key_show(const Options& o, keystore::Registry& reg) {
    auto uri = parse_uri(o.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto key = reg.open(*uri);
    if (!key) return std::unexpected(key.error());
    auto thumb = keystore::jwk_thumbprint((*key)->public_key_der());
    if (!thumb) return std::unexpected(thumb.error());
    auto props = (*key)->properties();
    if (!props) return std::unexpected(props.error());
    Output out;
    const std::string pem = pem_public_key((*key)->public_key_der());
    json p = json::object();
    for (auto& kp : *props) p[kp.name] = kp.value;
    out.data = {{"uri", (*key)->uri().to_string()},
                {"algorithm", keystore::algorithm_name((*key)->algorithm())},
                {"jwk_thumbprint", *thumb},
                {"properties", p},
                {"public_key_pem", pem}};
    auto field = [&](std::string name, const std::string& value) {
        name += ":";
        name.resize(std::max<std::size_t>(name.size() + 1, 24), ' ');
        out.text += name + value + "\n";
    };
    field("uri", (*key)->uri().to_string());
    field("algorithm", std::string(keystore::algorithm_name((*key)->algorithm())));
    field("jwk thumbprint", *thumb);
    for (auto& kp : *props) field(kp.name, kp.value);
    out.text += pem;
    return out;
}

Result<Output> key_delete(const Options& o, keystore::Registry& reg) {
    auto uri = parse_uri(o.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto ks = reg.keystore_for(*uri);
    if (!ks) return std::unexpected(ks.error());
    if (auto r = (*ks)->destroy(*uri); !r) return std::unexpected(r.error());
    Output out;
    out.data = {{"deleted", uri->to_string()}};
    out.text = "deleted " + uri->to_string() + "\n";
    return out;
}

// ---- ACME -------------------------------------------------------------------------

Result<std::unique_ptr<acme::Client>> connect(const Options& o) {
    acme::ClientOptions co;
    co.http.ca_file = o.ca_file;
    co.http.user_agent = std::string("acme-agent/") + ACME_AGENT_VERSION;
    return acme::Client::connect(o.server, co);
}

// The account for this server: the stored one, else the one of --account-key (found
// again or registered). Stores what it learns.
struct AccountCtx {
    keystore::KeyPtr key;
    std::string url;
};

Result<AccountCtx> account_for(const Options& o, keystore::Registry& reg, store::StateDir& state,
                               acme::Client& client, bool may_register) {
    auto stored = state.account(o.server);
    if (!stored) return std::unexpected(stored.error());
    std::string key_text = o.account_key;
    if (key_text.empty()) {
        if (!*stored)
            return fail(Errc::usage, "account",
                        "no account for " + o.server + " in " + state.path() +
                            "; run 'acme-agent account register --key URI --agree-tos' or pass "
                            "--account-key URI");
        key_text = (*stored)->key_uri;
    }
    auto uri = parse_uri(key_text, "--account-key");
    if (!uri) return std::unexpected(uri.error());
    auto key = reg.open(*uri);
    if (!key) return std::unexpected(key.error());
    AccountCtx ctx{*key, ""};
    if (*stored && (*stored)->key_uri == (*key)->uri().to_string()) {
        ctx.url = (*stored)->url;
        return ctx;
    }
    auto found = acme::find_account(client, **key);
    if (!found) return std::unexpected(found.error());
    if (*found) {
        ctx.url = **found;
    } else {
        if (!may_register)
            return fail(Errc::not_found, "account",
                        "the CA has no account for this key; run 'acme-agent account register'");
        acme::AccountRequest req{o.emails, o.agree_tos};
        auto url = acme::register_account(client, **key, req);
        if (!url) return std::unexpected(url.error());
        ctx.url = *url;
        keystore::log::info("account: registered " + ctx.url);
    }
    if (auto r = state.save_account({o.server, ctx.url, (*key)->uri().to_string()}); !r)
        return std::unexpected(r.error());
    return ctx;
}

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

int report(const Options& o, const Result<Output>& r) {
    if (r) {
        if (o.json_out) std::cout << r->data.dump(2) << "\n";
        else std::cout << r->text;
        return kOk;
    }
    const Error& e = r.error();
    std::fprintf(stderr, "acme-agent: error: %s\n", e.describe().c_str());
    if (o.json_out) {
        json err{{"code", keystore::errc_name(e.code)}, {"where", e.where}, {"message", e.message}};
        if (e.native) err["native"] = *e.native;
        std::cout << json{{"error", err}}.dump(2) << "\n";
    }
    return exit_code(e.code);
}

}  // namespace

int run(int argc, char** argv) {
    Options o;
    CLI::App app{"acme-agent: an ACME (RFC 8555) client whose private keys never leave hardware.\n"
                 "Keys: pkcs11: (RFC 7512, a PKCS#11 token), file: (software PEM keys, NO hardware\n"
                 "protection: for machines without a token, and tests)."};
    app.set_version_flag("--version", std::string("acme-agent ") + ACME_AGENT_VERSION);
    app.require_subcommand(1);
    app.add_option("--server", o.server, "ACME directory URL")->default_str(kDefaultServer);
    app.add_option("--ca-file", o.ca_file, "extra trusted CA (PEM) for the ACME server, e.g. a test CA")
        ->check(CLI::ExistingFile);
    app.add_option("--state-dir", o.state_dir, "state directory (accounts, certificates)")
        ->default_str(o.state_dir)
        ->envname("ACME_AGENT_STATE_DIR");
    app.add_flag("--json", o.json_out, "print results as JSON on stdout");
    app.add_flag("-v,--verbose", o.verbose, "more detail on stderr (each retry, each request)");
    app.add_flag("-q,--quiet", o.quiet, "no progress lines on stderr");
    app.footer("Exit codes: 0 ok, 1 internal, 2 usage, 3 not found, 4 exists, 5 token absent,\n"
               "6 module load, 7 wrong PIN, 8 PIN locked, 9 unsupported, 10 hardware, 11 I/O,\n"
               "12 network, 13 protocol, 14 CA refused, 15 state dir busy/damaged.\n"
               "PINs come from the key URI's pin-source=file:PATH (mode 0600) or a prompt.");

    std::function<Result<Output>(const Options&, keystore::Registry&)> action;
    auto bind = [&](CLI::App* sub, auto fn) { sub->callback([&action, fn] { action = fn; }); };
    const std::string key_help = "key URI (pkcs11:..., file:PATH)";

    auto* key = app.add_subcommand("key", "manage keys in a token or directory");
    key->require_subcommand(1);
    auto* kgen = key->add_subcommand("generate", "generate a key inside the keystore; prints its full URI");
    kgen->add_option("--key", o.key, key_help)->required();
    kgen->add_option("--type", o.type, std::string("algorithm: ") + std::string(keystore::algorithm_names()))
        ->required();
    bind(kgen, key_generate);
    auto* klist = key->add_subcommand("list", "list the keys of a token or directory");
    klist->add_option("--key", o.key, "token URI (pkcs11:token=...) or file:DIR")->required();
    bind(klist, key_list);
    auto* kshow = key->add_subcommand("show", "algorithm, public key, JWK thumbprint and hardware properties");
    kshow->add_option("--key", o.key, key_help)->required();
    bind(kshow, key_show);
    auto* kdel = key->add_subcommand("delete", "destroy a key (both halves)");
    kdel->add_option("--key", o.key, key_help)->required();
    bind(kdel, key_delete);

    auto* account = app.add_subcommand("account", "ACME account for --server");
    account->require_subcommand(1);
    auto* areg = account->add_subcommand("register", "register (or find again) the account of a key");
    areg->add_option("--key", o.key, "account key URI")->required();
    areg->add_option("--email", o.emails, "contact address (repeatable)");
    areg->add_flag("--agree-tos", o.agree_tos, "agree to the CA's terms of service");
    bind(areg, account_register);
    auto* ashow = account->add_subcommand("show", "the stored account and its status at the CA");
    ashow->add_option("--account-key", o.account_key, "account key URI (default: the stored one)");
    bind(ashow, account_show);

    auto* iss = app.add_subcommand("issue", "get a certificate for one or more names");
    iss->add_option("--key", o.key, "certificate key URI")->required();
    iss->add_option("-d,--domain", o.domains, "DNS name or IP address (repeatable)")->required();
    iss->add_option("--account-key", o.account_key, "account key URI (default: the stored account)");
    iss->add_option("--email", o.emails, "contact, when a new account is registered");
    iss->add_flag("--agree-tos", o.agree_tos, "agree to the CA's terms, when a new account is registered");
    iss->add_option("--challenge", o.challenge, "challenge type")->default_str("http-01");
    auto* port = iss->add_option("--http-port", o.http_port, "built-in http-01 responder: [ADDR:]PORT")
                     ->default_str("80");
    iss->add_option("--webroot", o.webroot, "serve http-01 from DIR/.well-known/acme-challenge/")
        ->excludes(port);
    iss->add_option("--out", o.out, "also write cert.pem, chain.pem, fullchain.pem here");
    bind(iss, issue);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return kUsage;
    }
    keystore::log::set_level(o.quiet ? keystore::log::Level::warning
                             : o.verbose > 0 ? keystore::log::Level::debug
                                             : keystore::log::Level::info);
    if (!action) return kUsage;
    keystore::Registry registry = make_registry();
    return report(o, action(o, registry));
}

}  // namespace cli
