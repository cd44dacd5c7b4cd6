// ACME accounts (RFC 8555 §7.3).
#pragma once

#include "acme/client.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace acme {

// External Account Binding (RFC 8555 §7.3.4): the CA's key id and an HMAC-SHA256 over the
// inner JWS, computed wherever the MAC key lives (a file, or inside a PKCS#11 token).
struct Eab {
    std::string kid;
    std::function<Result<keystore::Bytes>(std::span<const std::uint8_t>)> mac;
};

struct AccountRequest {
    std::vector<std::string> emails;  // sent as mailto: contacts
    bool agree_tos = false;
    std::optional<Eab> eab;
};

// newAccount. Without agree_tos, when the directory has meta.termsOfService, refuses
// (Errc::usage) and names the URL to read. Returns the account URL (the kid); an
// existing account of the same key is found again (the server answers 200).
Result<std::string> register_account(Client& client, const keystore::Key& key,
                                     const AccountRequest& request);
// newAccount with onlyReturnExisting: the account URL of `key`, or nullopt when the server
// has none.
Result<std::optional<std::string>> find_account(Client& client, const keystore::Key& key);
// Replaces the account's contacts (RFC 8555 §7.3.2).
Result<nlohmann::json> update_account(Client& client, const keystore::Key& key,
                                      const std::string& url,
                                      const std::vector<std::string>& emails);
// Deactivates the account (§7.3.6); the CA then refuses every request signed by it.
Result<void> deactivate_account(Client& client, const keystore::Key& key, const std::string& url);
// Account key roll-over (§7.3.5): the inner JWS signed by `new_key` (jwk, no nonce), the
// outer by `old_key` (kid). Succeeds only when the CA confirms.
Result<void> rollover(Client& client, const keystore::Key& old_key, const std::string& url,
                      const keystore::Key& new_key);

// POST-as-GET of the account object.
Result<nlohmann::json> fetch_account(Client& client, const keystore::Key& key,
                                     const std::string& url);

}  // namespace acme
