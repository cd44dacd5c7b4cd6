// store::Storage on PostgreSQL (fleet mode): several agents share accounts, orders in
// flight and certificates, and take a lease per certificate before acting on it. See
// docs/fleet.md for the schema, the lease rules and what each failure does.
//
// Leases are rows (name, holder, expires_at, fence) timed by the database's clock, so
// nodes' clocks need not agree. A holder also keeps a local deadline (its request time plus
// the ttl, which is never later than the database's expiry): check_lease fails once that
// passes without a successful extend, so a node cut off from the database stops acting on
// the certificate before another node can be granted it.
//
// Thread-safe: one connection, used by one thread at a time; a lost connection is
// re-established on the next call.
#pragma once

#include "store/pg.h"
#include "store/state.h"
#include "store/storage.h"

#include <mutex>

namespace store {

class PgStorage final : public Storage {
  public:
    // Connects to `url` (postgresql://...; the password from a passfile, never in the URL)
    // and migrates the schema. `node` names this agent in its own deploy record (default:
    // store::node_name()).
    static Result<std::unique_ptr<PgStorage>> open(const std::string& url, std::string node = "");

    [[nodiscard]] std::string location() const override;
    [[nodiscard]] std::string certificate_location(const std::string& name) const override {
        return location() + " (certificate " + safe_name(name) + ")";
    }
    [[nodiscard]] const std::string& node() const { return node_; }
    // The URL it was opened with, for another connection of the same agent (it names the
    // passfile: never shown; location() is what messages say).
    [[nodiscard]] const std::string& url() const { return url_; }

    Result<std::optional<Account>> account(const std::string& server) const override;
    Result<void> save_account(const Account& account) override;
    Result<void> remove_account(const std::string& server) override;
    Result<std::vector<std::string>> account_servers() const override;

    Result<void> save_certificate(const std::string& name, const Certificate& cert) override;
    Result<std::optional<Certificate>> certificate(const std::string& name) const override;
    Result<std::vector<std::optional<Certificate>>> certificates(
        const std::vector<std::string>& names) const override;
    Result<std::vector<std::string>> certificate_names() const override;
    // How many times `name` has been stored (0: never): the fleet's nodes compare it with
    // what they deployed.
    Result<std::int64_t> generation(const std::string& name) const;

    Result<void> save_order(const std::string& name, const std::string& json_text) override;
    Result<std::optional<std::string>> order(const std::string& name) const override;
    Result<void> remove_order(const std::string& name) override;
    Result<std::vector<std::string>> order_names() const override;

    Result<void> set_deploy_pending(const std::string& name, bool pending) override;
    [[nodiscard]] bool deploy_pending(const std::string& name) const override;

    Result<Lease> acquire_lease(const std::string& name, const std::string& owner,
                                std::chrono::milliseconds ttl,
                                std::chrono::milliseconds wait) override;
    Result<void> extend_lease(Lease& lease, std::chrono::milliseconds ttl) override;
    [[nodiscard]] Result<void> check_lease(const Lease& lease) const override;
    Result<void> release_lease(Lease& lease) override;

    // Distributed challenge solving: a key authorization (http-01) or certificate digest
    // (tls-alpn-01) any node's responder serves; kept until `ttl` passes or withdrawn.
    Result<void> publish_challenge(const std::string& kind, const std::string& token,
                                   const std::string& domain, const std::string& value,
                                   std::chrono::milliseconds ttl);
    Result<void> withdraw_challenge(const std::string& kind, const std::string& token,
                                    const std::string& domain);
    // An empty `token` or `domain` matches any (an http-01 request names only the token, a
    // tls-alpn-01 handshake only the name).
    Result<std::optional<std::string>> challenge(const std::string& kind, const std::string& token,
                                                 const std::string& domain) const;

  private:
    PgStorage(pg::Connection c, std::string url, std::string node)
        : conn_(std::move(c)), url_(std::move(url)), node_(std::move(node)) {}
    // Runs one statement, reconnecting once when the connection was lost before it.
    Result<pg::Rows> exec(const std::string& sql,
                          const std::vector<std::optional<std::string>>& params = {}) const;
    // The first column of every row of `sql`.
    Result<std::vector<std::string>> column(const std::string& sql) const;

    mutable std::mutex mutex_;
    mutable pg::Connection conn_;
    std::string url_;
    std::string node_;
};

}  // namespace store
