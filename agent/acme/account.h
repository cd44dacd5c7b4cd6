// ACME accounts (RFC 8555 §7.3).
#pragma once

#include "acme/client.h"

#include <optional>
#include <string>
#include <vector>

namespace acme {

struct AccountRequest {
    std::vector<std::string> emails;  // sent as mailto: contacts
    bool agree_tos = false;
};

// newAccount. Without agree_tos, when the directory has meta.termsOfService, refuses
// (Errc::usage) and names the URL to read. Returns the account URL (the kid); an
// existing account of the same key is found again (the server answers 200).
Result<std::string> register_account(Client& client, const keystore::Key& key,
                                     const AccountRequest& request);
// newAccount with onlyReturnExisting: the account URL of `key`, or nullopt when the server
// has none.
Result<std::optional<std::string>> find_account(Client& client, const keystore::Key& key);
// POST-as-GET of the account object.
Result<nlohmann::json> fetch_account(Client& client, const keystore::Key& key, const std::string& url);

}  // namespace acme
