#include "cli/common.h"

#include "acme/account.h"
#include "keystore/file_backend.h"
#include "keystore/files.h"
#include "keystore/log.h"
#include "keystore/mac.h"
#include "keystore/ossl.h"
#include "pkcs11/pkcs11_keystore.h"
#include "tpm/tpm_keystore.h"

#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <algorithm>

#include <sys/stat.h>

namespace cli {

keystore::Registry make_registry(const Options& o) {
    keystore::Registry r;
    r.add("file", [] {
        return Result<std::unique_ptr<keystore::Keystore>>(keystore::make_file_keystore());
    });
    r.add("pkcs11",
          [] { return Result<std::unique_ptr<keystore::Keystore>>(pkcs11::make_keystore()); });
    r.add("tpm2", [tcti = o.tcti] {
        return Result<std::unique_ptr<keystore::Keystore>>(tpm::make_keystore(tcti));
    });
    return r;
}

std::optional<Error> Failures::summary(std::size_t total, std::string_view noun) const {
    if (!first) return std::nullopt;
    Error e = *first;
    e.message = std::to_string(count) + " of " + std::to_string(total) + std::string(noun) +
                " failed; the first: " + first_label + ": " + first->describe();
    e.where = "";
    e.native.reset();
    return e;
}

json error_json(const Error& e) {
    json err{{"code", keystore::errc_name(e.code)}, {"where", e.where}, {"message", e.message}};
    if (e.native) err["native"] = *e.native;
    if (e.retry_at)  // the CA asked to wait (Retry-After): not before then
        err["retry_at"] =
            iso_time(std::chrono::system_clock::time_point(std::chrono::seconds(*e.retry_at)));
    return err;
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
    char buf[32] = {};
    (void)std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&tt));  // 20 chars
    return buf;
}

Result<std::unique_ptr<acme::Client>> connect(const Options& o) {
    acme::ClientOptions co;
    co.http.ca_file = o.ca_file;
    co.order_deadline = std::chrono::seconds(o.order_timeout);
    co.http.total_timeout = std::chrono::seconds(o.http_timeout);
    co.http.low_speed_seconds = std::min<long>(co.http.low_speed_seconds, o.http_timeout);
    co.http.user_agent = std::string("acme-agent/") + ACME_AGENT_VERSION;
    return acme::Client::connect(o.server, co);
}

Result<std::optional<acme::Eab>> eab_from(const Options& o, keystore::Registry& reg) {
    if (o.eab_kid.empty() != o.eab_hmac_key.empty())
        return fail(Errc::usage, "--eab-kid",
                    "External Account Binding needs both --eab-kid and --eab-hmac-key");
    if (o.eab_kid.empty()) return std::optional<acme::Eab>{};
    if (o.eab_hmac_key.starts_with("pkcs11:")) {
        auto uri = parse_uri(o.eab_hmac_key, "--eab-hmac-key");
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
            o.eab_kid,
            [shared](std::span<const std::uint8_t> d) { return shared->hmac_sha256(d); }});
    }
    auto secret = read_mac_key_file(o.eab_hmac_key);
    if (!secret) return std::unexpected(secret.error());
    auto shared = std::make_shared<keystore::Secret>(std::move(*secret));
    return std::optional<acme::Eab>(
        acme::Eab{o.eab_kid, [shared](std::span<const std::uint8_t> d) -> Result<keystore::Bytes> {
                      keystore::Bytes mac(EVP_MAX_MD_SIZE);
                      unsigned int len = 0;
                      if (!HMAC(EVP_sha256(), shared->reveal().data(),
                                static_cast<int>(shared->reveal().size()), d.data(), d.size(),
                                mac.data(), &len))
                          return keystore::ossl::fail_ossl("HMAC");
                      mac.resize(len);
                      return mac;
                  }});
}

Result<keystore::Secret> read_mac_key_file(const std::string& source) {
    std::string path = source.starts_with("file:") ? source.substr(5) : source;
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0)
        return fail(Errc::not_found, "MAC key", "cannot read " + path);
    if (st.st_mode & 077)
        return fail(Errc::usage, "MAC key",
                    path + " is readable by others; run: chmod 600 " + path);
    auto text = keystore::read_file(path, 4096);
    if (!text) return std::unexpected(text.error());
    std::string& t = *text;
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
    while (!t.empty() && t.back() == '=') t.pop_back();  // CAs hand out padded keys too
    auto raw = keystore::base64url_decode(t);
    OPENSSL_cleanse(t.data(), t.size());
    if (!raw || raw->empty())
        return fail(Errc::usage, "MAC key", path + " does not hold a base64url MAC key");
    keystore::Secret out(std::string(raw->begin(), raw->end()));
    OPENSSL_cleanse(raw->data(), raw->size());
    return out;
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
        auto eab = eab_from(o, reg);
        if (!eab) return std::unexpected(eab.error());
        acme::AccountRequest req{o.emails, o.agree_tos, std::move(*eab)};
        auto url = acme::register_account(client, **key, req);
        if (!url) return std::unexpected(url.error());
        ctx.url = *url;
        keystore::log::info("account: registered " + ctx.url);
    }
    if (auto r = state.save_account({o.server, ctx.url, (*key)->uri().to_string()}); !r)
        return std::unexpected(r.error());
    return ctx;
}

Result<Session> open_session(const Options& o, keystore::Registry& reg, bool may_register) {
    auto state = store::StateDir::open(o.state_dir);
    if (!state) return std::unexpected(state.error());
    auto client = connect(o);
    if (!client) return std::unexpected(client.error());
    auto account = account_for(o, reg, *state, **client, may_register);
    if (!account) return std::unexpected(account.error());
    return Session{std::move(*state), std::move(*client), std::move(*account)};
}

}  // namespace cli
