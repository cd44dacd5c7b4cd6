// The state dir (default /var/lib/acme-agent), the first store::Storage: accounts per
// server, certificates in live/NAME/, all written atomically; a lock so two agents never
// share one dir, and a lease per certificate.
//
//   DIR/                      0700
//     lock                    flock()ed while an agent works here
//     accounts/SERVER-ID.json {"server", "url", "key"}   one account per server
//     orders/NAME.json        the order in flight for NAME and its key URI
//     orders/NAME.deploy-pending
//     live/NAME/              cert.pem chain.pem fullchain.pem key.uri renewal.json
//                             (never a private key)
//     live/.NAME.new/         a certificate being written, swapped in whole
//     leases/NAME.json        {"owner", "expires_ms", "fence"}, flock()ed by its holder
#pragma once

#include "base/error.h"
#include "base/files.h"
#include "store/storage.h"

#include <optional>
#include <string>
#include <vector>

namespace store {

class StateDir final : public Storage {
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
    ~StateDir() override;

    [[nodiscard]] const std::string& path() const { return dir_.path(); }
    [[nodiscard]] std::string location() const override { return path(); }
    [[nodiscard]] std::string certificate_location(const std::string& name) const override;

    Result<std::optional<Account>> account(const std::string& server) const override;
    Result<void> save_account(const Account& account) override;
    Result<void> remove_account(const std::string& server) override;
    Result<std::vector<std::string>> account_servers() const override;

    // Writes live/.NAME.new/ (cert.pem last) and swaps it with live/NAME/ in one
    // renameat2(RENAME_EXCHANGE); where the file system cannot, writes live/NAME/ in place
    // as before the swap existed (cert.pem last). Writers of one name take turns (a flock on
    // live/).
    Result<void> save_certificate(const std::string& name, const Certificate& cert) override;
    Result<std::optional<Certificate>> certificate(const std::string& name) const override;
    Result<std::vector<std::string>> certificate_names() const override;

    Result<void> save_order(const std::string& name, const std::string& json_text) override;
    Result<std::optional<std::string>> order(const std::string& name) const override;
    Result<void> remove_order(const std::string& name) override;
    Result<std::vector<std::string>> order_names() const override;

    Result<void> set_deploy_pending(const std::string& name, bool pending) override;
    [[nodiscard]] bool deploy_pending(const std::string& name) const override;

    // leases/NAME.json, replaced whole on every change while leases/ is flock()ed; the
    // holder keeps the current record flock()ed, so a record whose flock is free belongs to
    // nobody alive.
    Result<Lease> acquire_lease(const std::string& name, const std::string& owner,
                                std::chrono::milliseconds ttl,
                                std::chrono::milliseconds wait) override;
    Result<void> extend_lease(Lease& lease, std::chrono::milliseconds ttl) override;
    [[nodiscard]] Result<void> check_lease(const Lease& lease) const override;
    Result<void> release_lease(Lease& lease) override;

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
