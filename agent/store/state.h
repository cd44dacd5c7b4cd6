// The state dir (default /var/lib/acme-agent): accounts per server, certificates in
// live/NAME/, all written atomically; a lock so two agents never share one dir.
//
//   DIR/                      0700
//     lock                    flock()ed while an agent works here
//     accounts/SERVER-ID.json {"server", "url", "key"}   one account per server
//     orders/NAME.json        the order in flight for NAME and its key URI
//     live/NAME/              cert.pem chain.pem fullchain.pem key.uri renewal.json
//                             (never a private key)
#pragma once

#include "base/error.h"
#include "base/files.h"

#include <optional>
#include <string>
#include <vector>

namespace store {

using base::Result;

struct Account {
    std::string server;   // directory URL
    std::string url;      // account URL (the kid)
    std::string key_uri;  // the account key's URI (no PIN value)
};

struct Certificate {
    std::string cert_pem;   // the leaf
    std::string chain_pem;  // the issuers
    std::string key_uri;
    std::string renewal;  // JSON: names and challenge settings for renew (renewal.json)
};

class StateDir {
  public:
    // Creates the dir (0700) if needed and takes the lock. Errc::state when another agent
    // holds it or the dir belongs to another user (who could plant a symlink in it);
    // Errc::io when the dir cannot be made. The dir and everything in it are reached through
    // descriptors, never through a symlink (SECURITY.md rule 17).
    static Result<StateDir> open(const std::string& dir);
    StateDir(StateDir&& other) noexcept;
    StateDir& operator=(StateDir&&) = delete;
    StateDir(const StateDir&) = delete;
    StateDir& operator=(const StateDir&) = delete;
    ~StateDir();

    [[nodiscard]] const std::string& path() const { return dir_.path(); }

    Result<std::optional<Account>> account(const std::string& server) const;
    Result<void> save_account(const Account& account);
    Result<void> remove_account(const std::string& server);

    // Writes live/NAME/, each file atomically and cert.pem last, so a reader that finds
    // the new cert.pem finds the rest.
    Result<void> save_certificate(const std::string& name, const Certificate& cert);
    Result<std::optional<Certificate>> certificate(const std::string& name) const;
    Result<std::vector<std::string>> certificate_names() const;

    // Orders in flight (orders/NAME.json): written right after newOrder (and before a new
    // key is generated for it), removed once the certificate is stored, so that a rerun
    // after a crash resumes the same order with the same key.
    Result<void> save_order(const std::string& name, const std::string& json_text);
    Result<std::optional<std::string>> order(const std::string& name) const;
    Result<void> remove_order(const std::string& name);

    // A deploy hook owed for certificate `name` (orders/NAME.deploy-pending): `run` records it
    // before ordering the certificate the hook deploys, so that a crash at any later point
    // leaves it owed, and clears it once the hook succeeded.
    Result<void> set_deploy_pending(const std::string& name, bool pending);
    bool deploy_pending(const std::string& name) const;

    // keys/ (enroll's TPM key files): made 0700 when missing, refused when a symlink. The
    // backend writes there by path: the state dir being the user's own keeps it in place.
    Result<std::string> key_dir() const;

    // Writes cert.pem, chain.pem, fullchain.pem into any directory (--out): created (0755)
    // when missing, its mode otherwise left alone, never through a symlink.
    static Result<void> write_pems(const std::string& dir, const Certificate& cert);

  private:
    StateDir(base::Dir dir, int lock_fd) : dir_(std::move(dir)), lock_fd_(lock_fd) {}
    // A child of the state dir (accounts, orders, live), created 0700 when `create`.
    Result<base::Dir> child(const char* name, base::Create create) const;
    base::Dir dir_;
    int lock_fd_ = -1;
};

// A certificate name usable as a directory: the first domain, '*' as '_wildcard'.
std::string safe_name(const std::string& name);

}  // namespace store
