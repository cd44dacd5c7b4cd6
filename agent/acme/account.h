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
    std::function<Result<base::Bytes>(std::span<const std::uint8_t>)> mac;
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

// What the agent understands of an account object, copied field by field with bounds
// (SECURITY.md rule 20): the server's object is never echoed as it came (a 64 KiB nested
// `contact` array once became 2 GB of --json output).
struct AccountInfo {
    static constexpr std::size_t kMaxContacts = 16;
    static constexpr std::size_t kMaxContactLength = 320;  // "mailto:" + a 254-byte address
    static constexpr std::size_t kMaxUrlLength = 2048;

    std::string status;                 // valid, deactivated or revoked; else "unknown"
    std::vector<std::string> contacts;  // the string entries, bounded in count and length
    std::size_t contacts_dropped = 0;   // entries not copied: not strings, too long, too many
    std::string orders;                 // the orders URL, "" when absent or not a short string
};
AccountInfo account_info(const nlohmann::json& account);

// POST-as-GET of the account object, through account_info.
Result<AccountInfo> fetch_account(Client& client, const keystore::Key& key, const std::string& url);

}  // namespace acme
