#include "lifecycle/account.h"

#include "base/files.h"
#include "base/log.h"
#include "base/ossl.h"
#include "keystore/mac.h"
#include "lifecycle/keys.h"
#include "store/open.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <chrono>

namespace lifecycle {

using base::Errc;
using base::fail;

Result<std::unique_ptr<acme::Client>> connect(const Globals& g, acme::ClientObserver observer) {
    acme::ClientOptions co;
    co.observer = std::move(observer);
    co.http.ca_file = g.ca_file;
    co.order_deadline = std::chrono::seconds(g.order_timeout);
    co.http.total_timeout = std::chrono::seconds(g.http_timeout);
    co.http.low_speed_seconds = std::min<long>(co.http.low_speed_seconds, g.http_timeout);
    co.http.user_agent = g.user_agent;
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

Result<void> have_account(const Globals& g, const AccountChoice& a, const store::Storage& state) {
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

Result<Account> account_for(const Globals& g, const AccountChoice& a, keystore::Registry& reg,
                            store::Storage& state, acme::Client& client, bool may_register) {
    if (auto r = have_account(g, a, state); !r) return std::unexpected(r.error());
    auto stored = state.account(g.server);
    if (!stored) return std::unexpected(stored.error());
    const std::string key_text = a.account_key.empty() ? (*stored)->key_uri : a.account_key;
    auto uri = parse_uri(key_text, "--account-key");
    if (!uri) return std::unexpected(uri.error());
    auto key = open_signing_key(reg, *uri, g.allow_weak_key);
    if (!key) return std::unexpected(key.error());
    Account ctx{*key, ""};
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

Result<Session> open_session(const Globals& g, const AccountChoice& a, keystore::Registry& reg,
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

Result<Registered> register_account(const Globals& g, const AccountChoice& a,
                                    const std::string& key_text, keystore::Registry& reg) {
    auto uri = parse_uri(key_text, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto state = store::open_storage(g.state_dir, g.storage);
    if (!state) return std::unexpected(state.error());
    auto key = open_signing_key(reg, *uri, g.allow_weak_key);
    if (!key) return std::unexpected(key.error());
    auto client = connect(g);
    if (!client) return std::unexpected(client.error());
    auto eab = eab_from(a, reg);
    if (!eab) return std::unexpected(eab.error());
    auto url = acme::register_account(**client, **key, {a.emails, a.agree_tos, std::move(*eab)});
    if (!url) return std::unexpected(url.error());
    if (auto r = (*state)->save_account({g.server, *url, (*key)->uri().to_string()}); !r)
        return std::unexpected(r.error());
    return Registered{*url, g.server, (*key)->uri().to_string()};
}

Result<AccountShown> show_account(const Globals& g, const AccountChoice& a,
                                  keystore::Registry& reg) {
    auto session = open_session(g, a, reg, false);
    if (!session) return std::unexpected(session.error());
    const Account& ctx = session->account;
    auto acct = acme::fetch_account(*session->client, *ctx.key, ctx.url);
    if (!acct) return std::unexpected(acct.error());
    return AccountShown{ctx.url, g.server, ctx.key->uri().to_string(), std::move(*acct)};
}

Result<AccountUpdated> update_account(const Globals& g, const AccountChoice& a,
                                      keystore::Registry& reg) {
    if (a.emails.empty())
        return fail(Errc::usage, "--email", "give the new contact addresses with --email");
    auto session = open_session(g, a, reg, false);
    if (!session) return std::unexpected(session.error());
    const Account& ctx = session->account;
    if (auto r = acme::update_account(*session->client, *ctx.key, ctx.url, a.emails); !r)
        return std::unexpected(r.error());
    return AccountUpdated{ctx.url, a.emails};
}

Result<Deactivated> deactivate_account(const Globals& g, const AccountChoice& a,
                                       keystore::Registry& reg, const Confirm& confirm) {
    auto session = open_session(g, a, reg, false);
    if (!session) return std::unexpected(session.error());
    const Account& ctx = session->account;
    if (auto r = confirm(ctx.url); !r) return std::unexpected(r.error());
    if (auto r = acme::deactivate_account(*session->client, *ctx.key, ctx.url); !r)
        return std::unexpected(r.error());
    return Deactivated{ctx.url};
}

Result<RolledOver> rollover_account(const Globals& g, const AccountChoice& a,
                                    const std::string& new_key_text, keystore::Registry& reg) {
    auto new_uri = parse_uri(new_key_text, "--new-key");
    if (!new_uri) return std::unexpected(new_uri.error());
    auto new_key = open_signing_key(reg, *new_uri, g.allow_weak_key);
    if (!new_key) return std::unexpected(new_key.error());
    auto session = open_session(g, a, reg, false);
    if (!session) return std::unexpected(session.error());
    const Account& ctx = session->account;
    if ((*new_key)->public_key_der() == ctx.key->public_key_der())
        return fail(Errc::usage, "--new-key", "that is the account's current key");
    if (auto r = acme::rollover(*session->client, *ctx.key, ctx.url, **new_key); !r)
        return std::unexpected(r.error());
    // Only now that the CA has confirmed: record the new key.
    if (auto r = session->state->save_account({g.server, ctx.url, (*new_key)->uri().to_string()});
        !r)
        return std::unexpected(r.error());
    return RolledOver{ctx.url, (*new_key)->uri().to_string(), ctx.key->uri().to_string()};
}

}  // namespace lifecycle
