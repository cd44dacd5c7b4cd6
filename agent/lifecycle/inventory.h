// The certificates the agent manages, from its storage (the state dir or a fleet's
// database), as `acme-agent certificates` shows them: each one's names, key, serial,
// validity, when it is due and why, the last renewal attempt `run` recorded (attempts.h)
// and the account. The CA is only asked for its ARI window: when it does not answer, the
// lifetime rule is used and the inventory still succeeds.
#pragma once

#include "base/error.h"
#include "lifecycle/due.h"
#include "lifecycle/settings.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace lifecycle {

struct InventoryEntry {
    std::vector<std::string> domains;  // what it was ordered for (stored_domains)
    std::string key_uri;               // without a PIN
    std::string backend;               // the key URI's scheme
    std::string serial;
    std::chrono::system_clock::time_point not_before, not_after;
    long days_left = 0;  // whole days until not_after, rounded down
    Due due{};
    // Which rule `due` follows: "renew_before_days" (the one it was ordered with, which
    // wins over ARI), "ari" (the CA's window) or "lifetime".
    std::string rule;
    std::string server;    // the CA asked: the given one, else the one it was issued from
    std::string ca_error;  // why the CA was not asked or did not answer; "" when it did
    std::optional<nlohmann::json> last_attempt;  // last_attempt(): none recorded when nullopt
    std::optional<std::string> account;          // the URL of the account stored for `server`
};

struct InventoryItem {
    std::string name;
    base::Result<InventoryEntry> entry;  // an unreadable certificate does not hide the others
};

struct Inventory {
    std::string location;  // the storage's, for "no certificates in ..."
    std::vector<InventoryItem> items;
};

// Every stored certificate, or only `only` when it is not "" (Errc::not_found when there
// is none, and its own error when it cannot be read). Each is judged against g.server
// when `server_given`, else the CA it was issued from. A state dir that does not exist
// holds no certificates and is not made.
base::Result<Inventory> inventory(const Globals& g, const std::string& only, bool server_given);

}  // namespace lifecycle
