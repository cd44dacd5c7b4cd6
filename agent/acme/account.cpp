#include "acme/account.h"

namespace acme {

using keystore::Errc;
using keystore::fail;
using nlohmann::json;

namespace {
Result<std::string> account_url(Client& client, const HttpResponse& r) {
    if (!r.location) return fail(Errc::protocol, "newAccount", "no Location header in the answer");
    if (auto ok = client.check_origin(*r.location, "account URL"); !ok) return std::unexpected(ok.error());
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
    json payload{{"termsOfServiceAgreed", request.agree_tos}};
    if (!request.emails.empty()) {
        json contacts = json::array();
        for (auto& e : request.emails) {
            if (e.find_first_of(",\r\n ") != std::string::npos || e.find('@') == std::string::npos)
                return fail(Errc::usage, "--email", "'" + e + "' is not an email address");
            contacts.push_back("mailto:" + e);
        }
        payload["contact"] = contacts;
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

Result<json> fetch_account(Client& client, const keystore::Key& key, const std::string& url) {
    return client.post_json(url, key, url, "");
}

}  // namespace acme
