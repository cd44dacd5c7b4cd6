// The ACME account: a client for the CA, which account a command signs with (the stored
// one, else the one of a given key, registered on the way when allowed), External Account
// Binding, and the account operations behind `account register | show | update |
// deactivate | rollover`. Plain parameters, no CLI11; errors name the command line's
// options (the config's keys have the same names).
#pragma once

#include "acme/account.h"
#include "acme/client.h"
#include "base/bytes.h"
#include "keystore/keystore.h"
#include "lifecycle/certificate.h"
#include "lifecycle/settings.h"
#include "store/state.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lifecycle {

// Which ACME account, and what a new one is registered with.
struct AccountChoice {
    std::string account_key;  // a key URI; "" for the account stored for the server
    std::vector<std::string> emails;
    bool agree_tos = false;
    // External Account Binding
    std::string eab_kid;
    std::string eab_hmac_key;  // a file holding the base64url key, or a pkcs11: URI
};

// A client for g.server (its CA file, timeouts and user agent); `observer` is told of each
// request and retry (run --metrics).
Result<std::unique_ptr<acme::Client>> connect(const Globals& g, acme::ClientObserver observer = {});

// The EAB settings of --eab-kid / --eab-hmac-key (a 0600 file with the base64url key, or
// the pkcs11: URI of an HMAC key in a token), or nullopt when neither is given.
Result<std::optional<acme::Eab>> eab_from(const AccountChoice& a, keystore::Registry& reg);
// Reads a base64url MAC key from a file that only its owner can read.
Result<base::Secret> read_mac_key_file(const std::string& source);

// Without an account key, an account for g.server must be stored: Errc::not_found naming
// `account register` otherwise. Checked before the first request.
Result<void> have_account(const Globals& g, const AccountChoice& a, const store::Storage& state);

// The account for g.server: the stored one, else the one of a.account_key (found again
// or, when may_register, registered). Stores what it learns.
Result<Account> account_for(const Globals& g, const AccountChoice& a, keystore::Registry& reg,
                            store::Storage& state, acme::Client& client, bool may_register);

// What most ACME commands start with: the storage, a client for g.server and the account
// (registered on the way when `may_register`).
struct Session {
    std::unique_ptr<store::Storage> state;
    std::unique_ptr<acme::Client> client;
    Account account;
};
Result<Session> open_session(const Globals& g, const AccountChoice& a, keystore::Registry& reg,
                             bool may_register);

// account register: registers (or finds again) the account of `key` (--key) and stores it.
struct Registered {
    std::string account, server, key;
};
Result<Registered> register_account(const Globals& g, const AccountChoice& a,
                                    const std::string& key, keystore::Registry& reg);

// account show: the account and what the CA says of it.
struct AccountShown {
    std::string account, server, key;
    acme::AccountInfo info;
};
Result<AccountShown> show_account(const Globals& g, const AccountChoice& a,
                                  keystore::Registry& reg);

// account update: replaces the contacts with a.emails (at least one).
struct AccountUpdated {
    std::string account;
    std::vector<std::string> contact;
};
Result<AccountUpdated> update_account(const Globals& g, const AccountChoice& a,
                                      keystore::Registry& reg);

// account deactivate: asks `confirm` (with the account's URL) first; nothing is sent
// unless it succeeds.
struct Deactivated {
    std::string account;
};
using Confirm = std::function<Result<void>(const std::string& account_url)>;
Result<Deactivated> deactivate_account(const Globals& g, const AccountChoice& a,
                                       keystore::Registry& reg, const Confirm& confirm);

// account rollover: moves the account to `new_key` (--new-key) and, once the CA has
// confirmed, stores it.
struct RolledOver {
    std::string account, key, old_key;
};
Result<RolledOver> rollover_account(const Globals& g, const AccountChoice& a,
                                    const std::string& new_key, keystore::Registry& reg);

}  // namespace lifecycle
