#include "cli/common.h"

#include "acme/account.h"
#include "keystore/file_backend.h"
#include "keystore/log.h"
#include "keystore/ossl.h"
#include "pkcs11/pkcs11_keystore.h"

#include <openssl/pem.h>

namespace cli {

keystore::Registry make_registry(const Options&) {
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


Result<std::unique_ptr<acme::Client>> connect(const Options& o) {
    acme::ClientOptions co;
    co.http.ca_file = o.ca_file;
    co.http.user_agent = std::string("acme-agent/") + ACME_AGENT_VERSION;
    return acme::Client::connect(o.server, co);
}


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

}  // namespace cli
