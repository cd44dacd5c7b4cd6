// The agent's state behind one interface: accounts per server, orders in flight,
// certificates (with their key URI and renewal record), owed deploy hooks, and a lease per
// certificate. The state dir (store::StateDir) is the first implementation; a database
// shared by several agents is the next. tests/conformance/storage/ is the contract every
// implementation passes.
//
// Names: a certificate name is what callers pass (the first domain or --name, '*.'
// allowed). A name that cannot be stored as one is Errc::usage (check_name): empty,
// longer than max_name_length, holding '/', "..", or a control character.
#pragma once

#include "base/error.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
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

// NAME_MAX (255) less the most the state dir adds to a name: "_wildcard" for "*" (8
// more), ".deploy-pending" (15), and ".tmp." with ten digits while it is written (15).
inline constexpr std::size_t max_name_length = 255 - 8 - 15 - 15;
// NAME_MAX less ".json" and a temp file's ".tmp." with ten digits: the state dir names an
// account's file after its server.
inline constexpr std::size_t max_server_length = 255 - 5 - 15;

// The owner this process takes leases as: NODE:PID.
std::string default_owner();

// This machine in a fleet (its deploy record): ACME_AGENT_NODE when set (1 to 64 of
// [A-Za-z0-9._-]; several agents on one host tell themselves apart with it), else the
// hostname.
std::string node_name();

// Errc::usage, naming the rule, for a certificate name no implementation stores.
Result<void> check_name(const std::string& name);
// Errc::usage for an empty or over-long server URL.
Result<void> check_server(const std::string& server);

using Clock = std::chrono::system_clock;

// A lease on one certificate: while it is held (and not expired) no other owner is granted
// one. Every grant gets a fence higher than any before it for that certificate, so that
// work done under a lease that was lost can be told apart and refused. The state dir keeps
// the record in a file, flock()ed by the holder (a dead holder's lease is free at once); a
// database keeps a row (name, holder, expires_at, fence) and frees it at expiry:
//   acquire  INSERT ... ON CONFLICT (name) DO UPDATE SET holder = $owner,
//            expires_at = now() + $ttl, fence = leases.fence + 1
//            WHERE leases.holder IS NULL OR leases.expires_at <= now() RETURNING fence
//   extend   UPDATE ... SET expires_at = now() + $ttl
//            WHERE name = $1 AND holder = $owner AND fence = $fence AND expires_at > now()
//   check    the same WHERE, as a SELECT; release: SET holder = NULL (the fence stays)
// `expires` is by the holder's clock and no later than the store's expiry (a database's
// holder counts from before its request was sent), so that a holder that checks its own
// clock stops before another can be granted the lease.
struct Lease {
    // What an implementation holds for the lease's lifetime (the state dir: the open,
    // flock()ed record). Dropping it without release_lease: the state dir sees the holder
    // gone at once, a database when the lease expires.
    struct Hold {
        Hold() = default;
        Hold(const Hold&) = delete;
        Hold& operator=(const Hold&) = delete;
        Hold(Hold&&) = delete;
        Hold& operator=(Hold&&) = delete;
        virtual ~Hold() = default;
    };

    std::string name;   // the certificate
    std::string owner;  // node or process id, as given to acquire_lease
    std::uint64_t fence = 0;
    Clock::time_point expires;
    std::unique_ptr<Hold> hold;
};

class Storage {
  public:
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
    virtual ~Storage() = default;

    // Where the state is, for messages (a path, or a URL without its password).
    [[nodiscard]] virtual std::string location() const = 0;
    // Where certificate `name` is, for messages and output (the state dir: live/NAME/).
    [[nodiscard]] virtual std::string certificate_location(const std::string& name) const = 0;

    virtual Result<std::optional<Account>> account(const std::string& server) const = 0;
    virtual Result<void> save_account(const Account& account) = 0;
    virtual Result<void> remove_account(const std::string& server) = 0;
    // The servers with a stored account, sorted.
    virtual Result<std::vector<std::string>> account_servers() const = 0;

    // Replaces the record as a whole: a reader, or a crash at any point, sees the old
    // record or the new one, never parts of both. An empty `renewal` keeps the stored one.
    virtual Result<void> save_certificate(const std::string& name, const Certificate& cert) = 0;
    virtual Result<std::optional<Certificate>> certificate(const std::string& name) const = 0;
    // What certificate() returns for each of `names`, in that order, in one round trip
    // where the storage allows it (renew --all reads thousands); the default asks for each.
    virtual Result<std::vector<std::optional<Certificate>>> certificates(
        const std::vector<std::string>& names) const;
    // Sorted; the names as stored (the state dir: directory names, see safe_name).
    virtual Result<std::vector<std::string>> certificate_names() const = 0;

    // The order in flight for a certificate (JSON text, the caller's): written right after
    // newOrder and before a new key is generated for it, removed once the certificate is
    // stored, so that a rerun after a crash resumes the same order with the same key.
    virtual Result<void> save_order(const std::string& name, const std::string& json_text) = 0;
    virtual Result<std::optional<std::string>> order(const std::string& name) const = 0;
    virtual Result<void> remove_order(const std::string& name) = 0;
    // The certificates with an order in flight, sorted (the names as stored).
    virtual Result<std::vector<std::string>> order_names() const = 0;

    // A deploy hook owed for a certificate: recorded before ordering the certificate the hook
    // deploys, so that a crash at any later point leaves it owed; cleared once it ran.
    virtual Result<void> set_deploy_pending(const std::string& name, bool pending) = 0;
    [[nodiscard]] virtual bool deploy_pending(const std::string& name) const = 0;

    // Grants `owner` the lease on certificate `name` for `ttl`, waiting up to `wait` while
    // another owner holds it (an expired lease, or one whose holder died, is free).
    // Errc::state naming the holder when the wait ends; Errc::usage for a bad name, an
    // empty owner or a ttl under a millisecond.
    virtual Result<Lease> acquire_lease(const std::string& name, const std::string& owner,
                                        std::chrono::milliseconds ttl,
                                        std::chrono::milliseconds wait) = 0;
    // Moves the expiry to now + ttl. Errc::state when the lease is no longer held (expired,
    // taken over, released): the holder must stop acting on the certificate.
    virtual Result<void> extend_lease(Lease& lease, std::chrono::milliseconds ttl) = 0;
    // Ok while the lease is held and unexpired; Errc::state otherwise (checked before every
    // step that acts on the certificate).
    [[nodiscard]] virtual Result<void> check_lease(const Lease& lease) const = 0;
    // Frees the lease if it is still this holder's (a lost lease is left to its new holder).
    virtual Result<void> release_lease(Lease& lease) = 0;

  protected:
    // Implementations may be moved (StateDir::open returns one by value), never sliced.
    Storage() = default;
    Storage(Storage&&) noexcept = default;
    Storage& operator=(Storage&&) noexcept = default;
};

}  // namespace store
