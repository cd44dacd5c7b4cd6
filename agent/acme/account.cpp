#include "acme/account.h"

#include "jose/jws.h"
#include "keystore/jwk.h"

namespace acme {

using base::Errc;
using base::fail;
using nlohmann::json;

namespace {
Result<json> contacts_of(const std::vector<std::string>& emails) {
    json contacts = json::array();
    for (const auto& e : emails) {
        if (e.find_first_of(",\r\n ") != std::string::npos || e.find('@') == std::string::npos)
            return fail(Errc::usage, "--email", "'" + e + "' is not an email address");
        contacts.push_back("mailto:" + e);
    }
    return contacts;
}

Result<std::string> account_url(const Client& client, const HttpResponse& r) {
    if (!r.location) return fail(Errc::protocol, "newAccount", "no Location header in the answer");
    if (auto ok = client.check_origin(*r.location, "account URL"); !ok)
        return std::unexpected(ok.error());
    return *r.location;
}
}  // namespace

Result<std::string> register_account(Client& client, const keystore::Key& key,
                                     const AccountRequest& request) {
    const auto& dir = client.directory();
    if (dir.terms_of_service && !request.agree_tos)
        return fail(Errc::usage, "account",
                    "the CA's terms of service must be accepted: read " + *dir.terms_of_service +
                        " and pass --agree-tos");
    if (dir.eab_required && !request.eab)
        return fail(
            Errc::usage, "account",
            "the CA requires External Account Binding: pass --eab-kid ID --eab-hmac-key SRC");
    json payload{{"termsOfServiceAgreed", request.agree_tos}};
    if (!request.emails.empty()) {
        auto contacts = contacts_of(request.emails);
        if (!contacts) return std::unexpected(contacts.error());
        payload["contact"] = *contacts;
    }
    if (request.eab) {
        auto jwk = keystore::jwk_json(key.public_key_der());
        if (!jwk) return std::unexpected(jwk.error());
        auto inner = jose::sign_hs256(request.eab->kid, dir.new_account, *jwk, request.eab->mac);
        if (!inner) return std::unexpected(inner.error());
        payload["externalAccountBinding"] = json::parse(*inner);
    }
    auto r = client.post(dir.new_account, key, std::nullopt, payload.dump());
    if (!r) return std::unexpected(r.error());
    return account_url(client, *r);
}

Result<std::optional<std::string>> find_account(Client& client, const keystore::Key& key) {
    auto r = client.post(client.directory().new_account, key, std::nullopt,
                         json{{"onlyReturnExisting", true}}.dump());
    if (!r) {
        if (problem_type(r.error()) == "accountDoesNotExist") return std::optional<std::string>{};
        return std::unexpected(r.error());
    }
    auto url = account_url(client, *r);
    if (!url) return std::unexpected(url.error());
    return std::optional<std::string>(*url);
}

Result<json> update_account(Client& client, const keystore::Key& key, const std::string& url,
                            const std::vector<std::string>& emails) {
    auto contacts = contacts_of(emails);
    if (!contacts) return std::unexpected(contacts.error());
    return client.post_json(url, key, url, json{{"contact", *contacts}}.dump());
}

Result<void> deactivate_account(Client& client, const keystore::Key& key, const std::string& url) {
    auto r = client.post_json(url, key, url, json{{"status", "deactivated"}}.dump());
    if (!r) return std::unexpected(r.error());
    if (json_string(*r, "status") != "deactivated")
        return fail(Errc::protocol, "deactivate", "the CA did not confirm the deactivation");
    return {};
}

Result<void> rollover(Client& client, const keystore::Key& old_key, const std::string& url,
                      const keystore::Key& new_key) {
    const std::string& key_change = client.directory().key_change;
    if (key_change.empty())
        return fail(Errc::unsupported, "rollover", "the CA's directory has no keyChange");
    auto old_jwk = keystore::jwk_json(old_key.public_key_der());
    if (!old_jwk) return std::unexpected(old_jwk.error());
    const json inner_payload{{"account", url}, {"oldKey", json::parse(*old_jwk)}};
    auto inner =
        jose::sign(new_key, {key_change, std::nullopt, std::nullopt}, inner_payload.dump());
    if (!inner) return std::unexpected(inner.error());
    auto r = client.post(key_change, old_key, url, *inner);
    if (!r) return std::unexpected(r.error());
    return {};
}

AccountInfo account_info(const json& account) {
    AccountInfo info;
    const std::string status = json_string(account, "status");
    info.status =
        status == "valid" || status == "deactivated" || status == "revoked" ? status : "unknown";
    if (account.is_object() && account.contains("contact") && account["contact"].is_array()) {
        for (const auto& c : account["contact"]) {
            if (c.is_string() &&
                c.get_ref<const std::string&>().size() <= AccountInfo::kMaxContactLength &&
                info.contacts.size() < AccountInfo::kMaxContacts)
                info.contacts.push_back(c.get<std::string>());
            else
                ++info.contacts_dropped;
        }
    }
    if (std::string orders = json_string(account, "orders");
        orders.size() <= AccountInfo::kMaxUrlLength)
        info.orders = std::move(orders);
    return info;
}

Result<AccountInfo> fetch_account(Client& client, const keystore::Key& key,
                                  const std::string& url) {
    auto r = client.post_json(url, key, url, "");
    if (!r) return std::unexpected(r.error());
    return account_info(*r);
}

}  // namespace acme
