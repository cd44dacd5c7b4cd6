#include "cli/common.h"

#include "acme/account.h"
#include "base/files.h"
#include "base/log.h"
#include "base/ossl.h"
#include "keystore/file_backend.h"
#include "keystore/mac.h"
#include "pkcs11/pkcs11_keystore.h"
#include "store/pg.h"
#include "tpm/tpm_keystore.h"

#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <algorithm>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

namespace cli {

keystore::Registry make_registry(const Global& g) {
    keystore::Registry r;
    r.add("file", [] {
        return Result<std::unique_ptr<keystore::Keystore>>(keystore::make_file_keystore());
    });
    r.add("pkcs11",
          [] { return Result<std::unique_ptr<keystore::Keystore>>(pkcs11::make_keystore()); });
    r.add("tpm2", [tcti = g.tcti] {
        return Result<std::unique_ptr<keystore::Keystore>>(tpm::make_keystore(tcti));
    });
    return r;
}

Result<void> accept_command_line(Args& args) {
    std::error_code ec;
    const std::string cwd = std::filesystem::current_path(ec).string();
    if (ec) return fail(Errc::io, "working directory", ec.message());
    auto key_uri = [&](std::string& text, const char* option) -> Result<void> {
        if (text.empty()) return {};
        auto uri = keystore::KeyUri::parse(text);
        if (!uri) return {};  // the command reports it, naming the option
        if (uri->query_attr("pin-value"))
            return fail(Errc::usage, option,
                        "a pin-value on the command line is visible to every local user (ps); "
                        "put the PIN in a file (printf '%s' PIN > FILE; chmod 600 FILE) and use "
                        "?pin-source=file:FILE instead");
        uri->make_paths_absolute(cwd);
        text = uri->to_string();
        return {};
    };
    Global& g = args.global;
    for (auto [text, option] :
         {std::pair{&args.key.key, "--key"}, std::pair{&args.account.key, "--key"},
          std::pair{&args.cert.key, "--key"}, std::pair{&args.revoke.key, "--key"},
          std::pair{&args.account.account_key, "--account-key"},
          std::pair{&args.cert.account_key, "--account-key"},
          std::pair{&args.revoke.account_key, "--account-key"},
          std::pair{&args.account.new_key, "--new-key"}})
        if (auto r = key_uri(*text, option); !r) return r;
    for (std::string* eab : {&args.account.eab_hmac_key, &args.cert.eab_hmac_key}) {
        if (eab->starts_with("pkcs11:")) {
            if (auto r = key_uri(*eab, "--eab-hmac-key"); !r) return r;
        } else if (!eab->empty()) {
            std::string path = eab->starts_with("file:") ? eab->substr(5) : *eab;
            *eab = std::filesystem::absolute(path, ec).lexically_normal().string();
        }
    }
    for (std::string* path : {&args.cert.out, &args.cert.webroot, &args.cert.tsig_key, &g.state_dir,
                              &g.ca_file, &args.run.config, &args.cert.batch, &args.storage.from})
        if (!path->empty())
            *path = std::filesystem::absolute(*path, ec).lexically_normal().string();
    return {};
}

Result<keystore::KeyUri> parse_uri(const std::string& text, const char* option) {
    if (text.empty()) return fail(Errc::usage, option, "a key URI is required");
    auto uri = keystore::KeyUri::parse(text);
    if (!uri) {
        Error e = uri.error();
        e.where = std::string(option);
        return std::unexpected(e);
    }
    return uri;
}

lifecycle::Settings settings(const Global& g, const CertArgs& a) {
    lifecycle::Settings s;
    static_cast<config::CertificateSettings&>(s) =
        static_cast<const config::CertificateSettings&>(a);  // only the settings part
    s.server = g.server;
    s.name = a.name;
    s.out = a.out;
    s.tag_progress = a.jobs > 1;
    s.allow_weak_key = g.allow_weak_key;
    s.force = a.force;
    s.new_key = a.renew_new_key;
    // Fleet mode: each node keeps its copies of the shared certificates under its state dir.
    if (store::pg::is_url(g.storage)) s.fleet_live = g.state_dir + "/live";
    return s;
}

Result<void> confirm(bool yes, const std::string& what, const std::string& question) {
    if (yes) return {};
    if (!::isatty(STDIN_FILENO))
        return fail(Errc::usage, what,
                    "this cannot be undone and there is no terminal to ask; add --yes to go ahead");
    std::fprintf(stderr, "%s [y/N] ", question.c_str());
    std::fflush(stderr);
    std::string answer;
    if (!std::getline(std::cin, answer)) answer.clear();
    if (answer == "y" || answer == "Y" || answer == "yes" || answer == "YES") return {};
    return fail(Errc::usage, what, "not confirmed; nothing was changed");
}

std::string pem_public_key(const base::Bytes& spki) {
    auto pkey = base::ossl::pkey_from_spki(spki);
    if (!pkey) return "";
    base::ossl::Bio bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_PUBKEY(bio.get(), pkey->get());
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

Result<std::unique_ptr<acme::Client>> connect(const Global& g, acme::ClientObserver observer) {
    acme::ClientOptions co;
    co.observer = std::move(observer);
    co.http.ca_file = g.ca_file;
    co.order_deadline = std::chrono::seconds(g.order_timeout);
    co.http.total_timeout = std::chrono::seconds(g.http_timeout);
    co.http.low_speed_seconds = std::min<long>(co.http.low_speed_seconds, g.http_timeout);
    co.http.user_agent = std::string("acme-agent/") + ACME_AGENT_VERSION;
    return acme::Client::connect(g.server, co);
}

Result<std::optional<acme::Eab>> eab_from(const AccountChoice& a, keystore::Registry& reg) {
    if (a.eab_kid.empty() != a.eab_hmac_key.empty())
        return fail(Errc::usage, "--eab-kid",
                    "External Account Binding needs both --eab-kid and --eab-hmac-key");
    if (a.eab_kid.empty()) return std::optional<acme::Eab>{};
    if (a.eab_hmac_key.starts_with("pkcs11:")) {
        auto uri = parse_uri(a.eab_hmac_key, "--eab-hmac-key");
        if (!uri) return std::unexpected(uri.error());
        auto ks = reg.keystore_for(*uri);
        if (!ks) return std::unexpected(ks.error());
        auto* macs = dynamic_cast<keystore::MacKeystore*>(*ks);
        if (!macs)
            return fail(Errc::unsupported, "--eab-hmac-key", "this backend holds no HMAC keys");
        auto key = macs->open_mac(*uri);
        if (!key) return std::unexpected(key.error());
        std::shared_ptr<keystore::MacKey> shared(std::move(*key));
        return std::optional<acme::Eab>(acme::Eab{
            a.eab_kid,
            [shared](std::span<const std::uint8_t> d) { return shared->hmac_sha256(d); }});
    }
    auto secret = read_mac_key_file(a.eab_hmac_key);
    if (!secret) return std::unexpected(secret.error());
    auto shared = std::make_shared<base::Secret>(std::move(*secret));
    return std::optional<acme::Eab>(
        acme::Eab{a.eab_kid, [shared](std::span<const std::uint8_t> d) -> Result<base::Bytes> {
                      base::Bytes mac(EVP_MAX_MD_SIZE);
                      unsigned int len = 0;
                      if (!HMAC(EVP_sha256(), shared->reveal().data(),
                                static_cast<int>(shared->reveal().size()), d.data(), d.size(),
                                mac.data(), &len))
                          return base::ossl::fail_ossl("HMAC");
                      mac.resize(len);
                      return mac;
                  }});
}

Result<base::Secret> read_mac_key_file(const std::string& source) {
    std::string path = source.starts_with("file:") ? source.substr(5) : source;
    auto text = base::read_secret_file(path, "MAC key file");
    if (!text) return std::unexpected(text.error());
    std::string_view t = text->reveal();
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
    while (!t.empty() && t.back() == '=') t.remove_suffix(1);  // CAs hand out padded keys too
    auto raw = base::base64url_decode(t);
    if (!raw || raw->empty())
        return fail(Errc::usage, "MAC key", path + " does not hold a base64url MAC key");
    base::Secret out(std::string(raw->begin(), raw->end()));
    OPENSSL_cleanse(raw->data(), raw->size());
    return out;
}

Result<void> have_account(const Global& g, const AccountChoice& a, const store::Storage& state) {
    if (!a.account_key.empty()) return {};
    auto stored = state.account(g.server);
    if (!stored) return std::unexpected(stored.error());
    if (!*stored)
        return fail(Errc::not_found, "account",
                    "no account for " + g.server + " in " + state.location() +
                        "; run 'acme-agent account register --key URI --agree-tos' or pass "
                        "--account-key URI");
    return {};
}

Result<AccountCtx> account_for(const Global& g, const AccountChoice& a, keystore::Registry& reg,
                               store::Storage& state, acme::Client& client, bool may_register) {
    if (auto r = have_account(g, a, state); !r) return std::unexpected(r.error());
    auto stored = state.account(g.server);
    if (!stored) return std::unexpected(stored.error());
    const std::string key_text = a.account_key.empty() ? (*stored)->key_uri : a.account_key;
    auto uri = parse_uri(key_text, "--account-key");
    if (!uri) return std::unexpected(uri.error());
    auto key = open_signing_key(g, reg, *uri);
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
        auto eab = eab_from(a, reg);
        if (!eab) return std::unexpected(eab.error());
        acme::AccountRequest req{a.emails, a.agree_tos, std::move(*eab)};
        auto url = acme::register_account(client, **key, req);
        if (!url) return std::unexpected(url.error());
        ctx.url = *url;
        base::log::info("account: registered " + ctx.url);
    }
    if (auto r = state.save_account({g.server, ctx.url, (*key)->uri().to_string()}); !r)
        return std::unexpected(r.error());
    return ctx;
}

Result<Session> open_session(const Global& g, const AccountChoice& a, keystore::Registry& reg,
                             bool may_register) {
    auto state = store::open_storage(g.state_dir, g.storage);
    if (!state) return std::unexpected(state.error());
    if (auto r = have_account(g, a, **state); !r) return std::unexpected(r.error());
    auto client = connect(g);
    if (!client) return std::unexpected(client.error());
    auto account = account_for(g, a, reg, **state, **client, may_register);
    if (!account) return std::unexpected(account.error());
    return Session{std::move(*state), std::move(*client), std::move(*account)};
}

}  // namespace cli
